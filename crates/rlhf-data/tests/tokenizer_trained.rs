//! Trained byte-level BPE: round trips, special tokens, and `tokenizer.json` files.

use proptest::prelude::*;
use rlhf_data::tokenizer::{
    AnyTokenizer, BpeTokenizer, BpeTrainerConfig, PAD_TOKEN, Tokenizer, TokenizerError, train_bpe,
};
use std::sync::OnceLock;

fn corpus() -> String {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "Human: What is the capital of Zorbia{i}?\n\nAssistant: The capital of Zorbia{i} is Quell.\n\
             Human: What is {} plus {}?\n\nAssistant: {}.\n",
            i % 17,
            i % 13,
            i % 17 + i % 13
        ));
    }
    text
}

fn trained() -> &'static BpeTokenizer {
    static TOKENIZER: OnceLock<BpeTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let config = BpeTrainerConfig {
            vocab_size: 400,
            min_frequency: 2,
        };
        train_bpe([corpus().as_str()], &config).unwrap()
    })
}

#[test]
fn training_reaches_the_requested_size_and_compresses() {
    let tok = trained();
    assert_eq!(tok.vocab_size(), 400);
    let text = "Human: What is the capital of Zorbia3?";
    let ids = tok.encode(text);
    assert!(
        ids.len() * 3 < text.len(),
        "{} ids for {} bytes",
        ids.len(),
        text.len()
    );
    assert_ne!(tok.eos_id(), tok.pad_id());
    assert!(tok.is_special(tok.eos_id()) && tok.is_special(tok.pad_id()));
    assert!(!ids.iter().any(|&id| tok.is_special(id)));
}

#[test]
fn pad_text_in_input_is_not_the_pad_token() {
    let tok = trained();
    let ids = tok.encode(PAD_TOKEN);
    assert!(!ids.contains(&tok.pad_id()));
    assert_eq!(tok.decode(&ids).unwrap(), PAD_TOKEN);
}

#[test]
fn special_text_maps_to_special_ids_on_request() {
    let tok = trained();
    let ids = tok.encode_with_special("<|endoftext|> hi<|pad|>");
    assert_eq!(ids[0], tok.eos_id());
    assert_eq!(*ids.last().unwrap(), tok.pad_id());
    assert_eq!(&ids[1..ids.len() - 1], tok.encode(" hi").as_slice());
    assert_eq!(tok.decode(&ids).unwrap(), "<|endoftext|> hi<|pad|>");
}

#[test]
fn save_and_load_through_a_file() {
    let dir = std::env::temp_dir().join(format!("rlhf-tok-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokenizer.json");
    trained().save(&path).unwrap();
    let loaded = BpeTokenizer::load(&path).unwrap();
    let text = corpus();
    assert_eq!(loaded.encode(&text), trained().encode(&text));
    assert_eq!(loaded.eos_id(), trained().eos_id());
    let missing = BpeTokenizer::load(dir.join("absent.json")).unwrap_err();
    assert!(matches!(missing, TokenizerError::Io { .. }));
    assert!(missing.to_string().contains("absent.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn any_tokenizer_dispatches() {
    let any = AnyTokenizer::Bpe(trained().clone());
    assert_eq!(any.encode("Human:"), trained().encode("Human:"));
    assert_eq!(any.pad_id(), trained().pad_id());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn trained_round_trips_arbitrary_strings(text in any::<String>()) {
        prop_assert_eq!(trained().decode(&trained().encode(&text)).unwrap(), text);
    }

    #[test]
    fn encode_with_special_round_trips(parts in prop::collection::vec(prop_oneof![
        Just("<|endoftext|>".to_string()), Just("<|pad|>".to_string()), any::<String>()], 0..6)) {
        let text = parts.concat();
        let tok = trained();
        prop_assert_eq!(tok.decode(&tok.encode_with_special(&text)).unwrap(), text);
    }

    #[test]
    fn decoding_arbitrary_ids_never_panics(ids in prop::collection::vec(0u32..500, 0..40)) {
        let tok = trained();
        let result = tok.decode(&ids);
        prop_assert_eq!(result.is_ok(), ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
    }

    #[test]
    fn loading_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let path = std::path::Path::new("fuzz.json");
        prop_assert!(rlhf_data::tokenizer::hf_json::parse_tokenizer_json(&text, path).is_err());
    }
}
