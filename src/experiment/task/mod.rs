//! Executing one run of a plan: the task's own pipeline (train → prune → evaluate) producing the
//! run's rows of results.csv. `runner` decides which runs execute and records their rows. The
//! rows are built here, once, for every task; `model_file` is the pipeline of `prunelab prune` and
//! `eval` on a model file.
mod expectations;
pub mod mlp;
pub mod model_file;
pub mod teacher_student;
pub mod trajectory;

use super::plan::{Run, RunTask};
use super::record::{ResultRow, RowKind, RunStatus};
use crate::config::EngineChoice;
use crate::prune::budget::LayerShape;
use crate::prune::sweep::Batch;
use crate::train::online::Engine;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use tch::Device;

/// What every task needs besides its run.
pub struct Context<'a> {
    /// The experiment's name (the `experiment` column).
    pub experiment: &'a str,
    /// The plan's setting columns (run.setting_values holds their values).
    pub settings: &'a [String],
    /// The experiment's output folder (models are saved below it).
    pub dir: &'a Path,
    pub device: Device,
    /// Draw progress bars.
    pub progress: bool,
    /// Names the run in progress bars: `run 3/12 <id>`.
    pub label: String,
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
        task: run.task.kind(),
        seed: run.seed,
        device: device_name(device),
        status: RunStatus::Ok,
        settings: run.settings.clone(),
        setting_values: run.setting_values.clone(),
        ..ResultRow::default()
    }
}

/// Parameter counts of a network: all of them, the non-zero ones, and the fraction of the
/// parameters the budget counts that is kept.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub total: usize,
    pub nonzero: usize,
    pub achieved_fraction: f64,
}

/// The row of an unpruned network (`kind`: the trained one, or its normalised copy).
pub fn unpruned_row(
    base: &ResultRow,
    kind: RowKind,
    shape: Option<LayerShape>,
    params: Params,
) -> ResultRow {
    ResultRow {
        method: kind,
        keep_nodes: shape.map(|s| s.hidden as u64),
        keep_edges: shape.map(|s| s.inputs as u64),
        keep_fraction: Some(1.0),
        achieved_fraction: Some(params.achieved_fraction),
        params_total: Some(params.total as u64),
        params_nonzero: Some(params.nonzero as u64),
        ..base.clone()
    }
}

/// The row of mask `sample` of a pruned `batch` of a layer of `shape` named `layer`; the caller
/// adds its metrics.
pub fn pruned_row(
    base: &ResultRow,
    batch: &Batch,
    sample: usize,
    layer: &str,
    shape: LayerShape,
    params: Params,
) -> ResultRow {
    let (keep_nodes, keep_edges) = if batch.method.is_node() {
        (batch.budget.nodes, shape.inputs)
    } else {
        (shape.hidden, batch.budget.edges)
    };
    ResultRow {
        layer: Some(layer.to_string()),
        method: RowKind::Pruned(batch.method),
        reweight: Some(batch.reweight),
        keep_nodes: Some(keep_nodes as u64),
        keep_edges: Some(keep_edges as u64),
        keep_fraction: Some(batch.budget.fraction),
        achieved_fraction: Some(params.achieved_fraction),
        params_total: Some(params.total as u64),
        params_nonzero: Some(params.nonzero as u64),
        mask_sample: Some(sample as u64),
        wall_ms: Some(batch.ms_per_mask),
        ..base.clone()
    }
}

/// A progress bar for `len` `unit`s of work of the run `label` names (hidden when `enabled` is
/// false).
pub fn progress_bar(enabled: bool, len: u64, unit: &str, label: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{prefix}} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit}  {{msg}}  eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}
