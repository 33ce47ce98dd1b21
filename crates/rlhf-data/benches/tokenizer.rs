//! Tokenizer benchmarks on the synthetic world's corpus (default `WorldConfig`, seed 0):
//! BPE training (vocabulary 1024), trained-BPE encoding, and GPT-2 (`r50k_base`) encoding.
//!
//! Setup writes the trained `tokenizer.json`, the corpus (one JSON string per line) and our ids
//! to `$TMPDIR/rlhf-data-tokenizer-bench/`, where `benches/hf_tokenizers_peer.py` checks that
//! Hugging Face `tokenizers` loads the file and gives the same ids, and times the same work.
//!
//! Run: `cargo bench -p rlhf-data --bench tokenizer`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlhf_data::tokenizer::{BpeTrainerConfig, Gpt2Tokenizer, Tokenizer, train_bpe};
use rlhf_data::world::{World, WorldConfig};
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let world = World::new(WorldConfig::default()).expect("default world");
    let texts: Vec<&str> = world.corpus_texts().collect();
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let config = BpeTrainerConfig {
        vocab_size: 1024,
        min_frequency: 2,
    };
    let trained = train_bpe(texts.iter().copied(), &config).expect("training");

    // Artifacts for the Python peer.
    let dir = std::env::temp_dir().join("rlhf-data-tokenizer-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    trained
        .save(dir.join("tokenizer.json"))
        .expect("save tokenizer.json");
    let corpus: Vec<String> = texts
        .iter()
        .map(|t| serde_json::to_string(t).expect("json"))
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus.join("\n")).expect("corpus");
    let ids: Vec<String> = texts
        .iter()
        .map(|t| serde_json::to_string(&trained.encode(t)).expect("json"))
        .collect();
    std::fs::write(dir.join("ids.jsonl"), ids.join("\n")).expect("ids");
    // Edge cases for the parity check: whitespace runs, contractions, digits, non-ASCII, controls,
    // special-token text (Hugging Face maps it to the special ids, as `encode_with_special` does).
    let edge = [
        "  two  spaces   three\n\n\tand tabs \u{a0}nbsp",
        "it's they'll we've I'M 'quoted' don't",
        "12345 3.14 -7 1,000,000",
        "ünïcødé 日本語 😀🎉 Ω≈ç√",
        "\u{0}\u{1}\u{7f} control\r\n",
        "<|endoftext|> <|pad|> Human: Assistant:",
        "",
        "    ",
    ];
    let edge_lines: Vec<String> = edge
        .iter()
        .map(|t| serde_json::json!({"text": t, "ids": trained.encode_with_special(t)}).to_string())
        .collect();
    std::fs::write(dir.join("edge.jsonl"), edge_lines.join("\n")).expect("edge cases");
    let tokens: usize = texts.iter().map(|t| trained.encode(t).len()).sum();
    eprintln!(
        "corpus: {} documents, {bytes} bytes, {tokens} tokens with vocab {} ({:.2} bytes/token); artifacts in {}",
        texts.len(),
        trained.vocab_size(),
        bytes as f64 / tokens as f64,
        dir.display()
    );

    let mut group = c.benchmark_group("tokenizer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bpe_train_vocab1024", |b| {
        b.iter(|| train_bpe(black_box(texts.iter().copied()), &config).expect("training"))
    });
    group.bench_function("bpe_encode", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| trained.encode(black_box(t)).len())
                .sum::<usize>()
        })
    });
    let gpt2 = Gpt2Tokenizer::new().expect("r50k_base");
    group.bench_function("gpt2_encode", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| gpt2.encode(black_box(t)).len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
