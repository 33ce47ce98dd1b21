//! GPT-2's tokenizer: tiktoken's `r50k_base`, with an added PAD token.

use super::{EOS_TOKEN, PAD_TOKEN, Tokenizer, TokenizerError};
use std::sync::Arc;
use tiktoken_rs::CoreBPE;

/// GPT-2's end-of-text id in `r50k_base`.
pub const GPT2_EOS_ID: u32 = 50256;
/// Our PAD id: one past GPT-2's vocabulary.
pub const GPT2_PAD_ID: u32 = 50257;

/// GPT-2 byte-level BPE with ids identical to tiktoken's `r50k_base`, plus PAD (id 50257).
///
/// tiktoken-rs merges each pre-tokenized piece by repeated scans, so a single piece (a run of
/// letters, digits or symbols with no space) costs time quadratic in its length: fine for text,
/// slow for a megabyte without spaces.
///
/// ```
/// use rlhf_data::tokenizer::{Gpt2Tokenizer, Tokenizer};
/// let gpt2 = Gpt2Tokenizer::new()?;
/// assert_eq!(gpt2.encode("Hello world"), vec![15496, 995]);
/// assert_eq!(gpt2.decode(&[15496, 995])?, "Hello world");
/// # Ok::<(), rlhf_data::tokenizer::TokenizerError>(())
/// ```
#[derive(Clone)]
pub struct Gpt2Tokenizer {
    bpe: Arc<CoreBPE>,
}

impl std::fmt::Debug for Gpt2Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt2Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Gpt2Tokenizer {
    /// Loads the embedded `r50k_base` ranks (about 50 ms).
    pub fn new() -> Result<Self, TokenizerError> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| TokenizerError::Gpt2(e.to_string()))?;
        Ok(Self { bpe: Arc::new(bpe) })
    }
}

impl Tokenizer for Gpt2Tokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        // Decode runs between PAD tokens with tiktoken; PAD is ours, so render it here.
        for run in ids.split_inclusive(|&id| id == GPT2_PAD_ID) {
            let (body, pad) = match run.split_last() {
                Some((&GPT2_PAD_ID, body)) => (body, true),
                _ => (run, false),
            };
            let decoded = self
                .bpe
                .decode_bytes(body)
                .map_err(|e| TokenizerError::UnknownId {
                    id: e.token,
                    vocab_size: self.vocab_size(),
                })?;
            bytes.extend_from_slice(&decoded);
            if pad {
                bytes.extend_from_slice(PAD_TOKEN.as_bytes());
            }
        }
        Ok(bytes)
    }

    fn vocab_size(&self) -> usize {
        GPT2_PAD_ID as usize + 1
    }

    fn eos_id(&self) -> u32 {
        GPT2_EOS_ID
    }

    fn pad_id(&self) -> u32 {
        GPT2_PAD_ID
    }

    fn is_special(&self, id: u32) -> bool {
        id == GPT2_EOS_ID || id == GPT2_PAD_ID
    }

    fn special_tokens(&self) -> Vec<(u32, String)> {
        vec![
            (GPT2_EOS_ID, EOS_TOKEN.to_string()),
            (GPT2_PAD_ID, PAD_TOKEN.to_string()),
        ]
    }
}
