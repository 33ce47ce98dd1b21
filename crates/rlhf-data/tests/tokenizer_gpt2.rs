//! GPT-2 tokenizer: ids identical to tiktoken's `r50k_base`, round trips, and our GPT-2
//! pre-tokenizer against the reference pattern with look-ahead (fancy-regex).

use proptest::prelude::*;
use rlhf_data::tokenizer::pretokenize::split_gpt2;
use rlhf_data::tokenizer::{Gpt2Tokenizer, Tokenizer};
use std::sync::OnceLock;

fn gpt2() -> &'static Gpt2Tokenizer {
    static TOKENIZER: OnceLock<Gpt2Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| Gpt2Tokenizer::new().expect("embedded r50k_base loads"))
}

/// Ids published in tiktoken's own tests and documentation for the `gpt2` / `r50k_base` encoding.
#[test]
fn known_r50k_ids() {
    let cases: &[(&str, &[u32])] = &[
        ("Hello world", &[15496, 995]),
        ("hello world", &[31373, 995]),
        ("Hello, world!", &[15496, 11, 995, 0]),
        ("hello ", &[31373, 220]),
        ("0", &[15]),
        ("00", &[405]),
        ("000", &[830]),
        ("0000", &[2388]),
        ("00000", &[20483]),
        ("000000", &[10535]),
        ("0000000", &[24598]),
        ("00000000", &[8269]),
        ("000000000", &[10535, 830]),
        ("0000000000", &[8269, 405]),
        ("0000000000000000", &[25645]),
        ("00000000000000000", &[8269, 10535, 830]),
        ("", &[]),
    ];
    for (text, ids) in cases {
        assert_eq!(gpt2().encode(text), *ids, "encoding {text:?}");
        assert_eq!(gpt2().decode(ids).unwrap(), *text);
    }
}

#[test]
fn special_tokens_are_distinct_and_not_parsed_from_text() {
    let tok = gpt2();
    assert_eq!(
        (tok.eos_id(), tok.pad_id(), tok.vocab_size()),
        (50256, 50257, 50258)
    );
    assert_eq!(tok.decode(&[50256]).unwrap(), "<|endoftext|>");
    assert_eq!(
        tok.decode(&[31373, 50257, 50257]).unwrap(),
        "hello<|pad|><|pad|>"
    );
    assert_eq!(
        tok.decode_skip_special(&[31373, 50256, 50257, 995])
            .unwrap(),
        "hello world"
    );
    let ids = tok.encode("hello <|endoftext|>");
    assert_eq!(&ids[..2], &[31373, 1279]);
    assert!(!ids.contains(&50256));
    assert!(tok.decode(&[50258]).is_err());
    // tiktoken: encode("hello <|endoftext|>", allowed_special="all") == [31373, 220, 50256].
    assert_eq!(
        tok.encode_with_special("hello <|endoftext|>"),
        vec![31373, 220, 50256]
    );
    assert_eq!(tok.encode_with_special("<|pad|>hello"), vec![50257, 31373]);
}

#[test]
fn long_repetitive_inputs_round_trip() {
    for unit in ["^", "0", "a", "'s", " ", "\n"] {
        let text = format!(" {}\n", unit.repeat(5_000));
        assert_eq!(gpt2().decode(&gpt2().encode(&text)).unwrap(), text);
    }
}

/// The GPT-2 pattern with its look-ahead, as tiktoken writes it for `r50k_base`.
fn reference_pieces(text: &str) -> Vec<String> {
    static RE: OnceLock<fancy_regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        fancy_regex::Regex::new(
            r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        )
        .unwrap()
    });
    re.find_iter(text)
        .map(|m| m.unwrap().as_str().to_string())
        .collect()
}

/// Text that exercises the pre-tokenizer: letters, digits, apostrophes, mixed whitespace, symbols.
fn gpt2_like_text() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("\u{a0}".to_string()),
        Just("'s".to_string()),
        Just("'ll".to_string()),
        Just("'".to_string()),
        "[a-zA-Z]{1,6}",
        "[0-9]{1,4}",
        "[!-/:-@]{1,3}",
        "[ä-ü]{1,3}",
        "\\PC{1,3}",
    ];
    prop::collection::vec(atom, 0..24).prop_map(|atoms| atoms.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn gpt2_round_trips_arbitrary_strings(text in any::<String>()) {
        prop_assert_eq!(gpt2().decode(&gpt2().encode(&text)).unwrap(), text);
    }

    #[test]
    fn gpt2_round_trips_structured_text(text in gpt2_like_text()) {
        prop_assert_eq!(gpt2().decode(&gpt2().encode(&text)).unwrap(), text);
    }

    #[test]
    fn splitter_matches_the_look_ahead_pattern(text in gpt2_like_text()) {
        let ours: Vec<String> = split_gpt2(&text).map(str::to_string).collect();
        prop_assert_eq!(ours, reference_pieces(&text));
    }

    #[test]
    fn splitter_matches_on_arbitrary_strings(text in any::<String>()) {
        let ours: Vec<String> = split_gpt2(&text).map(str::to_string).collect();
        prop_assert_eq!(ours, reference_pieces(&text));
    }
}
