//! Sweeps spread over several processes or machines. `prunelab run --shard I/N` writes each slice
//! of a plan to its own folder, `OUT/<name>/shards/I-of-N/`, so the tasks of a job array never
//! write the same file; [`merge`] combines such folders into one result set, the one a single
//! process would have written (up to timings): the rows of every run of the plan, in plan order.
//!
//! Merging refuses folders written from different configs (their resolved configs' SHA-256
//! differ) and runs recorded differently in two folders. A run whose only record is `failed` in
//! one folder and `ok` in another is taken as `ok`. Runs of the plan that no folder holds are
//! reported as missing; what exists is still written, and merging again later (after the missing
//! shards ran, or resumed) replaces it.
use super::manifest::{now_rfc3339, sha256_hex, FolderLock, Manifest, MergedInput, Session};
use super::plan::Plan;
use super::record::{
    current_rows, header, read_complete_rows, record, Committed, ResultRow, RunStatus, COLUMNS,
};
use super::{names, plan};
use crate::config;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a merge wrote.
#[derive(Clone, Debug)]
pub struct MergeOutcome {
    /// The folder written.
    pub dir: PathBuf,
    pub experiment: String,
    /// The folders merged.
    pub inputs: Vec<PathBuf>,
    /// Runs of the plan.
    pub runs: usize,
    /// Runs with rows in the merged results (failed ones included).
    pub recorded: usize,
    /// Runs recorded only as failed.
    pub failed: Vec<String>,
    /// Runs that no input holds, with the shard that should have (when the inputs share one
    /// shard count).
    pub missing: Vec<(String, Option<plan::Shard>)>,
}

/// One folder to merge.
struct Input {
    dir: PathBuf,
    manifest: Manifest,
    config: String,
    /// Current rows (see `record::current_rows`), grouped by run id.
    runs: HashMap<String, Vec<ResultRow>>,
}

/// The folders that `dirs` stand for: a folder with a `shards/` subfolder (`OUT/<name>`) stands
/// for all its shards; any other folder must be a prunelab output folder itself. Each folder once.
pub fn expand_inputs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let shards = dir.join(names::SHARDS);
        if shards.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&shards)
                .with_context(|| format!("reading {}", shards.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.join(names::MANIFEST).is_file())
                .collect();
            if inside.is_empty() {
                bail!("{} holds no shard folders (I-of-N with a manifest.json)", shards.display());
            }
            inside.sort();
            found.extend(inside);
        } else {
            found.push(dir.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|dir| seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())));
    Ok(found)
}

/// Merges the folders `dirs` stand for (see [`expand_inputs`]) into `out`, by default the
/// experiment folder that all the shards belong to.
pub fn merge(
    dirs: &[PathBuf],
    out: Option<&Path>,
    command_line: Vec<String>,
) -> Result<MergeOutcome> {
    let session = Session::start(command_line);
    let folders = expand_inputs(dirs)?;
    let inputs = folders.iter().map(|dir| read_input(dir)).collect::<Result<Vec<_>>>()?;
    let first = &inputs[0];
    check_same_config(&inputs)?;
    let experiment = config::parse(&first.config)
        .and_then(|e| Ok((plan::plan(&e)?, e)))
        .with_context(|| format!("{}/{}", first.dir.display(), names::CONFIG));
    let (plan, experiment) = experiment?;
    let chosen = choose_rows(&inputs, &plan)?;
    let out = match out {
        Some(out) => out.to_path_buf(),
        None => default_out(&folders)?,
    };
    let _lock = prepare_out(&out, &folders, &first.manifest.config_sha256)?;
    let merged = merged_rows(&plan, &chosen, common_shard_count(&inputs))?;
    crate::files::write_atomic(&out.join(names::CONFIG), first.config.as_bytes())?;
    crate::files::write_atomic(&out.join(names::RESULTS), &merged.bytes)?;
    let merged_from = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| MergedInput {
            path: input.dir.display().to_string(),
            shard: input.manifest.shard,
            runs_taken: chosen.values().filter(|(from, _)| *from == i).count(),
            sessions: input.manifest.sessions(),
        })
        .collect();
    let manifest = Manifest {
        experiment: experiment.name.clone(),
        config_path: first.manifest.config_path.clone(),
        config_sha256: first.manifest.config_sha256.clone(),
        seeds: experiment.seeds.values(),
        runs: plan.runs.len(),
        plan_runs: plan.runs.len(),
        shard: None,
        runs_ok: merged.recorded - merged.failed.len(),
        runs_failed: merged.failed.len(),
        committed: Committed { results_bytes: merged.bytes.len() as u64, appending: None },
        session: Session { finished: Some(now_rfc3339()), ..session },
        earlier_sessions: Vec::new(),
        merged_from,
        runs_missing: merged.missing.iter().map(|(id, _)| id.clone()).collect(),
    };
    manifest.write(&out.join(names::MANIFEST))?;
    Ok(MergeOutcome {
        dir: out,
        experiment: experiment.name,
        inputs: folders,
        runs: plan.runs.len(),
        recorded: merged.recorded,
        failed: merged.failed,
        missing: merged.missing,
    })
}

