//! Readers for the three input files: labels (`item,rater,label`), gold (`item,label`) and pairs
//! (`left,right,winner[,rater]`), as CSV with a header or JSONL with the same keys, optionally
//! gzip-compressed (detected from the magic bytes). Errors name file, line and field.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{RatersError, Result};
use crate::labels::{Gold, LabelSet, LabelSetBuilder};
use crate::pairs::{Comparisons, Outcome};

/// Accepted names of each logical column, first match wins.
const ITEM_KEYS: &[&str] = &["item", "task"];
const RATER_KEYS: &[&str] = &["rater", "worker"];
const LABEL_KEYS: &[&str] = &["label"];
/// Accepted names of the optional grouping column of pairs (e.g. the prompt).
const GROUP_KEYS: &[&str] = &["group", "prompt"];
/// Most logical columns a reader asks for.
const MAX_COLUMNS: usize = 5;

/// Opens `path`, transparently un-gzipping it.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let io = |source| RatersError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).map_err(io)?);
    let head = reader.fill_buf().map_err(io)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Ok(Box::new(reader))
    }
}

/// True when the file looks like JSONL: `.jsonl`/`.ndjson`/`.json` name, or first byte `{`.
fn is_jsonl(path: &Path, reader: &mut dyn BufRead) -> Result<bool> {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        return Ok(true);
    }
    if name.ends_with(".csv") {
        return Ok(false);
    }
    let head = reader.fill_buf().map_err(|source| RatersError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

fn parse_err(path: &Path, line: u64, field: &str, message: impl Into<String>) -> RatersError {
    RatersError::Parse {
        path: path.to_path_buf(),
        line,
        field: field.into(),
        message: message.into(),
    }
}

/// Visits each record of a CSV or JSONL file as `(line, fields)` where `fields[k]` is the value
/// of logical column `columns[k]` (each a list of accepted names); `optional[k]` columns may be
/// absent and then give `None`.
fn for_each_record(
    path: &Path,
    columns: &[&[&str]],
    optional: &[bool],
    mut visit: impl FnMut(u64, &[Option<&str>]) -> Result<()>,
) -> Result<()> {
    let mut reader = open(path)?;
    let expected = columns
        .iter()
        .map(|c| c.join("|"))
        .collect::<Vec<_>>()
        .join(",");
    let ncol = columns.len().min(MAX_COLUMNS);
    if is_jsonl(path, &mut *reader)? {
        let mut line_no = 0u64;
        let mut buf = String::new();
        let mut owned: Vec<Option<String>> = vec![None; columns.len()];
        loop {
            buf.clear();
            let n = reader
                .read_line(&mut buf)
                .map_err(|source| RatersError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if buf.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&buf)
                .map_err(|e| parse_err(path, line_no, "<record>", format!("invalid JSON: {e}")))?;
            let object = value
                .as_object()
                .ok_or_else(|| parse_err(path, line_no, "<record>", "expected a JSON object"))?;
            for (k, names) in columns.iter().enumerate() {
                let found = names.iter().find_map(|n| object.get(*n).map(|v| (*n, v)));
                owned[k] = match found {
                    None if optional[k] => None,
                    None => {
                        return Err(parse_err(
                            path,
                            line_no,
                            names[0],
                            format!("missing key; expected keys {expected}"),
                        ));
                    }
                    Some((_, serde_json::Value::Null)) if optional[k] => None,
                    Some((_, serde_json::Value::String(s))) => Some(s.clone()),
                    Some((_, serde_json::Value::Number(x))) => Some(x.to_string()),
                    Some((name, other)) => {
                        return Err(parse_err(
                            path,
                            line_no,
                            name,
                            format!("expected a string or a number, found `{other}`"),
                        ));
                    }
                };
            }
            let mut fields: [Option<&str>; MAX_COLUMNS] = [None; MAX_COLUMNS];
            for (f, o) in fields.iter_mut().zip(&owned) {
                *f = o.as_deref();
            }
            visit(line_no, &fields[..ncol])?;
        }
        return Ok(());
    }
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| parse_err(path, 1, "<header>", format!("cannot read CSV header: {e}")))?
        .clone();
    let mut index: Vec<Option<usize>> = Vec::with_capacity(columns.len());
    for (k, names) in columns.iter().enumerate() {
        let pos = names.iter().find_map(|n| {
            header.iter().position(|h| {
                h.trim_start_matches('\u{feff}')
                    .trim()
                    .eq_ignore_ascii_case(n)
            })
        });
        if pos.is_none() && !optional[k] {
            return Err(parse_err(
                path,
                1,
                names[0],
                format!(
                    "missing column in header `{}`; expected columns {expected}",
                    header.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        }
        index.push(pos);
    }
    let mut record = csv::StringRecord::new();
    loop {
        let more = csv.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            parse_err(path, line, "<record>", format!("malformed CSV: {e}"))
        })?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut fields: [Option<&str>; MAX_COLUMNS] = [None; MAX_COLUMNS];
        for (k, idx) in index.iter().enumerate().take(MAX_COLUMNS) {
            let value = idx.and_then(|i| record.get(i)).map(str::trim);
            fields[k] = if optional[k] {
                value.filter(|v| !v.is_empty())
            } else {
                value
            };
        }
        visit(line, &fields[..ncol])?;
    }
    Ok(())
}

fn require<'a>(path: &Path, line: u64, field: &str, value: Option<&'a str>) -> Result<&'a str> {
    match value {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(parse_err(
            path,
            line,
            field,
            "empty value; expected a non-empty string or number",
        )),
    }
}

