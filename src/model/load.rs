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
pub use super::loaded::*;
use super::script_in::load_torchscript;
use crate::model::io::parse_safetensors;
use crate::model::state_dict::{self, build, BATCHNORM_EPS};
use crate::model::torchscript::{verify_crcs, zip_structure};
use anyhow::{bail, Context, Result};
use safetensors::tensor::Dtype;
use std::path::Path;
use tch::{Kind, Tensor};

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
