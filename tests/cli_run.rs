//! End-to-end: `rlhf run` reports the stages that exist and fails until the pipeline is complete.

use std::process::Command;

#[test]
fn run_lists_stages_and_exits_non_zero_until_the_pipeline_exists() {
    let output = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .args(["run", "--seed", "3"])
        .output()
        .expect("the rlhf binary runs");
    assert!(
        !output.status.success(),
        "`rlhf run` must fail while stages are missing"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("seed 3"), "{stderr}");
    assert!(stderr.contains("[ready  ] tensors"), "{stderr}");
    assert!(stderr.contains("[ready  ] pretraining and SFT"), "{stderr}");
    assert!(stderr.contains("[missing] PPO"), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
}

#[test]
fn unknown_subcommands_are_usage_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_rlhf"))
        .arg("frobnicate")
        .output()
        .expect("the rlhf binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("frobnicate"));
}
