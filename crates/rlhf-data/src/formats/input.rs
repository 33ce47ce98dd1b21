//! Opening inputs (gzip detected by its magic bytes) and reading them line by line into one
//! reused buffer.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::error::DataError;

/// Read-buffer size: large enough that a 1 KiB-per-line file needs few refills.
const BUFFER_BYTES: usize = 1 << 18;

/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A boxed buffered byte stream.
pub type Input = Box<dyn BufRead + Send>;

/// Opens `path` for reading, un-gzipping it when its first bytes are the gzip magic number
/// (whatever its extension).
pub fn open_path(path: &Path) -> Result<Input, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        file: path.to_path_buf(),
        action: "cannot open",
        source,
    })?;
    decompressing(file).map_err(|source| DataError::Io {
        file: path.to_path_buf(),
        action: "cannot read",
        source,
    })
}

/// Buffers `reader`, transparently decompressing it when it starts with the gzip magic number.
pub fn decompressing(reader: impl Read + Send + 'static) -> io::Result<Input> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        let gz = flate2::read::MultiGzDecoder::new(buffered);
        Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, gz)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Splits a stream into lines (without `\n` or `\r\n`), counting them from 1.
pub struct LineReader {
    input: Input,
    buffer: Vec<u8>,
    line: u64,
}

impl LineReader {
    /// Lines of `input`.
    pub fn new(input: Input) -> Self {
        LineReader {
            input,
            buffer: Vec::with_capacity(1 << 12),
            line: 0,
        }
    }

    /// The next line that is not blank, with its 1-based number; `None` at the end.
    pub fn next_nonblank(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            self.buffer.clear();
            if self.input.read_until(b'\n', &mut self.buffer)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            let mut end = self.buffer.len();
            if end > 0 && self.buffer[end - 1] == b'\n' {
                end -= 1;
                if end > 0 && self.buffer[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            if self.buffer[..end].iter().any(|b| !b.is_ascii_whitespace()) {
                return Ok(Some((self.line, &self.buffer[..end])));
            }
        }
    }

    /// The last line read (still in the buffer) followed by the rest of the stream, so a reader
    /// that needed to look at the first line can start over from it.
    pub fn rewind_last_line(self) -> Input {
        Box::new(BufReader::new(
            io::Cursor::new(self.buffer).chain(self.input),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(bytes: &[u8]) -> Vec<(u64, String)> {
        let mut reader = LineReader::new(decompressing(io::Cursor::new(bytes.to_vec())).unwrap());
        let mut out = Vec::new();
        while let Some((n, line)) = reader.next_nonblank().unwrap() {
            out.push((n, String::from_utf8(line.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        assert_eq!(
            lines(b"a\r\n\n  \nb\nc"),
            [
                (1, "a".to_string()),
                (4, "b".to_string()),
                (5, "c".to_string())
            ]
        );
    }

    #[test]
    fn gzip_is_detected_from_the_content() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"x\ny\n").unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(lines(&bytes), [(1, "x".to_string()), (2, "y".to_string())]);
    }

    #[test]
    fn rewinding_replays_the_last_line() {
        let mut reader =
            LineReader::new(decompressing(io::Cursor::new(b"h\nr1\n".to_vec())).unwrap());
        reader.next_nonblank().unwrap();
        let mut rest = String::new();
        reader.rewind_last_line().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "h\nr1\n");
    }
}
