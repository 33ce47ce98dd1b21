//! GPT-2's pre-tokenizer: splits text into the pieces BPE runs on.
//!
//! The GPT-2 pattern is
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
//! The `regex` crate has no look-ahead, so [`Gpt2Splitter`] runs the pattern without the
//! `(?!\S)` alternative and applies it by hand: a whitespace run of two or more characters
//! that is followed by a non-space gives up its last character, which then starts the next piece
//! (as `" word"` when it is a space). This is exactly what backtracking does for `\s+(?!\S)`.
//! Hugging Face's `ByteLevel` pre-tokenizer (with `use_regex`) and tiktoken's `r50k_base` use the
//! same pattern, so the pieces agree with both.

use regex::Regex;
use std::sync::OnceLock;

/// The GPT-2 pattern less its look-ahead alternative (see the module docs).
const PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// The compiled pattern, built once.
fn pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // The pattern is a constant checked by the tests below, so compilation cannot fail.
    RE.get_or_init(|| Regex::new(PATTERN).expect("constant GPT-2 pattern compiles"))
}

/// Iterator over GPT-2 pre-tokenizer pieces of a text; the pieces concatenate to the text.
#[derive(Debug, Clone)]
pub struct Gpt2Splitter<'a> {
    text: &'a str,
    pos: usize,
}

/// Splits `text` into GPT-2 pre-tokenizer pieces.
pub fn split_gpt2(text: &str) -> Gpt2Splitter<'_> {
    Gpt2Splitter { text, pos: 0 }
}

impl<'a> Iterator for Gpt2Splitter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.pos >= self.text.len() {
            return None;
        }
        // Every character matches some alternative (the last one is `\s+`, the one before
        // it matches anything that is not a space), so a match starts at `pos`.
        let found = pattern().find_at(self.text, self.pos)?;
        let start = self.pos;
        let mut end = found.end();
        let piece = &self.text[start..end];
        if end < self.text.len() && piece.chars().all(char::is_whitespace) {
            // `\s+(?!\S)`: a run followed by a non-space keeps all but its last character.
            let mut chars = piece.char_indices();
            let last = chars.next_back().map(|(i, _)| i).unwrap_or(0);
            if last > 0 {
                end = start + last;
            }
        }
        self.pos = end;
        Some(&self.text[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        split_gpt2(text).collect()
    }

    #[test]
    fn words_keep_their_leading_space() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("I'm here"), ["I", "'m", " here"]);
        assert_eq!(pieces("it's 42!!"), ["it", "'s", " 42", "!!"]);
    }

    #[test]
    fn whitespace_runs_give_their_last_space_to_the_next_word() {
        assert_eq!(pieces("a   b"), ["a", "  ", " b"]);
        assert_eq!(pieces("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(pieces("a\nb"), ["a", "\n", "b"]);
        assert_eq!(pieces("a  "), ["a", "  "]);
        assert_eq!(pieces("  "), ["  "]);
    }

    #[test]
    fn empty_text_has_no_pieces() {
        assert!(pieces("").is_empty());
    }
}
