//! `prunelab merge`: combine the shard folders of a sweep run as a job array into one result set.
use super::Status;
use crate::experiment::{merge, names};
use anyhow::Result;
use std::path::PathBuf;

/// Combine the outputs of `prunelab run --shard I/N` into one results.csv.
///
/// The merged folder holds results.csv (the rows of every run of the plan, in plan order: what
/// one process running the whole plan would have written, timings aside), config.resolved.yaml
/// and a manifest.json listing the merged folders and the sessions that wrote them; the models
/// stay in the shard folders. Folders written from different configs, and runs recorded
/// differently in two folders, are refused (exit 2). Runs of the plan that no folder holds are
/// listed and the exit code is 1, but what exists is written; merge again once they are done.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab merge runs/sweep                      all of runs/sweep/shards/*, into runs/sweep/
  prunelab merge a/sweep/shards/1-of-2 b/sweep/shards/2-of-2 --out merged/sweep
  prunelab merge runs/sweep/shards/*-of-8 --out merged/sweep")]
pub struct Args {
    /// Shard folders (OUT/<name>/shards/I-of-N), or OUT/<name> for all of its shards.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The folder to write (default: the OUT/<name> folder the shards belong to). An earlier
    /// merge there is replaced; anything else there is refused.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<Status> {
    let outcome = merge::merge(&args.dirs, args.out.as_deref(), std::env::args().collect())?;
    eprintln!(
        "{}: merged {} folder(s), {} of {} run(s) recorded, {} failed → {}",
        outcome.experiment,
        outcome.inputs.len(),
        outcome.recorded,
        outcome.runs,
        outcome.failed.len(),
        outcome.dir.join(names::RESULTS).display()
    );
    if !outcome.failed.is_empty() {
        eprintln!(
            "failed runs (reason in the error column): {}; `prunelab run … --resume` in their folder runs them again",
            outcome.failed.join(", ")
        );
    }
    if !outcome.missing.is_empty() {
        let listed: Vec<String> = outcome
            .missing
            .iter()
            .take(20)
            .map(|(id, shard)| match shard {
                Some(shard) => format!("{id} (shard {shard})"),
                None => id.clone(),
            })
            .collect();
        let more = outcome.missing.len().saturating_sub(listed.len());
        eprintln!(
            "{} of {} run(s) are missing from every folder: {}{}; run their shards again with --resume, then merge again",
            outcome.missing.len(),
            outcome.runs,
            listed.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        );
    }
    Ok(if outcome.failed.is_empty() && outcome.missing.is_empty() {
        Status::Ok
    } else {
        Status::SomeRunsFailed
    })
}
