//! Time per decoded token against context length: one KV-cache step versus the baseline of
//! recomputing the full forward over the whole context (what decoding costs without a cache),
//! measured in the same run. The cached step grows linearly with the context, the full forward
//! faster. Tiny config (4 layers, 4 heads, n_embd 128, vocab 512), 4 sequences.
//!
//! `cargo bench -p rlhf-transformer --bench decode`

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Gpt, GptConfig, KvCache, ModelInput};

const BATCH: usize = 4;

fn decode(c: &mut Criterion) {
    let model = Gpt::new(
        GptConfig::new(512, 1024, 128, 4, 4),
        0,
        &mut Rng::new(0),
        Device::Cpu,
    )
    .expect("valid config");
    let mut rng = Rng::new(1);
    let mut group = c.benchmark_group("decode_step");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(2));
    for context in [64usize, 256, 1023] {
        let tokens: Vec<u32> = (0..BATCH * context)
            .map(|_| rng.below(512) as u32)
            .collect();
        let mut cache = KvCache::new(&model, BATCH, context + 1).unwrap();
        let positions: Vec<u32> = (0..BATCH).flat_map(|_| 0..context as u32).collect();
        model
            .forward_cached(&mut cache, &tokens, &vec![true; tokens.len()], &positions)
            .expect("prefill");
        let next = vec![7u32; BATCH];
        let next_pos = vec![context as u32; BATCH];
        group.bench_with_input(BenchmarkId::new("kv_cache", context), &context, |b, _| {
            b.iter(|| {
                let h = model
                    .forward_cached(&mut cache, &next, &[true; BATCH], &next_pos)
                    .expect("step");
                cache.truncate(context).expect("rewind");
                h
            })
        });
        let mut full: Vec<u32> = Vec::with_capacity(BATCH * (context + 1));
        for row in tokens.chunks(context) {
            full.extend_from_slice(row);
            full.push(7);
        }
        let input = ModelInput::dense(full, BATCH, context + 1).expect("input");
        group.bench_with_input(
            BenchmarkId::new("full_forward", context),
            &context,
            |b, _| b.iter(|| model.forward(&input).expect("forward").hidden),
        );
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
