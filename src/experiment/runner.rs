//! Running a plan: one output folder per experiment (per shard of it, for a job array), each run
//! trained, evaluated and recorded.
//!
//! Runs execute on `jobs` worker threads that take them from a shared queue in plan order; the
//! calling thread is the only writer: it appends each finished run's rows to results.csv in one
//! write, syncs, then records the file's new length in manifest.json. An interrupted sweep
//! (Ctrl-C, `kill -9`, power loss) therefore keeps every run it finished, loses the runs in flight,
//! and `--resume` skips the runs recorded `ok` and runs the rest, failed ones included. A run that
//! fails (diverging SGD, or a panic inside it) is recorded as `failed` with its reason and the
//! others go on.
use super::manifest::{now_rfc3339, sha256_hex, FolderLock, Manifest, Session};
use super::names;
use super::plan::{Plan, Run, RunTask, Shard};
use super::record::{
    current_rows, Appending, Committed, ResultRow, ResultsFile, RowKind, RunStatus,
};
use super::task;
use crate::config::{self, Experiment};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tch::Device;

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The parent of the experiment's output folder.
    pub out: PathBuf,
    pub device: Device,
    /// libtorch intra-op threads for the whole process: each of the `jobs` runs executing at the
    /// same time gets max(1, threads / jobs).
    pub threads: i32,
    /// Runs executed at the same time (at least 1).
    pub jobs: usize,
    /// Run only this slice of the plan, in OUT/<name>/shards/I-of-N/.
    pub shard: Option<Shard>,
    /// Continue an existing output folder, skipping runs already recorded as `ok`.
    pub resume: bool,
    /// Draw progress bars (they hide themselves when stderr is not a terminal).
    pub progress: bool,
    /// The command line, for the manifest.
    pub command_line: Vec<String>,
}

impl RunOptions {
    /// libtorch intra-op threads of each run. libtorch's parallel reductions sum in per-thread
    /// chunks, so results are bit-identical only between runs with the same value.
    pub fn threads_per_run(&self) -> i32 {
        (self.threads / self.jobs.max(1) as i32).max(1)
    }
}

/// What happened.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
    /// The signal that stopped the sweep early (its runs in flight were recorded), if any.
    pub interrupted: Option<i32>,
}

/// The output folder of an experiment: `OUT/<name>/`, or `OUT/<name>/shards/I-of-N/` for a shard.
pub fn output_dir(out: &Path, experiment: &str, shard: Option<Shard>) -> PathBuf {
    let dir = out.join(experiment);
    match shard {
        Some(shard) => dir.join(names::SHARDS).join(shard.folder_name()),
        None => dir,
    }
}

/// The runs of `plan` that `shard` holds (all of them without a shard), with their plan positions.
pub fn selected_runs(plan: &Plan, shard: Option<Shard>) -> Vec<(usize, &Run)> {
    plan.runs.iter().enumerate().filter(|(i, _)| shard.is_none_or(|s| s.contains(*i))).collect()
}

/// Runs every run of `plan` (checked beforehand) that `options.shard` selects and records it under
/// [`output_dir`].
pub fn run_plan(
    config_path: &Path,
    experiment: &Experiment,
    plan: &Plan,
    options: &RunOptions,
) -> Result<Outcome> {
    for run in &plan.runs {
        if let RunTask::TeacherStudent(ts) = &run.task {
            task::engine_for(ts.engine, options.device)?;
        }
    }
    let dir = output_dir(&options.out, &experiment.name, options.shard);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the output folder {}", dir.display()))?;
    let _lock = FolderLock::acquire(&dir)?;
    let resolved = config::to_yaml(experiment)?;
    let previous = previous_manifest(&dir, &resolved, config_path, options.resume)?;
    crate::files::write_atomic(&dir.join(names::CONFIG), resolved.as_bytes())?;
    crate::logging::log_to(&dir.join(names::LOG))?;
    let selected = selected_runs(plan, options.shard);
    let manifest = Manifest {
        experiment: experiment.name.clone(),
        config_path: config_path.display().to_string(),
        config_sha256: sha256_hex(resolved.as_bytes()),
        seeds: experiment.seeds.values(),
        runs: selected.len(),
        plan_runs: plan.runs.len(),
        shard: options.shard,
        session: Session {
            device: Some(task::device_name(options.device)),
            threads: Some(options.threads_per_run()),
            jobs: Some(options.jobs),
            ..Session::start(options.command_line.clone())
        },
        ..Manifest::default()
    };
    let mut recorder = Recorder::open(&dir, manifest, previous, &plan.settings)?;
    let pending: Vec<(usize, &Run)> =
        selected.iter().copied().filter(|(_, run)| !recorder.is_ok(&run.id)).collect();
    tracing::info!(
        experiment = %experiment.name,
        shard = %options.shard.map_or("all".into(), |s| s.to_string()),
        runs = selected.len(),
        to_run = pending.len(),
        jobs = options.jobs,
        threads_per_run = options.threads_per_run(),
        "sweep starting"
    );
    let mut outcome = Outcome {
        dir: dir.clone(),
        ran: 0,
        skipped: selected.len() - pending.len(),
        failed: 0,
        interrupted: None,
    };
    execute_all(&pending, plan, &dir, options, |run, rows| {
        let ok = recorder.record(run, &rows)?;
        outcome.ran += 1;
        outcome.failed += usize::from(!ok);
        Ok(())
    })?;
    recorder.finish()?;
    outcome.interrupted = crate::interrupt::received();
    Ok(outcome)
}

