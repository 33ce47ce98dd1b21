//! `--device cpu|cuda|cuda:N` and `--precision f32|bf16`, shared by every command that runs a
//! model. The device is checked before any work: asking for a GPU that is not there is an error
//! that starts with "no CUDA device found".

use anyhow::Context;
use clap::Args;
use rlhf_tensor::Device;
use rlhf_transformer::Precision;

/// Where the models run, and in what precision they train.
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// Where the models run: cpu, cuda (= cuda:0) or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: Device,
    /// Training precision: f32, or bf16 (mixed precision with f32 master weights; CUDA only).
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

impl DeviceArgs {
    /// The device, once checked to be present and to suit the precision.
    pub fn device(&self) -> anyhow::Result<Device> {
        let device = checked(self.device)?;
        if self.precision == Precision::Bf16 && device == Device::Cpu {
            anyhow::bail!(
                "--precision bf16 needs a CUDA device (--device cuda): the CPU backend computes in f32"
            );
        }
        Ok(device)
    }
}

/// `device` when it can be used here, else the "no CUDA device found" error with the option
/// named.
pub fn checked(device: Device) -> anyhow::Result<Device> {
    device
        .available()
        .with_context(|| format!("--device {device}"))
}

/// clap's parser of a device name.
pub fn parse_device(name: &str) -> Result<Device, String> {
    name.parse()
        .map_err(|e: rlhf_tensor::TensorError| e.to_string())
}

/// clap's parser of a precision name.
pub fn parse_precision(name: &str) -> Result<Precision, String> {
    name.parse()
        .map_err(|e: rlhf_transformer::ModelError| e.to_string())
}
