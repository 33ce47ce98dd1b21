//! `cargo xtask <task>`: build helpers for the workspace.
//!
//! Tasks (filled by the CUDA issue): `kernels [--check]` compiles `kernels/*.cu` to PTX,
//! `gpu-bundle` packs test and bench binaries for a GPU machine.

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "kernels" | "gpu-bundle" => {
            anyhow::bail!(
                "`cargo xtask {task}` arrives with the CUDA backend; no kernels exist yet"
            )
        }
        _ => anyhow::bail!("usage: cargo xtask <kernels [--check] | gpu-bundle>"),
    }
}
