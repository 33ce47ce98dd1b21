//! Stage 1: the synthetic HHH world. Built in memory from the config (deterministic and fast, so
//! every later stage rebuilds it rather than reading it back); the stage writes what a user may
//! want to inspect or replace: demonstrations, RL and eval prompts, and the corpus's make-up.

use std::collections::{BTreeMap, HashSet};

use rlhf_data::world::{PromptClass, World, WorldPrompt};
use serde::{Deserialize, Serialize};

use super::context::RunContext;
use super::error::Result;
use super::rundir::Metrics;

/// Stage name.
pub const STAGE: &str = "world";

/// A demonstration as written to `data/demonstrations.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemonstrationLine {
    /// The prompt in dialogue format (ends with `"\n\nAssistant:"`).
    pub prompt: String,
    /// The demonstrated response (the model sees `" " + response` then EOS).
    pub response: String,
}

/// Distinct prompts in first-seen order (the world's RL prompts repeat once a class runs out).
pub fn distinct(prompts: &[WorldPrompt]) -> Vec<WorldPrompt> {
    let mut seen = HashSet::new();
    prompts
        .iter()
        .filter(|p| seen.insert(p.id.clone()))
        .cloned()
        .collect()
}

/// Builds the world; on its first run also writes `data/*.jsonl` and the stage's metrics.
pub fn world(ctx: &RunContext) -> Result<World> {
    let started = std::time::Instant::now();
    let world = World::new(ctx.config.world.clone())?;
    if ctx.dir.is_done(STAGE) {
        return Ok(world);
    }
    let demos: Vec<DemonstrationLine> = world
        .demonstrations
        .iter()
        .map(|d| DemonstrationLine {
            prompt: d.prompt.render(),
            response: d.response.clone(),
        })
        .collect();
    ctx.dir.write_jsonl("data/demonstrations.jsonl", &demos)?;
    ctx.dir
        .write_jsonl("data/rl_prompts.jsonl", &world.rl_prompts)?;
    ctx.dir
        .write_jsonl("data/eval_prompts.jsonl", &world.eval_prompts)?;
    let mut habits: BTreeMap<String, usize> = BTreeMap::new();
    for doc in &world.corpus {
        *habits.entry(format!("{:?}", doc.habit)).or_default() += 1;
    }
    let class_count = |prompts: &[WorldPrompt], class: PromptClass| {
        prompts.iter().filter(|p| p.kind.class() == class).count() as f64
    };
    let mut metrics = Metrics::new(STAGE);
    let mut values: Vec<(String, f64)> = vec![
        ("corpus/documents".into(), world.corpus.len() as f64),
        ("demonstrations".into(), world.demonstrations.len() as f64),
        ("rl_prompts".into(), world.rl_prompts.len() as f64),
        (
            "rl_prompts/distinct".into(),
            distinct(&world.rl_prompts).len() as f64,
        ),
        ("eval_prompts".into(), world.eval_prompts.len() as f64),
        ("labelers".into(), world.labelers.len() as f64),
    ];
    for (name, prompts) in [("rl", &world.rl_prompts), ("eval", &world.eval_prompts)] {
        for (class, label) in [
            (PromptClass::Answerable, "answerable"),
            (PromptClass::Unanswerable, "unanswerable"),
            (PromptClass::Harmful, "harmful"),
        ] {
            values.push((
                format!("{name}_prompts/{label}"),
                class_count(prompts, class),
            ));
        }
    }
    values.extend(
        habits
            .iter()
            .map(|(h, n)| (format!("corpus/{h}"), *n as f64)),
    );
    if world.eval_prompts.len() < ctx.config.world.eval_prompts {
        tracing::warn!(
            made = world.eval_prompts.len(),
            asked = ctx.config.world.eval_prompts,
            "the held-out side of the prompt space has fewer distinct prompts than world.eval_prompts"
        );
    }
    let named: Vec<(&str, f64)> = values.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    metrics.push(None, &named);
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    tracing::info!(
        corpus = world.corpus.len(),
        demonstrations = world.demonstrations.len(),
        eval_prompts = world.eval_prompts.len(),
        "world built"
    );
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(world)
}
