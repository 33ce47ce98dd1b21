//! `cargo xtask <task>`: build helpers for the workspace.
//!
//! Parts:
//! - `kernels [--check]` ([`kernels`]): compiles `kernels/*.cu` to committed PTX with the pinned
//!   nvcc 13.0 ([`toolchain`] finds it or installs it from PyPI); `--check` diffs and prints
//!   per-kernel registers, shared memory and spills ([`ptxas`]).
//! - `gpu-bundle` ([`bundle`]): stripped GPU test and bench binaries plus `run.sh` in `.gpu/`.

mod bundle;
mod kernels;
mod ptxas;
mod toolchain;

const USAGE: &str = "usage: cargo xtask <kernels [--check] | gpu-bundle>";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["kernels"] => kernels::run(false),
        ["kernels", "--check"] => kernels::run(true),
        ["gpu-bundle"] => bundle::run(),
        _ => anyhow::bail!("{USAGE}"),
    }
}
