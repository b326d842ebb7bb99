//! `prunelab prune`: prune hidden layers (one, several or all) of an existing model (TorchScript
//! or safetensors), optionally fine-tune it, and write the result as TorchScript (`.pt`, for
//! `torch.jit.load`) and/or safetensors. The work is the library's model-file task; this file
//! parses the arguments and prints the report.
use super::{describe_check, ModelArgs, Status};
use crate::experiment::task::model_file::{
    self, FineTuned, LayerCounts, OutFormat, PruneOutcome, PruneRequest,
};
use crate::prune::dpp::kernel::KernelKind;
use crate::prune::whole::Allocation;
use crate::prune::{Mask, Method};
use crate::train::minibatch::Sgd;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Prune hidden layers of a model, optionally fine-tune it, and save it for PyTorch.
///
/// --keep X is the kept fraction p of the layer's incoming weights. Edge methods keep ⌈p·D⌉ of
/// each unit's D inputs; node methods keep the number of units that keeps the same number of
/// parameters in this layer and the next (the paper's matched budgets). Removed units leave
/// nothing behind: their incoming weights, bias and outgoing weights are zeroed, and their
/// constant output act(bias) is folded into the next layer's bias.
///
/// --layer all (or a list) prunes several hidden layers in order, each calibrated on the pruned
/// layers before it; --keep is then one kept fraction of all their incoming weights, shared out
/// uniformly (--allocation uniform) or by a global ranking of importance scores (scores).
/// --finetune-epochs N then trains the pruned model by SGD on the training split of --data with
/// every removed weight held at exactly zero.
///
/// DPP methods and --reweight need calibration data (--calib: the training set, or a sample of
/// it): DPP kernels are built over the layer's inputs on those samples; DIVNET reweighting (node
/// methods) regresses the removed units' activations on the kept units' and folds the
/// coefficients into the next layer; least-squares re-fitting (edge methods) re-fits each unit's
/// kept weights to its full pre-activation.
///
/// OUT ending in .pt is TorchScript: an nn.Sequential of Linear layers whose parameters are
/// named 0.weight, 0.bias, 2.weight, …; OUT ending in .safetensors is a state dict with the input
/// model's parameter names. --masks writes the pruning masks alone (<weight>_mask, <bias>_mask:
/// f32, 1 kept, 0 removed, in the input model's shapes) for torch.nn.utils.prune.custom_from_mask;
/// --torch-prune-layout writes the pruned state dict in torch.nn.utils.prune's layout
/// (<weight>_orig and <weight>_mask for the masked tensors, the others as they are), which a
/// module pruned with custom_from_mask loads and prunelab reads back (weight = orig · mask).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab prune --model mlp.pt --method importance_node --keep 0.5 --out pruned.pt
  prunelab prune --model mlp.pt --method dpp_node --keep 0.5 --reweight \\
                 --calib /usr/share/datasets/fashion-mnist --calib-samples 10000 \\
                 --data /usr/share/datasets/fashion-mnist --compact --out small.pt --out small.safetensors
  prunelab prune --model mlp.pt --method dpp_node --keep 0.5 --layer all \\
                 --calib /usr/share/datasets/fashion-mnist --data /usr/share/datasets/fashion-mnist \\
                 --finetune-epochs 1 --out pruned.pt --masks masks.safetensors
  prunelab prune --model fc.safetensors --activation relu --layer fc2 --method random_edge --keep 0.3 --out sparse.safetensors
  prunelab prune --model mlp.pt --method importance_node --keep 0.5 \\
                 --masks masks.safetensors --torch-prune-layout pruned-state.safetensors")]
