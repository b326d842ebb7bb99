//! `prunelab theory ode`: integrates the N → ∞ learning dynamics (`theory::ode`) of a
//! teacher-student config's runs from the order parameters of each run's seeded initial
//! networks, and writes ε(α), the order parameters and each configured pruning method's expected
//! error along α in the trajectory format (`experiment::trajectory`, source `ode`); or, with
//! `--compare`, measures how far the runs' recorded trajectories lie from it
//! (`experiment::agreement`).
use super::Status;
use crate::config;
use crate::experiment::agreement;
use crate::experiment::plan::{self, Plan, Run, RunTask, TeacherStudentRun};
use crate::experiment::trajectory::{self, Header, Source};
use crate::files::write_atomic;
use crate::theory::rk45::{self, Tolerance};
use anyhow::{bail, ensure, Context, Result};
use std::path::PathBuf;

/// The largest number of output points.
const MAX_POINTS: usize = 1_000_000;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab theory ode configs/quickstart.yaml --out ode.csv
  prunelab theory ode configs/dynamics-agreement.yaml --all-runs --out ode.csv
  prunelab theory ode configs/dynamics-agreement.yaml --compare runs/dynamics-agreement")]
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
    #[arg(long, default_value_t = 0, conflicts_with = "all_runs")]
    run: usize,
    /// Every run of the plan (each from its own seed's networks), into one file.
    #[arg(long)]
    all_runs: bool,
    /// Relative tolerance of the Dormand–Prince integrator (absolute: 10⁻² of it).
    #[arg(long, default_value_t = 1e-8)]
    rtol: f64,
    /// The CSV to write, in the trajectory format (docs/outputs.md), with `source` = ode.
    #[arg(long, required_unless_present = "compare")]
    out: Option<PathBuf>,
    /// Compare with the recorded trajectories of the experiment folder DIR (written by `prunelab
    /// run` with `trajectory:`): per run, the largest relative gap of ε off the plateau and the
    /// final Q, R, v differences, then a summary per N.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "seed", "alpha_max"])]
    compare: Option<PathBuf>,
    /// With --compare: print one JSON object.
    #[arg(long, requires = "compare")]
    json: bool,
}

pub fn run(args: OdeArgs) -> Result<Status> {
    let experiment = config::load(&args.config)?;
    let plan = plan::plan(&experiment)?;
    ensure!((1..=MAX_POINTS).contains(&args.points), "--points must be 1 to {MAX_POINTS}");
    ensure!(args.rtol > 0.0 && args.rtol < 1.0, "--rtol must lie in (0, 1), got {}", args.rtol);
    let tol = Tolerance { rtol: args.rtol, atol: 1e-2 * args.rtol };
    let runs = selected(&args, &plan)?;
    if let Some(dir) = &args.compare {
        let report = agreement::compare(&plan, &runs, dir, tol)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", agreement::table(&report));
        }
        return Ok(Status::Ok);
    }
    let out = args.out.as_ref().expect("clap requires --out without --compare");
    let (k, m) = (runs[0].1.student_hidden, runs[0].1.teacher_hidden);
    if runs.iter().any(|(_, ts)| (ts.student_hidden, ts.teacher_hidden) != (k, m)) {
        bail!("--all-runs: the runs differ in K or M, so their columns differ; write one run at a time with --run");
    }
    let mut text = String::new();
    for (i, (run, ts)) in runs.iter().enumerate() {
        let csv = integrate_run(&args, &plan, run, ts, tol)?;
        text.push_str(if i == 0 {
            &csv
        } else {
            csv.split_once('\n').map_or("", |(_, rows)| rows)
        });
    }
    write_atomic(out, text.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {} ({} run(s))", out.display(), runs.len());
    Ok(Status::Ok)
}

/// The teacher-student runs the options select: one, or all with --all-runs.
fn selected<'a>(args: &OdeArgs, plan: &'a Plan) -> Result<Vec<(&'a Run, &'a TeacherStudentRun)>> {
    let count = plan.runs.len();
    let runs: Vec<&Run> = if args.all_runs || args.compare.is_some() {
        plan.runs.iter().collect()
    } else {
        match plan.runs.get(args.run) {
            Some(run) => vec![run],
            None => bail!(
                "--run {} is out of range: the plan of {} has {count} runs",
                args.run,
                plan.experiment
            ),
        }
    };
    runs.into_iter()
        .map(|run| match &run.task {
            RunTask::TeacherStudent(ts) => Ok((run, ts)),
            RunTask::Mlp(_) => {
                bail!("{} is not a teacher-student experiment", args.config.display())
            }
        })
        .collect()
}

/// Integrates one run's ODE and returns its trajectory CSV, printing a summary line.
fn integrate_run(
    args: &OdeArgs,
    plan: &Plan,
    run: &Run,
    ts: &TeacherStudentRun,
    tol: Tolerance,
) -> Result<String> {
    let seed = args.seed.unwrap_or(run.seed);
    let alpha_max = args.alpha_max.unwrap_or(ts.train_steps as f64 / ts.input_dim as f64);
    ensure!(
        alpha_max.is_finite() && alpha_max > 0.0,
        "--alpha-max must be positive, got {alpha_max}"
    );
    let (ode, y0) = agreement::ode_start(ts, seed)?;
    let outputs = output_times(alpha_max, args.points, args.linear);
    let started = std::time::Instant::now();
    let traj = rk45::integrate(|y, d| ode.derivative(y, d), &y0, &outputs, tol)?;
    let seconds = started.elapsed().as_secs_f64();
    let points = traj
        .alpha
        .iter()
        .zip(&traj.states)
        .map(|(&a, y)| trajectory::ode(ts, &ode, y, a))
        .collect::<Result<Vec<_>>>()?;
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
    let header = Header {
        experiment: &plan.experiment,
        run,
        settings: &plan.settings,
        source: Source::Ode,
        k: ode.k,
        m: ode.m,
    };
    trajectory::csv(&header, &points)
}

/// α = 0 and `points` times up to `alpha_max`, evenly or log-spaced over four decades.
fn output_times(alpha_max: f64, points: usize, linear: bool) -> Vec<f64> {
    let mut out = vec![0.0];
    if linear {
        out.extend((1..=points).map(|j| alpha_max * j as f64 / points as f64));
    } else {
        out.extend(trajectory::log_spaced(alpha_max, points));
    }
    out
}
