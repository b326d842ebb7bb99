//! Image classification data as tensors: a dataset folder (MNIST-format IDX or CIFAR-10 binary,
//! detected by `dataset_dir`) read into flattened f32 inputs and i64 labels, normalised as
//! torchvision's `ToTensor` + `Normalize` would: x/255, then (x − mean)/std per channel.
//! Defaults follow the paper: MNIST-format (0.1307, 0.3081); CIFAR-10 (0.5, 0.5) per channel.
use super::dataset_dir::{self, DatasetFiles, Format};
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// How inputs are normalised after scaling to [0, 1].
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged, expecting = "`auto`, `none`, or {mean: [..], std: [..]}")]
pub enum Normalize {
    Named(NamedNormalize),
    MeanStd { mean: Vec<f64>, std: Vec<f64> },
}

/// The named normalisations.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedNormalize {
    /// The paper's: MNIST-format (0.1307, 0.3081); CIFAR-10 (0.5, 0.5) per channel.
    Auto,
    /// x/255 only.
    None,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize::Named(NamedNormalize::Auto)
    }
}

impl Normalize {
    /// Per-channel (mean, std) for a dataset of `format`.
    pub fn mean_std(&self, format: Format) -> (Vec<f64>, Vec<f64>) {
        match (self, format) {
            (Normalize::Named(NamedNormalize::Auto), Format::Idx) => (vec![0.1307], vec![0.3081]),
            (Normalize::Named(NamedNormalize::Auto), Format::Cifar10) => {
                (vec![0.5; 3], vec![0.5; 3])
            }
            (Normalize::Named(NamedNormalize::None), _) => (vec![0.0], vec![1.0]),
            (Normalize::MeanStd { mean, std }, _) => (mean.clone(), std.clone()),
        }
    }

    /// Checks the values: positive finite std, one or `channels` entries.
    pub fn check(&self) -> Result<()> {
        if let Normalize::MeanStd { mean, std } = self {
            ensure!(
                !mean.is_empty() && mean.len() == std.len(),
                "normalize: mean and std need the same, non-zero number of entries"
            );
            ensure!(
                mean.iter().all(|m| m.is_finite()),
                "normalize: every mean must be a finite number"
            );
            ensure!(
                std.iter().all(|s| s.is_finite() && *s > 0.0),
                "normalize: every std must be a finite number > 0"
            );
        }
        Ok(())
    }
}

/// A classification dataset.
///
/// # Shapes
/// `train_x`: [n_train, dim] f32, `train_y`: [n_train] i64, likewise for the test split.
pub struct Dataset {
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
    pub dim: usize,
    pub classes: usize,
    pub format: Format,
}

/// Reads the dataset in `dir`, keeping at most `train_limit`/`test_limit` samples of each split
/// (the first ones), normalised, on `device`.
pub fn load(
    dir: &Path,
    normalize: &Normalize,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    device: Device,
) -> Result<Dataset> {
    let files = dataset_dir::locate(dir)?;
    let format = files.format();
    let raw = dataset_dir::load(&files)?;
    let (mean, std) = normalize.mean_std(format);
    let channels = match files {
        DatasetFiles::Cifar10(_) => 3,
        DatasetFiles::Idx(_) => 1,
    };
    ensure!(
        mean.len() == 1 || mean.len() == channels,
        "normalize: {} values given for {channels} channel(s) of {}",
        mean.len(),
        dir.display()
    );
    let to_tensor = |pixels: &[u8],
                     labels: &[u8],
                     n: usize,
                     limit: Option<usize>|
     -> (Tensor, Tensor) {
        let n = limit.map_or(n, |l| l.min(n));
        let x = Tensor::from_slice(&pixels[..n * raw.dim])
            .view([n as i64, raw.dim as i64])
            .to_kind(Kind::Float)
            / 255.0;
        let per_channel = |values: &[f64]| {
            let v: Vec<f32> =
                (0..channels).map(|c| values[c.min(values.len() - 1)] as f32).collect();
            Tensor::from_slice(&v).repeat_interleave_self_int((raw.dim / channels) as i64, 0, None)
        };
        let x = (x - per_channel(&mean)) / per_channel(&std);
        let y = Tensor::from_slice(&labels[..n]).to_kind(Kind::Int64);
        (x.to_device(device), y.to_device(device))
    };
    let (train_x, train_y) = to_tensor(&raw.train_x, &raw.train_y, raw.n_train, train_limit);
    let (test_x, test_y) = to_tensor(&raw.test_x, &raw.test_y, raw.n_test, test_limit);
    let classes =
        raw.train_y.iter().chain(&raw.test_y).copied().max().map_or(0, |m| m as usize + 1);
    Ok(Dataset { train_x, train_y, test_x, test_y, dim: raw.dim, classes, format })
}
