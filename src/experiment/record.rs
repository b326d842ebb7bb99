//! Recording: the tidy `results.csv` (one row per run × mask sample, appended one whole run at a
//! time and never rewritten) and the run folder's `manifest.json` (provenance).
use super::plan::TaskKind;
use crate::prune::Method;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One row of results.csv. Field order is the column order (a contract: see the README's column
/// dictionary). `None` is written as an empty cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub experiment: String,
    pub run_id: String,
    pub task: TaskKind,
    pub seed: u64,
    pub layer: Option<String>,
    pub method: RowKind,
    pub reweight: Option<bool>,
    pub keep_nodes: Option<u64>,
    pub keep_edges: Option<u64>,
    pub keep_fraction: Option<f64>,
    pub achieved_fraction: Option<f64>,
    pub params_total: Option<u64>,
    pub params_nonzero: Option<u64>,
    pub mask_sample: Option<u64>,
    pub test_error: Option<f64>,
    pub ge_empirical: Option<f64>,
    pub ge_theory: Option<f64>,
    /// The exact expectation of `ge_theory` over the row's mask distribution (teacher-student
    /// pruned rows with an exact value; see docs/outputs.md). Files written before this column
    /// existed read with it empty.
    #[serde(default)]
    pub ge_expected: Option<f64>,
    pub wall_ms: Option<f64>,
    pub device: String,
    /// `ok`, or `failed` with the reason in `error`.
    pub status: RunStatus,
    pub error: Option<String>,
    /// The run's settings that vary across the experiment (`noise_std=0.25;lr=0.1`), for grouping.
    pub settings: String,
    /// MLP training rows (method `training`): the epoch; the final network's rows: its last epoch.
    pub epoch: Option<u64>,
    /// Mean cross-entropy over the epoch's training batches (method `training`).
    pub train_loss: Option<f64>,
    /// Several pruned layers: each layer's kept fraction of its weights (`w1=0.553;w2=0.282`);
    /// `achieved_fraction` is then the overall one.
    pub layer_kept_fractions: Option<String>,
    /// Fine-tuned rows: the test error after pruning, before fine-tuning (`test_error` is after).
    pub test_error_pruned: Option<f64>,
    /// Fine-tuned rows: each epoch's mean training loss, `;`-separated.
    pub finetune_losses: Option<String>,
    /// The values of the setting columns that follow the fixed ones (see [`header`]).
    #[serde(skip)]
    pub setting_values: Vec<String>,
}

/// What a row stands for: the `method` column.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum RowKind {
    /// The trained network (`none`).
    #[default]
    Unpruned,
    /// The trained teacher-student student with its rows rescaled before pruning (`normalized`).
    Normalized,
    /// One MLP training epoch (`training`).
    Training,
    /// A network pruned by a method (the method's name).
    Pruned(Method),
}

impl std::fmt::Display for RowKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowKind::Unpruned => f.write_str("none"),
            RowKind::Normalized => f.write_str("normalized"),
            RowKind::Training => f.write_str("training"),
            RowKind::Pruned(method) => f.write_str(method.name()),
        }
    }
}

impl From<RowKind> for String {
    fn from(kind: RowKind) -> String {
        kind.to_string()
    }
}

impl TryFrom<String> for RowKind {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<Self> {
        Ok(match text.as_str() {
            "none" => RowKind::Unpruned,
            "normalized" => RowKind::Normalized,
            "training" => RowKind::Training,
            _ => RowKind::Pruned(text.parse()?),
        })
    }
}

/// Whether a run completed: the `status` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    #[default]
    Ok,
    Failed,
}

/// The column names, in order.
pub const COLUMNS: [&str; 28] = [
    "experiment",
    "run_id",
    "task",
    "seed",
    "layer",
    "method",
    "reweight",
    "keep_nodes",
    "keep_edges",
    "keep_fraction",
    "achieved_fraction",
    "params_total",
    "params_nonzero",
    "mask_sample",
    "test_error",
    "ge_empirical",
    "ge_theory",
    "ge_expected",
    "wall_ms",
    "device",
    "status",
    "error",
    "settings",
    "epoch",
    "train_loss",
    "layer_kept_fractions",
    "test_error_pruned",
    "finetune_losses",
];

