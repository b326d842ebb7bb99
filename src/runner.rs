//! Running a plan: one output folder per experiment, each run trained, evaluated and recorded in
//! turn. A run that fails (for example diverging SGD) is recorded as `failed` with its reason and
//! the others go on; whole runs are appended to results.csv, so an interrupted sweep keeps every run
//! it finished and `--resume` skips them.
use crate::config::{self, EngineChoice, Experiment};
use crate::data::teacher::TeacherStream;
use crate::evaluate::{ge_theory, TestSet};
use crate::model::{io::save_two_layer, two_layer::TwoLayer};
use crate::plan::{Plan, Run, RunTask, TeacherStudentRun};
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
    let ge_empirical = test.ge_empirical(&student);
    let ge_theory = ge_theory(&student, &teacher)?;
    tracing::info!(ge_empirical, ge_theory, "evaluated");
    Ok(vec![ResultRow {
        method: "none".into(),
        keep_nodes: Some(student.hidden as u64),
        keep_edges: Some(student.input_dim as u64),
        keep_fraction: Some(1.0),
        achieved_fraction: Some(1.0),
        params_total: Some(student.params_total() as u64),
        params_nonzero: Some(student.params_nonzero() as u64),
        ge_empirical: Some(ge_empirical),
        ge_theory: Some(ge_theory),
        wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        ..base_row(experiment, run, options.device)
    }])
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
