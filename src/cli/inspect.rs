//! `prunelab inspect`: what a model file holds, layer by layer.
use super::args::parse_activation;
use super::{describe_check, Status};
use crate::experiment::task::model_file;
use crate::model::mlp::Activation;
use anyhow::Result;
use std::path::PathBuf;

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

pub fn run(args: Args) -> Result<Status> {
    let report = model_file::inspect(&args.path, args.activation)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(Status::Ok);
    }
    println!("{}: {}", args.path.display(), report.description);
    if let Some(check) = &report.forward_check {
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
