//! Reading a TorchScript module as an MLP: its zip archive verified, its parameters read through
//! libtorch's `CModule`, the layers found and chained as for a state dict, and the module's own
//! forward run beside prunelab's under each activation until one agrees (that comparison is the
//! proof that the module is that MLP).
use super::loaded::{
    ActivationSource, ForwardCheck, LoadOptions, LoadedModel, ModelFormat, ACTIVATION_NAMES,
    CHECK_SAMPLES, FORWARD_TOLERANCE,
};
use super::mlp::{Activation, Mlp};
use super::state_dict::add_batchnorm_buffers;
use super::state_dict::build;
use anyhow::{bail, Result};
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub(super) fn load_torchscript(
    path: &Path,
    bytes: &[u8],
    options: &LoadOptions,
) -> Result<LoadedModel> {
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
