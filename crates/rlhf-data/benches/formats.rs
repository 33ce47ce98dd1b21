//! Throughput of the HH-RLHF reader on one core, against a naive baseline in the same run.
//!
//! Input: generated HH-RLHF JSONL shaped like the released files (about 1.3 KB per line, 1 to 4
//! exchanges, curly apostrophes and quotes, newlines inside turns), held in memory so the figure
//! is the parser's, not the disk's; a second case reads the same bytes gzip-compressed.
//! Baseline: what a quick implementation does: `serde_json::Value` per line, then `split` on the
//! turn markers into owned strings (no validation, no item ids).
//!
//! A second group reads the same records written as TRL JSONL (its own byte count).
//!
//! Run: `cargo bench -p rlhf-data --bench formats`; throughput is reported in bytes/s of the
//! uncompressed JSONL. With `RLHF_BENCH_DUMP=FILE` the generated input is also written to FILE,
//! for the Python peer `hh_read_python.py`.

use std::io::{Cursor, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlhf_data::formats::{FeedbackReader, FeedbackWriter, Format, OutputFormat};

/// Size of the generated file.
const TARGET_BYTES: usize = 8 << 20;

const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "of",
    "you",
    "I",
    "it",
    "is",
    "that",
    "in",
    "for",
    "can",
    "what",
    "how",
    "do",
    "would",
    "like",
    "with",
    "be",
    "this",
    "are",
    "if",
    "your",
    "have",
    "my",
    "me",
    "about",
    "think",
    "not",
    "people",
    "know",
    "some",
    "there",
    "help",
    "want",
    "could",
    "more",
    "good",
    "should",
    "just",
    "really",
    "question",
    "answer",
    "important",
    "different",
    "example",
    "sorry",
    "understand",
    "information",
    "water",
    "recipe",
    "store",
    "money",
    "friend",
    "computer",
    "weather",
    "history",
    "music",
    "doctor",
    "because",
    "maybe",
    "probably",
    "sure",
    "here",
    "“quoted”",
    "it’s",
    "don’t",
    "I’m",
    "you’re",
    "café",
    "naïve",
];

fn sentence(rng: &mut ChaCha8Rng, out: &mut String) {
    let words = rng.random_range(5..20);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    out.push_str(if rng.random_bool(0.2) { "?" } else { "." });
}

fn turn(rng: &mut ChaCha8Rng, sentences: std::ops::Range<usize>) -> String {
    let mut text = String::new();
    for i in 0..rng.random_range(sentences) {
        if i > 0 {
            text.push_str(if rng.random_bool(0.1) { "\n" } else { "  " });
        }
        sentence(rng, &mut text);
    }
    text
}

/// HH-RLHF JSONL of about `TARGET_BYTES`, seeded.
fn generate() -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = Vec::with_capacity(TARGET_BYTES + 4096);
    while out.len() < TARGET_BYTES {
        let mut prefix = String::new();
        let exchanges = rng.random_range(1..=4);
        for i in 0..exchanges {
            prefix.push_str("\n\nHuman: ");
            prefix.push_str(&turn(&mut rng, 1..3));
            if i + 1 < exchanges {
                prefix.push_str("\n\nAssistant: ");
                prefix.push_str(&turn(&mut rng, 1..5));
            }
        }
        let chosen = format!("{prefix}\n\nAssistant: {}", turn(&mut rng, 1..5));
        let rejected = format!("{prefix}\n\nAssistant: {}", turn(&mut rng, 1..5));
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({"chosen": chosen, "rejected": rejected}),
        )
        .unwrap();
        out.push(b'\n');
    }
    out
}

/// Ours: the streaming reader, every record parsed into turns, checked, item id hashed.
fn read_ours(bytes: &'static [u8]) -> usize {
    read_format(bytes, Format::Hh)
}

/// Reads every record of `bytes` in `format`.
fn read_format(bytes: &'static [u8], format: Format) -> usize {
    let reader = FeedbackReader::from_reader("bench", Cursor::new(bytes), Some(format)).unwrap();
    reader.fold(0, |records, item| {
        item.expect("the generated records are valid");
        records + 1
    })
}

/// Baseline: `Value` per line, then split on the markers into owned turns.
fn read_baseline(bytes: &[u8]) -> usize {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut turns = 0;
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        for key in ["chosen", "rejected"] {
            let transcript = value[key].as_str().unwrap();
            let (prompt, response) = transcript.rsplit_once("\n\nAssistant:").unwrap();
            let parts: Vec<String> = prompt
                .split("\n\n")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            turns += parts.len() + usize::from(!response.is_empty());
        }
    }
    turns
}

fn bench(c: &mut Criterion) {
    // Leaked once so the reader can borrow it for 'static without a copy per iteration.
    let bytes: &'static [u8] = Box::leak(generate().into_boxed_slice());
    let records = read_ours(bytes);
    eprintln!(
        "generated {} bytes, {} records ({:.0} bytes/line)",
        bytes.len(),
        records,
        bytes.len() as f64 / records as f64
    );
    if let Ok(path) = std::env::var("RLHF_BENCH_DUMP") {
        std::fs::write(&path, bytes).unwrap();
        eprintln!("wrote the input to {path}");
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    let compressed: &'static [u8] = Box::leak(gz.finish().unwrap().into_boxed_slice());

    let mut group = c.benchmark_group("hh_jsonl");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("rlhf_data_reader", |b| {
        b.iter(|| read_ours(std::hint::black_box(bytes)))
    });
    group.bench_function("baseline_value_split", |b| {
        b.iter(|| read_baseline(std::hint::black_box(bytes)))
    });
    group.bench_function("rlhf_data_reader_gzip", |b| {
        b.iter(|| read_ours(std::hint::black_box(compressed)))
    });
    group.finish();

    // The same records as TRL JSONL (plain strings when single-turn, messages otherwise): a
    // separate group, since the bytes differ.
    let mut writer = FeedbackWriter::new(Vec::new(), OutputFormat::Trl, "trl");
    let hh = FeedbackReader::from_reader("bench", Cursor::new(bytes), Some(Format::Hh)).unwrap();
    for item in hh {
        writer.write(&item.unwrap().record).unwrap();
    }
    let trl: &'static [u8] = Box::leak(writer.finish().unwrap().0.into_boxed_slice());
    let mut group = c.benchmark_group("trl_jsonl");
    group.throughput(Throughput::Bytes(trl.len() as u64));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("rlhf_data_reader", |b| {
        b.iter(|| read_format(std::hint::black_box(trl), Format::Trl))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
