//! State-dict conventions beyond plain Linear layers, resolved before the layers are found:
//! * `torch.nn.utils.prune`'s layout: a pruned parameter `X` is stored as `X_orig` (the
//!   parameter) and `X_mask` (a buffer), and the module computes `X = X_orig * X_mask`;
//! * `BatchNorm1d` layers (`running_mean`, `running_var`, optional affine `weight` and `bias`,
//!   `num_batches_tracked`), folded with their evaluation statistics into the Linear before them:
//!   s = weight / sqrt(running_var + eps), W ← diag(s) W, b ← s (b − running_mean) + bias.
//!
//! Dropout has no tensors, and is the identity at evaluation: nothing to do.
use crate::model::layers::find_layers;
use crate::model::layers::numbers_in;
use crate::model::loaded::{check_finite, BatchNormNames, LayerNames};
use crate::model::mlp::{Activation, Mlp};
use crate::model::torchscript::read_records;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Tensors with their names in the file.
pub type NamedTensors = Vec<(String, Tensor)>;

/// The default `eps` of `nn.BatchNorm1d`.
pub const BATCHNORM_EPS: f64 = 1e-5;

/// One BatchNorm1d layer's tensors.
pub struct BatchNorm {
    /// Its prefix in the file (`1`, `bn1`, `layers.1`).
    pub name: String,
    /// The affine scale and shift (None for `affine=False`).
    pub weight: Option<Tensor>,
    pub bias: Option<Tensor>,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f64,
}

impl BatchNorm {
    pub fn features(&self) -> i64 {
        self.running_mean.size()[0]
    }

    /// Folds this layer into the Linear `(w, b)` before it (f64 arithmetic, f32 results).
    pub fn fold(&self, w: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
        let d = |t: &Tensor| t.to_kind(Kind::Double);
        let mut scale = (d(&self.running_var) + self.eps).rsqrt();
        if let Some(g) = &self.weight {
            scale *= d(g);
        }
        let mut shift = (d(b) - d(&self.running_mean)) * &scale;
        if let Some(beta) = &self.bias {
            shift += d(beta);
        }
        let w = (d(w) * scale.unsqueeze(1)).to_kind(Kind::Float).contiguous();
        (w, shift.to_kind(Kind::Float).contiguous())
    }
}

/// Merges `X_orig`/`X_mask` pairs into `X` (= orig · mask), then takes the BatchNorm1d layers out
/// of `tensors` (`eps(name)` gives each one's eps). Returns the remaining tensors and the layers.
pub fn prepare(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    eps: &dyn Fn(&str) -> f64,
) -> Result<(NamedTensors, Vec<BatchNorm>)> {
    let tensors = merge_masks(path, tensors)?;
    let shown = path.display();
    let prefixes: Vec<String> = tensors
        .iter()
        .filter_map(|(n, _)| n.strip_suffix("running_mean").map(|p| p.to_string()))
        .collect();
    let mut by_name: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let mut layers = Vec::new();
    for prefix in prefixes {
        let name = prefix.strip_suffix('.').unwrap_or(&prefix).to_string();
        let mut take = |field: &str| by_name.remove(&format!("{prefix}{field}"));
        let mean = take("running_mean").expect("found above");
        let Some(var) = take("running_var") else {
            bail!("{shown}: tensor `{prefix}running_mean` has no `{prefix}running_var` beside it (a BatchNorm1d needs both)");
        };
        let (weight, bias) = (take("weight"), take("bias"));
        take("num_batches_tracked");
        let c = mean.size();
        for (field, t) in
            [("running_var", Some(&var)), ("weight", weight.as_ref()), ("bias", bias.as_ref())]
        {
            if let Some(t) = t {
                if t.size() != c || c.len() != 1 {
                    bail!(
                        "{shown}: tensor `{prefix}{field}` has shape {:?}, but `{prefix}running_mean` has shape {c:?} \
                         (a BatchNorm1d's tensors are all [features]; BatchNorm2d and others are not MLP layers)",
                        t.size()
                    );
                }
            }
        }
        let float = |field: &str, t: Tensor| -> Result<Tensor> {
            let t = t.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
            check_finite(path, &format!("{prefix}{field}"), &t)?;
            Ok(t)
        };
        let var = float("running_var", var)?;
        let eps = eps(&name);
        let low = var.min().double_value(&[]);
        if low + eps <= 0.0 || !eps.is_finite() {
            bail!(
                "{shown}: tensor `{prefix}running_var` holds {low}, so running_var + eps ({eps}) is not positive; \
                 a variance must be ≥ 0"
            );
        }
        layers.push(BatchNorm {
            running_mean: float("running_mean", mean)?,
            running_var: var,
            weight: weight.map(|t| float("weight", t)).transpose()?,
            bias: bias.map(|t| float("bias", t)).transpose()?,
            eps,
            name,
        });
    }
    Ok((by_name.into_iter().collect(), layers))
}

