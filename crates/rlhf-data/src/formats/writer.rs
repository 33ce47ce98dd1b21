//! Writing records in any output format, to a temporary file renamed into place on success so
//! no half-written output is ever left under the final name.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::item_id::prompt_item_id;
use super::{hh, labels, trl};
use crate::error::DataError;
use crate::records::{Feedback, FeedbackMeta, Pairwise, Prompt, Ranking};

/// The formats records can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// HH-RLHF `chosen`/`rejected` transcripts (pairs; rankings expand to their pairs).
    Hh,
    /// TRL `prompt`/`chosen`/`rejected` (pairs; rankings expand to their pairs).
    Trl,
    /// `item,rater,label` CSV (label rows, ratings, question answers, rule judgements).
    LabelsCsv,
    /// `{"item", "rater", "label"}` JSONL, same rows as the CSV.
    LabelsJsonl,
    /// Native JSONL of K-way rankings (pairs become rankings of two).
    Kway,
    /// Native JSONL of any record, tagged by `kind`.
    Native,
}

impl OutputFormat {
    /// Every output format.
    pub const ALL: [OutputFormat; 6] = [
        OutputFormat::Hh,
        OutputFormat::Trl,
        OutputFormat::LabelsCsv,
        OutputFormat::LabelsJsonl,
        OutputFormat::Kway,
        OutputFormat::Native,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Hh => "hh",
            OutputFormat::Trl => "trl",
            OutputFormat::LabelsCsv => "labels-csv",
            OutputFormat::LabelsJsonl => "labels-jsonl",
            OutputFormat::Kway => "kway",
            OutputFormat::Native => "native",
        }
    }

    /// The format of a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        OutputFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Fields that the output format had no place for, with how many output rows lost each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    counts: BTreeMap<&'static str, u64>,
}

