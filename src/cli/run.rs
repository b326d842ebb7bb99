//! `prunelab run`: run the experiments of one or more YAML files.
use super::Status;
use crate::{config, device, plan, runner};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Run experiments or sweeps defined in YAML files.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  prunelab run configs/quickstart.yaml\n  prunelab run configs/quickstart.yaml --dry-run\n  prunelab run sweep.yaml --out results --threads 1 --resume"
)]
pub struct Args {
    /// Experiment files (YAML); every file is checked before any of them runs.
    #[arg(required = true, value_name = "CONFIG.yaml")]
    configs: Vec<PathBuf>,
    /// Parent folder of the outputs: each experiment writes OUT/<name>/.
    #[arg(long, default_value = "runs", value_name = "DIR")]
    out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Continue an existing output folder, skipping runs already recorded.
    #[arg(long)]
    resume: bool,
    /// Print the plan (runs and their settings) without running anything.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args, quiet: bool) -> Result<Status> {
    let device = device::parse(&args.device)?;
    if let Some(threads) = args.threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1");
        tch::set_num_threads(threads);
    }
    let mut loaded = Vec::new();
    for path in &args.configs {
        let experiment = config::load(path)?;
        let plan = plan::plan(&experiment)
            .with_context(|| format!("invalid config {}", path.display()))?;
        loaded.push((path, experiment, plan));
    }
    if args.dry_run {
        for (path, _, plan) in &loaded {
            print_plan(path, plan);
        }
        return Ok(Status::Ok);
    }
    let options = runner::RunOptions {
        out: args.out.clone(),
        device,
        threads: tch::get_num_threads(),
        resume: args.resume,
        progress: !quiet,
    };
    let mut failed = 0;
    for (path, experiment, plan) in &loaded {
        let outcome = runner::run_plan(path, experiment, plan, &options)?;
        eprintln!(
            "{}: {} run(s) done, {} skipped as already recorded, {} failed → {}",
            experiment.name,
            outcome.ran - outcome.failed,
            outcome.skipped,
            outcome.failed,
            outcome.dir.join("results.csv").display()
        );
        failed += outcome.failed;
    }
    Ok(if failed > 0 { Status::SomeRunsFailed } else { Status::Ok })
}

fn print_plan(path: &std::path::Path, plan: &plan::Plan) {
    println!("{}: experiment {}, {} run(s)", path.display(), plan.experiment, plan.runs.len());
    println!("{:<12}  {:>6}  settings", "run_id", "seed");
    for run in &plan.runs {
        let settings = serde_json::to_string(&run.task).unwrap_or_default();
        println!("{:<12}  {:>6}  {}", run.id, run.seed, settings);
    }
}