/// Refuses inputs written by different configs.
fn check_same_config(inputs: &[Input]) -> Result<()> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        if other.manifest.config_sha256 != first.manifest.config_sha256 {
            bail!(
                "{} and {} come from different configs (config SHA-256 {:.12}… and {:.12}…): merge refused so that results are not mixed",
                first.dir.display(),
                other.dir.display(),
                first.manifest.config_sha256,
                other.manifest.config_sha256
            );
        }
    }
    Ok(())
}

/// Creates and locks `out`, which must be none of the inputs and hold no results but an earlier
/// merge of the same config.
fn prepare_out(out: &Path, folders: &[PathBuf], config_sha256: &str) -> Result<FolderLock> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    let out_canonical = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    if folders.iter().any(|dir| std::fs::canonicalize(dir).ok().as_ref() == Some(&out_canonical)) {
        bail!("--out {} is one of the folders being merged: choose another folder", out.display());
    }
    let lock = FolderLock::acquire(out)?;
    let results_path = out.join(names::RESULTS);
    if results_path.exists() {
        let earlier = Manifest::read(&out.join(names::MANIFEST)).ok().flatten();
        let only_a_merge = earlier.as_ref().is_some_and(|m| {
            !m.merged_from.is_empty()
                && m.earlier_sessions.is_empty()
                && m.config_sha256 == config_sha256
        });
        if !only_a_merge {
            bail!(
                "{} exists and is not an earlier merge of the same config: choose another --out",
                results_path.display()
            );
        }
    }
    Ok(lock)
}

/// The merged results.csv and what it holds.
struct Merged {
    bytes: Vec<u8>,
    recorded: usize,
    failed: Vec<String>,
    missing: Vec<(String, Option<plan::Shard>)>,
}

/// The chosen rows of every run of `plan`, in plan order; runs no input had are `missing`, with
/// the shard that should have held them when the inputs agree on a shard count.
fn merged_rows(
    plan: &Plan,
    chosen: &HashMap<String, (usize, &[ResultRow])>,
    count: Option<usize>,
) -> Result<Merged> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(header(&plan.settings))?;
    let mut merged =
        Merged { bytes: Vec::new(), recorded: 0, failed: Vec::new(), missing: Vec::new() };
    for (position, run) in plan.runs.iter().enumerate() {
        match chosen.get(&run.id) {
            Some((_, rows)) => {
                merged.recorded += 1;
                if rows.iter().any(|r| r.status != RunStatus::Ok) {
                    merged.failed.push(run.id.clone());
                }
                for row in rows.iter() {
                    writer.write_record(&record(row)?)?;
                }
            }
            None => {
                let shard = count.map(|count| plan::Shard { index: position % count + 1, count });
                merged.missing.push((run.id.clone(), shard));
            }
        }
    }
    merged.bytes = writer.into_inner()?;
    Ok(merged)
}

