//! Experiment configuration: reading a YAML file into the schema (all YAML handling lives here, so
//! the YAML crate can be swapped in one place), refusing keys that do not apply to the task, and
//! validating every value before anything runs. Rules that tie several settings together are the
//! plan's (`experiment::plan`), which is also built before anything runs.
mod keys;
pub mod schema;

use crate::prune::dpp::kernel::KernelKind;
use anyhow::{bail, Context, Result};
pub use schema::*;
use std::path::Path;

/// Reads and validates an experiment file. Errors name the file and, for schema errors, the key
/// and its line.
pub fn load(path: &Path) -> Result<Experiment> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let mut experiment =
        parse(&text).with_context(|| format!("invalid config {}", path.display()))?;
    if let Some(mlp) = &mut experiment.task.mlp {
        let base = path.parent().unwrap_or(Path::new("."));
        mlp.data_dir = base.join(&mlp.data);
    }
    Ok(experiment)
}

/// Parses and validates an experiment from YAML text (a leading byte-order mark is ignored).
pub fn parse(text: &str) -> Result<Experiment> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let experiment: Experiment = serde_yaml::from_str(text).map_err(|e| {
        let message = e.to_string();
        match message.contains("duplicate field").then(|| duplicate_key(text)).flatten() {
            Some(better) => anyhow::anyhow!("{better}"),
            None => anyhow::anyhow!("{message}"),
        }
    })?;
    validate(&experiment)?;
    keys::check(text, &experiment)?;
    Ok(experiment)
}

/// The first key written twice in one block mapping, with both lines (serde_yaml names the line
/// of the mapping, not of the duplicate): `task.teacher_student.lr: written twice, at lines 10
/// and 11`.
fn duplicate_key(text: &str) -> Option<String> {
    /// A block mapping: its indent, its key path, and the keys seen in it with their lines.
    type Level = (usize, String, Vec<(String, usize)>);
    let mut levels: Vec<Level> = vec![(0, String::new(), Vec::new())];
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let Some((key, _)) = body.split_once(':') else { continue };
        if body.starts_with('#') || body.starts_with('-') || key.contains(char::is_whitespace) {
            continue;
        }
        while levels.len() > 1 && levels.last().is_some_and(|l| l.0 > indent) {
            levels.pop();
        }
        if levels.last().is_some_and(|l| l.0 < indent) {
            let parent =
                levels.last().and_then(|l| l.2.last()).map(|(k, _)| k.clone()).unwrap_or_default();
            let path = match &levels.last().expect("a level").1 {
                p if p.is_empty() => parent,
                p => format!("{p}.{parent}"),
            };
            levels.push((indent, path, Vec::new()));
        }
        let (_, path, seen) = levels.last_mut().expect("a level");
        if let Some((_, first)) = seen.iter().find(|(k, _)| k == key) {
            let full = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
            return Some(format!("{full}: written twice, at lines {first} and {number}"));
        }
        seen.push((key.to_string(), number));
    }
    None
}

/// The experiment as YAML, with every default filled in (written as `config.resolved.yaml`).
pub fn to_yaml(experiment: &Experiment) -> Result<String> {
    let mut value = serde_yaml::to_value(experiment)?;
    keys::strip_other_task(&mut value, experiment.task.mlp.is_some());
    Ok(serde_yaml::to_string(&value)?)
}

/// Checks each value on its own.
pub fn validate(experiment: &Experiment) -> Result<()> {
    let name = &experiment.name;
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        bail!("name: {name:?} must be a non-empty folder name of letters, digits, '-', '_' or '.'");
    }
    non_empty("seeds", &experiment.seeds)?;
    match &experiment.task {
        Task { teacher_student: None, mlp: None }
        | Task { teacher_student: Some(_), mlp: Some(_) } => {
            bail!("task: give exactly one task section, `teacher_student` or `mlp`")
        }
        Task { mlp: Some(mlp), .. } => validate_mlp(mlp)?,
        Task { teacher_student: Some(ts), .. } => validate_teacher_student(ts)?,
    }
    if let Some(prune) = &experiment.prune {
        validate_prune(prune)?;
    }
    Ok(())
}

fn validate_mlp(mlp: &MlpTask) -> Result<()> {
    let key = |k: &str| format!("task.mlp.{k}");
    if mlp.data.is_empty() {
        bail!("task.mlp.data: give the dataset folder");
    }
    mlp.normalize.check().context("task.mlp")?;
    if mlp.hidden.is_empty() {
        bail!("task.mlp.hidden: give at least one hidden layer width");
    }
    at_least(&key("hidden"), &Axis::Many(mlp.hidden.clone()), 1)?;
    at_least(&key("epochs"), &mlp.epochs, 1)?;
    at_least(&key("batch_size"), &mlp.batch_size, 1)?;
    check_f64(&key("lr"), &mlp.lr, |v| v.is_finite() && v > 0.0, "a finite number > 0")?;
    check_f64(&key("momentum"), &mlp.momentum, |v| (0.0..1.0).contains(&v), "in [0, 1)")?;
    for (k, v) in [("train_samples", mlp.train_samples), ("test_samples", mlp.test_samples)] {
        if let Some(v) = v {
            at_least(&key(k), &Axis::One(v), 1)?;
        }
    }
    Ok(())
}

