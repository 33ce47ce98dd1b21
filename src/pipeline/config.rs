//! The run configuration: one TOML file with a section per stage. Every field has a default
//! (the embedded `default.toml` lists them all with their documentation); `micro.toml` is a preset
//! small enough for tests. Loading rejects unknown fields and bad values, naming the field, before
//! anything is trained.

use rlhf_data::world::WorldConfig;
use serde::{Deserialize, Serialize};

use super::error::{PipelineError, Result};

/// The embedded default configuration, with every field documented.
pub const DEFAULT_TOML: &str = include_str!("default.toml");
/// The embedded micro preset (tests and doctests: the whole pipeline in seconds).
pub const MICRO_TOML: &str = include_str!("micro.toml");

/// A named preset of the run configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `default.toml`: the full run, sized for two CPU cores.
    Default,
    /// `micro.toml`: a tiny run for tests.
    Micro,
}

impl Preset {
    /// The preset's TOML text.
    pub fn toml(self) -> &'static str {
        match self {
            Preset::Default => DEFAULT_TOML,
            Preset::Micro => MICRO_TOML,
        }
    }
}

/// The whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The seed from which every random choice of the run flows (the world's included).
    pub seed: u64,
    /// Where the models run: "cpu", "cuda" (= "cuda:0") or "cuda:N"; `--device` overrides it.
    #[serde(default = "default_device")]
    pub device: String,
    /// Precision of the language-model training stages: "f32", or "bf16" (mixed precision with
    /// f32 master weights; CUDA only); `--precision` overrides it.
    #[serde(default = "default_precision")]
    pub precision: String,
    /// Activation recomputation in the LM training stages (LayerNorm and GELU outputs rebuilt
    /// in the backward: less memory, the same numbers); `--recompute` turns it on.
    #[serde(default)]
    pub recompute: bool,
    /// The synthetic HHH world (rlhf-data's `WorldConfig`; its `seed` follows the top-level one).
    pub world: WorldConfig,
    /// The BPE tokenizer trained on the world's corpus.
    pub tokenizer: TokenizerSection,
    /// The GPT-2 model shape shared by every policy.
    pub model: ModelSection,
    /// Pretraining of the base model on the corpus.
    pub pretrain: TrainSection,
    /// Supervised fine-tuning on the demonstrations.
    pub sft: TrainSection,
    /// Sampling responses from the SFT model and labeling them.
    pub labels: LabelsSection,
    /// Rater statistics, screening and aggregation.
    pub raters: RatersSection,
    /// The reward model (stage 6).
    pub reward_model: RewardModelSection,
    /// PPO (stage 7).
    pub ppo: PpoSection,
    /// Evaluation against ground truth.
    pub eval: EvalSection,
}

/// `[tokenizer]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSection {
    /// Vocabulary size (specials and the 256 bytes included).
    pub vocab_size: usize,
    /// Pairs seen fewer times are never merged.
    pub min_frequency: u64,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Model width.
    pub n_embd: usize,
    /// Attention heads (`n_embd` must be a multiple).
    pub n_head: usize,
    /// Longest sequence (prompt + response).
    pub n_positions: usize,
}

/// `[pretrain]` and `[sft]`: one language-model training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Optimizer steps.
    pub steps: u64,
    /// Sequences per step.
    pub batch_size: usize,
    /// Tokens per sequence (the packing window when pretraining, truncation for SFT).
    pub seq_len: usize,
    /// Peak learning rate (AdamW, cosine decay after a linear warmup).
    pub lr: f32,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Clip the global gradient norm (0 = no clipping).
    pub max_grad_norm: f32,
    /// Share of the data held out for the validation loss.
    pub val_fraction: f64,
    /// Validate every this many steps (0 = only at the end).
    pub eval_every: u64,
    /// Write a resumable checkpoint every this many steps (0 = only at the end).
    pub save_every: u64,
}

/// `[labels]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsSection {
    /// Distinct RL prompts to label (0 = all).
    pub prompts: usize,
    /// Responses per prompt (K).
    pub k: usize,
    /// Of the K, how many are written by the world's response styles instead of sampled from
    /// SFT (varied styles, as InstructGPT mixed outputs of several models); 0 = all sampled.
    pub world_candidates: usize,
    /// Sampling temperature of the SFT responses.
    pub temperature: f32,
    /// Nucleus mass of the SFT responses (1 = all).
    pub top_p: f32,
    /// Longest sampled response in tokens.
    pub max_new_tokens: usize,
    /// Labelers per ordinary task (gold tasks are labeled by everyone).
    pub labelers_per_task: usize,
}

