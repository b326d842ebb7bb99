//! Image classification data as tensors: a dataset folder (MNIST-format IDX or CIFAR-10 binary,
//! detected by `dataset_dir`) read into flattened f32 inputs and i64 labels, normalised as
//! torchvision's `ToTensor` + `Normalize` would: x/255, then (x − mean)/std per channel.
//! Defaults follow the paper: MNIST-format (0.1307, 0.3081); CIFAR-10 (0.5, 0.5) per channel.
//! [`check`] is the cheap look before a plan starts: the same checks as [`load`] (files, counts,
//! sizes, labels, normalisation) without decoding the images.
use super::dataset_dir::{self, DatasetFiles, Format};
use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The largest |mean| and std, and the inverse of the smallest std, that a normalisation may use.
pub const NORMALIZE_LIMIT: f64 = 1e6;

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

    /// Checks the values: as many means as stds, every mean in ±[`NORMALIZE_LIMIT`], every std
    /// in [1/`NORMALIZE_LIMIT`, `NORMALIZE_LIMIT`], so that normalised inputs are finite f32.
    pub fn check(&self) -> Result<()> {
        if let Normalize::MeanStd { mean, std } = self {
            ensure!(
                !mean.is_empty() && mean.len() == std.len(),
                "normalize: mean and std need the same, non-zero number of entries"
            );
            if let Some(m) =
                mean.iter().find(|m| !(-NORMALIZE_LIMIT..=NORMALIZE_LIMIT).contains(*m))
            {
                bail!(
                    "normalize: every mean must be a finite number within ±{NORMALIZE_LIMIT:e} \
                     (got {m:?})"
                );
            }
            let range = 1.0 / NORMALIZE_LIMIT..=NORMALIZE_LIMIT;
            if let Some(s) = std.iter().find(|s| !range.contains(*s)) {
                bail!(
                    "normalize: every std must be a number from {:e} to {NORMALIZE_LIMIT:e} (got {s:?})",
                    1.0 / NORMALIZE_LIMIT
                );
            }
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

/// What [`check`] finds in a dataset folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    pub format: Format,
    /// Inputs per sample (pixels × channels): the network's input width.
    pub dim: usize,
    /// Classes (the network's outputs): the training labels are 0..classes−1.
    pub classes: usize,
    /// Samples in the files.
    pub train_available: usize,
    pub test_available: usize,
    /// Samples that [`load`] keeps under the limits given.
    pub n_train: usize,
    pub n_test: usize,
}

/// Checks the dataset in `dir` as [`load`] would read it, reading only the file headers and
/// lengths and the labels: a folder that is missing or holds no (or an incomplete) dataset, a
/// truncated or corrupt file, image and label counts that differ, training and test images of
/// different sizes, training labels that skip a class, a test label no training sample has, or
/// a normalisation that does not fit fail here, before any run starts.
pub fn check(
    dir: &Path,
    normalize: &Normalize,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
) -> Result<DatasetInfo> {
    let files = dataset_dir::locate(dir)?;
    channel_mean_std(dir, normalize, &files)?;
    let survey = dataset_dir::survey(&files)?;
    let keep = |n: usize, limit: Option<usize>| limit.map_or(n, |l| l.min(n));
    Ok(DatasetInfo {
        format: survey.format,
        dim: survey.dim,
        classes: survey.classes,
        train_available: survey.n_train,
        test_available: survey.n_test,
        n_train: keep(survey.n_train, train_limit),
        n_test: keep(survey.n_test, test_limit),
    })
}

/// The (mean, std) per channel, after checking them and their count against the dataset.
fn channel_mean_std(
    dir: &Path,
    normalize: &Normalize,
    files: &DatasetFiles,
) -> Result<(Vec<f64>, Vec<f64>, usize)> {
    normalize.check()?;
    let (mean, std) = normalize.mean_std(files.format());
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
    Ok((mean, std, channels))
}

/// Reads the dataset in `dir`, keeping at most `train_limit`/`test_limit` samples of each split
/// (the first ones), normalised, on `device`. Checks what [`check`] checks.
pub fn load(
    dir: &Path,
    normalize: &Normalize,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    device: Device,
) -> Result<Dataset> {
    let files = dataset_dir::locate(dir)?;
    let format = files.format();
    let (mean, std, channels) = channel_mean_std(dir, normalize, &files)?;
    let raw = dataset_dir::load(&files)?;
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
    Ok(Dataset { train_x, train_y, test_x, test_y, dim: raw.dim, classes: raw.classes, format })
}
