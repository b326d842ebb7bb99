//! The MLP task (paper §5.2): train a classifier on a dataset folder by minibatch SGD, record every
//! epoch, then prune one hidden layer by every configured method, kept fraction and reweighting
//! choice, recording the pruned networks' test errors.
use super::{base_row, progress_bar, Context};
use crate::config::Prune;
use crate::data::images;
use crate::model::{io::save_mlp, mlp::Mlp};
use crate::plan::{self, MlpRun, Run};
use crate::prune::mlp::{calibrate, LayerPruner, Options};
use crate::record::ResultRow;
use crate::seed;
use crate::train::minibatch::{self, Sgd};
use anyhow::{ensure, Context as _, Result};

/// Trains, records and prunes one MLP run.
pub fn execute(run: &Run, spec: &MlpRun, ctx: &Context) -> Result<Vec<ResultRow>> {
    let started = std::time::Instant::now();
    let data = images::load(
        &spec.data_dir,
        &spec.normalize,
        spec.train_samples,
        spec.test_samples,
        ctx.device,
    )?;
    let mut sizes = vec![data.dim];
    sizes.extend(&spec.hidden);
    sizes.push(data.classes);
    let mut mlp =
        Mlp::xavier(&sizes, spec.activation, &mut seed::rng(run.seed, "init"), ctx.device)?;
    let sgd = Sgd {
        lr: spec.lr,
        momentum: spec.momentum,
        batch_size: spec.batch_size,
        epochs: spec.epochs,
        shuffle: spec.shuffle,
    };
    let bar = progress_bar(ctx.progress, spec.epochs as u64, &run.id);
    let mut rows = Vec::new();
    let total_params = mlp.params_total() as u64;
    let reports = minibatch::train(
        &mut mlp,
        (&data.train_x, &data.train_y),
        (&data.test_x, &data.test_y),
        &sgd,
        &mut seed::rng(run.seed, "shuffle"),
        |report| {
            bar.inc(1);
            bar.set_message(format!(
                "epoch {} loss {:.4} test error {:.4}",
                report.epoch, report.train_loss, report.test_error
            ));
            tracing::info!(
                epoch = report.epoch,
                train_loss = report.train_loss,
                test_error = report.test_error,
                seconds = report.seconds,
                "epoch"
            );
            rows.push(ResultRow {
                method: "training".into(),
                epoch: Some(report.epoch as u64),
                train_loss: Some(report.train_loss),
                test_error: Some(report.test_error),
                keep_fraction: Some(1.0),
                params_total: Some(total_params),
                wall_ms: Some(report.seconds * 1e3),
                ..base_row(ctx.experiment, run, ctx.device)
            });
        },
        |_, _| {},
    );
    bar.finish_and_clear();
    let reports = reports?;
    let models = ctx.dir.join("models").join(&run.id);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    save_mlp(&mlp, &models.join("mlp.safetensors"))?;
    let last_epoch = reports.last().map(|r| r.epoch as u64);
    rows.push(ResultRow {
        method: "none".into(),
        epoch: last_epoch,
        keep_fraction: Some(1.0),
        achieved_fraction: Some(1.0),
        params_total: Some(total_params),
        params_nonzero: Some(mlp.params_nonzero() as u64),
        test_error: Some(mlp.error_rate(&data.test_x, &data.test_y)),
        wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        ..base_row(ctx.experiment, run, ctx.device)
    });
    if let Some(prune) = &run.prune {
        prune_layer(run, prune, &mlp, &data, last_epoch, ctx, &mut rows)?;
    }
    Ok(rows)
}

/// Prunes the configured layer of the trained `mlp` and appends a row per mask sample.
fn prune_layer(
    run: &Run,
    prune: &Prune,
    mlp: &Mlp,
    data: &images::Dataset,
    epoch: Option<u64>,
    ctx: &Context,
    rows: &mut Vec<ResultRow>,
) -> Result<()> {
    let layer = prune.layer_index()?;
    let sizes = mlp.sizes();
    let (inputs, hidden, fan_out) = (sizes[layer], sizes[layer + 1], sizes[layer + 2]);
    let budgets = plan::budgets(prune, inputs, hidden, fan_out)
        .with_context(|| format!("pruning layer {}", prune.layer))?;
    let n_train = data.train_x.size()[0] as usize;
    let samples = prune.calibration_samples.map_or(n_train, |n| (n as usize).min(n_train));
    ensure!(samples > 0, "the calibration set is empty: the training split has no samples");
    let calibration =
        calibrate(mlp, layer, &data.train_x.narrow(0, 0, samples as i64), prune.include_bias)?;
    tracing::info!(layer = %prune.layer, samples, "calibrated");
    let options = Options {
        random: prune.random,
        node_kernel: prune.node_kernel,
        edge_kernel: prune.edge_kernel,
        node_removal: prune.node_removal,
        include_bias: prune.include_bias,
    };
    let mut pruner = LayerPruner::new(mlp, layer, &calibration, options)?;
    // Parameters the budget counts (REFERENCE.md §4): the pruned layer's and the next layer's weights.
    let scope_total = (inputs * hidden + hidden * fan_out) as f64;
    let scope_nonzero = |net: &Mlp| -> f64 {
        [&net.weights[layer], &net.weights[layer + 1]]
            .iter()
            .map(|w| w.count_nonzero(None::<i64>).int64_value(&[]) as f64)
            .sum()
    };
    let bar = progress_bar(ctx.progress, prune.methods.len() as u64, &run.id);
    for &method in &prune.methods {
        let started = std::time::Instant::now();
        let count = if method.is_random() { prune.masks as usize } else { 1 };
        let mut rng = seed::rng(run.seed, &format!("masks/{}/{}", prune.layer, method.name()));
        bar.set_message(format!("{} masks", method.name()));
        let masks = pruner
            .masks(method, &budgets, count, &mut rng)
            .with_context(|| format!("{} masks", method.name()))?;
        let selection_ms =
            started.elapsed().as_secs_f64() * 1e3 / (count * budgets.len()).max(1) as f64;
        for (budget, budget_masks) in budgets.iter().zip(&masks) {
            for reweight in prune.reweight.values() {
                for (sample, mask) in budget_masks.iter().enumerate() {
                    let t = std::time::Instant::now();
                    let net = pruner.pruned(mask, reweight)?;
                    let test_error = net.error_rate(&data.test_x, &data.test_y);
                    let (keep_nodes, keep_edges) = if method.is_node() {
                        (budget.nodes, inputs)
                    } else {
                        (hidden, budget.edges)
                    };
                    rows.push(ResultRow {
                        layer: Some(prune.layer.clone()),
                        method: method.name().into(),
                        reweight: Some(reweight),
                        keep_nodes: Some(keep_nodes as u64),
                        keep_edges: Some(keep_edges as u64),
                        keep_fraction: Some(budget.fraction),
                        achieved_fraction: Some(scope_nonzero(&net) / scope_total),
                        params_total: Some(net.params_total() as u64),
                        params_nonzero: Some(net.params_nonzero() as u64),
                        mask_sample: Some(sample as u64),
                        test_error: Some(test_error),
                        epoch,
                        wall_ms: Some(selection_ms + t.elapsed().as_secs_f64() * 1e3),
                        ..base_row(ctx.experiment, run, ctx.device)
                    });
                }
            }
        }
        bar.inc(1);
        tracing::info!(method = method.name(), seconds = started.elapsed().as_secs_f64(), "pruned");
    }
    bar.finish_and_clear();
    Ok(())
}
