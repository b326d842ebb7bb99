//! `prunelab run`: run the experiments of one or more YAML files, whole or one shard of them, with
//! several runs at a time.
use super::Status;
use crate::experiment::manifest::Manifest;
use crate::experiment::plan::{Plan, Shard};
use crate::experiment::record::{current_rows, read_complete_rows, read_rows, RunStatus};
use crate::experiment::{cost, names, plan, runner, summary};
use crate::{config, device};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Run experiments or sweeps defined in YAML files.
///
/// Results go to OUT/<name>/results.csv, one whole run at a time: an interrupted sweep keeps every
/// finished run, and `--resume` runs only the rest (failed runs included). With `--shard I/N`
/// this process runs every N-th run of the plan, starting at the I-th, into
/// OUT/<name>/shards/I-of-N/; `prunelab merge OUT/<name>` combines the shards.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab run configs/quickstart.yaml
  prunelab run configs/quickstart.yaml --dry-run
  prunelab run sweep.yaml --out results --jobs 4 --resume
  prunelab run sweep.yaml --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT --resume
  prunelab merge runs/sweep")]
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
    /// libtorch intra-op threads in all (default: libtorch's choice, usually one per core); each
    /// of the --jobs runs gets threads / jobs. Results are bit-identical for the same threads per
    /// run (recorded in manifest.json).
    #[arg(long, value_name = "N")]
    threads: Option<i32>,
    /// Runs executed at the same time, each on its own thread.
    #[arg(long, default_value = "1", value_name = "N")]
    jobs: String,
    /// Run only shard I of N (1 ≤ I ≤ N): the runs at plan positions I, I+N, I+2N, …, into
    /// OUT/<name>/shards/I-of-N/.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Continue an existing output folder: skip the runs recorded `ok`, run the others (runs that
    /// failed, or were interrupted) and append.
    #[arg(long)]
    resume: bool,
    /// Print the plan (runs, their seeds and varying settings, estimated memory and time, and
    /// what is already recorded) without running or writing anything.
    #[arg(long)]
    dry_run: bool,
    /// After the runs, print the summary as one JSON object per experiment on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, quiet: bool) -> Result<Status> {
    let device = device::parse(&args.device)?;
    if let Some(threads) = args.threads {
        anyhow::ensure!(threads >= 1, "--threads must be at least 1");
    }
    let jobs = match args.jobs.trim().parse::<usize>() {
        Ok(jobs) if jobs >= 1 => jobs,
        _ => bail!(
            "--jobs {}: give the number of runs to execute at the same time, at least 1",
            args.jobs
        ),
    };
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    let loaded = load_all(&args.configs)?;
    let options = runner::RunOptions {
        out: args.out.clone(),
        device,
        threads: args.threads.unwrap_or_else(tch::get_num_threads),
        jobs,
        shard,
        resume: args.resume,
        progress: !quiet,
        command_line: std::env::args().collect(),
    };
    if args.dry_run {
        for (path, _, plan, costs) in &loaded {
            print_plan(path, plan, costs, &options);
        }
        return Ok(Status::Ok);
    }
    crate::interrupt::install();
    let mut failed = 0;
    for (path, experiment, plan, _) in &loaded {
        let outcome = runner::run_plan(path, experiment, plan, &options)?;
        if let Some(signal) = outcome.interrupted {
            eprintln!(
                "{}: stopped by {} after recording {} run(s) in {}; continue with: {} --resume",
                experiment.name,
                crate::interrupt::name(signal),
                outcome.ran,
                outcome.dir.join(names::RESULTS).display(),
                resume_command()
            );
            return Ok(Status::Interrupted(signal));
        }
        eprintln!(
            "{}{}: {} run(s) done, {} skipped as already recorded, {} failed → {}",
            experiment.name,
            shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
            outcome.ran - outcome.failed,
            outcome.skipped,
            outcome.failed,
            outcome.dir.join(names::RESULTS).display()
        );
        if shard.is_some() {
            eprintln!(
                "  when every shard is done: prunelab merge {}",
                args.out.join(&experiment.name).display()
            );
        }
        let rows = current_rows(read_rows(&outcome.dir.join(names::RESULTS))?);
        let summary = summary::summarize(&rows).with_blocks(&outcome.dir, &rows);
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            print!("{summary}");
        }
        failed += outcome.failed;
    }
    Ok(if failed > 0 { Status::SomeRunsFailed } else { Status::Ok })
}

