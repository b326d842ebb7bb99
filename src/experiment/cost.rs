//! What a plan will cost, known before anything runs: each run's inputs are checked (an MLP's
//! dataset folder is opened and its headers, counts and labels read; its budgets are resolved
//! against the real layer), and its peak memory and a rough time are estimated from its sizes.
//! A run that cannot fit in the memory this machine has available is refused, with the figure,
//! before anything is written; `--dry-run` shows the same figures and refuses the same runs.
use super::plan::{MlpRun, Plan, Run, RunTask, TeacherStudentRun};
use crate::data::images::{self, DatasetInfo};
use crate::prune::budget::{self, BudgetSpec, LayerShape};
use crate::prune::Method;
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
    let mut seconds = run.epochs as f64 * data.n_train as f64 * params * 6.0 / DENSE_FLOPS;
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
        let calibration_samples =
            prune.calibration_samples.map_or(data.n_train, |n| n.min(data.n_train)) as f64;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let evaluate = data.n_test as f64 * params * 2.0 / DENSE_FLOPS;
        let layers: Vec<usize> = match &prune.whole {
            Some(whole) => whole.layers.iter().map(|l| l.index).collect(),
            None => vec![index],
        };
        // The largest pruned layer's (they are pruned one at a time): Gram matrices, and one
        // dense D×D edge kernel and its eigenvectors per worker.
        memory += layers
            .iter()
            .map(|&l| {
                let (d, h) = (sizes[l] as f64, sizes[l + 1] as f64);
                8.0 * (d * d + 2.0 * h * h) + workers * 3.0 * 8.0 * d * d
            })
            .fold(0.0, f64::max);
        let calibrate = |l: usize| {
            let (d, h) = (sizes[l] as f64, sizes[l + 1] as f64);
            calibration_samples * (d * d + h * h) * 2.0 / DENSE_FLOPS
        };
        match &prune.whole {
            None => {
                let (d, h) = (shape.inputs as f64, shape.hidden as f64);
                memory += sweep.masks as f64 * budgets.len() as f64 * h * d * 8.0;
                let dpp_edge = if sweep.methods.contains(&Method::DppEdge) {
                    h * dpp_edge_unit_seconds(
                        shape.inputs,
                        budgets.iter().map(|b| b.edges),
                        sweep.masks,
                    )
                } else {
                    0.0
                };
                let masks: usize = sweep.methods.iter().map(|&m| sweep.count(m)).sum();
                let evaluations = (masks * budgets.len() * sweep.reweight.len()) as f64;
                seconds += calibrate(index) + dpp_edge + evaluations * evaluate;
            }
            Some(whole) => {
                // Every pruned network calibrates each layer on its pruned prefix (and draws a
                // DPP edge mask from each unit's own kernel), then may be fine-tuned.
                let finetune = whole.finetune.as_ref().map_or(0.0, |f| {
                    f.finetune_epochs as f64 * data.n_train as f64 * params * 6.0 / DENSE_FLOPS
                        + evaluate
                });
                let fractions: Vec<f64> = match &sweep.budget {
                    BudgetSpec::Fractions(f) => f.clone(),
                    _ => budgets.iter().map(|b| b.fraction).collect(),
                };
                for &method in &sweep.methods {
                    for &keep in &fractions {
                        let per_layer: f64 = layers
                            .iter()
                            .map(|&l| {
                                let (d, h) = (sizes[l], sizes[l + 1] as f64);
                                let edges = ((keep * d as f64).round() as usize).clamp(1, d);
                                let dpp = if method == Method::DppEdge {
                                    h * dpp_edge_unit_seconds(d, std::iter::once(edges), 1)
                                } else {
                                    0.0
                                };
                                calibrate(l) + dpp
                            })
                            .sum();
                        let networks = (sweep.count(method) * sweep.reweight.len()) as f64;
                        seconds += networks * (per_layer + evaluate + finetune);
                    }
                }
            }
        }
    }
    Ok(Cost { memory_bytes: memory, seconds })
}

/// Flops per second of an MLP's dense algebra (training, calibration, evaluation) on one core,
/// counting 6 flops per weight and training sample: an epoch of the 784-500-500-10 MLP at batch
/// 100 takes 3.1 s on one core of a 2-vCPU Xeon (7.6e10 flop/s, `prunelab bench mlp --threads
/// 1`); taken at 40% of that for smaller batches and CPUs without AVX-512.
const DENSE_FLOPS: f64 = 3e10;

/// Flops per second of a D×D eigendecomposition (LAPACK's divide and conquer in libtorch, about
/// 9D³ flops) on one core: 5.3–6.6 s for D = 3,072 on a 2-vCPU Xeon (`prunelab bench dpp --n
/// 3072`).
const EIGH_FLOPS: f64 = 4e10;

/// Flops per second of k-DPP sampling on one core, counting 2D·m² flops per sample (m = min(k,
/// D − k)): 0.45–0.55 s per sample over fig3-cifar's nine budgets on the same machine
/// (`prunelab bench dpp-edge`).
const SAMPLE_FLOPS: f64 = 1e10;

