//! Model files. Teacher-student networks are saved as `.safetensors` with tensors `w` [K, N] and
//! `v` [K] (f32) and the architecture in the header metadata (`prunelab.arch = two_layer`,
//! activation, sizes), so that PyTorch's `safetensors.torch.load_file` opens them as they are.
use crate::files::write_atomic;
use crate::model::mlp::Mlp;
use crate::model::two_layer::TwoLayer;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Saves a two-layer network; `role` ("teacher" or "student") is recorded in the metadata.
pub fn save_two_layer(net: &TwoLayer, role: &str, path: &Path) -> Result<()> {
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (w, v) = (bytes(&net.w), bytes(&net.v));
    let tensors = [
        ("w", TensorView::new(Dtype::F32, vec![net.hidden, net.input_dim], &w)?),
        ("v", TensorView::new(Dtype::F32, vec![net.hidden], &v)?),
    ];
    let metadata: HashMap<String, String> = [
        ("format", "pt".to_string()),
        ("prunelab.arch", "two_layer".to_string()),
        ("prunelab.role", role.to_string()),
        ("prunelab.activation", "erf(x/sqrt(2))".to_string()),
        ("prunelab.preactivation", "w x / sqrt(input_dim)".to_string()),
        ("prunelab.input_dim", net.input_dim.to_string()),
        ("prunelab.hidden", net.hidden.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let data = safetensors::tensor::serialize(tensors, &Some(metadata))
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomic(path, &data)
}

/// Loads a two-layer network saved by `save_two_layer` (or any safetensors file with f32 `w`
/// [K, N] and `v` [K] or [1, K], as PyTorch's `nn.Linear` layouts give).
pub fn load_two_layer(path: &Path) -> Result<TwoLayer> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = SafeTensors::deserialize(&data)
        .with_context(|| format!("{} is not a valid safetensors file", path.display()))?;
    let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = file
            .tensor(name)
            .with_context(|| format!("{} has no tensor `{name}`", path.display()))?;
        if view.dtype() != Dtype::F32 {
            bail!("{}: tensor `{name}` is {:?}, expected F32", path.display(), view.dtype());
        }
        let values =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        Ok((view.shape().to_vec(), values.collect()))
    };
    let (w_shape, w) = tensor("w")?;
    let (v_shape, v) = tensor("v")?;
    let [hidden, input_dim] = w_shape[..] else {
        bail!("{}: tensor `w` has shape {w_shape:?}, expected [hidden, input_dim]", path.display());
    };
    if v.len() != hidden || !(v_shape == [hidden] || v_shape == [1, hidden]) {
        bail!(
            "{}: tensor `v` has shape {v_shape:?}, expected [{hidden}] to match `w` {w_shape:?}",
            path.display()
        );
    }
    TwoLayer::new(input_dim, hidden, w, v).with_context(|| format!("loading {}", path.display()))
}

/// Saves an MLP as a safetensors state dict with `nn.Sequential` names (`0.weight`, `0.bias`,
/// `2.weight`, …: Linear layers at even indices, activations between them), f32, so that
/// `nn.Sequential(Linear, Sigmoid, …).load_state_dict(load_file(path))` takes it as it is. The
/// metadata records the sizes and the activation.
pub fn save_mlp(mlp: &Mlp, path: &Path) -> Result<()> {
    let bytes = encode_mlp(mlp, &sequential_names(mlp.weights.len()), &[])
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// `nn.Sequential` names of `layers` Linear layers: (`0.weight`, `0.bias`), (`2.weight`, …), ….
pub fn sequential_names(layers: usize) -> Vec<(String, Option<String>)> {
    (0..layers).map(|l| (format!("{}.weight", 2 * l), Some(format!("{}.bias", 2 * l)))).collect()
}

/// The bytes of a safetensors state dict of `mlp` with the given (weight, bias) names per layer.
/// A layer whose bias name is None is written without bias when its bias is all zeros (as the
/// `nn.Linear(bias=False)` it came from), and as `<weight prefix>.bias` otherwise. `extra` adds
/// metadata entries beside prunelab's own (`prunelab.arch`, `.sizes`, `.activation`).
pub fn encode_mlp(
    mlp: &Mlp,
    names: &[(String, Option<String>)],
    extra: &[(String, String)],
) -> Result<Vec<u8>> {
    anyhow::ensure!(names.len() == mlp.weights.len(), "one name pair per layer is needed");
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for ((w, b), (w_name, b_name)) in mlp.weights.iter().zip(&mlp.biases).zip(names) {
        let b_name = match b_name {
            Some(name) => name.clone(),
            None if b.count_nonzero(None::<i64>).int64_value(&[]) == 0 => {
                push_tensor(&mut entries, w_name, w)?;
                continue;
            }
            None => match w_name.strip_suffix("weight") {
                Some(prefix) => format!("{prefix}bias"),
                None => format!("{w_name}.bias"),
            },
        };
        push_tensor(&mut entries, w_name, w)?;
        push_tensor(&mut entries, &b_name, b)?;
    }
    let views = entries
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let sizes = mlp.sizes().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
    let mut metadata: HashMap<String, String> = [
        ("format", "pt".to_string()),
        ("prunelab.arch", "mlp".to_string()),
        ("prunelab.sizes", sizes),
        ("prunelab.activation", mlp.activation.name().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    metadata.extend(extra.iter().cloned());
    Ok(safetensors::tensor::serialize(views, &Some(metadata))?)
}

fn push_tensor(
    entries: &mut Vec<(String, Vec<usize>, Vec<u8>)>,
    name: &str,
    t: &tch::Tensor,
) -> Result<()> {
    let shape = t.size().iter().map(|&s| s as usize).collect::<Vec<_>>();
    let values = Vec::<f32>::try_from(
        t.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float).contiguous().flatten(0, -1),
    )?;
    entries.push((name.to_string(), shape, values.iter().flat_map(|x| x.to_le_bytes()).collect()));
    Ok(())
}
