//! JSON to stdout and CSV files (written to a temporary name, then renamed into place).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    serde_json::to_writer_pretty(&mut lock, value).context("writing JSON to stdout")?;
    writeln!(lock).context("writing JSON to stdout")?;
    Ok(())
}

/// Quotes a CSV field when needed (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a CSV file: `header` then one line per row (fields already quoted with [`field`]).
pub fn write_csv(
    path: &Path,
    header: &[String],
    rows: impl Iterator<Item = Vec<String>>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let write_err = || format!("{}: cannot write", tmp.display());
    writeln!(
        w,
        "{}",
        header
            .iter()
            .map(|h| field(h))
            .collect::<Vec<_>>()
            .join(",")
    )
    .with_context(write_err)?;
    for row in rows {
        writeln!(w, "{}", row.join(",")).with_context(write_err)?;
    }
    w.flush().with_context(write_err)?;
    drop(w);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot rename into place", path.display()))?;
    Ok(())
}

/// Formats an optional number for CSV (empty when absent).
pub fn opt(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}
