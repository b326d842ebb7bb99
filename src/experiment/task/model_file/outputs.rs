//! What `prunelab prune` writes: TorchScript (`.pt`), state dicts with the input's names
//! (`.safetensors`), the pruning masks alone (`--masks`), and state dicts in
//! `torch.nn.utils.prune`'s layout (`--torch-prune-layout`): a masked parameter `X` stored as
//! `X_orig` and `X_mask` (f32, 1 kept, 0 removed), which a module pruned with
//! `torch.nn.utils.prune.custom_from_mask` loads with `load_state_dict`. Masks are the pruning
//! decision in the input model's shapes: for node methods the pruned layer's rows and bias entries
//! of the removed units and the next layer's columns; for edge methods the removed weights.
use super::request::{tolerance, PruneRequest};
use crate::model::io::{bias_name, encode_state_dict, encode_tensors};
use crate::model::load::LoadedModel;
use crate::model::mlp::Mlp;
use crate::model::torchscript;
use crate::prune::Mask;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    /// `--out X.pt`: an nn.Sequential of Linear layers for `torch.jit.load`.
    TorchScript,
    /// `--out X.safetensors`: a state dict with the input model's parameter names.
    Safetensors,
    /// `--masks X.safetensors`: `<weight>_mask` and `<bias>_mask` of the masked layers.
    Masks,
    /// `--torch-prune-layout X.safetensors`: a state dict with `_orig` and `_mask` tensors.
    TorchPrune,
}

/// The outputs and their formats (`outs` by extension, then the masks and the torch-prune state
/// dict); refuses unknown extensions, duplicates and missing folders.
pub fn check_outputs(
    outs: &[PathBuf],
    masks: Option<&PathBuf>,
    torch_prune: Option<&PathBuf>,
) -> Result<Vec<(PathBuf, OutFormat)>> {
    let mut all: Vec<(PathBuf, OutFormat, &str)> = Vec::new();
    for out in outs {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        let format = match ext.as_str() {
            "pt" => OutFormat::TorchScript,
            "safetensors" => OutFormat::Safetensors,
            _ => bail!(
                "--out {}: unknown model format `{ext}` (use .pt for TorchScript or .safetensors)",
                out.display()
            ),
        };
        all.push((out.clone(), format, "--out"));
    }
    for (path, format, flag) in [
        (masks, OutFormat::Masks, "--masks"),
        (torch_prune, OutFormat::TorchPrune, "--torch-prune-layout"),
    ] {
        let Some(path) = path else { continue };
        if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
            bail!("{flag} {}: the file name must end in .safetensors (it is a safetensors state dict)", path.display());
        }
        all.push((path.clone(), format, flag));
    }
    let mut checked: Vec<(PathBuf, OutFormat)> = Vec::new();
    for (out, format, flag) in all {
        if checked.iter().any(|(p, _)| *p == out) {
            bail!("{flag} {} is given twice (each output needs its own file)", out.display());
        }
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("{flag} {}: the folder {} does not exist", out.display(), parent.display());
        }
        checked.push((out, format));
    }
    Ok(checked)
}

/// An output written: its path, its format and, for TorchScript, the max |Δ| of the module
/// loaded back.
pub type Written = (PathBuf, OutFormat, Option<f64>);

/// An output's path and bytes.
pub type Encoded = (PathBuf, Vec<u8>);

/// One layer's masks (f32, 1 kept, 0 removed), in the input model's shapes.
pub struct LayerMask {
    pub layer: usize,
    pub weight: Tensor,
    /// For the pruned layer of a node method: its removed units' biases.
    pub bias: Option<Tensor>,
}

/// The masks of `mask` applied to layer `layer` of `mlp` (the unpruned network).
pub fn layer_masks(mask: &Mask, layer: usize, mlp: &Mlp) -> Vec<LayerMask> {
    let (h, d) = (mlp.weights[layer].size()[0], mlp.weights[layer].size()[1]);
    let f32s = (Kind::Float, Device::Cpu);
    match mask {
        Mask::Nodes(kept) => {
            let index = Tensor::from_slice(&kept.iter().map(|&k| k as i64).collect::<Vec<_>>());
            let units = Tensor::zeros([h], f32s).index_fill(0, &index, 1.0);
            let next = mlp.weights[layer + 1].size()[0];
            vec![
                LayerMask {
                    layer,
                    weight: units.unsqueeze(1).expand([h, d], false).contiguous(),
                    bias: Some(units.shallow_clone()),
                },
                LayerMask {
                    layer: layer + 1,
                    weight: units.unsqueeze(0).expand([next, h], false).contiguous(),
                    bias: None,
                },
            ]
        }
        Mask::Edges(rows) => {
            let mut values = vec![0f32; (h * d) as usize];
            for (i, row) in rows.iter().enumerate() {
                for &j in row {
                    values[i * d as usize + j] = 1.0;
                }
            }
            let weight = Tensor::from_slice(&values).view([h, d]);
            vec![LayerMask { layer, weight, bias: None }]
        }
    }
}

