//! Trajectory files: a teacher-student student along training, `trajectories/<run_id>.csv` (a
//! simulated run, written by the task) or the ODE's (written by `prunelab theory ode`), in one
//! tidy format so that both plot together.
//!
//! One row per checkpoint × (the unpruned student, method `none`; each pruning method × budget
//! × reweight choice with an expected error, see `theory::methods`). Columns: `experiment,
//! run_id, seed, status, source` (`simulation` or `ode`), `step` (empty for the ODE), `alpha`
//! (steps / N), `method, reweight, keep_nodes, keep_edges, keep_fraction`, `eps` (closed-form ε
//! of the unpruned student, or a method's exact expected ε), `recent_loss` (simulation, unpruned
//! rows: mean ½Δ² over the last ≤ 1,024 training samples before the checkpoint), then, on the
//! unpruned rows, `Q_i_j` (i ≤ j), `R_i_n` and `v_i` (units numbered from 0), then the run's
//! setting columns as in results.csv.
use super::plan::{Run, TeacherStudentRun};
use crate::config::TrajectorySpec;
use crate::prune::budget::{self, LayerShape};
use crate::theory::expected::{Network, Student};
use crate::theory::methods::{self, MethodError, Subject};
use crate::theory::ode::Ode;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Which side of the comparison a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Simulation,
    Ode,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Simulation => "simulation",
            Source::Ode => "ode",
        }
    }
}

/// The student at one checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Training steps done (None for the ODE).
    pub step: Option<u64>,
    pub alpha: f64,
    /// Closed-form ε of the unpruned student.
    pub eps: f64,
    pub recent_loss: Option<f64>,
    /// Q [K×K], R [K×M], v [K], row-major.
    pub q: Vec<f64>,
    pub r: Vec<f64>,
    pub v: Vec<f64>,
    pub pruned: Vec<MethodError>,
}

/// The fixed columns before the order parameters.
const FIXED: [&str; 14] = [
    "experiment",
    "run_id",
    "seed",
    "status",
    "source",
    "step",
    "alpha",
    "method",
    "reweight",
    "keep_nodes",
    "keep_edges",
    "keep_fraction",
    "eps",
    "recent_loss",
];

/// Whether `column` is one of a trajectory file's own columns (not a setting).
pub fn is_column(column: &str) -> bool {
    FIXED.contains(&column) || is_order_parameter(column)
}

