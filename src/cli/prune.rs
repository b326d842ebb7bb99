//! `prunelab prune`: prune one hidden layer of an existing model (TorchScript or safetensors) and
//! write the result as TorchScript (`.pt`, for `torch.jit.load`) and/or safetensors.
//!
//! Order of work, so that bad input costs nothing and nothing is written on failure: check the
//! options → read the data → read the model (proving prunelab's forward equals a TorchScript
//! module's) → select the mask → prune (and reweight) → compact and check → encode every output and
//! check the TorchScript ones by loading them back → write all outputs (temporary files, renamed
//! only once all are written) → report.
use super::eval::{
    check_fits, describe_check, load_data, load_model, max_abs_diff, sparsity, ModelArgs,
};
use super::Status;
use crate::model::io::encode_mlp;
use crate::model::load::{LoadedModel, FORWARD_TOLERANCE};
use crate::model::mlp::Mlp;
use crate::model::torchscript;
use crate::prune::dpp::kernel::KernelKind;
use crate::prune::mlp::{budgets_from_fractions, calibrate, compact, Calibration, LayerPruner};
use crate::prune::mlp::{NodeRemoval, Options};
use crate::prune::{Mask, Method, RandomVariant};
use crate::seed;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Prune one hidden layer of a model and save it for PyTorch.
///
/// --keep X is the kept fraction p of the layer's incoming weights. Edge methods keep ⌈p·D⌉ of
/// each unit's D inputs; node methods keep the number of units that keeps the same number of
/// parameters in this layer and the next (the paper's matched budgets). Removed units leave
/// nothing behind: their incoming weights, bias and outgoing weights are zeroed, and their
/// constant output act(bias) is folded into the next layer's bias.
///
/// DPP methods and --reweight need calibration data (--calib: the training set, or a sample of
/// it): DPP kernels are built over the layer's inputs on those samples; DIVNET reweighting (node
/// methods) regresses the removed units' activations on the kept units' and folds the
/// coefficients into the next layer; least-squares re-fitting (edge methods) re-fits each unit's
/// kept weights to its full pre-activation.
///
/// OUT ending in .pt is TorchScript: an nn.Sequential of Linear layers whose parameters are
/// named 0.weight, 0.bias, 2.weight, …; OUT ending in .safetensors is a state dict with the input
/// model's parameter names.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab prune --model mlp.pt --method importance_node --keep 0.5 --out pruned.pt
  prunelab prune --model mlp.pt --method dpp_node --keep 0.5 --reweight \\
                 --calib /usr/share/datasets/fashion-mnist --calib-samples 10000 \\
                 --data /usr/share/datasets/fashion-mnist --compact --out small.pt --out small.safetensors
  prunelab prune --model fc.safetensors --activation relu --layer fc2 --method random_edge --keep 0.3 --out sparse.safetensors")]
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
    /// The hidden layer to prune: its name in the file (fc1, 0, layers.0) or wN (the N-th linear
    /// layer) [default: the first].
    #[arg(long, value_name = "NAME")]
    layer: Option<String>,
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
    #[arg(long, required = true, value_name = "OUT")]
    out: Vec<PathBuf>,
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

/// Output formats, by extension.
#[derive(Clone, Copy, Debug, PartialEq)]
enum OutFormat {
    TorchScript,
    Safetensors,
}

