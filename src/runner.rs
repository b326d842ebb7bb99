//! Running a plan: one output folder per experiment, each run trained, evaluated and recorded in
//! turn. A run that fails (for example diverging SGD) is recorded as `failed` with its reason and
//! the others go on; whole runs are appended to results.csv, so an interrupted sweep keeps every run
//! it finished and `--resume` skips them.
use crate::config::{self, Experiment};
use crate::plan::Plan;
use crate::record::{now_rfc3339, Manifest, ResultRow, ResultsFile};
use crate::task;
use anyhow::{bail, Context, Result};
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

/// Runs every run of `plan` (checked beforehand) and records it under `options.out/<name>/`.
pub fn run_plan(
    config_path: &Path,
    experiment: &Experiment,
    plan: &Plan,
    options: &RunOptions,
) -> Result<Outcome> {
    for run in &plan.runs {
        task::engine_for(run.engine, options.device)?;
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
        device: task::device_name(options.device),
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
        let ctx = task::Context {
            experiment: &plan.experiment,
            dir: &dir,
            device: options.device,
            progress: options.progress,
        };
        let rows = match task::execute(run, &ctx) {
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
                    ..task::base_row(&plan.experiment, run, options.device)
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
