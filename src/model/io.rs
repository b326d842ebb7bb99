//! Model files. Teacher-student networks are saved as `.safetensors` with tensors `w` [K, N] and
//! `v` [K] (f32) and the architecture in the header metadata (`prunelab.arch = two_layer`,
//! activation, sizes), so that PyTorch's `safetensors.torch.load_file` opens them as they are.
//! The metadata is written in sorted key order, so that the same network gives the same bytes.
//! Reading refuses, naming the file, a truncated or corrupt file (saying where) and weights that
//! are not finite numbers.
use crate::files::write_atomic;
use crate::model::mlp::Mlp;
use crate::model::two_layer::TwoLayer;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Saves a two-layer network; `role` ("teacher" or "student") is recorded in the metadata.
pub fn save_two_layer(net: &TwoLayer, role: &str, path: &Path) -> Result<()> {
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (w, v) = (bytes(&net.w), bytes(&net.v));
    let tensors = [
        ("w", TensorView::new(Dtype::F32, vec![net.hidden, net.input_dim], &w)?),
        ("v", TensorView::new(Dtype::F32, vec![net.hidden], &v)?),
    ];
    let metadata: BTreeMap<String, String> = [
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
    let data = serialize_sorted(tensors, &metadata)
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomic(path, &data)
}

/// Loads a two-layer network saved by `save_two_layer` (or any safetensors file with f32 `w`
/// [K, N] and `v` [K] or [1, K], as PyTorch's `nn.Linear` layouts give).
pub fn load_two_layer(path: &Path) -> Result<TwoLayer> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (file, _) = parse_safetensors(path, &data)?;
    let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let view = file
            .tensor(name)
            .with_context(|| format!("{} has no tensor `{name}`", path.display()))?;
        if view.dtype() != Dtype::F32 {
            bail!("{}: tensor `{name}` is {:?}, expected F32", path.display(), view.dtype());
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        check_finite(path, name, &values)?;
        Ok((view.shape().to_vec(), values))
    };
    let (w_shape, w) = tensor("w")?;
    let (v_shape, v) = tensor("v")?;
    let [hidden, input_dim] = w_shape[..] else {
        bail!("{}: tensor `w` has shape {w_shape:?}, expected [hidden, input_dim]", path.display());
    };
    if hidden == 0 || input_dim == 0 {
        bail!(
            "{}: tensor `w` has shape {w_shape:?}, a network with zero {}",
            path.display(),
            if hidden == 0 { "hidden units" } else { "inputs" }
        );
    }
    if v.len() != hidden || !(v_shape == [hidden] || v_shape == [1, hidden]) {
        bail!(
            "{}: tensor `v` has shape {v_shape:?}, expected [{hidden}] to match `w` {w_shape:?}",
            path.display()
        );
    }
    TwoLayer::new(input_dim, hidden, w, v).with_context(|| format!("loading {}", path.display()))
}

/// Refuses values that hold NaN or infinities, saying how many.
fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<()> {
    super::loaded::check_finite(path, name, &tch::Tensor::from_slice(values))
}

/// Parses the safetensors file `path` (its `bytes`) and its header metadata; an error says what is
/// wrong with the file and where.
pub fn parse_safetensors<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("{}{}", path.display(), describe_error(bytes, &e)))?;
    let metadata = SafeTensors::read_metadata(bytes)
        .map(|(_, m)| m.metadata().clone().unwrap_or_default())
        .unwrap_or_default();
    Ok((file, metadata))
}

/// What is wrong with a safetensors file, as the rest of a sentence that starts with its name.
fn describe_error(bytes: &[u8], error: &SafeTensorError) -> String {
    let len = bytes.len();
    let header_len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    match (error, header_len) {
        (SafeTensorError::HeaderTooSmall, _) => {
            format!(" is truncated: it holds {len} bytes, less than a safetensors header's 8-byte length")
        }
        (SafeTensorError::InvalidHeaderLength | SafeTensorError::HeaderTooLarge, Some(n)) => format!(
            " is truncated or corrupt: its first 8 bytes give a {n}-byte header, but {} bytes follow them",
            len - 8
        ),
        (SafeTensorError::MetadataIncompleteBuffer, Some(n)) => data_length_error(bytes, n),
        (SafeTensorError::InvalidHeader | SafeTensorError::InvalidHeaderDeserialization, Some(n)) => {
            format!(" is corrupt: its header (bytes 8..{}) is not valid JSON of a safetensors header", 8 + n)
        }
        (SafeTensorError::InvalidOffset(name), _) => format!(
            " is corrupt: tensor `{name}`'s data offsets do not follow the tensor before it in its header"
        ),
        (SafeTensorError::TensorInvalidInfo, _) => {
            " is corrupt: a tensor's shape and type do not match the size of its data in the header"
                .to_string()
        }
        (other, _) => format!(" is not a valid safetensors file ({other:?})"),
    }
}

