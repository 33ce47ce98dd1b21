//! Fuzzes the label-table parsers (CSV and JSONL): they must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlhf_data::formats::{FeedbackReader, Format, labels};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = labels::parse_jsonl_line(text);
    }
    for format in [Format::LabelsCsv, Format::LabelsJsonl] {
        if let Ok(reader) = FeedbackReader::from_reader("fuzz", std::io::Cursor::new(data.to_vec()), Some(format)) {
            reader.for_each(drop);
        }
    }
});
