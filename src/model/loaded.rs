//! What a model file was read into: the MLP, the names of its layers in the file, where its
//! activation came from, and the forward check that proved it is that MLP; and the checks every
//! reader applies (finite weights, known activations).
use crate::model::mlp::{Activation, Mlp};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

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
