//! What a plan will cost, known before anything runs: each run's inputs are checked (an MLP's
//! dataset folder is opened and its headers, counts and labels read; its budgets are resolved
//! against the real layer), and its peak memory and a rough time are estimated from its sizes.
//! A run that cannot fit in the memory this machine has available is refused, with the figure,
//! before anything is written; `--dry-run` shows the same figures and refuses the same runs.
use super::plan::{MlpRun, Plan, Run, RunTask, TeacherStudentRun};
use crate::data::images::{self, DatasetInfo};
use crate::prune::budget::{self, LayerShape};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;

/// The most mask samples a sweep may ask for per method and budget.
pub const MAX_MASKS: usize = 100_000;

/// A run's estimated peak memory and time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost {
    pub memory_bytes: f64,
    /// On one core of a current x86 machine, within a factor of a few.
    pub seconds: f64,
}

/// Checks every run of `plan` and estimates its cost, in plan order. Refuses runs whose data do
/// not fit, whose budgets do not fit the layer, or whose memory exceeds `available_bytes`.
pub fn check(plan: &Plan, available_bytes: Option<f64>) -> Result<Vec<Cost>> {
    let mut datasets: HashMap<PathBuf, DatasetInfo> = HashMap::new();
    let mut costs = Vec::with_capacity(plan.runs.len());
    for run in &plan.runs {
        let cost = match &run.task {
            RunTask::TeacherStudent(ts) => teacher_student(ts)?,
            RunTask::Mlp(mlp) => {
                if !datasets.contains_key(&mlp.data_dir) {
                    let info = images::check(
                        &mlp.data_dir,
                        &mlp.normalize,
                        mlp.train_samples,
                        mlp.test_samples,
                    )
                    .with_context(|| format!("task.mlp.data: {}", mlp.data))?;
                    datasets.insert(mlp.data_dir.clone(), info);
                }
                self::mlp(mlp, &datasets[&mlp.data_dir])?
            }
        };
        refuse_beyond(run, cost, available_bytes)?;
        costs.push(cost);
    }
    Ok(costs)
}

