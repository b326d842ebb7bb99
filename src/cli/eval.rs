//! `prunelab eval`: the test error of a model file on a dataset's test split.
use super::{describe_check, ModelArgs, Status};
use crate::experiment::task::model_file;
use anyhow::Result;
use std::path::PathBuf;

/// Test error of a model on the test split of a dataset folder.
///
/// The model is a TorchScript file (torch.jit.save) or a safetensors state dict of an MLP; the
/// data is a folder of MNIST-format IDX files or CIFAR-10 binary batches, preprocessed as the
/// model was trained (default: x/255, then (x − 0.1307)/0.3081 for MNIST-format data and
/// (x − 0.5)/0.5 per channel for CIFAR-10).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab eval --model mlp.pt --data /usr/share/datasets/fashion-mnist
  prunelab eval --model pruned.safetensors --data /usr/share/datasets/fashion-mnist --json
  prunelab eval --model fc.safetensors --activation relu --data mnist/ --normalize none")]
pub struct Args {
    /// The model: TorchScript (.pt) or safetensors.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Dataset folder (MNIST-format IDX, raw or .gz, or CIFAR-10 binary); its test split is used.
    #[arg(long, value_name = "DATA")]
    data: PathBuf,
    #[command(flatten)]
    common: ModelArgs,
    /// Evaluate on the first N test samples only.
    #[arg(long, value_name = "N")]
    test_samples: Option<usize>,
    /// Print one JSON object on stdout instead of the text report.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<Status> {
    let report =
        model_file::evaluate(&args.model, &args.data, &args.common.options(), args.test_samples)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(Status::Ok);
    }
    let n = report.test_samples;
    println!("model        {}: {}", args.model.display(), report.description);
    if let Some(check) = &report.forward_check {
        println!("forward      {}", describe_check(check, "test"));
    }
    println!("data         {} ({n} test samples)", args.data.display());
    println!(
        "test error   {:.2}% ({} of {n} wrong)",
        100.0 * report.test_error,
        report.test_errors
    );
    println!(
        "parameters   {} ({} non-zero, {:.1}% sparse)",
        report.params_total,
        report.params_nonzero,
        100.0 * model_file::sparsity(report.params_total, report.params_nonzero)
    );
    Ok(Status::Ok)
}
