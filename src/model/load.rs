//! Reading MLPs from the files practitioners have: TorchScript modules (`torch.jit.save`, read
//! through libtorch's `CModule`) and `.safetensors` state dicts with PyTorch's parameter names
//! (`0.weight`/`2.weight` of an `nn.Sequential`, `fc1.weight`, `layers.0.weight`, … each with an
//! optional `.bias`). The format is recognised by the file's content, not its name.
//!
//! Understanding a model:
//! * its linear layers are the 2-D `….weight` tensors; they are ordered by the numbers in their
//!   names (or, when names carry no numbers, by the only order in which their shapes chain), and
//!   must chain: outputs of layer l = inputs of layer l+1. Anything else (convolutions, 1-D
//!   normalisation weights, other tensors, biases without weights, shapes that do not chain) is
//!   refused, naming the file and the tensor.
//! * the activation between layers comes from prunelab's own metadata (`prunelab.activation`),
//!   from `--activation`, or, for TorchScript, from the module itself: prunelab runs the module's
//!   own forward and keeps the activation (sigmoid, relu, tanh, gelu, silu, leaky_relu) under
//!   which its forward pass agrees. That comparison also proves the module *is* that MLP: a
//!   TorchScript module whose forward differs (skip connections, softmax, LayerNorm, …) is refused
//!   with the difference found.
//! * `Dropout` (no tensors; the identity at evaluation) is accepted as it is; `BatchNorm1d` after
//!   a Linear is folded into it with its evaluation statistics, and pruned parameters in
//!   `torch.nn.utils.prune`'s layout (`weight_orig`, `weight_mask`) are read as orig · mask
//!   (`model::state_dict`).
//! * damaged or meaningless files are refused before anything is computed from them: a zip
//!   archive whose structure or CRC-32s are wrong, a safetensors file that is truncated or whose
//!   header is corrupt (saying where), a weight or bias holding NaN or infinite values (saying
//!   how many), and a layer with zero units or zero inputs.
pub use super::layers::find_layers;
use super::script_in::load_torchscript;
use crate::model::io::parse_safetensors;
use crate::model::mlp::{Activation, Mlp};
use crate::model::state_dict::{self, attach_batchnorms, BATCHNORM_EPS};
use crate::model::torchscript::{verify_crcs, zip_structure};
use anyhow::{bail, Context, Result};
use safetensors::tensor::Dtype;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Relative tolerance of the forward-pass comparison: max |Δ| ≤ 1e-4 · max(1, max |output|).
pub const FORWARD_TOLERANCE: f64 = 1e-4;

/// How many inputs the forward-pass comparison uses at most.
pub const CHECK_SAMPLES: i64 = 512;

/// The file formats prunelab reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    #[serde(rename = "torchscript")]
    TorchScript,
    Safetensors,
}

impl ModelFormat {
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::TorchScript => "TorchScript",
            ModelFormat::Safetensors => "safetensors",
        }
    }
}

/// The names one linear layer has in its file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerNames {
    /// The layer's name: its parameters' common prefix (`fc1`, `0`, `layers.2`; empty for a bare
    /// `weight`).
    pub name: String,
    pub weight: String,
    /// None when the file has no bias for this layer (prunelab then uses zeros).
    pub bias: Option<String>,
    /// The BatchNorm1d after this layer, folded into its weight and bias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batchnorm: Option<BatchNormNames>,
}

/// A BatchNorm1d folded into the Linear before it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchNormNames {
    /// Its prefix (`1`, `bn1`).
    pub name: String,
    /// Whether it had `weight` and `bias` (affine=True).
    pub affine: bool,
    pub eps: f64,
}

impl LayerNames {
    /// The bias's name, existing or to be created.
    pub fn bias_name(&self) -> String {
        self.bias.clone().unwrap_or_else(|| {
            if self.name.is_empty() {
                "bias".into()
            } else {
                format!("{}.bias", self.name)
            }
        })
    }
}

/// Where the activation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationSource {
    /// The file's `prunelab.activation` metadata.
    Metadata,
    /// The TorchScript forward pass matched it.
    Matched,
    /// `--activation`.
    Flag,
    /// A single linear layer: there is none.
    NotNeeded,
    /// A state dict without metadata and no `--activation`: forward passes are not possible.
    Unknown,
}

/// prunelab's forward pass against the TorchScript module's own.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ForwardCheck {
    pub max_abs_diff: f64,
    pub max_abs_output: f64,
    pub samples: usize,
    pub tolerance: f64,
    /// True when the inputs were Gaussian noise rather than data.
    pub gaussian_inputs: bool,
}

