//! What a launcher tells each rank through the environment: `RLHF_RANK`, `RLHF_WORLD_SIZE` and
//! `RLHF_RUN_ID` (the same for every rank of one launch, so a stale rendezvous file is
//! recognised), plus `RLHF_DIST_TIMEOUT_S` (how long a rank waits for the others; 600 s by
//! default).

use std::time::Duration;

use super::{DistError, Result};

/// The rank variable.
pub const RANK_VAR: &str = "RLHF_RANK";
/// The world-size variable.
pub const WORLD_SIZE_VAR: &str = "RLHF_WORLD_SIZE";
/// The run-id variable.
pub const RUN_ID_VAR: &str = "RLHF_RUN_ID";
/// The timeout variable (seconds).
pub const TIMEOUT_VAR: &str = "RLHF_DIST_TIMEOUT_S";

/// A rank's place in a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchEnv {
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// The launch's id (one printable word).
    pub run_id: String,
}

impl LaunchEnv {
    /// One rank alone.
    pub fn single() -> LaunchEnv {
        LaunchEnv {
            rank: 0,
            world_size: 1,
            run_id: "single".into(),
        }
    }

    /// The launch this process belongs to, from the environment; `None` when `RLHF_WORLD_SIZE`
    /// is not set (not launched). Malformed values are errors naming the variable.
    pub fn from_env() -> Result<Option<LaunchEnv>> {
        let Ok(world) = std::env::var(WORLD_SIZE_VAR) else {
            return Ok(None);
        };
        let world_size = parse(WORLD_SIZE_VAR, &world)?;
        let rank = parse(RANK_VAR, &std::env::var(RANK_VAR).unwrap_or_default())?;
        if world_size == 0 || rank >= world_size {
            return Err(DistError::invalid(
                "LaunchEnv::from_env",
                format!(
                    "{RANK_VAR}={rank} with {WORLD_SIZE_VAR}={world_size}: need 0 <= rank < world size"
                ),
            ));
        }
        let run_id = std::env::var(RUN_ID_VAR).unwrap_or_else(|_| "run".into());
        Ok(Some(LaunchEnv {
            rank,
            world_size,
            run_id,
        }))
    }

    /// How long a rank waits for the others (`RLHF_DIST_TIMEOUT_S`, default 600 s).
    pub fn timeout() -> Result<Duration> {
        match std::env::var(TIMEOUT_VAR) {
            Err(_) => Ok(Duration::from_secs(600)),
            Ok(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    DistError::invalid(
                        "LaunchEnv::timeout",
                        format!("{TIMEOUT_VAR}={v:?}: expected a positive number of seconds"),
                    )
                }),
        }
    }
}

fn parse(var: &str, value: &str) -> Result<usize> {
    value.trim().parse().map_err(|_| {
        DistError::invalid(
            "LaunchEnv::from_env",
            format!("{var}={value:?}: expected a non-negative integer"),
        )
    })
}