/// `Q_i_j`, `R_i_n`, `v_i`.
fn is_order_parameter(column: &str) -> bool {
    let numbered = |rest: &str, parts: usize| {
        let pieces: Vec<&str> = rest.split('_').collect();
        pieces.len() == parts
            && pieces.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    match column.split_once('_') {
        Some(("Q" | "R", rest)) => numbered(rest, 2),
        Some(("v", rest)) => numbered(rest, 1),
        _ => false,
    }
}

/// The path of a run's trajectory in the experiment folder `dir`.
pub fn path(dir: &Path, run_id: &str) -> PathBuf {
    dir.join(super::names::TRAJECTORIES).join(format!("{run_id}.csv"))
}

/// The training steps of the checkpoints `spec` asks for, for N = `n` inputs and `train_steps`
/// steps: always 0 and the last step; `points` log-spaced α over the four decades below
/// α_max = train_steps / N, or the given α, each rounded to a whole step (at least 1).
pub fn checkpoints(spec: &TrajectorySpec, n: usize, train_steps: u64) -> Result<Vec<u64>> {
    let alpha_max = train_steps as f64 / n as f64;
    let alphas: Vec<f64> = match (&spec.points, &spec.alpha) {
        (Some(points), _) => log_spaced(alpha_max, *points as usize),
        (None, Some(alpha)) => {
            if let Some(bad) = alpha.iter().find(|&&a| a > alpha_max * (1.0 + 1e-12)) {
                bail!(
                    "task.teacher_student.trajectory.alpha: {bad} is beyond the end of training, α = train_steps / N = {alpha_max}"
                );
            }
            alpha.clone()
        }
        (None, None) => Vec::new(),
    };
    let mut steps: Vec<u64> = alphas
        .iter()
        .map(|a| ((a * n as f64).round() as u64).clamp(1, train_steps.max(1)))
        .chain([0, train_steps])
        .collect();
    steps.sort_unstable();
    steps.dedup();
    Ok(steps)
}

/// `points` α log-spaced from α_max·10⁻⁴ to α_max (just α_max for one point).
pub fn log_spaced(alpha_max: f64, points: usize) -> Vec<f64> {
    (1..=points)
        .map(|j| {
            if points == 1 {
                alpha_max
            } else {
                alpha_max * 10f64.powf(-4.0 * (points - j) as f64 / (points - 1) as f64)
            }
        })
        .collect()
}

/// The expected errors of the methods `ts.prune` configures (none without pruning) for a
/// student: `limit` gives its order parameters, `weights` (a simulated student) also its weights.
/// With `prune.normalize_rows` (the default) they are those of the row-normalised student, as the
/// task prunes it.
fn pruned(
    ts: &TeacherStudentRun,
    limit: &Network,
    weights: Option<&Student>,
) -> Result<Vec<MethodError>> {
    let Some(prune) = &ts.prune else {
        return Ok(Vec::new());
    };
    let shape = LayerShape { inputs: ts.input_dim, hidden: ts.student_hidden, fan_out: 1 };
    let budgets = budget::resolve(&prune.sweep.budget, shape)?;
    let sweep = &prune.sweep;
    let subject = match weights {
        Some(student) => Subject::Weights(student),
        None => Subject::Limit(limit),
    };
    methods::method_errors(subject, ts.input_dim, &sweep.methods, &budgets, &sweep.reweight)
}

/// A simulated student (`student` of `teacher`) after `step` steps.
pub fn simulated(
    ts: &TeacherStudentRun,
    student: &crate::model::two_layer::TwoLayer,
    teacher: &crate::model::two_layer::TwoLayer,
    step: u64,
    recent_loss: Option<f64>,
) -> Result<Checkpoint> {
    let s = Student::from_two_layer(student, teacher)?;
    let normalize = ts.prune.as_ref().is_some_and(|p| p.normalize_rows);
    let base = if normalize {
        Student::from_two_layer(&student.normalized_rows(), teacher)?
    } else {
        s.clone()
    };
    let net = &s.net;
    Ok(Checkpoint {
        step: Some(step),
        alpha: step as f64 / ts.input_dim as f64,
        eps: crate::theory::ge::generalisation_error(&net.op, &net.v, &net.v_star),
        recent_loss,
        pruned: pruned(ts, &base.net, Some(&base))?,
        q: net.op.q.clone(),
        r: net.op.r.clone(),
        v: net.v.clone(),
    })
}

/// The ODE's student at state `y`, time `alpha`.
pub fn ode(ts: &TeacherStudentRun, ode: &Ode, y: &[f64], alpha: f64) -> Result<Checkpoint> {
    let net = Network { op: ode.order_params(y), v: ode.v(y).to_vec(), v_star: ode.v_star.clone() };
    let normalize = ts.prune.as_ref().is_some_and(|p| p.normalize_rows);
    let base = if normalize {
        Network { op: methods::normalized_rows(&net.op), ..net.clone() }
    } else {
        net.clone()
    };
    Ok(Checkpoint {
        step: None,
        alpha,
        eps: ode.error(y),
        recent_loss: None,
        pruned: pruned(ts, &base, None)?,
        q: net.op.q,
        r: net.op.r,
        v: net.v,
    })
}

/// Who wrote a trajectory: the run and its experiment's setting columns.
pub struct Header<'a> {
    pub experiment: &'a str,
    pub run: &'a Run,
    /// The plan's setting columns, whose values are `run.setting_values`.
    pub settings: &'a [String],
    pub source: Source,
    /// K and M (for the order-parameter columns).
    pub k: usize,
    pub m: usize,
}