/// `[raters]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatersSection {
    /// Super raters need at least this accuracy on gold preferences.
    pub min_gold_accuracy: f64,
    /// ... and at least this many gold preferences labeled.
    pub min_gold_items: u64,
    /// Coverage of the Wilson interval used to flag random and adversarial raters.
    pub confidence: f64,
    /// Drop raters flagged random or adversarial.
    pub exclude_flagged: bool,
    /// Dawid–Skene iterations at most.
    pub em_max_iterations: usize,
    /// Virtual ties added between every pair of a prompt's candidates before the Bradley–Terry
    /// fit (a prior that keeps the MLE finite when one response always wins); 0 = none.
    pub bt_prior_ties: usize,
    /// Elo update step K.
    pub elo_k: f64,
}

/// `[reward_model]`: read by stage 6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardModelSection {
    /// Passes over the preference dataset.
    pub epochs: usize,
    /// Prompts (K-way rankings) per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// The preference loss: `kwise` (InstructGPT), `bt` (pairs) or `margin`.
    pub loss: String,
    /// Weight of the rule-violation auxiliary loss (0 = off).
    pub rule_loss_weight: f32,
    /// Share of prompts held out for validation accuracy.
    pub val_fraction: f64,
    /// Where the reward is read: `eos` (the head at the last token), or the EOS plus a learned
    /// gate over the trunk's token likelihoods: `gated-likelihood`, `gated-probability`,
    /// `gated-centred-likelihood`, `gated-top-margin`, `gated-top-choice`, `gated-top-ratio`,
    /// `gated-top-gap`, `gated-top-margin-ratio` (`rlhf_reward::read`).
    #[serde(default = "default_read")]
    pub read: String,
    /// Weight of an auxiliary next-token loss on the best responses (0 = off).
    #[serde(default)]
    pub lm_weight: f64,
    /// The trunk's learning rate as a fraction of `lr` (1 = the same, 0 = frozen).
    #[serde(default = "default_trunk_lr_scale")]
    pub trunk_lr_scale: f32,
}

/// `[ppo]`: read by stage 7 once it is wired in (TRL names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpoSection {
    /// PPO steps (rollout + optimisation rounds).
    pub steps: u64,
    /// Prompts per rollout.
    pub batch_size: usize,
    /// Policy learning rate.
    pub lr: f32,
    /// Initial KL coefficient beta.
    pub kl_coef: f64,
    /// Adaptive KL target (0 = fixed coefficient).
    pub target_kl: f64,
    /// Policy ratio clip epsilon.
    pub cliprange: f64,
    /// Value clip epsilon.
    pub cliprange_value: f64,
    /// Value loss coefficient.
    pub vf_coef: f64,
    /// Discount.
    pub gamma: f64,
    /// GAE lambda.
    pub lam: f64,
    /// Optimisation passes per rollout.
    pub num_ppo_epochs: usize,
    /// Minibatches per pass.
    pub num_mini_batches: usize,
    /// Rollout sampling temperature.
    pub temperature: f32,
    /// Longest response in tokens.
    pub response_length: usize,
    /// Score of a response without EOS (replaces the reward model's).
    pub missing_eos_penalty: f64,
    /// PPO-ptx coefficient gamma of the pretraining log-likelihood (the `ppo` policy; the
    /// `ppo_no_ptx` policy uses 0).
    pub ptx_coef: f64,
}

/// `[eval]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Held-out prompts evaluated (0 = all the world's eval prompts).
    pub prompts: usize,
    /// Sampling temperature of evaluated responses (0 = greedy).
    pub temperature: f32,
    /// Longest evaluated response in tokens.
    pub max_new_tokens: usize,
    /// Held-out corpus windows for the pretraining loss (the alignment tax).
    pub pretrain_loss_windows: usize,
}

/// Parses `text` (TOML) into a config over the default preset; `origin` names the file in errors.
/// Unknown fields are rejected first, naming their dotted path; then types; then values
/// ([`RunConfig::validate`]).
pub fn parse(text: &str, origin: &str) -> Result<RunConfig> {
    parse_over(Preset::Default, text, origin)
}

fn table(text: &str, origin: &str) -> Result<toml::Table> {
    toml::from_str(text).map_err(|e| PipelineError::Config {
        field: origin.to_string(),
        message: e.to_string(),
    })
}

