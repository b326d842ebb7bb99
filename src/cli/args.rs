//! Arguments and report lines that several subcommands share.
use crate::data::images::{NamedNormalize, Normalize};
use crate::experiment::task::model_file::ModelOptions;
use crate::model::load::{self, ForwardCheck};
use crate::model::mlp::Activation;

/// Options every command that reads a model and data shares.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// The activation between the layers, when the file does not say (a state dict without
    /// prunelab's metadata); for TorchScript, the only one tried against the module's forward.
    #[arg(long, value_name = "sigmoid|relu|tanh|gelu|silu|leaky_relu", value_parser = parse_activation)]
    pub activation: Option<Activation>,
    /// Input preprocessing after x/255: `auto` (the paper's: MNIST-format 0.1307,0.3081; CIFAR-10
    /// 0.5,0.5 per channel), `none`, `MEAN,STD`, or per channel `M1,M2,M3,S1,S2,S3`.
    #[arg(long, value_name = "MEAN,STD|none", default_value = "auto", value_parser = parse_normalize)]
    pub normalize: Normalize,
}

impl ModelArgs {
    /// The library's options.
    pub fn options(&self) -> ModelOptions {
        ModelOptions { activation: self.activation, normalize: self.normalize.clone() }
    }
}

/// `prunelab's forward matches the module's: max |Δ| 5.9e-8 on 512 test inputs (tolerance 1.0e-4)`.
pub fn describe_check(check: &ForwardCheck, what: &str) -> String {
    let inputs = if check.gaussian_inputs { "Gaussian".to_string() } else { what.to_string() };
    format!(
        "prunelab's forward matches the TorchScript module's: max |Δ| {:.2e} on {} {inputs} inputs (tolerance {:.1e})",
        check.max_abs_diff, check.samples, check.tolerance
    )
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
