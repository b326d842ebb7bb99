//! Running a plan: one output folder per experiment, each run trained, evaluated and recorded in
//! turn. A run that fails (for example diverging SGD) is recorded as `failed` with its reason and
//! the others go on; whole runs are appended to results.csv, so an interrupted sweep keeps every run
//! it finished and `--resume` skips them.
use crate::config::{self, EngineChoice, Experiment};
use crate::data::teacher::TeacherStream;
use crate::evaluate::{ge_theory, TestSet};
use crate::model::{io::save_two_layer, two_layer::TwoLayer};
use crate::plan::{Plan, Run, RunTask, TeacherStudentRun};
use crate::prune::teacher_student::{self as ts_prune, normalize_rows, StudentPruner};
use crate::record::{now_rfc3339, Manifest, ResultRow, ResultsFile};
use crate::seed;
use crate::train::online::{self, Engine};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use tch::Device;

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The parent of the experiment's output folder.
    pub out: PathBuf,
    pub device: Device,
    pub threads: i32,
    /// Continue an existing output folder, skipping runs already recorded as `ok`.
    pub resume: bool,
    /// Draw progress bars (they hide themselves when stderr is not a terminal).
    pub progress: bool,
}

/// What happened.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Chooses the SGD engine for a device; a fused engine on CUDA is refused.
pub fn engine_for(choice: EngineChoice, device: Device) -> Result<Engine> {
    match (choice, device) {
        (EngineChoice::Auto | EngineChoice::Fused, Device::Cpu) => Ok(Engine::Fused),
        (EngineChoice::Fused, _) => bail!("task.teacher_student.engine: `fused` runs on the CPU only; use `tensor` or `auto` with a CUDA device"),
        (_, device) => Ok(Engine::Tensor(device)),
    }
}

/// Runs every run of `plan` (checked beforehand) and records it under `options.out/<name>/`.
pub fn run_plan(
    config_path: &Path,
    experiment: &Experiment,
    plan: &Plan,
    options: &RunOptions,
) -> Result<Outcome> {
    for run in &plan.runs {
        engine_for(run.engine, options.device)?;
    }
    let dir = options.out.join(&experiment.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let resolved = config::to_yaml(experiment)?;
    let resolved_path = dir.join("config.resolved.yaml");
    let results_path = dir.join("results.csv");
    if results_path.exists() {
        if !options.resume {
            bail!(
                "{} already exists: pass --resume to continue it, or choose another --out",
                results_path.display()
            );
        }
        let previous = std::fs::read_to_string(&resolved_path).unwrap_or_default();
        if previous != resolved {
            bail!(
                "{} was written by a different config than {}: resume refused so that results are not mixed",
                dir.display(),
                config_path.display()
            );
        }
    }
    crate::files::write_atomic(&resolved_path, resolved.as_bytes())?;
    crate::logging::log_to(&dir.join("log.txt"))?;
    let results = ResultsFile::open(&results_path)?;
    let done: HashSet<String> =
        results.read()?.into_iter().filter(|r| r.status == "ok").map(|r| r.run_id).collect();

    let mut manifest = Manifest {
        prunelab_version: env!("CARGO_PKG_VERSION"),
        git_hash: env!("PRUNELAB_GIT_HASH"),
        libtorch_version: env!("PRUNELAB_LIBTORCH_VERSION"),
        device: device_name(options.device),
        threads: options.threads,
        config_path: config_path.display().to_string(),
        config_sha256: Sha256::digest(resolved.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        seeds: experiment.seeds.values(),
        runs: plan.runs.len(),
        started: now_rfc3339(),
        finished: None,
        runs_failed: 0,
    };
    manifest.write(&dir.join("manifest.json"))?;

    let mut outcome = Outcome { dir: dir.clone(), ran: 0, skipped: 0, failed: 0 };
    for (index, run) in plan.runs.iter().enumerate() {
        if done.contains(&run.id) {
            outcome.skipped += 1;
            continue;
        }
        let span = tracing::info_span!("run", id = %run.id, seed = run.seed, index = index + 1, of = plan.runs.len());
        let _entered = span.enter();
        tracing::info!(settings = ?run.task, "starting");
        let started = std::time::Instant::now();
        let rows = match execute(run, &plan.experiment, &dir, options) {
            Ok(rows) => rows,
            Err(err) => {
                tracing::error!("failed: {err:#}");
                eprintln!("run {} failed: {err:#}", run.id);
                outcome.failed += 1;
                vec![ResultRow {
                    status: "failed".into(),
                    error: Some(format!("{err:#}")),
                    method: "none".into(),
                    wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
                    ..base_row(&plan.experiment, run, options.device)
                }]
            }
        };
        results.append(&rows)?;
        outcome.ran += 1;
        tracing::info!(seconds = started.elapsed().as_secs_f64(), "finished");
    }
    manifest.finished = Some(now_rfc3339());
    manifest.runs_failed = outcome.failed;
    manifest.write(&dir.join("manifest.json"))?;
    Ok(outcome)
}

/// A human name for a device ("cpu", "cuda:0").
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

fn base_row(experiment: &str, run: &Run, device: Device) -> ResultRow {
    ResultRow {
        experiment: experiment.to_string(),
        run_id: run.id.clone(),
        task: run.task.kind().to_string(),
        seed: run.seed,
        device: device_name(device),
        status: "ok".into(),
        settings: run.settings.clone(),
        ..ResultRow::default()
    }
}

fn execute(
    run: &Run,
    experiment: &str,
    dir: &Path,
    options: &RunOptions,
) -> Result<Vec<ResultRow>> {
    match &run.task {
        RunTask::TeacherStudent(ts) => teacher_student(run, experiment, ts, dir, options),
    }
}

/// Trains a student on its teacher and records the unpruned network.
fn teacher_student(
    run: &Run,
    experiment: &str,
    ts: &TeacherStudentRun,
    dir: &Path,
    options: &RunOptions,
) -> Result<Vec<ResultRow>> {
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
    let engine = engine_for(run.engine, options.device)?;

    let bar = progress_bar(options.progress, ts.train_steps, &run.id);
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

    let models = dir.join("models").join(&run.id);
    std::fs::create_dir_all(&models)
        .with_context(|| format!("cannot create {}", models.display()))?;
    save_two_layer(&teacher, "teacher", &models.join("teacher.safetensors"))?;
    save_two_layer(&student, "student", &models.join("student.safetensors"))?;

    let mut test_stream =
        TeacherStream::new(&teacher, ts.noise_std as f32, seed::rng(run.seed, "test"));
    let test = TestSet::draw(&mut test_stream, ts.test_samples, options.device);
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
            ..base_row(experiment, run, options.device)
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
    let bar = progress_bar(options.progress, (prune.methods.len() * budgets.len()) as u64, &run.id);
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
                        ..base_row(experiment, run, options.device)
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

fn progress_bar(enabled: bool, len: u64, id: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {human_pos}/{human_len} steps  {per_sec}  {msg}  eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("run {id}"));
    bar
}
