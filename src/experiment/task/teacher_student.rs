//! The teacher-student task (paper §3–5.1): train a student on its teacher by online SGD, evaluate
//! it, then prune its hidden layer by every configured method, budget and reweighting choice with
//! the exact statistics of its Gaussian inputs.
use super::expectations::Expectations;
use super::{base_row, engine_for, progress_bar, pruned_row, unpruned_row, Context, Params};
use crate::data::teacher::{seeded_student, seeded_teacher, TeacherStream};
use crate::evaluate::{ge_theory, TestSet};
use crate::experiment::masks_file::{self, MaskRecord};
use crate::experiment::names;
use crate::experiment::plan::{Run, StudentPrune, TeacherStudentRun};
use crate::experiment::record::{ResultRow, RowKind};
use crate::model::{io::save_two_layer, two_layer::TwoLayer};
use crate::prune::budget;
use crate::prune::layer::{Layer, LayerPruner};
use crate::prune::stats::LayerStats;
use crate::prune::sweep::{self, Batch, Streams};
use crate::seed;
use crate::theory::blocks::teacher_blocks;
use crate::theory::order_params::OrderParams;
use anyhow::{Context as _, Result};

/// Trains a student on its teacher, records the unpruned network and every pruned one.
pub fn execute(run: &Run, ts: &TeacherStudentRun, ctx: &Context) -> Result<Vec<ResultRow>> {
    let started = std::time::Instant::now();
    let teacher =
        seeded_teacher(ts.input_dim, ts.teacher_hidden, ts.v_star, ts.normalize_teacher, run.seed);
    let student = train(run, ts, &teacher, ctx)?;
    let models = ctx.dir.join(names::MODELS).join(&run.id);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    save_two_layer(&teacher, "teacher", &models.join("teacher.safetensors"))?;
    save_two_layer(&student, "student", &models.join("student.safetensors"))?;

    let mut test_stream =
        TeacherStream::new(&teacher, ts.noise_std as f32, seed::rng(run.seed, "test"));
    let eval = Evaluation {
        test: TestSet::draw(&mut test_stream, ts.test_samples, ctx.device),
        teacher,
        base: base_row(ctx.experiment, run, ctx.device),
    };
    let mut rows = vec![ResultRow {
        wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        ..eval.unpruned(RowKind::Unpruned, &student)?
    }];
    tracing::info!(ge_empirical = rows[0].ge_empirical, ge_theory = rows[0].ge_theory, "evaluated");
    if let Some(prune) = &ts.prune {
        prune_student(run, prune, &student, &eval, ctx, &mut rows)?;
    }
    Ok(rows)
}