/// The columns added since the first results format; files written before them lack them and are read with them
/// empty.
const ADDED: [&str; 4] =
    ["ge_expected", "layer_kept_fractions", "test_error_pruned", "finetune_losses"];

/// The fixed columns of a results file written before [`ADDED`] existed.
fn legacy_columns() -> Vec<&'static str> {
    COLUMNS.iter().copied().filter(|c| !ADDED.contains(c)).collect()
}

/// The header of a results.csv: the fixed [`COLUMNS`], then one column per setting of the
/// experiment's runs (every sweep axis and every resolved fixed setting, e.g. `input_dim`,
/// `noise_std`, `hidden`), so that filters and group-bys never parse strings.
pub fn header(settings: &[String]) -> Vec<String> {
    COLUMNS.iter().map(|c| c.to_string()).chain(settings.iter().cloned()).collect()
}

/// An append-only results.csv, open for appending whole runs.
///
/// Crash safety: manifest.json records the file's length after its last whole run
/// (`results_bytes`). Before appending a run, the writer records in the manifest the run and the
/// length the file will have after it (`appending`); it then appends the run's rows with one
/// write, syncs, and records the new length. Opening an existing file keeps the whole runs only:
/// up to the recorded length, plus the run being appended if all of its rows arrived, and cuts off
/// the rest: a run whose write was interrupted, even if it stopped at a line break. Without a
/// usable record (an edited file or manifest), a torn last line is cut off together with the run
/// it may belong to (see [`complete_len`]). Every row is one line (error messages are flattened),
/// so the file is valid CSV again afterwards.
pub struct ResultsFile {
    path: PathBuf,
    file: std::fs::File,
    len: u64,
}

/// What manifest.json records about the length of results.csv.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Committed {
    /// The length after the last whole run.
    pub results_bytes: u64,
    /// The run being appended when the manifest was written, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appending: Option<Appending>,
}

/// A run being appended to results.csv, and the file's length after it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Appending {
    pub run_id: String,
    pub results_bytes: u64,
}

