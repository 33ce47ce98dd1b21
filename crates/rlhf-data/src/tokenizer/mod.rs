//! Tokenizers: GPT-2's byte-level BPE (ids identical to tiktoken's `r50k_base`) and a small
//! byte-level BPE trained on a corpus, saved and loaded as a Hugging Face `tokenizer.json`.
//!
//! Both implement [`Tokenizer`], so callers do not care which one they hold; [`AnyTokenizer`]
//! holds either by value. EOS (`<|endoftext|>`) and PAD (`<|pad|>`) are distinct special tokens
//! in both. [`Tokenizer::encode`] treats its input as ordinary text: a literal `<|endoftext|>` in
//! user text is encoded as text, never as the special id (callers append EOS explicitly).
//!
//! ## Dependencies
//! - GPT-2 uses the `tiktoken-rs` crate: it embeds OpenAI's `r50k_base` ranks (GPT-2's
//!   vocabulary) and is the Rust port of tiktoken's own encoder, so the ids are tiktoken's by
//!   construction and nothing is downloaded at run time. GPT-2 has no PAD token; ours is id 50257,
//!   one past `<|endoftext|>` (50256), so the vocabulary is 50258.
//! - The trained BPE is our own code ([`bpe`], [`train`], [`hf_json`]) over the `regex` crate for
//!   GPT-2's pre-tokenizer pattern. The `tokenizers` crate would bring a large dependency tree
//!   (onig or fancy-regex, rayon, esaxx, ...) for what is a few hundred lines here.
//!
//! ## Parts
//! - [`byte_level`]: GPT-2's byte <-> printable character map used by `tokenizer.json`.
//! - [`pretokenize`]: GPT-2's pre-tokenizer (the regex split).
//! - [`bpe`]: the BPE model (vocabulary and ranked merges) and its encoder.
//! - [`train`]: BPE training with incrementally updated pair counts.
//! - [`hf_json`]: reading and writing Hugging Face `tokenizer.json`.
//! - [`gpt2`]: the `r50k_base` tokenizer.
//! - [`trained`]: [`BpeTokenizer`], the trained tokenizer with its special tokens.

pub mod bpe;
pub mod byte_level;
pub mod gpt2;
pub mod hf_json;
pub mod pretokenize;
pub mod train;
pub mod trained;

pub use gpt2::Gpt2Tokenizer;
pub use train::{BpeTrainerConfig, train_bpe};
pub use trained::BpeTokenizer;

use std::path::PathBuf;

/// Text of the end-of-text special token (GPT-2's).
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// Text of the padding special token.
pub const PAD_TOKEN: &str = "<|pad|>";

/// Errors of tokenizer construction, loading, saving and decoding.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `tokenizer.json` is not valid JSON.
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A `tokenizer.json` field is missing or has the wrong value.
    #[error("{path}: field `{field}`: expected {expected}")]
    Field {
        /// The file.
        path: PathBuf,
        /// Dotted path of the field, e.g. `model.merges[3]`.
        field: String,
        /// What was expected there.
        expected: String,
    },
    /// A vocabulary or merge table is inconsistent.
    #[error("invalid BPE model: {0}")]
    Invalid(String),
    /// A token id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    UnknownId {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The embedded GPT-2 ranks could not be loaded.
    #[error("loading the embedded r50k_base ranks: {0}")]
    Gpt2(String),
}

/// A text tokenizer with distinct EOS and PAD tokens.
pub trait Tokenizer: Send + Sync + std::fmt::Debug {
    /// Encodes ordinary text (special-token text is encoded as text).
    fn encode(&self, text: &str) -> Vec<u32>;

    /// The bytes of `ids` concatenated; special tokens give their text.
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError>;

    /// Number of token ids (including the special tokens).
    fn vocab_size(&self) -> usize;

    /// Id of the end-of-text token.
    fn eos_id(&self) -> u32;

    /// Id of the padding token.
    fn pad_id(&self) -> u32;

    /// Whether `id` is a special token (EOS, PAD or another added token).
    fn is_special(&self, id: u32) -> bool;

    /// The special tokens as (id, text), e.g. `(eos_id, "<|endoftext|>")`.
    fn special_tokens(&self) -> Vec<(u32, String)>;

    /// Encodes text in which special-token text stands for the special token (as Hugging Face
    /// `tokenizers` does by default); the text between them is encoded as ordinary text.
    fn encode_with_special(&self, text: &str) -> Vec<u32> {
        let specials = self.special_tokens();
        let mut ids = Vec::new();
        let mut rest = text;
        loop {
            // The leftmost special token, the longest one on a tie.
            let next = specials
                .iter()
                .filter_map(|(id, s)| {
                    rest.find(s.as_str())
                        .map(|at| (at, std::cmp::Reverse(s.len()), *id))
                })
                .min();
            let Some((at, std::cmp::Reverse(len), id)) =
                next.filter(|&(_, std::cmp::Reverse(len), _)| len > 0)
            else {
                ids.extend(self.encode(rest));
                return ids;
            };
            ids.extend(self.encode(&rest[..at]));
            ids.push(id);
            rest = &rest[at + len..];
        }
    }

    /// Decodes `ids` to text; invalid UTF-8 (a split multi-byte character) becomes U+FFFD.
    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }

    /// Decodes `ids` to text, leaving out special tokens (e.g. EOS and PAD in model output).
    fn decode_skip_special(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let kept: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| !self.is_special(id))
            .collect();
        self.decode(&kept)
    }
}

/// Either tokenizer, by value.
#[derive(Debug, Clone)]
pub enum AnyTokenizer {
    /// GPT-2 / `r50k_base`.
    Gpt2(Gpt2Tokenizer),
    /// A byte-level BPE trained on a corpus.
    Bpe(BpeTokenizer),
}

impl AnyTokenizer {
    /// The tokenizer as a trait object.
    pub fn as_dyn(&self) -> &dyn Tokenizer {
        match self {
            AnyTokenizer::Gpt2(t) => t,
            AnyTokenizer::Bpe(t) => t,
        }
    }
}

impl Tokenizer for AnyTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.as_dyn().encode(text)
    }
    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        self.as_dyn().decode_bytes(ids)
    }
    fn vocab_size(&self) -> usize {
        self.as_dyn().vocab_size()
    }
    fn eos_id(&self) -> u32 {
        self.as_dyn().eos_id()
    }
    fn pad_id(&self) -> u32 {
        self.as_dyn().pad_id()
    }
    fn is_special(&self, id: u32) -> bool {
        self.as_dyn().is_special(id)
    }
    fn special_tokens(&self) -> Vec<(u32, String)> {
        self.as_dyn().special_tokens()
    }
}
