//! Simulation against theory: each run's recorded trajectory (`trajectories/<run_id>.csv`, the
//! unpruned rows) beside the ODE integrated from the same seed's initial order parameters to the
//! same α, as `prunelab theory ode --compare` reports it.
//!
//! Per run: the largest relative gap |ε_sim − ε_ODE| / ε_ODE over the checkpoints *off the
//! plateau* ([`plateau`]), the largest absolute differences of the final Q, R and v, unit by
//! unit, and how many units specialised to another teacher unit than in the ODE (such a unit
//! makes Q and R differ by O(1) even where ε agrees).
use super::plan::{Plan, Run, TeacherStudentRun};
use super::trajectory;
use crate::plot::table::{Row, Table};
use crate::theory::ode::{self, Ode};
use crate::theory::rk45::{self, Tolerance};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// The plateau rule, in words (printed with the table and in the JSON).
pub const PLATEAU_RULE: &str = "on the plateau: from the first checkpoint where ε_ODE is below \
     half its value at α = 0 and |d ln ε_ODE / d ln α| < 0.2 (ε has nearly stopped falling) to the \
     last checkpoint before ε_ODE falls below half its value there; α = 0 (where both start from \
     the same order parameters) is left out too";

/// One run's agreement.
#[derive(Clone, Debug, Serialize)]
pub struct RunAgreement {
    pub run_id: String,
    pub seed: u64,
    pub input_dim: usize,
    /// Checkpoints compared (off the plateau) out of all.
    pub compared: usize,
    pub checkpoints: usize,
    /// The plateau's α range (None when the ODE has none).
    pub plateau: Option<(f64, f64)>,
    pub max_rel_gap: f64,
    pub at_alpha: f64,
    pub final_alpha: f64,
    pub final_eps_sim: f64,
    pub final_eps_ode: f64,
    /// max |Q_sim − Q_ODE|, max |R_sim − R_ODE|, max |v_sim − v_ODE| at the last checkpoint.
    pub final_q: f64,
    pub final_r: f64,
    pub final_v: f64,
    /// Student units specialised to another teacher unit than in the ODE at the end (in both,
    /// the unit's largest |R_in| is at least twice its others, at different n).
    pub switched: usize,
}

/// The runs of one N together.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub input_dim: usize,
    pub runs: usize,
    pub max_rel_gap_mean: f64,
    pub max_rel_gap_max: f64,
    pub final_q_max: f64,
    pub final_r_max: f64,
    pub final_v_max: f64,
    /// Runs with a unit that specialised to another teacher unit than in the ODE.
    pub runs_switched: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub plateau_rule: &'static str,
    pub runs: Vec<RunAgreement>,
    pub by_input_dim: Vec<Summary>,
}

/// The ODE and the order parameters of the run's initial networks at `seed`.
pub fn ode_start(ts: &TeacherStudentRun, seed: u64) -> Result<(Ode, Vec<f64>)> {
    let (student, teacher) = ode::seeded_networks(
        ts.input_dim,
        ts.student_hidden,
        ts.teacher_hidden,
        ts.v_star,
        seed,
        ts.normalize_teacher,
    );
    ode::from_networks(&student, &teacher, ts.lr, ts.noise_std)
}

/// Compares every run of `runs` with its trajectory file in the experiment folder `dir`.
pub fn compare(
    plan: &Plan,
    runs: &[(&Run, &TeacherStudentRun)],
    dir: &Path,
    tol: Tolerance,
) -> Result<Report> {
    let mut out = Vec::new();
    for (run, ts) in runs {
        let path = trajectory::path(dir, &run.id);
        if !path.exists() {
            bail!(
                "{}: no trajectory of run {} (seed {}); run the config of experiment {} with \
                 `task.teacher_student.trajectory` set first",
                path.display(),
                run.id,
                run.seed,
                plan.experiment
            );
        }
        out.push(compare_run(run, ts, &path, tol)?);
    }
    let mut sizes: Vec<usize> = out.iter().map(|r| r.input_dim).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let by_input_dim = sizes.into_iter().map(|n| summary(n, &out)).collect();
    Ok(Report { plateau_rule: PLATEAU_RULE, runs: out, by_input_dim })
}

