//! `prunelab prune` as a library call. It works in an order that makes bad input cost nothing and
//! leaves nothing half-written: check the request → read the data → read the model (proving
//! prunelab's forward equals a TorchScript module's) → select the masks and prune (and reweight)
//! the layers in order → fine-tune with the masks held → compact and check → encode every output
//! and check the TorchScript ones by loading them back → write all outputs at once.
use super::finetune::{check_sgd, finetune, merged_masks, FineTuned};
use super::outputs::{check_outputs, encode_outputs, OutFormat, Written};
use super::request::{tolerance, PruneRequest};
use super::{check_fits, layer_counts, load_data, load_model, LayerCounts};
use crate::data::images::Dataset;
use crate::files;
use crate::model::load::{ForwardCheck, LoadedModel};
use crate::model::mlp::Mlp;
use crate::prune::layer::{compact, Options};
use crate::prune::whole::{self, Pruned, PrunedLayer, WholeSpec};
use crate::prune::Mask;
use crate::seed;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// One pruned layer.
pub struct PrunedLayerReport {
    pub name: String,
    pub index: usize,
    pub hidden: usize,
    pub inputs: usize,
    pub mask: Mask,
    /// Non-zero incoming weights after pruning over the layer's weights.
    pub kept_fraction: f64,
}

/// What `prune` did.
pub struct PruneOutcome {
    pub description: String,
    pub forward_check: Option<ForwardCheck>,
    /// Calibration samples used, if any.
    pub calibrated_on: Option<usize>,
    /// The pruned layers, in the order they were pruned.
    pub layers: Vec<PrunedLayerReport>,
    /// Non-zero incoming weights of all pruned layers over their weights.
    pub kept_fraction: f64,
    pub before: Vec<LayerCounts>,
    pub after: Vec<LayerCounts>,
    /// Test error before and after pruning (before any fine-tuning), and the test samples.
    pub test_errors: Option<(f64, f64, usize)>,
    pub finetuned: Option<FineTuned>,
    /// Max |Δ| between the compacted and the masked network, and the probe inputs.
    pub compact_check: Option<(f64, i64)>,
    /// Each output, its format and, for TorchScript, the max |Δ| of the reloaded module.
    pub written: Vec<Written>,
}

/// The model, its data, and the layers a prune request targets.
struct Inputs {
    model: LoadedModel,
    calib: Option<Dataset>,
    /// The `--data` folder (its training split only when fine-tuning).
    test: Option<Dataset>,
    layers: Vec<usize>,
}

/// Prunes hidden layers of a model file, fine-tunes if asked, and writes every output, or nothing.
pub fn prune(request: &PruneRequest) -> Result<PruneOutcome> {
    let outputs = check_request(request)?;
    let inputs = read_inputs(request)?;
    let whole = select_and_prune(request, &inputs)?;
    let probe = probe_inputs(&inputs);
    let mlp = &inputs.model.mlp;
    let masks = merged_masks(&whole.layers, mlp);
    let test_errors = inputs.test.as_ref().map(|t| {
        (
            mlp.error_rate(&t.test_x, &t.test_y),
            whole.mlp.error_rate(&t.test_x, &t.test_y),
            t.test_x.size()[0] as usize,
        )
    });
    let (pruned, finetuned) = match (&request.finetune, &inputs.test) {
        (Some(sgd), Some(data)) => {
            let (net, done) = finetune(&whole.mlp, data, sgd, &masks, request.seed)?;
            (net, Some(done))
        }
        _ => (whole.mlp, None),
    };
    let (final_net, masked, compact_check) = compact_all(request, &whole.layers, pruned, &probe)?;
    let nets = (&final_net, masked.as_ref().unwrap_or(&final_net), &masks[..]);
    let (encoded, written) =
        encode_outputs(request, &inputs.model, &inputs.layers, nets, &outputs, &probe)?;
    files::write_all_atomic(&encoded)?;
    let sizes = mlp.sizes();
    let layers = whole
        .layers
        .into_iter()
        .map(|l| PrunedLayerReport {
            name: inputs.model.layers[l.index].name.clone(),
            index: l.index,
            hidden: sizes[l.index + 1],
            inputs: sizes[l.index],
            mask: l.mask,
            kept_fraction: l.kept_fraction,
        })
        .collect();
    Ok(PruneOutcome {
        description: inputs.model.describe(),
        forward_check: inputs.model.forward_check,
        calibrated_on: inputs.calib.as_ref().map(|c| c.train_x.size()[0] as usize),
        layers,
        kept_fraction: whole.kept_fraction,
        before: layer_counts(&inputs.model, mlp),
        after: layer_counts(&inputs.model, &final_net),
        test_errors,
        finetuned,
        compact_check,
        written,
    })
}

