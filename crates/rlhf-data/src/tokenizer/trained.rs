//! [`BpeTokenizer`]: a byte-level BPE model with its special tokens.

use super::bpe::BpeModel;
use super::pretokenize::split_gpt2;
use super::{EOS_TOKEN, PAD_TOKEN, Tokenizer, TokenizerError};
use std::path::Path;

/// A byte-level BPE tokenizer (GPT-2 pre-tokenizer, ranked merges) with EOS and PAD.
///
/// Usually trained with [`train_bpe`](super::train_bpe) and stored as `tokenizer.json`:
/// ```
/// use rlhf_data::tokenizer::{BpeTokenizer, BpeTrainerConfig, Tokenizer, train_bpe};
/// let corpus = ["Human: What is the capital of Avalor? Assistant: The capital of Avalor is Brin."];
/// let config = BpeTrainerConfig { vocab_size: 300, ..Default::default() };
/// let tokenizer = train_bpe(corpus.iter().copied(), &config)?;
/// let ids = tokenizer.encode("the capital of Avalor");
/// assert_eq!(tokenizer.decode(&ids)?, "the capital of Avalor");
/// let dir = std::env::temp_dir().join(format!("rlhf-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// tokenizer.save(dir.join("tokenizer.json"))?;
/// let loaded = BpeTokenizer::load(dir.join("tokenizer.json"))?;
/// assert_eq!(loaded.encode("the capital of Avalor"), ids);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), rlhf_data::tokenizer::TokenizerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BpeTokenizer {
    /// The vocabulary (special tokens included, holding their text) and merges.
    model: BpeModel,
    /// Ids of the special tokens, ascending.
    special_ids: Vec<u32>,
    /// Id of `<|endoftext|>`.
    eos_id: u32,
    /// Id of `<|pad|>`.
    pad_id: u32,
}

impl BpeTokenizer {
    /// Wraps a model whose vocabulary holds the special tokens `special_ids`, EOS and PAD among them.
    pub fn new(model: BpeModel, mut special_ids: Vec<u32>) -> Result<Self, TokenizerError> {
        special_ids.sort_unstable();
        special_ids.dedup();
        let find = |text: &str| {
            model
                .token_id(text.as_bytes())
                .filter(|id| special_ids.contains(id))
                .ok_or_else(|| TokenizerError::Invalid(format!("no special token {text:?}")))
        };
        let eos_id = find(EOS_TOKEN)?;
        let pad_id = find(PAD_TOKEN)?;
        if let Some(&bad) = special_ids
            .iter()
            .find(|&&id| model.token_bytes(id).is_none())
        {
            return Err(TokenizerError::UnknownId {
                id: bad,
                vocab_size: model.len(),
            });
        }
        Ok(Self {
            model,
            special_ids,
            eos_id,
            pad_id,
        })
    }

    /// The BPE model (vocabulary and merges).
    pub fn model(&self) -> &BpeModel {
        &self.model
    }

    /// Ids of the special tokens, ascending.
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    /// Loads a Hugging Face `tokenizer.json` (see [`hf_json`](super::hf_json)).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        super::hf_json::read_tokenizer_json(path.as_ref())
    }

    /// Saves as a Hugging Face `tokenizer.json`, written to a temporary name and renamed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TokenizerError> {
        super::hf_json::write_tokenizer_json(self, path.as_ref())
    }
}

impl Tokenizer for BpeTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        for piece in split_gpt2(text) {
            self.model.encode_piece(piece.as_bytes(), &mut ids);
        }
        ids
    }

    fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let token = self
                .model
                .token_bytes(id)
                .ok_or(TokenizerError::UnknownId {
                    id,
                    vocab_size: self.model.len(),
                })?;
            bytes.extend_from_slice(token);
        }
        Ok(bytes)
    }

    fn vocab_size(&self) -> usize {
        self.model.len()
    }

    fn eos_id(&self) -> u32 {
        self.eos_id
    }

    fn pad_id(&self) -> u32 {
        self.pad_id
    }

    fn is_special(&self, id: u32) -> bool {
        self.special_ids.binary_search(&id).is_ok()
    }

    fn special_tokens(&self) -> Vec<(u32, String)> {
        self.special_ids
            .iter()
            .map(|&id| {
                let bytes = self.model.token_bytes(id).unwrap_or_default();
                (id, String::from_utf8_lossy(bytes).into_owned())
            })
            .collect()
    }
}
