//! The plan: an experiment's sweep axes multiplied out into concrete, typed runs, each with a
//! stable id derived from its resolved settings (the same settings give the same id on any
//! machine). The YAML's values become task-specific types here, once: the pruned layer is parsed,
//! budgets are checked against the layer, and every rule that ties several settings together is
//! checked before anything runs.
mod whole;
use super::trajectory;
use crate::config::{self, EngineChoice, Experiment, MlpTask, TeacherStudent};
use crate::data::images::Normalize;
use crate::model::mlp::Activation;
use crate::prune::budget::{self, BudgetSpec, LayerShape};
use crate::prune::layer::Options;
use crate::prune::sweep::PruneSweep;
use anyhow::{bail, Result};
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};
use whole::whole_prune;
pub use whole::{FinetuneRun, WholePrune};

/// One teacher-student run's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TeacherStudentRun {
    pub input_dim: usize,
    pub teacher_hidden: usize,
    pub student_hidden: usize,
    pub v_star: f64,
    pub noise_std: f64,
    pub train_steps: u64,
    pub test_samples: usize,
    pub lr: f64,
    /// Rescale the teacher's rows so T_nn = 1. Written into the id and the settings only when
    /// true, so experiments without the key keep their run ids and columns.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub normalize_teacher: bool,
    /// How to train; not part of the id (it changes speed, not the mathematics).
    #[serde(skip)]
    pub engine: EngineChoice,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<StudentPrune>,
    /// The training steps at which the trajectory is recorded (empty: none); not part of the id
    /// (the trained student is the same with or without checkpoints).
    #[serde(skip)]
    pub checkpoints: Vec<u64>,
}

/// How a teacher-student run prunes its student.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StudentPrune {
    #[serde(flatten)]
    pub sweep: PruneSweep,
    /// Rescale the student's rows to norm √N first.
    pub normalize_rows: bool,
}

/// One MLP run's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MlpRun {
    /// The dataset folder as the config wrote it (part of the id; the same on every machine).
    pub data: String,
    /// The folder resolved against the config file.
    #[serde(skip)]
    pub data_dir: std::path::PathBuf,
    pub normalize: Normalize,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub shuffle: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<LayerPrune>,
}

/// How an MLP run prunes one of its hidden layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerPrune {
    #[serde(flatten)]
    pub sweep: PruneSweep,
    pub layer: HiddenLayer,
    /// DIVNET regresses act(XWᵀ + b) instead of the reference's bias-free act(XWᵀ).
    pub include_bias: bool,
    /// Training samples for the statistics (None: all).
    pub calibration_samples: Option<usize>,
    /// Several layers under one budget, and fine-tuning (`prune.layers`, `.allocation`,
    /// `.finetune`); None: `layer` alone by the sweep, as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whole: Option<Box<WholePrune>>,
}

/// A hidden layer of an MLP, `w1` (the first linear layer) … `w{L−1}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HiddenLayer {
    /// 0-based index of the linear layer.
    pub index: usize,
}

impl HiddenLayer {
    /// Parses `wN` for a network with `hidden` hidden layers.
    pub fn parse(name: &str, hidden: usize) -> Result<Self> {
        match name.strip_prefix('w').and_then(|i| i.parse::<usize>().ok()) {
            Some(i) if (1..=hidden).contains(&i) => Ok(Self { index: i - 1 }),
            Some(_) => bail!(
                "prune.layer: {name} is not a hidden layer of an MLP with {hidden} hidden layer(s) (w1..w{hidden})"
            ),
            None => bail!("prune.layer: {name:?} is not a layer name; use w1 (the first layer), w2, …"),
        }
    }

    /// `w1`, `w2`, …
    pub fn name(&self) -> String {
        format!("w{}", self.index + 1)
    }
}

impl Serialize for HiddenLayer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// What a run does, with every setting resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTask {
    TeacherStudent(TeacherStudentRun),
    Mlp(MlpRun),
}

/// The `task` column of results.csv.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    #[default]
    TeacherStudent,
    Mlp,
}

