//! A short load run (50 raters for 3 seconds on loopback): no errors, nothing lost or
//! duplicated. The full run is `examples/label_load` (200 raters, 60 s; see BENCHMARKS.md).

#[path = "../examples/label_load/load.rs"]
mod load;

#[test]
fn fifty_raters_for_three_seconds_lose_nothing() {
    let dir = std::env::temp_dir().join(format!("rlhf-label-load-test-{}", std::process::id()));
    let report = load::run(&load::LoadOptions {
        clients: 50,
        seconds: 3.0,
        tasks: 3000,
        k: 4,
        workers: 2,
        dir: dir.clone(),
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!("{report:?}");
    assert!(report.acknowledged > 50, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicated, 0, "{report:?}");
    assert_eq!(report.rows, report.acknowledged, "{report:?}");
    assert!(report.p99_ms > 0.0 && report.p99_ms >= report.p50_ms);
    assert!(report.max_ms >= report.p99_ms);
    assert!(report.requests >= 2 * report.acknowledged);
    assert!(report.labels_per_second() > 0.0);
}
