//! Logging with `tracing`: diagnostics go to stderr (warnings by default, more with -v) and, once a
//! run folder exists, everything at INFO and above also goes to its `log.txt`. Metrics never go
//! here: they go to results.csv. Colour (ANSI escapes) is used on stderr only when it is a
//! terminal and `NO_COLOR` is unset or empty (<https://no-color.org>); the log file never gets
//! any, not even in span fields (each layer formats its own fields).
use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::FormatFields;
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
    let colour = colour_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .with_filter(stderr_filter);
    let file = fmt::layer()
        .with_writer(|| FileWriter)
        .with_ansi(false)
        .fmt_fields(PlainFields::default())
        .with_target(false)
        .with_filter(EnvFilter::new("info"));
    let _ = tracing_subscriber::registry().with(stderr).with(file).try_init();
}

/// Whether stderr gets colour: only on a terminal, and never when `NO_COLOR` is set to a
/// non-empty value.
pub fn colour_wanted(stderr_is_terminal: bool, no_color: Option<impl AsRef<OsStr>>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.as_ref().is_empty())
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

/// The default field formatting under a type of its own: `tracing_subscriber` caches a span's
/// formatted fields per formatter type, so with the stderr layer's type the file layer would
/// reuse the stderr layer's (coloured) text.
#[derive(Default)]
struct PlainFields(DefaultFields);

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
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
