//! File helpers shared by every stage that writes: whole files appear atomically (written to a
//! temporary sibling `.<name>.tmp-<pid>`, synced, then renamed), so a crash never leaves a
//! half-written output. A process killed mid-write leaves its temporary behind; the first write
//! of a later process to that folder removes the temporaries whose process is gone (no
//! `/proc/<pid>`), never a live process's.
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The folders this process has already cleaned of stale temporaries.
static CLEANED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// The temporary sibling `path` is written to first, `.<name>.tmp-<pid>`, after the stale
/// temporaries of its folder are cleaned (once per folder and process).
fn temporary(path: &Path) -> PathBuf {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    clean_once(tmp.parent().unwrap_or(Path::new(".")));
    tmp
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Writes every file or none: each goes to a temporary sibling first, and the temporaries are
/// renamed only once all of them are written.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (path, bytes) in files {
            let tmp = temporary(path);
            staged.push(tmp.clone());
            let mut file = std::fs::File::create(&tmp)
                .with_context(|| format!("writing {}", path.display()))?;
            file.write_all(bytes)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        for ((path, _), tmp) in files.iter().zip(&staged) {
            std::fs::rename(tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for tmp in &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

/// Removes the stale temporaries of `dir` unless this process has done so already.
fn clean_once(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let first = CLEANED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(dir.to_path_buf());
    if first {
        remove_stale_temporaries(dir);
    }
}

/// Removes the temporaries `.<name>.tmp-<pid>` in `dir` whose process no longer runs, and returns
/// their paths. Best effort: a folder that cannot be listed, or a system without `/proc` (where
/// no process can be told dead), removes nothing.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    if !Path::new("/proc/self").exists() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !process_alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            tracing::debug!("removed {}, left by process {pid}", entry.path().display());
            removed.push(entry.path());
        }
    }
    removed
}

/// The pid in a temporary's name `.<name>.tmp-<pid>`, None for any other name.
fn temporary_pid(name: &str) -> Option<u32> {
    let (stem, pid) = name.rsplit_once(".tmp-")?;
    if stem.len() < 2 || !stem.starts_with('.') || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` exists (this process always does).
fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_temporaries_give_a_pid() {
        assert_eq!(temporary_pid(".results.csv.tmp-1234"), Some(1234));
        assert_eq!(temporary_pid(".a.tmp-b.tmp-7"), Some(7));
        for other in ["results.csv", ".results.csv", "x.tmp-12", ".tmp-12", ".a.tmp-", ".a.tmp-1x"]
        {
            assert_eq!(temporary_pid(other), None, "{other}");
        }
    }
}
