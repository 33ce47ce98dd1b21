//! The default run's tokenizer: a byte-level BPE trained on the world's corpus.

use rlhf_data::batching::sft_batch;
use rlhf_data::tokenizer::{BpeTrainerConfig, Tokenizer, train_bpe};
use rlhf_data::world::{World, WorldConfig};

#[test]
fn bpe_trained_on_the_world_corpus_round_trips_and_compresses() {
    let world = World::new(WorldConfig {
        seed: 4,
        ..WorldConfig::default()
    })
    .unwrap();
    let config = BpeTrainerConfig {
        vocab_size: 768,
        min_frequency: 2,
    };
    let tok = train_bpe(world.corpus_texts(), &config).unwrap();
    assert_eq!(tok.vocab_size(), 768);
    let (mut bytes, mut tokens) = (0usize, 0usize);
    for text in world.corpus_texts() {
        let ids = tok.encode(text);
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert!(!ids.iter().any(|&id| tok.is_special(id)));
        bytes += text.len();
        tokens += ids.len();
    }
    // Templated text compresses well: at least 3 bytes per token at this vocabulary.
    assert!(
        bytes as f64 / tokens as f64 > 3.0,
        "{bytes} bytes, {tokens} tokens"
    );

    // Held-out prompts (unseen entity names) still round trip, through the byte fallback.
    for prompt in &world.eval_prompts {
        let text = prompt.render();
        assert_eq!(tok.decode(&tok.encode(&text)).unwrap(), text);
    }

    // Demonstrations become an SFT batch with a response-only loss mask.
    let examples: Vec<(Vec<u32>, Vec<u32>)> = world
        .demonstrations
        .iter()
        .take(8)
        .map(|d| {
            (
                tok.encode(&d.prompt.render()),
                tok.encode(&format!(" {}", d.response)),
            )
        })
        .collect();
    let batch = sft_batch(&examples, tok.pad_id(), Some(tok.eos_id()), None).unwrap();
    let masked: usize = batch.loss_mask.iter().filter(|&&m| m).count();
    let response_tokens: usize = examples.iter().map(|(_, r)| r.len() + 1).sum();
    assert_eq!(masked, response_tokens);
}
