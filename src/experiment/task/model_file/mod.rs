//! The model-file task: an existing MLP (TorchScript `.pt` or a safetensors state dict) inspected,
//! evaluated on a dataset's test split, or pruned (`prune`: one, several or all hidden layers) by
//! the same layer pruner as experiments, with statistics from calibration data, fine-tuned with
//! its masks held (`finetune`), and written back for PyTorch.
mod finetune;
mod outputs;
mod prune;
mod request;

use crate::data::images::{self, Dataset, Normalize};
use crate::model::load::{
    self, ActivationSource, ForwardCheck, LoadOptions, LoadedModel, ModelFormat,
};
use crate::model::mlp::{Activation, Mlp};
use anyhow::{bail, Result};
pub use finetune::{finetune, merged_masks, FineTuned};
pub use outputs::{check_outputs, layer_masks, state_dict, LayerMask, OutFormat, Written};
pub use prune::{prune, PruneOutcome, PrunedLayerReport};
pub use request::PruneRequest;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// How to read a model and its data, beyond the files themselves.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    /// The activation between the layers when the file does not say; for TorchScript, the only
    /// one tried against the module's forward.
    pub activation: Option<Activation>,
    /// Input preprocessing after x/255.
    pub normalize: Normalize,
}

/// Reads a dataset folder on the CPU.
pub fn load_data(
    dir: &Path,
    normalize: &Normalize,
    train: Option<usize>,
    test: Option<usize>,
) -> Result<Dataset> {
    images::load(dir, normalize, train, test, Device::Cpu)
}

/// Reads a model, comparing TorchScript forwards on `check_inputs` (else Gaussian inputs), and
/// requires its activation.
pub fn load_model(
    path: &Path,
    activation: Option<Activation>,
    check_inputs: Option<&Tensor>,
) -> Result<LoadedModel> {
    let model = load::load(path, &LoadOptions { activation, check_inputs })?;
    model.require_activation()?;
    Ok(model)
}

/// Refuses data whose inputs or labels do not fit the model.
pub fn check_fits(model: &LoadedModel, data: &Dataset, dir: &Path) -> Result<()> {
    let sizes = model.mlp.sizes();
    let (inputs, outputs) = (sizes[0], *sizes.last().expect("layers"));
    if data.dim != inputs {
        bail!(
            "{} has {}-dimensional inputs, but {}'s first layer `{}` takes {inputs}",
            dir.display(),
            data.dim,
            model.path.display(),
            model.layers[0].weight
        );
    }
    if data.classes > outputs {
        bail!(
            "{} has {} classes, but {} has only {outputs} outputs",
            dir.display(),
            data.classes,
            model.path.display()
        );
    }
    Ok(())
}

/// Fraction of zero parameters.
pub fn sparsity(total: usize, nonzero: usize) -> f64 {
    (total - nonzero.min(total)) as f64 / total.max(1) as f64
}

/// Parameter counts of one linear layer.
#[derive(Clone, Debug, Serialize)]
pub struct LayerCounts {
    pub name: String,
    pub weight: String,
    pub bias: Option<String>,
    /// [out, in]
    pub shape: Vec<i64>,
    pub params: usize,
    pub nonzero: usize,
    pub sparsity: f64,
    /// Units whose incoming weights and bias are all zero (removed but not compacted away).
    pub empty_units: usize,
}

/// The counts of every layer of `mlp`, named as in `model`'s file.
pub fn layer_counts(model: &LoadedModel, mlp: &Mlp) -> Vec<LayerCounts> {
    let nonzero = |t: &Tensor| t.count_nonzero(None::<i64>).int64_value(&[]) as usize;
    model
        .layers
        .iter()
        .zip(mlp.weights.iter().zip(&mlp.biases))
        .map(|(names, (w, b))| {
            let has_bias = names.bias.is_some();
            let params = w.numel() + if has_bias { b.numel() } else { 0 };
            let nonzero = nonzero(w) + if has_bias { nonzero(b) } else { 0 };
            let row_mass = w.abs().sum_dim_intlist(1, false, Kind::Float) + b.abs();
            LayerCounts {
                name: names.name.clone(),
                weight: names.weight.clone(),
                bias: names.bias.clone(),
                shape: w.size(),
                params,
                nonzero,
                sparsity: sparsity(params, nonzero),
                empty_units: row_mass.eq(0.0).sum(Kind::Int64).int64_value(&[]) as usize,
            }
        })
        .collect()
}

