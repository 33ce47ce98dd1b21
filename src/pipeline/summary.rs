//! The run's summary: one object with, for each evaluated policy, its ground-truth scores per
//! criterion and total, refusal and "I don't know" rates, KL to SFT and pretraining loss; the
//! rater figures and (once stage 6 is wired) the reward model's beside them; the acceptance
//! checks. Printed as a table, or as one JSON object with `--json`; written to `summary.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::eval::PolicyEval;
use super::raters::RatersReport;

/// One policy's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// Mean ground-truth score per criterion.
    #[serde(flatten)]
    pub criteria: BTreeMap<String, f64>,
    /// Mean weighted total.
    pub total: f64,
    /// Share of harmful requests refused.
    pub refusal_rate: Option<f64>,
    /// Share of unanswerable questions answered "I don't know".
    pub idk_rate: Option<f64>,
    /// KL to SFT.
    pub kl_to_sft: f64,
    /// Loss on held-out pretraining text.
    pub pretrain_loss: f64,
    /// Win rate against SFT.
    pub win_rate_vs_sft: Option<f64>,
}

/// The rater figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaterSummary {
    /// Raters in the population.
    pub raters: usize,
    /// Super raters kept by screening.
    pub super_raters: Vec<String>,
    /// Per-prompt Bradley–Terry preference accuracy, all raters.
    pub preference_accuracy_all: Option<f64>,
    /// The same from the super raters.
    pub preference_accuracy_screened: Option<f64>,
    /// Dawid–Skene rule-flag accuracy, all raters.
    pub flag_accuracy_all: Option<f64>,
    /// The same from the super raters.
    pub flag_accuracy_screened: Option<f64>,
    /// Krippendorff's alpha of preferences, all raters.
    pub krippendorff_alpha_all: Option<f64>,
    /// The same among the super raters.
    pub krippendorff_alpha_screened: Option<f64>,
    /// K-way rankings in the preference dataset.
    pub preference_rankings: usize,
}

/// The reward model's figures; `None` until stage 6 fills them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardModelSummary {
    /// Pairwise accuracy against the ground-truth preference on held-out prompts.
    pub accuracy: Option<f64>,
    /// The same for a reward model trained on unscreened labels.
    pub accuracy_unscreened: Option<f64>,
    /// Validation loss.
    pub loss: Option<f64>,
    /// Expected calibration error of sigmoid(r_a - r_b), over both orientations of every
    /// validation pair.
    pub ece: Option<f64>,
}

/// One acceptance check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Passed, failed, or not measurable yet.
    pub passed: Option<bool>,
    /// The numbers behind it.
    pub detail: String,
}

/// The summary object (`summary.json`, `--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Seed of the run.
    pub seed: u64,
    /// Per policy, in evaluation order (`base`, `sft`, then `ppo`, `ppo_no_ptx` once wired).
    pub policies: BTreeMap<String, PolicySummary>,
    /// The policies' order.
    pub policy_order: Vec<String>,
    /// The raters.
    pub raters: RaterSummary,
    /// The reward model.
    pub reward_model: RewardModelSummary,
    /// Acceptance checks.
    pub checks: Vec<Check>,
    /// Stages not in this build yet.
    pub missing_stages: Vec<String>,
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
}

/// `a > b` as a check, `None` when either is missing.
fn greater(name: &str, a: Option<f64>, b: Option<f64>, what: (&str, &str)) -> Check {
    Check {
        name: name.to_string(),
        passed: a.zip(b).map(|(a, b)| a > b),
        detail: format!("{} {} vs {} {}", what.0, fmt(a), what.1, fmt(b)),
    }
}

