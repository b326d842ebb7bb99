//! The plan: an experiment's sweep axes multiplied out into concrete runs, each with a stable id
//! derived from its resolved settings (the same settings give the same id on any machine). All
//! rules that tie several settings together are checked here, before anything runs.
use crate::config::{EngineChoice, Experiment, MlpTask, Prune, Task};
use crate::data::images::Normalize;
use crate::model::mlp::Activation;
use crate::prune;
use crate::prune::budget::{self, Budget};
use anyhow::{bail, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

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
}

/// What a run does, with every setting resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTask {
    TeacherStudent(TeacherStudentRun),
    Mlp(MlpRun),
}

impl RunTask {
    /// The `task` column of results.csv.
    pub fn kind(&self) -> &'static str {
        match self {
            RunTask::TeacherStudent(_) => "teacher_student",
            RunTask::Mlp(_) => "mlp",
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
    /// How to train; not part of the id (it changes speed, not the mathematics).
    pub engine: EngineChoice,
    /// How to prune the trained network, if at all.
    pub prune: Option<Prune>,
    /// The values of the settings that vary across the plan (seeds aside), e.g. `noise_std=0.25`:
    /// the `settings` column of results.csv, for grouping in plots.
    pub settings: String,
}

/// The budget points of `prune` for a layer of `hidden` units with `inputs` inputs each whose
/// outputs feed `fan_out` weights each.
pub fn budgets(prune: &Prune, inputs: usize, hidden: usize, fan_out: usize) -> Result<Vec<Budget>> {
    let to_usize = |v: &Vec<i64>| v.iter().map(|&x| x as usize).collect::<Vec<_>>();
    match (&prune.budget.nodes, &prune.budget.edges, &prune.budget.fractions) {
        (Some(nodes), _, _) => budget::from_nodes(&to_usize(nodes), inputs, hidden, fan_out),
        (None, Some(edges), _) => budget::from_edges(&to_usize(edges), inputs, hidden, fan_out),
        (None, None, Some(fractions)) => {
            prune::mlp::budgets_from_fractions(fractions, inputs, hidden, fan_out)
        }
        (None, None, None) => Ok(Vec::new()),
    }
}

impl Run {
    /// The teacher-student run's budget points (empty without pruning), already checked by `plan`.
    pub fn budgets(&self) -> Result<Vec<Budget>> {
        match (&self.prune, &self.task) {
            (Some(prune), RunTask::TeacherStudent(ts)) => {
                budgets(prune, ts.input_dim, ts.student_hidden, 1)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// All runs of an experiment, in a fixed order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<Run>,
}

#[derive(Serialize)]
struct IdSource<'a> {
    seed: u64,
    task: &'a RunTask,
    #[serde(skip_serializing_if = "Option::is_none")]
    prune: Option<&'a Prune>,
}

fn run_id(seed: u64, task: &RunTask, prune: Option<&Prune>) -> String {
    let json =
        serde_json::to_string(&IdSource { seed, task, prune }).expect("run settings serialise");
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Expands `experiment` into its runs and checks the rules between settings.
pub fn plan(experiment: &Experiment) -> Result<Plan> {
    if let Some(mlp) = &experiment.task.mlp {
        return plan_mlp(experiment, mlp);
    }
    let Task { teacher_student: Some(ts), .. } = &experiment.task else {
        bail!("task: give exactly one task section, `teacher_student` or `mlp`");
    };
    let mut tasks = vec![TeacherStudentRun::default()];
    tasks = expand(tasks, ts.input_dim.values(), |t, v| t.input_dim = v as usize);
    tasks = expand(tasks, ts.teacher_hidden.values(), |t, v| t.teacher_hidden = v as usize);
    tasks = expand(tasks, ts.student_hidden.values(), |t, v| t.student_hidden = v as usize);
    tasks = expand(tasks, ts.v_star.values(), |t, v| t.v_star = v);
    tasks = expand(tasks, ts.noise_std.values(), |t, v| t.noise_std = v);
    tasks = expand(tasks, ts.train_steps.values(), |t, v| t.train_steps = v as u64);
    tasks = expand(tasks, ts.test_samples.values(), |t, v| t.test_samples = v as usize);
    tasks = expand(tasks, ts.lr.values(), |t, v| t.lr = v);

    let mut runs = Vec::new();
    for task in tasks {
        let (k, m) = (task.student_hidden, task.teacher_hidden);
        if k < m || k % m != 0 {
            bail!(
                "task.teacher_student: student_hidden K = {k} must be a multiple of teacher_hidden M = {m} \
                 and at least as large"
            );
        }
        let task = RunTask::TeacherStudent(task);
        for seed in experiment.seeds.values() {
            let prune = experiment.prune.clone();
            let id = run_id(seed, &task, prune.as_ref());
            let run = Run {
                id,
                seed,
                task: task.clone(),
                engine: ts.engine,
                prune,
                settings: String::new(),
            };
            run.budgets()?;
            runs.push(run);
        }
    }
    finish(experiment, runs)
}

/// Expands an MLP experiment; node budgets are checked against the pruned layer's width here,
/// edge budgets (which need the data's input size) when the run starts.
fn plan_mlp(experiment: &Experiment, mlp: &MlpTask) -> Result<Plan> {
    let template = MlpRun {
        data: mlp.data.clone(),
        data_dir: mlp.data_dir.clone(),
        normalize: mlp.normalize.clone(),
        hidden: mlp.hidden.iter().map(|&h| h as usize).collect(),
        activation: mlp.activation,
        shuffle: mlp.shuffle,
        train_samples: mlp.train_samples.map(|n| n as usize),
        test_samples: mlp.test_samples.map(|n| n as usize),
        ..MlpRun::default()
    };
    let mut tasks = vec![template];
    tasks = expand(tasks, mlp.epochs.values(), |t, v| t.epochs = v as usize);
    tasks = expand(tasks, mlp.batch_size.values(), |t, v| t.batch_size = v as usize);
    tasks = expand(tasks, mlp.lr.values(), |t, v| t.lr = v);
    tasks = expand(tasks, mlp.momentum.values(), |t, v| t.momentum = v);
    if let Some(prune) = &experiment.prune {
        let layer = prune.layer_index()?;
        if layer >= mlp.hidden.len() {
            bail!(
                "prune.layer: {} is not a hidden layer of an MLP with {} hidden layer(s) (w1..w{})",
                prune.layer,
                mlp.hidden.len(),
                mlp.hidden.len()
            );
        }
        if let Some(nodes) = &prune.budget.nodes {
            let width = mlp.hidden[layer];
            if let Some(bad) = nodes.iter().find(|&&n| n > width) {
                bail!(
                    "prune.budget.nodes: {bad} is outside 1..={width} (layer {} has {width} units)",
                    prune.layer
                );
            }
        }
    }
    let mut runs = Vec::new();
    for task in tasks {
        let task = RunTask::Mlp(task);
        for seed in experiment.seeds.values() {
            let prune = experiment.prune.clone();
            let id = run_id(seed, &task, prune.as_ref());
            runs.push(Run {
                id,
                seed,
                task: task.clone(),
                engine: EngineChoice::Auto,
                prune,
                settings: String::new(),
            });
        }
    }
    finish(experiment, runs)
}

/// Labels the runs' varying settings and refuses duplicate runs.
fn finish(experiment: &Experiment, mut runs: Vec<Run>) -> Result<Plan> {
    label_varying_settings(&mut runs);
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "the plan has two identical runs (id {}): a sweep axis lists the same value twice",
            pair[0]
        );
    }
    Ok(Plan { experiment: experiment.name.clone(), runs })
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

/// Sets each run's `settings` to the task settings that differ between runs, as `key=value;…`.
fn label_varying_settings(runs: &mut [Run]) {
    let flat = |run: &Run| -> Vec<(String, String)> {
        let value = serde_json::to_value(&run.task).unwrap_or_default();
        let fields =
            value.as_object().and_then(|o| o.values().next()).and_then(|v| v.as_object()).cloned();
        fields.unwrap_or_default().into_iter().map(|(k, v)| (k, v.to_string())).collect()
    };
    let all: Vec<Vec<(String, String)>> = runs.iter().map(flat).collect();
    let Some(first) = all.first() else { return };
    let varying: Vec<usize> =
        (0..first.len()).filter(|&i| all.iter().any(|f| f.get(i) != first.get(i))).collect();
    for (run, fields) in runs.iter_mut().zip(&all) {
        run.settings = varying
            .iter()
            .filter_map(|&i| fields.get(i))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";");
    }
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
