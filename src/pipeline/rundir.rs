//! The run directory: where every stage reads its inputs and writes its outputs, so each stage
//! can run alone (`rlhf pretrain`, `rlhf sft`, ...) or be resumed (`rlhf run --resume DIR`).
//!
//! ```text
//! DIR/config.toml               the effective config (reusable with --config)
//! DIR/stages/STAGE.done.json    completion markers (written last; --resume skips these stages)
//! DIR/data/*.jsonl              the world's demonstrations, RL and eval prompts
//! DIR/tokenizer.json            the trained BPE tokenizer
//! DIR/models/{base,sft,...}/    HF GPT-2 checkpoints (+ tokenizer.json, trainer state)
//! DIR/labels/                   tasks.jsonl, feedback.jsonl (every labeler), gold.jsonl
//! DIR/raters/report.json        agreement, screening, aggregation accuracy
//! DIR/preferences.jsonl         the preference dataset: K-way rankings + rule labels (native JSONL)
//! DIR/preferences_all.jsonl     the same from every rater, unscreened
//! DIR/eval/POLICY.jsonl         each evaluated response with its ground-truth scores
//! DIR/metrics/STAGE.jsonl       a stage's named metrics; DIR/metrics.jsonl all of them
//! DIR/summary.json, report.md, plots/*.png
//! ```
//!
//! Every file is written atomically (temporary name, fsync, rename).

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{PipelineError, Result};

/// A run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Opens (creating if needed) the run directory at `root`.
    pub fn create(root: &Path) -> Result<RunDir> {
        for sub in [
            "stages", "data", "models", "labels", "raters", "eval", "metrics", "plots",
        ] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
        }
        Ok(RunDir {
            root: root.to_path_buf(),
        })
    }

    /// Opens an existing run directory (it must hold `config.toml`).
    pub fn open(root: &Path) -> Result<RunDir> {
        let config = root.join("config.toml");
        if !config.is_file() {
            return Err(PipelineError::bad_file(
                root,
                "not a run directory: config.toml is missing (start one with `rlhf run --out DIR`)",
            ));
        }
        RunDir::create(root)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The effective config file.
    pub fn config_path(&self) -> PathBuf {
        self.path("config.toml")
    }

    /// The checkpoint directory of `policy` (`models/POLICY`).
    pub fn model_dir(&self, policy: &str) -> PathBuf {
        self.root.join("models").join(policy)
    }

    fn marker(&self, stage: &str) -> PathBuf {
        self.root.join("stages").join(format!("{stage}.done.json"))
    }

    /// Whether `stage` finished (its marker exists).
    pub fn is_done(&self, stage: &str) -> bool {
        self.marker(stage).is_file()
    }

    /// Marks `stage` finished, recording how long it took.
    pub fn mark_done(&self, stage: &str, seconds: f64) -> Result<()> {
        let marker = serde_json::json!({"stage": stage, "seconds": seconds});
        self.write_json(&format!("stages/{stage}.done.json"), &marker)?;
        Ok(())
    }

    /// Forgets that `stage` finished (it will run again).
    pub fn clear_done(&self, stage: &str) -> Result<()> {
        let marker = self.marker(stage);
        match fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(PipelineError::io(&marker, e))
            }
            _ => Ok(()),
        }
    }

    /// Seconds `stage` took, from its marker.
    pub fn stage_seconds(&self, stage: &str) -> Option<f64> {
        let text = fs::read_to_string(self.marker(stage)).ok()?;
        serde_json::from_str::<Value>(&text)
            .ok()?
            .get("seconds")?
            .as_f64()
    }

    /// Writes `bytes` to `DIR/rel` atomically.
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| PipelineError::io(parent, e))?;
        }
        rlhf_transformer::files::write_atomic(&path, bytes)?;
        Ok(path)
    }

    /// Writes `value` as pretty JSON to `DIR/rel` atomically.
    pub fn write_json<T: Serialize + ?Sized>(&self, rel: &str, value: &T) -> Result<PathBuf> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| PipelineError::bad_file(&self.path(rel), e))?;
        text.push('\n');
        self.write_bytes(rel, text.as_bytes())
    }

    /// Writes one JSON line per item to `DIR/rel` atomically.
    pub fn write_jsonl<T: Serialize>(&self, rel: &str, items: &[T]) -> Result<PathBuf> {
        let mut text = String::new();
        for item in items {
            let line = serde_json::to_string(item)
                .map_err(|e| PipelineError::bad_file(&self.path(rel), e))?;
            text.push_str(&line);
            text.push('\n');
        }
        self.write_bytes(rel, text.as_bytes())
    }

    /// Reads `DIR/rel` as JSON; a missing file is a [`PipelineError::MissingInput`] of `stage`.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
        stage: &'static str,
        needs: &'static str,
    ) -> Result<T> {
        let path = self.require(rel, stage, needs)?;
        let text = fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| PipelineError::bad_file(&path, e))
    }

    /// Reads `DIR/rel` as JSON lines.
    pub fn read_jsonl<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
        stage: &'static str,
        needs: &'static str,
    ) -> Result<Vec<T>> {
        let path = self.require(rel, stage, needs)?;
        let text = fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| PipelineError::bad_file(&path, format!("line {}: {e}", i + 1)))
            })
            .collect()
    }

    /// `DIR/rel` if it exists, else a [`PipelineError::MissingInput`].
    pub fn require(&self, rel: &str, stage: &'static str, needs: &'static str) -> Result<PathBuf> {
        let path = self.path(rel);
        if path.exists() {
            Ok(path)
        } else {
            Err(PipelineError::MissingInput { stage, needs, path })
        }
    }

    /// Writes `stage`'s metric lines to `metrics/STAGE.jsonl` and rebuilds `metrics.jsonl` from
    /// every stage's file, in `order`.
    pub fn write_metrics(
        &self,
        stage: &str,
        lines: &[Map<String, Value>],
        order: &[&str],
    ) -> Result<()> {
        self.write_jsonl(&format!("metrics/{stage}.jsonl"), lines)?;
        let mut all = String::new();
        for name in order {
            let path = self.path(&format!("metrics/{name}.jsonl"));
            if path.is_file() {
                all.push_str(&fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?);
            }
        }
        self.write_bytes("metrics.jsonl", all.as_bytes())?;
        Ok(())
    }
}

