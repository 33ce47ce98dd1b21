//! One CUDA device: its context and stream, the kernel modules loaded so far, the cuBLAS handle,
//! and host <-> device copies. Devices are created once per ordinal and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DeviceRepr, DriverError,
    ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;

use super::detect::{cublas_available, gpu_count};
use super::dtype::{CudaFloat, kernel_name};
use super::registry::KernelModule;
use crate::{Device, Result, TensorError};

/// Maps a driver error to the crate's error, naming the op.
pub(crate) fn driver_error(op: &'static str) -> impl FnOnce(DriverError) -> TensorError {
    move |e| TensorError::invalid(op, format!("CUDA driver: {e}"))
}

/// A CUDA device ready to run this crate's kernels.
#[derive(Debug)]
pub struct CudaDevice {
    ordinal: usize,
    stream: Arc<CudaStream>,
    sm_count: u32,
    modules: Mutex<Vec<Option<Arc<CudaModule>>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    blas: Mutex<Option<Arc<CudaBlas>>>,
}

/// Devices created so far, by ordinal.
fn devices() -> &'static Mutex<HashMap<usize, Arc<CudaDevice>>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    DEVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

impl CudaDevice {
    /// The device with this ordinal, created on first use; `Unsupported` when there is no such
    /// GPU (never panics, also without a CUDA driver).
    pub fn get(ordinal: usize) -> Result<Arc<CudaDevice>> {
        if ordinal >= gpu_count() {
            return Err(TensorError::Unsupported {
                op: "CudaDevice::get",
                device: Device::Cuda(ordinal),
            });
        }
        let mut map = devices()
            .lock()
            .map_err(|_| TensorError::invalid("CudaDevice::get", "device table poisoned"))?;
        if let Some(dev) = map.get(&ordinal) {
            return Ok(dev.clone());
        }
        let op = "CudaDevice::get";
        let ctx = CudaContext::new(ordinal).map_err(driver_error(op))?;
        let sm_count = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(driver_error(op))?
            .max(1) as u32;
        let dev = Arc::new(CudaDevice {
            ordinal,
            stream: ctx.default_stream(),
            sm_count,
            modules: Mutex::new(vec![None; KernelModule::ALL.len()]),
            functions: Mutex::new(HashMap::new()),
            blas: Mutex::new(None),
        });
        map.insert(ordinal, dev.clone());
        Ok(dev)
    }

    /// The crate-level device this is.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// The stream every kernel of this device runs on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Streaming multiprocessors (grid sizes are derived from it).
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }

    /// The device's name as the driver reports it (e.g. "NVIDIA H100 80GB HBM3").
    pub fn name(&self) -> Result<String> {
        self.stream
            .context()
            .name()
            .map_err(driver_error("CudaDevice::name"))
    }

    /// Waits until every queued kernel and copy has finished.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(driver_error("CudaDevice::synchronize"))
    }

    /// The kernel `name` of `module`, loading the module's PTX on first use.
    pub fn function(&self, module: KernelModule, name: &str) -> Result<CudaFunction> {
        let op = "CudaDevice::function";
        let mut functions = self
            .functions
            .lock()
            .map_err(|_| TensorError::invalid(op, "function cache poisoned"))?;
        if let Some(f) = functions.get(name) {
            return Ok(f.clone());
        }
        let loaded = {
            let mut modules = self
                .modules
                .lock()
                .map_err(|_| TensorError::invalid(op, "module table poisoned"))?;
            match &modules[module.index()] {
                Some(m) => m.clone(),
                None => {
                    let m = self
                        .stream
                        .context()
                        .load_module(Ptx::from_src(module.ptx()))
                        .map_err(|e| {
                            TensorError::invalid(
                                op,
                                format!("loading PTX module `{}`: {e}", module.name()),
                            )
                        })?;
                    modules[module.index()] = Some(m.clone());
                    m
                }
            }
        };
        let f = loaded.load_function(name).map_err(|e| {
            TensorError::invalid(
                op,
                format!("kernel `{name}` in module `{}`: {e}", module.name()),
            )
        })?;
        functions.insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// The kernel `base`_`T::SUFFIX` of `module`.
    pub(crate) fn typed<T: CudaFloat>(
        &self,
        module: KernelModule,
        base: &str,
    ) -> Result<CudaFunction> {
        self.function(module, &kernel_name::<T>(base))
    }

    /// The cuBLAS handle bound to this device's stream, created on first use.
    pub fn blas(&self) -> Result<Arc<CudaBlas>> {
        let op = "CudaDevice::blas";
        if !cublas_available() {
            return Err(TensorError::invalid(
                op,
                "cuBLAS (libcublas.so) was not found on the library path",
            ));
        }
        let mut blas = self
            .blas
            .lock()
            .map_err(|_| TensorError::invalid(op, "cuBLAS handle poisoned"))?;
        if let Some(b) = blas.as_ref() {
            return Ok(b.clone());
        }
        let created = Arc::new(
            CudaBlas::new(self.stream.clone())
                .map_err(|e| TensorError::invalid(op, format!("cuBLAS: {e:?}")))?,
        );
        *blas = Some(created.clone());
        Ok(created)
    }

    /// Copies host data to a new device buffer.
    pub fn upload<T: CudaFloat>(&self, data: &[T]) -> Result<CudaSlice<T>> {
        self.stream
            .clone_htod(data)
            .map_err(driver_error("CudaDevice::upload"))
    }

    /// Copies host i32 data (token ids, targets) to a new device buffer.
    pub fn upload_i32(&self, data: &[i32]) -> Result<CudaSlice<i32>> {
        self.stream
            .clone_htod(data)
            .map_err(driver_error("CudaDevice::upload_i32"))
    }

    /// Copies a device buffer back to the host (waits for the stream).
    pub fn download<T: CudaFloat>(&self, data: &CudaSlice<T>) -> Result<Vec<T>> {
        self.stream
            .clone_dtoh(data)
            .map_err(driver_error("CudaDevice::download"))
    }

    /// A new zero-filled device buffer of `len` elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros(len)
            .map_err(driver_error("CudaDevice::zeros"))
    }

    /// A new device buffer of `len` elements, every one `value` (NaN poisons a buffer in tests).
    pub fn full<T: CudaFloat>(&self, len: usize, value: f32) -> Result<CudaSlice<T>> {
        let mut out = self.zeros::<T>(len)?;
        super::elementwise::fill(self, &mut out, value)?;
        Ok(out)
    }
}
