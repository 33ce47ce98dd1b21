//! Rendezvous through a file in the run directory, with no network service: rank 0 publishes
//! what the others need (the TCP port of its listener, or NCCL's unique id) to
//! `DIR/.rendezvous` atomically (temporary file, fsync, rename), and the other ranks poll for it
//! until a timeout whose error names the file.
//!
//! The file is one line, `rlhf-rendezvous 1 <run id> <backend> <hex payload>`: the run id (the
//! launcher's, the same for every rank of one launch) tells a fresh file from a stale one left by
//! an earlier run in the same directory, which a waiting rank ignores.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{DistError, Result};

/// The rendezvous file's name inside the run directory.
pub const RENDEZVOUS_FILE: &str = ".rendezvous";

const MAGIC: &str = "rlhf-rendezvous 1";

/// The rendezvous file of `dir`.
pub fn rendezvous_path(dir: &Path) -> PathBuf {
    dir.join(RENDEZVOUS_FILE)
}

/// Writes `payload` for `backend` and `run_id` to `DIR/.rendezvous` atomically (rank 0).
pub fn publish(dir: &Path, run_id: &str, backend: &str, payload: &[u8]) -> Result<()> {
    let path = rendezvous_path(dir);
    let fail = |reason: String| DistError::Rendezvous {
        rank: 0,
        path: path.clone(),
        reason,
    };
    check_token(run_id).map_err(&fail)?;
    fs::create_dir_all(dir).map_err(|e| fail(format!("creating the directory: {e}")))?;
    let line = format!("{MAGIC} {run_id} {backend} {}\n", hex(payload));
    let tmp = dir.join(format!("{RENDEZVOUS_FILE}.tmp-{}", std::process::id()));
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(line.as_bytes())?;
        f.sync_all()
    });
    written.map_err(|e| fail(format!("writing {}: {e}", tmp.display())))?;
    fs::rename(&tmp, &path).map_err(|e| fail(format!("renaming {}: {e}", tmp.display())))
}

/// Polls `DIR/.rendezvous` until it holds `backend`'s payload for `run_id`; an error naming the
/// file after `timeout`, or when the file is malformed.
pub fn wait_for(
    dir: &Path,
    rank: usize,
    run_id: &str,
    backend: &str,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let path = rendezvous_path(dir);
    let fail = |reason: String| DistError::Rendezvous {
        rank,
        path: path.clone(),
        reason,
    };
    check_token(run_id).map_err(&fail)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if let Ok(text) = fs::read_to_string(&path) {
            let fields: Vec<&str> = text.trim_end().split(' ').collect();
            if fields.len() != 5 || fields[..2].join(" ") != MAGIC {
                return Err(fail(format!(
                    "expected one line `{MAGIC} <run id> <backend> <hex>`, found {:?}",
                    text.trim_end()
                )));
            }
            if fields[2] == run_id {
                if fields[3] != backend {
                    return Err(fail(format!(
                        "rank 0 set up the `{}` backend, this rank expected `{backend}`",
                        fields[3]
                    )));
                }
                return unhex(fields[4]).map_err(fail);
            }
        }
        if start.elapsed() >= timeout {
            return Err(fail(format!(
                "rank 0 did not publish run `{run_id}` within {:.1} s (did rank 0 start?)",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A run id must be one printable word.
fn check_token(run_id: &str) -> std::result::Result<(), String> {
    if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "the run id must be one printable ASCII word, got {run_id:?}"
        ));
    }
    Ok(())
}

/// Lower-case hex of `bytes` ("-" for none, so the field is never empty).
fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`hex`].
fn unhex(text: &str) -> std::result::Result<Vec<u8>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    if !text.len().is_multiple_of(2) {
        return Err(format!("payload `{text}` is not hex (odd length)"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| format!("payload `{text}` is not hex (at character {i})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rlhf-rdv-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn published_payload_round_trips_and_stale_runs_are_ignored() {
        let dir = scratch("round");
        publish(&dir, "old-run", "tcp", &[1, 2]).unwrap();
        let waiter = {
            let dir = dir.clone();
            std::thread::spawn(move || wait_for(&dir, 1, "new-run", "tcp", Duration::from_secs(5)))
        };
        std::thread::sleep(Duration::from_millis(30));
        publish(&dir, "new-run", "tcp", &[0, 255, 16]).unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), vec![0, 255, 16]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timeout_and_backend_mismatch_name_the_file() {
        let dir = scratch("timeout");
        let err = wait_for(&dir, 3, "run", "tcp", Duration::from_millis(20)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rank 3") && text.contains(".rendezvous"),
            "{text}"
        );
        publish(&dir, "run", "nccl", &[]).unwrap();
        let err = wait_for(&dir, 1, "run", "tcp", Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("`nccl`"), "{err}");
        fs::write(rendezvous_path(&dir), "garbage\n").unwrap();
        let err = wait_for(&dir, 1, "run", "tcp", Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("expected one line"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
