//! File helpers shared by every stage that writes: whole files appear atomically (written to a
//! temporary sibling, synced, then renamed), so a crash never leaves a half-written output.
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// The temporary sibling `path` is written to first: `.<name>.tmp-<pid>`.
fn temporary(path: &Path) -> std::path::PathBuf {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()))
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
pub fn write_all_atomic(files: &[(std::path::PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged: Vec<std::path::PathBuf> = Vec::new();
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
