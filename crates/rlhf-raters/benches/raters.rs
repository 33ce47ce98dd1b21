//! Criterion benches on the benchmark data (seeded): Krippendorff's alpha at all four
//! levels, Dawid–Skene to convergence, the Bradley–Terry fit (Newton vs a Hunter-MM baseline
//! written here) and 1,000 bootstrap refits. Run: `cargo bench -p rlhf-raters --bench raters`.
//! The Python side-by-side lives in `benches/raters_side_by_side.py` at the workspace root.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::ranking::bradley_terry::{BtConfig, PairCounts, fit, pair_counts};
use rlhf_raters::ranking::{Anchor, bootstrap_bt};
use rlhf_raters::synth::{ComparisonsConfig, LabelsConfig, synth_comparisons, synth_labels};
use rlhf_raters::{BootstrapSpec, Level, krippendorff_alpha};

/// Hunter (2004) MM for Bradley–Terry: `p_i <- W_i / sum_j n_ij / (p_i + p_j)`, the textbook
/// baseline, run to the same tolerance on the log-strengths.
fn hunter_mm(pc: &PairCounts, tolerance: f64) -> (Vec<f64>, usize) {
    let n = pc.n_items;
    let mut wins = vec![0.0; n];
    for (s, &(i, j)) in pc.pairs.iter().enumerate() {
        wins[i as usize] += pc.wins[s];
        wins[j as usize] += pc.total[s] - pc.wins[s];
    }
    let mut p = vec![1.0; n];
    for sweep in 1..=100_000 {
        let mut denom = vec![0.0; n];
        for (s, &(i, j)) in pc.pairs.iter().enumerate() {
            let d = pc.total[s] / (p[i as usize] + p[j as usize]);
            denom[i as usize] += d;
            denom[j as usize] += d;
        }
        let next: Vec<f64> = (0..n).map(|i| wins[i] / denom[i]).collect();
        let norm = next.iter().map(|x| x.ln()).sum::<f64>() / n as f64;
        let next: Vec<f64> = next.iter().map(|x| x / norm.exp()).collect();
        let change = next
            .iter()
            .zip(&p)
            .map(|(a, b)| (a.ln() - b.ln()).abs())
            .fold(0.0, f64::max);
        p = next;
        if change < tolerance {
            return (p, sweep);
        }
    }
    (p, 100_000)
}

fn benches(c: &mut Criterion) {
    let labels = synth_labels(&LabelsConfig::benchmark()).unwrap();
    let (pairs, _) = synth_comparisons(&ComparisonsConfig::benchmark());
    let pc = pair_counts(pairs.n_items(), &pairs.games);
    let config = BtConfig::default();
    let full = fit(&pc, &config, None, None).unwrap();

    let mut g = c.benchmark_group("raters");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("alpha_all_levels_1M_labels", |b| {
        b.iter(|| black_box(krippendorff_alpha(&labels.set, &Level::ALL)))
    });
    g.bench_function("dawid_skene_to_convergence_1M_labels", |b| {
        b.iter(|| {
            black_box(
                aggregate(&labels.set, None, Method::DawidSkene, &EmConfig::default()).unwrap(),
            )
        })
    });
    g.bench_function("bt_fit_newton_100k_comparisons", |b| {
        b.iter(|| black_box(fit(&pc, &config, None, None).unwrap()))
    });
    g.bench_function("bt_fit_hunter_mm_baseline_100k_comparisons", |b| {
        b.iter(|| black_box(hunter_mm(&pc, 1e-10)))
    });
    g.bench_function("bt_bootstrap_1000_refits", |b| {
        let spec = BootstrapSpec {
            replicates: 1000,
            seed: 1,
            confidence: 0.95,
        };
        b.iter(|| {
            black_box(
                bootstrap_bt(&pairs, &pc, &full.theta, &config, &Anchor::default(), spec).unwrap(),
            )
        })
    });
    g.finish();
    let (_, sweeps) = hunter_mm(&pc, 1e-10);
    println!(
        "Hunter MM needs {sweeps} sweeps for tolerance 1e-10; Newton needs {} iterations",
        full.iterations
    );
}

criterion_group!(raters, benches);
criterion_main!(raters);
