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
use crate::model::io::parse_safetensors;
use crate::model::mlp::{Activation, Mlp};
use crate::model::state_dict::{self, add_batchnorm_buffers, attach_batchnorms, BATCHNORM_EPS};
use crate::model::torchscript::{verify_crcs, zip_structure};
use anyhow::{bail, Context, Result};
use rand_distr::{Distribution, StandardNormal};
use safetensors::tensor::Dtype;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
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

fn load_torchscript(path: &Path, bytes: &[u8], options: &LoadOptions) -> Result<LoadedModel> {
    let shown = path.display();
    let (module, mut params) = open_module(path, bytes)?;
    // The module computes in its parameters' type; prunelab in f32.
    let param_kind =
        params.iter().find(|(_, t)| t.dim() == 2).map_or(Kind::Float, |(_, t)| t.kind());
    let eps = add_batchnorm_buffers(path, bytes, &mut params)?;
    let (mut mlp, layers) = build(path, params, &|_| eps)?;
    let inputs = check_inputs(&mlp, options.check_inputs);
    let reference = module
        .forward_ts(&[inputs.0.to_kind(param_kind)])
        .map_err(|e| {
            anyhow::anyhow!(
                "{shown}: the module's forward does not take a batch of {}-dimensional inputs as an MLP does ({})",
                mlp.sizes()[0],
                first_line(&e)
            )
        })?
        .to_kind(Kind::Double);
    let n = inputs.0.size()[0];
    let out = *mlp.sizes().last().expect("layers");
    if reference.size() != [n, out as i64] {
        bail!(
            "{shown}: the module's forward returns shape {:?} for {n} inputs, where an MLP ending in `{}` gives [{n}, {out}]",
            reference.size(),
            layers.last().expect("layers").weight
        );
    }
    let max_abs_output = reference.abs().max().double_value(&[]);
    let tolerance = FORWARD_TOLERANCE * max_abs_output.max(1.0);
    let candidates = match options.activation {
        Some(a) => vec![a],
        None if layers.len() == 1 => vec![Activation::Sigmoid],
        None => Activation::ALL.to_vec(),
    };
    let (activation, diff) = closest_activation(&mut mlp, &inputs.0, &reference, candidates);
    if diff.is_nan() || diff > tolerance {
        let tried = match options.activation {
            Some(a) => format!("with --activation {}", a.name()),
            None if layers.len() == 1 => "as a single Linear layer".into(),
            None => format!("with {ACTIVATION_NAMES} (closest: {})", activation.name()),
        };
        bail!(
            "{shown}: the module's forward is not the chain of Linear layers {} {tried}: outputs differ by up to {diff:.3e} \
             (tolerance {tolerance:.1e}) on {n} inputs; it has other operations (skip connections, softmax, LayerNorm, BatchNorm after the activation, …), \
             which prunelab does not prune",
            layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(" → ")
        );
    }
    mlp.activation = activation;
    Ok(LoadedModel {
        path: path.to_path_buf(),
        format: ModelFormat::TorchScript,
        mlp,
        activation: if layers.len() == 1 {
            ActivationSource::NotNeeded
        } else if options.activation.is_some() {
            ActivationSource::Flag
        } else {
            ActivationSource::Matched
        },
        layers,
        forward_check: Some(ForwardCheck {
            max_abs_diff: diff,
            max_abs_output,
            samples: n as usize,
            tolerance,
            gaussian_inputs: inputs.1,
        }),
        metadata: HashMap::new(),
    })
}

/// The module in `bytes`, in evaluation mode, and its parameters (at least one).
fn open_module(path: &Path, bytes: &[u8]) -> Result<(tch::CModule, Vec<(String, Tensor)>)> {
    let shown = path.display();
    let mut module =
        tch::CModule::load_data_on_device(&mut &bytes[..], Device::Cpu).map_err(|e| {
            anyhow::anyhow!(
                "{shown}: libtorch cannot load this TorchScript file ({})",
                first_line(&e)
            )
        })?;
    module.f_set_eval().map_err(|e| {
        anyhow::anyhow!("{shown}: cannot switch the module to evaluation mode ({})", first_line(&e))
    })?;
    let params = module.named_parameters().map_err(|e| {
        anyhow::anyhow!("{shown}: cannot list the module's parameters ({})", first_line(&e))
    })?;
    if params.is_empty() {
        bail!(
            "{shown}: the TorchScript module has no parameters, so its layers cannot be found \
             (weights traced as constants, e.g. a function rather than an nn.Module?); \
             save a scripted or traced nn.Module"
        );
    }
    Ok((module, params))
}

