//! Progress bars (stage, step, ETA, the stage's key metric) and the `--quiet` switch.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes the progress bars of a run; hidden when quiet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// Bars shown unless `quiet`.
    pub fn new(quiet: bool) -> Progress {
        Progress { quiet }
    }

    /// Whether bars and info logs are off.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A bar for `stage` counting `len` `unit`s.
    pub fn bar(&self, stage: &str, len: u64, unit: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if self.quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        let template =
            format!("{{prefix:>8}} [{{bar:28}}] {{pos}}/{{len}} {unit} ETA {{eta}} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_string());
        bar
    }
}
