//! `prunelab prune` as a library call. It works in an order that makes bad input cost nothing and
//! leaves nothing half-written: check the request → read the data → read the model (proving
//! prunelab's forward equals a TorchScript module's) → select the mask → prune (and reweight) →
//! compact and check → encode every output and check the TorchScript ones by loading them back →
//! write all outputs at once.
use super::outputs::{check_outputs, encode_outputs, layer_masks, OutFormat, Written};
use super::request::{tolerance, PruneRequest};
use super::{check_fits, layer_counts, load_data, load_model, LayerCounts};
use crate::data::images::Dataset;
use crate::files;
use crate::model::load::{ForwardCheck, LoadedModel};
use crate::model::mlp::Mlp;
use crate::prune::budget::{self, BudgetSpec};
use crate::prune::dpp::kernel::InputMoments;
use crate::prune::layer::{compact, Layer, LayerPruner, Options};
use crate::prune::stats::LayerStats;
use crate::prune::Mask;
use crate::seed;
use anyhow::{bail, Result};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// What `prune` did.
pub struct PruneOutcome {
    pub description: String,
    pub forward_check: Option<ForwardCheck>,
    /// Calibration samples used, if any.
    pub calibrated_on: Option<usize>,
    pub layer_name: String,
    pub layer_index: usize,
    pub hidden: usize,
    pub inputs: usize,
    pub mask: Mask,
    pub before: Vec<LayerCounts>,
    pub after: Vec<LayerCounts>,
    /// Test error before and after, and the test samples.
    pub test_errors: Option<(f64, f64, usize)>,
    /// Max |Δ| between the compacted and the masked network, and the probe inputs.
    pub compact_check: Option<(f64, i64)>,
    /// Each output, its format and, for TorchScript, the max |Δ| of the reloaded module.
    pub written: Vec<Written>,
}

/// The model, its data, and the layer a prune request targets.
struct Inputs {
    model: LoadedModel,
    calib: Option<Dataset>,
    test: Option<Dataset>,
    layer: usize,
}

/// Prunes one hidden layer of a model file and writes every output, or nothing.
pub fn prune(request: &PruneRequest) -> Result<PruneOutcome> {
    let outputs = check_request(request)?;
    let inputs = read_inputs(request)?;
    let (mask, pruned) = select_and_prune(request, &inputs)?;
    let probe = probe_inputs(&inputs);
    let mlp = &inputs.model.mlp;
    let (final_net, masked, compact_check) = match (&mask, request.compact) {
        (Mask::Nodes(kept), true) => {
            let small = compact(&pruned, inputs.layer, kept)?;
            let diff = max_abs_diff(&small, &pruned, &probe);
            if diff.is_nan() || diff > tolerance(&pruned, &probe) {
                bail!("the compacted network's outputs differ from the masked network's by {diff:.3e}; nothing was written");
            }
            (small, Some(pruned), Some((diff, probe.size()[0])))
        }
        _ => (pruned, None, None),
    };
    let masks = layer_masks(&mask, inputs.layer, mlp);
    let nets = (&final_net, masked.as_ref().unwrap_or(&final_net), &masks[..]);
    let (encoded, written) =
        encode_outputs(request, &inputs.model, inputs.layer, nets, &outputs, &probe)?;
    let test_errors = inputs.test.as_ref().map(|t| {
        (
            mlp.error_rate(&t.test_x, &t.test_y),
            final_net.error_rate(&t.test_x, &t.test_y),
            t.test_x.size()[0] as usize,
        )
    });
    files::write_all_atomic(&encoded)?;
    let sizes = mlp.sizes();
    Ok(PruneOutcome {
        description: inputs.model.describe(),
        forward_check: inputs.model.forward_check,
        calibrated_on: inputs.calib.as_ref().map(|c| c.train_x.size()[0] as usize),
        layer_name: inputs.model.layers[inputs.layer].name.clone(),
        layer_index: inputs.layer,
        hidden: sizes[inputs.layer + 1],
        inputs: sizes[inputs.layer],
        before: layer_counts(&inputs.model, mlp),
        after: layer_counts(&inputs.model, &final_net),
        mask,
        test_errors,
        compact_check,
        written,
    })
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
    let test = match &request.data {
        Some(dir) => Some(load_data(dir, normalize, Some(0), None)?),
        None => None,
    };
    let check_x = calib.as_ref().map(|c| &c.train_x).or(test.as_ref().map(|t| &t.test_x));
    let model = load_model(&request.model, request.options.activation, check_x)?;
    for (data, dir) in [(&calib, &request.calib), (&test, &request.data)] {
        if let (Some(data), Some(dir)) = (data, dir) {
            check_fits(&model, data, dir)?;
        }
    }
    let layer = match &request.layer {
        Some(name) => model.layer_index(name)?,
        None => 0,
    };
    if layer + 1 >= model.mlp.weights.len() {
        bail!(
            "layer `{}` of {} is its output layer, which has no hidden units to prune; choose a hidden layer ({})",
            model.layers[layer].name,
            request.model.display(),
            hidden_names(&model)
        );
    }
    Ok(Inputs { model, calib, test, layer })
}

/// Draws the mask at the matched budget of `request.keep` and prunes the layer.
fn select_and_prune(request: &PruneRequest, inputs: &Inputs) -> Result<(Mask, Mlp)> {
    let (mlp, index) = (&inputs.model.mlp, inputs.layer);
    let layer = Layer::of_mlp(mlp, index)?;
    let shape = layer.shape();
    let budget = budget::resolve(&BudgetSpec::Fractions(vec![request.keep]), shape)?[0];
    let stats = match &inputs.calib {
        Some(c) => LayerStats::calibrate(mlp, index, &c.train_x, !request.bias_free_divnet, false)?,
        None => LayerStats {
            inputs: InputMoments::Identity(shape.inputs),
            pre_activations: None,
            activations: Tensor::zeros([shape.hidden as i64; 2], (Kind::Double, Device::Cpu)),
        },
    };
    let options = Options {
        node_kernel: request.node_kernel,
        edge_kernel: request.edge_kernel,
        ..Options::default()
    };
    let name = &inputs.model.layers[index].name;
    let mut pruner = LayerPruner::new(&layer, &stats, options, name)?;
    let mut rng = seed::rng(request.seed, &format!("masks/{name}/{}", request.method.name()));
    let mask = pruner.masks(request.method, &[budget], 1, &mut rng)?.remove(0).remove(0);
    let pruned = pruner.pruned(&mask, request.reweight)?.into_mlp(mlp, index);
    Ok((mask, pruned))
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

fn hidden_names(model: &LoadedModel) -> String {
    let hidden = &model.layers[..model.layers.len() - 1];
    if hidden.is_empty() {
        return "it has none: a single layer".into();
    }
    hidden.iter().map(|l| format!("`{}`", l.name)).collect::<Vec<_>>().join(", ")
}
