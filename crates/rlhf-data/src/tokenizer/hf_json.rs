//! Hugging Face `tokenizer.json` for byte-level BPE: read and write.
//!
//! Written files have `model.type = "BPE"`, the vocabulary as byte-level strings (see
//! [`byte_level`](super::byte_level)), merges as `"left right"` strings, a `ByteLevel`
//! pre-tokenizer (`add_prefix_space: false`, `use_regex: true`), `ByteLevel` post-processor and
//! decoder, and EOS/PAD in `added_tokens` with `special: true`; Python's `tokenizers` and
//! `transformers` (`PreTrainedTokenizerFast(tokenizer_file=...)`) load them. Reading accepts the
//! same shape, merges as strings or as `[left, right]` pairs (newer `tokenizers`), and GPT-2's own
//! file; a file without `<|pad|>` gets it appended as the next id.

use super::bpe::{BpeModel, Merge};
use super::byte_level::{bytes_to_string, string_to_bytes};
use super::trained::BpeTokenizer;
use super::{EOS_TOKEN, PAD_TOKEN, Tokenizer, TokenizerError};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Reads a `tokenizer.json` file.
pub fn read_tokenizer_json(path: &Path) -> Result<BpeTokenizer, TokenizerError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_tokenizer_json(&text, path)
}

