//! Stage 4: K responses per RL prompt (sampled from the SFT model, plus optionally some in the
//! world's varied styles), labeled by the simulated labeler population: K-way rankings, pairwise
//! choices, rule-violation flags and answers to the world's questions. Every labeler also labels
//! the researchers' gold tasks, which the raters stage screens them on.

use rlhf_data::records::{Feedback, Prompt};
use rlhf_data::world::prompts::question_of;
use rlhf_data::world::{LabelTask, World};
use rlhf_transformer::{Gpt, Sampling};

use super::context::RunContext;
use super::error::Result;
use super::generation::{SampleSpec, sample};
use super::pretrain::Pretrained;
use super::rundir::Metrics;
use super::sft::{self, Sft};
use super::world::distinct;

/// Stage name.
pub const STAGE: &str = "label";

/// Everything the labelers said.
#[derive(Debug, Clone)]
pub struct Labels {
    /// The ordinary tasks: a prompt and its K responses (`labels/tasks.jsonl`).
    pub tasks: Vec<LabelTask>,
    /// How many of each task's responses (the first ones) were sampled from SFT.
    pub sampled_per_task: usize,
    /// The researchers' gold tasks (`labels/gold_tasks.jsonl`).
    pub gold_tasks: Vec<LabelTask>,
    /// Every labeler's records on ordinary and gold tasks (`labels/feedback.jsonl`).
    pub feedback: Vec<Feedback>,
    /// The researchers' records on the gold tasks (`labels/gold.jsonl`).
    pub gold: Vec<Feedback>,
}

impl Labels {
    /// (prompt, SFT response) pairs: the responses sampled from SFT, the reference set a reward
    /// model is normalised on (mean reward 0 on SFT's own answers).
    pub fn sft_references(&self) -> Vec<(Prompt, String)> {
        self.tasks
            .iter()
            .flat_map(|task| {
                let prompt = Prompt::user(question_of(&task.prompt));
                task.responses
                    .iter()
                    .take(self.sampled_per_task)
                    .map(move |r| (prompt.clone(), r.clone()))
            })
            .collect()
    }
}

const FILES: [&str; 4] = [
    "labels/tasks.jsonl",
    "labels/gold_tasks.jsonl",
    "labels/feedback.jsonl",
    "labels/gold.jsonl",
];

/// Loads the labels of a finished stage (or a user's files in the same layout).
pub fn load_labels(ctx: &RunContext, stage: &'static str) -> Result<Labels> {
    let c = &ctx.config.labels;
    Ok(Labels {
        tasks: ctx.dir.read_jsonl(FILES[0], stage, STAGE)?,
        sampled_per_task: c.k - c.world_candidates,
        gold_tasks: ctx.dir.read_jsonl(FILES[1], stage, STAGE)?,
        feedback: ctx.dir.read_jsonl(FILES[2], stage, STAGE)?,
        gold: ctx.dir.read_jsonl(FILES[3], stage, STAGE)?,
    })
}

/// Samples and labels (or loads the labels when the stage is done).
pub fn label(
    ctx: &RunContext,
    world: &World,
    base: &Pretrained,
    sft_model: &Sft,
) -> Result<Labels> {
    if ctx.dir.is_done(STAGE) {
        return load_labels(ctx, STAGE);
    }
    let started = std::time::Instant::now();
    let c = &ctx.config.labels;
    ctx.dir
        .require("models/sft/model.safetensors", STAGE, sft::STAGE)?;
    let model = Gpt::load(&sft_model.model_dir, ctx.config.device()?)?;
    let tok = &base.tokenizer;
    let mut prompts = distinct(&world.rl_prompts);
    if c.prompts > 0 {
        prompts.truncate(c.prompts);
    }
    let rendered: Vec<String> = prompts.iter().map(|p| p.render()).collect();
    let sampled_per_task = c.k - c.world_candidates;
    let bar = ctx
        .progress
        .bar(STAGE, (prompts.len() * sampled_per_task) as u64, "samples");
    let sampling = Sampling {
        temperature: c.temperature,
        top_k: 0,
        top_p: c.top_p,
    };
    let spec = SampleSpec {
        per_prompt: sampled_per_task,
        max_new_tokens: c.max_new_tokens,
        sampling,
        seed: ctx.config.seed ^ 0x5eed_1abe,
    };
    let samples = sample(&model, tok, &rendered, spec, &bar)?;
    bar.finish_and_clear();
    let tasks: Vec<LabelTask> = prompts
        .iter()
        .zip(&samples)
        .map(|(prompt, drawn)| {
            let mut responses: Vec<String> = drawn.iter().map(|s| s.text.clone()).collect();
            responses.extend(world.candidate_responses(prompt, c.world_candidates, "labels"));
            LabelTask {
                item_id: format!("label-{}", prompt.id),
                prompt: prompt.render(),
                responses,
            }
        })
        .collect();
    let gold_set = world.gold_set()?;
    let mut feedback = Vec::new();
    for (_, _, output) in world.label_tasks(&tasks, c.labelers_per_task)? {
        feedback.extend(output.into_feedback());
    }
    for (_, _, output) in world.label_tasks(&gold_set.tasks, world.labelers.len())? {
        feedback.extend(output.into_feedback());
    }
    let gold: Vec<Feedback> = gold_set
        .labels
        .into_iter()
        .flat_map(|output| output.into_feedback())
        .collect();

    // How good are the sampled responses, by the ground truth, against the world's candidates.
    let mut metrics = Metrics::new(STAGE);
    let (mut sampled_total, mut sampled_n, mut world_total, mut world_n) =
        (0.0, 0usize, 0.0, 0usize);
    let mut distinct_sum = 0usize;
    for task in &tasks {
        for (i, response) in task.responses.iter().enumerate() {
            let total = world.score(&task.prompt, response)?.total;
            if i < sampled_per_task {
                sampled_total += total;
                sampled_n += 1;
            } else {
                world_total += total;
                world_n += 1;
            }
        }
        let mut unique = task.responses.clone();
        unique.sort();
        unique.dedup();
        distinct_sum += unique.len();
    }
    let finished = samples.iter().flatten().filter(|s| s.finished).count();
    let mean = |sum: f64, n: usize| if n == 0 { f64::NAN } else { sum / n as f64 };
    metrics.push(
        None,
        &[
            ("tasks", tasks.len() as f64),
            ("gold_tasks", gold_set.tasks.len() as f64),
            ("records", feedback.len() as f64),
            ("sampled/true_total", mean(sampled_total, sampled_n)),
            ("sampled/eos_rate", mean(finished as f64, sampled_n)),
            ("world_candidates/true_total", mean(world_total, world_n)),
            (
                "distinct_responses_per_task",
                mean(distinct_sum as f64, tasks.len()),
            ),
        ],
    );
    ctx.dir.write_jsonl(FILES[0], &tasks)?;
    ctx.dir.write_jsonl(FILES[1], &gold_set.tasks)?;
    ctx.dir.write_jsonl(FILES[2], &feedback)?;
    ctx.dir.write_jsonl(FILES[3], &gold)?;
    ctx.dir
        .write_metrics(STAGE, metrics.lines(), &super::stage_names())?;
    tracing::info!(
        tasks = tasks.len(),
        records = feedback.len(),
        "labels collected"
    );
    ctx.dir.mark_done(STAGE, started.elapsed().as_secs_f64())?;
    ctx.check_halt(STAGE, None)?;
    Ok(Labels {
        tasks,
        sampled_per_task,
        gold_tasks: gold_set.tasks,
        feedback,
        gold,
    })
}
