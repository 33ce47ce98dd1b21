//! Finds the pinned CUDA 13.0 compiler, or installs it from PyPI into a cache folder.
//!
//! Why the pins: PTX from nvcc 13.0 is ISA 9.0, which a CUDA 13.0 driver (580) loads; a newer
//! nvcc's PTX is refused with `CUDA_ERROR_UNSUPPORTED_PTX_VERSION`. Installing `nvidia-cuda-nvcc`
//! alone pulls newer headers that nvcc 13.0 rejects, and CUDA 13's `cuda_bf16.h` needs
//! `<nv/target>` from `nvidia-cuda-cccl`, so the whole set is pinned together.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The release string `nvcc --version` must print.
const NVCC_RELEASE: &str = "release 13.0";

/// The PyPI packages that together make a working nvcc 13.0 (compiler, NVVM, CRT headers,
/// runtime headers, libcu++/`<nv/target>`).
const PINNED_PACKAGES: &[&str] = &[
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-cccl==13.0.85",
];

/// A usable nvcc and where it came from.
#[derive(Debug, Clone)]
pub struct Nvcc {
    /// The nvcc executable.
    pub path: PathBuf,
    /// The first `release` line of `nvcc --version`, for logs.
    pub version: String,
}

impl Nvcc {
    /// A command running this nvcc, with its own bin folder first on PATH (ptxas, cicc).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        if let Some(bin) = self.path.parent() {
            let old = std::env::var_os("PATH").unwrap_or_default();
            let mut paths = vec![bin.to_path_buf()];
            paths.extend(std::env::split_paths(&old));
            if let Ok(joined) = std::env::join_paths(paths) {
                cmd.env("PATH", joined);
            }
        }
        cmd
    }
}

/// The cache folder: `$RLHF_NVCC_DIR`, else `~/.cache/rlhf-nvcc-13.0`.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RLHF_NVCC_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set RLHF_NVCC_DIR instead")?;
    Ok(PathBuf::from(home).join(".cache/rlhf-nvcc-13.0"))
}

/// The `release` line of `nvcc --version`, or None when it does not run.
fn release_of(nvcc: &Path) -> Option<String> {
    let out = Command::new(nvcc).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains("release"))
        .map(|l| l.trim().to_string())
}

/// nvcc 13.0 from PATH, else from the cache (installing it there first when absent).
pub fn find_or_install() -> Result<Nvcc> {
    if let Some(path) = which("nvcc") {
        match release_of(&path) {
            Some(v) if v.contains(NVCC_RELEASE) => return Ok(Nvcc { path, version: v }),
            Some(v) => eprintln!(
                "xtask: {} is `{v}`, not {NVCC_RELEASE}; using the pinned one instead",
                path.display()
            ),
            None => eprintln!("xtask: {} does not run; ignoring it", path.display()),
        }
    }
    let dir = cache_dir()?;
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        create_venv(&venv)?;
    }
    let nvcc = site_packages(&python)?.join("nvidia/cu13/bin/nvcc");
    if !nvcc.exists() {
        pip_install(&venv)?;
    }
    match release_of(&nvcc) {
        Some(v) if v.contains(NVCC_RELEASE) => Ok(Nvcc {
            path: nvcc,
            version: v,
        }),
        other => bail!(
            "{} reports {:?}, expected {NVCC_RELEASE}; remove {} and rerun to reinstall",
            nvcc.display(),
            other,
            dir.display()
        ),
    }
}

/// The first `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn create_venv(venv: &Path) -> Result<()> {
    let python3 = which("python3").context(
        "nvcc 13.0 is not on PATH and python3 is missing, so it cannot be installed from PyPI; \
         install python3 (with venv and pip) or put nvcc 13.0 on PATH",
    )?;
    eprintln!(
        "xtask: creating {} to install nvcc 13.0 from PyPI",
        venv.display()
    );
    let status = Command::new(&python3)
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .with_context(|| format!("running {} -m venv", python3.display()))?;
    if !status.success() {
        bail!(
            "`python3 -m venv {}` failed ({status}); on Debian/Ubuntu install python3-venv",
            venv.display()
        );
    }
    Ok(())
}

fn site_packages(python: &Path) -> Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "{} could not report its site-packages: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn pip_install(venv: &Path) -> Result<()> {
    let pip = venv.join("bin/pip");
    if !pip.exists() {
        bail!(
            "{} has no pip; delete the folder and install python3-venv / python3-pip",
            venv.display()
        );
    }
    eprintln!("xtask: pip install {}", PINNED_PACKAGES.join(" "));
    let start = std::time::Instant::now();
    let out = Command::new(&pip)
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PINNED_PACKAGES)
        .output()
        .with_context(|| format!("running {}", pip.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("Could not find a version")
            || stderr.contains("NewConnectionError")
            || stderr.contains("Temporary failure in name resolution")
        {
            "; PyPI looks unreachable (no network?): install nvcc 13.0 by hand and put it on PATH"
        } else {
            ""
        };
        bail!(
            "pip install of the pinned nvcc failed ({}){hint}:\n{stderr}",
            out.status
        );
    }
    eprintln!(
        "xtask: installed nvcc 13.0 in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
