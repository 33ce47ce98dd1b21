//! The GPU backend: NCCL through cudarc's `nccl` feature, loaded at run time like the driver
//! and cuBLAS, so the crate builds and links without NCCL. One process per GPU; rank 0 calls
//! `ncclGetUniqueId` and publishes the 128-byte id through the rendezvous file, then every rank
//! calls `ncclCommInitRank`. Collectives run on the tensor's device stream (the stream every
//! kernel of this crate uses), so they are ordered after the kernels that produced their
//! inputs and before the ones that read their outputs, without a host synchronisation.
//!
//! Status: compiled, not run (no machine here has two GPUs or libnccl).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudarc::nccl::{Comm, Id, NcclType, ReduceOp};
use half::bf16;

use super::{DistError, Result, rendezvous, shard_range};
use crate::cuda::CudaDevice;
use crate::cuda::storage::DeviceElem;
use crate::{DType, Device, Tensor};

const BACKEND: &str = "nccl";

/// True when libnccl can be loaded.
pub fn nccl_available() -> bool {
    // SAFETY: is_culib_present only tries to dlopen libnccl by its usual names.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// The NCCL communicator, owned so it can sit behind a mutex shared across threads.
struct OwnedComm(Comm);

// SAFETY: an NCCL communicator may be used from any thread as long as calls on it are not
// concurrent (NCCL's threading rule); `NcclComm` only reaches it through a mutex.
unsafe impl Send for OwnedComm {}

/// A rank of an NCCL communicator on one GPU.
pub struct NcclComm {
    rank: usize,
    world_size: usize,
    dev: Arc<CudaDevice>,
    comm: Mutex<OwnedComm>,
}

impl std::fmt::Debug for NcclComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcclComm")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("device", &self.dev.device())
            .finish()
    }
}

