//! Published reference cases (copied into tests/fixtures/refs/ from the project's reference set):
//! every expected value must match within the tolerance stated in its file.

use rlhf_raters::agreement::cohen::{Weighting, cohen_kappa, scott_pi, two_rater_ac1};
use rlhf_raters::{AgreementOptions, LabelSet, Level, agreement};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/refs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn close(got: f64, want: &Value, tol: f64, what: &str) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected value missing"));
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

fn tol(case: &Value, key: &str) -> f64 {
    case["tolerance"][key].as_f64().unwrap()
}

/// Rows = units (items), columns = raters, from a coders x units JSON matrix with nulls.
fn transpose_reliability(data: &Value) -> Vec<Vec<Option<f64>>> {
    let coders = data.as_array().unwrap();
    let units = coders[0].as_array().unwrap().len();
    (0..units)
        .map(|u| coders.iter().map(|c| c[u].as_f64()).collect())
        .collect()
}

#[test]
fn krippendorff_2011_and_wikipedia() {
    for name in ["krippendorff_2011_4x12", "krippendorff_wikipedia_3x15"] {
        let case = load(name);
        let set =
            LabelSet::from_matrix(&transpose_reliability(&case["inputs"]["reliability_data"]))
                .unwrap();
        let report = agreement(&set, &AgreementOptions::default());
        let t = tol(&case, "abs");
        for a in &report.krippendorff_alpha {
            let level = a.level.name();
            close(
                a.alpha.value().unwrap(),
                &case["expected"]["alpha"][level],
                t,
                &format!("{name} alpha {level}"),
            );
            let inter = &case["intermediates"][level];
            close(
                a.observed_disagreement.unwrap(),
                &inter["D_o"],
                1e-9,
                &format!("{name} D_o {level}"),
            );
            close(
                a.expected_disagreement.unwrap(),
                &inter["D_e"],
                1e-9,
                &format!("{name} D_e {level}"),
            );
            close(
                a.pairable_values,
                &case["intermediates"]["n_pairable"],
                1e-9,
                "n",
            );
        }
        // the published rounded values too
        for (level, v) in case["expected"]["published_rounded"].as_object().unwrap() {
            let lvl: Level = level.parse().unwrap();
            let a = report
                .krippendorff_alpha
                .iter()
                .find(|a| a.level == lvl)
                .unwrap();
            close(
                a.alpha.value().unwrap(),
                v,
                5e-4,
                &format!("{name} published {level}"),
            );
        }
    }
}

