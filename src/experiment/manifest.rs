//! The provenance of an output folder: `manifest.json` (prunelab version, git hash, libtorch,
//! device, threads, host, command line, Slurm job, config hash, and every session that wrote to
//! the folder) and the lock that keeps a second writer out.
use super::names;
use super::record::Committed;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Holds an output folder for one process: a second `prunelab` writing the same folder at the same
/// time is refused. The lock (`.lock` in the folder) is released when the process ends, even by
/// `kill -9`.
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(names::LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "{} is being written by another prunelab process: wait for it, or choose another --out",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Whether another process holds `dir` now (false when it cannot be told).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = std::fs::File::open(dir.join(names::LOCK)) else { return false };
        matches!(file.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
    }
}

/// What one invocation of prunelab did to an output folder, for provenance.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    pub prunelab_version: String,
    pub git_hash: String,
    pub libtorch_version: String,
    pub hostname: String,
    /// The command line, program name first.
    pub command_line: Vec<String>,
    /// The Slurm job (`SLURM_JOB_ID`) when run by Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// Under a Slurm job array: the array's job id and this task's id (they name the logs, %A_%a).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_array_task_id: Option<String>,
    /// `cpu` or `cuda:N` (absent for a merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// libtorch intra-op threads of each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i32>,
    /// Runs executed at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    pub started: String,
    pub finished: Option<String>,
    /// The run ids whose rows this session appended to results.csv, in order.
    #[serde(default)]
    pub runs_recorded: Vec<String>,
}

impl Session {
    /// A session of this process, starting now.
    pub fn start(command_line: Vec<String>) -> Self {
        Self {
            prunelab_version: env!("CARGO_PKG_VERSION").into(),
            git_hash: env!("PRUNELAB_GIT_HASH").into(),
            libtorch_version: env!("PRUNELAB_LIBTORCH_VERSION").into(),
            hostname: hostname(),
            command_line,
            slurm_job_id: std::env::var("SLURM_JOB_ID").ok(),
            slurm_array_job_id: std::env::var("SLURM_ARRAY_JOB_ID").ok(),
            slurm_array_task_id: std::env::var("SLURM_ARRAY_TASK_ID").ok(),
            started: now_rfc3339(),
            ..Self::default()
        }
    }
}

/// One input of a merged folder.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MergedInput {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::plan::Shard>,
    /// Run ids whose rows were taken from this input.
    pub runs_taken: usize,
    /// The sessions that wrote the input, earliest first.
    pub sessions: Vec<Session>,
}

/// Provenance and state of an output folder (manifest.json), rewritten atomically after every run.
/// The top level describes the latest session; `earlier_sessions` the ones before it (a resumed
/// sweep), so every row of results.csv can be traced to the session that wrote it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub experiment: String,
    pub config_path: String,
    /// SHA-256 of config.resolved.yaml.
    pub config_sha256: String,
    pub seeds: Vec<u64>,
    /// Runs this folder holds when complete (the shard's share of the plan for a shard).
    pub runs: usize,
    /// Runs of the whole plan.
    pub plan_runs: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::plan::Shard>,
    /// Run ids recorded `ok` so far.
    pub runs_ok: usize,
    /// Run ids whose latest attempt failed.
    pub runs_failed: usize,
    /// The length of results.csv after its last whole run and the run being appended, if any
    /// (see [`ResultsFile`]).
    #[serde(flatten)]
    pub committed: Committed,
    #[serde(flatten)]
    pub session: Session,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_sessions: Vec<Session>,
    /// For a folder written by `prunelab merge`: its inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedInput>,
    /// For a merge: the plan's run ids that no input had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_missing: Vec<String>,
}

impl Manifest {
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// Reads `path`; `Ok(None)` if there is no such file.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a prunelab manifest", path.display()))
    }

    /// All sessions, earliest first.
    pub fn sessions(&self) -> Vec<Session> {
        self.earlier_sessions.iter().chain([&self.session]).cloned().collect()
    }
}

/// SHA-256 of `bytes` in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// This machine's name (`unknown` if it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
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
