//! The teacher-student task (paper §3–5.1): train a student on its teacher by online SGD, evaluate
//! it, then prune it by every configured method, budget and reweighting choice.
use super::{base_row, engine_for, progress_bar, Context};
use crate::data::teacher::TeacherStream;
use crate::evaluate::{ge_theory, TestSet};
use crate::model::{io::save_two_layer, two_layer::TwoLayer};
use crate::plan::{Run, TeacherStudentRun};
use crate::prune::teacher_student::{self as ts_prune, normalize_rows, StudentPruner};
use crate::record::ResultRow;
use crate::seed;
use crate::train::online;
use anyhow::{Context as _, Result};

/// Trains a student on its teacher, records the unpruned network and every pruned one.
pub fn execute(run: &Run, ts: &TeacherStudentRun, ctx: &Context) -> Result<Vec<ResultRow>> {
    let started = std::time::Instant::now();
    let teacher = TwoLayer::gaussian(
        ts.input_dim,
        ts.teacher_hidden,
        Some(ts.v_star as f32),
        &mut seed::rng(run.seed, "teacher"),
    );
    let mut student = TwoLayer::gaussian(
        ts.input_dim,
        ts.student_hidden,
        None,
        &mut seed::rng(run.seed, "student"),
    );
    let mut stream =
        TeacherStream::new(&teacher, ts.noise_std as f32, seed::rng(run.seed, "train"));
    let engine = engine_for(run.engine, ctx.device)?;

    let bar = progress_bar(ctx.progress, ts.train_steps, &run.id);
    let report =
        online::train(&mut student, &mut stream, ts.train_steps, ts.lr, engine, |done, loss| {
            bar.set_position(done);
            bar.set_message(format!("ε≈{loss:.4}"));
        });
    bar.finish_and_clear();
    let report = report?;
    tracing::info!(
        steps = report.steps,
        seconds = report.seconds,
        steps_per_s = report.steps as f64 / report.seconds,
        "trained"
    );

    let models = ctx.dir.join("models").join(&run.id);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    save_two_layer(&teacher, "teacher", &models.join("teacher.safetensors"))?;
    save_two_layer(&student, "student", &models.join("student.safetensors"))?;

    let mut test_stream =
        TeacherStream::new(&teacher, ts.noise_std as f32, seed::rng(run.seed, "test"));
    let test = TestSet::draw(&mut test_stream, ts.test_samples, ctx.device);
    let unpruned_row = |method: &str, net: &TwoLayer, wall_ms: f64| -> Result<ResultRow> {
        Ok(ResultRow {
            method: method.into(),
            keep_nodes: Some(net.hidden as u64),
            keep_edges: Some(net.input_dim as u64),
            keep_fraction: Some(1.0),
            achieved_fraction: Some(net.params_nonzero() as f64 / net.params_total() as f64),
            params_total: Some(net.params_total() as u64),
            params_nonzero: Some(net.params_nonzero() as u64),
            ge_empirical: Some(test.ge_empirical(net)),
            ge_theory: Some(ge_theory(net, &teacher)?),
            wall_ms: Some(wall_ms),
            ..base_row(ctx.experiment, run, ctx.device)
        })
    };
    let mut rows = vec![unpruned_row("none", &student, started.elapsed().as_secs_f64() * 1e3)?];
    tracing::info!(ge_empirical = rows[0].ge_empirical, ge_theory = rows[0].ge_theory, "evaluated");
    let Some(prune) = &run.prune else { return Ok(rows) };

    let base = if prune.normalize_rows { normalize_rows(&student) } else { student.clone() };
    if prune.normalize_rows {
        rows.push(unpruned_row("normalized", &base, 0.0)?);
    }
    let options_ts = ts_prune::Options {
        random: prune.random,
        importance: prune.importance,
        reweight_variant: prune.reweight_variant,
    };
    let mut pruner = StudentPruner::new(&base, options_ts);
    let base_activations = test.activations(&base);
    let budgets = run.budgets()?;
    let bar = progress_bar(ctx.progress, (prune.methods.len() * budgets.len()) as u64, &run.id);
    for &method in &prune.methods {
        for budget in &budgets {
            let started = std::time::Instant::now();
            let mut rng = seed::rng(
                run.seed,
                &format!("masks/{}/{}/{}", method.name(), budget.nodes, budget.edges),
            );
            let count = if method.is_random() { prune.masks as usize } else { 1 };
            let masks = (0..count)
                .map(|_| pruner.mask(method, budget, &mut rng))
                .collect::<Result<Vec<_>>>()?;
            for reweight in prune.reweight.values() {
                let nets: Vec<TwoLayer> =
                    masks.iter().map(|mask| pruner.pruned(mask, reweight)).collect();
                let empirical = if method.is_node() {
                    // Node-pruned nets keep or zero whole rows of the base first layer.
                    let vs: Vec<Vec<f32>> = nets.iter().map(|net| net.v.clone()).collect();
                    test.ge_empirical_from_activations(&base_activations, &vs)
                } else {
                    test.ge_empirical_many(&nets)
                };
                let wall_ms = started.elapsed().as_secs_f64() * 1e3 / count as f64;
                for (sample, (net, ge_empirical)) in nets.iter().zip(empirical).enumerate() {
                    let (keep_nodes, keep_edges) = if method.is_node() {
                        (budget.nodes, net.input_dim)
                    } else {
                        (net.hidden, budget.edges)
                    };
                    rows.push(ResultRow {
                        layer: Some("w".into()),
                        method: method.name().into(),
                        reweight: Some(reweight),
                        keep_nodes: Some(keep_nodes as u64),
                        keep_edges: Some(keep_edges as u64),
                        keep_fraction: Some(budget.fraction),
                        achieved_fraction: Some(
                            net.params_nonzero() as f64 / net.params_total() as f64,
                        ),
                        params_total: Some(net.params_total() as u64),
                        params_nonzero: Some(net.params_nonzero() as u64),
                        mask_sample: Some(sample as u64),
                        ge_empirical: Some(ge_empirical),
                        ge_theory: Some(ge_theory(net, &teacher)?),
                        wall_ms: Some(wall_ms),
                        ..base_row(ctx.experiment, run, ctx.device)
                    });
                }
            }
            bar.inc(1);
            bar.set_message(format!("{} at {}:{}", method.name(), budget.nodes, budget.edges));
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}
