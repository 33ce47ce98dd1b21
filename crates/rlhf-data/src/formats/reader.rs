//! The streaming reader: one record at a time from a file of any input format, each checked
//! against its invariants, errors located by file, line and field.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::input::{self, Input, LineReader};
use super::json::WHOLE_LINE;
use super::labels::{self, Columns};
use super::oasst::{self, OasstTally};
use super::{Format, detect, hh, native, trl};
use crate::error::DataError;
use crate::records::{Feedback, InvalidRecord};

/// A record and the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The line (for OASST, the line of the tree the ranking comes from).
    pub line: u64,
    /// The record.
    pub record: Feedback,
}

/// Reads records one at a time; never holds more than one line (one OASST tree) in memory.
///
/// Yields `Err` for each bad record and goes on with the next; stops after an I/O error.
/// See [`crate::validate`] for fail-fast and skip policies and duplicate reports.
///
/// ```
/// use rlhf_data::formats::{FeedbackReader, Format};
/// let hh = "{\"chosen\": \"\\n\\nHuman: 2+2?\\n\\nAssistant: 4\", \"rejected\": \"\\n\\nHuman: 2+2?\\n\\nAssistant: 5\"}\n";
/// let reader = FeedbackReader::from_reader("mem.jsonl", std::io::Cursor::new(hh), None).unwrap();
/// assert_eq!(reader.format(), Format::Hh);
/// let records: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
/// assert_eq!(records.len(), 1);
/// ```
pub struct FeedbackReader {
    file: PathBuf,
    format: Format,
    source: Source,
    pending: VecDeque<Result<Located, DataError>>,
    tally: OasstTally,
}

enum Source {
    Lines(LineReader),
    Csv {
        reader: Box<csv::Reader<Input>>,
        columns: Columns,
        row: csv::StringRecord,
        /// Blank lines skipped before the header.
        line_offset: u64,
    },
    Done,
}

impl FeedbackReader {
    /// Opens `path` (gzip or not), in `format` or the format detected from its first line.
    pub fn open(path: &Path, format: Option<Format>) -> Result<Self, DataError> {
        FeedbackReader::from_input(path.to_path_buf(), input::open_path(path)?, format)
    }