/// The student after `ts.train_steps` online SGD steps.
fn train(run: &Run, ts: &TeacherStudentRun, teacher: &TwoLayer, ctx: &Context) -> Result<TwoLayer> {
    let mut student = seeded_student(ts.input_dim, ts.student_hidden, run.seed);
    let mut stream = TeacherStream::new(teacher, ts.noise_std as f32, seed::rng(run.seed, "train"));
    let engine = engine_for(ts.engine, ctx.device)?;
    let bar = progress_bar(ctx.progress, ts.train_steps, "steps", &ctx.label);
    let training = (&mut student, &mut stream);
    let report = super::trajectory::train(run, ts, teacher, training, engine, ctx, |done, loss| {
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
    Ok(student)
}

/// What every row of a run is evaluated against.
struct Evaluation {
    test: TestSet,
    teacher: TwoLayer,
    base: ResultRow,
}

impl Evaluation {
    fn params(net: &TwoLayer) -> Params {
        let (total, nonzero) = (net.params_total(), net.params_nonzero());
        Params { total, nonzero, achieved_fraction: nonzero as f64 / total as f64 }
    }

    fn unpruned(&self, kind: RowKind, net: &TwoLayer) -> Result<ResultRow> {
        let shape = Layer::of_two_layer(net).shape();
        Ok(ResultRow {
            ge_empirical: Some(self.test.ge_empirical(net)),
            ge_theory: Some(ge_theory(net, &self.teacher)?),
            wall_ms: Some(0.0),
            ..unpruned_row(&self.base, kind, Some(shape), Self::params(net))
        })
    }

    /// The rows of one batch, with the exact expectation of their ge_theory (`expected`).
    /// Node-pruned students keep or zero whole rows of the base's first layer (or, `as_coded`,
    /// keep them all), so their errors come from the base's activations.
    fn pruned(
        &self,
        batch: &Batch,
        base_activations: &tch::Tensor,
        expected: Option<f64>,
    ) -> Result<Vec<ResultRow>> {
        let nets: Vec<TwoLayer> = batch.layers.iter().map(Layer::to_two_layer).collect();
        let empirical = if batch.method.is_node() {
            let vs: Vec<Vec<f32>> = nets.iter().map(|net| net.v.clone()).collect();
            self.test.ge_empirical_from_activations(base_activations, &vs)
        } else {
            self.test.ge_empirical_many(&nets)
        };
        let shape = batch.layers[0].shape();
        nets.iter()
            .zip(empirical)
            .enumerate()
            .map(|(sample, (net, ge_empirical))| {
                Ok(ResultRow {
                    ge_empirical: Some(ge_empirical),
                    ge_theory: Some(ge_theory(net, &self.teacher)?),
                    ge_expected: expected,
                    ..pruned_row(&self.base, batch, sample, "w", shape, Self::params(net))
                })
            })
            .collect()
    }
}

/// Prunes the student by every method × budget × reweight choice of `prune`.
fn prune_student(
    run: &Run,
    prune: &StudentPrune,
    student: &TwoLayer,
    eval: &Evaluation,
    ctx: &Context,
    rows: &mut Vec<ResultRow>,
) -> Result<()> {
    let base = if prune.normalize_rows { student.normalized_rows() } else { student.clone() };
    if prune.normalize_rows {
        rows.push(eval.unpruned(RowKind::Normalized, &base)?);
    }
    let layer = Layer::of_two_layer(&base);
    let stats = LayerStats::exact_gaussian(&layer.weight);
    let mut pruner = LayerPruner::new(&layer, &stats, prune.sweep.options, "w")?;
    let reweight = prune.sweep.reweight.contains(&true);
    let mut expectations =
        Expectations::new(&base, &eval.teacher, &pruner, prune.sweep.options, reweight)?;
    let mut record = MaskRecord::new("w", base.hidden, base.input_dim);
    let blocks = teacher_blocks(&OrderParams::new(&base, &eval.teacher)?);
    record.teacher_block = Some((blocks, eval.teacher.hidden));
    let budgets = budget::resolve(&prune.sweep.budget, layer.shape())?;
    let base_activations = eval.test.activations(&base);
    let bar = progress_bar(ctx.progress, prune.sweep.methods.len() as u64, "methods", &ctx.label);
    let rng_for = |method: crate::prune::Method, b: Option<&budget::Budget>| {
        let b = b.expect("one stream per budget");
        seed::rng(run.seed, &format!("masks/{}/{}/{}", method.name(), b.nodes, b.edges))
    };
    let each = |batch: Batch| -> Result<()> {
        let expected = expectations.of(batch.method, batch.budget, batch.reweight);
        record.add(&batch);
        rows.extend(eval.pruned(&batch, &base_activations, expected)?);
        Ok(())
    };
    let result = sweep::run(
        &mut pruner,
        &prune.sweep,
        &budgets,
        Streams::PerMethodAndBudget,
        rng_for,
        each,
        |m| {
            bar.inc(1);
            bar.set_message(m.name());
        },
    );
    bar.finish_and_clear();
    result?;
    record.write(&ctx.dir.join(names::MODELS).join(&run.id).join(masks_file::FILE))
}