pub struct Args {
    /// The model: TorchScript (.pt) or safetensors.
    #[arg(long, value_name = "IN")]
    model: PathBuf,
    /// random_node, importance_node, dpp_node, random_edge, importance_edge or dpp_edge.
    #[arg(long, value_name = "M", value_parser = parse_method)]
    method: Method,
    /// Kept fraction p in (0, 1] of the layer's incoming weights.
    #[arg(long, value_name = "X", value_parser = parse_keep, allow_hyphen_values = true)]
    keep: f64,
    /// The hidden layers to prune: names in the file (fc1, 0, layers.0) or wN (the N-th linear
    /// layer), comma-separated or repeated, or `all` (every hidden layer) [default: the first].
    /// Several layers are pruned in order, each calibrated on the pruned layers before it.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    layer: Vec<String>,
    /// How --keep is shared out over several layers: uniform (every layer at --keep) or scores
    /// (a global ranking of importance scores; importance_node and importance_edge only).
    #[arg(long, value_name = "HOW", default_value = "uniform", value_parser = parse_allocation)]
    allocation: Allocation,
    /// Fine-tune the pruned model for N epochs of SGD on the training split of --data, the
    /// removed weights held at exactly zero.
    #[arg(long, value_name = "N", requires = "data")]
    finetune_epochs: Option<usize>,
    /// Fine-tuning learning rate.
    #[arg(long, value_name = "LR", default_value_t = 0.01, requires = "finetune_epochs")]
    finetune_lr: f64,
    /// Fine-tuning momentum.
    #[arg(long, value_name = "M", default_value_t = 0.9, requires = "finetune_epochs")]
    finetune_momentum: f64,
    /// Fine-tuning minibatch size.
    #[arg(long, value_name = "B", default_value_t = 100, requires = "finetune_epochs")]
    finetune_batch_size: usize,
    /// Reweight after pruning: DIVNET for node methods, least-squares re-fit for edge methods.
    #[arg(long)]
    reweight: bool,
    /// Dataset folder whose training split calibrates DPP kernels and reweighting.
    #[arg(long, value_name = "DATA")]
    calib: Option<PathBuf>,
    /// Calibration samples (the first N of the training split) [default: all].
    #[arg(long, value_name = "N", requires = "calib")]
    calib_samples: Option<usize>,
    /// Dataset folder whose test split gives the test error before and after.
    #[arg(long, value_name = "DATA")]
    data: Option<PathBuf>,
    /// Physically remove the pruned units (node methods): smaller matrices, faster inference.
    #[arg(long)]
    compact: bool,
    /// Output file, .pt (TorchScript) or .safetensors (repeatable).
    #[arg(long, value_name = "OUT", required_unless_present_any = ["masks", "torch_prune_layout"])]
    out: Vec<PathBuf>,
    /// Also write the masks alone (.safetensors): <weight>_mask and <bias>_mask, 1 kept, 0 removed.
    #[arg(long, value_name = "OUT.safetensors")]
    masks: Option<PathBuf>,
    /// Also write the pruned state dict in torch.nn.utils.prune's layout (.safetensors):
    /// <weight>_orig and <weight>_mask for masked tensors (not with --compact).
    #[arg(long, value_name = "OUT.safetensors")]
    torch_prune_layout: Option<PathBuf>,
    /// Seed of the random and DPP selections.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// β of the DPP node kernel exp(−β‖a_i − a_j‖²) + εI (distances summed over the calibration
    /// samples; the reference's 10/60000 suits 60,000 samples).
    #[arg(long, value_name = "BETA", default_value_t = 10.0 / 60000.0)]
    node_beta: f64,
    /// β of the DPP edge kernel.
    #[arg(long, value_name = "BETA", default_value_t = 0.5)]
    edge_beta: f64,
    /// ε of the DPP kernels.
    #[arg(long, value_name = "EPS", default_value_t = 0.01)]
    epsilon: f64,
    /// DIVNET regresses the bias-free activations act(XWᵀ), as the reference does, instead of
    /// the activations the network computes, act(XWᵀ + b).
    #[arg(long)]
    bias_free_divnet: bool,
    #[command(flatten)]
    common: ModelArgs,
}