#[test]
fn fleiss_1971_diagnoses() {
    let case = load("fleiss_1971_diagnoses_30x6");
    let rows: Vec<Vec<Option<i64>>> = case["inputs"]["raw_ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64()).collect())
        .collect();
    let set = LabelSet::from_matrix(&rows).unwrap();
    let r = agreement(&set, &AgreementOptions::default());
    let t = tol(&case, "abs");
    let e = &case["expected"];
    close(
        r.fleiss.kappa.value().unwrap(),
        &e["fleiss_kappa"],
        t,
        "kappa",
    );
    close(r.fleiss.se_h0.value().unwrap(), &e["se_H0"], t, "se_H0");
    close(r.fleiss.z.value().unwrap(), &e["z_H0"], 1e-9, "z");
    close(
        r.fleiss.z.value().unwrap(),
        &e["irr_reported"]["z"],
        tol(&case, "vs_irr_reported") * 10.0,
        "irr z",
    );
    close(
        r.fleiss.kappa.value().unwrap(),
        &e["irr_reported"]["kappa"],
        tol(&case, "vs_irr_reported"),
        "irr kappa",
    );
    close(
        r.fleiss.observed_agreement.unwrap(),
        &e["P_bar"],
        t,
        "P_bar",
    );
    close(r.fleiss.expected_agreement.unwrap(), &e["P_e"], t, "P_e");
    close(
        r.brennan_prediger.value().unwrap(),
        &e["randolph_free_marginal_kappa"],
        t,
        "randolph",
    );
    let nominal = &r.krippendorff_alpha[0];
    close(
        nominal.alpha.value().unwrap(),
        &e["krippendorff_alpha_nominal_same_data"],
        t,
        "alpha",
    );
}

#[test]
fn fleiss_wikipedia_from_counts() {
    let case = load("fleiss_wikipedia_10x14");
    let mut triples = Vec::new();
    for (i, row) in case["inputs"]["table"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let mut rater = 0;
        for (cat, n) in row.as_array().unwrap().iter().enumerate() {
            for _ in 0..n.as_u64().unwrap() {
                triples.push((format!("s{i}"), format!("r{rater}"), format!("{}", cat + 1)));
                rater += 1;
            }
        }
    }
    // Category 1 is unused by some subjects but used overall: domain is 1..5.
    let set = LabelSet::from_triples(triples).unwrap();
    let r = agreement(&set, &AgreementOptions::default());
    let t = tol(&case, "abs");
    let e = &case["expected"];
    close(
        r.fleiss.kappa.value().unwrap(),
        &e["fleiss_kappa"],
        t,
        "kappa",
    );
    close(
        r.fleiss.observed_agreement.unwrap(),
        &e["P_bar"],
        t,
        "P_bar",
    );
    close(r.fleiss.expected_agreement.unwrap(), &e["P_e"], t, "P_e");
    close(r.fleiss.se_h0.value().unwrap(), &e["se_H0"], t, "se");
    close(
        r.fleiss.z.value().unwrap(),
        &e["z_H0_fleiss_nee_landis_1979"],
        1e-9,
        "z",
    );
    close(
        r.brennan_prediger.value().unwrap(),
        &e["randolph_free_marginal_kappa"],
        t,
        "randolph",
    );
    let items = rlhf_raters::agreement::breakdown::item_breakdown(&set);
    for (i, p) in e["P_i"].as_array().unwrap().iter().enumerate() {
        close(items[i].pairwise_agreement.value().unwrap(), p, t, "P_i");
    }
}

#[test]
fn cohen_sas_3x3() {
    let case = load("cohen_kappa_sas_3x3");
    let t = tol(&case, "abs");
    let e = &case["expected"];
    let table: Vec<f64> = case["inputs"]["contingency_table"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let u = cohen_kappa(&table, 3, Weighting::Unweighted);
    close(
        u.kappa.value().unwrap(),
        &e["unweighted"]["kappa"],
        t,
        "kappa",
    );
    close(u.se.value().unwrap(), &e["unweighted"]["ase"], t, "ase");
    close(
        u.se_h0.value().unwrap(),
        &e["unweighted"]["ase_H0"],
        t,
        "ase0",
    );
    close(u.z.value().unwrap(), &e["unweighted"]["z"], 1e-10, "z");
    close(
        u.ci95.unwrap()[0],
        &e["unweighted"]["ci95"][0],
        1e-9,
        "ci lo",
    );
    close(
        u.ci95.unwrap()[1],
        &e["unweighted"]["ci95"][1],
        1e-9,
        "ci hi",
    );
    let l = cohen_kappa(&table, 3, Weighting::Linear);
    close(l.kappa.value().unwrap(), &e["linear"]["kappa"], t, "linear");
    close(l.se.value().unwrap(), &e["linear"]["ase"], t, "linear ase");
    close(
        l.se_h0.value().unwrap(),
        &e["linear"]["ase_H0"],
        t,
        "linear ase0",
    );
    close(l.z.value().unwrap(), &e["linear"]["z"], 1e-10, "linear z");
    let q = cohen_kappa(&table, 3, Weighting::Quadratic);
    close(
        q.kappa.value().unwrap(),
        &e["quadratic"]["kappa"],
        t,
        "quadratic",
    );
    close(
        q.se.value().unwrap(),
        &e["quadratic"]["ase"],
        t,
        "quadratic ase",
    );
    close(
        scott_pi(&table, 3).value().unwrap(),
        &e["scott_pi"],
        t,
        "scott",
    );
    close(
        two_rater_ac1(&table, 3).value().unwrap(),
        &e["gwet_ac1"],
        t,
        "ac1",
    );

    // The same through the long-format path, from the two raters' label vectors.
    let r1 = case["inputs"]["rater1_labels"].as_array().unwrap();
    let r2 = case["inputs"]["rater2_labels"].as_array().unwrap();
    let rows: Vec<Vec<Option<i64>>> = r1
        .iter()
        .zip(r2)
        .map(|(a, b)| vec![a.as_i64(), b.as_i64()])
        .collect();
    let set = LabelSet::from_matrix(&rows).unwrap();
    let report = agreement(&set, &AgreementOptions::default());
    let two = report.two_raters.unwrap();
    close(
        two.percent_agreement.value().unwrap(),
        &e["percent_agreement"],
        t,
        "percent",
    );
    close(
        report.percent_agreement.value().unwrap(),
        &e["percent_agreement"],
        t,
        "percent multi",
    );
    close(
        two.cohen_kappa[0].kappa.value().unwrap(),
        &e["unweighted"]["kappa"],
        t,
        "kappa long",
    );
    close(
        two.cohen_kappa[1].kappa.value().unwrap(),
        &e["linear"]["kappa"],
        t,
        "linear long",
    );
    close(
        two.cohen_kappa[2].kappa.value().unwrap(),
        &e["quadratic"]["kappa"],
        t,
        "quadratic long",
    );
    close(
        two.scott_pi.value().unwrap(),
        &e["scott_pi"],
        t,
        "scott long",
    );
    // Scott's pi equals Fleiss' kappa for two raters with complete data; AC1 likewise.
    close(
        report.fleiss.kappa.value().unwrap(),
        &e["scott_pi"],
        t,
        "fleiss = scott",
    );
    close(
        report.gwet_ac1.value().unwrap(),
        &e["gwet_ac1"],
        t,
        "ac1 multi",
    );
}

#[test]
fn bradley_terry_5items() {
    use rlhf_raters::ranking::bradley_terry::{BtConfig, fit, pair_counts};
    use rlhf_raters::ranking::{Anchor, rank_bradley_terry};
    use rlhf_raters::{Comparisons, Outcome};
    let case = load("bradley_terry_5items_24comparisons");
    let mut c = Comparisons::new();
    for name in case["inputs"]["items"].as_array().unwrap() {
        c.items.intern(name.as_str().unwrap());
    }
    for wl in case["inputs"]["comparisons_winner_loser"]
        .as_array()
        .unwrap()
    {
        let (w, l) = (wl[0].as_u64().unwrap(), wl[1].as_u64().unwrap());
        c.push(&format!("i{w}"), &format!("i{l}"), Outcome::Left, None)
            .unwrap();
    }
    let t = tol(&case, "mle");
    let e = &case["expected"];
    let pc = pair_counts(c.n_items(), &c.games);
    let f = fit(&pc, &BtConfig::default(), None, None).unwrap();
    assert!(f.converged);
    for (i, want) in e["mle_log_strength_centered"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        close(f.theta[i], want, t, "theta");
    }
    close(f.log_likelihood, &e["mle_loglik"], t, "loglik");
    let r = rank_bradley_terry(&c, &BtConfig::default(), &Anchor::default(), None).unwrap();
    let lmsys = e["lmsys_elo_scale_1000_plus_400_theta_over_ln10"]
        .as_array()
        .unwrap();
    for item in &r.items {
        let i: usize = item.item[1..].parse().unwrap();
        close(item.rating, &lmsys[i], 1e-6, "elo scale");
        close(item.wins as f64, &e["win_counts"][i], 0.0, "wins");
    }
    // the same data read crowd-kit style (left/right/label = winner name) gives the same fit
    let mut ck = Comparisons::new();
    for row in case["inputs"]["crowdkit_frame"].as_array().unwrap() {
        let (l, r, w) = (
            row["left"].as_str().unwrap(),
            row["right"].as_str().unwrap(),
            row["label"].as_str().unwrap(),
        );
        let o = if w == l {
            Outcome::Left
        } else {
            Outcome::Right
        };
        ck.push(l, r, o, row["worker"].as_str()).unwrap();
    }
    let r2 = rank_bradley_terry(&ck, &BtConfig::default(), &Anchor::default(), None).unwrap();
    for item in &r2.items {
        let i: usize = item.item[1..].parse().unwrap();
        close(
            item.log_strength.unwrap(),
            &e["mle_log_strength_centered"][i],
            t,
            "theta crowdkit frame",
        );
    }
}

#[test]
fn elo_fixed_sequence() {
    use rlhf_raters::ranking::elo::{EloConfig, elo_ratings};
    use rlhf_raters::{Comparisons, Outcome};
    let case = load("elo_fixed_sequence");
    let mut c = Comparisons::new();
    for g in case["inputs"]["games_model_a_model_b_winner"]
        .as_array()
        .unwrap()
    {
        let o = match g[2].as_str().unwrap() {
            "model_a" => Outcome::Left,
            "model_b" => Outcome::Right,
            _ => Outcome::Tie,
        };
        c.push(g[0].as_str().unwrap(), g[1].as_str().unwrap(), o, None)
            .unwrap();
    }
    for k in [4.0, 16.0, 32.0] {
        let cfg = EloConfig {
            k,
            ..EloConfig::default()
        };
        let r = elo_ratings(c.n_items(), &c.games, &cfg);
        let want = &case["expected"][format!("K{k}")];
        for (i, name) in c.items.names().iter().enumerate() {
            close(
                r[i],
                &want[name],
                tol(&case, "abs"),
                &format!("K{k} {name}"),
            );
        }
    }
}

#[test]
fn fleiss_per_category_kappas_of_the_diagnoses() {
    let case = load("fleiss_1971_diagnoses_30x6");
    let rows: Vec<Vec<Option<i64>>> = case["inputs"]["raw_ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64()).collect())
        .collect();
    let set = LabelSet::from_matrix(&rows).unwrap();
    let r = agreement(&set, &AgreementOptions::default());
    let got: Vec<f64> = r
        .fleiss
        .per_category
        .iter()
        .map(|c| c.value().unwrap())
        .collect();
    // Fleiss (1971) Table 2 / R irr::kappam.fleiss(diagnoses, detail = TRUE), 3 decimals
    for (g, want) in got.iter().zip([0.245, 0.245, 0.520, 0.471, 0.566]) {
        assert!((g - want).abs() < 5e-4, "{got:?}");
    }
}

#[test]
fn cohen_wikipedia_yes_no_example() {
    // en.wikipedia "Cohen's kappa", simple example: 50 proposals, A and B both yes 20, A yes B no 5,
    // A no B yes 10, both no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    let mut rows = Vec::new();
    for (a, b, n) in [
        ("yes", "yes", 20),
        ("yes", "no", 5),
        ("no", "yes", 10),
        ("no", "no", 15),
    ] {
        rows.extend(std::iter::repeat_n(vec![Some(a), Some(b)], n));
    }
    let set = LabelSet::from_matrix(&rows).unwrap();
    let two = agreement(&set, &AgreementOptions::default())
        .two_raters
        .unwrap();
    assert!((two.percent_agreement.value().unwrap() - 0.7).abs() < 1e-12);
    assert!((two.cohen_kappa[0].kappa.value().unwrap() - 0.4).abs() < 1e-12);
}