/// Parses the text of a `tokenizer.json`; `path` is only used in error messages.
pub fn parse_tokenizer_json(text: &str, path: &Path) -> Result<BpeTokenizer, TokenizerError> {
    let root: Value = serde_json::from_str(text).map_err(|e| TokenizerError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let field_error = |field: &str, expected: &str| TokenizerError::Field {
        path: path.to_path_buf(),
        field: field.to_string(),
        expected: expected.to_string(),
    };
    let root = root
        .as_object()
        .ok_or_else(|| field_error("(root)", "a JSON object"))?;
    check_pre_tokenizer(root.get("pre_tokenizer"), &field_error)?;

    let model = root
        .get("model")
        .and_then(Value::as_object)
        .ok_or_else(|| field_error("model", "an object"))?;
    if let Some(kind) = model.get("type")
        && kind.as_str() != Some("BPE")
    {
        return Err(field_error("model.type", "\"BPE\""));
    }

    // Added tokens: id -> content, and which are special.
    let mut added: Vec<(u32, String, bool)> = Vec::new();
    if let Some(list) = root.get("added_tokens").filter(|v| !v.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| field_error("added_tokens", "an array"))?;
        for (i, entry) in list.iter().enumerate() {
            let id = entry
                .get("id")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok());
            let content = entry.get("content").and_then(Value::as_str);
            let (Some(id), Some(content)) = (id, content) else {
                return Err(field_error(
                    &format!("added_tokens[{i}]"),
                    "an object with an integer `id` and a string `content`",
                ));
            };
            let special = entry
                .get("special")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            added.push((id, content.to_string(), special));
        }
    }

    // Vocabulary: byte-level string -> id, into id -> bytes.
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| field_error("model.vocab", "an object of token -> id"))?;
    let mut slots: Vec<Option<Vec<u8>>> = Vec::new();
    let mut by_string: HashMap<&str, u32> = HashMap::with_capacity(vocab.len());
    let mut place = |id: u32, bytes: Vec<u8>, field: &str| -> Result<(), TokenizerError> {
        let index = id as usize;
        if index >= slots.len() {
            slots.resize(index + 1, None);
        }
        match &slots[index] {
            Some(existing) if *existing != bytes => Err(field_error(
                field,
                &format!("id {id} to be used by one token only"),
            )),
            _ => {
                slots[index] = Some(bytes);
                Ok(())
            }
        }
    };
    for (token, id) in vocab {
        let field = format!("model.vocab[{token:?}]");
        let id = id
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| field_error(&field, "a non-negative integer id"))?;
        let bytes = match added.iter().find(|(_, content, _)| content == token) {
            Some((_, content, _)) => content.as_bytes().to_vec(),
            None => string_to_bytes(token).ok_or_else(|| {
                field_error(
                    &field,
                    "a byte-level token (characters of GPT-2's byte map)",
                )
            })?,
        };
        place(id, bytes, &field)?;
        by_string.insert(token.as_str(), id);
    }
    for (i, (id, content, _)) in added.iter().enumerate() {
        place(
            *id,
            content.as_bytes().to_vec(),
            &format!("added_tokens[{i}]"),
        )?;
    }
    let mut special_ids: Vec<u32> = added
        .iter()
        .filter(|(_, _, special)| *special)
        .map(|(id, _, _)| *id)
        .collect();
    if !added.iter().any(|(_, content, _)| content == PAD_TOKEN) {
        special_ids.push(slots.len() as u32);
        slots.push(Some(PAD_TOKEN.as_bytes().to_vec()));
    }
    if !added.iter().any(|(_, content, _)| content == EOS_TOKEN) {
        return Err(field_error(
            "added_tokens",
            &format!("an entry with content {EOS_TOKEN:?}"),
        ));
    }
    let tokens = slots
        .into_iter()
        .enumerate()
        .map(|(id, slot)| {
            slot.ok_or_else(|| {
                field_error(
                    "model.vocab",
                    &format!("an entry with id {id} (ids must be 0..n)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let merges = parse_merges(model.get("merges"), &by_string, &tokens, &field_error)?;
    let model = BpeModel::new(tokens, merges)
        .map_err(|e| field_error("model", &format!("a consistent BPE model ({e})")))?;
    BpeTokenizer::new(model, special_ids)
        .map_err(|e| field_error("added_tokens", &format!("usable special tokens ({e})")))
}

/// Checks that the pre-tokenizer is GPT-2's `ByteLevel` split without a prefix space.
fn check_pre_tokenizer(
    value: Option<&Value>,
    field_error: &dyn Fn(&str, &str) -> TokenizerError,
) -> Result<(), TokenizerError> {
    let expected = "a ByteLevel pre-tokenizer with use_regex true and add_prefix_space false";
    let value = value.ok_or_else(|| field_error("pre_tokenizer", expected))?;
    if value.get("type").and_then(Value::as_str) != Some("ByteLevel")
        || value.get("use_regex").and_then(Value::as_bool) == Some(false)
        || value.get("add_prefix_space").and_then(Value::as_bool) == Some(true)
    {
        return Err(field_error("pre_tokenizer", expected));
    }
    Ok(())
}

/// Parses `model.merges`: `"left right"` strings or `[left, right]` pairs.
fn parse_merges(
    value: Option<&Value>,
    by_string: &HashMap<&str, u32>,
    tokens: &[Vec<u8>],
    field_error: &dyn Fn(&str, &str) -> TokenizerError,
) -> Result<Vec<Merge>, TokenizerError> {
    let list = value
        .and_then(Value::as_array)
        .ok_or_else(|| field_error("model.merges", "an array of merges"))?;
    let by_bytes: HashMap<&[u8], u32> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.as_slice(), id as u32))
        .collect();
    let mut merges = Vec::with_capacity(list.len());
    for (rank, entry) in list.iter().enumerate() {
        let field = format!("model.merges[{rank}]");
        let parts: Option<(&str, &str)> = match entry {
            Value::String(s) => s.split_once(' ').filter(|(_, r)| !r.contains(' ')),
            Value::Array(pair) if pair.len() == 2 => pair[0].as_str().zip(pair[1].as_str()),
            _ => None,
        };
        let (left, right) = parts.ok_or_else(|| {
            field_error(
                &field,
                "a string \"left right\" or a pair [\"left\", \"right\"]",
            )
        })?;
        let id_of = |s: &str| {
            by_string
                .get(s)
                .copied()
                .ok_or_else(|| field_error(&field, &format!("{s:?} to be in model.vocab")))
        };
        let (left, right) = (id_of(left)?, id_of(right)?);
        let mut joined = tokens[left as usize].clone();
        joined.extend_from_slice(&tokens[right as usize]);
        let merged = *by_bytes
            .get(joined.as_slice())
            .ok_or_else(|| field_error(&field, "the merged token to be in model.vocab"))?;
        merges.push(Merge {
            left,
            right,
            merged,
        });
    }
    Ok(merges)
}

/// The `tokenizer.json` value of `tokenizer`.
pub fn tokenizer_json(tokenizer: &BpeTokenizer) -> Value {
    let model = tokenizer.model();
    let is_special = |id: u32| tokenizer.is_special(id);
    let token_string = |id: u32| {
        let bytes = model.token_bytes(id).unwrap_or_default();
        if is_special(id) {
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            bytes_to_string(bytes)
        }
    };
    let vocab: Map<String, Value> = (0..model.len() as u32)
        .map(|id| (token_string(id), json!(id)))
        .collect();
    let merges: Vec<Value> = model
        .merges()
        .iter()
        .map(|m| {
            json!(format!(
                "{} {}",
                token_string(m.left),
                token_string(m.right)
            ))
        })
        .collect();
    let added_tokens: Vec<Value> = tokenizer
        .special_ids()
        .iter()
        .map(|&id| {
            json!({
                "id": id, "content": token_string(id), "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            })
        })
        .collect();
    let byte_level = |add_prefix_space: bool, trim_offsets: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": add_prefix_space,
               "trim_offsets": trim_offsets, "use_regex": true})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": byte_level(false, true),
        "post_processor": byte_level(true, false),
        "decoder": byte_level(true, true),
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    })
}

/// Writes `tokenizer` as `tokenizer.json` to `path` (via a temporary file and a rename).
pub fn write_tokenizer_json(tokenizer: &BpeTokenizer, path: &Path) -> Result<(), TokenizerError> {
    let io = |source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string_pretty(&tokenizer_json(tokenizer))
        .map_err(|e| io(std::io::Error::other(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{BpeTrainerConfig, train_bpe};

    fn small() -> BpeTokenizer {
        let text = "Human: hi there. Assistant: hello there, human!\n".repeat(5);
        train_bpe(
            [text.as_str()],
            &BpeTrainerConfig {
                vocab_size: 290,
                min_frequency: 2,
            },
        )
        .unwrap()
    }

    #[test]
    fn json_round_trip_keeps_ids() {
        let tok = small();
        let text = serde_json::to_string(&tokenizer_json(&tok)).unwrap();
        let back = parse_tokenizer_json(&text, Path::new("t.json")).unwrap();
        assert_eq!(back.model().merges(), tok.model().merges());
        assert_eq!(back.vocab_size(), tok.vocab_size());
        assert_eq!((back.eos_id(), back.pad_id()), (0, 1));
        let s = "Human: hello there!\n\tünïcødé 😀";
        assert_eq!(back.encode(s), tok.encode(s));
    }

    #[test]
    fn written_file_has_hugging_face_fields() {
        let value = tokenizer_json(&small());
        assert_eq!(value["model"]["type"], "BPE");
        assert_eq!(value["model"]["vocab"]["Ġ"], 2 + 32);
        assert_eq!(value["added_tokens"][0]["content"], EOS_TOKEN);
        assert_eq!(value["added_tokens"][1]["content"], PAD_TOKEN);
        assert_eq!(value["pre_tokenizer"]["type"], "ByteLevel");
        assert!(value["model"]["merges"][0].as_str().unwrap().contains(' '));
    }

    #[test]
    fn errors_name_the_field() {
        let mut value = tokenizer_json(&small());
        value["model"]["merges"][2] = json!("Ġ");
        let err = parse_tokenizer_json(&value.to_string(), Path::new("t.json")).unwrap_err();
        assert!(err.to_string().contains("model.merges[2]"), "{err}");

        let err = parse_tokenizer_json("{\"model\": [", Path::new("t.json")).unwrap_err();
        assert!(matches!(err, TokenizerError::Json { line: 1, .. }), "{err}");

        let mut value = tokenizer_json(&small());
        value["pre_tokenizer"] = json!({"type": "Whitespace"});
        let err = parse_tokenizer_json(&value.to_string(), Path::new("t.json")).unwrap_err();
        assert!(err.to_string().contains("pre_tokenizer"), "{err}");
    }

    #[test]
    fn merges_as_pairs_are_accepted_and_missing_pad_is_added() {
        let mut value = tokenizer_json(&small());
        let merges: Vec<Value> = value["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let (l, r) = m.as_str().unwrap().split_once(' ').unwrap();
                json!([l, r])
            })
            .collect();
        value["model"]["merges"] = json!(merges);
        // Drop PAD (id 1) and renumber: move the last token into its slot.
        let tok = small();
        let added = value["added_tokens"].as_array_mut().unwrap();
        added.truncate(1);
        let vocab = value["model"]["vocab"].as_object_mut().unwrap();
        vocab.remove(PAD_TOKEN);
        let last = tok.vocab_size() as u64 - 1;
        let last_key = vocab
            .iter()
            .find(|(_, v)| v.as_u64() == Some(last))
            .unwrap()
            .0
            .clone();
        vocab.insert(last_key, json!(1));
        let back = parse_tokenizer_json(&value.to_string(), Path::new("t.json")).unwrap();
        assert_eq!(back.pad_id(), last as u32);
        assert_eq!(back.vocab_size(), tok.vocab_size());
        let ids = back.encode("hello there");
        assert_eq!(back.decode(&ids).unwrap(), "hello there");
    }
}
