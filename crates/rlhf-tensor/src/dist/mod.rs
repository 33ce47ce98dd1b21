//! Collectives between the ranks of a data-parallel run (one process per device, as PyTorch DDP
//! and llm.c run): a [`Communicator`] with its rank and world size, sums (all-reduce), the
//! reduce-scatter and all-gather that ZeRO-1 splits an all-reduce into, broadcast and barrier.
//!
//! Backends:
//! - [`Communicator::Single`]: world size 1; every call returns at once and moves no data;
//! - [`Communicator::Tcp`] ([`tcp`]): CPU tensors, ranks joined by a ring of TCP connections on
//!   127.0.0.1, ring all-reduce (reduce-scatter + all-gather), bit-identical results on every
//!   rank;
//! - [`Communicator::Nccl`] ([`nccl`]): device tensors (f32 or bf16) through NCCL, loaded at run
//!   time (compiled, not run here).
//!
//! Parts: [`BucketPlan`] ([`bucket`]: gradients grouped into ~25 MB flat buckets in the order
//! the backward finishes them) over [`flat`] buffers, [`rendezvous`] (the `DIR/.rendezvous` file that ranks meet through), [`LaunchEnv`]
//! ([`env`]: `RLHF_RANK`, `RLHF_WORLD_SIZE`, `RLHF_RUN_ID` set by a launcher), [`shard_range`]
//! (how a buffer is cut into one chunk per rank), [`DistError`].
//!
//! Chunks: a buffer of `len` elements is cut into N contiguous chunks, the first `len % N` one
//! element longer ([`shard_range`]); reduce-scatter leaves rank r with chunk r of the sum, and
//! all-gather takes chunk r from rank r.
//!
//! ```
//! use std::time::Duration;
//! use rlhf_tensor::dist::Communicator;
//! let dir = std::env::temp_dir().join(format!("rlhf-dist-doc-{}", std::process::id()));
//! let ranks: Vec<Vec<f32>> = std::thread::scope(|s| {
//!     let handles: Vec<_> = (0..2)
//!         .map(|rank| {
//!             let dir = dir.clone();
//!             s.spawn(move || {
//!                 let comm = Communicator::tcp(&dir, rank, 2, "doc", Duration::from_secs(10))?;
//!                 let mut values = vec![rank as f32 + 1.0; 3];
//!                 comm.all_reduce_sum_host(&mut values)?;
//!                 Ok::<_, rlhf_tensor::dist::DistError>(values)
//!             })
//!         })
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
//! });
//! assert_eq!(ranks, vec![vec![3.0; 3], vec![3.0; 3]]);
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

pub mod bucket;
pub mod env;
mod error;
pub mod flat;
pub mod nccl;
pub mod rendezvous;
pub mod tcp;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

pub use bucket::{Bucket, BucketPlan, DEFAULT_BUCKET_BYTES};
pub use env::LaunchEnv;
pub use error::{DistError, Result};
pub use nccl::{NcclComm, nccl_available};
pub use tcp::TcpRing;

use crate::{DType, Device, Tensor};

