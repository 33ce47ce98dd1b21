//! Validation policies over a reader: fail on the first bad record (default) or skip bad records
//! counting them and keeping the first few reasons; duplicates reported either way.

use std::collections::HashMap;

use crate::error::DataError;
use crate::formats::item_id::StableHash;
use crate::formats::{FeedbackReader, Format, Located};
use crate::records::Feedback;

/// What to do with a bad record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Policy {
    /// Stop at the first bad record and return its error.
    #[default]
    FailFast,
    /// Leave bad records out, counted, with the first [`KEPT_REASONS`] errors kept.
    Skip,
}

/// How many errors and duplicates a report keeps verbatim.
pub const KEPT_REASONS: usize = 5;

/// A record judged again: the same kind, item, rater and responses as an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// The line of the repeat.
    pub line: u64,
    /// The line of the first occurrence.
    pub first_line: u64,
}

/// What a pass over a file found.
#[derive(Debug, Default)]
pub struct Report {
    /// Valid records yielded.
    pub valid: u64,
    /// Bad records (skipped, or the one that stopped a fail-fast pass).
    pub invalid: u64,
    /// The first bad records' errors.
    pub first_errors: Vec<DataError>,
    /// Valid records that repeat an earlier judgement (still yielded).
    pub duplicates: u64,
    /// The first duplicates.
    pub first_duplicates: Vec<Duplicate>,
}

/// A reader under a policy, tracking duplicates; iterate it, then read [`Checked::report`].
///
/// ```
/// use rlhf_data::formats::FeedbackReader;
/// use rlhf_data::validate::{Checked, Policy};
/// let csv = "item,rater,label\nq1,ann,yes\nq2,,no\nq1,ann,yes\n";
/// let reader = FeedbackReader::from_reader("labels.csv", std::io::Cursor::new(csv), None).unwrap();
/// let mut checked = Checked::new(reader, Policy::Skip);
/// assert_eq!(checked.by_ref().count(), 2); // the row without a rater is skipped
/// let report = checked.into_report();
/// assert_eq!((report.invalid, report.duplicates), (1, 1));
/// assert_eq!(report.first_errors[0].to_string(), "labels.csv:3: field `rater_id`: expected a non-empty rater id (every label row has one)");
/// ```
pub struct Checked {
    reader: FeedbackReader,
    policy: Policy,
    report: Report,
    /// Judgement key -> first line.
    seen: HashMap<u64, u64>,
    stopped: bool,
}

impl Checked {
    /// Checks `reader`'s records under `policy`.
    pub fn new(reader: FeedbackReader, policy: Policy) -> Self {
        Checked {
            reader,
            policy,
            report: Report::default(),
            seen: HashMap::new(),
            stopped: false,
        }
    }

    /// What was found so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The underlying reader (format, file, OASST tally).
    pub fn reader(&self) -> &FeedbackReader {
        &self.reader
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.reader.format()
    }

    /// Finishes and returns the report.
    pub fn into_report(self) -> Report {
        self.report
    }
}

impl Iterator for Checked {
    type Item = Result<Located, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped {
            return None;
        }
        loop {
            match self.reader.next()? {
                Ok(located) => {
                    self.report.valid += 1;
                    let key = judgement_key(&located.record);
                    if let Some(&first_line) = self.seen.get(&key) {
                        self.report.duplicates += 1;
                        if self.report.first_duplicates.len() < KEPT_REASONS {
                            self.report.first_duplicates.push(Duplicate {
                                line: located.line,
                                first_line,
                            });
                        }
                    } else {
                        self.seen.insert(key, located.line);
                    }
                    return Some(Ok(located));
                }
                Err(error) => {
                    self.report.invalid += 1;
                    let fatal = matches!(error, DataError::Io { .. });
                    if self.policy == Policy::FailFast || fatal {
                        self.stopped = true;
                        return Some(Err(error));
                    }
                    if self.report.first_errors.len() < KEPT_REASONS {
                        self.report.first_errors.push(error);
                    }
                }
            }
        }
    }
}

/// A hash of what makes two records the same judgement: kind, item, rater and the responses
/// judged (for label rows: kind, item and rater).
pub fn judgement_key(record: &Feedback) -> u64 {
    let meta = record.meta();
    let mut hash = StableHash::new();
    hash.part(record.kind().as_str().as_bytes())
        .part(meta.item_id.as_bytes())
        .part(meta.rater_id.as_deref().unwrap_or("").as_bytes());
    match record {
        Feedback::Pairwise(r) => {
            hash.part(r.chosen.as_bytes()).part(r.rejected.as_bytes());
        }
        Feedback::Ranking(r) => r.responses.iter().for_each(|s| {
            hash.part(s.as_bytes());
        }),
        Feedback::RuleViolations(r) => r.responses.iter().for_each(|s| {
            hash.part(s.as_bytes());
        }),
        Feedback::Questions(r) => {
            hash.part(r.response.as_bytes());
        }
        Feedback::Rating(r) => {
            hash.part(r.response.as_bytes());
        }
        Feedback::Label(_) => {}
    }
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const CSV: &str = "item,rater,label\nt1,w1,yes\nt1,w1,no\n,w2,yes\nt2,w2,\nt3,w3,yes\n";

    fn checked(text: &'static str, policy: Policy) -> Checked {
        Checked::new(
            FeedbackReader::from_reader("t.csv", Cursor::new(text), None).unwrap(),
            policy,
        )
    }

    #[test]
    fn fail_fast_stops_at_the_first_bad_record() {
        let mut c = checked(CSV, Policy::FailFast);
        let items: Vec<_> = c.by_ref().collect();
        assert_eq!(items.len(), 3);
        let err = items[2].as_ref().unwrap_err().to_string();
        assert_eq!(err, "t.csv:4: field `item_id`: expected a non-empty id");
        assert_eq!(
            (c.report().valid, c.report().invalid, c.report().duplicates),
            (2, 1, 1)
        );
    }

    #[test]
    fn skip_counts_and_keeps_reasons() {
        let mut c = checked(CSV, Policy::Skip);
        let lines: Vec<u64> = c.by_ref().map(|r| r.unwrap().line).collect();
        assert_eq!(lines, [2, 3, 6]);
        let report = c.into_report();
        assert_eq!(report.invalid, 2);
        assert_eq!(
            report.first_errors[1].to_string(),
            "t.csv:5: field `label`: expected a non-empty label"
        );
        assert_eq!(
            report.first_duplicates,
            [Duplicate {
                line: 3,
                first_line: 2
            }]
        );
    }
}
