//! GPT-2's reversible map between bytes and printable characters.
//!
//! Byte-level BPE works on bytes, but `tokenizer.json` stores tokens as strings. GPT-2 maps every
//! byte to a printable Unicode character: the 188 bytes that are already printable (`!`..=`~`,
//! `¡`..=`¬`, `®`..=`ÿ`) map to themselves, the other 68 to U+0100 and up, in byte order. So the
//! space byte becomes `Ġ` (U+0120) and the newline `Ċ` (U+010A).

use std::sync::OnceLock;

/// Whether `byte` is one of the printable bytes GPT-2 keeps as its own character.
fn is_printable(byte: u8) -> bool {
    matches!(byte, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The byte -> character table, built once.
fn byte_to_char_table() -> &'static [char; 256] {
    static TABLE: OnceLock<[char; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut next_extra = 256u32;
        for byte in 0..=255u8 {
            table[byte as usize] = if is_printable(byte) {
                char::from(byte)
            } else {
                let c = char::from_u32(next_extra).unwrap_or('\u{FFFD}');
                next_extra += 1;
                c
            };
        }
        table
    })
}

/// The printable character that stands for `byte`.
pub fn byte_to_char(byte: u8) -> char {
    byte_to_char_table()[byte as usize]
}

/// The byte that `c` stands for, or `None` if `c` is not in the table.
pub fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if code < 256 {
        let byte = code as u8;
        return is_printable(byte).then_some(byte);
    }
    // The 68 non-printable bytes map to U+0100..U+0143 in byte order.
    let index = code.checked_sub(256)? as usize;
    (0..=255u8).filter(|&b| !is_printable(b)).nth(index)
}

/// Encodes bytes as their byte-level string (the form `tokenizer.json` stores).
pub fn bytes_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// Decodes a byte-level string back to bytes; `None` if a character is outside the table.
pub fn string_to_bytes(text: &str) -> Option<Vec<u8>> {
    text.chars().map(char_to_byte).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_characters() {
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'a'), 'a');
        assert_eq!(byte_to_char(0), '\u{100}');
        assert_eq!(byte_to_char(0xAD), '\u{143}');
    }

    #[test]
    fn table_is_a_bijection() {
        let mut seen = std::collections::HashSet::new();
        for byte in 0..=255u8 {
            let c = byte_to_char(byte);
            assert!(seen.insert(c), "character {c:?} used twice");
            assert_eq!(char_to_byte(c), Some(byte));
        }
        assert_eq!(char_to_byte('\u{144}'), None);
        assert_eq!(char_to_byte(' '), None);
    }
}