/// The chunk of a `len`-element buffer that `rank` of `world_size` owns: contiguous, the first
/// `len % world_size` chunks one element longer (chunks are empty when `len < world_size`).
pub fn shard_range(len: usize, world_size: usize, rank: usize) -> Range<usize> {
    let world_size = world_size.max(1);
    let (base, extra) = (len / world_size, len % world_size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// The collectives of one rank.
#[derive(Debug)]
pub enum Communicator {
    /// One rank: every collective is the identity and moves no data.
    Single,
    /// CPU ranks joined by a TCP ring on 127.0.0.1.
    Tcp(TcpRing),
    /// GPU ranks joined by NCCL.
    Nccl(NcclComm),
}

impl Communicator {
    /// The ring of CPU ranks, met through `dir/.rendezvous` (see [`TcpRing::connect`]); world
    /// size 1 gives [`Communicator::Single`].
    pub fn tcp(
        dir: &Path,
        rank: usize,
        world_size: usize,
        run_id: &str,
        timeout: Duration,
    ) -> Result<Communicator> {
        if world_size == 1 && rank == 0 {
            return Ok(Communicator::Single);
        }
        Ok(Communicator::Tcp(TcpRing::connect(
            dir, rank, world_size, run_id, timeout,
        )?))
    }

    /// The communicator a launched rank needs for `device`: [`Communicator::Single`] for one
    /// rank, the TCP ring on the CPU, NCCL on a GPU (an error naming libnccl without it).
    pub fn connect(
        dir: &Path,
        launch: &LaunchEnv,
        device: Device,
        timeout: Duration,
    ) -> Result<Communicator> {
        let LaunchEnv {
            rank,
            world_size,
            run_id,
        } = launch;
        if *world_size == 1 {
            return Ok(Communicator::Single);
        }
        match device {
            Device::Cpu => Self::tcp(dir, *rank, *world_size, run_id, timeout),
            Device::Cuda(_) => Ok(Communicator::Nccl(NcclComm::connect(
                dir,
                *rank,
                *world_size,
                run_id,
                device,
                timeout,
            )?)),
        }
    }

    /// This process's rank (0 for [`Communicator::Single`]).
    pub fn rank(&self) -> usize {
        match self {
            Communicator::Single => 0,
            Communicator::Tcp(c) => c.rank(),
            Communicator::Nccl(c) => c.rank(),
        }
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        match self {
            Communicator::Single => 1,
            Communicator::Tcp(c) => c.world_size(),
            Communicator::Nccl(c) => c.world_size(),
        }
    }

    /// The backend's name: `single`, `tcp` or `nccl`.
    pub fn backend(&self) -> &'static str {
        match self {
            Communicator::Single => "single",
            Communicator::Tcp(_) => "tcp",
            Communicator::Nccl(_) => "nccl",
        }
    }

    /// Sums `tensor` over all ranks in place (TCP: f32 CPU tensors; NCCL: f32 or bf16 device
    /// tensors). Every rank ends with the same values.
    pub fn all_reduce_sum(&self, tensor: &mut Tensor) -> Result<()> {
        match self {
            Communicator::Single => Ok(()),
            Communicator::Tcp(c) => c.all_reduce_sum(host_mut("all_reduce_sum", tensor)?),
            Communicator::Nccl(c) => c.all_reduce_sum(tensor),
        }
    }

    /// Sums host values over all ranks in place: losses, token counts, norms.
    pub fn all_reduce_sum_host(&self, values: &mut [f32]) -> Result<()> {
        match self {
            Communicator::Single => Ok(()),
            Communicator::Tcp(c) => c.all_reduce_sum(values),
            Communicator::Nccl(c) => c.all_reduce_sum_host(values),
        }
    }

    /// Writes this rank's chunk (`shard_range(input.numel(), N, rank)`) of the sum over ranks of
    /// `input` to `output` (which has the chunk's element count; any shape).
    pub fn reduce_scatter_sum(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let op = "reduce_scatter_sum";
        let mine = shard_range(input.numel(), self.world_size(), self.rank());
        check_count(op, "output", output, mine.len())?;
        match self {
            Communicator::Single => {
                Ok(output.copy_from(&input.clone().reshape(output.shape().clone())?)?)
            }
            Communicator::Tcp(c) => {
                c.reduce_scatter_sum(host("reduce_scatter_sum", input)?, host_mut(op, output)?)
            }
            Communicator::Nccl(c) => c.reduce_scatter_sum(input, output),
        }
    }

    /// Concatenates every rank's `input` (rank r's being chunk r of `output`,
    /// `shard_range(output.numel(), N, r)`) into `output`.
    pub fn all_gather(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let op = "all_gather";
        let mine = shard_range(output.numel(), self.world_size(), self.rank());
        check_count(op, "input", input, mine.len())?;
        match self {
            Communicator::Single => {
                Ok(output.copy_from(&input.clone().reshape(output.shape().clone())?)?)
            }
            Communicator::Tcp(c) => c.all_gather(host(op, input)?, host_mut(op, output)?),
            Communicator::Nccl(c) => c.all_gather(input, output),
        }
    }

    /// Copies `root`'s `tensor` to every rank.
    pub fn broadcast(&self, tensor: &mut Tensor, root: usize) -> Result<()> {
        match self {
            Communicator::Single => Ok(()),
            Communicator::Tcp(c) => c.broadcast(host_mut("broadcast", tensor)?, root),
            Communicator::Nccl(c) => c.broadcast(tensor, root),
        }
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        match self {
            Communicator::Single => Ok(()),
            Communicator::Tcp(c) => c.barrier(),
            Communicator::Nccl(c) => c.barrier(),
        }
    }
}

fn check_count(op: &'static str, what: &str, t: &Tensor, want: usize) -> Result<()> {
    if t.numel() != want {
        return Err(DistError::invalid(
            op,
            format!(
                "{what} has {} elements, this rank's chunk has {want}",
                t.numel()
            ),
        ));
    }
    Ok(())
}

/// The f32 host values of a CPU tensor (the TCP backend's operands).
fn host<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a [f32]> {
    check_host(op, t)?;
    Ok(t.as_f32_slice()?)
}

fn host_mut<'a>(op: &'static str, t: &'a mut Tensor) -> Result<&'a mut [f32]> {
    check_host(op, t)?;
    Ok(t.as_f32_slice_mut()?)
}

fn check_host(op: &'static str, t: &Tensor) -> Result<()> {
    if t.is_cuda() || t.dtype() != DType::F32 {
        return Err(DistError::invalid(
            op,
            format!(
                "the TCP backend reduces f32 CPU tensors, got {} on {} (GPUs use NCCL)",
                t.dtype(),
                t.device()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