/// The manifest of the earlier session of `dir`, when its results may be continued: only with
/// `resume`, and only by the same resolved config.
fn previous_manifest(
    dir: &Path,
    resolved: &str,
    config_path: &Path,
    resume: bool,
) -> Result<Option<Manifest>> {
    let results_path = dir.join(names::RESULTS);
    if !results_path.exists() {
        return Ok(None);
    }
    if !resume {
        bail!(
            "{} already exists: pass --resume to continue it, or choose another --out",
            results_path.display()
        );
    }
    if std::fs::read_to_string(dir.join(names::CONFIG)).unwrap_or_default() != resolved {
        bail!(
            "{} was written by a different config than {}: resume refused so that results are not mixed",
            dir.display(),
            config_path.display()
        );
    }
    Manifest::read(&dir.join(names::MANIFEST))
}

/// The single writer of an output folder: results.csv, manifest.json and what each run id last
/// recorded.
struct Recorder {
    results: ResultsFile,
    manifest: Manifest,
    manifest_path: PathBuf,
    /// Whether each recorded run id is currently `ok` (true) or failed (false).
    recorded: HashMap<String, bool>,
}

impl Recorder {
    /// Opens (and repairs) results.csv, carries the earlier sessions over from `previous`, and
    /// writes the new session's manifest.
    fn open(
        dir: &Path,
        mut manifest: Manifest,
        previous: Option<Manifest>,
        settings: &[String],
    ) -> Result<Self> {
        let committed = previous.as_ref().map(|m| m.committed.clone());
        let path = dir.join(names::RESULTS);
        let (results, rows) = ResultsFile::open(&path, committed.as_ref(), settings)?;
        if let Some(mut previous) = previous {
            if let Some(appending) = committed.and_then(|c| c.appending) {
                if results.len() == appending.results_bytes {
                    // All its rows arrived before the manifest could say so: the previous session's run.
                    previous.session.runs_recorded.push(appending.run_id);
                }
            }
            manifest.earlier_sessions = previous.sessions();
            manifest.merged_from = previous.merged_from;
        }
        manifest.committed = Committed { results_bytes: results.len(), appending: None };
        let recorded =
            current_rows(rows).into_iter().map(|r| (r.run_id, r.status == RunStatus::Ok)).collect();
        let mut recorder =
            Self { results, manifest, manifest_path: dir.join(names::MANIFEST), recorded };
        recorder.count();
        recorder.manifest.write(&recorder.manifest_path)?;
        Ok(recorder)
    }

    fn is_ok(&self, run_id: &str) -> bool {
        self.recorded.get(run_id) == Some(&true)
    }

    fn count(&mut self) {
        let count = |ok: bool| self.recorded.values().filter(|&&status| status == ok).count();
        (self.manifest.runs_ok, self.manifest.runs_failed) = (count(true), count(false));
    }

    /// Says which run is being appended and where it will end, appends it, then records it.
    /// Returns whether the run is `ok`.
    fn record(&mut self, run: &Run, rows: &[ResultRow]) -> Result<bool> {
        let ok = rows.iter().all(|r| r.status == RunStatus::Ok);
        let encoded = ResultsFile::encode(rows)?;
        self.manifest.committed.appending = Some(Appending {
            run_id: run.id.clone(),
            results_bytes: self.results.len() + encoded.len() as u64,
        });
        self.manifest.write(&self.manifest_path)?;
        self.manifest.committed =
            Committed { results_bytes: self.results.append(&encoded)?, appending: None };
        self.recorded.insert(run.id.clone(), ok);
        self.count();
        self.manifest.session.runs_recorded.push(run.id.clone());
        self.manifest.write(&self.manifest_path)?;
        Ok(ok)
    }

    fn finish(mut self) -> Result<()> {
        self.manifest.session.finished = Some(now_rfc3339());
        self.manifest.write(&self.manifest_path)
    }
}

/// Makes this thread's first calls into libtorch's matrix product and `erf` on a throwaway
/// tensor. The first `erf` of a worker occasionally (about one process in 40 on a loaded 2-core
/// machine) returned other values than every later call with the same input, so the first run's
/// empirical error differed between two runs of the same config; with this warm-up none did in
/// 170 processes under the same load. Runs stay reproducible whatever the load.
fn warm_up_libtorch() {
    let _guard = tch::no_grad_guard();
    let a = tch::Tensor::ones([64, 64], (tch::Kind::Float, tch::Device::Cpu));
    let _ = a.matmul(&a).erf().mv(&a.get(0)).sum(tch::Kind::Double).double_value(&[]);
}

