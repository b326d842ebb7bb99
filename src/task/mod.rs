//! Executing one run of a plan: the task's own pipeline (train → prune → evaluate) producing the
//! run's rows of results.csv. `runner` decides which runs execute and records their rows.
pub mod mlp;
pub mod teacher_student;

use crate::config::EngineChoice;
use crate::plan::{Run, RunTask};
use crate::record::ResultRow;
use crate::train::online::Engine;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use tch::Device;

/// What every task needs besides its run.
pub struct Context<'a> {
    /// The experiment's name (the `experiment` column).
    pub experiment: &'a str,
    /// The experiment's output folder (models are saved below it).
    pub dir: &'a Path,
    pub device: Device,
    /// Draw progress bars.
    pub progress: bool,
}

/// Runs `run` and returns its rows.
pub fn execute(run: &Run, ctx: &Context) -> Result<Vec<ResultRow>> {
    match &run.task {
        RunTask::TeacherStudent(ts) => teacher_student::execute(run, ts, ctx),
        RunTask::Mlp(spec) => mlp::execute(run, spec, ctx),
    }
}

/// Chooses the SGD engine for a device; a fused engine on CUDA is refused.
pub fn engine_for(choice: EngineChoice, device: Device) -> Result<Engine> {
    match (choice, device) {
        (EngineChoice::Auto | EngineChoice::Fused, Device::Cpu) => Ok(Engine::Fused),
        (EngineChoice::Fused, _) => bail!("task.teacher_student.engine: `fused` runs on the CPU only; use `tensor` or `auto` with a CUDA device"),
        (_, device) => Ok(Engine::Tensor(device)),
    }
}

/// A human name for a device ("cpu", "cuda:0").
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

/// A row with the run's identifying columns filled in.
pub fn base_row(experiment: &str, run: &Run, device: Device) -> ResultRow {
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

/// A progress bar for `len` units of work of run `id` (hidden when `enabled` is false).
pub fn progress_bar(enabled: bool, len: u64, id: &str) -> ProgressBar {
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
