//! `prunelab eval`: the test error of a model file (TorchScript or safetensors) on a dataset's test
//! split. Also the data and model helpers `prune` shares.
use super::Status;
use crate::data::images::{self, Dataset, NamedNormalize, Normalize};
use crate::model::load::{self, LoadOptions, LoadedModel};
use crate::model::mlp::{Activation, Mlp};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::Device;

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

/// Options every command that reads a model and data shares.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The activation between the layers, when the file does not say (a state dict without
    /// prunelab's metadata); for TorchScript, the only one tried against the module's forward.
    #[arg(long, value_name = "sigmoid|relu|tanh", value_parser = parse_activation)]
    pub activation: Option<Activation>,
    /// Input preprocessing after x/255: `auto` (the paper's: MNIST-format 0.1307,0.3081; CIFAR-10
    /// 0.5,0.5 per channel), `none`, `MEAN,STD`, or per channel `M1,M2,M3,S1,S2,S3`.
    #[arg(long, value_name = "MEAN,STD|none", default_value = "auto", value_parser = parse_normalize)]
    pub normalize: Normalize,
}

#[derive(Serialize)]
struct Report<'a> {
    model: &'a Path,
    format: load::ModelFormat,
    sizes: Vec<usize>,
    activation: Option<&'static str>,
    activation_source: load::ActivationSource,
    forward_check: Option<load::ForwardCheck>,
    data: &'a Path,
    test_samples: usize,
    test_errors: usize,
    test_error: f64,
    params_total: usize,
    params_nonzero: usize,
}

pub fn run(args: Args) -> Result<Status> {
    let data = load_data(&args.data, &args.common.normalize, Some(0), args.test_samples)?;
    let model = load_model(&args.model, &args.common, Some(&data.test_x))?;
    check_fits(&model, &data, &args.data)?;
    let n = data.test_x.size()[0] as usize;
    let error = model.mlp.error_rate(&data.test_x, &data.test_y);
    let report = Report {
        model: &args.model,
        format: model.format,
        sizes: model.mlp.sizes(),
        activation: Some(model.mlp.activation.name())
            .filter(|_| model.activation != load::ActivationSource::NotNeeded),
        activation_source: model.activation,
        forward_check: model.forward_check,
        data: &args.data,
        test_samples: n,
        test_errors: (error * n as f64).round() as usize,
        test_error: error,
        params_total: model.mlp.params_total(),
        params_nonzero: model.mlp.params_nonzero(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("model        {}: {}", args.model.display(), model.describe());
        if let Some(check) = &model.forward_check {
            println!("forward      {}", describe_check(check, "test"));
        }
        println!("data         {} ({n} test samples)", args.data.display());
        println!("test error   {:.2}% ({} of {n} wrong)", 100.0 * error, report.test_errors);
        println!(
            "parameters   {} ({} non-zero, {:.1}% sparse)",
            report.params_total,
            report.params_nonzero,
            sparsity(report.params_total, report.params_nonzero)
        );
    }
    Ok(Status::Ok)
}

/// `prunelab's forward matches the module's: max |Δ| 5.9e-8 on 512 test inputs (tolerance 1.0e-4)`.
pub fn describe_check(check: &load::ForwardCheck, what: &str) -> String {
    let inputs = if check.gaussian_inputs { "Gaussian".to_string() } else { what.to_string() };
    format!(
        "prunelab's forward matches the TorchScript module's: max |Δ| {:.2e} on {} {inputs} inputs (tolerance {:.1e})",
        check.max_abs_diff, check.samples, check.tolerance
    )
}

/// Percentage of zero parameters.
pub fn sparsity(total: usize, nonzero: usize) -> f64 {
    100.0 * (total - nonzero.min(total)) as f64 / total.max(1) as f64
}

/// Reads a dataset folder on the CPU.
pub fn load_data(
    dir: &Path,
    normalize: &Normalize,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
) -> Result<Dataset> {
    normalize.check()?;
    images::load(dir, normalize, train_limit, test_limit, Device::Cpu)
}

/// Reads a model, comparing TorchScript forwards on `check_inputs` (else Gaussian inputs), and
/// requires its activation.
pub fn load_model(
    path: &Path,
    args: &ModelArgs,
    check_inputs: Option<&tch::Tensor>,
) -> Result<LoadedModel> {
    let model = load::load(path, &LoadOptions { activation: args.activation, check_inputs })?;
    model.require_activation()?;
    Ok(model)
}

/// Refuses data whose inputs or labels do not fit the model.
pub fn check_fits(model: &LoadedModel, data: &Dataset, dir: &Path) -> Result<()> {
    let sizes = model.mlp.sizes();
    let (inputs, outputs) = (sizes[0], *sizes.last().expect("layers"));
    if data.dim != inputs {
        bail!(
            "{} has {}-dimensional inputs, but {}'s first layer `{}` takes {inputs}",
            dir.display(),
            data.dim,
            model.path.display(),
            model.layers[0].weight
        );
    }
    if data.classes > outputs {
        bail!(
            "{} has {} classes, but {} has only {outputs} outputs",
            dir.display(),
            data.classes,
            model.path.display()
        );
    }
    Ok(())
}

/// Max |Δ| between two networks' outputs on `x`.
pub fn max_abs_diff(a: &Mlp, b: &Mlp, x: &tch::Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    (a.forward(x) - b.forward(x)).abs().max().double_value(&[])
}

/// Parses `--activation`.
pub fn parse_activation(text: &str) -> Result<Activation, String> {
    load::parse_activation(text).map_err(|e| e.to_string())
}

/// Parses `--normalize`: `auto`, `none`, `MEAN,STD` or `M1,…,Mc,S1,…,Sc`.
pub fn parse_normalize(text: &str) -> Result<Normalize, String> {
    match text.trim() {
        "auto" => return Ok(Normalize::Named(NamedNormalize::Auto)),
        "none" => return Ok(Normalize::Named(NamedNormalize::None)),
        _ => {}
    }
    let values: Vec<f64> =
        text.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(
            |_| format!("expected auto, none, MEAN,STD or M1,M2,M3,S1,S2,S3, got `{text}`"),
        )?;
    if values.is_empty() || !values.len().is_multiple_of(2) {
        return Err(format!(
            "expected as many means as stds (MEAN,STD or M1,M2,M3,S1,S2,S3), got `{text}`"
        ));
    }
    let (mean, std) = values.split_at(values.len() / 2);
    let normalize = Normalize::MeanStd { mean: mean.to_vec(), std: std.to_vec() };
    normalize.check().map_err(|e| e.to_string())?;
    Ok(normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_values_parse() {
        assert_eq!(parse_normalize("none").unwrap(), Normalize::Named(NamedNormalize::None));
        assert_eq!(
            parse_normalize("0.5,0.25").unwrap(),
            Normalize::MeanStd { mean: vec![0.5], std: vec![0.25] }
        );
        assert_eq!(
            parse_normalize("0.1,0.2,0.3,1,2,3").unwrap(),
            Normalize::MeanStd { mean: vec![0.1, 0.2, 0.3], std: vec![1.0, 2.0, 3.0] }
        );
        assert!(parse_normalize("0.5").unwrap_err().contains("as many means as stds"));
        assert!(parse_normalize("0.5,0").unwrap_err().contains("std must be"));
        assert!(parse_normalize("mnist").unwrap_err().contains("expected auto, none"));
    }
}