fn validate_teacher_student(ts: &TeacherStudent) -> Result<()> {
    let key = |k: &str| format!("task.teacher_student.{k}");
    let non_negative = |v: f64| v.is_finite() && v >= 0.0;
    at_least(&key("input_dim"), &ts.input_dim, 1)?;
    at_least(&key("teacher_hidden"), &ts.teacher_hidden, 1)?;
    at_least(&key("student_hidden"), &ts.student_hidden, 1)?;
    match (&ts.train_steps, &ts.train_alpha) {
        (Some(steps), None) => at_least(&key("train_steps"), steps, 0)?,
        (None, Some(alpha)) => {
            check_f64(&key("train_alpha"), alpha, non_negative, "a finite number ≥ 0")?
        }
        _ => bail!(
            "task.teacher_student: give exactly one of train_steps (online SGD steps) and \
             train_alpha (steps per input, α = steps/N)"
        ),
    }
    at_least(&key("test_samples"), &ts.test_samples, 1)?;
    check_f64(&key("v_star"), &ts.v_star, |v| v.is_finite(), "a finite number")?;
    check_f64(&key("noise_std"), &ts.noise_std, non_negative, "a finite number ≥ 0")?;
    check_f64(&key("lr"), &ts.lr, |v| v.is_finite() && v > 0.0, "a finite number > 0")?;
    match &ts.trajectory {
        None => {}
        Some(TrajectorySpec { points: Some(p), alpha: None })
            if !(1..=MAX_TRAJECTORY_POINTS).contains(p) =>
        {
            bail!(
                "{}: {p} is not allowed; it must be 1 to {MAX_TRAJECTORY_POINTS}",
                key("trajectory.points")
            );
        }
        Some(TrajectorySpec { points: Some(_), alpha: None }) => {}
        Some(TrajectorySpec { points: None, alpha: Some(alpha) }) => {
            let ok = |a: f64| a.is_finite() && a > 0.0;
            if alpha.is_empty() || alpha.len() > MAX_TRAJECTORY_POINTS as usize {
                bail!("{}: give 1 to {MAX_TRAJECTORY_POINTS} values", key("trajectory.alpha"));
            }
            check_f64(&key("trajectory.alpha"), &Axis::Many(alpha.clone()), ok, "a number > 0")?;
        }
        Some(_) => bail!(
            "{}: give exactly one of `points` (log-spaced checkpoints) or `alpha` (a list of α = steps / N)",
            key("trajectory")
        ),
    }
    Ok(())
}

/// The most checkpoints a trajectory may have.
const MAX_TRAJECTORY_POINTS: i64 = 10_000;

fn validate_prune(prune: &Prune) -> Result<()> {
    if prune.methods.is_empty() {
        bail!(
            "prune.methods: the list is empty; give at least one of {}",
            crate::prune::Method::names()
        );
    }
    at_least("prune.masks", &Axis::One(prune.masks), 1)?;
    non_empty("prune.reweight", &prune.reweight)?;
    match (&prune.budget.nodes, &prune.budget.edges, &prune.budget.fractions) {
        (Some(nodes), None, None) => at_least("prune.budget.nodes", &Axis::Many(nodes.clone()), 1)?,
        (None, Some(edges), None) => at_least("prune.budget.edges", &Axis::Many(edges.clone()), 1)?,
        (None, None, Some(fractions)) => {
            let ok = |p: f64| p > 0.0 && p <= 1.0;
            check_f64("prune.budget.fractions", &Axis::Many(fractions.clone()), ok, "a kept fraction in (0, 1]")?
        }
        _ => bail!(
            "prune.budget: give exactly one of `nodes` (kept units), `edges` (kept inputs per unit) or \
             `fractions` (kept fractions of the layer's weights)"
        ),
    }
    for (key, kind) in
        [("prune.node_kernel", prune.node_kernel), ("prune.edge_kernel", prune.edge_kernel)]
    {
        if let KernelKind::Rbf { beta, epsilon } = kind {
            if !(beta.is_finite() && beta > 0.0) {
                bail!("{key}.beta: {beta} is not allowed; it must be a finite number > 0");
            }
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                bail!("{key}.epsilon: {epsilon} is not allowed; it must be a finite number ≥ 0");
            }
        }
    }
    if let Some(n) = prune.calibration_samples {
        if n < 1 {
            bail!("prune.calibration_samples: {n} leaves the calibration set empty; it must be at least 1");
        }
    }
    Ok(())
}