    /// Reads from any byte stream (gzip or not); `name` stands for the file in errors.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        reader: impl Read + Send + 'static,
        format: Option<Format>,
    ) -> Result<Self, DataError> {
        let file = name.into();
        let input = input::decompressing(reader).map_err(|source| DataError::Io {
            file: file.clone(),
            action: "cannot read",
            source,
        })?;
        FeedbackReader::from_input(file, input, format)
    }

    fn from_input(file: PathBuf, input: Input, format: Option<Format>) -> Result<Self, DataError> {
        let mut lines = LineReader::new(input);
        let io_error = |source| DataError::Io {
            file: file.clone(),
            action: "cannot read",
            source,
        };
        let mut reader = FeedbackReader {
            file: file.clone(),
            format: format.unwrap_or(Format::Native),
            source: Source::Done,
            pending: VecDeque::new(),
            tally: OasstTally::default(),
        };
        let Some((line_no, first)) = lines.next_nonblank().map_err(io_error)? else {
            return match format {
                Some(_) => Ok(reader),
                None => Err(DataError::UnknownFormat {
                    file,
                    line: 0,
                    expected: "a record, the file is empty".into(),
                }),
            };
        };
        let first_text = std::str::from_utf8(first).ok();
        reader.format = match (format, first_text) {
            (Some(format), _) => format,
            (None, Some(text)) => {
                detect::detect(text).map_err(|expected| DataError::UnknownFormat {
                    file: file.clone(),
                    line: line_no,
                    expected,
                })?
            }
            (None, None) => {
                return Err(DataError::UnknownFormat {
                    file,
                    line: line_no,
                    expected: "UTF-8 text".into(),
                });
            }
        };
        if reader.format == Format::LabelsCsv {
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(lines.rewind_last_line());
            let mut header = csv::StringRecord::new();
            let found = csv
                .read_record(&mut header)
                .map_err(|e| reader.csv_error(e, line_no - 1))?;
            let columns = if found {
                labels::columns(&header.iter().collect::<Vec<_>>())
            } else {
                labels::columns::<&str>(&[])
            }
            .map_err(|invalid| reader.record_error(line_no, invalid))?;
            reader.source = Source::Csv {
                reader: Box::new(csv),
                columns,
                row: csv::StringRecord::new(),
                line_offset: line_no - 1,
            };
        } else {
            reader.parse_line(line_no, first);
            reader.source = Source::Lines(lines);
        }
        Ok(reader)
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file being read.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// What OASST trees read so far left out (all zero for other formats).
    pub fn oasst_tally(&self) -> OasstTally {
        self.tally
    }

    fn record_error(&self, line: u64, invalid: InvalidRecord) -> DataError {
        DataError::Record {
            file: self.file.clone(),
            line,
            field: invalid.field,
            expected: invalid.expected,
        }
    }

    fn csv_error(&self, error: csv::Error, line_offset: u64) -> DataError {
        let line = error.position().map_or(0, |p| p.line()) + line_offset;
        match error.into_kind() {
            csv::ErrorKind::Io(source) => DataError::Io {
                file: self.file.clone(),
                action: "cannot read",
                source,
            },
            other => DataError::Record {
                file: self.file.clone(),
                line,
                field: WHOLE_LINE.into(),
                expected: format!("a CSV row of UTF-8 text ({other:?})"),
            },
        }
    }

    /// Parses one line, queueing its records (checked) or its error.
    fn parse_line(&mut self, line_no: u64, bytes: &[u8]) {
        let Ok(line) = simdutf8::basic::from_utf8(bytes) else {
            let invalid = InvalidRecord::new(WHOLE_LINE, "UTF-8 text");
            self.pending
                .push_back(Err(self.record_error(line_no, invalid)));
            return;
        };
        // A byte-order mark (written by some Windows tools) opens the file, not the record.
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        let parsed: Result<Vec<Feedback>, InvalidRecord> = match self.format {
            Format::Hh => hh::parse_line(line).map(|r| vec![r.into()]),
            Format::Trl => trl::parse_line(line).map(|r| vec![r.into()]),
            Format::Native => native::parse_line(line).map(|r| vec![r]),
            Format::LabelsJsonl | Format::LabelsCsv => {
                labels::parse_jsonl_line(line).map(|r| vec![r.into()])
            }
            Format::Oasst => oasst::parse_line(line).map(|(rankings, tally)| {
                self.tally.add(&tally);
                rankings.into_iter().map(Feedback::from).collect()
            }),
        };
        match parsed {
            Ok(records) => {
                for record in records {
                    self.push_checked(line_no, record);
                }
            }
            Err(invalid) => self
                .pending
                .push_back(Err(self.record_error(line_no, invalid))),
        }
    }

    fn push_checked(&mut self, line: u64, record: Feedback) {
        let checked = match record.validate() {
            Ok(()) => Ok(Located { line, record }),
            Err(invalid) => Err(self.record_error(line, invalid)),
        };
        self.pending.push_back(checked);
    }

    /// Reads the next line or row into `pending`; false at the end.
    fn fill(&mut self) -> bool {
        // Taken out while reading so the parsers can borrow `self`; put back unless finished.
        let mut source = std::mem::replace(&mut self.source, Source::Done);
        let more = match &mut source {
            Source::Done => false,
            Source::Lines(lines) => match lines.next_nonblank() {
                Ok(Some((line_no, bytes))) => {
                    self.parse_line(line_no, bytes);
                    true
                }
                Ok(None) => false,
                Err(source) => {
                    let error = DataError::Io {
                        file: self.file.clone(),
                        action: "cannot read",
                        source,
                    };
                    self.pending.push_back(Err(error));
                    return true; // source stays Done: nothing more can be read
                }
            },
            Source::Csv {
                reader,
                columns,
                row,
                line_offset,
            } => match reader.read_record(row) {
                Ok(true) => {
                    let line = row.position().map_or(0, |p| p.line()) + *line_offset;
                    match labels::from_csv_row(columns, row) {
                        Ok(label) => self.push_checked(line, label.into()),
                        Err(invalid) => self
                            .pending
                            .push_back(Err(self.record_error(line, invalid))),
                    }
                    true
                }
                Ok(false) => false,
                Err(error) => {
                    let fatal = matches!(error.kind(), csv::ErrorKind::Io(_));
                    self.pending
                        .push_back(Err(self.csv_error(error, *line_offset)));
                    if fatal {
                        return true; // source stays Done after a read failure
                    }
                    true
                }
            },
        };
        if more {
            self.source = source;
        }
        more
    }
}

impl Iterator for FeedbackReader {
    type Item = Result<Located, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if !self.fill() {
                return None;
            }
        }
    }
}