/// The state dict of `net` named as `model`'s file: each layer's weight and bias, and each folded
/// BatchNorm1d as an identity (weight 1, bias 0, running_mean 0, running_var 1 − eps) so that the
/// result loads into the original class. With `prune_layout` (the unpruned network and the
/// masks), masked tensors are written as `<name>_orig` (the pruned values where kept, the
/// original ones where removed, as `torch.nn.utils.prune` keeps them) and `<name>_mask`.
pub fn state_dict(
    model: &LoadedModel,
    net: &Mlp,
    prune_layout: Option<(&Mlp, &[LayerMask])>,
) -> Vec<(String, Tensor)> {
    let mut tensors = Vec::new();
    let mut push = |name: String, value: Tensor, mask: Option<(&Tensor, &Tensor)>| match mask {
        Some((mask, original)) => {
            let orig = value.where_self(&mask.ne(0.0), original);
            tensors.push((format!("{name}_orig"), orig));
            tensors.push((format!("{name}_mask"), mask.shallow_clone()));
        }
        None => tensors.push((name, value)),
    };
    for (l, names) in model.layers.iter().enumerate() {
        let (w, mut b) = (net.weights[l].shallow_clone(), net.biases[l].shallow_clone());
        let masks =
            prune_layout.and_then(|(orig, ms)| Some((orig, ms.iter().find(|m| m.layer == l)?)));
        push(names.weight.clone(), w, masks.map(|(o, m)| (&m.weight, &o.weights[l])));
        let bn = names.batchnorm.as_ref();
        if names.bias.is_none() && bn.is_some_and(|bn| bn.affine) {
            // Linear(bias=False) + BatchNorm1d: the folded shift goes to the BatchNorm's bias.
            let bn = bn.expect("checked");
            tensors_bn(&mut push, &bn.name, &b, bn.eps);
            continue;
        }
        if let Some(name) = bias_name(&names.weight, names.bias.as_deref(), &b) {
            let mask = masks.and_then(|(o, m)| Some((m.bias.as_ref()?, &o.biases[l])));
            push(name, b.shallow_clone(), mask);
        }
        if let Some(bn) = bn {
            b = b.zeros_like();
            tensors_bn(&mut push, &bn.name, &b, bn.eps);
        }
    }
    tensors
}

/// An identity BatchNorm1d `name` with shift `bias`.
fn tensors_bn(
    push: &mut impl FnMut(String, Tensor, Option<(&Tensor, &Tensor)>),
    name: &str,
    bias: &Tensor,
    eps: f64,
) {
    let field = |f: &str| if name.is_empty() { f.to_string() } else { format!("{name}.{f}") };
    push(field("weight"), bias.ones_like(), None);
    push(field("bias"), bias.shallow_clone(), None);
    push(field("running_mean"), bias.zeros_like(), None);
    push(field("running_var"), bias.ones_like() * (1.0 - eps), None);
}

/// The masks file: `<weight>_mask` and `<bias>_mask` of the masked layers, named as the input.
fn masks_file(model: &LoadedModel, masks: &[LayerMask]) -> Vec<(String, Tensor)> {
    let mut tensors = Vec::new();
    for m in masks {
        let names = &model.layers[m.layer];
        tensors.push((format!("{}_mask", names.weight), m.weight.shallow_clone()));
        if let (Some(bias), Some(mask)) = (&names.bias, &m.bias) {
            tensors.push((format!("{bias}_mask"), mask.shallow_clone()));
        }
    }
    tensors
}