/// A model read from a file.
pub struct LoadedModel {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub mlp: Mlp,
    pub layers: Vec<LayerNames>,
    pub activation: ActivationSource,
    pub forward_check: Option<ForwardCheck>,
    /// The safetensors header metadata (empty for TorchScript).
    pub metadata: HashMap<String, String>,
}

/// What the caller knows beyond the file.
#[derive(Default)]
pub struct LoadOptions<'a> {
    /// `--activation`: overrides metadata; for TorchScript, the only activation tried.
    pub activation: Option<Activation>,
    /// Inputs [n, in] for the TorchScript forward comparison (the first `CHECK_SAMPLES` are used);
    /// Gaussian noise when None.
    pub check_inputs: Option<&'a Tensor>,
}

impl LoadedModel {
    /// The index of linear layer `name`: the layer's name in the file (`fc1`, `0`, `layers.0`),
    /// its weight's name, or `wN` (the N-th linear layer, 1-based, as in prunelab's configs).
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        if let Some(l) = self.layers.iter().position(|l| l.name == name || l.weight == name) {
            return Ok(l);
        }
        if let Some(n) = name.strip_prefix('w').and_then(|n| n.parse::<usize>().ok()) {
            if (1..=self.layers.len()).contains(&n) {
                return Ok(n - 1);
            }
        }
        bail!(
            "--layer {name}: {} has no such layer; its linear layers are {} (or w1…w{})",
            self.path.display(),
            self.layers.iter().map(|l| format!("`{}`", l.name)).collect::<Vec<_>>().join(", "),
            self.layers.len()
        )
    }

    /// Fails unless the activation is known (forward passes need it).
    pub fn require_activation(&self) -> Result<()> {
        if self.activation == ActivationSource::Unknown {
            bail!(
                "{}: the activation between the layers is not recorded in this state dict; give it with --activation {}",
                self.path.display(),
                ACTIVATION_NAMES.replace(", ", "|")
            );
        }
        Ok(())
    }

    /// One-line description: `TorchScript, 784-300-100-10, relu (matched its forward, max |Δ| 2e-7)`.
    pub fn describe(&self) -> String {
        let sizes = self.mlp.sizes().iter().map(|s| s.to_string()).collect::<Vec<_>>().join("-");
        let activation = match self.activation {
            ActivationSource::Metadata => {
                format!("{} (from the file's metadata)", self.mlp.activation.name())
            }
            ActivationSource::Flag => format!("{} (from --activation)", self.mlp.activation.name()),
            ActivationSource::Matched => {
                format!("{} (found by matching the module's forward)", self.mlp.activation.name())
            }
            ActivationSource::NotNeeded => "no activation (a single layer)".into(),
            ActivationSource::Unknown => "activation unknown (give --activation)".into(),
        };
        let folded: Vec<String> = self
            .layers
            .iter()
            .filter_map(|l| Some(format!("`{}` into `{}`", l.batchnorm.as_ref()?.name, l.name)))
            .collect();
        let folded = if folded.is_empty() {
            String::new()
        } else {
            format!(", BatchNorm1d folded: {}", folded.join(", "))
        };
        format!("{}, {sizes}, {activation}{folded}", self.format.name())
    }
}

/// Reads the model in `path`.
pub fn load(path: &Path, options: &LoadOptions) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let shown = path.display();
    if bytes.starts_with(b"PK\x03\x04") {
        let names = zip_structure(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{shown}: libtorch cannot load this TorchScript file: its zip archive is \
                 truncated or corrupt ({e})"
            )
        })?;
        if !names.iter().any(|n| n.contains("/code/") || n.ends_with("/constants.pkl")) {
            bail!(
                "{shown} is a torch.save checkpoint (a pickled state dict or module), not TorchScript; \
                 prunelab reads torch.jit.save files, or convert the weights with \
                 safetensors.torch.save_file(model.state_dict(), \"model.safetensors\")"
            );
        }
        verify_crcs(&bytes).with_context(|| format!("{shown} is corrupt"))?;
        load_torchscript(path, &bytes, options)
    } else if looks_like_safetensors(&bytes) {
        load_safetensors(path, &bytes, options)
    } else if bytes.is_empty() {
        bail!("{shown} is empty: expected a TorchScript (.pt) or safetensors model");
    } else {
        bail!(
            "{shown} is neither a TorchScript archive (torch.jit.save) nor a safetensors file \
             (unrecognised content; is it corrupt or truncated?)"
        );
    }
}

