//! Logging with `tracing`: diagnostics go to stderr (warnings by default, more with -v) and, once a
//! run folder exists, everything at INFO and above also goes to its `log.txt`. Metrics never go
//! here: they go to results.csv.
use anyhow::{Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);

/// Installs the subscriber. `verbosity`: −1 quiet (errors), 0 warnings, 1 info, 2+ debug.
/// `RUST_LOG` overrides the stderr level.
pub fn init(verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let stderr_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr =
        fmt::layer().with_writer(std::io::stderr).with_target(false).with_filter(stderr_filter);
    let file = fmt::layer()
        .with_writer(|| FileWriter)
        .with_ansi(false)
        .with_target(false)
        .with_filter(EnvFilter::new("info"));
    let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
}

/// From now on, also append the log to `path`.
pub fn log_to(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    *LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match LOG_FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}