/// `X_orig` · `X_mask` → `X`; a mask or an original without its partner is refused.
fn merge_masks(path: &Path, tensors: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
    let shown = path.display();
    let mut by_name: HashMap<String, Tensor> = tensors.into_iter().collect();
    let mut masks: Vec<String> = by_name.keys().filter(|n| n.ends_with("_mask")).cloned().collect();
    masks.sort();
    for mask_name in masks {
        let base = mask_name.strip_suffix("_mask").expect("ends with _mask").to_string();
        let orig_name = format!("{base}_orig");
        let Some(orig) = by_name.remove(&orig_name) else {
            bail!(
                "{shown}: tensor `{mask_name}` has no `{orig_name}` beside it (torch.nn.utils.prune stores both); \
                 a masks file (prunelab prune --masks) holds no weights to read"
            );
        };
        if by_name.contains_key(&base) {
            bail!("{shown}: holds both `{base}` and `{orig_name}`; a pruned parameter is stored as `{orig_name}` and `{mask_name}` only");
        }
        let mask = by_name.remove(&mask_name).expect("listed");
        if mask.size() != orig.size() {
            bail!(
                "{shown}: tensor `{mask_name}` has shape {:?}, but `{orig_name}` has shape {:?}",
                mask.size(),
                orig.size()
            );
        }
        let kind = if orig.is_floating_point() { orig.kind() } else { Kind::Float };
        by_name.insert(base, orig.to_kind(kind) * mask.to_kind(kind));
    }
    if let Some(orig) = by_name.keys().filter(|n| n.ends_with("_orig")).min() {
        let base = orig.strip_suffix("_orig").expect("ends with _orig");
        bail!("{shown}: tensor `{orig}` has no `{base}_mask` beside it (torch.nn.utils.prune stores both)");
    }
    let mut tensors: Vec<(String, Tensor)> = by_name.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tensors)
}

/// Each BatchNorm's eps from a safetensors header: `<name>.eps`, else `prunelab.batchnorm_eps`,
/// else PyTorch's default 1e-5. A value that is not a number is refused.
pub fn metadata_eps(
    path: &Path,
    metadata: &HashMap<String, String>,
) -> Result<HashMap<String, f64>> {
    let mut eps = HashMap::new();
    for (key, value) in metadata {
        let name = match key.strip_suffix(".eps") {
            Some(name) => name.to_string(),
            None if key == "prunelab.batchnorm_eps" => String::new(),
            None => continue,
        };
        match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => {
                eps.insert(name, v);
            }
            _ => bail!("{}: metadata {key} = {value:?} is not an eps ≥ 0", path.display()),
        }
    }
    Ok(eps)
}

/// The eps of every BatchNorm class in a TorchScript archive's code (`eps : Final[float] = …`):
/// None when no class states one, an error when they differ.
pub fn torchscript_eps(path: &Path, code: &[String]) -> Result<Option<f64>> {
    let mut found: Vec<f64> = Vec::new();
    for text in code {
        for line in text.lines() {
            let Some(value) = line.trim().strip_prefix("eps : Final[float] = ") else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                bail!("{}: cannot read the BatchNorm eps `{}`", path.display(), line.trim());
            };
            if !found.contains(&v) {
                found.push(v);
            }
        }
    }
    match found[..] {
        [] => Ok(None),
        [v] => Ok(Some(v)),
        _ => bail!(
            "{}: its BatchNorm layers have different eps ({found:?}), which prunelab cannot tell apart in TorchScript; \
             save the state dict as safetensors with metadata `<layer>.eps`",
            path.display()
        ),
    }
}