impl RunTask {
    pub fn kind(&self) -> TaskKind {
        match self {
            RunTask::TeacherStudent(_) => TaskKind::TeacherStudent,
            RunTask::Mlp(_) => TaskKind::Mlp,
        }
    }

    /// The pruning methods of the run, if it prunes.
    pub fn prune_sweep(&self) -> Option<&PruneSweep> {
        match self {
            RunTask::TeacherStudent(ts) => ts.prune.as_ref().map(|p| &p.sweep),
            RunTask::Mlp(mlp) => mlp.prune.as_ref().map(|p| &p.sweep),
        }
    }
}

/// One run of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// 12 hex digits of SHA-256 over the run's settings and seed.
    pub id: String,
    pub seed: u64,
    pub task: RunTask,
    /// The values of the settings that vary across the plan (seeds aside), e.g. `noise_std=0.25`:
    /// the `settings` column of results.csv.
    pub settings: String,
    /// The value of each of the plan's setting columns ([`Plan::settings`]), "" where unset.
    pub setting_values: Vec<String>,
}

/// All runs of an experiment, in a fixed order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<Run>,
    /// The setting columns of results.csv: every resolved setting of the runs' tasks.
    pub settings: Vec<String>,
}

#[derive(Serialize)]
struct IdSource<'a> {
    seed: u64,
    task: &'a RunTask,
}