fn read_input(dir: &Path) -> Result<Input> {
    let Some(manifest) = Manifest::read(&dir.join(names::MANIFEST))? else {
        bail!(
            "{} is not a prunelab output folder (it has no manifest.json): give shard folders or OUT/<name>",
            dir.display()
        );
    };
    let config_path = dir.join(names::CONFIG);
    let config = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "{} is not a prunelab output folder: cannot read {}",
            dir.display(),
            config_path.display()
        )
    })?;
    if sha256_hex(config.as_bytes()) != manifest.config_sha256 {
        bail!(
            "{} does not match the config_sha256 in {}/manifest.json: the folder was changed after it was written",
            config_path.display(),
            dir.display()
        );
    }
    let running = FolderLock::is_held(dir);
    if running {
        tracing::warn!(
            "{} is still being written: merging the runs it has finished so far",
            dir.display()
        );
    }
    let results = dir.join(names::RESULTS);
    let (rows, left_out) = read_complete_rows(&results, Some(&manifest.committed))?;
    if left_out > 0 && !running {
        tracing::warn!(
            "{}: left out the last {left_out} byte(s), an incomplete run (`prunelab run --resume` there repairs it)",
            results.display()
        );
    }
    let mut runs: HashMap<String, Vec<ResultRow>> = HashMap::new();
    for row in current_rows(rows) {
        runs.entry(row.run_id.clone()).or_default().push(row);
    }
    Ok(Input { dir: dir.to_path_buf(), manifest, config, runs })
}

/// For each run id, the input it is taken from and its rows: an `ok` record wins over a `failed`
/// one, the first of equal standing is kept, and two `ok` records that differ (timings aside) are
/// refused.
fn choose_rows<'a>(
    inputs: &'a [Input],
    plan: &Plan,
) -> Result<HashMap<String, (usize, &'a [ResultRow])>> {
    let in_plan: std::collections::HashSet<&str> =
        plan.runs.iter().map(|r| r.id.as_str()).collect();
    let mut chosen: HashMap<String, (usize, &[ResultRow])> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let mut ids: Vec<&String> = input.runs.keys().collect();
        ids.sort();
        for id in ids {
            let rows = input.runs[id].as_slice();
            if !in_plan.contains(id.as_str()) {
                bail!(
                    "{}/results.csv has run {id}, which is not in the plan of its config: merge refused",
                    input.dir.display()
                );
            }
            let ok = |rows: &[ResultRow]| rows.iter().all(|r| r.status == RunStatus::Ok);
            match chosen.get(id) {
                None => {
                    chosen.insert(id.clone(), (i, rows));
                }
                Some(&(j, earlier)) => {
                    if ok(rows) && ok(earlier) {
                        if let Some(column) = first_difference(earlier, rows) {
                            bail!(
                                "run {id} is recorded differently in {} and {} ({column} differs): merge refused",
                                inputs[j].dir.display(),
                                input.dir.display()
                            );
                        }
                    } else if ok(rows) {
                        chosen.insert(id.clone(), (i, rows));
                    }
                }
            }
        }
    }
    Ok(chosen)
}

/// The first column (or the row count) in which two records of a run differ, timings aside.
fn first_difference(a: &[ResultRow], b: &[ResultRow]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("the number of rows, {} vs {},", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let strip = |r: &ResultRow| {
            serde_json::to_value(ResultRow { wall_ms: None, ..r.clone() }).unwrap_or_default()
        };
        if x.setting_values != y.setting_values {
            return Some("setting columns".into());
        }
        let (x, y) = (strip(x), strip(y));
        if let Some(column) = COLUMNS.iter().find(|c| x.get(**c) != y.get(**c)) {
            return Some(column.to_string());
        }
    }
    None
}

/// The shard count shared by every input, if they all are shards of one partition size.
fn common_shard_count(inputs: &[Input]) -> Option<usize> {
    let counts: Vec<Option<usize>> =
        inputs.iter().map(|i| i.manifest.shard.map(|s| s.count)).collect();
    counts.windows(2).all(|w| w[0] == w[1]).then(|| counts[0]).flatten()
}

/// `X` when every folder is `X/shards/<shard>`.
fn default_out(folders: &[PathBuf]) -> Result<PathBuf> {
    let parent = |dir: &PathBuf| -> Option<PathBuf> {
        let dir = std::fs::canonicalize(dir).ok()?;
        let shards = dir.parent()?;
        (shards.file_name()? == names::SHARDS).then(|| shards.parent().map(Path::to_path_buf))?
    };
    let parents: Vec<Option<PathBuf>> = folders.iter().map(parent).collect();
    match parents.first() {
        Some(Some(first)) if parents.iter().all(|p| p.as_ref() == Some(first)) => {
            // Report the folder as the user named it when they named it.
            Ok(folders[0]
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or(first.clone()))
        }
        _ => {
            bail!("give --out DIR: the folders merged are not all shards of one OUT/<name> folder")
        }
    }
}