/// Parses `text` with every field it does not give taken from `preset`.
pub fn parse_over(preset: Preset, text: &str, origin: &str) -> Result<RunConfig> {
    let schema = table(DEFAULT_TOML, "default.toml")?;
    let user = table(text, origin)?;
    check_known(&user, &schema, "", origin)?;
    let mut merged = schema;
    if preset == Preset::Micro {
        merge(&mut merged, table(MICRO_TOML, "micro.toml")?);
    }
    merge(&mut merged, user);
    let mut config: RunConfig =
        merged
            .try_into()
            .map_err(|e: toml::de::Error| PipelineError::Config {
                field: origin.to_string(),
                message: e.to_string(),
            })?;
    if config.world.seed != 0 && config.world.seed != config.seed {
        return Err(PipelineError::config(
            "world.seed",
            "set the top-level `seed` instead (it seeds the world too)",
        ));
    }
    config.world.seed = config.seed;
    config.validate()?;
    Ok(config)
}

/// Rejects keys of `user` that `defaults` does not have (recursing into tables, not arrays).
fn check_known(
    user: &toml::Table,
    defaults: &toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<()> {
    for (key, value) in user {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match defaults.get(key) {
            None => {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                return Err(PipelineError::config(
                    &path,
                    format!(
                        "unknown field in {origin}; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            }
            Some(toml::Value::Table(d)) => match value {
                toml::Value::Table(u) => check_known(u, d, &path, origin)?,
                other => {
                    return Err(PipelineError::config(
                        &path,
                        format!("expected a table ([{path}]), got a {}", other.type_str()),
                    ));
                }
            },
            Some(_) => {}
        }
    }
    Ok(())
}

/// Overwrites `base` with `over`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl RunConfig {
    /// A preset, parsed and validated.
    pub fn preset(preset: Preset) -> Result<RunConfig> {
        parse_over(preset, "", "<preset>")
    }

    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
        parse(&text, &path.display().to_string())
    }

    /// The effective config as TOML (reusable with `--config`).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| PipelineError::config("<config>", e.to_string()))
    }

    /// Checks every value; the error names the field and what was expected.
    pub fn validate(&self) -> Result<()> {
        self.device()?;
        let precision = self.precision()?;
        if precision == rlhf_transformer::Precision::Bf16
            && self.device()? == rlhf_tensor::Device::Cpu
        {
            return Err(PipelineError::config(
                "precision",
                "bf16 needs a CUDA device (device = \"cuda\"); the CPU backend computes in f32",
            ));
        }
        self.world
            .validate()
            .map_err(|e| PipelineError::config("world", e))?;
        let t = &self.tokenizer;
        if t.vocab_size < 259 {
            return Err(PipelineError::config(
                "tokenizer.vocab_size",
                format!(
                    "{} is too small, expected at least 259 (2 specials + 256 bytes + 1 merge)",
                    t.vocab_size
                ),
            ));
        }
        let m = &self.model;
        positive("model.n_layer", m.n_layer)?;
        positive("model.n_embd", m.n_embd)?;
        positive("model.n_head", m.n_head)?;
        if !m.n_embd.is_multiple_of(m.n_head) {
            return Err(PipelineError::config(
                "model.n_head",
                format!("{} does not divide model.n_embd = {}", m.n_head, m.n_embd),
            ));
        }
        if m.n_positions < 16 {
            return Err(PipelineError::config(
                "model.n_positions",
                format!("{} is too small, expected at least 16", m.n_positions),
            ));
        }
        for (name, s) in [("pretrain", &self.pretrain), ("sft", &self.sft)] {
            s.validate(name, m.n_positions)?;
        }
        let l = &self.labels;
        if l.k < 2 {
            return Err(PipelineError::config(
                "labels.k",
                format!("{} responses per prompt, expected at least 2", l.k),
            ));
        }
        if l.world_candidates > l.k {
            return Err(PipelineError::config(
                "labels.world_candidates",
                format!("{} exceeds labels.k = {}", l.world_candidates, l.k),
            ));
        }
        positive("labels.labelers_per_task", l.labelers_per_task)?;
        positive("labels.max_new_tokens", l.max_new_tokens)?;
        temperature("labels.temperature", l.temperature)?;
        unit_open_closed("labels.top_p", f64::from(l.top_p))?;
        let r = &self.raters;
        unit_closed("raters.min_gold_accuracy", r.min_gold_accuracy)?;
        if !(r.confidence > 0.0 && r.confidence < 1.0) {
            return Err(PipelineError::config(
                "raters.confidence",
                format!("{} expected in (0, 1)", r.confidence),
            ));
        }
        positive("raters.em_max_iterations", r.em_max_iterations)?;
        if !(r.elo_k.is_finite() && r.elo_k > 0.0) {
            return Err(PipelineError::config(
                "raters.elo_k",
                format!("{} expected finite and > 0", r.elo_k),
            ));
        }
        let rm = &self.reward_model;
        if !["kwise", "bt", "margin"].contains(&rm.loss.as_str()) {
            return Err(PipelineError::config(
                "reward_model.loss",
                format!("`{}`, expected one of kwise, bt, margin", rm.loss),
            ));
        }
        positive("reward_model.epochs", rm.epochs)?;
        positive("reward_model.batch_size", rm.batch_size)?;
        learning_rate("reward_model.lr", rm.lr)?;
        non_negative(
            "reward_model.rule_loss_weight",
            f64::from(rm.rule_loss_weight),
        )?;
        unit_open("reward_model.val_fraction", rm.val_fraction)?;
        if rlhf_reward::RewardRead::from_name(&rm.read).is_none() {
            return Err(PipelineError::config(
                "reward_model.read",
                format!(
                    "`{}`, expected one of eos, gated-likelihood, gated-probability, \
                     gated-centred-likelihood, gated-top-margin, gated-top-choice, \
                     gated-top-ratio, gated-top-gap, gated-top-margin-ratio",
                    rm.read
                ),
            ));
        }
        non_negative("reward_model.lm_weight", rm.lm_weight)?;
        non_negative("reward_model.trunk_lr_scale", f64::from(rm.trunk_lr_scale))?;
        let p = &self.ppo;
        positive("ppo.batch_size", p.batch_size)?;
        positive("ppo.num_ppo_epochs", p.num_ppo_epochs)?;
        positive("ppo.num_mini_batches", p.num_mini_batches)?;
        positive("ppo.response_length", p.response_length)?;
        learning_rate("ppo.lr", p.lr)?;
        for (name, v) in [
            ("ppo.kl_coef", p.kl_coef),
            ("ppo.target_kl", p.target_kl),
            ("ppo.cliprange", p.cliprange),
            ("ppo.cliprange_value", p.cliprange_value),
            ("ppo.vf_coef", p.vf_coef),
            ("ppo.ptx_coef", p.ptx_coef),
        ] {
            non_negative(name, v)?;
        }
        unit_closed("ppo.gamma", p.gamma)?;
        unit_closed("ppo.lam", p.lam)?;
        temperature("ppo.temperature", p.temperature)?;
        if !p.missing_eos_penalty.is_finite() {
            return Err(PipelineError::config(
                "ppo.missing_eos_penalty",
                "expected a finite number",
            ));
        }
        if !p.batch_size.is_multiple_of(p.num_mini_batches) {
            return Err(PipelineError::config(
                "ppo.num_mini_batches",
                format!(
                    "{} does not divide ppo.batch_size = {}",
                    p.num_mini_batches, p.batch_size
                ),
            ));
        }
        let e = &self.eval;
        temperature("eval.temperature", e.temperature)?;
        positive("eval.max_new_tokens", e.max_new_tokens)?;
        positive("eval.pretrain_loss_windows", e.pretrain_loss_windows)?;
        for (name, longest) in [
            ("labels.max_new_tokens", l.max_new_tokens),
            ("eval.max_new_tokens", e.max_new_tokens),
            ("ppo.response_length", p.response_length),
        ] {
            if longest + 24 > m.n_positions {
                return Err(PipelineError::config(
                    name,
                    format!(
                        "{longest} tokens leave no room for a prompt in model.n_positions = {}",
                        m.n_positions
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TrainSection {
    fn validate(&self, section: &str, n_positions: usize) -> Result<()> {
        let f = |field: &str| format!("{section}.{field}");
        if self.steps == 0 {
            return Err(PipelineError::config(&f("steps"), "expected at least 1"));
        }
        positive(&f("batch_size"), self.batch_size)?;
        if self.seq_len < 2 || self.seq_len > n_positions {
            return Err(PipelineError::config(
                &f("seq_len"),
                format!(
                    "{} expected in 2..=model.n_positions ({n_positions})",
                    self.seq_len
                ),
            ));
        }
        learning_rate(&f("lr"), self.lr)?;
        non_negative(&f("weight_decay"), f64::from(self.weight_decay))?;
        non_negative(&f("max_grad_norm"), f64::from(self.max_grad_norm))?;
        unit_open(&f("val_fraction"), self.val_fraction)?;
        if self.warmup_steps > self.steps {
            return Err(PipelineError::config(
                &f("warmup_steps"),
                format!(
                    "{} exceeds {section}.steps = {}",
                    self.warmup_steps, self.steps
                ),
            ));
        }
        Ok(())
    }
}

fn positive(field: &str, value: usize) -> Result<()> {
    if value == 0 {
        return Err(PipelineError::config(field, "expected at least 1"));
    }
    Ok(())
}

fn non_negative(field: &str, value: f64) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected finite and >= 0"),
        ));
    }
    Ok(())
}

fn learning_rate(field: &str, value: f32) -> Result<()> {
    if !(value.is_finite() && value > 0.0 && value < 1.0) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected in (0, 1)"),
        ));
    }
    Ok(())
}

fn temperature(field: &str, value: f32) -> Result<()> {
    if !(value.is_finite() && value >= 0.0) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected finite and >= 0 (0 = greedy)"),
        ));
    }
    Ok(())
}

