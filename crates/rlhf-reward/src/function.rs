//! The [`RewardFunction`] PPO optimises: one scalar score per (prompt, response) episode.
//!
//! An [`Episode`] carries both the text and the token ids, so that a learned reward model reads
//! tokens and a rule-based or ground-truth scorer reads text, without either re-encoding.
//! Implementations take `&mut self` so they may keep workspaces or caches between calls.

use crate::error::{Result, RewardError};

/// One prompt and the response sampled for it, as text and as token ids.
///
/// `response_tokens` are the generated tokens after truncation at the EOS, with the EOS kept
/// when the sequence produced one; `prompt_tokens` are the prompt's tokens without padding.
#[derive(Debug, Clone, Copy)]
pub struct Episode<'a> {
    /// The prompt as text, as the policy saw it (rendered turns).
    pub prompt: &'a str,
    /// The response as text (decoded `response_tokens`, without the EOS).
    pub response: &'a str,
    /// The prompt's token ids, unpadded.
    pub prompt_tokens: &'a [u32],
    /// The response's token ids, truncated after the EOS.
    pub response_tokens: &'a [u32],
}

/// Scores episodes: the reward of RLHF's RL stage.
pub trait RewardFunction: Send {
    /// A short name for logs and metrics (e.g. `"reward-model"`, `"world-rules"`).
    fn name(&self) -> &str;

    /// One score per episode, in order. Fails rather than returning a made-up score.
    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>>;
}

/// A reward from a closure over one episode: for tests, baselines and quick experiments.
///
/// ```
/// use rlhf_reward::{Episode, FnReward, RewardFunction};
/// let mut longer_is_better = FnReward::new("length", |e: &Episode<'_>| Ok(e.response.len() as f32));
/// let episode = Episode { prompt: "Hi", response: "Hello!", prompt_tokens: &[1], response_tokens: &[2, 3] };
/// assert_eq!(longer_is_better.score(&[episode])?, vec![6.0]);
/// # Ok::<(), rlhf_reward::RewardError>(())
/// ```
pub struct FnReward<F> {
    name: String,
    score_one: F,
}

impl<F> FnReward<F>
where
    F: FnMut(&Episode<'_>) -> Result<f32> + Send,
{
    /// Wraps `score_one` under `name`.
    pub fn new(name: impl Into<String>, score_one: F) -> Self {
        FnReward {
            name: name.into(),
            score_one,
        }
    }
}

impl<F> RewardFunction for FnReward<F>
where
    F: FnMut(&Episode<'_>) -> Result<f32> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&mut self, episodes: &[Episode<'_>]) -> Result<Vec<f32>> {
        let mut scores = Vec::with_capacity(episodes.len());
        for (index, episode) in episodes.iter().enumerate() {
            let score = (self.score_one)(episode)?;
            if !score.is_finite() {
                return Err(RewardError::Scoring {
                    scorer: self.name.clone(),
                    message: format!("episode {index} scored {score}, expected a finite number"),
                });
            }
            scores.push(score);
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode<'a>(response: &'a str) -> Episode<'a> {
        Episode {
            prompt: "p",
            response,
            prompt_tokens: &[1],
            response_tokens: &[],
        }
    }

    #[test]
    fn closure_scores_each_episode_in_order() {
        let mut reward = FnReward::new("len", |e: &Episode<'_>| Ok(e.response.len() as f32));
        let scores = reward
            .score(&[episode("ab"), episode(""), episode("abc")])
            .unwrap();
        assert_eq!(scores, vec![2.0, 0.0, 3.0]);
        assert_eq!(reward.name(), "len");
    }

    #[test]
    fn non_finite_scores_are_refused_with_the_episode() {
        let mut reward = FnReward::new("bad", |e: &Episode<'_>| {
            Ok(if e.response.is_empty() { f32::NAN } else { 1.0 })
        });
        let err = reward.score(&[episode("a"), episode("")]).unwrap_err();
        assert!(err.to_string().contains("episode 1"), "{err}");
    }
}