fn non_empty<T: Clone>(key: &str, axis: &Axis<T>) -> Result<()> {
    if axis.values().is_empty() {
        bail!("{key}: the list is empty; give at least one value");
    }
    Ok(())
}

fn at_least(key: &str, axis: &Axis<i64>, min: i64) -> Result<()> {
    non_empty(key, axis)?;
    if let Some(bad) = axis.values().into_iter().find(|&v| v < min) {
        bail!("{key}: {bad} is not allowed; it must be at least {min}");
    }
    Ok(())
}

fn check_f64(key: &str, axis: &Axis<f64>, ok: impl Fn(f64) -> bool, what: &str) -> Result<()> {
    non_empty(key, axis)?;
    if let Some(bad) = axis.values().into_iter().find(|&v| !ok(v)) {
        bail!("{key}: {bad} is not allowed; it must be {what}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trajectories_need_one_valid_kind_of_checkpoint() {
        let config = |t: &str| {
            format!(
                "name: x\ntask:\n  teacher_student: {{input_dim: 10, teacher_hidden: 1, \
                 student_hidden: 2, train_steps: 100, test_samples: 10, lr: 0.5, trajectory: {t}}}\n"
            )
        };
        assert!(parse(&config("{points: 5}")).is_ok());
        assert!(parse(&config("{alpha: [0.5, 2]}")).is_ok());
        let err = |t: &str| parse(&config(t)).unwrap_err().to_string();
        assert!(
            err("{points: 0}").contains("task.teacher_student.trajectory.points: 0 is not allowed")
        );
        assert!(err("{alpha: [1, -2]}").contains("trajectory.alpha: -2 is not allowed"));
        assert!(err("{alpha: []}").contains("trajectory.alpha: give 1 to"));
        assert!(err("{points: 3, alpha: [1]}").contains("exactly one of `points`"));
        assert!(err("{}").contains("exactly one of `points`"));
        assert!(err("{every: 3}").contains("unknown field `every`"), "{}", err("{every: 3}"));
    }

    #[test]
    fn a_duplicate_key_is_named_with_its_lines() {
        let text =
            "name: x\ntask:\n  teacher_student:\n    input_dim: 10\n    lr: 0.5\n    lr: 0.6\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(err, "task.teacher_student.lr: written twice, at lines 5 and 6");
        let top = "name: x\nname: y\n";
        assert!(parse(top)
            .unwrap_err()
            .to_string()
            .contains("name: written twice, at lines 1 and 2"));
    }

    #[test]
    fn resolved_configs_read_back_for_every_task() {
        let student = "name: s\ntask:\n  teacher_student: {input_dim: 10, teacher_hidden: 1, \
                       student_hidden: 2, train_steps: 10, test_samples: 10, lr: 0.5}\n\
                       prune: {methods: [dpp_node], budget: {nodes: [1]}}\n";
        let mlp =
            "name: m\ntask:\n  mlp: {data: d, hidden: [4], epochs: 1, batch_size: 2, lr: 0.1}\n\
                   prune: {methods: [dpp_edge], budget: {fractions: [0.5]}}\n";
        for text in [student, mlp] {
            let experiment = parse(text).unwrap();
            let resolved = to_yaml(&experiment).unwrap();
            let again = parse(&resolved).unwrap_or_else(|e| panic!("{e:#}\n{resolved}"));
            assert_eq!(to_yaml(&again).unwrap(), resolved);
        }
        let resolved = to_yaml(&parse(student).unwrap()).unwrap();
        assert!(
            resolved.contains("normalize_rows") && !resolved.contains("node_kernel"),
            "{resolved}"
        );
    }

    #[test]
    fn normalize_teacher_is_a_checked_key_that_changes_ids_only_when_set() {
        let text = |extra: &str| {
            format!(
                "name: s\ntask:\n  teacher_student:\n    input_dim: 10\n    teacher_hidden: 1\n    \
                 student_hidden: 2\n    train_steps: 10\n    test_samples: 10\n    lr: 0.5\n{extra}"
            )
        };
        let err = parse(&text("    normalize_teacher: yes please\n")).unwrap_err().to_string();
        assert!(
            err.contains("task.teacher_student.normalize_teacher")
                && err.contains("line 10")
                && err.contains("boolean"),
            "{err}"
        );
        let plan = |extra: &str| crate::experiment::plan::plan(&parse(&text(extra)).unwrap());
        let (default, off, on) = (
            plan("").unwrap(),
            plan("    normalize_teacher: false\n").unwrap(),
            plan("    normalize_teacher: true\n").unwrap(),
        );
        assert_eq!(default.runs[0].id, off.runs[0].id, "an unset key keeps existing run ids");
        assert_ne!(default.runs[0].id, on.runs[0].id);
        assert!(!default.settings.contains(&"normalize_teacher".to_string()));
        let column = on.settings.iter().position(|c| c == "normalize_teacher").unwrap();
        assert_eq!(on.runs[0].setting_values[column], "true");
    }
}