/// A safetensors file starts with its header's length (8 bytes) and the header's `{`.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() >= 9 && bytes[8] == b'{'
}

fn load_safetensors(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<LoadedModel> {
    let shown = path.display();
    let (file, metadata) = parse_safetensors(path, bytes)?;
    if metadata.get("prunelab.arch").map(String::as_str) == Some("two_layer") {
        bail!(
            "{shown} is a teacher-student network (prunelab.arch = two_layer, tensors `w` and `v`), \
             not an MLP with biases; `prunelab theory order-params` reads it"
        );
    }
    let mut tensors = Vec::new();
    for (name, view) in file.tensors() {
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F64 => Kind::Double,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            // BatchNorm's num_batches_tracked, and masks saved as booleans or bytes.
            Dtype::I64 => Kind::Int64,
            Dtype::BOOL => Kind::Bool,
            Dtype::U8 => Kind::Uint8,
            other => bail!("{shown}: tensor `{name}` has type {other:?}; prunelab reads floating-point weights"),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .with_context(|| format!("{shown}: reading tensor `{name}`"))?;
        tensors.push((name, t));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let eps = state_dict::metadata_eps(path, &metadata)?;
    let eps_of = |name: &str| *eps.get(name).or(eps.get("")).unwrap_or(&BATCHNORM_EPS);
    let (mlp, layers) = build(path, tensors, &eps_of)?;
    let mut model = LoadedModel {
        path: path.to_path_buf(),
        format: ModelFormat::Safetensors,
        mlp,
        layers,
        activation: ActivationSource::Unknown,
        forward_check: None,
        metadata,
    };
    set_activation(&mut model, options)?;
    Ok(model)
}

/// The activation of a state dict: `--activation`, else the recorded one, else none needed for
/// a single layer, else unknown.
fn set_activation(model: &mut LoadedModel, options: &LoadOptions) -> Result<()> {
    let shown = model.path.display();
    let recorded = match model.metadata.get("prunelab.activation") {
        Some(name) => Some(parse_activation(name).with_context(|| {
            format!(
                "{shown}: metadata prunelab.activation = {name:?} is not one of {ACTIVATION_NAMES}"
            )
        })?),
        None => None,
    };
    if let Some(flag) = options.activation {
        if recorded.is_some_and(|r| r != flag) {
            eprintln!(
                "note: --activation {} overrides {}'s recorded activation {}",
                flag.name(),
                shown,
                recorded.map_or("", |r| r.name())
            );
        }
        model.mlp.activation = flag;
        model.activation = ActivationSource::Flag;
    } else if let Some(recorded) = recorded {
        model.mlp.activation = recorded;
        model.activation = ActivationSource::Metadata;
    } else if model.layers.len() == 1 {
        model.activation = ActivationSource::NotNeeded;
    }
    Ok(())
}

/// The activations prunelab understands, for messages.
pub const ACTIVATION_NAMES: &str = "sigmoid, relu, tanh, gelu, silu, leaky_relu";

/// Parses an activation name (`sigmoid`, `relu`, `tanh`, `gelu`, `silu`, `leaky_relu`; PyTorch's
/// class names `ReLU`, `GELU`, `SiLU`, `LeakyReLU` too).
pub fn parse_activation(name: &str) -> Result<Activation> {
    match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "sigmoid" | "logistic" => Ok(Activation::Sigmoid),
        "relu" => Ok(Activation::Relu),
        "tanh" => Ok(Activation::Tanh),
        "gelu" => Ok(Activation::Gelu),
        "silu" | "swish" => Ok(Activation::Silu),
        "leaky_relu" | "leakyrelu" => Ok(Activation::LeakyRelu),
        _ => bail!("unknown activation {name:?}: use {ACTIVATION_NAMES}"),
    }
}

/// Finds the linear layers among named tensors and builds the MLP (f32, CPU; activation left at
/// the default for the caller to set), BatchNorm1d layers folded in (`eps` gives their eps).
pub(super) fn build(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    eps: &dyn Fn(&str) -> f64,
) -> Result<(Mlp, Vec<LayerNames>)> {
    let (tensors, batchnorms) = state_dict::prepare(path, tensors, eps)?;
    let shapes: Vec<(String, Vec<i64>)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let mut layers = find_layers(path, &shapes)?;
    let mut folds = attach_batchnorms(path, &mut layers, batchnorms, &shapes)?;
    let by_name: HashMap<String, Tensor> = tensors.into_iter().collect();
    let take = |name: &str| -> Result<Tensor> {
        let t = &by_name[name];
        if !t.is_floating_point() {
            bail!(
                "{}: tensor `{name}` is {:?}; prunelab reads floating-point weights",
                path.display(),
                t.kind()
            );
        }
        let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().copy();
        check_finite(path, name, &t)?;
        Ok(t)
    };
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for layer in &layers {
        let w = take(&layer.weight)?;
        let b = match &layer.bias {
            Some(name) => take(name)?,
            None => Tensor::zeros([w.size()[0]], (Kind::Float, Device::Cpu)),
        };
        let (w, b) = match folds.remove(0) {
            Some(bn) => bn.fold(&w, &b),
            None => (w, b),
        };
        weights.push(w);
        biases.push(b);
    }
    Ok((Mlp { weights, biases, activation: Activation::default() }, layers))
}

/// Refuses a tensor holding NaN or infinite values, saying how many.
pub(crate) fn check_finite(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    let count = |mask: Tensor| mask.sum(Kind::Int64).int64_value(&[]);
    let not_finite = count(t.isfinite().logical_not());
    if not_finite > 0 {
        let nan = count(t.isnan());
        bail!(
            "{}: tensor `{name}` holds {nan} NaN and {} infinite values among its {} entries; \
             prunelab computes nothing from weights that are not finite numbers",
            path.display(),
            not_finite - nan,
            t.numel()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tensors: &[(&str, &[i64])]) -> Result<Vec<String>> {
        let owned: Vec<(String, Vec<i64>)> =
            tensors.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect();
        Ok(find_layers(Path::new("m.safetensors"), &owned)?.into_iter().map(|l| l.name).collect())
    }

    #[test]
    fn layers_are_ordered_by_the_numbers_in_their_names() {
        let seq = [
            ("2.weight", &[3i64, 5][..]),
            ("0.weight", &[5, 4]),
            ("0.bias", &[5]),
            ("10.weight", &[2, 3]),
        ];
        assert_eq!(names(&seq).unwrap(), ["0", "2", "10"]);
        let fc = [("fc2.weight", &[3i64, 5][..]), ("fc1.weight", &[5, 4]), ("fc2.bias", &[3])];
        assert_eq!(names(&fc).unwrap(), ["fc1", "fc2"]);
        let nested = [
            ("layers.1.weight", &[3i64, 5][..]),
            ("layers.0.weight", &[5, 4]),
            ("w3.weight", &[2, 3]),
        ];
        assert_eq!(names(&nested).unwrap(), ["layers.0", "layers.1", "w3"]);
        assert_eq!(names(&[("weight", &[3, 4]), ("bias", &[3])]).unwrap(), [""]);
    }

    #[test]
    fn names_without_numbers_are_ordered_by_their_shapes_when_only_one_order_chains() {
        let named = [("out.weight", &[2i64, 8][..]), ("hidden.weight", &[8, 4])];
        assert_eq!(names(&named).unwrap(), ["hidden", "out"]);
        let square = [("a.weight", &[4i64, 4][..]), ("b.weight", &[4, 4])];
        let err = names(&square).unwrap_err();
        assert!(format!("{err:#}").contains("cannot tell the order"), "{err:#}");
    }

    #[test]
    fn what_is_not_an_mlp_is_refused_naming_the_tensor() {
        type Case<'a> = (&'a [(&'a str, &'a [i64])], &'a str);
        let cases: [Case; 6] = [
            (&[("conv1.weight", &[8, 1, 3, 3]), ("fc.weight", &[2, 8])], "`conv1.weight` has shape [8, 1, 3, 3], a convolution"),
            (&[("ln.weight", &[8]), ("fc.weight", &[2, 8])], "`ln.weight` has shape [8], a 1-D weight"),
            (&[("0.weight", &[8, 4]), ("0.running_mean", &[8])], "`0.running_mean` (shape [8]) is not a Linear"),
            (&[("0.weight", &[8, 4]), ("2.bias", &[3])], "`2.bias` has no matching weight `2.weight`"),
            (&[("0.weight", &[8, 4]), ("0.bias", &[7])], "`0.bias` has shape [7], but `0.weight` [8, 4] has 8 outputs"),
            (&[("0.weight", &[8, 4]), ("2.weight", &[3, 6])], "`2.weight` has shape [3, 6]: it takes 6 inputs, but the layer before it, `0.weight` [8, 4], has 8 outputs"),
        ];
        for (tensors, expected) in cases {
            let err = format!("{:#}", names(tensors).unwrap_err());
            assert!(err.contains(expected) && err.contains("m.safetensors"), "{err}");
        }
    }
}
