//! # rlhf-raters
//!
//! Rater-quality statistics: agreement coefficients, gold screening and super raters, aggregation
//! with rater skill, Elo and Bradley–Terry rankings.
//!
//! Status: being built (raters issue).
