//! `cargo xtask gpu-bundle`: packs stripped release GPU test binaries, the kernel benchmark, the
//! GPT-2 goals benchmark (`gpt_bench` and its PyTorch twin) and `run.sh` into `.gpu/` for a GPU
//! machine that has no Rust toolchain and no network.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::kernels::workspace_root;

/// The bundle must stay well under this size (the GPU machine's transfer limit is 64 MiB).
const MAX_BUNDLE_BYTES: u64 = 60 * 1024 * 1024;

/// Integration tests whose name starts with this exercise the GPU.
const GPU_TEST_PREFIX: &str = "cuda_";

/// The packages whose `cuda_*` integration tests go into the bundle: the kernels and the
/// `Tensor` API (rlhf-tensor), the model on the GPU (rlhf-transformer), the CLI on the GPU
/// against the CPU (rlhf: `cuda_cli`, which runs the bundled `rlhf` binary through `RLHF_BIN`).
const GPU_TEST_PACKAGES: [&str; 3] = ["rlhf-tensor", "rlhf-transformer", "rlhf"];

/// The benchmark example of rlhf-tensor.
const BENCH_EXAMPLE: &str = "cuda_bench";

/// The GPT-2 124M goals benchmark (an example of rlhf-ppo, which sees every model crate).
const GPT_BENCH_EXAMPLE: (&str, &str) = ("rlhf-ppo", "gpt_bench");

/// `cargo xtask gpu-bundle`.
pub fn run() -> Result<()> {
    let root = workspace_root();
    let out = root.join(".gpu");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    fs::create_dir_all(out.join("tests"))?;

    let mut test_args = vec!["test"];
    for package in GPU_TEST_PACKAGES {
        test_args.extend(["-p", package]);
    }
    test_args.extend(["--release", "--no-run", "--message-format=json"]);
    let tests = cargo_executables(&root, &test_args, "test")?;
    let mut copied = Vec::new();
    for (name, exe) in tests.iter().filter(|(t, _)| t.starts_with(GPU_TEST_PREFIX)) {
        copied.push(copy_stripped(exe, &out.join("tests").join(name))?);
    }
    if copied.is_empty() {
        bail!("cargo built no test binary named {GPU_TEST_PREFIX}*");
    }
    let examples = cargo_executables(
        &root,
        &[
            "build",
            "-p",
            "rlhf-tensor",
            "--release",
            "--example",
            BENCH_EXAMPLE,
            "--message-format=json",
        ],
        "example",
    )?;
    let bench = examples
        .iter()
        .find(|(target, _)| target == BENCH_EXAMPLE)
        .map(|(_, path)| path)
        .with_context(|| format!("cargo built no example named `{BENCH_EXAMPLE}`"))?;
    copied.push(copy_stripped(bench, &out.join(BENCH_EXAMPLE))?);
    let (package, name) = GPT_BENCH_EXAMPLE;
    let examples = cargo_executables(
        &root,
        &[
            "build",
            "-p",
            package,
            "--release",
            "--example",
            name,
            "--message-format=json",
        ],
        "example",
    )?;
    let gpt_bench = examples
        .iter()
        .find(|(target, _)| target == name)
        .map(|(_, path)| path)
        .with_context(|| format!("cargo built no example named `{name}`"))?;
    copied.push(copy_stripped(gpt_bench, &out.join(name))?);
    fs::write(out.join("gpt_bench_torch.py"), GPT_BENCH_TORCH)?;
    let bins = cargo_executables(
        &root,
        &[
            "build",
            "-p",
            "rlhf",
            "--release",
            "--bin",
            "rlhf",
            "--message-format=json",
        ],
        "bin",
    )?;
    let cli = bins
        .iter()
        .find(|(target, _)| target == "rlhf")
        .map(|(_, path)| path)
        .context("cargo built no binary named `rlhf`")?;
    copied.push(copy_stripped(cli, &out.join("rlhf"))?);

    let script = out.join("run.sh");
    fs::write(&script, RUN_SH)?;
    set_executable(&script)?;
    fs::write(out.join("COMMIT"), git_commit(&root))?;

    // Every binary embeds the kernels' PTX (3.7 MB of text): gzip shrinks the bundle about
    // fourfold; run.sh unpacks it into a temporary folder first.
    let copied = copied
        .iter()
        .map(|path| gzip(path))
        .collect::<Result<Vec<_>>>()?;
    let total: u64 = walk_size(&out)?;
    for path in &copied {
        let size = fs::metadata(path)?.len();
        eprintln!(
            "xtask: {} ({:.1} MB)",
            path.strip_prefix(&root).unwrap_or(path).display(),
            size as f64 / 1e6
        );
    }
    if total > MAX_BUNDLE_BYTES {
        bail!(
            ".gpu/ is {:.1} MB, over the {} MB limit",
            total as f64 / 1e6,
            MAX_BUNDLE_BYTES / 1024 / 1024
        );
    }
    eprintln!(
        "xtask: .gpu/ ready ({:.1} MB); on the GPU machine run `.gpu/run.sh` (OUT=<dir> keeps the log)",
        total as f64 / 1e6
    );
    Ok(())
}

/// Runs cargo with JSON messages and returns (target name, executable) for every artifact of
/// target kind `kind` ("test", "example") that has an executable.
fn cargo_executables(root: &Path, args: &[&str], kind: &str) -> Result<Vec<(String, PathBuf)>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), output.status);
    }
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let has_kind = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == kind));
        if msg["reason"] != "compiler-artifact" || !has_kind {
            continue;
        }
        let (Some(exe), Some(name)) = (msg["executable"].as_str(), msg["target"]["name"].as_str())
        else {
            continue;
        };
        found.push((name.to_string(), PathBuf::from(exe)));
    }
    Ok(found)
}

/// Copies `from` to `to` and strips its symbols (`strip`, else the unstripped copy stays).
fn copy_stripped(from: &Path, to: &Path) -> Result<PathBuf> {
    fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    match Command::new("strip").arg(to).status() {
        Ok(s) if s.success() => {}
        _ => eprintln!(
            "xtask: `strip` unavailable or failed; {} keeps its symbols",
            to.display()
        ),
    }
    set_executable(to)?;
    Ok(to.to_path_buf())
}

/// Compresses `path` to `path.gz` (gzip -9, no name or time stamp, so the output depends on the
/// content only) and removes the original.
fn gzip(path: &Path) -> Result<PathBuf> {
    let status = Command::new("gzip")
        .args(["-9", "-n", "-f"])
        .arg(path)
        .status()
        .context("running gzip (needed to keep .gpu/ under the transfer limit)")?;
    if !status.success() {
        bail!("gzip {} failed ({status})", path.display());
    }
    let mut packed = path.as_os_str().to_owned();
    packed.push(".gz");
    Ok(PathBuf::from(packed))
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = fs::metadata(path)?.permissions();
    perms.set_mode(0o755);
    fs::set_permissions(path, perms)?;
    Ok(())
}

fn walk_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            walk_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn git_commit(root: &Path) -> String {
    Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "unknown\n".into())
}

/// The script run on the GPU machine. Every step has a timeout so the whole run stays under
/// five minutes and never hangs; its exit status is non-zero when any test or the bench fails.
const RUN_SH: &str = include_str!("run.sh");

/// PyTorch's side of `gpt_bench` and the ratio table (`run.sh gpt`).
const GPT_BENCH_TORCH: &str = include_str!("gpt_bench_torch.py");
