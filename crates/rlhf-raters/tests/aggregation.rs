//! Aggregation and screening on seeded synthetic crowds with known truth and rater accuracies.

use rlhf_raters::aggregate::{EmConfig, Method, aggregate};
use rlhf_raters::labels::LabelSetBuilder;
use rlhf_raters::screening::{Flag, ScreenRules, screen};
use rlhf_raters::synth::{LabelsConfig, SynthLabels, synth_labels};

fn crowd(seed: u64) -> SynthLabels {
    let c = LabelsConfig {
        items: 3000,
        raters: 60,
        labels_per_item: 5,
        classes: 4,
        max_accuracy: 0.95,
        seed,
    };
    synth_labels(&c).unwrap()
}

fn accuracy(labels: &[u32], truth: &[u32]) -> f64 {
    labels.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

/// Spearman rank correlation (no ties expected in continuous skills).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        for (pos, &i) in idx.iter().enumerate() {
            r[i] = pos as f64;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = a.len() as f64;
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn skill_aware_methods_beat_majority_and_recover_skills() {
    let s = crowd(11);
    let config = EmConfig::default();
    let mv = aggregate(&s.set, None, Method::Majority, &config).unwrap();
    let mv_acc = accuracy(&mv.labels, &s.truth);
    for method in [
        Method::DawidSkene,
        Method::OneCoin,
        Method::Glad,
        Method::Mace,
    ] {
        let a = aggregate(&s.set, None, method, &config).unwrap();
        let acc = accuracy(&a.labels, &s.truth);
        assert!(acc > mv_acc, "{method:?}: {acc} <= majority {mv_acc}");
        let rho = spearman(&a.rater_skill, &s.accuracy);
        assert!(rho > 0.9, "{method:?}: skill rank correlation {rho}");
        assert!(a.log_likelihood.is_some() && a.iterations > 0, "{method:?}");
        for row in a.posteriors.chunks(a.k) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        // deterministic
        let b = aggregate(&s.set, None, method, &config).unwrap();
        assert_eq!(a.posteriors, b.posteriors, "{method:?}");
    }
}

#[test]
fn dawid_skene_log_likelihood_never_decreases_and_converges() {
    let s = crowd(12);
    let mut last = f64::NEG_INFINITY;
    for it in 1..8 {
        let a = aggregate(
            &s.set,
            None,
            Method::DawidSkene,
            &EmConfig {
                max_iterations: it,
                tolerance: 0.0,
                ..EmConfig::default()
            },
        )
        .unwrap();
        let ll = a.log_likelihood.unwrap();
        assert!(ll >= last - 1e-6, "iteration {it}: {ll} < {last}");
        last = ll;
    }
    let a = aggregate(&s.set, None, Method::DawidSkene, &EmConfig::default()).unwrap();
    assert!(a.converged && a.iterations < 100);
    // confusion rows are distributions
    let k = a.k;
    for row in a.confusion.as_ref().unwrap().chunks(k) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
}

#[test]
fn gold_clamping_fixes_gold_items() {
    // two raters who always disagree; gold settles the items it covers
    let mut b = LabelSetBuilder::new("<memory>");
    for i in 0..6 {
        b.push(&format!("q{i}"), "a", "x", 1);
        b.push(&format!("q{i}"), "b", "y", 1);
    }
    for i in 0..3 {
        b.push_gold(&format!("q{i}"), "y", 1);
    }
    let (set, gold) = b.build().unwrap();
    for method in [
        Method::Majority,
        Method::DawidSkene,
        Method::OneCoin,
        Method::Glad,
        Method::Mace,
    ] {
        let a = aggregate(&set, Some(&gold), method, &EmConfig::default()).unwrap();
        for i in 0..3 {
            assert_eq!(a.posterior(i), &[0.0, 1.0], "{method:?}");
        }
        // learning from gold that rater b is right carries over to the other items
        if method != Method::Majority {
            assert_eq!(a.labels[3..], [1, 1, 1], "{method:?}");
        }
    }
}

#[test]
fn majority_tie_goes_to_first_category() {
    let set = rlhf_raters::LabelSet::from_matrix(&[
        vec![Some("b"), Some("a")],
        vec![Some("b"), Some("b")],
    ])
    .unwrap();
    let a = aggregate(&set, None, Method::Majority, &EmConfig::default()).unwrap();
    assert_eq!(a.labels, vec![0, 1]); // "a" < "b" in domain order
}

#[test]
fn screening_keeps_accurate_raters_and_flags_chance_ones() {
    let s = crowd(13);
    // gold on the first 600 items
    let mut b = LabelSetBuilder::new("<memory>");
    for i in 0..s.set.n_items() {
        let (raters, labels) = s.set.item(i);
        for (&r, &l) in raters.iter().zip(labels) {
            b.push(
                s.set.items().name(i as u32),
                s.set.raters().name(r),
                &s.set.categories()[l as usize],
                1,
            );
        }
        if i < 600 {
            b.push_gold(
                s.set.items().name(i as u32),
                &s.set.categories()[s.truth[i] as usize],
                1,
            );
        }
    }
    let (set, gold) = b.build().unwrap();
    let rules = ScreenRules {
        min_accuracy: Some(0.8),
        min_gold_items: 20,
        ..ScreenRules::default()
    };
    let report = screen(&set, &gold, &rules);
    assert!(!report.kept.is_empty());
    for r in &report.raters {
        let id = s.set.raters().get(&r.rater).unwrap() as usize;
        if r.kept {
            assert!(
                s.accuracy[id] > 0.65,
                "kept {} with true accuracy {}",
                r.rater,
                s.accuracy[id]
            );
        }
        if r.flag == Some(Flag::Random) {
            assert!(
                s.accuracy[id] < 0.55,
                "{} flagged random with true accuracy {}",
                r.rater,
                s.accuracy[id]
            );
        }
        assert_ne!(
            r.flag,
            Some(Flag::Adversarial),
            "nobody here is below chance"
        );
        assert!(r.gold_items > 0 && r.accuracy.is_defined());
    }
}