fn summary(n: usize, runs: &[RunAgreement]) -> Summary {
    let of: Vec<&RunAgreement> = runs.iter().filter(|r| r.input_dim == n).collect();
    let max = |f: &dyn Fn(&RunAgreement) -> f64| of.iter().map(|r| f(r)).fold(0.0, f64::max);
    Summary {
        input_dim: n,
        runs: of.len(),
        max_rel_gap_mean: of.iter().map(|r| r.max_rel_gap).sum::<f64>() / of.len() as f64,
        max_rel_gap_max: max(&|r| r.max_rel_gap),
        final_q_max: max(&|r| r.final_q),
        final_r_max: max(&|r| r.final_r),
        final_v_max: max(&|r| r.final_v),
        runs_switched: of.iter().filter(|r| r.switched > 0).count(),
    }
}

/// The simulated unpruned student at one checkpoint.
struct Sim {
    alpha: f64,
    eps: f64,
    state: Vec<f64>,
}

/// Reads the unpruned simulation rows of a trajectory file as ODE states.
fn read(path: &Path, ode: &Ode) -> Result<Vec<Sim>> {
    let table = Table::load(&[path.to_path_buf()])?;
    let (k, m) = (ode.k, ode.m);
    let num = |row: &Row, column: &str| -> Result<f64> {
        row.get(column).parse::<f64>().with_context(|| {
            format!("{} line {}: `{column}` is not a number", path.display(), row.line)
        })
    };
    let mut out = Vec::new();
    for row in table.rows.iter().filter(|r| r.get("method") == "none") {
        let mut state = vec![0.0; ode.dim()];
        for i in 0..k {
            for j in i..k {
                let q = num(row, &format!("Q_{i}_{j}"))?;
                (state[i * k + j], state[j * k + i]) = (q, q);
            }
            for n in 0..m {
                state[k * k + i * m + n] = num(row, &format!("R_{i}_{n}"))?;
            }
            state[k * (k + m) + i] = num(row, &format!("v_{i}"))?;
        }
        out.push(Sim { alpha: num(row, "alpha")?, eps: num(row, "eps")?, state });
    }
    if out.is_empty() {
        bail!("{}: no unpruned rows (method none)", path.display());
    }
    Ok(out)
}

/// The plateau's first and last checkpoint indices ([`PLATEAU_RULE`]) of ε_ODE at `alpha`.
pub fn plateau(alpha: &[f64], eps: &[f64]) -> Option<(usize, usize)> {
    let slope =
        |i: usize| ((eps[i + 1] / eps[i - 1]).ln() / (alpha[i + 1] / alpha[i - 1]).ln()).abs();
    let start = eps.first().copied()?;
    let first = (1..alpha.len().saturating_sub(1)).find(|&i| {
        alpha[i - 1] > 0.0 && eps[i - 1] > 0.0 && eps[i] < 0.5 * start && slope(i) < 0.2
    })?;
    let height = eps[first];
    let end = (first..alpha.len()).find(|&i| eps[i] < 0.5 * height).unwrap_or(alpha.len());
    Some((first, end - 1))
}

fn compare_run(
    run: &Run,
    ts: &TeacherStudentRun,
    path: &Path,
    tol: Tolerance,
) -> Result<RunAgreement> {
    let (ode, y0) = ode_start(ts, run.seed)?;
    let sims = read(path, &ode)?;
    let alpha: Vec<f64> = sims.iter().map(|s| s.alpha).collect();
    let traj = rk45::integrate(|y, d| ode.derivative(y, d), &y0, &alpha, tol)?;
    let eps: Vec<f64> = traj.states.iter().map(|y| ode.error(y)).collect();
    let plateau = plateau(&alpha, &eps);
    let on = |i: usize| alpha[i] == 0.0 || plateau.is_some_and(|(a, b)| (a..=b).contains(&i));
    let (mut max_rel_gap, mut at_alpha, mut compared) = (0.0, f64::NAN, 0);
    for (i, sim) in sims.iter().enumerate().filter(|(i, _)| !on(*i)) {
        let gap = (sim.eps - eps[i]).abs() / eps[i];
        compared += 1;
        if gap > max_rel_gap || at_alpha.is_nan() {
            (max_rel_gap, at_alpha) = (gap, sim.alpha);
        }
    }
    let (last, y) = (sims.last().expect("rows"), traj.states.last().expect("outputs"));
    let diff =
        |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, z)| (x - z).abs()).fold(0.0, f64::max);
    Ok(RunAgreement {
        run_id: run.id.clone(),
        seed: run.seed,
        input_dim: ts.input_dim,
        compared,
        checkpoints: sims.len(),
        plateau: plateau.map(|(a, b)| (alpha[a], alpha[b])),
        max_rel_gap,
        at_alpha,
        final_alpha: last.alpha,
        final_eps_sim: last.eps,
        final_eps_ode: ode.error(y),
        final_q: diff(ode.q(&last.state), ode.q(y)),
        final_r: diff(ode.r(&last.state), ode.r(y)),
        final_v: diff(ode.v(&last.state), ode.v(y)),
        switched: switched(&ode, &last.state, y),
    })
}