impl Dropped {
    /// Counts one output row that lost `field`.
    pub fn add(&mut self, field: &'static str) {
        *self.counts.entry(field).or_insert(0) += 1;
    }

    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `(field, records)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }

    /// Counts rater, timestamp and confidence when set.
    pub fn optional_meta(&mut self, meta: &FeedbackMeta) {
        if meta.rater_id.is_some() {
            self.add("rater_id");
        }
        if meta.timestamp.is_some() {
            self.add("timestamp");
        }
        if meta.confidence.is_some() {
            self.add("confidence");
        }
    }

    /// For formats without ids: counts the item id when it is not the prompt's hash (which
    /// reading recomputes), and the optional metadata.
    pub fn meta_beyond_prompt_id(&mut self, meta: &FeedbackMeta, prompt: &Prompt) {
        if meta.item_id != prompt_item_id(prompt) {
            self.add("item_id");
        }
        self.optional_meta(meta);
    }
}

/// What a writer wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Records received.
    pub records: u64,
    /// Lines written, header included (rankings expand to several pairs, etc.).
    pub lines: u64,
    /// Fields lost on the way.
    pub dropped: Dropped,
}

/// Encodes records in one output format onto any byte sink.
pub struct FeedbackWriter<W: Write> {
    out: W,
    format: OutputFormat,
    /// Named in errors.
    file: PathBuf,
    /// One record's encoding, reused.
    buffer: Vec<u8>,
    summary: WriteSummary,
}

impl<W: Write> FeedbackWriter<W> {
    /// A writer of `format` onto `out`; `file` names it in errors.
    pub fn new(out: W, format: OutputFormat, file: impl Into<PathBuf>) -> Self {
        let mut writer = FeedbackWriter {
            out,
            format,
            file: file.into(),
            buffer: Vec::with_capacity(1 << 12),
            summary: WriteSummary::default(),
        };
        if format == OutputFormat::LabelsCsv {
            labels::write_csv_header(&mut writer.buffer);
            writer.summary.lines += 1;
        }
        writer
    }

    /// Encodes and writes one record.
    pub fn write(&mut self, record: &Feedback) -> Result<(), DataError> {
        let index = self.summary.records;
        self.summary.records += 1;
        let lines = encode(
            self.format,
            record,
            &mut self.buffer,
            &mut self.summary.dropped,
        )
        .map_err(|reason| DataError::Unrepresentable {
            file: self.file.clone(),
            index,
            kind: record.kind().as_str(),
            format: self.format.name(),
            reason,
        })?;
        self.summary.lines += lines;
        if self.buffer.len() >= 1 << 16 {
            self.flush_buffer()?;
        }
        Ok(())
    }

    fn flush_buffer(&mut self) -> Result<(), DataError> {
        self.out
            .write_all(&self.buffer)
            .map_err(|source| DataError::Io {
                file: self.file.clone(),
                action: "cannot write",
                source,
            })?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and returns the sink with the summary.
    pub fn finish(mut self) -> Result<(W, WriteSummary), DataError> {
        self.flush_buffer()?;
        Ok((self.out, self.summary))
    }
}

/// Appends the encoding of `record` to `out` and returns the number of lines added; on error
/// `out` is left as it was.
fn encode(
    format: OutputFormat,
    record: &Feedback,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> Result<u64, String> {
    let start = out.len();
    let result = encode_unchecked(format, record, out, dropped);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Writes one pair as a line of a pair format.
type PairWriter = fn(&Pairwise, &mut Vec<u8>, &mut Dropped) -> Result<(), String>;

fn encode_unchecked(
    format: OutputFormat,
    record: &Feedback,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
) -> Result<u64, String> {
    match format {
        OutputFormat::Hh => encode_pairs(record, out, dropped, hh::write_line, format),
        OutputFormat::Trl => encode_pairs(record, out, dropped, trl::write_line, format),
        OutputFormat::LabelsCsv | OutputFormat::LabelsJsonl => {
            let rows = labels::rows_of(record, dropped)?;
            for row in &rows {
                if format == OutputFormat::LabelsCsv {
                    labels::write_csv_row(row, out, dropped)?;
                } else {
                    labels::write_jsonl_row(row, out)?;
                }
            }
            Ok(rows.len() as u64)
        }
        OutputFormat::Kway => {
            let ranking = match record {
                Feedback::Ranking(ranking) => ranking.clone(),
                Feedback::Pairwise(pair) => {
                    if pair.margin.is_some() {
                        dropped.add("margin");
                    }
                    Ranking::new(
                        pair.meta.clone(),
                        pair.prompt.clone(),
                        vec![pair.chosen.clone(), pair.rejected.clone()],
                        vec![vec![0], vec![1]],
                    )
                }
                other => {
                    return Err("only pairs and rankings can be written as kway".to_string()
                        + &kind_hint(other));
                }
            };
            write_json_line(&Feedback::Ranking(ranking), out)
        }
        OutputFormat::Native => write_json_line(record, out),
    }
}

/// A pair as one line, a ranking as its pairs (best first), anything else refused.
fn encode_pairs(
    record: &Feedback,
    out: &mut Vec<u8>,
    dropped: &mut Dropped,
    write_pair: PairWriter,
    format: OutputFormat,
) -> Result<u64, String> {
    match record {
        Feedback::Pairwise(pair) => write_pair(pair, out, dropped).map(|()| 1),
        Feedback::Ranking(ranking) => {
            let pairs = ranking.to_pairwise();
            for pair in &pairs {
                write_pair(pair, out, dropped)?;
            }
            Ok(pairs.len() as u64)
        }
        other => Err(format!(
            "only pairs and rankings can be written as {}",
            format.name()
        ) + &kind_hint(other)),
    }
}

fn kind_hint(record: &Feedback) -> String {
    format!(" (this is a `{}` record)", record.kind().as_str())
}

fn write_json_line(record: &Feedback, out: &mut Vec<u8>) -> Result<u64, String> {
    serde_json::to_writer(&mut *out, record).map_err(|e| format!("cannot encode JSON: {e}"))?;
    out.push(b'\n');
    Ok(1)
}

/// A file written under a temporary name beside its destination and renamed into place by
/// [`AtomicFile::commit`]; dropped uncommitted, the temporary file is removed. Gzip-compressed
/// when the destination ends in `.gz`.
pub struct AtomicFile {
    path: PathBuf,
    temporary: PathBuf,
    sink: Option<Sink>,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl AtomicFile {
    /// Starts writing `path` (through a temporary file in the same folder).
    pub fn create(path: &Path) -> Result<Self, DataError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let io = |source| DataError::Io {
            file: temporary.clone(),
            action: "cannot create",
            source,
        };
        let file = BufWriter::with_capacity(1 << 18, File::create(&temporary).map_err(io)?);
        let sink = if name.ends_with(".gz") {
            Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(file)
        };
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temporary,
            sink: Some(sink),
        })
    }

    /// The destination path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes the compression, flushes, syncs and renames onto the destination.
    pub fn commit(mut self) -> Result<(), DataError> {
        let io = |action, source| DataError::Io {
            file: self.path.clone(),
            action,
            source,
        };
        let buffered = match self.sink.take() {
            Some(Sink::Plain(buffered)) => buffered,
            Some(Sink::Gzip(gz)) => gz.finish().map_err(|e| io("cannot write", e))?,
            None => return Ok(()),
        };
        let file = buffered
            .into_inner()
            .map_err(|e| io("cannot write", e.into_error()))?;
        file.sync_all().map_err(|e| io("cannot write", e))?;
        drop(file);
        fs::rename(&self.temporary, &self.path)
            .map_err(|e| io("cannot rename the finished file onto", e))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match &mut self.sink {
            Some(Sink::Plain(w)) => w.write(bytes),
            Some(Sink::Gzip(w)) => w.write(bytes),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Some(Sink::Plain(w)) => w.flush(),
            Some(Sink::Gzip(w)) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            // Best effort: the temporary may already be gone; nothing else can be done here.
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// Writes every record of `records` to `path` in `format`, atomically: on the first error
/// (from the records or from writing) nothing is left under `path`.
///
/// ```
/// use rlhf_data::formats::{write_file, OutputFormat, FeedbackReader, Format};
/// use rlhf_data::records::{Feedback, FeedbackMeta, Pairwise, Prompt};
/// let path = std::env::temp_dir().join(format!("doc-write-{}.jsonl", std::process::id()));
/// let pair = Pairwise::new(FeedbackMeta::new("q1"), Prompt::user("2+2?"), "4", "5");
/// let summary = write_file(&path, OutputFormat::Trl, [Ok(Feedback::from(pair))]).unwrap();
/// assert_eq!(summary.lines, 1);
/// let back: Vec<_> = FeedbackReader::open(&path, Some(Format::Trl)).unwrap().collect();
/// assert_eq!(back.len(), 1);
/// std::fs::remove_file(&path).unwrap();
/// ```
pub fn write_file(
    path: &Path,
    format: OutputFormat,
    records: impl IntoIterator<Item = Result<Feedback, DataError>>,
) -> Result<WriteSummary, DataError> {
    let mut writer = FeedbackWriter::new(AtomicFile::create(path)?, format, path);
    for record in records {
        writer.write(&record?)?;
    }
    let (file, summary) = writer.finish()?;
    file.commit()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Label;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rlhf-data-writer-{}-{name}", std::process::id()))
    }