/// What a model file holds (`prunelab inspect`).
#[derive(Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub sizes: Vec<usize>,
    pub activation: Option<&'static str>,
    pub activation_source: ActivationSource,
    pub forward_check: Option<ForwardCheck>,
    pub layers: Vec<LayerCounts>,
    pub params_total: usize,
    pub params_nonzero: usize,
    pub sparsity: f64,
    pub metadata: BTreeMap<String, String>,
    /// One line: format, sizes, activation and where it came from.
    #[serde(skip)]
    pub description: String,
}

/// Reads `path` and counts its parameters layer by layer.
pub fn inspect(path: &Path, activation: Option<Activation>) -> Result<Inspection> {
    let model = load::load(path, &LoadOptions { activation, check_inputs: None })?;
    let layers = layer_counts(&model, &model.mlp);
    let params_total: usize = layers.iter().map(|l| l.params).sum();
    let params_nonzero: usize = layers.iter().map(|l| l.nonzero).sum();
    let known =
        !matches!(model.activation, ActivationSource::Unknown | ActivationSource::NotNeeded);
    Ok(Inspection {
        path: path.to_path_buf(),
        format: model.format,
        sizes: model.mlp.sizes(),
        activation: known.then(|| model.mlp.activation.name()),
        activation_source: model.activation,
        forward_check: model.forward_check,
        layers,
        params_total,
        params_nonzero,
        sparsity: sparsity(params_total, params_nonzero),
        metadata: model.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        description: model.describe(),
    })
}

/// The test error of a model (`prunelab eval`).
#[derive(Serialize)]
pub struct Evaluation {
    pub model: PathBuf,
    pub format: ModelFormat,
    pub sizes: Vec<usize>,
    pub activation: Option<&'static str>,
    pub activation_source: ActivationSource,
    pub forward_check: Option<ForwardCheck>,
    pub data: PathBuf,
    pub test_samples: usize,
    pub test_errors: usize,
    pub test_error: f64,
    pub params_total: usize,
    pub params_nonzero: usize,
    #[serde(skip)]
    pub description: String,
}

/// Evaluates `model` on the test split of `data` (its first `test_samples` samples if given).
pub fn evaluate(
    model: &Path,
    data: &Path,
    options: &ModelOptions,
    test_samples: Option<usize>,
) -> Result<Evaluation> {
    if test_samples == Some(0) {
        bail!("--test-samples 0 leaves nothing to evaluate; give at least 1");
    }
    let dataset = load_data(data, &options.normalize, Some(0), test_samples)?;
    let n = dataset.test_x.size()[0] as usize;
    if n == 0 {
        bail!("{} has no test samples to evaluate on", data.display());
    }
    let loaded = load_model(model, options.activation, Some(&dataset.test_x))?;
    check_fits(&loaded, &dataset, data)?;
    let error = loaded.mlp.error_rate(&dataset.test_x, &dataset.test_y);
    Ok(Evaluation {
        model: model.to_path_buf(),
        format: loaded.format,
        sizes: loaded.mlp.sizes(),
        activation: Some(loaded.mlp.activation.name())
            .filter(|_| loaded.activation != ActivationSource::NotNeeded),
        activation_source: loaded.activation,
        forward_check: loaded.forward_check,
        data: data.to_path_buf(),
        test_samples: n,
        test_errors: (error * n as f64).round() as usize,
        test_error: error,
        params_total: loaded.mlp.params_total(),
        params_nonzero: loaded.mlp.params_nonzero(),
        description: loaded.describe(),
    })
}
