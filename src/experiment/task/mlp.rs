//! The MLP task (paper §5.2): train a classifier on a dataset folder by minibatch SGD, record every
//! epoch, then prune one hidden layer by every configured method, kept fraction and reweighting
//! choice with Gram matrices of the training set, recording the pruned networks' test errors; or
//! (`prune.layers`) several layers in order under one budget, optionally fine-tuned.
use super::model_file;
use super::{base_row, progress_bar, pruned_row, unpruned_row, Context, Params};
use crate::data::images::{self, Dataset};
use crate::experiment::masks_file::{self, MaskRecord};
use crate::experiment::names;
use crate::experiment::plan::{LayerPrune, MlpRun, Run};
use crate::experiment::record::{ResultRow, RowKind};
use crate::model::{io::save_mlp, mlp::Mlp};
use crate::prune::budget::{self, BudgetSpec};
use crate::prune::layer::{Layer, LayerPruner};
use crate::prune::stats::LayerStats;
use crate::prune::sweep::{self, Batch, Streams};
use crate::prune::whole::{self, Pruned, WholeSpec};
use crate::prune::{Method, ReweightVariant};
use crate::seed;
use crate::train::minibatch::{self, Sgd};
use anyhow::{bail, ensure, Context as _, Result};

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
    let base = base_row(ctx.experiment, run, ctx.device);
    let (mlp, mut rows) = train(run, spec, &data, &base, ctx)?;
    let models = ctx.dir.join(names::MODELS).join(&run.id);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    save_mlp(&mlp, &models.join("mlp.safetensors"))?;
    // The same network as TorchScript, for `prunelab prune` and `torch.jit.load`.
    crate::files::write_atomic(&models.join("mlp.pt"), &crate::model::torchscript::encode(&mlp)?)?;
    let base = ResultRow { epoch: rows.last().and_then(|r| r.epoch), ..base };
    let params =
        Params { total: mlp.params_total(), nonzero: mlp.params_nonzero(), achieved_fraction: 1.0 };
    rows.push(ResultRow {
        test_error: Some(mlp.error_rate(&data.test_x, &data.test_y)),
        wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        ..unpruned_row(&base, RowKind::Unpruned, None, params)
    });
    match &spec.prune {
        Some(prune) if prune.whole.is_some() => {
            prune_whole(run, prune, &mlp, &data, &base, ctx, &mut rows)?
        }
        Some(prune) => prune_layer(run, prune, &mlp, &data, &base, ctx, &mut rows)?,
        None => {}
    }
    Ok(rows)
}

/// The trained network and a `training` row per epoch.
fn train(
    run: &Run,
    spec: &MlpRun,
    data: &Dataset,
    base: &ResultRow,
    ctx: &Context,
) -> Result<(Mlp, Vec<ResultRow>)> {
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
    let bar = progress_bar(ctx.progress, spec.epochs as u64, "epochs", &ctx.label);
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
                "loss {:.3}, test error {:.2}%",
                report.train_loss,
                100.0 * report.test_error
            ));
            tracing::info!(
                epoch = report.epoch,
                train_loss = report.train_loss,
                test_error = report.test_error,
                seconds = report.seconds,
                "epoch"
            );
            rows.push(ResultRow {
                method: RowKind::Training,
                epoch: Some(report.epoch as u64),
                train_loss: Some(report.train_loss),
                test_error: Some(report.test_error),
                keep_fraction: Some(1.0),
                params_total: Some(total_params),
                wall_ms: Some(report.seconds * 1e3),
                ..base.clone()
            });
        },
        |_, _| {},
    );
    bar.finish_and_clear();
    reports?;
    Ok((mlp, rows))
}

/// Prunes the configured layer of the trained `mlp` and appends a row per mask sample.
fn prune_layer(
    run: &Run,
    prune: &LayerPrune,
    mlp: &Mlp,
    data: &Dataset,
    base: &ResultRow,
    ctx: &Context,
    rows: &mut Vec<ResultRow>,
) -> Result<()> {
    let (index, name) = (prune.layer.index, prune.layer.name());
    let layer = Layer::of_mlp(mlp, index)?;
    let budgets = budget::resolve(&prune.sweep.budget, layer.shape())
        .with_context(|| format!("pruning layer {name}"))?;
    let n_train = data.train_x.size()[0] as usize;
    let samples = prune.calibration_samples.map_or(n_train, |n| n.min(n_train));
    ensure!(samples > 0, "the calibration set is empty: the training split has no samples");
    let as_coded = prune.sweep.options.reweight_variant == ReweightVariant::AsCoded;
    let x = data.train_x.narrow(0, 0, samples as i64);
    let stats = LayerStats::calibrate(mlp, index, &x, prune.include_bias, as_coded)?;
    tracing::info!(layer = %name, samples, "calibrated");
    let mut pruner = LayerPruner::new(&layer, &stats, prune.sweep.options, &name)?;
    let shape = layer.shape();
    // Parameters the budget counts: the pruned layer's and the next layer's weights.
    let scope_total = (shape.inputs * shape.hidden + shape.hidden * shape.fan_out) as f64;
    let bar = progress_bar(ctx.progress, prune.sweep.methods.len() as u64, "methods", &ctx.label);
    let rng_for = |method: Method, _: Option<&budget::Budget>| {
        seed::rng(run.seed, &format!("masks/{name}/{}", method.name()))
    };
    let mut record = MaskRecord::new(&name, shape.hidden, shape.inputs);
    let each = |batch: Batch| -> Result<()> {
        record.add(&batch);
        for (sample, pruned) in batch.layers.iter().enumerate() {
            let started = std::time::Instant::now();
            let achieved_fraction = pruned.weights_nonzero() as f64 / scope_total;
            let net = pruned.into_mlp(mlp, index);
            let params = Params {
                total: net.params_total(),
                nonzero: net.params_nonzero(),
                achieved_fraction,
            };
            let test_error = net.error_rate(&data.test_x, &data.test_y);
            let wall_ms = batch.ms_per_mask + started.elapsed().as_secs_f64() * 1e3;
            rows.push(ResultRow {
                test_error: Some(test_error),
                wall_ms: Some(wall_ms),
                ..pruned_row(base, &batch, sample, &name, shape, params)
            });
        }
        Ok(())
    };
    let result =
        sweep::run(&mut pruner, &prune.sweep, &budgets, Streams::PerMethod, rng_for, each, |m| {
            bar.inc(1);
            tracing::info!(method = m.name(), "pruned");
        });
    bar.finish_and_clear();
    result?;
    record.write(&ctx.dir.join(names::MODELS).join(&run.id).join(masks_file::FILE))
}