/// The candidate under which `mlp`'s forward is closest to `reference` on `inputs`, and the
/// largest difference (NaN when the outputs are not numbers).
fn closest_activation(
    mlp: &mut Mlp,
    inputs: &Tensor,
    reference: &Tensor,
    candidates: Vec<Activation>,
) -> (Activation, f64) {
    let _guard = tch::no_grad_guard();
    let mut best: Option<(Activation, f64)> = None;
    for activation in candidates {
        mlp.activation = activation;
        let diff =
            (mlp.forward(inputs).to_kind(Kind::Double) - reference).abs().max().double_value(&[]);
        if best.is_none_or(|(_, d)| diff < d) {
            best = Some((activation, diff));
        }
    }
    best.expect("one candidate at least")
}

/// The inputs of the forward comparison (and whether they are Gaussian noise). Data of another
/// width is left to the caller to refuse (it knows which folder it came from); Gaussian inputs
/// serve meanwhile.
fn check_inputs(mlp: &Mlp, given: Option<&Tensor>) -> (Tensor, bool) {
    let dim = mlp.sizes()[0] as i64;
    match given {
        Some(x) if x.size()[0] > 0 && x.size().get(1) == Some(&dim) => {
            let n = x.size()[0].min(CHECK_SAMPLES);
            (x.narrow(0, 0, n).to_device(Device::Cpu).to_kind(Kind::Float), false)
        }
        _ => {
            let mut rng = crate::seed::rng(0, "forward-check");
            let values: Vec<f32> =
                (0..256 * dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            (Tensor::from_slice(&values).view([256, dim]), true)
        }
    }
}

fn first_line(e: &tch::TchError) -> String {
    let text = e.to_string();
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown error");
    line.trim_start_matches("Internal torch error: ").to_string()
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
fn build(
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

/// Orders and checks the linear layers among `tensors` (name, shape).
pub fn find_layers(path: &Path, tensors: &[(String, Vec<i64>)]) -> Result<Vec<LayerNames>> {
    let shown = path.display();
    let not_mlp = "prunelab prunes MLPs (Linear layers with element-wise activations) only";
    let mut weights: BTreeMap<&str, (&str, &[i64])> = BTreeMap::new();
    let mut biases: BTreeMap<&str, (&str, &[i64])> = BTreeMap::new();
    for (name, shape) in tensors {
        let (prefix, suffix) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        match (suffix, shape.len()) {
            ("weight", 2) if shape.contains(&0) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a Linear layer with zero {}; \
                 every layer needs at least one unit and one input",
                if shape[0] == 0 { "units" } else { "inputs" }
            ),
            ("weight", 2) => {
                weights.insert(prefix, (name, shape));
            }
            ("weight", 3..=5) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a convolution kernel; {not_mlp}"
            ),
            ("weight", 1) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, a 1-D weight of a normalisation layer other than BatchNorm1d (no running_mean beside it); {not_mlp}"
            ),
            ("weight", _) => bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, not a Linear weight [out, in]; {not_mlp}"
            ),
            ("bias", _) => {
                biases.insert(prefix, (name, shape));
            }
            _ => bail!(
                "{shown}: tensor `{name}` (shape {shape:?}) is not a Linear layer's weight or bias; {not_mlp}"
            ),
        }
    }
    for (prefix, (name, shape)) in &biases {
        let Some((w_name, w_shape)) = weights.get(prefix) else {
            let expected =
                if prefix.is_empty() { "weight".to_string() } else { format!("{prefix}.weight") };
            bail!("{shown}: tensor `{name}` has no matching weight `{expected}` (missing tensor?)");
        };
        if **shape != [w_shape[0]] {
            bail!(
                "{shown}: tensor `{name}` has shape {shape:?}, but `{w_name}` {w_shape:?} has {} outputs",
                w_shape[0]
            );
        }
    }
    if weights.is_empty() {
        bail!("{shown} holds no Linear weights (2-D tensors named `….weight`); {not_mlp}");
    }
    let prefixes: Vec<&str> = weights.keys().copied().collect();
    let numbers: Vec<Option<Vec<u64>>> = prefixes.iter().map(|p| numbers_in(p)).collect();
    let mut numbered: Vec<(Vec<u64>, &str)> =
        numbers.iter().zip(&prefixes).filter_map(|(n, p)| Some((n.clone()?, *p))).collect();
    numbered.sort();
    let unique = numbered.windows(2).all(|w| w[0].0 != w[1].0);
    let order: Vec<&str> = if numbered.len() == prefixes.len() && unique {
        numbered.into_iter().map(|(_, p)| p).collect()
    } else {
        chain_order(&prefixes, &weights).with_context(|| shown.to_string())?
    };
    for pair in order.windows(2) {
        let (a_name, a) = weights[pair[0]];
        let (b_name, b) = weights[pair[1]];
        if b[1] != a[0] {
            bail!(
                "{shown}: tensor `{b_name}` has shape {b:?}: it takes {} inputs, but the layer before it, `{a_name}` {a:?}, \
                 has {} outputs (is a layer missing, or is this not an MLP?)",
                b[1],
                a[0]
            );
        }
    }
    Ok(order
        .into_iter()
        .map(|prefix| LayerNames {
            name: prefix.to_string(),
            weight: weights[prefix].0.to_string(),
            bias: biases.get(prefix).map(|(n, _)| n.to_string()),
            batchnorm: None,
        })
        .collect())
}

