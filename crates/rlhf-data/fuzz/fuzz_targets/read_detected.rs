//! Fuzzes format detection, gzip detection and whichever reader they pick: no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlhf_data::formats::FeedbackReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = FeedbackReader::from_reader("fuzz", std::io::Cursor::new(data.to_vec()), None) {
        reader.for_each(drop);
    }
});