fn run_id(seed: u64, task: &RunTask) -> String {
    let json = serde_json::to_string(&IdSource { seed, task }).expect("run settings serialise");
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Expands `experiment` into its runs and checks the rules between settings.
pub fn plan(experiment: &Experiment) -> Result<Plan> {
    let tasks = match (&experiment.task.teacher_student, &experiment.task.mlp) {
        (Some(ts), None) => teacher_student_runs(experiment, ts)?,
        (None, Some(mlp)) => mlp_runs(experiment, mlp)?,
        _ => bail!("task: give exactly one task section, `teacher_student` or `mlp`"),
    };
    let mut runs = Vec::new();
    for task in tasks {
        for seed in experiment.seeds.values() {
            runs.push(Run {
                id: run_id(seed, &task),
                seed,
                task: task.clone(),
                settings: String::new(),
                setting_values: Vec::new(),
            });
        }
    }
    finish(experiment, runs)
}

/// The sweep of `experiment.prune` with the given method options.
fn prune_sweep(prune: &config::Prune, options: Options) -> PruneSweep {
    let to_usize = |v: &Vec<i64>| v.iter().map(|&x| x as usize).collect::<Vec<_>>();
    let budget = match (&prune.budget.nodes, &prune.budget.edges, &prune.budget.fractions) {
        (Some(nodes), _, _) => BudgetSpec::Nodes(to_usize(nodes)),
        (None, Some(edges), _) => BudgetSpec::Edges(to_usize(edges)),
        (None, None, fractions) => BudgetSpec::Fractions(fractions.clone().unwrap_or_default()),
    };
    PruneSweep {
        methods: prune.methods.clone(),
        budget,
        reweight: prune.reweight.values(),
        masks: prune.masks as usize,
        options: Options {
            random: prune.random,
            importance: prune.importance,
            reweight_variant: prune.reweight_variant,
            ..options
        },
    }
}

fn teacher_student_runs(experiment: &Experiment, ts: &TeacherStudent) -> Result<Vec<RunTask>> {
    let prune = experiment.prune.as_ref().map(|p| StudentPrune {
        sweep: prune_sweep(p, Options::default()),
        normalize_rows: p.normalize_rows,
    });
    let template = TeacherStudentRun {
        engine: ts.engine,
        normalize_teacher: ts.normalize_teacher,
        prune,
        ..Default::default()
    };
    let mut tasks = vec![template];
    tasks = expand(tasks, ts.input_dim.values(), |t, v| t.input_dim = v as usize);
    tasks = expand(tasks, ts.teacher_hidden.values(), |t, v| t.teacher_hidden = v as usize);
    tasks = expand(tasks, ts.student_hidden.values(), |t, v| t.student_hidden = v as usize);
    tasks = expand(tasks, ts.v_star.values(), |t, v| t.v_star = v);
    tasks = expand(tasks, ts.noise_std.values(), |t, v| t.noise_std = v);
    if let Some(steps) = &ts.train_steps {
        tasks = expand(tasks, steps.values(), |t, v| t.train_steps = v as u64);
    }
    if let Some(alpha) = &ts.train_alpha {
        let steps = |t: &TeacherStudentRun, a: f64| (a * t.input_dim as f64).round() as u64;
        tasks = expand(tasks, alpha.values(), |t, a| t.train_steps = steps(t, a));
    }
    tasks = expand(tasks, ts.test_samples.values(), |t, v| t.test_samples = v as usize);
    tasks = expand(tasks, ts.lr.values(), |t, v| t.lr = v);
    for task in &tasks {
        let (k, m) = (task.student_hidden, task.teacher_hidden);
        if k < m || k % m != 0 {
            bail!(
                "task.teacher_student: student_hidden K = {k} must be a multiple of teacher_hidden M = {m} \
                 and at least as large"
            );
        }
        if let Some(prune) = &task.prune {
            let shape = LayerShape { inputs: task.input_dim, hidden: k, fan_out: 1 };
            budget::resolve(&prune.sweep.budget, shape)?;
        }
    }
    if let Some(spec) = &ts.trajectory {
        for task in &mut tasks {
            task.checkpoints = trajectory::checkpoints(spec, task.input_dim, task.train_steps)?;
        }
    }
    Ok(tasks.into_iter().map(RunTask::TeacherStudent).collect())
}

/// Expands an MLP experiment; node budgets are checked against the pruned layer's width here,
/// edge budgets (which need the data's input size) when the run starts.
fn mlp_runs(experiment: &Experiment, mlp: &MlpTask) -> Result<Vec<RunTask>> {
    let prune = experiment.prune.as_ref().map(|p| layer_prune(p, &mlp.hidden)).transpose()?;
    let template = MlpRun {
        data: mlp.data.clone(),
        data_dir: mlp.data_dir.clone(),
        normalize: mlp.normalize.clone(),
        hidden: mlp.hidden.iter().map(|&h| h as usize).collect(),
        activation: mlp.activation,
        shuffle: mlp.shuffle,
        train_samples: mlp.train_samples.map(|n| n as usize),
        test_samples: mlp.test_samples.map(|n| n as usize),
        prune,
        ..MlpRun::default()
    };
    let mut tasks = vec![template];
    tasks = expand(tasks, mlp.epochs.values(), |t, v| t.epochs = v as usize);
    tasks = expand(tasks, mlp.batch_size.values(), |t, v| t.batch_size = v as usize);
    tasks = expand(tasks, mlp.lr.values(), |t, v| t.lr = v);
    tasks = expand(tasks, mlp.momentum.values(), |t, v| t.momentum = v);
    Ok(tasks.into_iter().map(RunTask::Mlp).collect())
}

fn layer_prune(prune: &config::Prune, hidden: &[i64]) -> Result<LayerPrune> {
    let layer = HiddenLayer::parse(&prune.layer, hidden.len())?;
    if let Some(nodes) = &prune.budget.nodes {
        let width = hidden[layer.index];
        if let Some(bad) = nodes.iter().find(|&&n| n > width) {
            bail!(
                "prune.budget.nodes: {bad} is outside 1..={width} (layer {} has {width} units)",
                prune.layer
            );
        }
    }
    let options = Options {
        node_kernel: prune.node_kernel,
        edge_kernel: prune.edge_kernel,
        node_removal: prune.node_removal,
        ..Options::default()
    };
    Ok(LayerPrune {
        sweep: prune_sweep(prune, options),
        whole: whole_prune(prune, &layer, hidden.len())?,
        layer,
        include_bias: prune.include_bias,
        calibration_samples: prune.calibration_samples.map(|n| n as usize),
    })
}

/// Labels the runs' settings and refuses duplicate runs.
fn finish(experiment: &Experiment, mut runs: Vec<Run>) -> Result<Plan> {
    let settings = label_settings(&mut runs);
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "the plan has two identical runs (id {}): a sweep axis lists the same value twice",
            pair[0]
        );
    }
    Ok(Plan { experiment: experiment.name.clone(), runs, settings })
}

