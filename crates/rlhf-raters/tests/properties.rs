//! Property tests: coefficient ranges, invariance to relabelling and to the order of raters,
//! items and records, perfect agreement giving 1, and Bradley–Terry order invariance.

use proptest::prelude::*;
use rlhf_raters::agreement::pairwise::pairwise_agreement;
use rlhf_raters::ranking::bradley_terry::BtConfig;
use rlhf_raters::ranking::{Anchor, rank_bradley_terry};
use rlhf_raters::{
    AgreementOptions, AgreementReport, Coefficient, Comparisons, LabelSet, Outcome, agreement,
};

/// A units x raters matrix with missing cells and labels in `0..k`.
fn matrix() -> impl Strategy<Value = Vec<Vec<Option<u8>>>> {
    (2usize..5, 2u8..5, 3usize..25).prop_flat_map(|(raters, k, items)| {
        prop::collection::vec(
            prop::collection::vec(prop::option::weighted(0.75, 0..k), raters),
            items,
        )
    })
}

fn triples(m: &[Vec<Option<u8>>], name: impl Fn(u8) -> String) -> Vec<(String, String, String)> {
    let mut t = Vec::new();
    for (i, row) in m.iter().enumerate() {
        for (r, cell) in row.iter().enumerate() {
            if let Some(v) = cell {
                t.push((format!("item{i}"), format!("rater{r}"), name(*v)));
            }
        }
    }
    t
}

fn report(t: &[(String, String, String)]) -> Option<AgreementReport> {
    let set = LabelSet::from_triples(
        t.iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())),
    )
    .ok()?;
    Some(agreement(&set, &AgreementOptions::default()))
}

/// Every scalar coefficient of a report, labelled.
fn coefficients(r: &AgreementReport) -> Vec<(String, Coefficient)> {
    let mut v = vec![
        ("percent".to_string(), r.percent_agreement.clone()),
        ("fleiss".into(), r.fleiss.kappa.clone()),
        ("ac1".into(), r.gwet_ac1.clone()),
        ("bp".into(), r.brennan_prediger.clone()),
    ];
    for a in &r.krippendorff_alpha {
        v.push((format!("alpha {}", a.level.name()), a.alpha.clone()));
    }
    if let Some(two) = &r.two_raters {
        for c in &two.cohen_kappa {
            v.push((format!("cohen {:?}", c.weighting), c.kappa.clone()));
        }
        v.push(("scott".into(), two.scott_pi.clone()));
    }
    v
}

