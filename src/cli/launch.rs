//! `--world-size N [--zero1]`: data parallel over N processes. The command re-executes this
//! binary N times with `RLHF_RANK=r`, `RLHF_WORLD_SIZE=N`, `RLHF_RUN_ID` (and, on a GPU,
//! `--device cuda:r`), waits for all of them, and when one fails kills the others and fails
//! naming it. Rank 0's output is the command's; rank r > 0 writes `OUT/rank-r.log`. The ranks
//! meet through `OUT/.rendezvous` (TCP ring on the CPU, NCCL on GPUs). `--world-size 1` (the
//! default) launches nothing and is the single-process path, call for call.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use rlhf_tensor::Device;
use rlhf_tensor::dist::env::{RANK_VAR, RUN_ID_VAR, WORLD_SIZE_VAR};
use rlhf_tensor::dist::{Communicator, LaunchEnv, nccl_available, rendezvous};
use rlhf_transformer::{DataParallel, Trainer};

/// The data-parallel options of a training command.
#[derive(Debug, Clone, Args)]
pub struct LaunchArgs {
    /// Data-parallel ranks, one process each (on CUDA rank r uses cuda:r); every rank trains on
    /// its slice of each global batch of --batch-size examples.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub world_size: u16,
    /// Shard the optimizer state over the ranks (ZeRO-1).
    #[arg(long)]
    pub zero1: bool,
}

/// What this process is in a `--world-size` run.
pub enum Role {
    /// One process, no data parallel.
    Single,
    /// The launcher: it ran the ranks; this is the command's exit code.
    Launched(ExitCode),
    /// Rank `LaunchEnv::rank` of a launch.
    Rank(LaunchEnv),
}

impl LaunchArgs {
    /// Launches the ranks when `--world-size` is above 1 and this process is not one of them;
    /// `batch_size` (the global batch) must give every rank at least one example.
    pub fn role(&self, out: &Path, device: Device, batch_size: usize) -> anyhow::Result<Role> {
        let world = usize::from(self.world_size);
        if batch_size < world {
            bail!(
                "--batch-size {batch_size} is smaller than --world-size {world}: every rank trains \
                 on its slice of each global batch and needs at least one example"
            );
        }
        if let Some(launch) = LaunchEnv::from_env()? {
            if launch.world_size != world {
                bail!(
                    "{WORLD_SIZE_VAR}={} but --world-size {world}: a rank must be started by its launcher",
                    launch.world_size
                );
            }
            eprintln!(
                "rank {} of {world}: pid {}, device {device}",
                launch.rank,
                std::process::id()
            );
            return Ok(Role::Rank(launch));
        }
        if world == 1 {
            return Ok(Role::Single);
        }
        if matches!(device, Device::Cuda(_)) && !nccl_available() {
            bail!(
                "--world-size {world} on {device} needs NCCL: libnccl (libnccl.so.2) was not found \
                 by the dynamic loader (install NCCL, or use --world-size 1)"
            );
        }
        launch(world, out, device).map(Role::Launched)
    }

    /// Joins the other ranks and makes `trainer` one of them (nothing for a single process).
    pub fn attach(
        &self,
        role: &Role,
        trainer: &mut Trainer,
        out: &Path,
        device: Device,
    ) -> anyhow::Result<()> {
        let Some(comm) = communicator(role, out, device)? else {
            return Ok(());
        };
        trainer.set_data_parallel(DataParallel::new(comm).zero1(self.zero1))?;
        Ok(())
    }
}

/// Joins the other ranks: this rank's communicator (`None` for a single process).
pub fn communicator(
    role: &Role,
    out: &Path,
    device: Device,
) -> anyhow::Result<Option<Communicator>> {
    let Role::Rank(launch) = role else {
        return Ok(None);
    };
    Ok(Some(Communicator::connect(
        out,
        launch,
        device,
        LaunchEnv::timeout()?,
    )?))
}

impl LaunchArgs {}

/// Whether this process writes the command's outputs (rank 0, or no launch).
pub fn is_writer(role: &Role) -> bool {
    !matches!(role, Role::Rank(l) if l.rank != 0)
}

/// Runs `world` copies of this command as ranks and waits for them.
fn launch(world: usize, out: &Path, device: Device) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let exe = std::env::current_exe().context("finding this executable to launch the ranks")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run_id = format!("{}-{nanos}", std::process::id());
    let mut children: Vec<Child> = Vec::with_capacity(world);
    for rank in 0..world {
        let mut command = Command::new(&exe);
        command
            .args(rank_args(&args, device, rank))
            .env(RANK_VAR, rank.to_string())
            .env(WORLD_SIZE_VAR, world.to_string())
            .env(RUN_ID_VAR, &run_id);
        if rank > 0 {
            let path = out.join(format!("rank-{rank}.log"));
            let log =
                File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let err = log
                .try_clone()
                .with_context(|| format!("opening {}", path.display()))?;
            command.stdout(Stdio::from(log)).stderr(Stdio::from(err));
        }
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(&mut children);
                bail!("starting rank {rank} ({}): {e}", exe.display());
            }
        }
    }
    let failures = wait_all(&mut children, out)?;
    let _ = std::fs::remove_file(rendezvous::rendezvous_path(out));
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    bail!(
        "data-parallel run failed: {}; the other ranks were stopped",
        failures.join("; ")
    )
}

/// This command's arguments for `rank`: on CUDA the device becomes `cuda:rank`.
fn rank_args(args: &[OsString], device: Device, rank: usize) -> Vec<OsString> {
    let Device::Cuda(_) = device else {
        return args.to_vec();
    };
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.to_str() {
            Some("--device") => skip_value = true,
            Some(a) if a.starts_with("--device=") => {}
            _ => out.push(arg.clone()),
        }
    }
    out.push("--device".into());
    out.push(format!("cuda:{rank}").into());
    out
}

/// Waits until every rank has exited or one has failed (then stops the rest); returns a
/// description of each failed rank, in the order the failures were seen.
fn wait_all(children: &mut [Child], out: &Path) -> anyhow::Result<Vec<String>> {
    let mut running: Vec<bool> = vec![true; children.len()];
    let mut failures = Vec::new();
    while running.iter().any(|&r| r) {
        for (rank, child) in children.iter_mut().enumerate() {
            if !running[rank] {
                continue;
            }
            if let Some(status) = child
                .try_wait()
                .with_context(|| format!("waiting for rank {rank}"))?
            {
                running[rank] = false;
                if !status.success() {
                    let log = if rank == 0 {
                        "its error is above".to_string()
                    } else {
                        let path = out.join(format!("rank-{rank}.log"));
                        let text = std::fs::read_to_string(&path).unwrap_or_default();
                        let last = text.lines().rev().find(|l| !l.trim().is_empty());
                        format!("{}: {}", path.display(), last.unwrap_or("(empty log)"))
                    };
                    failures.push(format!("rank {rank} failed ({}; {log})", describe(status)));
                }
            }
        }
        if !failures.is_empty() {
            stop(children);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(failures)
}

/// Kills and reaps every rank still running.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}