/// Every run of `runs` once for each of `values`, with `set` applied (the product of one more axis).
fn expand<R: Clone, T: Clone>(runs: Vec<R>, values: Vec<T>, set: impl Fn(&mut R, T)) -> Vec<R> {
    runs.into_iter()
        .flat_map(|run| {
            values
                .iter()
                .map(|v| {
                    let mut run = run.clone();
                    set(&mut run, v.clone());
                    run
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Keys of a run's settings that are columns of their own already (`method`, `reweight`, the
/// budget, `layer`) and so are not setting columns.
const ROW_COLUMNS: [&str; 5] = ["methods", "budget", "reweight", "layer", "layers"];

/// A run's settings as (column, value) pairs: the task's fields and its prune settings, nested
/// values flattened to their leaf names, lists and objects as compact JSON.
fn flat_settings(run: &Run) -> Vec<(String, String)> {
    fn flatten(value: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for (key, value) in value.as_object().into_iter().flatten() {
            match value {
                _ if ROW_COLUMNS.contains(&key.as_str()) => {}
                serde_json::Value::Object(_)
                    if matches!(key.as_str(), "prune" | "options" | "whole" | "finetune") =>
                {
                    flatten(value, out)
                }
                serde_json::Value::String(text) => out.push((key.clone(), text.clone())),
                serde_json::Value::Null => out.push((key.clone(), String::new())),
                _ => out.push((key.clone(), value.to_string())),
            }
        }
    }
    let value = serde_json::to_value(&run.task).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(task) = value.as_object().and_then(|o| o.values().next()) {
        flatten(task, &mut out);
    }
    out
}

/// Sets each run's setting values and its `settings` label (the settings that differ between
/// runs, `key=value;…`); returns the setting columns.
fn label_settings(runs: &mut [Run]) -> Vec<String> {
    let all: Vec<Vec<(String, String)>> = runs.iter().map(flat_settings).collect();
    let mut columns: Vec<String> = Vec::new();
    for (key, _) in all.iter().flatten() {
        if !columns.contains(key) {
            columns.push(key.clone());
        }
    }
    let value = |fields: &[(String, String)], key: &str| {
        fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let varying: Vec<&String> =
        columns.iter().filter(|c| all.iter().any(|f| value(f, c) != value(&all[0], c))).collect();
    for (run, fields) in runs.iter_mut().zip(&all) {
        run.setting_values = columns.iter().map(|c| value(fields, c)).collect();
        run.settings = varying
            .iter()
            .map(|c| format!("{c}={}", value(fields, c)))
            .collect::<Vec<_>>()
            .join(";");
    }
    columns
}

/// A deterministic slice of a plan for one process of a job array: shard `index` of `count`
/// (1-based, as Slurm numbers array tasks) holds every run whose 0-based plan position `p` has
/// `p % count == index − 1`, so the shards are disjoint and together hold the whole plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with 1 ≤ I ≤ N.
    pub fn parse(text: &str) -> Result<Self> {
        let parsed = text.split_once('/').and_then(|(i, n)| {
            Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?))
        });
        match parsed {
            Some((index, count)) if index >= 1 && index <= count => Ok(Self { index, count }),
            Some((index, count)) => bail!(
                "--shard {text}: the shard number must be between 1 and the shard count ({index} is not in 1..={count})"
            ),
            None => bail!("--shard {text}: expected I/N, e.g. --shard 2/8 for the second of 8 shards"),
        }
    }

    /// Whether the run at 0-based plan position `position` belongs to this shard.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }

    /// The shard's folder name, `I-of-N`.
    pub fn folder_name(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_plan() {
        let shards: Vec<Shard> =
            (1..=3).map(|i| Shard::parse(&format!("{i}/3")).unwrap()).collect();
        for position in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.contains(position)).count(), 1);
        }
        assert!(shards[0].contains(0) && shards[0].contains(3) && shards[2].contains(8));
        assert_eq!(shards[1].folder_name(), "2-of-3");
        assert_eq!(shards[1].to_string(), "2/3");
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", ""] {
            let err = Shard::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("--shard {bad}:")), "{err}");
        }
    }
}