/// The error for a file whose length differs from what its (valid) header describes.
fn data_length_error(bytes: &[u8], header_len: u64) -> String {
    let start = 8 + header_len as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..start]).unwrap_or(serde_json::Value::Null);
    let mut ends: Vec<(u64, &str)> = header
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, info)| Some((info["data_offsets"][1].as_u64()?, name.as_str())))
        .collect();
    ends.sort();
    let data_len = (bytes.len() - start) as u64;
    let Some(&(end, last)) = ends.last() else {
        return format!(
            " is corrupt: its header describes no tensor data but {data_len} bytes follow it"
        );
    };
    match ends.iter().find(|(e, _)| *e > data_len) {
        Some((cut_end, cut)) => format!(
            " is truncated: its tensor data should end at byte {} but the file ends at byte {}, \
             cutting tensor `{cut}` (which should end at byte {})",
            start as u64 + end,
            bytes.len(),
            start as u64 + cut_end
        ),
        None => format!(
            " is corrupt: it has {} bytes after the end of its last tensor `{last}` at byte {}",
            data_len - end,
            start as u64 + end
        ),
    }
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
    let mut tensors: Vec<(String, tch::Tensor)> = Vec::new();
    for ((w, b), (w_name, b_name)) in mlp.weights.iter().zip(&mlp.biases).zip(names) {
        tensors.push((w_name.clone(), w.shallow_clone()));
        if let Some(b_name) = bias_name(w_name, b_name.as_deref(), b) {
            tensors.push((b_name, b.shallow_clone()));
        }
    }
    encode_state_dict(&tensors, mlp, extra)
}

/// The name a bias is written under: its own, or, for a layer without bias in its file, none
/// while it is all zeros and `<weight prefix>.bias` otherwise.
pub fn bias_name(weight: &str, bias: Option<&str>, value: &tch::Tensor) -> Option<String> {
    match bias {
        Some(name) => Some(name.to_string()),
        None if value.count_nonzero(None::<i64>).int64_value(&[]) == 0 => None,
        None => Some(match weight.strip_suffix("weight") {
            Some(prefix) => format!("{prefix}bias"),
            None => format!("{weight}.bias"),
        }),
    }
}

/// The bytes of a safetensors state dict of `tensors` (written as f32) describing `mlp`: the
/// metadata records prunelab's `prunelab.arch`, `.sizes`, `.activation`, then `extra`.
pub fn encode_state_dict(
    tensors: &[(String, tch::Tensor)],
    mlp: &Mlp,
    extra: &[(String, String)],
) -> Result<Vec<u8>> {
    let sizes = mlp.sizes().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
    let mut metadata: BTreeMap<String, String> = [
        ("format", "pt".to_string()),
        ("prunelab.arch", "mlp".to_string()),
        ("prunelab.sizes", sizes),
        ("prunelab.activation", mlp.activation.name().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    metadata.extend(extra.iter().cloned());
    encode_tensors(tensors, &metadata)
}

/// The bytes of a safetensors file of `tensors` (written as f32) and `metadata`.
pub fn encode_tensors(
    tensors: &[(String, tch::Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in tensors {
        push_tensor(&mut entries, name, t)?;
    }
    let views = entries
        .iter()
        .map(|(name, shape, bytes)| {
            Ok((name.as_str(), TensorView::new(Dtype::F32, shape.clone(), bytes)?))
        })
        .collect::<Result<Vec<_>>>()?;
    serialize_sorted(views, metadata)
}

/// `safetensors::serialize` with the metadata in sorted key order (the crate writes a HashMap in
/// a random order): the tensors are serialised without metadata, then `__metadata__` is put at
/// the head of the header, where the crate writes it, and the header padded again to 8 bytes.
pub(crate) fn serialize_sorted<'a>(
    tensors: impl IntoIterator<Item = (&'a str, TensorView<'a>)>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let plain = safetensors::tensor::serialize(tensors, &None)?;
    let n = u64::from_le_bytes(plain[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&plain[8..8 + n])?.trim_end();
    let rest = header.strip_prefix('{').context("a safetensors header is a JSON object")?;
    let separator = if rest == "}" { "" } else { "," };
    let mut new_header =
        format!("{{\"__metadata__\":{}{separator}{rest}", serde_json::to_string(metadata)?);
    new_header.extend(std::iter::repeat_n(' ', (8 - new_header.len() % 8) % 8));
    let mut out = Vec::with_capacity(plain.len() + new_header.len());
    out.extend((new_header.len() as u64).to_le_bytes());
    out.extend(new_header.as_bytes());
    out.extend(&plain[8 + n..]);
    Ok(out)
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
