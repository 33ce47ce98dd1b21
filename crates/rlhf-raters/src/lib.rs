//! # rlhf-raters
//!
//! Rater-quality statistics: agreement coefficients, gold screening and super raters, aggregation
//! with rater skill, Elo and Bradley–Terry rankings. Sparse throughout: labels are stored as
//! `(item, rater, label)` triples grouped by item, never as an items x raters matrix.
//!
//! Parts:
//! - [`labels`], [`pairs`], [`io`], [`intern`]: the data (CSV / JSONL / gzip readers with errors that
//!   name file, line and field; interned `u32` ids; CSR storage);
//! - [`mod@agreement`]: percent agreement, Cohen (3 weightings, SEs), Scott, Fleiss (SE, z), Gwet AC1,
//!   Brennan–Prediger, Krippendorff's alpha (4 levels), pairwise matrix, breakdowns, bootstrap;
//! - [`screening`]: accuracy against gold with Wilson intervals, consensus agreement, super
//!   raters, random/adversarial flags;
//! - [`aggregate`]: majority vote, Dawid–Skene, one-coin Dawid–Skene, GLAD, MACE;
//! - [`ranking`]: online Elo, Bradley–Terry MLE with bootstrap intervals and overlap ranks;
//! - [`synth`]: seeded synthetic labels and comparisons for tests and benchmarks;
//! - [`coefficient`], [`rng`], [`error`]: undefined-aware values, the seeded generator, errors.
//!
//! Statistics that are undefined on some data (all labels identical, nothing pairable) return
//! [`Coefficient::Undefined`] with the reason; nothing returns NaN and nothing panics on input.
//! Dependencies: `csv`, `serde_json`, `flate2` (formats), `rayon` (parallel passes).

#![warn(missing_docs)]

pub mod aggregate;
pub mod agreement;
pub mod coefficient;
pub mod error;
pub mod intern;
pub mod io;
pub mod labels;
pub mod pairs;
pub mod ranking;
pub mod rng;
pub mod screening;
pub mod synth;

pub use agreement::bootstrap::{BootstrapSpec, Interval};
pub use agreement::cohen::Weighting;
pub use agreement::krippendorff::Level;
pub use agreement::{AgreementOptions, AgreementReport, agreement, krippendorff_alpha};
pub use coefficient::Coefficient;
pub use error::{RatersError, Result};
pub use labels::{Gold, LabelSet, LabelSetBuilder};
pub use pairs::{Comparisons, Game, Outcome};