impl Summary {
    /// Builds the summary from the evaluations and the rater report.
    pub fn new(
        seed: u64,
        evals: &[PolicyEval],
        raters: &RatersReport,
        reward_model: RewardModelSummary,
        missing: &[&str],
    ) -> Summary {
        let policies: BTreeMap<String, PolicySummary> = evals
            .iter()
            .map(|e| {
                (
                    e.policy.clone(),
                    PolicySummary {
                        criteria: e.criteria.clone(),
                        total: e.total,
                        refusal_rate: e.refusal_rate,
                        idk_rate: e.idk_rate,
                        kl_to_sft: e.kl_to_sft,
                        pretrain_loss: e.pretrain_loss,
                        win_rate_vs_sft: e.win_rate_vs_sft,
                    },
                )
            })
            .collect();
        let total = |p: &str| policies.get(p).map(|s| s.total);
        let (all, scr) = (&raters.accuracy_all, &raters.accuracy_screened);
        let checks = vec![
            greater(
                "ppo total > sft total",
                total("ppo"),
                total("sft"),
                ("ppo", "sft"),
            ),
            greater(
                "sft total > base total",
                total("sft"),
                total("base"),
                ("sft", "base"),
            ),
            greater(
                "screened raters' aggregated preferences more accurate than all raters'",
                scr.preferences_bradley_terry,
                all.preferences_bradley_terry,
                ("screened", "all"),
            ),
        ];
        Summary {
            seed,
            policy_order: evals.iter().map(|e| e.policy.clone()).collect(),
            policies,
            raters: RaterSummary {
                raters: raters.raters.len(),
                super_raters: raters.kept.clone(),
                preference_accuracy_all: all.preferences_bradley_terry,
                preference_accuracy_screened: scr.preferences_bradley_terry,
                flag_accuracy_all: all.flags_dawid_skene,
                flag_accuracy_screened: scr.flags_dawid_skene,
                krippendorff_alpha_all: raters.agreement_all.krippendorff_alpha,
                krippendorff_alpha_screened: raters.agreement_screened.krippendorff_alpha,
                preference_rankings: raters.preference_rankings,
            },
            reward_model,
            checks,
            missing_stages: missing.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The criteria columns, in the order of the first policy.
    pub fn criteria(&self) -> Vec<String> {
        self.policy_order
            .first()
            .and_then(|p| self.policies.get(p))
            .map(|p| p.criteria.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The policy table as Markdown (also what the terminal shows).
    pub fn policy_table(&self) -> String {
        let criteria = self.criteria();
        let mut header = vec!["policy".to_string()];
        header.extend(criteria.iter().cloned());
        header.extend(
            [
                "total",
                "refusal",
                "IDK",
                "win vs SFT",
                "KL to SFT",
                "pretrain loss",
            ]
            .map(String::from),
        );
        let mut out = format!(
            "| {} |\n|{}\n",
            header.join(" | "),
            "---|".repeat(header.len())
        );
        for name in &self.policy_order {
            let Some(p) = self.policies.get(name) else {
                continue;
            };
            let mut cells = vec![name.clone()];
            cells.extend(criteria.iter().map(|c| fmt(p.criteria.get(c).copied())));
            cells.extend([
                fmt(Some(p.total)),
                fmt(p.refusal_rate),
                fmt(p.idk_rate),
                fmt(p.win_rate_vs_sft),
                fmt(Some(p.kl_to_sft)),
                fmt(Some(p.pretrain_loss)),
            ]);
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    /// The whole summary for the terminal.
    pub fn render(&self) -> String {
        let mut out = self.policy_table();
        let r = &self.raters;
        let _ = writeln!(
            out,
            "\nraters: {} super raters of {} ({}); preference accuracy (Bradley-Terry per prompt) {} screened vs {} all; rule-flag accuracy (Dawid-Skene) {} vs {}; Krippendorff's alpha {} vs {}",
            r.super_raters.len(),
            r.raters,
            r.super_raters.join(", "),
            fmt(r.preference_accuracy_screened),
            fmt(r.preference_accuracy_all),
            fmt(r.flag_accuracy_screened),
            fmt(r.flag_accuracy_all),
            fmt(r.krippendorff_alpha_screened),
            fmt(r.krippendorff_alpha_all),
        );
        let rm = &self.reward_model;
        let _ = writeln!(
            out,
            "reward model: accuracy {} (unscreened labels {})",
            fmt(rm.accuracy),
            fmt(rm.accuracy_unscreened)
        );
        for c in &self.checks {
            let mark = match c.passed {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a ",
            };
            let _ = writeln!(out, "[{mark}] {}: {}", c.name, c.detail);
        }
        if !self.missing_stages.is_empty() {
            let _ = writeln!(out, "missing stages: {}", self.missing_stages.join(", "));
        }
        out
    }
}
