//! `cargo xtask kernels [--check]`: compiles `kernels/*.cu` to `kernels/ptx/*.ptx` with the pinned
//! nvcc 13.0, or (with `--check`) rebuilds into a temporary folder, fails when the committed PTX
//! differs, and prints each kernel's registers, shared memory and spills from `ptxas -v` (sm_90).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::ptxas::{KernelStats, parse_ptxas_verbose, print_table};
use crate::toolchain::{self, Nvcc};

/// Flags for the committed PTX: compute_90 virtual target (PTX ISA 9.0 from nvcc 13.0), full
/// optimisation, precise math (the tests compare with the CPU at 1e-5 relative). No `-lineinfo`
/// and no `-G`, so the PTX holds no file paths and is the same on every machine.
const PTX_FLAGS: &[&str] = &["-ptx", "-arch=compute_90", "-O3", "-std=c++17"];

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The `.cu` sources under `kernels/`, sorted by name.
pub fn sources(root: &Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("kernels");
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cu") {
            found.push(path);
        }
    }
    found.sort();
    if found.is_empty() {
        bail!("no .cu files in {}", dir.display());
    }
    Ok(found)
}

fn stem(path: &Path) -> Result<String> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}

/// Compiles one source to `out_dir/<stem>.ptx`. Runs from the workspace root with relative
/// paths so that nothing machine-specific can reach the output.
fn compile_ptx(nvcc: &Nvcc, root: &Path, source: &Path, out_dir: &Path) -> Result<PathBuf> {
    let out = out_dir.join(format!("{}.ptx", stem(source)?));
    let relative = source.strip_prefix(root).unwrap_or(source);
    let output = nvcc
        .command()
        .current_dir(root)
        .args(PTX_FLAGS)
        .arg("-Ikernels")
        .arg("-o")
        .arg(&out)
        .arg(relative)
        .output()
        .with_context(|| format!("running {}", nvcc.path.display()))?;
    if !output.status.success() {
        bail!(
            "nvcc failed on {}:\n{}",
            relative.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(out)
}

/// Compiles one source to an sm_90 cubin with `-Xptxas -v` and returns its per-kernel stats.
fn ptxas_stats(
    nvcc: &Nvcc,
    root: &Path,
    source: &Path,
    out_dir: &Path,
) -> Result<Vec<KernelStats>> {
    let cubin = out_dir.join(format!("{}.cubin", stem(source)?));
    let relative = source.strip_prefix(root).unwrap_or(source);
    let output = nvcc
        .command()
        .current_dir(root)
        .args([
            "-cubin",
            "-arch=sm_90",
            "-O3",
            "-std=c++17",
            "-Xptxas",
            "-v",
        ])
        .arg("-Ikernels")
        .arg("-o")
        .arg(&cubin)
        .arg(relative)
        .output()
        .with_context(|| format!("running {}", nvcc.path.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("nvcc -cubin failed on {}:\n{stderr}", relative.display());
    }
    Ok(parse_ptxas_verbose(&stem(source)?, &stderr))
}

/// A fresh, empty temporary folder under the system temp dir.
pub fn temp_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rlhf-xtask-{tag}-{}", std::process::id()));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `cargo xtask kernels [--check]`.
pub fn run(check: bool) -> Result<()> {
    let root = workspace_root();
    let nvcc = toolchain::find_or_install()?;
    eprintln!("xtask: {} ({})", nvcc.path.display(), nvcc.version);
    let sources = sources(&root)?;
    let committed = root.join("kernels/ptx");
    if !check {
        fs::create_dir_all(&committed)?;
        for source in &sources {
            let out = compile_ptx(&nvcc, &root, source, &committed)?;
            eprintln!(
                "xtask: wrote {}",
                out.strip_prefix(&root).unwrap_or(&out).display()
            );
        }
        return Ok(());
    }
    let scratch = temp_dir("kernels")?;
    let result = check_against(&nvcc, &root, &sources, &committed, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn check_against(
    nvcc: &Nvcc,
    root: &Path,
    sources: &[PathBuf],
    committed: &Path,
    scratch: &Path,
) -> Result<()> {
    // Each source compiles twice (PTX, then an sm_90 cubin for the ptxas figures); sources run
    // in parallel, one thread per available core.
    let results = parallel_map(
        sources,
        |source| -> Result<(bool, String, Vec<KernelStats>)> {
            let fresh = compile_ptx(nvcc, root, source, scratch)?;
            let name = fresh.file_name().map(PathBuf::from).unwrap_or_default();
            let same = match (fs::read(&fresh), fs::read(committed.join(&name))) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            let stats = ptxas_stats(nvcc, root, source, scratch)?;
            Ok((same, format!("kernels/ptx/{}", name.display()), stats))
        },
    );
    let mut stale = Vec::new();
    let mut stats = Vec::new();
    for result in results {
        let (same, name, file_stats) = result?;
        if !same {
            stale.push(name);
        }
        stats.extend(file_stats);
    }
    // PTX files whose source is gone are stale too.
    if let Ok(entries) = fs::read_dir(committed) {
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|e| e == "ptx")
                && !root.join(format!("kernels/{stem}.cu")).exists()
            {
                stale.push(format!("kernels/ptx/{stem}.ptx (no source)"));
            }
        }
    }
    print_table(&stats);
    if !stale.is_empty() {
        bail!(
            "committed PTX is out of date; run `cargo xtask kernels` and commit:\n  {}",
            stale.join("\n  ")
        );
    }
    eprintln!(
        "xtask: {} PTX files match their sources ({} kernels)",
        sources.len(),
        stats.len()
    );
    Ok(())
}

/// `f` over `items` on up to `available_parallelism` threads; results in input order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