/// Executes `pending` on `options.jobs` worker threads and hands each run's rows to `record`, on
/// the calling thread, as runs finish. An error from `record` stops the sweep: runs in flight
/// finish, nothing more starts, and the error is returned.
fn execute_all(
    pending: &[(usize, &Run)],
    plan: &Plan,
    dir: &Path,
    options: &RunOptions,
    mut record: impl FnMut(&Run, Vec<ResultRow>) -> Result<()>,
) -> Result<()> {
    let jobs = options.jobs.clamp(1, pending.len().max(1));
    // From the flags, not from the runs left, so that a resumed sweep computes as the first did.
    let threads = options.threads_per_run();
    let overall = sweep_bar(options.progress && jobs > 1, pending.len(), &plan.experiment, jobs);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::channel::<(usize, Vec<ResultRow>)>();
        for worker in 1..=jobs {
            let (sender, next, stop) = (sender.clone(), &next, &stop);
            let spawned = std::thread::Builder::new()
                .name(format!("run-worker-{worker}"))
                .stack_size(8 << 20)
                .spawn_scoped(scope, move || {
                    // libtorch keeps its intra-op thread count per calling thread.
                    tch::set_num_threads(threads);
                    warm_up_libtorch();
                    let (started, mut finished) = (std::time::Instant::now(), 0usize);
                    while !stop.load(Ordering::Relaxed) && crate::interrupt::received().is_none() {
                        let Some(&(position, run)) =
                            pending.get(next.fetch_add(1, Ordering::SeqCst))
                        else {
                            break;
                        };
                        // One run at a time: each run's bar also says how long the sweep has left.
                        let left = (jobs == 1 && finished > 0).then(|| {
                            let per_run = started.elapsed().as_secs_f64() / finished as f64;
                            per_run * (pending.len() - finished) as f64
                        });
                        let rows =
                            execute_one(run, position, plan, dir, options, (jobs == 1, left));
                        finished += 1;
                        if sender.send((position, rows)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(err) = spawned {
                stop.store(true, Ordering::Relaxed);
                return Err(err).context("cannot start a worker thread");
            }
        }
        drop(sender);
        let mut failures = 0;
        for (position, rows) in receiver {
            let run = &plan.runs[position];
            if let Some(failed) = rows.iter().find(|r| r.status != RunStatus::Ok) {
                let reason = failed.error.as_deref().unwrap_or("");
                overall.suspend(|| eprintln!("run {} failed: {reason}", run.id));
                failures += 1;
                overall.set_message(format!("{failures} failed"));
            }
            if let Err(err) = record(run, rows) {
                stop.store(true, Ordering::Relaxed);
                overall.abandon();
                return Err(err);
            }
            overall.inc(1);
        }
        overall.finish_and_clear();
        Ok(())
    })
}

/// One overall bar when runs go in parallel (hidden otherwise: a single job shows each run's own
/// bars instead).
fn sweep_bar(enabled: bool, runs: usize, experiment: &str, jobs: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(runs as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32}] {pos}/{len} runs  {elapsed_precise}  eta {eta}  {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{experiment} ({jobs} jobs)"));
    bar
}

/// Executes one run inside its log span and returns its rows: the task's, or one `failed` row with
/// the reason (an error or a panic) flattened to one line.
fn execute_one(
    run: &Run,
    position: usize,
    plan: &Plan,
    dir: &Path,
    options: &RunOptions,
    (progress_bars, sweep_left): (bool, Option<f64>),
) -> Vec<ResultRow> {
    let span = tracing::info_span!("run", id = %run.id, seed = run.seed, index = position + 1, of = plan.runs.len());
    let _entered = span.enter();
    tracing::info!(settings = ?run.task, "starting");
    let started = std::time::Instant::now();
    let ctx = task::Context {
        experiment: &plan.experiment,
        settings: &plan.settings,
        dir,
        device: options.device,
        progress: options.progress && progress_bars,
        label: match sweep_left {
            Some(left) => format!(
                "run {}/{} {} (sweep ≈ {} left)",
                position + 1,
                plan.runs.len(),
                run.id,
                super::cost::human_seconds(left)
            ),
            None => format!("run {}/{} {}", position + 1, plan.runs.len(), run.id),
        },
    };
    let executed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task::execute(run, &ctx)));
    let error = match executed {
        Ok(Ok(rows)) => {
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "finished");
            return rows;
        }
        Ok(Err(err)) => format!("{err:#}"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            format!("panicked: {message}")
        }
    };
    // One row is one line of results.csv (see `record::ResultsFile`).
    let error = error.split_whitespace().collect::<Vec<_>>().join(" ");
    // Logged at INFO: log.txt keeps it, and stderr already gets one line from the runner.
    tracing::info!(status = "failed", "{error}");
    vec![ResultRow {
        status: RunStatus::Failed,
        error: Some(error),
        method: RowKind::Unpruned,
        wall_ms: Some(started.elapsed().as_secs_f64() * 1e3),
        ..task::base_row(&plan.experiment, run, options.device)
    }]
}