/// Reads long-format labels and, optionally, gold labels into one [`LabelSet`] and [`Gold`].
pub fn read_labels(labels: &Path, gold: Option<&Path>) -> Result<(LabelSet, Gold)> {
    let mut builder = LabelSetBuilder::new(labels);
    for_each_record(
        labels,
        &[ITEM_KEYS, RATER_KEYS, LABEL_KEYS],
        &[false, false, false],
        |line, f| {
            let item = require(labels, line, "item", f[0])?;
            let rater = require(labels, line, "rater", f[1])?;
            let label = require(labels, line, "label", f[2])?;
            builder.push(item, rater, label, line);
            Ok(())
        },
    )?;
    if let Some(gold) = gold {
        builder.gold_path(gold);
        for_each_record(
            gold,
            &[ITEM_KEYS, LABEL_KEYS],
            &[false, false],
            |line, f| {
                let item = require(gold, line, "item", f[0])?;
                let label = require(gold, line, "label", f[1])?;
                builder.push_gold(item, label, line);
                Ok(())
            },
        )?;
    }
    builder.build()
}

/// Parses a winner field: `left`, `right`, `tie` (also `a`/`b`, `model_a`/`model_b`, `draw`), or
/// the name of the left or right item.
fn parse_winner(value: &str, left: &str, right: &str) -> Option<Outcome> {
    match value.to_ascii_lowercase().as_str() {
        "left" | "a" | "model_a" => Some(Outcome::Left),
        "right" | "b" | "model_b" => Some(Outcome::Right),
        "tie" | "draw" | "tie (bothbad)" => Some(Outcome::Tie),
        _ if value == left => Some(Outcome::Left),
        _ if value == right => Some(Outcome::Right),
        _ => None,
    }
}

/// Reads pairwise comparisons `left,right,winner[,rater][,group]` (CSV or JSONL), in file order.
/// A `group` (or `prompt`) column splits the comparisons into independent rankings, e.g. the
/// candidate responses of each prompt.
pub fn read_pairs(path: &Path) -> Result<Comparisons> {
    let mut out = Comparisons::new();
    let cols: &[&[&str]] = &[
        &["left", "model_a"],
        &["right", "model_b"],
        &["winner", "label"],
        RATER_KEYS,
        GROUP_KEYS,
    ];
    for_each_record(path, cols, &[false, false, false, true, true], |line, f| {
        let left = require(path, line, "left", f[0])?;
        let right = require(path, line, "right", f[1])?;
        let winner = require(path, line, "winner", f[2])?;
        let outcome = parse_winner(winner, left, right).ok_or_else(|| {
            parse_err(
                path,
                line,
                "winner",
                format!("`{winner}`; expected left, right, tie or one of the two item names"),
            )
        })?;
        if left == right {
            return Err(parse_err(
                path,
                line,
                "right",
                format!("item `{left}` is compared with itself"),
            ));
        }
        out.push(left, right, outcome, f[3])?;
        if let Some(group) = f[4] {
            if out.group_of.len() + 1 != out.games.len() {
                return Err(parse_err(
                    path,
                    line,
                    "group",
                    "earlier records have no group; expected a group on every record or on none",
                ));
            }
            let g = out.groups.intern(group);
            out.group_of.push(g);
        } else if !out.group_of.is_empty() {
            return Err(parse_err(
                path,
                line,
                "group",
                "empty group; expected a group on every record or on none",
            ));
        }
        Ok(())
    })?;
    if out.games.is_empty() {
        return Err(RatersError::Invalid(format!(
            "{}: no comparisons",
            path.display()
        )));
    }
    Ok(out)
}