/// A config, its experiment, plan and the costs of its runs.
type Loaded<'a> = (&'a PathBuf, config::Experiment, Plan, Vec<cost::Cost>);

/// Reads, plans and checks every config before any runs: a bad one stops them all.
fn load_all(configs: &[PathBuf]) -> Result<Vec<Loaded<'_>>> {
    let mut loaded: Vec<Loaded> = Vec::new();
    let available = cost::available_memory();
    for path in configs {
        let experiment = config::load(path)?;
        let plan = plan::plan(&experiment)
            .with_context(|| format!("invalid config {}", path.display()))?;
        let costs = cost::check(&plan, available)
            .with_context(|| format!("invalid config {}", path.display()))?;
        if let Some((other, _, _, _)) = loaded.iter().find(|(_, e, _, _)| e.name == experiment.name)
        {
            bail!(
                "{} and {} both name their experiment `{}`: they would write to the same folder; rename one",
                other.display(),
                path.display(),
                experiment.name
            );
        }
        loaded.push((path, experiment, plan, costs));
    }
    Ok(loaded)
}

/// This command line, for continuing it (`--resume` is added by the caller when missing).
fn resume_command() -> String {
    let args: Vec<String> = std::env::args().filter(|a| a != "--resume").collect();
    args.join(" ")
}

/// Prints the runs of `plan` that `options.shard` selects as a table: plan position, run id,
/// seed, the settings that vary across the plan, the estimated memory and time and, when the
/// output folder already exists, what it recorded for each run (`ok`, `failed`, or `-`).
fn print_plan(path: &Path, plan: &Plan, costs: &[cost::Cost], options: &runner::RunOptions) {
    let selected = runner::selected_runs(plan, options.shard);
    let mut title =
        format!("{}: experiment {}, {} run(s)", path.display(), plan.experiment, plan.runs.len());
    if let Some(shard) = options.shard {
        title += &format!(", {} in shard {shard}", selected.len());
    }
    if let Some(prune) = selected.first().and_then(|(_, run)| run.task.prune_sweep()) {
        let methods: Vec<&str> = prune.methods.iter().map(|m| m.name()).collect();
        title += &format!("; each run is pruned by {}", methods.join(", "));
    }
    let total: f64 = selected.iter().map(|(i, _)| costs[*i].seconds).sum();
    let peak = selected.iter().map(|(i, _)| costs[*i].memory_bytes).fold(0.0, f64::max);
    title += &format!(
        "; estimated {} in all on one core, at most {} of memory per run",
        cost::human_seconds(total),
        cost::human_bytes(peak)
    );
    println!("{title}");

    let dir = runner::output_dir(&options.out, &plan.experiment, options.shard);
    let committed = Manifest::read(&dir.join(names::MANIFEST)).ok().flatten().map(|m| m.committed);
    let recorded: Option<HashMap<String, &str>> =
        read_complete_rows(&dir.join(names::RESULTS), committed.as_ref()).ok().map(|(rows, _)| {
            current_rows(rows)
                .into_iter()
                .map(|r| (r.run_id, if r.status == RunStatus::Ok { "ok" } else { "failed" }))
                .collect()
        });

    let split = |settings: &str| -> Vec<(String, String)> {
        settings
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut header =
        vec!["#".to_string(), "run_id".into(), "seed".into(), "memory".into(), "time".into()];
    header.extend(
        selected
            .first()
            .map(|(_, run)| split(&run.settings))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k),
    );
    if recorded.is_some() {
        header.push(format!("recorded in {}", dir.display()));
    }
    let mut table = vec![header];
    for (position, run) in &selected {
        let cost = costs[*position];
        let mut line = vec![
            (position + 1).to_string(),
            run.id.clone(),
            run.seed.to_string(),
            cost::human_bytes(cost.memory_bytes),
            cost::human_seconds(cost.seconds),
        ];
        line.extend(split(&run.settings).into_iter().map(|(_, v)| v));
        if let Some(recorded) = &recorded {
            line.push(recorded.get(&run.id).copied().unwrap_or("-").to_string());
        }
        table.push(line);
    }
    print_table(&table, 5);
}

/// Prints `table` with aligned columns, the first `right` of them right-aligned.
fn print_table(table: &[Vec<String>], right: usize) {
    let columns = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table.iter().filter_map(|l| l.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    for line in table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(
                |(c, (cell, &width))| {
                    if c < right {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                },
            )
            .collect();
        println!("  {}", cells.join("  ").trim_end());
    }
}
