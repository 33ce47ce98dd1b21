//! Fuzzes the native JSONL parser: the line parser and the streaming reader must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlhf_data::formats::{FeedbackReader, Format, native};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = native::parse_line(text);
    }
    if let Ok(reader) = FeedbackReader::from_reader("fuzz", std::io::Cursor::new(data.to_vec()), Some(Format::Native)) {
        reader.for_each(drop);
    }
});