/// The runs of digits in a name (`layers.10` → [10], `fc2` → [2]), None when there are none.
pub(crate) fn numbers_in(name: &str) -> Option<Vec<u64>> {
    let numbers: Vec<u64> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect();
    (!numbers.is_empty()).then_some(numbers)
}

/// The only order in which the layers' shapes chain, for names that do not say it.
fn chain_order<'a>(
    prefixes: &[&'a str],
    weights: &BTreeMap<&str, (&str, &[i64])>,
) -> Result<Vec<&'a str>> {
    if prefixes.len() > 12 {
        bail!("cannot order {} layers whose names carry no numbers; name them fc1, fc2, … or layers.0, layers.1, …", prefixes.len());
    }
    let mut found: Vec<Vec<&str>> = Vec::new();
    let mut path = Vec::new();
    let mut used = vec![false; prefixes.len()];
    fn dfs<'a>(
        prefixes: &[&'a str],
        weights: &BTreeMap<&str, (&str, &[i64])>,
        path: &mut Vec<&'a str>,
        used: &mut [bool],
        found: &mut Vec<Vec<&'a str>>,
    ) {
        if found.len() > 1 {
            return;
        }
        if path.len() == prefixes.len() {
            found.push(path.clone());
            return;
        }
        for i in 0..prefixes.len() {
            if used[i] {
                continue;
            }
            if let Some(last) = path.last() {
                if weights[prefixes[i]].1[1] != weights[last].1[0] {
                    continue;
                }
            }
            used[i] = true;
            path.push(prefixes[i]);
            dfs(prefixes, weights, path, used, found);
            path.pop();
            used[i] = false;
        }
    }
    dfs(prefixes, weights, &mut path, &mut used, &mut found);
    let names = prefixes
        .iter()
        .map(|p| format!("`{}` {:?}", weights[p].0, weights[p].1))
        .collect::<Vec<_>>()
        .join(", ");
    match found.len() {
        1 => Ok(found.pop().expect("one")),
        0 => bail!("the Linear weights {names} do not chain into an MLP in any order (out of one layer = in of the next)"),
        _ => bail!("cannot tell the order of the Linear weights {names} from their names or shapes; name them with numbers (fc1, fc2, … or layers.0, layers.1, …)"),
    }
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