/// The CSV text of a trajectory.
pub fn csv(header: &Header, points: &[Checkpoint]) -> Result<String> {
    let (k, m) = (header.k, header.m);
    let mut columns: Vec<String> = FIXED.iter().map(|c| c.to_string()).collect();
    columns.extend((0..k).flat_map(|i| (i..k).map(move |j| format!("Q_{i}_{j}"))));
    columns.extend((0..k).flat_map(|i| (0..m).map(move |n| format!("R_{i}_{n}"))));
    columns.extend((0..k).map(|i| format!("v_{i}")));
    let order = columns.len() - FIXED.len();
    columns.extend(header.settings.iter().cloned());
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&columns)?;
    let run = header.run;
    let inputs = match &run.task {
        super::plan::RunTask::TeacherStudent(ts) => ts.input_dim,
        super::plan::RunTask::Mlp(_) => 0,
    };
    let num = |x: f64| format!("{x}");
    let opt = |x: Option<String>| x.unwrap_or_default();
    for p in points {
        let lead = [
            header.experiment.to_string(),
            run.id.clone(),
            run.seed.to_string(),
            "ok".into(),
            header.source.name().into(),
            opt(p.step.map(|s| s.to_string())),
            num(p.alpha),
        ];
        let mut unpruned: Vec<String> = lead.to_vec();
        unpruned.extend(["none".into(), String::new(), String::new(), String::new()]);
        unpruned.extend(["1".into(), num(p.eps), opt(p.recent_loss.map(num))]);
        unpruned.extend((0..k).flat_map(|i| (i..k).map(move |j| p.q[i * k + j])).map(num));
        unpruned.extend(p.r.iter().chain(&p.v).map(|&x| num(x)));
        unpruned.extend(run.setting_values.iter().cloned());
        out.write_record(&unpruned)?;
        for e in &p.pruned {
            let mut row: Vec<String> = lead.to_vec();
            let (nodes, edges) =
                if e.method.is_node() { (e.budget.nodes, inputs) } else { (k, e.budget.edges) };
            row.extend([e.method.name().into(), e.reweight.to_string()]);
            row.extend([nodes.to_string(), edges.to_string(), num(e.budget.fraction)]);
            row.extend([num(e.eps), String::new()]);
            row.extend(std::iter::repeat_n(String::new(), order));
            row.extend(run.setting_values.iter().cloned());
            out.write_record(&row)?;
        }
    }
    Ok(String::from_utf8(out.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_whole_steps_with_the_start_and_end() {
        let spec = TrajectorySpec { points: Some(5), alpha: None };
        // α_max = 2000 / 100 = 20: α = 0.002, 0.02, 0.2, 2, 20 → steps 0 (→ 1), 2, 20, 200, 2000.
        assert_eq!(checkpoints(&spec, 100, 2000).unwrap(), [0, 1, 2, 20, 200, 2000]);
        let spec = TrajectorySpec { points: None, alpha: Some(vec![0.5, 1.0, 1.0]) };
        assert_eq!(checkpoints(&spec, 100, 2000).unwrap(), [0, 50, 100, 2000]);
        let spec = TrajectorySpec { points: None, alpha: Some(vec![30.0]) };
        let err = checkpoints(&spec, 100, 2000).unwrap_err().to_string();
        assert!(err.contains("trajectory.alpha: 30 is beyond the end of training"), "{err}");
    }

    #[test]
    fn own_columns_are_not_settings() {
        for c in ["alpha", "eps", "Q_0_1", "R_2_0", "v_5", "source", "recent_loss"] {
            assert!(is_column(c), "{c}");
        }
        for c in ["noise_std", "Q_0", "v_a", "R_1_2_3", "lr"] {
            assert!(!is_column(c), "{c}");
        }
    }
}