impl Args {
    fn request(&self) -> Result<PruneRequest> {
        for (name, v) in [
            ("--node-beta", self.node_beta),
            ("--edge-beta", self.edge_beta),
            ("--epsilon", self.epsilon),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{name} must be a finite number > 0, got {v}");
            }
        }
        Ok(PruneRequest {
            model: self.model.clone(),
            method: self.method,
            keep: self.keep,
            layers: self.layer.clone(),
            allocation: self.allocation,
            finetune: self.finetune_epochs.map(|epochs| Sgd {
                lr: self.finetune_lr,
                momentum: self.finetune_momentum,
                batch_size: self.finetune_batch_size,
                epochs,
                shuffle: true,
            }),
            reweight: self.reweight,
            calib: self.calib.clone(),
            calib_samples: self.calib_samples,
            data: self.data.clone(),
            compact: self.compact,
            outputs: self.out.clone(),
            masks: self.masks.clone(),
            torch_prune: self.torch_prune_layout.clone(),
            seed: self.seed,
            node_kernel: KernelKind::Rbf { beta: self.node_beta, epsilon: self.epsilon },
            edge_kernel: KernelKind::Rbf { beta: self.edge_beta, epsilon: self.epsilon },
            bias_free_divnet: self.bias_free_divnet,
            options: self.common.options(),
        })
    }
}

pub fn run(args: Args) -> Result<Status> {
    let outcome = model_file::prune(&args.request()?)?;
    println!("model       {}: {}", args.model.display(), outcome.description);
    if let Some(check) = &outcome.forward_check {
        let what = if args.calib.is_some() { "calibration" } else { "test" };
        println!("forward     {}", describe_check(check, what));
    }
    print_pruned(&args, &outcome);
    if let (Some(n), Some(dir)) = (outcome.calibrated_on, &args.calib) {
        println!("calibrated  on {n} training samples of {}", dir.display());
    }
    print_layers(&outcome.before, &outcome.after);
    if let (Some((before, after, n)), Some(dir)) = (outcome.test_errors, &args.data) {
        let tuned = outcome
            .finetuned
            .as_ref()
            .and_then(|f| f.epochs.last())
            .map_or(String::new(), |e| format!(" → {:.2}% fine-tuned", 100.0 * e.test_error));
        println!(
            "test error  {:.2}% → {:.2}% pruned{tuned} ({n} test samples of {})",
            100.0 * before,
            100.0 * after,
            dir.display()
        );
    }
    if let (Some(done), Some((_, _, n))) = (&outcome.finetuned, outcome.test_errors) {
        print_finetuned(done, n);
    }
    if let Some((diff, probes)) = outcome.compact_check {
        println!(
            "compacted   outputs equal the masked network's: max |Δ| {diff:.2e} on {probes} inputs"
        );
    }
    for (path, format, diff) in &outcome.written {
        match (format, diff) {
            (OutFormat::TorchScript, Some(diff)) => {
                println!(
                    "wrote       {} (TorchScript nn.Sequential; loaded back: max |Δ| {diff:.2e})",
                    path.display()
                )
            }
            (OutFormat::Masks, _) => println!(
                "wrote       {} (masks: <weight>_mask, <bias>_mask; 1 kept, 0 removed)",
                path.display()
            ),
            (OutFormat::TorchPrune, _) => println!(
                "wrote       {} (state dict in torch.nn.utils.prune's layout: _orig and _mask)",
                path.display()
            ),
            _ => println!("wrote       {} (safetensors state dict)", path.display()),
        }
    }
    Ok(Status::Ok)
}

/// `pruned      layer `fc1` (w1: 300 units × 784 inputs) by dpp_node at keep 0.5: 166 of 300 units kept`,
/// one line per layer, then the overall kept fraction when there are several.
fn print_pruned(args: &Args, outcome: &PruneOutcome) {
    let reweighting = match (args.reweight, args.method.is_node()) {
        (false, _) => "",
        (true, true) => ", DIVNET reweighting",
        (true, false) => ", least-squares re-fit",
    };
    for layer in &outcome.layers {
        let (hidden, inputs) = (layer.hidden, layer.inputs);
        let kept = match &layer.mask {
            Mask::Nodes(kept) => format!("{} of {hidden} units kept", kept.len()),
            Mask::Edges(rows) => {
                format!("{} of {inputs} inputs kept per unit", rows.first().map_or(0, |r| r.len()))
            }
        };
        println!(
            "pruned      layer `{}` (w{}: {hidden} units × {inputs} inputs) by {} at keep {}: {kept}{reweighting}; {:.1}% of its weights non-zero",
            layer.name,
            layer.index + 1,
            args.method,
            args.keep,
            100.0 * layer.kept_fraction,
        );
    }
    if outcome.layers.len() > 1 {
        println!(
            "kept        {:.1}% of the pruned layers' weights (allocation {})",
            100.0 * outcome.kept_fraction,
            args.allocation.name()
        );
    }
}