fn unit_closed(field: &str, value: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&value) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected in [0, 1]"),
        ));
    }
    Ok(())
}

fn unit_open_closed(field: &str, value: f64) -> Result<()> {
    if !(value > 0.0 && value <= 1.0) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected in (0, 1]"),
        ));
    }
    Ok(())
}

fn unit_open(field: &str, value: f64) -> Result<()> {
    if !(value > 0.0 && value < 1.0) {
        return Err(PipelineError::config(
            field,
            format!("{value} expected in (0, 1)"),
        ));
    }
    Ok(())
}

fn default_read() -> String {
    "eos".into()
}

fn default_trunk_lr_scale() -> f32 {
    1.0
}

fn default_device() -> String {
    "cpu".into()
}

fn default_precision() -> String {
    "f32".into()
}

impl RunConfig {
    /// The parsed `device`.
    pub fn device(&self) -> Result<rlhf_tensor::Device> {
        self.device
            .parse()
            .map_err(|e: rlhf_tensor::TensorError| PipelineError::config("device", e.to_string()))
    }

    /// The parsed `precision`.
    pub fn precision(&self) -> Result<rlhf_transformer::Precision> {
        self.precision
            .parse()
            .map_err(|e: rlhf_transformer::ModelError| {
                PipelineError::config("precision", e.to_string())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_round_trip() {
        for preset in [Preset::Default, Preset::Micro] {
            let config = RunConfig::preset(preset).unwrap();
            let text = config.to_toml().unwrap();
            assert_eq!(parse(&text, "effective").unwrap(), config);
        }
    }

    #[test]
    fn missing_fields_take_defaults() {
        let config = parse("seed = 5\n[pretrain]\nsteps = 70\n", "t.toml").unwrap();
        let default = RunConfig::preset(Preset::Default).unwrap();
        assert_eq!(config.pretrain.steps, 70);
        assert_eq!(config.world.seed, 5);
        assert_eq!(config.sft, default.sft);
    }

    #[test]
    fn unknown_fields_and_bad_values_name_the_field() {
        let err = parse("[pretrain]\nstepz = 3\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pretrain.stepz") && err.contains("unknown field"),
            "{err}"
        );
        let err = parse("[world]\nbogus = 1\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("world.bogus"), "{err}");
        let err = parse("[sft]\nlr = -1.0\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sft.lr"), "{err}");
        let err = parse("[model]\nn_head = 5\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.n_head"), "{err}");
        let err = parse("[labels]\nk = \"four\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("k"), "{err}");
        let err = parse("[world]\nfabricate_rate = 2.0\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fabricate_rate"), "{err}");
        let err = parse("[reward_model]\nread = \"mean\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reward_model.read") && err.contains("gated-top-margin"),
            "{err}"
        );
        let err = parse("[reward_model]\ntrunk_lr_scale = -0.5\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reward_model.trunk_lr_scale"), "{err}");
        let config = parse(
            "[reward_model]\nread = \"gated-top-margin\"\nlm_weight = 2.0\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(config.reward_model.read, "gated-top-margin");
        assert_eq!(config.reward_model.trunk_lr_scale, 1.0);
        let err = parse("pretrain = 3\n", "t.toml").unwrap_err().to_string();
        assert!(err.contains("pretrain") && err.contains("table"), "{err}");
    }
}