/// The outputs' bytes, and each output with its format and, for TorchScript, the max |Δ| of the
/// module loaded back. `masked` is the pruned network before compaction, `net` what is written.
pub fn encode_outputs(
    request: &PruneRequest,
    model: &LoadedModel,
    layers: &[usize],
    (net, masked, masks): (&Mlp, &Mlp, &[LayerMask]),
    outputs: &[(PathBuf, OutFormat)],
    probe: &Tensor,
) -> Result<(Vec<Encoded>, Vec<Written>)> {
    let names: Vec<&str> = layers.iter().map(|&l| model.layers[l].name.as_str()).collect();
    let finetune_epochs = request.finetune.as_ref().map_or(0, |f| f.epochs);
    let metadata = [
        ("prunelab.pruned_from", file_name(&request.model)),
        ("prunelab.layer", names.join(",")),
        ("prunelab.allocation", request.allocation.name().to_string()),
        ("prunelab.finetune_epochs", finetune_epochs.to_string()),
        ("prunelab.method", request.method.name().to_string()),
        ("prunelab.keep", request.keep.to_string()),
        ("prunelab.reweight", request.reweight.to_string()),
        ("prunelab.compact", request.compact.to_string()),
        ("prunelab.seed", request.seed.to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let (mut encoded, mut written) = (Vec::new(), Vec::new());
    for (path, format) in outputs {
        let encoding = || format!("encoding {}", path.display());
        let (bytes, diff) = match format {
            OutFormat::Safetensors => (
                encode_state_dict(&state_dict(model, net, None), net, &metadata)
                    .with_context(encoding)?,
                None,
            ),
            OutFormat::TorchPrune => {
                let tensors = state_dict(model, masked, Some((&model.mlp, masks)));
                let mut extra = metadata.to_vec();
                extra.push(("prunelab.layout".into(), "torch.nn.utils.prune".into()));
                (encode_state_dict(&tensors, masked, &extra).with_context(encoding)?, None)
            }
            OutFormat::Masks => {
                let mut meta: BTreeMap<String, String> = metadata.iter().cloned().collect();
                meta.insert("prunelab.kind".into(), "masks".into());
                (encode_tensors(&masks_file(model, masks), &meta).with_context(encoding)?, None)
            }
            OutFormat::TorchScript => {
                let bytes = torchscript::encode(net).with_context(encoding)?;
                let diff = reloaded_diff(&bytes, net, probe, path)?;
                (bytes, Some(diff))
            }
        };
        encoded.push((path.clone(), bytes));
        written.push((path.clone(), *format, diff));
    }
    Ok((encoded, written))
}

/// Max |Δ| between the TorchScript module in `bytes` and `net` on `probe`.
fn reloaded_diff(bytes: &[u8], net: &Mlp, probe: &Tensor, path: &Path) -> Result<f64> {
    let module = tch::CModule::load_data(&mut &bytes[..]).map_err(|e| {
        anyhow::anyhow!("the TorchScript written for {} does not load back: {e}", path.display())
    })?;
    let _guard = tch::no_grad_guard();
    let diff = (module.forward_ts(&[probe])? - net.forward(probe)).abs().max().double_value(&[]);
    if diff.is_nan() || diff > tolerance(net, probe) {
        bail!(
            "the TorchScript written for {} computes outputs {diff:.3e} away from prunelab's; nothing was written",
            path.display()
        );
    }
    Ok(diff)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_before_any_work() {
        let outs = [PathBuf::from("a.pt"), PathBuf::from("a.safetensors")];
        assert!(check_outputs(&outs, None, None).is_ok());
        let err = check_outputs(&[PathBuf::from("a.onnx")], None, None).unwrap_err().to_string();
        assert!(err.contains("unknown model format `onnx`"), "{err}");
        let twice = [PathBuf::from("a.pt"), PathBuf::from("a.pt")];
        let err = check_outputs(&twice, None, None).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = check_outputs(&[PathBuf::from("/nonexistent-dir/a.pt")], None, None).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let m = PathBuf::from("m.safetensors");
        let err = check_outputs(std::slice::from_ref(&m), Some(&m), None).unwrap_err().to_string();
        assert!(err.contains("--masks m.safetensors is given twice"), "{err}");
        let err = check_outputs(&[], None, Some(&PathBuf::from("t.pt"))).unwrap_err().to_string();
        assert!(
            err.contains("--torch-prune-layout t.pt: the file name must end in .safetensors"),
            "{err}"
        );
    }
}