/// Prunes several layers in order under one kept fraction of their weights (`prune.layers`) by
/// every method, fraction, reweighting choice and mask sample, each layer calibrated on the pruned
/// prefix, and fine-tunes each pruned network if asked; a row per pruned network.
fn prune_whole(
    run: &Run,
    prune: &LayerPrune,
    mlp: &Mlp,
    data: &Dataset,
    base: &ResultRow,
    ctx: &Context,
    rows: &mut Vec<ResultRow>,
) -> Result<()> {
    let whole = prune.whole.as_ref().expect("called for whole-model pruning");
    let BudgetSpec::Fractions(fractions) = &prune.sweep.budget else {
        bail!("prune.budget: several layers take kept fractions (budget.fractions)");
    };
    let n_train = data.train_x.size()[0] as usize;
    let samples = prune.calibration_samples.map_or(n_train, |n| n.min(n_train));
    ensure!(samples > 0, "the calibration set is empty: the training split has no samples");
    let x = data.train_x.narrow(0, 0, samples as i64);
    let names: Vec<String> = (0..mlp.weights.len()).map(|l| format!("w{}", l + 1)).collect();
    let label = whole.layers.iter().map(|l| l.name()).collect::<Vec<_>>().join(",");
    let sgd = whole.finetune.as_ref().map(|f| Sgd {
        lr: f.finetune_lr,
        momentum: f.finetune_momentum,
        batch_size: f.finetune_batch_size,
        epochs: f.finetune_epochs,
        shuffle: true,
    });
    let networks: usize = prune.sweep.methods.iter().map(|&m| prune.sweep.count(m)).sum::<usize>()
        * fractions.len()
        * prune.sweep.reweight.len();
    let bar = progress_bar(ctx.progress, networks as u64, "pruned networks", &ctx.label);
    for &method in &prune.sweep.methods {
        for (&keep, &reweight) in
            fractions.iter().flat_map(|k| prune.sweep.reweight.iter().map(move |r| (k, r)))
        {
            let count = prune.sweep.count(method);
            for sample in 0..count {
                let started = std::time::Instant::now();
                let spec = WholeSpec {
                    layers: whole.layers.iter().map(|l| l.index).collect(),
                    names: names.clone(),
                    method,
                    keep,
                    allocation: whole.allocation,
                    reweight,
                    include_bias: prune.include_bias,
                    options: prune.sweep.options,
                };
                let stream = |name: &str| {
                    seed::rng(run.seed, &format!("masks/{name}/{}/{keep}/{sample}", method.name()))
                };
                let pruned = whole::prune_layers(mlp, &spec, Some(&x), stream)?;
                let pruned_error = pruned.mlp.error_rate(&data.test_x, &data.test_y);
                let (net, tuned) = finetuned(&pruned, mlp, data, sgd.as_ref(), run.seed)?;
                rows.push(ResultRow {
                    layer: Some(label.clone()),
                    method: RowKind::Pruned(method),
                    reweight: Some(reweight),
                    keep_fraction: Some(keep),
                    achieved_fraction: Some(pruned.kept_fraction),
                    params_total: Some(net.params_total() as u64),
                    params_nonzero: Some(net.params_nonzero() as u64),
                    mask_sample: Some(sample as u64),
                    test_error: Some(net.error_rate(&data.test_x, &data.test_y)),
                    wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
                    layer_kept_fractions: Some(kept_fractions(&pruned, &names)),
                    test_error_pruned: tuned.as_ref().map(|_| pruned_error),
                    finetune_losses: tuned.as_ref().map(|t| {
                        t.epochs
                            .iter()
                            .map(|e| format!("{:.6}", e.train_loss))
                            .collect::<Vec<_>>()
                            .join(";")
                    }),
                    ..base.clone()
                });
                bar.inc(1);
                bar.set_message(format!("{} at {keep}", method.name()));
            }
            tracing::info!(method = method.name(), keep, reweight, "pruned");
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// `pruned` fine-tuned on `data` with its masks held (when `sgd` is given).
fn finetuned(
    pruned: &Pruned,
    mlp: &Mlp,
    data: &Dataset,
    sgd: Option<&Sgd>,
    seed: u64,
) -> Result<(Mlp, Option<model_file::FineTuned>)> {
    let Some(sgd) = sgd else { return Ok((pruned.mlp.clone(), None)) };
    let masks = model_file::merged_masks(&pruned.layers, mlp);
    let (net, done) = model_file::finetune(&pruned.mlp, data, sgd, &masks, seed)?;
    Ok((net, Some(done)))
}

/// `w1=0.553333;w2=0.282000`: each pruned layer's kept fraction of its weights.
fn kept_fractions(pruned: &Pruned, names: &[String]) -> String {
    let each = pruned.layers.iter().map(|l| format!("{}={:.6}", names[l.index], l.kept_fraction));
    each.collect::<Vec<_>>().join(";")
}