/// Collects one stage's named metrics as JSON lines `{"stage", "step"?, name: value, ...}`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    stage: String,
    lines: Vec<Map<String, Value>>,
}

impl Metrics {
    /// An empty log for `stage`.
    pub fn new(stage: &str) -> Metrics {
        Metrics {
            stage: stage.to_string(),
            lines: Vec::new(),
        }
    }

    /// Appends a line of `(name, value)` pairs, at `step` if given.
    pub fn push(&mut self, step: Option<u64>, values: &[(&str, f64)]) {
        let mut line = Map::new();
        line.insert("stage".into(), Value::from(self.stage.clone()));
        if let Some(step) = step {
            line.insert("step".into(), Value::from(step));
        }
        for (name, value) in values {
            let v = serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number);
            line.insert((*name).to_string(), v);
        }
        self.lines.push(line);
    }

    /// The lines so far.
    pub fn lines(&self) -> &[Map<String, Value>] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_metrics_round_trip() {
        let root = std::env::temp_dir().join(format!("rlhf-rundir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = RunDir::create(&root).unwrap();
        assert!(RunDir::open(&root).is_err(), "no config.toml yet");
        assert!(!dir.is_done("world"));
        dir.mark_done("world", 1.5).unwrap();
        assert!(dir.is_done("world"));
        assert_eq!(dir.stage_seconds("world"), Some(1.5));
        dir.clear_done("world").unwrap();
        assert!(!dir.is_done("world"));
        let mut m = Metrics::new("sft");
        m.push(Some(3), &[("loss", 0.5), ("bad", f64::NAN)]);
        dir.write_metrics("sft", m.lines(), &["world", "sft"])
            .unwrap();
        let all = fs::read_to_string(dir.path("metrics.jsonl")).unwrap();
        let line: Value = serde_json::from_str(all.trim()).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"stage": "sft", "step": 3, "loss": 0.5, "bad": null})
        );
        let err = dir
            .read_json::<Value>("nope.json", "eval", "sft")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.json") && err.contains("`sft`"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}
