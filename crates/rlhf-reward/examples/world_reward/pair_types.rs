//! The held-out truth pairs split by what the two responses do (a correct claim, a wrong one,
//! an abstention, a refusal, ...), so a report says which comparisons a reward model gets
//! wrong: e.g. `arithmetic correct>abstain` needs the model to know the sum and to place an
//! abstention between a right and a wrong claim.

use std::error::Error;

use rlhf_data::records::{FeedbackMeta, Pairwise, Prompt};
use rlhf_data::tokenizer::BpeTokenizer;
use rlhf_data::world::{Claim, LabelTask, LabelerKind, World, WorldPrompt};
use rlhf_reward::{Comparison, PreferenceBuilder, RuleColumns, SequenceConfig};

use crate::slice_of;

/// What a response does, in one word.
fn response_kind(
    world: &World,
    prompt: &str,
    response: &str,
) -> Result<&'static str, Box<dyn Error>> {
    let a = world.judge(prompt, response)?.analysis;
    Ok(if a.harmful_content {
        "comply"
    } else {
        match a.claim {
            Claim::Correct => "correct",
            Claim::Wrong => "wrong",
            Claim::Mixed => "mixed",
            Claim::None if a.rude => "rude",
            Claim::None if a.refuses => "refusal",
            Claim::None => "abstain",
        }
    })
}

/// Every strict pair of the truth's ranking of `tasks` (aligned with `prompts`) as a pairwise
/// comparison sourced `"{slice} {better kind}>{worse kind}"`.
pub fn pair_type_comparisons(
    world: &World,
    tasks: &[LabelTask],
    prompts: &[WorldPrompt],
    tok: &BpeTokenizer,
    sequence: &SequenceConfig,
) -> Result<Vec<Comparison>, Box<dyn Error>> {
    let researchers = LabelerKind::Researcher.profile("truth");
    let mut builder = PreferenceBuilder::new(tok, sequence.clone(), RuleColumns::Off);
    for (task, prompt) in tasks.iter().zip(prompts) {
        let truth = world.label(&researchers, task)?;
        let question = rlhf_data::world::prompts::question_of(&task.prompt);
        for (n, pair) in truth.ranking.pairs().into_iter().enumerate() {
            let (better, worse) = (&task.responses[pair.better], &task.responses[pair.worse]);
            let source = format!(
                "{} {}>{}",
                slice_of(&prompt.kind),
                response_kind(world, &task.prompt, better)?,
                response_kind(world, &task.prompt, worse)?
            );
            let record = Pairwise::new(
                FeedbackMeta::new(format!("{}-{n}", task.item_id)),
                Prompt::user(question),
                better.clone(),
                worse.clone(),
            );
            builder.add(&record.into(), &source)?;
        }
    }
    Ok(builder.build()?.comparisons)
}
