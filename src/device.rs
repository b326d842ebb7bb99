//! Choosing the compute device once, from the command line (`auto`, `cpu`, `cuda`, `cuda:N`), and
//! refusing a CUDA device that is not there.
use anyhow::{bail, Result};
use tch::{Cuda, Device};

/// Parses and checks a device name.
pub fn parse(name: &str) -> Result<Device> {
    let cuda_count = || if Cuda::is_available() { Cuda::device_count() as usize } else { 0 };
    match name {
        "auto" => Ok(if cuda_count() > 0 { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = match name.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => match rest.strip_prefix(':').and_then(|i| i.parse::<usize>().ok()) {
                    Some(i) => i,
                    None => bail!("unknown device {name:?}: use auto, cpu, cuda or cuda:N"),
                },
                None => bail!("unknown device {name:?}: use auto, cpu, cuda or cuda:N"),
            };
            let count = cuda_count();
            if index >= count {
                bail!(
                    "device {name} was requested but this machine has {} (is this a CUDA build of libtorch? see `scripts/libtorch.sh cuda`)",
                    if count == 0 { "no CUDA device".to_string() } else { format!("only {count} CUDA device(s)") }
                );
            }
            Ok(Device::Cuda(index))
        }
    }
}
