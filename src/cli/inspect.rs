//! `prunelab inspect`: what a model file holds, layer by layer.
use super::eval::{describe_check, parse_activation, sparsity};
use super::Status;
use crate::model::load::{self, ActivationSource, LoadOptions};
use crate::model::mlp::Activation;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::Kind;

/// Layers, shapes, parameter and non-zero counts, sparsity and activation of a model file.
///
/// Reads TorchScript (torch.jit.save) and safetensors state dicts of MLPs. For TorchScript the
/// activation is found by comparing prunelab's forward pass with the module's own on Gaussian
/// inputs. "empty units" are units whose incoming weights and bias are all zero (removed by node
/// pruning but not compacted away).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab inspect models/tiny-mlp.pt
  prunelab inspect pruned.safetensors --json
  prunelab inspect fc.safetensors --activation relu")]
pub struct Args {
    /// The model: TorchScript (.pt) or safetensors.
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// The activation, when the file does not say (only needed for the forward comparison).
    #[arg(long, value_name = "sigmoid|relu|tanh", value_parser = parse_activation)]
    activation: Option<Activation>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Layer {
    name: String,
    weight: String,
    bias: Option<String>,
    /// [out, in]
    shape: Vec<i64>,
    params: usize,
    nonzero: usize,
    sparsity: f64,
    empty_units: usize,
}

#[derive(Serialize)]
struct Report {
    path: PathBuf,
    format: load::ModelFormat,
    sizes: Vec<usize>,
    activation: Option<&'static str>,
    activation_source: ActivationSource,
    forward_check: Option<load::ForwardCheck>,
    layers: Vec<Layer>,
    params_total: usize,
    params_nonzero: usize,
    sparsity: f64,
    metadata: BTreeMap<String, String>,
}

pub fn run(args: Args) -> Result<Status> {
    let model =
        load::load(&args.path, &LoadOptions { activation: args.activation, check_inputs: None })?;
    let mlp = &model.mlp;
    let layers: Vec<Layer> = model
        .layers
        .iter()
        .zip(mlp.weights.iter().zip(&mlp.biases))
        .map(|(names, (w, b))| {
            let nonzero = |t: &tch::Tensor| t.count_nonzero(None::<i64>).int64_value(&[]) as usize;
            let has_bias = names.bias.is_some();
            let params = w.numel() + if has_bias { b.numel() } else { 0 };
            let nonzero_count = nonzero(w) + if has_bias { nonzero(b) } else { 0 };
            let row_mass = w.abs().sum_dim_intlist(1, false, Kind::Float) + b.abs();
            Layer {
                name: names.name.clone(),
                weight: names.weight.clone(),
                bias: names.bias.clone(),
                shape: w.size(),
                params,
                nonzero: nonzero_count,
                sparsity: sparsity(params, nonzero_count) / 100.0,
                empty_units: row_mass.eq(0.0).sum(Kind::Int64).int64_value(&[]) as usize,
            }
        })
        .collect();
    let params_total: usize = layers.iter().map(|l| l.params).sum();
    let params_nonzero: usize = layers.iter().map(|l| l.nonzero).sum();
    let known =
        !matches!(model.activation, ActivationSource::Unknown | ActivationSource::NotNeeded);
    let report = Report {
        path: args.path.clone(),
        format: model.format,
        sizes: mlp.sizes(),
        activation: known.then(|| mlp.activation.name()),
        activation_source: model.activation,
        forward_check: model.forward_check,
        layers,
        params_total,
        params_nonzero,
        sparsity: sparsity(params_total, params_nonzero) / 100.0,
        metadata: model.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(Status::Ok);
    }
    println!("{}: {}", args.path.display(), model.describe());
    if let Some(check) = &model.forward_check {
        println!("{}", describe_check(check, "data"));
    }
    let name_width = report.layers.iter().map(|l| l.name.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<name_width$}  {:>11}  {:>10}  {:>10}  {:>8}  {:>11}",
        "layer", "shape", "params", "non-zero", "sparsity", "empty units"
    );
    for l in &report.layers {
        let shape =
            format!("{}×{}{}", l.shape[0], l.shape[1], if l.bias.is_some() { "+b" } else { "" });
        println!(
            "{:<name_width$}  {shape:>11}  {:>10}  {:>10}  {:>7.1}%  {:>11}",
            if l.name.is_empty() { "(top)" } else { &l.name },
            l.params,
            l.nonzero,
            100.0 * l.sparsity,
            l.empty_units
        );
    }
    println!(
        "{:<name_width$}  {:>11}  {:>10}  {:>10}  {:>7.1}%",
        "total",
        "",
        report.params_total,
        report.params_nonzero,
        100.0 * report.sparsity
    );
    Ok(Status::Ok)
}