/// The network to write, the masked one it was compacted from, and the compaction check.
type Compacted = (Mlp, Option<Mlp>, Option<(f64, i64)>);

/// With `--compact`, removes the units of every node-pruned layer and checks the function; returns
/// the network to write, the masked one it came from, and the check.
fn compact_all(
    request: &PruneRequest,
    layers: &[PrunedLayer],
    pruned: Mlp,
    probe: &Tensor,
) -> Result<Compacted> {
    if !request.compact {
        return Ok((pruned, None, None));
    }
    let mut small = pruned.clone();
    for layer in layers {
        if let Mask::Nodes(kept) = &layer.mask {
            small = compact(&small, layer.index, kept)?;
        }
    }
    let diff = max_abs_diff(&small, &pruned, probe);
    if diff.is_nan() || diff > tolerance(&pruned, probe) {
        bail!("the compacted network's outputs differ from the masked network's by {diff:.3e}; nothing was written");
    }
    Ok((small, Some(pruned), Some((diff, probe.size()[0]))))
}

/// Checks what needs no file; returns the outputs with their formats.
fn check_request(request: &PruneRequest) -> Result<Vec<(PathBuf, OutFormat)>> {
    let outputs =
        check_outputs(&request.outputs, request.masks.as_ref(), request.torch_prune.as_ref())?;
    if outputs.is_empty() {
        bail!("nothing to write: give --out, --masks or --torch-prune-layout");
    }
    let method = request.method;
    if request.compact && request.torch_prune.is_some() {
        bail!(
            "--torch-prune-layout keeps the input's shapes with masks, but --compact removes the pruned units; \
             write the torch.nn.utils.prune layout from a run without --compact"
        );
    }
    if request.compact && !method.is_node() {
        bail!(
            "--compact removes whole units, but {method} keeps every unit (with fewer inputs each), so there is nothing to remove; \
             use a node method (random_node, importance_node, dpp_node) or save the sparse weights without --compact"
        );
    }
    if (method.is_dpp() || request.reweight) && request.calib.is_none() {
        let why = if method.is_dpp() {
            format!("{method} builds its DPP kernel from the layer's inputs")
        } else {
            "--reweight regresses on the layer's activations".to_string()
        };
        bail!("{why}: give calibration data with --calib DATA (a dataset folder, e.g. the training set the model learnt from)");
    }
    whole::check_allocation(method, request.allocation)?;
    if let Some(sgd) = &request.finetune {
        if request.data.is_none() {
            bail!("--finetune-epochs trains on the training split of --data DATA and measures the test error on its test split: give --data");
        }
        check_sgd(sgd)?;
    }
    if !(request.keep > 0.0 && request.keep <= 1.0) {
        bail!("--keep {} is not a kept fraction in (0, 1]", request.keep);
    }
    Ok(outputs)
}

