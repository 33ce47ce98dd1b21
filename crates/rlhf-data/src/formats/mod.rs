//! The formats of the field, read and written as streams, gzip read transparently.
//!
//! | format | read | written | records |
//! | --- | --- | --- | --- |
//! | [`hh`] HH-RLHF JSONL | yes | yes | pairwise |
//! | [`trl`] TRL preference JSONL | yes | yes | pairwise |
//! | [`oasst`] OpenAssistant trees | yes | no | K-way rankings |
//! | [`labels`] `item,rater,label` CSV / JSONL | yes | yes | label rows |
//! | [`native`] tagged JSONL (`kway` writes rankings) | yes | yes | any |
//!
//! [`FeedbackReader`] streams records from a file (format given or detected from the first line,
//! see [`detect`]); [`write_file`] writes records atomically; the per-format `parse_line` /
//! `write_line` functions are pure and are what the fuzz targets exercise.
//!
//! Dependencies: `flate2` (gzip), `csv` (quoted CSV cells), `memchr` (turn markers), `simdutf8`
//! (UTF-8 checks of each line: with the curly quotes and accents of real text, the standard
//! library's check took a fifth of the HH-RLHF reading time; simdutf8 is several times faster).

pub mod detect;
pub mod hh;
pub mod input;
pub mod item_id;
mod json;
pub mod labels;
pub mod native;
pub mod oasst;
mod reader;
pub mod trl;
mod writer;

pub use reader::{FeedbackReader, Located};
pub use writer::{AtomicFile, Dropped, FeedbackWriter, OutputFormat, WriteSummary, write_file};

/// The formats records can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Anthropic HH-RLHF `chosen`/`rejected` transcripts.
    Hh,
    /// TRL `prompt`/`chosen`/`rejected` (plain or conversational, explicit or implicit prompt).
    Trl,
    /// OpenAssistant message trees, one per line.
    Oasst,
    /// `item,rater,label` CSV with a header.
    LabelsCsv,
    /// `{"item", "rater", "label"}` JSONL.
    LabelsJsonl,
    /// Our tagged JSONL of any record.
    Native,
}

impl Format {
    /// Every input format.
    pub const ALL: [Format; 6] = [
        Format::Hh,
        Format::Trl,
        Format::Oasst,
        Format::LabelsCsv,
        Format::LabelsJsonl,
        Format::Native,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Hh => "hh",
            Format::Trl => "trl",
            Format::Oasst => "oasst",
            Format::LabelsCsv => "labels-csv",
            Format::LabelsJsonl => "labels-jsonl",
            Format::Native => "native",
        }
    }

    /// The format of a command-line name (`kway` reads as native).
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "kway" {
            return Some(Format::Native);
        }
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}