impl NcclComm {
    /// Joins the NCCL communicator of `world_size` ranks as `rank` on `device`, exchanging the
    /// unique id through `dir/.rendezvous` under `run_id`. An error naming libnccl when the
    /// library is missing.
    pub fn connect(
        dir: &Path,
        rank: usize,
        world_size: usize,
        run_id: &str,
        device: Device,
        timeout: Duration,
    ) -> Result<NcclComm> {
        if !nccl_available() {
            return Err(DistError::Nccl {
                rank,
                reason: "libnccl (libnccl.so.2) was not found: data parallel over GPUs needs \
                         NCCL installed where the dynamic loader finds it (or --world-size 1)"
                    .into(),
            });
        }
        let Device::Cuda(ordinal) = device else {
            return Err(DistError::invalid(
                "NcclComm::connect",
                format!("NCCL needs a CUDA device, got {device}"),
            ));
        };
        let dev = CudaDevice::get(ordinal)?;
        let nccl = |what: &str, e: cudarc::nccl::result::NcclError| DistError::Nccl {
            rank,
            reason: format!("{what}: {:?}", e.0),
        };
        let id = if rank == 0 {
            let id = Id::new().map_err(|e| nccl("ncclGetUniqueId", e))?;
            let bytes: Vec<u8> = id.internal().iter().map(|&c| c as u8).collect();
            rendezvous::publish(dir, run_id, BACKEND, &bytes)?;
            id
        } else {
            let bytes = rendezvous::wait_for(dir, rank, run_id, BACKEND, timeout)?;
            let mut internal = [0 as std::ffi::c_char; 128];
            if bytes.len() != internal.len() {
                return Err(DistError::Rendezvous {
                    rank,
                    path: rendezvous::rendezvous_path(dir),
                    reason: format!("expected a 128-byte NCCL id, found {} bytes", bytes.len()),
                });
            }
            for (slot, byte) in internal.iter_mut().zip(bytes) {
                *slot = byte as std::ffi::c_char;
            }
            Id::uninit(internal)
        };
        let comm = Comm::from_rank(dev.stream().clone(), rank, world_size, id)
            .map_err(|e| nccl("ncclCommInitRank", e))?;
        Ok(NcclComm {
            rank,
            world_size,
            dev,
            comm: Mutex::new(OwnedComm(comm)),
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    fn with_comm<R>(
        &self,
        what: &str,
        f: impl FnOnce(&Comm) -> std::result::Result<R, cudarc::nccl::result::NcclError>,
    ) -> Result<R> {
        let guard = self.comm.lock().map_err(|_| {
            DistError::invalid("NcclComm", "a collective panicked on another thread")
        })?;
        f(&guard.0).map_err(|e| DistError::Nccl {
            rank: self.rank,
            reason: format!("{what}: {:?}", e.0),
        })
    }

    fn check(&self, op: &'static str, t: &Tensor) -> Result<()> {
        if t.device() != self.dev.device() {
            return Err(DistError::invalid(
                op,
                format!(
                    "the tensor is on {}, this rank's communicator on {}",
                    t.device(),
                    self.dev.device()
                ),
            ));
        }
        Ok(())
    }

    /// Sums a device tensor (f32 or bf16) over ranks in place.
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        let op = "all_reduce_sum";
        self.check(op, t)?;
        match t.dtype() {
            DType::F32 => self.all_reduce_typed::<f32>(op, t),
            DType::BF16 => self.all_reduce_typed::<bf16>(op, t),
            other => Err(unsupported(op, other)),
        }
    }

    fn all_reduce_typed<T: DeviceElem + NcclType>(
        &self,
        op: &'static str,
        t: &mut Tensor,
    ) -> Result<()> {
        let buffer = t.cuda_slice_mut::<T>(op)?;
        self.with_comm("ncclAllReduce", |c| {
            c.all_reduce_in_place(buffer, &ReduceOp::Sum)
        })?;
        Ok(())
    }

    /// Sums host values over ranks (through a device buffer).
    pub fn all_reduce_sum_host(&self, values: &mut [f32]) -> Result<()> {
        let mut buffer = self.dev.upload(values)?;
        self.with_comm("ncclAllReduce", |c| {
            c.all_reduce_in_place(&mut buffer, &ReduceOp::Sum)
        })?;
        values.copy_from_slice(&self.dev.download(&buffer)?);
        Ok(())
    }

    /// This rank's chunk of the sum over ranks of `input` (see [`super::Communicator`]).
    pub fn reduce_scatter_sum(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let op = "reduce_scatter_sum";
        self.check(op, input)?;
        self.check(op, output)?;
        match input.dtype() {
            DType::F32 => self.reduce_scatter_typed::<f32>(op, input, output),
            DType::BF16 => self.reduce_scatter_typed::<bf16>(op, input, output),
            other => Err(unsupported(op, other)),
        }
    }

    fn reduce_scatter_typed<T: DeviceElem + NcclType>(
        &self,
        op: &'static str,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        let len = input.numel();
        let mine = shard_range(len, self.world_size, self.rank);
        if len.is_multiple_of(self.world_size) {
            let src = input.cuda_slice::<T>(op)?;
            let dst = output.cuda_slice_mut::<T>(op)?;
            self.with_comm("ncclReduceScatter", |c| {
                c.reduce_scatter(src, dst, &ReduceOp::Sum)
            })?;
            return Ok(());
        }
        // Unequal chunks: NCCL's reduce-scatter takes equal counts, so sum everything and keep
        // this rank's chunk (twice the traffic; ZeRO-1 pads its buffers to avoid this path).
        let mut sum = input.try_clone()?;
        self.all_reduce_typed::<T>(op, &mut sum)?;
        let chunk = sum.reshape([len, 1])?.rows(mine.start, mine.end)?;
        output.copy_from(&chunk.reshape(output.shape().clone())?)?;
        Ok(())
    }

    /// Every rank's chunk concatenated into `output` (see [`super::Communicator`]).
    pub fn all_gather(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let op = "all_gather";
        self.check(op, input)?;
        self.check(op, output)?;
        match input.dtype() {
            DType::F32 => self.all_gather_typed::<f32>(op, input, output),
            DType::BF16 => self.all_gather_typed::<bf16>(op, input, output),
            other => Err(unsupported(op, other)),
        }
    }

    fn all_gather_typed<T: DeviceElem + NcclType>(
        &self,
        op: &'static str,
        input: &Tensor,
        output: &mut Tensor,
    ) -> Result<()> {
        let len = output.numel();
        if len.is_multiple_of(self.world_size) {
            let src = input.cuda_slice::<T>(op)?;
            let dst = output.cuda_slice_mut::<T>(op)?;
            self.with_comm("ncclAllGather", |c| c.all_gather(src, dst))?;
            return Ok(());
        }
        // Unequal chunks: each rank broadcasts its chunk into its place.
        let mine = shard_range(len, self.world_size, self.rank);
        let src = input.cuda_slice::<T>(op)?;
        let dst = output.cuda_slice_mut::<T>(op)?;
        for root in 0..self.world_size {
            let range = shard_range(len, self.world_size, root);
            if range.is_empty() {
                continue;
            }
            let mut view = dst.slice_mut(range.clone());
            if root == self.rank {
                self.with_comm("ncclBroadcast", |c| {
                    c.broadcast(Some(src), &mut view, root as i32)
                })?;
            } else {
                self.with_comm("ncclBroadcast", |c| {
                    c.broadcast_in_place(&mut view, root as i32)
                })?;
            }
        }
        debug_assert_eq!(mine.len(), input.numel());
        Ok(())
    }

    /// Copies `root`'s tensor to every rank.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        let op = "broadcast";
        self.check(op, t)?;
        match t.dtype() {
            DType::F32 => self.broadcast_typed::<f32>(op, t, root),
            DType::BF16 => self.broadcast_typed::<bf16>(op, t, root),
            other => Err(unsupported(op, other)),
        }
    }

    fn broadcast_typed<T: DeviceElem + NcclType>(
        &self,
        op: &'static str,
        t: &mut Tensor,
        root: usize,
    ) -> Result<()> {
        let buffer = t.cuda_slice_mut::<T>(op)?;
        self.with_comm("ncclBroadcast", |c| {
            c.broadcast_in_place(buffer, root as i32)
        })?;
        Ok(())
    }

    /// Returns once every rank has reached it (an all-reduce of one value, then a sync).
    pub fn barrier(&self) -> Result<()> {
        self.all_reduce_sum_host(&mut [0.0])
    }
}

fn unsupported(op: &'static str, dtype: DType) -> DistError {
    DistError::invalid(
        op,
        format!("NCCL collectives take f32 or bf16 tensors, got {dtype}"),
    )
}