/// The memory the kernel says can still be allocated (`MemAvailable`), if it says.
pub fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// `1.5 GiB`, `320 MiB`, …
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", units[0])
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// `12 s`, `4.2 min`, `3.1 h`, …
pub fn human_seconds(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

fn refuse_beyond(run: &Run, cost: Cost, available: Option<f64>) -> Result<()> {
    if let Some(available) = available {
        if cost.memory_bytes > available {
            bail!(
                "run {} (seed {}) needs about {} of memory, more than the {} this machine has available; \
                 reduce its sizes (input_dim, student_hidden, test_samples, hidden, masks)",
                run.id,
                run.seed,
                human_bytes(cost.memory_bytes),
                human_bytes(available)
            );
        }
    }
    Ok(())
}

fn check_masks(masks: usize) -> Result<()> {
    if masks > MAX_MASKS {
        bail!("prune.masks: {masks} is more than the limit of {MAX_MASKS} mask samples per method and budget");
    }
    Ok(())
}

/// Test set, networks, and per batch of masks the pruned students and their pre-activations.
fn teacher_student(ts: &TeacherStudentRun) -> Result<Cost> {
    let (n, k, m) = (ts.input_dim as f64, ts.student_hidden as f64, ts.teacher_hidden as f64);
    let test = ts.test_samples as f64;
    let mut memory = 4.0 * test * (n + 1.0) + 4.0 * (k + m) * n * 3.0 + 64e6;
    // Online SGD: about 6 flops per weight per step at ~2 Gflop/s on one core.
    let mut seconds =
        ts.train_steps as f64 * 6.0 * (k + m) * n / 2e9 + test * n * (k + m) * 2.0 / 5e9;
    if let Some(prune) = &ts.prune {
        let sweep = &prune.sweep;
        check_masks(sweep.masks)?;
        let budgets = budget::resolve(
            &sweep.budget,
            LayerShape { inputs: ts.input_dim, hidden: ts.student_hidden, fan_out: 1 },
        )?;
        let masks = sweep.masks as f64;
        // The masks and pruned students of one method and budget, plus the evaluation's
        // pre-activations (kept near 64 MB by grouping).
        memory += masks * k * n * (4.0 + 8.0) * 2.0 + test * k * 4.0 * 2.0;
        let nets = (sweep.methods.len() * budgets.len() * sweep.reweight.len()) as f64 * masks;
        seconds += nets * (test * n * k * 2.0 / 5e9 + k * n * 1e-8);
    }
    Ok(Cost { memory_bytes: memory, seconds })
}

/// Data, network and SGD state, and the pruning statistics and kernels of the pruned layer.
fn mlp(run: &MlpRun, data: &DatasetInfo) -> Result<Cost> {
    let mut sizes = vec![data.dim];
    sizes.extend(&run.hidden);
    sizes.push(data.classes);
    let params: f64 = sizes.windows(2).map(|w| w[0] as f64 * w[1] as f64 + w[1] as f64).sum();
    let samples = data.n_train as f64 + data.n_test as f64;
    let widths: f64 = sizes.iter().map(|&s| s as f64).sum();
    let mut memory =
        4.0 * samples * data.dim as f64 + 4.0 * params * 4.0 + 4.0 * 10_000.0 * widths * 2.0;
    let mut seconds = run.epochs as f64 * data.n_train as f64 * params * 6.0 / 4e9;
    if let Some(prune) = &run.prune {
        let sweep = &prune.sweep;
        check_masks(sweep.masks)?;
        let index = prune.layer.index;
        let shape = LayerShape {
            inputs: sizes[index],
            hidden: sizes[index + 1],
            fan_out: sizes[index + 2],
        };
        let budgets = budget::resolve(&sweep.budget, shape)
            .with_context(|| format!("prune.layer {}", prune.layer.name()))?;
        if data.n_train == 0 {
            bail!(
                "prune: {} has no training samples to compute the pruning statistics from",
                run.data
            );
        }
        let (d, h) = (shape.inputs as f64, shape.hidden as f64);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        // Gram matrices, one dense D×D edge kernel and its eigenvectors per worker, the masks.
        memory += 8.0 * (d * d + 2.0 * h * h) + workers * 3.0 * 8.0 * d * d;
        memory += sweep.masks as f64 * budgets.len() as f64 * h * d * 8.0;
        let calibration = data.n_train as f64 * (d * d + h * h) * 2.0 / 4e9;
        let dpp_edge = if sweep.methods.contains(&crate::prune::Method::DppEdge) {
            h * dpp_edge_unit_seconds(shape.inputs, &budgets, sweep.masks)
        } else {
            0.0
        };
        let evaluations =
            (sweep.methods.len() * budgets.len() * sweep.reweight.len() * sweep.masks) as f64;
        seconds += calibration + dpp_edge + evaluations * data.n_test as f64 * params * 2.0 / 4e9;
    }
    Ok(Cost { memory_bytes: memory, seconds })
}

/// Flops per second of a D×D eigendecomposition (LAPACK's divide and conquer in libtorch, about
/// 9D³ flops) on one core: 5.3–6.6 s for D = 3,072 on a 2-vCPU Xeon (`prunelab bench dpp --n
/// 3072`).
const EIGH_FLOPS: f64 = 4e10;

/// Flops per second of k-DPP sampling on one core, counting 2D·m² flops per sample (m = min(k,
/// D − k)): 0.45–0.55 s per sample over fig3-cifar's nine budgets on the same machine
/// (`prunelab bench dpp-edge`).
const SAMPLE_FLOPS: f64 = 1e10;

/// Seconds of DPP edge for one unit with `d` inputs on one core: its D×D kernel's
/// eigendecomposition and `masks` k-DPP samples per budget (samples with k > d/2 draw the d − k
/// left-out inputs).
fn dpp_edge_unit_seconds(d: usize, budgets: &[crate::prune::budget::Budget], masks: usize) -> f64 {
    let d = d as f64;
    let samples: f64 = budgets
        .iter()
        .map(|b| {
            let m = (b.edges as f64).min(d - b.edges as f64);
            2.0 * d * m * m
        })
        .sum();
    9.0 * d * d * d / EIGH_FLOPS + masks as f64 * samples / SAMPLE_FLOPS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_well() {
        assert_eq!(human_bytes(512.0), "512 B");
        assert_eq!(human_bytes(3.5 * 1024.0 * 1024.0 * 1024.0), "3.5 GiB");
        assert_eq!(human_seconds(12.0), "12 s");
        assert_eq!(human_seconds(600.0), "10.0 min");
        assert_eq!(human_seconds(7200.0), "2.0 h");
    }

    #[test]
    fn dpp_edge_counts_the_eigendecomposition_and_the_samples() {
        use crate::prune::budget::Budget;
        let budget = |edges| Budget { nodes: 1, edges, fraction: 0.5 };
        let eig = 9.0 * 1000f64.powi(3) / EIGH_FLOPS;
        assert_eq!(dpp_edge_unit_seconds(1000, &[], 3), eig);
        // k = 900 costs what k = 100 does (the 100 left-out inputs are drawn).
        let (a, b) = (budget(100), budget(900));
        assert_eq!(dpp_edge_unit_seconds(1000, &[a], 3), dpp_edge_unit_seconds(1000, &[b], 3));
        let two_samples = 2.0 * 2.0 * 1000.0 * 100.0 * 100.0 / SAMPLE_FLOPS;
        assert!((dpp_edge_unit_seconds(1000, &[a], 2) - eig - two_samples).abs() < 1e-12);
        // fig3-cifar's layer: the measured 20 s or so per unit on one core, within a factor 2.
        let shape = LayerShape { inputs: 3072, hidden: 1000, fan_out: 1000 };
        let fractions = (1..=9).map(|i| f64::from(i) / 10.0).collect();
        let budgets = budget::resolve(&budget::BudgetSpec::Fractions(fractions), shape).unwrap();
        let unit = dpp_edge_unit_seconds(3072, &budgets, 3);
        assert!((10.0..40.0).contains(&unit), "{unit} s per unit");
    }

    #[test]
    fn absurd_sizes_cost_more_than_any_machine() {
        let paper = TeacherStudentRun {
            input_dim: 500,
            teacher_hidden: 2,
            student_hidden: 6,
            train_steps: 800_000,
            test_samples: 80_000,
            ..Default::default()
        };
        let cost = teacher_student(&paper).unwrap();
        assert!(cost.memory_bytes < 1e9 && cost.seconds < 60.0, "{cost:?}");
        let huge = TeacherStudentRun { input_dim: 10_000_000, ..paper.clone() };
        assert!(teacher_student(&huge).unwrap().memory_bytes > 1e12);
        let wide = TeacherStudentRun { student_hidden: 1_000_000_000, ..paper };
        assert!(teacher_student(&wide).unwrap().memory_bytes > 1e12);
        assert!(check_masks(MAX_MASKS + 1).unwrap_err().to_string().contains("limit"));
    }
}