/// Reads a whole file into a string (un-gzipping), for small side inputs.
pub fn read_to_string(path: &Path) -> Result<String> {
    let mut s = String::new();
    open(path)?
        .read_to_string(&mut s)
        .map_err(|source| RatersError::Io {
            path: PathBuf::from(path),
            source,
        })?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rlhf-raters-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn csv_and_jsonl_agree() {
        let c = tmp("a.csv", "task,worker,label\nq1,w1,1\nq1,w2,2\nq2,w1,1\n");
        let j = tmp(
            "a.jsonl",
            "{\"item\":\"q1\",\"rater\":\"w1\",\"label\":1}\n\n{\"item\":\"q1\",\"rater\":\"w2\",\"label\":\"2\"}\n{\"item\":\"q2\",\"rater\":\"w1\",\"label\":1}\n",
        );
        let (a, _) = read_labels(&c, None).unwrap();
        let (b, _) = read_labels(&j, None).unwrap();
        assert_eq!(a.label_ids(), b.label_ids());
        assert_eq!(a.rater_ids(), b.rater_ids());
        assert_eq!(a.values(), Some(&[1.0, 2.0][..]));
    }

    #[test]
    fn errors_name_file_line_field() {
        let c = tmp("bad.csv", "item,rater,label\nq1,w1,1\nq2,,1\n");
        let e = read_labels(&c, None).unwrap_err().to_string();
        assert!(e.contains("bad.csv:3: field `rater`"), "{e}");
        let h = tmp("badh.csv", "item,who,label\nq1,w1,1\n");
        let e = read_labels(&h, None).unwrap_err().to_string();
        assert!(e.contains("badh.csv:1: field `rater`"), "{e}");
        let j = tmp(
            "bad.jsonl",
            "{\"item\":\"q1\",\"rater\":\"w1\",\"label\":[1]}\n",
        );
        let e = read_labels(&j, None).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:1: field `label`"), "{e}");
        let p = tmp("p.csv", "left,right,winner\na,b,left\na,b,maybe\n");
        let e = read_pairs(&p).unwrap_err().to_string();
        assert!(e.contains("p.csv:3: field `winner`"), "{e}");
    }

    #[test]
    fn byte_order_mark_in_header_is_ignored() {
        let c = tmp("bom.csv", "\u{feff}item,rater,label\nq1,w1,a\n");
        assert_eq!(read_labels(&c, None).unwrap().0.n_labels(), 1);
    }

    #[test]
    fn gold_and_pairs() {
        let c = tmp("g.csv", "item,rater,label\nq1,w1,yes\nq2,w1,no\n");
        let g = tmp("gold.csv", "item,label\nq1,yes\nq9,no\n");
        let (set, gold) = read_labels(&c, Some(&g)).unwrap();
        assert_eq!(gold.len(), 1);
        assert_eq!(gold.unrated_items, 1);
        assert_eq!(set.categories()[gold.get(0).unwrap() as usize], "yes");
        let p = tmp(
            "p2.csv",
            "left,right,winner,rater\na,b,left,r1\nb,c,c,\nc,a,tie,r2\n",
        );
        let pairs = read_pairs(&p).unwrap();
        assert_eq!(pairs.games.len(), 3);
        assert_eq!(pairs.games[1].outcome, Outcome::Right);
        assert_eq!(pairs.games[1].rater, None);
        assert_eq!(pairs.raters.len(), 2);
        let g = tmp(
            "p3.csv",
            "prompt,left,right,winner\nq1,a,b,left\nq2,c,d,tie\nq1,b,a,a\n",
        );
        let grouped = read_pairs(&g).unwrap();
        let split = grouped.split_by_group();
        assert_eq!(split.len(), 2);
        assert_eq!(
            (
                split[0].0.as_str(),
                split[0].1.games.len(),
                split[0].1.n_items()
            ),
            ("q1", 2, 2)
        );
        assert_eq!(split[1].1.games[0].outcome, Outcome::Tie);
        let bad = tmp("p4.csv", "group,left,right,winner\nq1,a,b,left\n,c,d,tie\n");
        let e = read_pairs(&bad).unwrap_err().to_string();
        assert!(e.contains("p4.csv:3: field `group`"), "{e}");
    }
}

#[cfg(test)]
mod gzip_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_read_transparently() {
        let dir = std::env::temp_dir().join(format!("rlhf-raters-gz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("labels.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"item,rater,label\nq1,a,1\nq1,b,2\n").unwrap();
        gz.finish().unwrap();
        let (set, _) = read_labels(&path, None).unwrap();
        assert_eq!((set.n_items(), set.n_labels()), (1, 2));
    }
}