impl ResultsFile {
    /// Opens `path`, writing the header of `settings` if the file is new, and returns it with the
    /// rows of the whole runs it holds (see [`ResultsFile`]). An existing file must have the same
    /// header and well-formed rows.
    pub fn open(
        path: &Path,
        committed: Option<&Committed>,
        settings: &[String],
    ) -> Result<(Self, Vec<ResultRow>)> {
        if !path.exists() {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(header(settings))?;
            crate::files::write_atomic(path, &writer.into_inner()?)?;
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let keep = complete_len(&bytes, committed);
        let (columns, rows) = parse_rows(path, &bytes[..keep])?;
        if !has_all_columns(&bytes) {
            bail!(
                "{} was written by an older prunelab (it lacks the columns {}): read it with `prunelab plot`/`merge`, but run into another --out",
                path.display(),
                ADDED.join(", ")
            );
        }
        if columns != settings {
            bail!(
                "{} has the setting columns {columns:?}, this experiment {settings:?}: choose another --out",
                path.display()
            );
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if keep < bytes.len() {
            tracing::warn!(
                "{}: dropped the last {} byte(s), an incomplete run left by an interrupted write",
                path.display(),
                bytes.len() - keep
            );
            file.set_len(keep as u64)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("repairing {}", path.display()))?;
        }
        Ok((Self { path: path.to_path_buf(), file, len: keep as u64 }, rows))
    }

    /// The rows of one run as they will be appended.
    pub fn encode(rows: &[ResultRow]) -> Result<Vec<u8>> {
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for row in rows {
            writer.write_record(&record(row)?)?;
        }
        Ok(writer.into_inner()?)
    }

    /// Appends the [`encode`](Self::encode)d rows of one run with a single write, then syncs, and
    /// returns the new length of the file. A failed write is cut off again where possible.
    pub fn append(&mut self, encoded: &[u8]) -> Result<u64> {
        let written = self.file.write_all(encoded).and_then(|_| self.file.sync_data());
        if let Err(err) = written {
            let _ = self.file.set_len(self.len);
            return Err(err).with_context(|| format!("appending to {}", self.path.display()));
        }
        self.len += encoded.len() as u64;
        Ok(self.len)
    }

    /// The length of the file, in bytes, after the last whole run.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no run has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The length of the prefix of a results.csv that holds whole runs only. With a usable record
/// (its lengths within the file, after the header, at line breaks): the recorded length, or the
/// length after the run being appended when all of its rows are there. Without one, a file ending
/// in a line break is whole; a torn last line is dropped together with the lines before it of the
/// last whole line's run (which may be the torn run's first lines), so no part of an interrupted
/// run stays, at the price of one whole run done again at worst.
fn complete_len(bytes: &[u8], committed: Option<&Committed>) -> usize {
    let header_end = bytes.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line_start =
        |end: usize| bytes[..end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Rows are one line each and start `experiment,run_id,`.
    let run_id = |line: &[u8]| line.split(|&b| b == b',').nth(1).map(<[u8]>::to_vec);
    let boundary = |c: usize| c >= header_end && c <= bytes.len() && c > 0 && bytes[c - 1] == b'\n';
    if let Some(committed) = committed {
        let c = committed.results_bytes as usize;
        if boundary(c) {
            let appended = committed.appending.as_ref().filter(|a| {
                let end = a.results_bytes as usize;
                end > c
                    && boundary(end)
                    && bytes[c..end - 1]
                        .split(|&b| b == b'\n')
                        .all(|line| run_id(line).as_deref() == Some(a.run_id.as_bytes()))
            });
            return appended.map_or(c, |a| a.results_bytes as usize);
        }
    }
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return bytes.len();
    }
    let mut cut = line_start(bytes.len());
    if cut <= header_end {
        return cut;
    }
    let last_run = run_id(&bytes[line_start(cut - 1)..cut - 1]);
    while cut > header_end {
        let start = line_start(cut - 1);
        if run_id(&bytes[start..cut - 1]) != last_run {
            break;
        }
        cut = start;
    }
    cut
}

/// The fields of `row`: the fixed columns, then its setting values.
pub fn record(row: &ResultRow) -> Result<csv::StringRecord> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.serialize(row)?;
    let bytes = writer.into_inner()?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
    let mut fields = reader.records().next().context("a row encodes to one record")??;
    fields.extend(row.setting_values.iter());
    Ok(fields)
}

/// The setting columns and the rows of a results file's bytes.
fn parse_rows(path: &Path, bytes: &[u8]) -> Result<(Vec<String>, Vec<ResultRow>)> {
    if bytes.is_empty() {
        bail!("{} is not a prunelab results file (it has no complete header line)", path.display());
    }
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().with_context(|| format!("reading {}", path.display()))?.clone();
    let legacy = legacy_columns();
    let fixed_columns: Vec<&str> = if header.iter().take(COLUMNS.len()).eq(COLUMNS) {
        COLUMNS.to_vec()
    } else if header.iter().take(legacy.len()).eq(legacy.iter().copied()) {
        legacy
    } else {
        bail!("{} exists but is not a prunelab results file (its header differs)", path.display());
    };
    let n = fixed_columns.len();
    let fixed = csv::StringRecord::from(fixed_columns);
    let settings: Vec<String> = header.iter().skip(n).map(str::to_string).collect();
    let rows = reader
        .records()
        .map(|record| -> Result<ResultRow> {
            let record = record?;
            let row: ResultRow =
                record.iter().take(n).collect::<csv::StringRecord>().deserialize(Some(&fixed))?;
            let setting_values = record.iter().skip(n).map(str::to_string).collect();
            Ok(ResultRow { setting_values, ..row })
        })
        .enumerate()
        .map(|(i, row)| {
            row.with_context(|| format!("{}: row {} is malformed", path.display(), i + 2))
        })
        .collect::<Result<_>>()?;
    Ok((settings, rows))
}

/// Whether a results file's header has every fixed column (not that of an older prunelab).
fn has_all_columns(bytes: &[u8]) -> bool {
    let mut reader = csv::Reader::from_reader(bytes);
    reader.headers().is_ok_and(|h| h.iter().take(COLUMNS.len()).eq(COLUMNS))
}

/// Reads a results.csv.
pub fn read_rows(path: &Path) -> Result<Vec<ResultRow>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_rows(path, &bytes)?.1)
}