/// The student units specialised to different teacher units in states a and b: in both, the
/// unit's largest |R_in| is at least twice its others, and the n differ.
fn switched(ode: &Ode, a: &[f64], b: &[f64]) -> usize {
    let m = ode.m;
    let teacher = |r: &[f64], i: usize| -> Option<usize> {
        let row: Vec<f64> = r[i * m..(i + 1) * m].iter().map(|x| x.abs()).collect();
        let best = (0..m).max_by(|&x, &z| row[x].total_cmp(&row[z]))?;
        let clear = (0..m).all(|n| n == best || row[best] >= 2.0 * row[n]);
        clear.then_some(best)
    };
    (0..ode.k)
        .filter(|&i| match (teacher(ode.r(a), i), teacher(ode.r(b), i)) {
            (Some(x), Some(z)) => x != z,
            _ => false,
        })
        .count()
}

/// The report as text: one line per run, then one per N.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "({})", report.plateau_rule);
    let _ = writeln!(
        out,
        "{:>12} {:>5} {:>6} {:>9} {:>19} {:>12} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "run",
        "seed",
        "N",
        "compared",
        "plateau α",
        "max rel gap",
        "at α",
        "final ε",
        "|ΔQ|max",
        "|ΔR|max",
        "|Δv|max",
        "switched"
    );
    for r in &report.runs {
        let plateau = r.plateau.map_or("none".into(), |(a, b)| format!("{a:.3}–{b:.3}"));
        let _ = writeln!(
            out,
            "{:>12} {:>5} {:>6} {:>4}/{:<4} {:>19} {:>12.4} {:>10.3} {:>10.5} {:>9.2e} {:>9.2e} {:>9.2e} {:>8}",
            r.run_id, r.seed, r.input_dim, r.compared, r.checkpoints, plateau, r.max_rel_gap,
            r.at_alpha, r.final_eps_sim, r.final_q, r.final_r, r.final_v, r.switched
        );
    }
    let _ = writeln!(out, "\nby N: largest relative gap off the plateau (mean and max over runs), final differences (max)");
    for s in &report.by_input_dim {
        let _ = writeln!(
            out,
            "N = {:>5}: {} runs, gap mean {:.4}, max {:.4}; |ΔQ| {:.2e}, |ΔR| {:.2e}, |Δv| {:.2e}; {} run(s) with a unit that switched teacher unit",
            s.input_dim, s.runs, s.max_rel_gap_mean, s.max_rel_gap_max, s.final_q_max, s.final_r_max, s.final_v_max, s.runs_switched
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plateau_lies_between_the_first_fall_and_the_exit() {
        // α = 0, then ε falls from 6 to a plateau near 0.5, then leaves it.
        let alpha = [0.0, 0.1, 0.2, 0.4, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
        let eps = [6.0, 5.9, 5.8, 5.0, 2.0, 0.55, 0.52, 0.5, 0.45, 0.3, 0.2, 0.05];
        // Index 6 (α = 4) is the first below 3 with a flat neighbourhood; ε < 0.26 from α = 64.
        assert_eq!(plateau(&alpha, &eps), Some((6, 9)));
        let falling: Vec<f64> = alpha.iter().map(|a| 6.0 / (1.0 + a * a)).collect();
        assert_eq!(plateau(&alpha, &falling), None);
    }
}