    #[test]
    fn failed_writes_leave_nothing_behind() {
        let path = temp("fail.csv");
        let records = vec![
            Ok(Label::new("i", "r", "x").into()),
            Ok(Pairwise::new(FeedbackMeta::new("i"), Prompt::user("q"), "a", "b").into()),
        ];
        let err = write_file(&path, OutputFormat::LabelsCsv, records).unwrap_err();
        assert!(
            matches!(err, DataError::Unrepresentable { index: 1, .. }),
            "{err}"
        );
        assert!(!path.exists());
        let leftovers: Vec<_> = fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!(".rlhf-data-writer-{}-fail", std::process::id()))
            })
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn gz_outputs_are_compressed_and_committed() {
        let path = temp("ok.csv.gz");
        let summary = write_file(
            &path,
            OutputFormat::LabelsCsv,
            vec![Ok(Label::new("i", "r", "x").into())],
        )
        .unwrap();
        assert_eq!(summary.lines, 2);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
        fs::remove_file(&path).unwrap();
    }

    #[test]
    fn rankings_expand_for_pair_formats_and_pairs_become_rankings() {
        let ranking = Ranking::from_ranks(
            FeedbackMeta::new("i"),
            Prompt::user("q"),
            vec!["a".into(), "b".into(), "c".into()],
            &[0, 1, 2],
        );
        let (out, summary) = {
            let mut w = FeedbackWriter::new(Vec::new(), OutputFormat::Hh, "mem");
            w.write(&ranking.into()).unwrap();
            w.finish().unwrap()
        };
        assert_eq!(summary.lines, 3);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3);
        let pair =
            Pairwise::new(FeedbackMeta::new("i"), Prompt::user("q"), "a", "b").with_margin(1.0);
        let mut w = FeedbackWriter::new(Vec::new(), OutputFormat::Kway, "mem");
        w.write(&pair.into()).unwrap();
        let (out, summary) = w.finish().unwrap();
        let back: Feedback = serde_json::from_slice(&out).unwrap();
        assert!(matches!(&back, Feedback::Ranking(r) if r.tiers == vec![vec![0], vec![1]]));
        assert_eq!(summary.dropped.iter().collect::<Vec<_>>(), [("margin", 1)]);
    }
}