/// Reads the whole runs of a results.csv without changing it (it may be being written): the rows
/// and the number of bytes after them that were left out (see [`ResultsFile`]).
pub fn read_complete_rows(
    path: &Path,
    committed: Option<&Committed>,
) -> Result<(Vec<ResultRow>, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let keep = complete_len(&bytes, committed);
    Ok((parse_rows(path, &bytes[..keep])?.1, (bytes.len() - keep) as u64))
}

/// The current rows of every run id, in file order. A run id's rows are its `ok` row set when it
/// has one (a run recorded `ok` is never run again in the same folder), otherwise its last `failed`
/// row: `--resume` runs failed runs again and appends, so earlier failed attempts stay in the
/// file, as history, and are superseded by the latest.
pub fn current_rows(rows: Vec<ResultRow>) -> Vec<ResultRow> {
    let ok: std::collections::HashSet<String> =
        rows.iter().filter(|r| r.status == RunStatus::Ok).map(|r| r.run_id.clone()).collect();
    let mut last_failed = std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row.status != RunStatus::Ok {
            last_failed.insert(row.run_id.clone(), i);
        }
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, r)| {
            if ok.contains(&r.run_id) {
                r.status == RunStatus::Ok
            } else {
                last_failed.get(&r.run_id) == Some(i)
            }
        })
        .map(|(_, r)| r)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "experiment,run_id,rest\n";

    fn row(run: &str, status: &str, method: &str) -> ResultRow {
        ResultRow {
            run_id: run.into(),
            status: if status == "ok" { RunStatus::Ok } else { RunStatus::Failed },
            method: RowKind::try_from(method.to_string()).unwrap(),
            ..ResultRow::default()
        }
    }

    fn at(len: usize, appending: Option<(&str, usize)>) -> Committed {
        Committed {
            results_bytes: len as u64,
            appending: appending
                .map(|(id, end)| Appending { run_id: id.into(), results_bytes: end as u64 }),
        }
    }

    #[test]
    fn whole_runs_are_kept_and_interrupted_ones_cut() {
        let whole = format!("{HEADER}e,a,1\ne,a,2\ne,b,1\n");
        let len = whole.len();
        let cut = |text: &str, committed: Option<Committed>| {
            complete_len(text.as_bytes(), committed.as_ref())
        };
        assert_eq!(cut(&whole, None), len);
        assert_eq!(cut(&whole, Some(at(len, None))), len);
        // Lines beyond the recorded length are an interrupted run, even when they end in a break…
        let more = format!("{whole}e,c,1\n");
        assert_eq!(cut(&more, Some(at(len, None))), len);
        assert_eq!(cut(&more, Some(at(len, Some(("c", len + 12))))), len, "c is not all there");
        assert_eq!(cut(&more, Some(at(len, Some(("d", len + 6))))), len, "not d's rows");
        // …unless they are all the rows of the run being appended.
        assert_eq!(cut(&more, Some(at(len, Some(("c", len + 6))))), len + 6);
        // Without a usable record, a torn line goes with the last whole line's run.
        let torn = format!("{whole}e,c,");
        assert_eq!(cut(&torn, None), HEADER.len() + 12);
        assert_eq!(cut(&torn, Some(at(3, None))), HEADER.len() + 12);
        assert_eq!(cut(&torn, Some(at(len + 100, None))), HEADER.len() + 12);
        let torn_in_run = format!("{HEADER}e,a,1\ne,b,1\ne,b,2\ne,b");
        assert_eq!(cut(&torn_in_run, None), HEADER.len() + 6);
        assert_eq!(cut(&format!("{HEADER}e,a"), None), HEADER.len());
        assert_eq!(cut("experiment,ru", None), 0);
    }

    #[test]
    fn the_ok_record_or_else_the_last_failure_is_current() {
        let mut failed_again = row("b", "failed", "none");
        failed_again.error = Some("second".into());
        let rows = vec![
            row("a", "failed", "none"),
            row("b", "failed", "none"),
            row("a", "ok", "none"),
            row("a", "ok", "dpp_node"),
            failed_again.clone(),
            row("c", "ok", "none"),
        ];
        assert_eq!(
            current_rows(rows),
            vec![
                row("a", "ok", "none"),
                row("a", "ok", "dpp_node"),
                failed_again,
                row("c", "ok", "none")
            ]
        );
    }

    #[test]
    fn results_files_repair_themselves_and_append_whole_runs() {
        let dir = std::env::temp_dir().join(format!("prunelab-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::experiment::names::RESULTS);
        let _ = std::fs::remove_file(&path);
        let (mut file, rows) = ResultsFile::open(&path, None, &[]).unwrap();
        assert!(rows.is_empty());
        let header_len = file.len();
        let encode = |rows: &[ResultRow]| ResultsFile::encode(rows).unwrap();
        let one =
            file.append(&encode(&[row("a", "ok", "none"), row("a", "ok", "dpp_node")])).unwrap();
        let two = file.append(&encode(&[row("b", "ok", "none")])).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), two);
        drop(file);
        let recorded = at(one as usize, None);
        let (file, rows) = ResultsFile::open(&path, Some(&recorded), &[]).unwrap();
        assert_eq!((file.len(), rows.len()), (one, 2), "the run after the recorded length is cut");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), one);
        drop(file);
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..one as usize - 5]).unwrap();
        let (file, rows) = ResultsFile::open(&path, Some(&recorded), &[]).unwrap();
        assert_eq!((file.len(), rows.len()), (header_len, 0), "the torn run is cut whole");
        std::fs::write(&path, "a,b\n").unwrap();
        let err = ResultsFile::open(&path, None, &[]).err().unwrap().to_string();
        assert!(err.contains("not a prunelab results file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_without_ge_expected_read_with_it_empty_but_are_not_appended_to() {
        let dir = std::env::temp_dir().join(format!("prunelab-legacy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::experiment::names::RESULTS);
        let mut header: Vec<String> = legacy_columns().iter().map(|c| c.to_string()).collect();
        header.push("noise_std".into());
        let mut fields = vec![""; header.len()];
        let set = |fields: &mut Vec<&str>, column: &str, value: &'static str| {
            fields[header.iter().position(|c| c == column).unwrap()] = value;
        };
        for (column, value) in [
            ("experiment", "e"),
            ("run_id", "a"),
            ("task", "teacher_student"),
            ("seed", "1"),
            ("method", "dpp_node"),
            ("ge_theory", "0.5"),
            ("status", "ok"),
            ("noise_std", "0.25"),
        ] {
            set(&mut fields, column, value);
        }
        std::fs::write(&path, format!("{}\n{}\n", header.join(","), fields.join(","))).unwrap();
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].ge_theory, rows[0].ge_expected), (Some(0.5), None));
        assert_eq!(rows[0].setting_values, ["0.25"]);
        let settings = ["noise_std".to_string()];
        let err = ResultsFile::open(&path, None, &settings).err().unwrap().to_string();
        assert!(err.contains("older prunelab"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn setting_columns_follow_the_fixed_ones_and_read_back() {
        let dir = std::env::temp_dir().join(format!("prunelab-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::experiment::names::RESULTS);
        let _ = std::fs::remove_file(&path);
        let settings = vec!["input_dim".to_string(), "noise_std".to_string()];
        let (mut file, rows) = ResultsFile::open(&path, None, &settings).unwrap();
        assert!(rows.is_empty());
        let row = ResultRow {
            setting_values: vec!["500".into(), "0.25".into()],
            ..row("a", "ok", "none")
        };
        file.append(&ResultsFile::encode(std::slice::from_ref(&row)).unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().next().unwrap().ends_with(",finetune_losses,input_dim,noise_std"),
            "{text}"
        );
        assert_eq!(read_rows(&path).unwrap(), vec![row]);
        let err = ResultsFile::open(&path, None, &[]).err().unwrap().to_string();
        assert!(err.contains("setting columns"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
