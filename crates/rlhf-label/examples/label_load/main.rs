//! Load test of the labeling server on loopback:
//! `cargo run -p rlhf-label --release --example label_load -- [--clients 200] [--seconds 60]
//! [--tasks 20000] [--k 4] [--workers 2]`.
//! Prints requests, errors, lost and duplicated labels, p50 / p99 latency; exits non-zero when
//! anything was lost, duplicated or failed.

mod load;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut options = load::LoadOptions {
        clients: 200,
        seconds: 60.0,
        tasks: 20_000,
        k: 4,
        workers: 2,
        dir: std::env::temp_dir().join(format!("rlhf-label-load-{}", std::process::id())),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let parsed = match pair[0].as_str() {
            "--clients" => value.parse().map(|v| options.clients = v).is_ok(),
            "--seconds" => value.parse().map(|v| options.seconds = v).is_ok(),
            "--tasks" => value.parse().map(|v| options.tasks = v).is_ok(),
            "--k" => value.parse().map(|v| options.k = v).is_ok(),
            "--workers" => value.parse().map(|v| options.workers = v).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!(
                "usage: label_load [--clients N] [--seconds S] [--tasks N] [--k K] [--workers N] \
                 (bad or unknown: {} {value})",
                pair[0]
            );
            return ExitCode::FAILURE;
        }
    }
    let report = match load::run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = std::fs::remove_dir_all(&options.dir);
    println!(
        "clients {} for {:.1} s: {} requests, {} errors, {} labels acknowledged ({:.0}/s), \
         {} rows, {} lost, {} duplicated, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        options.clients,
        report.seconds,
        report.requests,
        report.errors,
        report.acknowledged,
        report.labels_per_second(),
        report.rows,
        report.lost,
        report.duplicated,
        report.p50_ms,
        report.p99_ms,
        report.max_ms
    );
    if report.errors + report.lost + report.duplicated > 0 || report.rows != report.acknowledged {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
