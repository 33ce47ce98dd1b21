//! An indicatif progress bar for PPO runs: steps, reward, KL, KL coefficient, tokens/s and the
//! generation / forward / scoring / training time split.

use indicatif::{ProgressBar, ProgressStyle};

use crate::trainer::{PpoEvent, StepRecord};

/// A one-line summary of a step (what the progress bar shows).
pub fn summary(record: &StepRecord) -> String {
    let m = &record.metrics;
    format!(
        "score {:.3} kl {:.3} beta {:.3} len {:.1} {:.0} tok/s {}",
        m.scores,
        m.kl,
        m.kl_coef,
        m.response_length,
        record.tokens_per_second,
        record.timing.split()
    )
}

/// A bar over `total_steps` PPO steps, starting at `done` (a resumed run).
pub fn bar(total_steps: u64, done: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_steps);
    if let Ok(style) =
        ProgressStyle::with_template("ppo {bar:30} {pos}/{len} steps {msg} [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    bar.set_position(done);
    bar
}

/// Moves `bar` along with the trainer's events (skips and saves are printed above it).
pub fn update(bar: &ProgressBar, event: &PpoEvent) {
    match event {
        PpoEvent::Step(record) => {
            bar.set_position(record.step);
            bar.set_message(summary(record));
        }
        PpoEvent::Skipped { step, reason } => {
            bar.println(format!("step {step}: update skipped: {reason}"));
        }
        PpoEvent::Saved(dir) => bar.println(format!("saved {}", dir.display())),
    }
}