/// Seconds of DPP edge for one unit with `d` inputs on one core: its D×D kernel's
/// eigendecomposition and `masks` k-DPP samples of each size in `edges` (samples with k > d/2
/// draw the d − k left-out inputs).
fn dpp_edge_unit_seconds(d: usize, edges: impl Iterator<Item = usize>, masks: usize) -> f64 {
    let d = d as f64;
    let samples: f64 = edges
        .map(|k| {
            let m = (k as f64).min(d - k as f64);
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
        use std::iter::once;
        let eig = 9.0 * 1000f64.powi(3) / EIGH_FLOPS;
        assert_eq!(dpp_edge_unit_seconds(1000, std::iter::empty(), 3), eig);
        // k = 900 costs what k = 100 does (the 100 left-out inputs are drawn).
        let (a, b) =
            (dpp_edge_unit_seconds(1000, once(100), 3), dpp_edge_unit_seconds(1000, once(900), 3));
        assert_eq!(a, b);
        let two_samples = 2.0 * 2.0 * 1000.0 * 100.0 * 100.0 / SAMPLE_FLOPS;
        assert!((dpp_edge_unit_seconds(1000, once(100), 2) - eig - two_samples).abs() < 1e-12);
        // fig3-cifar's layer: the measured 20 s or so per unit on one core, within a factor 2.
        let shape = LayerShape { inputs: 3072, hidden: 1000, fan_out: 1000 };
        let fractions = (1..=9).map(|i| f64::from(i) / 10.0).collect();
        let budgets = budget::resolve(&budget::BudgetSpec::Fractions(fractions), shape).unwrap();
        let unit = dpp_edge_unit_seconds(3072, budgets.iter().map(|b| b.edges), 3);
        assert!((10.0..40.0).contains(&unit), "{unit} s per unit");
    }

    #[test]
    fn whole_model_pruning_counts_each_network_its_layers_and_fine_tuning() {
        use crate::data::dataset_dir::Format;
        use crate::data::images::{NamedNormalize, Normalize};
        use crate::experiment::plan::{FinetuneRun, HiddenLayer, LayerPrune, WholePrune};
        use crate::prune::sweep::PruneSweep;
        use crate::prune::whole::Allocation;
        let data = DatasetInfo {
            format: Format::Idx,
            dim: 784,
            classes: 10,
            train_available: 60_000,
            test_available: 10_000,
            n_train: 60_000,
            n_test: 10_000,
        };
        let sweep = PruneSweep {
            methods: vec![Method::RandomEdge, Method::ImportanceEdge],
            budget: BudgetSpec::Fractions(vec![0.3, 0.6]),
            reweight: vec![false],
            masks: 3,
            options: Default::default(),
        };
        let prune = |whole: Option<WholePrune>| LayerPrune {
            sweep: sweep.clone(),
            layer: HiddenLayer { index: 0 },
            include_bias: false,
            calibration_samples: None,
            whole: whole.map(Box::new),
        };
        let run = |prune| MlpRun {
            data: "d".into(),
            data_dir: "d".into(),
            normalize: Normalize::Named(NamedNormalize::Auto),
            hidden: vec![500, 500],
            activation: crate::model::mlp::Activation::Sigmoid,
            epochs: 1,
            batch_size: 100,
            lr: 0.1,
            momentum: 0.9,
            shuffle: true,
            train_samples: None,
            test_samples: None,
            prune: Some(prune),
        };
        let seconds = |whole| mlp(&run(prune(whole)), &data).unwrap().seconds;
        let whole = |layers: &[usize], finetune| WholePrune {
            layers: layers.iter().map(|&index| HiddenLayer { index }).collect(),
            allocation: Allocation::Uniform,
            finetune,
        };
        let one_layer = seconds(None);
        let w1 = seconds(Some(whole(&[0], None)));
        let both = seconds(Some(whole(&[0, 1], None)));
        let epoch = FinetuneRun {
            finetune_epochs: 1,
            finetune_lr: 0.1,
            finetune_momentum: 0.9,
            finetune_batch_size: 100,
        };
        let tuned = seconds(Some(whole(&[0, 1], Some(epoch))));
        // Calibrated once for a single-layer sweep, once per pruned network (4 masks × 2
        // fractions) for whole-model pruning; a second layer adds its calibration; each of the
        // 8 networks fine-tuned for an epoch costs about a training epoch.
        let train_epoch = mlp(&MlpRun { prune: None, ..run(prune(None)) }, &data).unwrap().seconds;
        let (one_layer, w1, both) = (one_layer - train_epoch, w1 - train_epoch, both - train_epoch);
        assert!(w1 > one_layer * 3.0, "{w1} vs {one_layer}");
        assert!(both > w1 * 1.2, "{both} vs {w1}");
        assert!((tuned - train_epoch - both - 8.0 * train_epoch).abs() < 0.2 * 8.0 * train_epoch);
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