/// The BatchNorm1d folded into each layer: the one whose name's numbers come after the layer's
/// and before the next's (`0`/`1`/`3`, `fc1`/`bn1`/`fc2`), or, for names without numbers, the only
/// layer of its width.
pub fn attach_batchnorms(
    path: &Path,
    layers: &mut [LayerNames],
    batchnorms: Vec<BatchNorm>,
    shapes: &[(String, Vec<i64>)],
) -> Result<Vec<Option<BatchNorm>>> {
    let shown = path.display();
    let outputs = |l: &LayerNames| shapes.iter().find(|(n, _)| *n == l.weight).expect("found").1[0];
    let mut folds: Vec<Option<BatchNorm>> = layers.iter().map(|_| None).collect();
    for bn in batchnorms {
        let numbered: Option<Vec<Vec<u64>>> = layers.iter().map(|l| numbers_in(&l.name)).collect();
        let index = match (numbers_in(&bn.name), numbered) {
            (Some(n), Some(numbers)) => numbers.iter().rposition(|l| *l <= n),
            _ => {
                let same: Vec<usize> =
                    (0..layers.len()).filter(|&l| outputs(&layers[l]) == bn.features()).collect();
                (same.len() == 1).then(|| same[0])
            }
        };
        let Some(index) = index else {
            bail!(
                "{shown}: BatchNorm1d `{}` does not follow a Linear layer whose place prunelab can tell;                  it folds a BatchNorm1d only into the Linear just before it",
                bn.name
            );
        };
        let layer = &mut layers[index];
        if outputs(layer) != bn.features() {
            bail!(
                "{shown}: BatchNorm1d `{}` has {} features, but the Linear before it, `{}`, has {} outputs",
                bn.name,
                bn.features(),
                layer.weight,
                outputs(layer)
            );
        }
        if let Some(other) = &layer.batchnorm {
            bail!(
                "{shown}: two BatchNorm1d layers, `{}` and `{}`, follow the Linear `{}`",
                other.name,
                bn.name,
                layer.name
            );
        }
        layer.batchnorm = Some(BatchNormNames {
            name: bn.name.clone(),
            affine: bn.weight.is_some(),
            eps: bn.eps,
        });
        folds[index] = Some(bn);
    }
    Ok(folds)
}

/// Adds a TorchScript module's BatchNorm buffers (`running_mean`, `running_var`), which libtorch
/// does not list among its parameters, read from the archive itself; returns the eps its
/// BatchNorm classes declare (PyTorch's default 1e-5 when none does). Modules without 1-D
/// weights (no affine BatchNorm) are left as they are: their forward comparison decides.
pub fn add_batchnorm_buffers(
    path: &Path,
    bytes: &[u8],
    params: &mut Vec<(String, Tensor)>,
) -> Result<f64> {
    if !params.iter().any(|(n, t)| n.ends_with("weight") && t.dim() == 1) {
        return Ok(BATCHNORM_EPS);
    }
    let shown = path.display();
    let buffers = crate::model::pickle::named_tensors(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: cannot read the module's BatchNorm statistics from its data.pkl ({e:#})"
        )
    })?;
    for (name, t) in buffers {
        let buffer = ["running_mean", "running_var"].iter().any(|b| name.ends_with(b));
        if buffer && !params.iter().any(|(n, _)| *n == name) {
            params.push((name, t));
        }
    }
    let code: Vec<String> = read_records(bytes, |n| n.contains("/code/") && n.ends_with(".py"))?
        .into_iter()
        .map(|(_, text)| String::from_utf8_lossy(&text).into_owned())
        .collect();
    Ok(torchscript_eps(path, &code)?.unwrap_or(BATCHNORM_EPS))
}

/// Finds the linear layers among named tensors and builds the MLP (f32, CPU; activation left at
/// the default for the caller to set), BatchNorm1d layers folded in (`eps` gives their eps).
pub(super) fn build(
    path: &Path,
    tensors: Vec<(String, Tensor)>,
    eps: &dyn Fn(&str) -> f64,
) -> Result<(Mlp, Vec<LayerNames>)> {
    let (tensors, batchnorms) = prepare(path, tensors, eps)?;
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