pub fn run(args: Args) -> Result<Status> {
    // 1. Options that need no file.
    let outputs = check_outputs(&args.out)?;
    let method = args.method;
    if args.compact && !method.is_node() {
        bail!(
            "--compact removes whole units, but {} keeps every unit (with fewer inputs each), so there is nothing to remove; \
             use a node method (random_node, importance_node, dpp_node) or save the sparse weights without --compact",
            method.name()
        );
    }
    let dpp = matches!(method, Method::DppNode | Method::DppEdge);
    if (dpp || args.reweight) && args.calib.is_none() {
        let why = if dpp {
            format!("{} builds its DPP kernel from the layer's inputs", method.name())
        } else {
            "--reweight regresses on the layer's activations".to_string()
        };
        bail!("{why}: give calibration data with --calib DATA (a dataset folder, e.g. the training set the model learnt from)");
    }
    for (name, v) in [
        ("--node-beta", args.node_beta),
        ("--edge-beta", args.edge_beta),
        ("--epsilon", args.epsilon),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} must be a finite number > 0, got {v}");
        }
    }

    // 2. Data, then the model (its forward compared on real inputs when there are any).
    let calib = match &args.calib {
        Some(dir) => Some(load_data(dir, &args.common.normalize, args.calib_samples, Some(0))?),
        None => None,
    };
    if let (Some(c), Some(dir)) = (&calib, &args.calib) {
        if c.train_x.size()[0] == 0 {
            bail!(
                "the calibration set is empty: {} has no training samples (or --calib-samples 0)",
                dir.display()
            );
        }
    }
    let test = match &args.data {
        Some(dir) => Some(load_data(dir, &args.common.normalize, Some(0), None)?),
        None => None,
    };
    let check_x = calib.as_ref().map(|c| &c.train_x).or(test.as_ref().map(|t| &t.test_x));
    let model = load_model(&args.model, &args.common, check_x)?;
    for (data, dir) in [(&calib, &args.calib), (&test, &args.data)] {
        if let (Some(data), Some(dir)) = (data, dir) {
            check_fits(&model, data, dir)?;
        }
    }
    let mlp = &model.mlp;
    let layer = match &args.layer {
        Some(name) => model.layer_index(name)?,
        None => 0,
    };
    if layer + 1 >= mlp.weights.len() {
        bail!(
            "layer `{}` of {} is its output layer, which has no hidden units to prune; choose a hidden layer ({})",
            model.layers[layer].name,
            args.model.display(),
            hidden_names(&model)
        );
    }
    let sizes = mlp.sizes();
    let (inputs, hidden, fan_out) = (sizes[layer], sizes[layer + 1], sizes[layer + 2]);
    let budget = budgets_from_fractions(&[args.keep], inputs, hidden, fan_out)?[0];

    // 3. Select, prune, reweight.
    let calibration = match &calib {
        Some(c) => calibrate(mlp, layer, &c.train_x, !args.bias_free_divnet)?,
        None => Calibration {
            inputs: Tensor::zeros([inputs as i64, inputs as i64], (Kind::Double, Device::Cpu)),
            activations: Tensor::zeros([hidden as i64, hidden as i64], (Kind::Double, Device::Cpu)),
            samples: 0,
        },
    };
    let options = Options {
        random: RandomVariant::Exact,
        node_kernel: KernelKind::Rbf { beta: args.node_beta, epsilon: args.epsilon },
        edge_kernel: KernelKind::Rbf { beta: args.edge_beta, epsilon: args.epsilon },
        node_removal: NodeRemoval::FoldBias,
        include_bias: !args.bias_free_divnet,
    };
    let mut pruner = LayerPruner::new(mlp, layer, &calibration, options)?;
    let layer_name = &model.layers[layer].name;
    let mut rng = seed::rng(args.seed, &format!("masks/{layer_name}/{}", method.name()));
    let mask = pruner
        .masks(method, std::slice::from_ref(&budget), 1, &mut rng)
        .with_context(|| format!("{} selection in layer `{layer_name}`", method.name()))?
        .remove(0)
        .remove(0);
    let pruned = pruner.pruned(&mask, args.reweight)?;

    // 4. Compact, checking that nothing changed.
    let probe = match check_x {
        Some(x) => x.narrow(0, 0, x.size()[0].min(1024)),
        None => Tensor::randn([256, inputs as i64], (Kind::Float, Device::Cpu)),
    };
    let tolerance = |net: &Mlp| {
        let _guard = tch::no_grad_guard();
        FORWARD_TOLERANCE * net.forward(&probe).abs().max().double_value(&[]).max(1.0)
    };
    let (final_net, compact_diff) = match (&mask, args.compact) {
        (Mask::Nodes(kept), true) => {
            let small = compact(&pruned, layer, kept)?;
            let diff = max_abs_diff(&small, &pruned, &probe);
            if diff.is_nan() || diff > tolerance(&pruned) {
                bail!("the compacted network's outputs differ from the masked network's by {diff:.3e}; nothing was written");
            }
            (small, Some(diff))
        }
        _ => (pruned, None),
    };

    // 5. Encode every output; TorchScript is loaded back and compared.
    let names: Vec<(String, Option<String>)> =
        model.layers.iter().map(|l| (l.weight.clone(), l.bias.clone())).collect();
    let metadata = [
        ("prunelab.pruned_from", file_name(&args.model)),
        ("prunelab.layer", layer_name.clone()),
        ("prunelab.method", method.name().to_string()),
        ("prunelab.keep", args.keep.to_string()),
        ("prunelab.reweight", args.reweight.to_string()),
        ("prunelab.compact", args.compact.to_string()),
        ("prunelab.seed", args.seed.to_string()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let mut encoded: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut script_diff = None;
    for (path, format) in &outputs {
        let bytes = match format {
            OutFormat::Safetensors => encode_mlp(&final_net, &names, &metadata)
                .with_context(|| format!("encoding {}", path.display()))?,
            OutFormat::TorchScript => {
                let bytes = torchscript::encode(&final_net)
                    .with_context(|| format!("encoding {}", path.display()))?;
                let module = tch::CModule::load_data(&mut bytes.as_slice()).map_err(|e| {
                    anyhow::anyhow!(
                        "the TorchScript written for {} does not load back: {e}",
                        path.display()
                    )
                })?;
                let _guard = tch::no_grad_guard();
                let diff = (module.forward_ts(&[&probe])? - final_net.forward(&probe))
                    .abs()
                    .max()
                    .double_value(&[]);
                if diff.is_nan() || diff > tolerance(&final_net) {
                    bail!("the TorchScript written for {} computes outputs {diff:.3e} away from prunelab's; nothing was written", path.display());
                }
                script_diff = Some(diff);
                bytes
            }
        };
        encoded.push((path.clone(), bytes));
    }

    // 6. Test errors, then write everything at once.
    let errors = test.as_ref().map(|t| {
        (
            mlp.error_rate(&t.test_x, &t.test_y),
            final_net.error_rate(&t.test_x, &t.test_y),
            t.test_x.size()[0],
        )
    });
    write_all(&encoded)?;

    // 7. Report.
    println!("model       {}: {}", args.model.display(), model.describe());
    if let Some(check) = &model.forward_check {
        let what = if calib.is_some() { "calibration" } else { "test" };
        println!("forward     {}", describe_check(check, what));
    }
    let kept = match &mask {
        Mask::Nodes(kept) => format!("{} of {hidden} units kept", kept.len()),
        Mask::Edges(rows) => {
            format!("{} of {inputs} inputs kept per unit", rows.first().map_or(0, |r| r.len()))
        }
    };
    println!(
        "pruned      layer `{layer_name}` (w{}: {hidden} units × {inputs} inputs) by {} at keep {}: {kept}{}",
        layer + 1,
        method.name(),
        args.keep,
        match (args.reweight, method.is_node()) {
            (false, _) => "",
            (true, true) => ", DIVNET reweighting",
            (true, false) => ", least-squares re-fit",
        }
    );
    if let (Some(c), Some(dir)) = (&calib, &args.calib) {
        println!("calibrated  on {} training samples of {}", c.train_x.size()[0], dir.display());
    }
    print_layers(&model, mlp, &final_net);
    if let (Some((before, after, n)), Some(dir)) = (errors, &args.data) {
        println!(
            "test error  {:.2}% → {:.2}% ({n} test samples of {})",
            100.0 * before,
            100.0 * after,
            dir.display()
        );
    }
    if let Some(diff) = compact_diff {
        println!(
            "compacted   outputs equal the masked network's: max |Δ| {diff:.2e} on {} inputs",
            probe.size()[0]
        );
    }
    for (path, format) in &outputs {
        match (format, script_diff) {
            (OutFormat::TorchScript, Some(diff)) => println!(
                "wrote       {} (TorchScript nn.Sequential; loaded back: max |Δ| {diff:.2e})",
                path.display()
            ),
            _ => println!("wrote       {} (safetensors state dict)", path.display()),
        }
    }
    Ok(Status::Ok)
}

/// Layer-by-layer parameter counts before and after.
fn print_layers(model: &LoadedModel, before: &Mlp, after: &Mlp) {
    let width = model.layers.iter().map(|l| l.name.len()).max().unwrap_or(0).max(5);
    println!(
        "{:<width$}  {:>9} {:>10} {:>10}  →  {:>9} {:>10} {:>10} {:>8}",
        "layer", "shape", "params", "non-zero", "shape", "params", "non-zero", "sparsity"
    );
    let count = |net: &Mlp, l: usize| {
        let (w, b) = (&net.weights[l], &net.biases[l]);
        let nz = |t: &Tensor| t.count_nonzero(None::<i64>).int64_value(&[]) as usize;
        (format!("{}×{}", w.size()[0], w.size()[1]), w.numel() + b.numel(), nz(w) + nz(b))
    };
    let mut totals = [0usize; 4];
    for (l, names) in model.layers.iter().enumerate() {
        let (s0, p0, n0) = count(before, l);
        let (s1, p1, n1) = count(after, l);
        for (t, v) in totals.iter_mut().zip([p0, n0, p1, n1]) {
            *t += v;
        }
        println!(
            "{:<width$}  {s0:>9} {p0:>10} {n0:>10}  →  {s1:>9} {p1:>10} {n1:>10} {:>7.1}%",
            if names.name.is_empty() { "(top)" } else { &names.name },
            sparsity(p1, n1)
        );
    }
    println!(
        "{:<width$}  {:>9} {:>10} {:>10}  →  {:>9} {:>10} {:>10} {:>7.1}%",
        "total",
        "",
        totals[0],
        totals[1],
        "",
        totals[2],
        totals[3],
        sparsity(totals[2], totals[3])
    );
}

fn hidden_names(model: &LoadedModel) -> String {
    let hidden = &model.layers[..model.layers.len() - 1];
    if hidden.is_empty() {
        return "it has none: a single layer".into();
    }
    hidden.iter().map(|l| format!("`{}`", l.name)).collect::<Vec<_>>().join(", ")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The outputs and their formats; refuses unknown extensions and duplicates.
fn check_outputs(outs: &[PathBuf]) -> Result<Vec<(PathBuf, OutFormat)>> {
    let mut checked: Vec<(PathBuf, OutFormat)> = Vec::new();
    for out in outs {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        let format = match ext.as_str() {
            "pt" => OutFormat::TorchScript,
            "safetensors" => OutFormat::Safetensors,
            _ => bail!(
                "--out {}: unknown model format `{ext}` (use .pt for TorchScript or .safetensors)",
                out.display()
            ),
        };
        if checked.iter().any(|(p, _)| p == out) {
            bail!("--out {} is given twice", out.display());
        }
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!("--out {}: the folder {} does not exist", out.display(), parent.display());
        }
        checked.push((out.clone(), format));
    }
    Ok(checked)
}

/// Writes every file or none: each goes to a temporary sibling first, and the temporaries are
/// renamed only once all of them are written.
fn write_all(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (path, bytes) in files {
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
            staged.push(tmp.clone());
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("writing {}", path.display()))?;
            file.write_all(bytes)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        for ((path, _), tmp) in files.iter().zip(&staged) {
            std::fs::rename(tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for tmp in &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

/// Parses `--method`.
fn parse_method(text: &str) -> Result<Method, String> {
    Method::ALL.into_iter().find(|m| m.name() == text.trim()).ok_or_else(|| {
        format!("unknown method `{text}`: use {}", Method::ALL.map(|m| m.name()).join(", "))
    })
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

    #[test]
    fn outputs_are_checked_before_any_work() {
        assert!(check_outputs(&[PathBuf::from("a.pt"), PathBuf::from("a.safetensors")]).is_ok());
        let err = check_outputs(&[PathBuf::from("a.onnx")]).unwrap_err().to_string();
        assert!(err.contains("unknown model format `onnx`"), "{err}");
        let err = check_outputs(&[PathBuf::from("a.pt"), PathBuf::from("a.pt")]).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
        let err = check_outputs(&[PathBuf::from("/nonexistent-dir/a.pt")]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
