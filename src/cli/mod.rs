//! The command line. Each subcommand has its own file with its `Args` and `run`; `main` maps the
//! outcome to the exit code: 0 all good, 1 some sweep runs failed, 2 bad input or an error.
mod args;
mod bench;
mod eval;
mod inspect;
mod merge;
mod plot;
mod prune;
mod run;
mod theory;

use args::{describe_check, ModelArgs};
use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "prunelab",
    version,
    about = "Pruning research on feed-forward networks (teacher-student theory, DPP pruning, DIVNET)",
    after_help = "Examples:\n  prunelab run configs/quickstart.yaml\n  prunelab run configs/quickstart.yaml --dry-run\n  prunelab theory order-params runs/quickstart/models/<run_id>\n  prunelab plot runs/fig2a-random/results.csv --out fig2a.svg --out fig2a.png\n  prunelab bench sgd\n  prunelab prune --model mlp.pt --method dpp_node --keep 0.5 --calib DATA --compact --out small.pt\n  prunelab eval --model small.pt --data DATA --json\n  prunelab inspect small.pt"
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr, no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::Args),
    Merge(merge::Args),
    Theory(theory::Args),
    Plot(plot::Args),
    Bench(bench::Args),
    Prune(prune::Args),
    Eval(eval::Args),
    Inspect(inspect::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout.
    Man,
}

/// What a command reports back to `main`.
pub enum Status {
    Ok,
    SomeRunsFailed,
    /// Stopped early by a signal (exit 128 + its number).
    Interrupted(i32),
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() => {
            // One line: clap's first, which names the argument and the problem.
            let text = err.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
        Err(err) => {
            let _ = err.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
    };
    crate::logging::init(if cli.quiet { -1 } else { cli.verbose.min(3) as i8 });
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Run(args) => run::run(args, quiet),
        Command::Merge(args) => merge::run(args),
        Command::Theory(args) => theory::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "prunelab", &mut std::io::stdout());
            Ok(Status::Ok)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|_| Status::Ok)
            .map_err(Into::into),
    };
    match result {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::SomeRunsFailed) => ExitCode::from(1),
        Ok(Status::Interrupted(signal)) => ExitCode::from((128 + signal) as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
