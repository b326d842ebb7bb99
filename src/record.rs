//! Recording: the tidy `results.csv` (one row per run × mask sample, appended one whole run at a
//! time and never rewritten) and the run folder's `manifest.json` (provenance).
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
    pub task: String,
    pub seed: u64,
    pub layer: Option<String>,
    pub method: String,
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
    pub wall_ms: Option<f64>,
    pub device: String,
    /// `ok`, or `failed` with the reason in `error`.
    pub status: String,
    pub error: Option<String>,
    /// The run's settings that vary across the experiment (`noise_std=0.25;lr=0.1`), for grouping.
    pub settings: String,
    /// MLP training rows (method `training`): the epoch; the final network's rows: its last epoch.
    pub epoch: Option<u64>,
    /// Mean cross-entropy over the epoch's training batches (method `training`).
    pub train_loss: Option<f64>,
}

/// The column names, in order.
pub const COLUMNS: [&str; 24] = [
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
    "wall_ms",
    "device",
    "status",
    "error",
    "settings",
    "epoch",
    "train_loss",
];

/// An append-only results.csv.
pub struct ResultsFile {
    path: PathBuf,
}

impl ResultsFile {
    /// Opens `path`, writing the header if the file is new. An existing file must have our header.
    pub fn open(path: &Path) -> Result<Self> {
        if path.exists() {
            let mut reader = csv::Reader::from_path(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let header = reader.headers().with_context(|| format!("reading {}", path.display()))?;
            if header.iter().ne(COLUMNS) {
                bail!(
                    "{} exists but is not a prunelab results file (its header differs)",
                    path.display()
                );
            }
        } else {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(COLUMNS)?;
            crate::files::write_atomic(path, &writer.into_inner()?)?;
        }
        Ok(Self { path: path.to_path_buf() })
    }

    /// Appends the rows of one run with a single write, then syncs, so an interrupted sweep leaves
    /// whole runs only.
    pub fn append(&self, rows: &[ResultRow]) -> Result<()> {
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        for row in rows {
            writer.serialize(row)?;
        }
        let bytes = writer.into_inner()?;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// All rows written so far.
    pub fn read(&self) -> Result<Vec<ResultRow>> {
        read_rows(&self.path)
    }
}

/// Reads a results.csv.
pub fn read_rows(path: &Path) -> Result<Vec<ResultRow>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.with_context(|| format!("{}: row {} is malformed", path.display(), i + 2))
        })
        .collect()
}

/// Provenance of an output folder.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub prunelab_version: &'static str,
    pub git_hash: &'static str,
    pub libtorch_version: &'static str,
    pub device: String,
    pub threads: i32,
    pub config_path: String,
    pub config_sha256: String,
    pub seeds: Vec<u64>,
    pub runs: usize,
    pub started: String,
    pub finished: Option<String>,
    pub runs_failed: usize,
}

impl Manifest {
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

/// The current UTC time as RFC 3339 (seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
