//! `prunelab theory ode`: integrates the N → ∞ learning dynamics (`theory::ode`) of a
//! teacher-student config's run from the order parameters of that run's seeded initial networks,
//! and writes the learning curve ε(α) with the order parameters as CSV.
use super::Status;
use crate::config;
use crate::experiment::plan::{self, RunTask, TeacherStudentRun};
use crate::files::write_atomic;
use crate::theory::ode::{self, Ode};
use crate::theory::rk45::{self, Tolerance};
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The largest number of output points.
const MAX_POINTS: usize = 1_000_000;

#[derive(clap::Args)]
pub struct OdeArgs {
    /// A teacher-student experiment config (YAML).
    config: PathBuf,
    /// Integrate to this α (default: the run's train_steps / input_dim).
    #[arg(long)]
    alpha_max: Option<f64>,
    /// Output times besides α = 0: log-spaced from α_max·10⁻⁴ to α_max (or evenly, --linear).
    #[arg(long, default_value_t = 200)]
    points: usize,
    /// Evenly spaced output times instead of log-spaced ones.
    #[arg(long)]
    linear: bool,
    /// The seed whose initial networks give the starting point (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Which run of the config's plan (0-based position), for configs with several.
    #[arg(long, default_value_t = 0)]
    run: usize,
    /// Relative tolerance of the Dormand–Prince integrator (absolute: 10⁻² of it).
    #[arg(long, default_value_t = 1e-8)]
    rtol: f64,
    /// The CSV to write: alpha, eps, Q_i_j (i ≤ j), R_i_n, v_i (units numbered from 0).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: OdeArgs) -> Result<Status> {
    let experiment = config::load(&args.config)?;
    let plan = plan::plan(&experiment)?;
    let count = plan.runs.len();
    let Some(run) = plan.runs.get(args.run) else {
        bail!(
            "--run {} is out of range: the plan of {} has {count} runs",
            args.run,
            plan.experiment
        );
    };
    let RunTask::TeacherStudent(ts) = &run.task else {
        bail!("{} is not a teacher-student experiment", args.config.display());
    };
    let seed = args.seed.unwrap_or(run.seed);
    let alpha_max = args.alpha_max.unwrap_or(ts.train_steps as f64 / ts.input_dim as f64);
    ensure!(
        alpha_max.is_finite() && alpha_max > 0.0,
        "--alpha-max must be positive, got {alpha_max}"
    );
    ensure!((1..=MAX_POINTS).contains(&args.points), "--points must be 1 to {MAX_POINTS}");
    ensure!(args.rtol > 0.0 && args.rtol < 1.0, "--rtol must lie in (0, 1), got {}", args.rtol);
    let (ode, y0) = start(ts, seed)?;
    let outputs = output_times(alpha_max, args.points, args.linear);
    let tol = Tolerance { rtol: args.rtol, atol: 1e-2 * args.rtol };
    let started = std::time::Instant::now();
    let traj = rk45::integrate(|y, d| ode.derivative(y, d), &y0, &outputs, tol)?;
    let seconds = started.elapsed().as_secs_f64();
    write_atomic(&args.out, csv(&ode, &traj.alpha, &traj.states).as_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let last = traj.states.last().expect("at least one output");
    println!(
        "run {} (seed {seed}): N = {}, K = {}, M = {}, η = {}, σ = {}",
        run.id, ts.input_dim, ts.student_hidden, ts.teacher_hidden, ts.lr, ts.noise_std
    );
    println!(
        "integrated to α = {alpha_max} in {seconds:.3} s ({} steps, {} rejected): ε(0) = {:.6}, ε(α_max) = {:.6e}",
        traj.accepted,
        traj.rejected,
        ode.error(&y0),
        ode.error(last)
    );
    println!("wrote {} ({} rows)", args.out.display(), traj.alpha.len());
    Ok(Status::Ok)
}

/// The ODE and the order parameters of the run's initial networks at `seed`.
fn start(ts: &TeacherStudentRun, seed: u64) -> Result<(Ode, Vec<f64>)> {
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

/// α = 0 and `points` times up to `alpha_max`, evenly or log-spaced over four decades.
fn output_times(alpha_max: f64, points: usize, linear: bool) -> Vec<f64> {
    let mut out = vec![0.0];
    for j in 1..=points {
        let frac = j as f64 / points as f64;
        out.push(if linear {
            alpha_max * frac
        } else if points == 1 {
            alpha_max
        } else {
            alpha_max * 10f64.powf(-4.0 * (points - j) as f64 / (points - 1) as f64)
        });
    }
    out
}

/// The CSV text: a header and one row per output time.
fn csv(ode: &Ode, alpha: &[f64], states: &[Vec<f64>]) -> String {
    let (k, m) = (ode.k, ode.m);
    let mut header = vec!["alpha".to_string(), "eps".to_string()];
    header.extend((0..k).flat_map(|i| (i..k).map(move |j| format!("Q_{i}_{j}"))));
    header.extend((0..k).flat_map(|i| (0..m).map(move |n| format!("R_{i}_{n}"))));
    header.extend((0..k).map(|i| format!("v_{i}")));
    let mut text = header.join(",") + "\n";
    for (a, y) in alpha.iter().zip(states) {
        let (q, r, v) = (ode.q(y), ode.r(y), ode.v(y));
        let mut row = vec![*a, ode.error(y)];
        row.extend((0..k).flat_map(|i| (i..k).map(move |j| q[i * k + j])));
        row.extend_from_slice(r);
        row.extend_from_slice(v);
        let cells: Vec<String> = row.iter().map(|x| format!("{x}")).collect();
        let _ = writeln!(text, "{}", cells.join(","));
    }
    text
}
