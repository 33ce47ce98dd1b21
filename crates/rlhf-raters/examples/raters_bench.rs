//! Side-by-side benchmark helper (run by `benches/raters_side_by_side.py`).
//!
//! `raters_bench gen DIR` writes the seeded benchmark data: `labels.csv` (item,rater,label: 1M
//! labels, 10k raters, 200k items, 5 classes) and `pairs.csv` (left,right,winner: 100k
//! comparisons among 200 items, 10% ties).
//! `raters_bench time DIR [REPEATS]` reads them and prints, as JSON, the median wall time in
//! milliseconds of: Krippendorff's alpha at all four levels, Dawid–Skene to convergence,
//! the Bradley–Terry fit, and 1,000 Bradley–Terry bootstrap refits.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::ranking::bradley_terry::{BtConfig, fit, pair_counts};
use rlhf_raters::ranking::{Anchor, bootstrap_bt};
use rlhf_raters::synth::{ComparisonsConfig, LabelsConfig, synth_comparisons, synth_labels};
use rlhf_raters::{BootstrapSpec, Level, Outcome, io, krippendorff_alpha};

fn median_ms(repeats: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn generate(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let s = synth_labels(&LabelsConfig::benchmark())?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("labels.csv"))?);
    writeln!(w, "item,rater,label")?;
    for i in 0..s.set.n_items() {
        let (raters, labels) = s.set.item(i);
        for (&r, &l) in raters.iter().zip(labels) {
            writeln!(
                w,
                "{},{},{}",
                s.set.items().name(i as u32),
                s.set.raters().name(r),
                l
            )?;
        }
    }
    let (c, _) = synth_comparisons(&ComparisonsConfig::benchmark());
    let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join("pairs.csv"))?);
    writeln!(w, "left,right,winner")?;
    for g in &c.games {
        let winner = match g.outcome {
            Outcome::Left => "left",
            Outcome::Right => "right",
            Outcome::Tie => "tie",
        };
        writeln!(
            w,
            "{},{},{}",
            c.items.name(g.left),
            c.items.name(g.right),
            winner
        )?;
    }
    Ok(())
}

fn time(dir: &Path, repeats: usize) -> Result<(), Box<dyn std::error::Error>> {
    let (set, _) = io::read_labels(&dir.join("labels.csv"), None)?;
    let pairs = io::read_pairs(&dir.join("pairs.csv"))?;
    let mut alphas = Vec::new();
    let alpha_ms = median_ms(repeats, || alphas = krippendorff_alpha(&set, &Level::ALL));
    let mut ds = None;
    let ds_ms = median_ms(repeats, || {
        ds = Some(aggregate(&set, None, Method::DawidSkene, &EmConfig::default()).unwrap())
    });
    let ds = ds.unwrap();
    let fixed = EmConfig {
        max_iterations: 100,
        tolerance: 0.0,
        ..EmConfig::default()
    };
    let ds100_ms = median_ms(repeats.min(3), || {
        std::hint::black_box(aggregate(&set, None, Method::DawidSkene, &fixed).unwrap());
    });
    let pc = pair_counts(pairs.n_items(), &pairs.games);
    let mut bt = None;
    let bt_ms = median_ms(repeats, || {
        bt = Some(fit(&pc, &BtConfig::default(), None, None).unwrap())
    });
    let bt = bt.unwrap();
    let agg_ms = median_ms(repeats, || {
        std::hint::black_box(pair_counts(pairs.n_items(), &pairs.games));
    });
    let spec = BootstrapSpec {
        replicates: 1000,
        seed: 1,
        confidence: 0.95,
    };
    let mut undefined = 0;
    let boot_ms = median_ms(repeats.min(3), || {
        let s = bootstrap_bt(
            &pairs,
            &pc,
            &bt.theta,
            &BtConfig::default(),
            &Anchor::default(),
            spec,
        )
        .unwrap();
        undefined = s.iter().filter(|r| r[0].is_none()).count();
    });
    let out = serde_json::json!({
        "threads": rayon::current_num_threads(),
        "labels": set.n_labels(), "items": set.n_items(), "raters": set.n_raters(),
        "alpha_all_levels_ms": alpha_ms,
        "alpha": alphas.iter().map(|a| (a.level.name(), a.alpha.value())).collect::<Vec<_>>(),
        "dawid_skene_ms": ds_ms, "dawid_skene_iterations": ds.iterations, "dawid_skene_converged": ds.converged,
        "dawid_skene_loglik": ds.log_likelihood, "dawid_skene_100_iterations_ms": ds100_ms,
        "bt_fit_ms": bt_ms, "bt_iterations": bt.iterations, "bt_aggregate_counts_ms": agg_ms,
        "bt_theta_m0_to_m4": (0..5).map(|i| pairs.items.get(&format!("m{i}")).map(|id| bt.theta[id as usize])).collect::<Vec<_>>(), "bt_loglik": bt.log_likelihood,
        "bt_bootstrap_1000_ms": boot_ms, "bt_bootstrap_undefined": undefined,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("gen"), Some(dir)) => generate(Path::new(dir)),
        (Some("time"), Some(dir)) => time(
            Path::new(dir),
            args.get(3).and_then(|r| r.parse().ok()).unwrap_or(5),
        ),
        _ => Err("usage: raters_bench gen DIR | raters_bench time DIR [REPEATS]".into()),
    }
}
