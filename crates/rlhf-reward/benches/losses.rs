//! Criterion benches of the reward-model loss kernels in f32, in pairs per second, each beside a
//! baseline measured in the same run:
//! - Bradley–Terry (stable softplus form, with gradients) vs the textbook
//!   `-ln(sigmoid(d))` written directly (unstable for large gaps; the cost of stability);
//! - K-wise over 2,048 prompts of K = 4 (6 pairs each) vs expanding the pairs into
//!   chosen/rejected vectors, calling the pairwise loss and scattering the gradients back;
//! - the rule-violation loss over 4,096 responses x 8 rules.
//!
//! Run: `cargo bench -p rlhf-reward --bench losses`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rlhf_reward::{bradley_terry_loss, kwise_loss_batch, rule_violation_loss};
use rlhf_tensor::testing::random_values;

fn f32s(seed: u64, n: usize, scale: f64) -> Vec<f32> {
    random_values(seed, n)
        .iter()
        .map(|&v| (v * scale) as f32)
        .collect()
}

/// The textbook form: loss -ln(sigmoid(d)), gradient -(1 - sigmoid(d)) / n.
fn naive_bradley_terry(chosen: &[f32], rejected: &[f32]) -> (f32, Vec<f32>) {
    let n = chosen.len() as f32;
    let mut loss = 0.0;
    let grad = chosen
        .iter()
        .zip(rejected)
        .map(|(&c, &r)| {
            let s = 1.0 / (1.0 + (-(c - r)).exp());
            loss -= s.ln();
            -(1.0 - s) / n
        })
        .collect();
    (loss / n, grad)
}

/// K-wise by expansion: gather every ranked pair, run the pairwise loss per prompt, scatter back.
fn expanded_kwise(rewards: &[f32], ranks: &[usize], k: usize) -> (f32, Vec<f32>) {
    let groups = rewards.len() / k;
    let mut grad = vec![0.0; rewards.len()];
    let mut loss = 0.0;
    for g in 0..groups {
        let base = g * k;
        let (mut chosen, mut rejected, mut index) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..k {
            for j in 0..k {
                if ranks[base + i] < ranks[base + j] {
                    chosen.push(rewards[base + i]);
                    rejected.push(rewards[base + j]);
                    index.push((base + i, base + j));
                }
            }
        }
        let out = bradley_terry_loss(&chosen, &rejected, None).expect("every prompt has pairs");
        loss += out.loss / groups as f32;
        for (p, &(i, j)) in index.iter().enumerate() {
            grad[i] += out.grad_chosen[p] / groups as f32;
            grad[j] += out.grad_rejected[p] / groups as f32;
        }
    }
    (loss, grad)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("reward_losses");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let pairs = 16_384;
    let chosen = f32s(1, pairs, 3.0);
    let rejected = f32s(2, pairs, 3.0);
    g.throughput(Throughput::Elements(pairs as u64));
    g.bench_function("bradley_terry_16k_pairs", |b| {
        b.iter(|| bradley_terry_loss(black_box(&chosen), black_box(&rejected), None).unwrap())
    });
    g.bench_function("baseline_naive_log_sigmoid_16k_pairs", |b| {
        b.iter(|| naive_bradley_terry(black_box(&chosen), black_box(&rejected)))
    });

    let (prompts, k) = (2_048, 4);
    let rewards = f32s(3, prompts * k, 2.0);
    // Ranks 0..K in a prompt-dependent order: C(4,2) = 6 pairs per prompt.
    let ranks: Vec<usize> = (0..prompts * k).map(|i| (i * 3 + i / k) % k).collect();
    let sizes = vec![k; prompts];
    g.throughput(Throughput::Elements((prompts * 6) as u64));
    g.bench_function("kwise_2048_prompts_k4", |b| {
        b.iter(|| kwise_loss_batch(black_box(&rewards), black_box(&ranks), &sizes).unwrap())
    });
    g.bench_function("baseline_expanded_pairs_2048_prompts_k4", |b| {
        b.iter(|| expanded_kwise(black_box(&rewards), black_box(&ranks), k))
    });

    let (responses, rules) = (4_096, 8);
    let logits = f32s(4, responses * rules, 4.0);
    let labels: Vec<f32> = f32s(5, responses * rules, 1.0)
        .iter()
        .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
        .collect();
    g.throughput(Throughput::Elements((responses * rules) as u64));
    g.bench_function("rule_violation_4096x8", |b| {
        b.iter(|| rule_violation_loss(black_box(&logits), black_box(&labels), None, 0.5).unwrap())
    });
    g.finish();
}

criterion_group!(reward_losses, benches);
criterion_main!(reward_losses);