/// The fine-tuning epochs and the test error after them.
fn print_finetuned(done: &FineTuned, test_samples: usize) {
    let sgd = &done.sgd;
    for e in &done.epochs {
        println!(
            "fine-tuned  epoch {}: loss {:.4}, test error {:.2}% ({:.1} s)",
            e.epoch,
            e.train_loss,
            100.0 * e.test_error,
            e.seconds
        );
    }
    println!(
        "fine-tuned  SGD lr {} momentum {} batch {} on the training split; {} removed parameters still exactly 0 ({test_samples} test samples)",
        sgd.lr, sgd.momentum, sgd.batch_size, done.masked_params
    );
}

/// Layer-by-layer parameter counts before and after.
fn print_layers(before: &[LayerCounts], after: &[LayerCounts]) {
    let width = before.iter().map(|l| l.name.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<width$}  {:>9} {:>10} {:>10}  →  {:>9} {:>10} {:>10} {:>8}",
        "layer", "shape", "params", "non-zero", "shape", "params", "non-zero", "sparsity"
    );
    let shape = |l: &LayerCounts| format!("{}×{}", l.shape[0], l.shape[1]);
    for (b, a) in before.iter().zip(after) {
        println!(
            "{:<width$}  {:>9} {:>10} {:>10}  →  {:>9} {:>10} {:>10} {:>7.1}%",
            if b.name.is_empty() { "(top)" } else { &b.name },
            shape(b),
            b.params,
            b.nonzero,
            shape(a),
            a.params,
            a.nonzero,
            100.0 * a.sparsity
        );
    }
    let total = |ls: &[LayerCounts]| -> (usize, usize) {
        (ls.iter().map(|l| l.params).sum(), ls.iter().map(|l| l.nonzero).sum())
    };
    let ((p0, n0), (p1, n1)) = (total(before), total(after));
    println!(
        "{:<width$}  {:>9} {p0:>10} {n0:>10}  →  {:>9} {p1:>10} {n1:>10} {:>7.1}%",
        "total",
        "",
        "",
        100.0 * model_file::sparsity(p1, n1)
    );
}

/// Parses `--method`.
fn parse_method(text: &str) -> Result<Method, String> {
    text.parse().map_err(|e: anyhow::Error| e.to_string())
}

/// Parses `--allocation`.
fn parse_allocation(text: &str) -> Result<Allocation, String> {
    text.parse().map_err(|e: anyhow::Error| e.to_string())
}

/// Parses `--keep`: a fraction in (0, 1].
fn parse_keep(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(p),
        _ => Err(format!(
            "`{text}` is not a kept fraction in (0, 1] (e.g. 0.5 keeps half of the layer's incoming weights)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(name = "prune")]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn help_shows_examples_and_bad_values_are_refused_by_the_parser() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Examples:") && help.contains("--method dpp_node"), "{help}");
        let base = ["prune", "--model", "m.pt", "--method", "dpp_node", "--out", "o.pt"];
        let with = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.args);
        assert_eq!(with(&["--keep", "0.25"]).unwrap().keep, 0.25);
        for bad in ["0", "1.5", "-0.1", "half", "NaN"] {
            let err = with(&["--keep", bad]).err().unwrap().to_string();
            assert!(err.contains("not a kept fraction in (0, 1]"), "{bad}: {err}");
        }
        let err = Cli::try_parse_from([
            "prune",
            "--model",
            "m.pt",
            "--method",
            "magnitude",
            "--keep",
            "0.5",
            "--out",
            "o.pt",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("unknown method `magnitude`: use random_node"), "{err}");
        let err = with(&["--keep", "0.5", "--calib-samples", "10"]).err().unwrap().to_string();
        assert!(err.contains("--calib"), "{err}");
    }
}