fn same(a: &Coefficient, b: &Coefficient) -> bool {
    match (a, b) {
        (Coefficient::Value(x), Coefficient::Value(y)) => (x - y).abs() < 1e-9,
        (Coefficient::Undefined(_), Coefficient::Undefined(_)) => true,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn coefficients_in_range_and_never_nan(m in matrix()) {
        if let Some(r) = report(&triples(&m, |v| v.to_string())) {
            for (name, c) in coefficients(&r) {
                if let Coefficient::Value(x) = c {
                    prop_assert!(x.is_finite(), "{name}");
                    prop_assert!(x <= 1.0 + 1e-12, "{name} = {x}");
                    prop_assert!(x >= -1.0 - 1e-12, "{name} = {x}");
                }
            }
            for p in pairwise_agreement_of(&m) {
                if let Coefficient::Value(x) = p {
                    prop_assert!((-1.0 - 1e-12..=1.0 + 1e-12).contains(&x));
                }
            }
        }
    }

    #[test]
    fn invariant_to_relabelling(m in matrix(), shift in 1u8..5, scale in 1u8..4) {
        let base = triples(&m, |v| v.to_string());
        let Some(r) = report(&base) else { return Ok(()) };
        // nominal statistics: any renaming of categories (here to words in a scrambled order)
        let words = ["kiwi", "apple", "zebra", "mango", "fig"];
        let renamed = report(&triples(&m, |v| words[((v + shift) % 5) as usize].to_string())).unwrap();
        for (name, c) in coefficients(&r) {
            if name.contains("percent") || name.contains("fleiss") || name.contains("ac1") || name.contains("bp")
                || name.contains("nominal") || name.contains("Unweighted") || name.contains("scott") {
                let other = coefficients(&renamed).into_iter().find(|(n, _)| *n == name).unwrap().1;
                prop_assert!(same(&c, &other), "{name}: {c:?} vs {other:?}");
            }
        }
        // positive affine maps keep interval alpha; scaling keeps ratio; monotone maps keep ordinal
        let affine = report(&triples(&m, |v| (f64::from(scale) * f64::from(v) + f64::from(shift)).to_string())).unwrap();
        let scaled = report(&triples(&m, |v| (f64::from(scale) * (f64::from(v) + 1.0)).to_string())).unwrap();
        let ratio_base = report(&triples(&m, |v| (f64::from(v) + 1.0).to_string())).unwrap();
        let monotone = report(&triples(&m, |v| (f64::from(v).powi(3) + 10.0).to_string())).unwrap();
        prop_assert!(same(&r.krippendorff_alpha[2].alpha, &affine.krippendorff_alpha[2].alpha));
        prop_assert!(same(&ratio_base.krippendorff_alpha[3].alpha, &scaled.krippendorff_alpha[3].alpha));
        prop_assert!(same(&r.krippendorff_alpha[1].alpha, &monotone.krippendorff_alpha[1].alpha));
    }

    #[test]
    fn invariant_to_rater_item_and_record_order(m in matrix(), seed in any::<u64>()) {
        let base = triples(&m, |v| v.to_string());
        let Some(r) = report(&base) else { return Ok(()) };
        let mut shuffled = base.clone();
        // deterministic Fisher-Yates from the seed, also renaming raters and items in reverse
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let shuffled: Vec<_> = shuffled.into_iter().map(|(i, r, l)| (format!("z{i}"), format!("y{r}"), l)).collect();
        let other = report(&shuffled).unwrap();
        for ((name, a), (_, b)) in coefficients(&r).iter().zip(coefficients(&other).iter()) {
            // two-rater tables may swap rows and columns: every kappa here is symmetric
            prop_assert!(same(a, b), "{name}: {a:?} vs {b:?}");
        }
    }

    #[test]
    fn perfect_agreement_gives_one(truth in prop::collection::vec(0u8..4, 3..20), raters in 2usize..5) {
        prop_assume!(truth.iter().any(|&t| t != truth[0]));
        let m: Vec<Vec<Option<u8>>> = truth.iter().map(|&t| vec![Some(t); raters]).collect();
        let r = report(&triples(&m, |v| v.to_string())).unwrap();
        for (name, c) in coefficients(&r) {
            prop_assert_eq!(c.value(), Some(1.0), "{}", name);
        }
    }

    #[test]
    fn bradley_terry_ignores_comparison_order(
        games in prop::collection::vec((0u8..4, 0u8..4, 0u8..3), 12..40),
        seed in any::<u64>(),
    ) {
        let mut c = Comparisons::new();
        // a cycle guarantees strong connectivity
        for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 0), (1, 0)] {
            c.push(&format!("m{a}"), &format!("m{b}"), Outcome::Left, None).unwrap();
        }
        for &(a, b, o) in &games {
            if a != b {
                let o = [Outcome::Left, Outcome::Right, Outcome::Tie][o as usize];
                c.push(&format!("m{a}"), &format!("m{b}"), o, None).unwrap();
            }
        }
        let mut shuffled = c.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.games.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.games.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let a = rank_bradley_terry(&c, &BtConfig::default(), &Anchor::default(), None).unwrap();
        let b = rank_bradley_terry(&shuffled, &BtConfig::default(), &Anchor::default(), None).unwrap();
        for (x, y) in a.items.iter().zip(&b.items) {
            prop_assert_eq!(&x.item, &y.item);
            prop_assert!((x.rating - y.rating).abs() < 1e-6);
        }
    }
}

fn pairwise_agreement_of(m: &[Vec<Option<u8>>]) -> Vec<Coefficient> {
    let t = triples(m, |v| v.to_string());
    match LabelSet::from_triples(
        t.iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())),
    ) {
        Ok(set) => pairwise_agreement(&set)
            .into_iter()
            .map(|p| p.cohen_kappa)
            .collect(),
        Err(_) => Vec::new(),
    }
}