/// Reads the data, then the model (its forward compared on real inputs when there are any), and
/// finds the layer.
fn read_inputs(request: &PruneRequest) -> Result<Inputs> {
    let normalize = &request.options.normalize;
    let calib = match &request.calib {
        Some(dir) => Some(load_data(dir, normalize, request.calib_samples, Some(0))?),
        None => None,
    };
    if let (Some(c), Some(dir)) = (&calib, &request.calib) {
        if c.train_x.size()[0] == 0 {
            bail!(
                "the calibration set is empty: {} has no training samples (or --calib-samples 0)",
                dir.display()
            );
        }
    }
    let train = if request.finetune.is_some() { None } else { Some(0) };
    let test = match &request.data {
        Some(dir) => Some(load_data(dir, normalize, train, None)?),
        None => None,
    };
    let check_x = calib.as_ref().map(|c| &c.train_x).or(test.as_ref().map(|t| &t.test_x));
    let model = load_model(&request.model, request.options.activation, check_x)?;
    for (data, dir) in [(&calib, &request.calib), (&test, &request.data)] {
        if let (Some(data), Some(dir)) = (data, dir) {
            check_fits(&model, data, dir)?;
        }
    }
    let layers = hidden_layers(&model, &request.layers, &request.model)?;
    Ok(Inputs { model, calib, test, layers })
}

/// Prunes the requested layers in order, each calibrated on the pruned prefix.
fn select_and_prune(request: &PruneRequest, inputs: &Inputs) -> Result<Pruned> {
    let spec = WholeSpec {
        layers: inputs.layers.clone(),
        names: inputs.model.layers.iter().map(|l| l.name.clone()).collect(),
        method: request.method,
        keep: request.keep,
        allocation: request.allocation,
        reweight: request.reweight,
        include_bias: !request.bias_free_divnet,
        options: Options {
            node_kernel: request.node_kernel,
            edge_kernel: request.edge_kernel,
            ..Options::default()
        },
    };
    let calib = inputs.calib.as_ref().map(|c| &c.train_x);
    let method = request.method.name();
    whole::prune_layers(&inputs.model.mlp, &spec, calib, |name| {
        seed::rng(request.seed, &format!("masks/{name}/{method}"))
    })
}

/// Inputs on which the outputs are compared: up to 1,024 of the data's, else Gaussian ones.
fn probe_inputs(inputs: &Inputs) -> Tensor {
    let data =
        inputs.calib.as_ref().map(|c| &c.train_x).or(inputs.test.as_ref().map(|t| &t.test_x));
    match data {
        Some(x) => x.narrow(0, 0, x.size()[0].min(1024)),
        None => {
            Tensor::randn([256, inputs.model.mlp.sizes()[0] as i64], (Kind::Float, Device::Cpu))
        }
    }
}

/// Max |Δ| between two networks' outputs on `x`.
pub fn max_abs_diff(a: &Mlp, b: &Mlp, x: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    (a.forward(x) - b.forward(x)).abs().max().double_value(&[])
}

/// The hidden layers `names` pick (`all`: every hidden layer; none: the first), sorted, each once.
fn hidden_layers(model: &LoadedModel, names: &[String], path: &Path) -> Result<Vec<usize>> {
    let hidden = model.mlp.weights.len() - 1;
    if names.iter().any(|n| n == "all") {
        if names.len() > 1 {
            bail!("--layer all already names every hidden layer; give it alone or list the layers");
        }
        if hidden == 0 {
            bail!("{} has no hidden layer to prune: it is a single linear layer", path.display());
        }
        return Ok((0..hidden).collect());
    }
    let mut layers = Vec::new();
    for name in names {
        let layer = model.layer_index(name)?;
        if layer >= hidden {
            bail!(
                "layer `{}` of {} is its output layer, which has no hidden units to prune; choose a hidden layer ({})",
                model.layers[layer].name,
                path.display(),
                hidden_names(model)
            );
        }
        if layers.contains(&layer) {
            bail!("--layer {name}: layer `{}` is named twice", model.layers[layer].name);
        }
        layers.push(layer);
    }
    if layers.is_empty() {
        if hidden == 0 {
            bail!(
                "layer `{}` of {} is its output layer, which has no hidden units to prune; choose a hidden layer ({})",
                model.layers[0].name,
                path.display(),
                hidden_names(model)
            );
        }
        layers.push(0);
    }
    layers.sort_unstable();
    Ok(layers)
}

fn hidden_names(model: &LoadedModel) -> String {
    let hidden = &model.layers[..model.layers.len() - 1];
    if hidden.is_empty() {
        return "it has none: a single layer".into();
    }
    hidden.iter().map(|l| format!("`{}`", l.name)).collect::<Vec<_>>().join(", ")
}
