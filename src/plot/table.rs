//! The rows of one or more results.csv files, with every setting as a column.
//!
//! Older files pack the settings that vary across an experiment into one `settings` cell
//! (`lr=0.5;noise_std=0.0`); newer ones also give every setting its own column, after the fixed
//! columns. [`Table::load`] reads both: the packed cell is split into *virtual* columns, and a
//! real column of the same name wins. [`is_setting`] is the one rule deciding which columns are
//! settings (everything that is not a known bookkeeping or metric column).
use crate::experiment::record::COLUMNS;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Name endings of metric columns that may be added later (`ge_*`, `*_error`, `*_loss`, …).
const METRIC_PREFIXES: [&str; 1] = ["ge_"];
const METRIC_SUFFIXES: [&str; 5] = ["_error", "_loss", "_ms", "_fraction", "_accuracy"];

/// Whether `column` is a setting of the run (`noise_std`, `lr`, `hidden`, …): any column that is
/// neither one of results.csv's or a trajectory file's own columns nor named like a metric.
pub fn is_setting(column: &str) -> bool {
    !COLUMNS.contains(&column)
        && !crate::experiment::trajectory::is_column(column)
        && !METRIC_PREFIXES.iter().any(|p| column.starts_with(p))
        && !METRIC_SUFFIXES.iter().any(|s| column.ends_with(s))
}

/// One row: its cells by column name (real and virtual) and where it came from.
#[derive(Clone, Debug)]
pub struct Row {
    /// Index into [`Table::files`].
    pub file: usize,
    /// Line number in the file (1 is the header).
    pub line: u64,
    cells: HashMap<String, String>,
}

impl Row {
    /// The cell of `column`, or "" when the row has none.
    pub fn get(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }
}

/// One file's path and its columns (header first, then virtual columns in order of appearance).
#[derive(Clone, Debug)]
pub struct File {
    pub path: PathBuf,
    pub columns: Vec<String>,
}

/// The rows of all files, in file order.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub files: Vec<File>,
    pub rows: Vec<Row>,
}

impl Table {
    /// Reads every file (see the module docs for the packed `settings` cell).
    pub fn load(paths: &[PathBuf]) -> Result<Table> {
        let mut table = Table::default();
        for path in paths {
            table.read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        Ok(table)
    }

    /// Builds a table from CSV text (for tests and callers that hold the text already).
    pub fn from_text(path: &Path, text: &str) -> Result<Table> {
        let mut table = Table::default();
        table.parse(path, text.as_bytes())?;
        Ok(table)
    }

    fn read(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path)?;
        self.parse(path, &bytes)
    }

    fn parse(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
        let header: Vec<String> = reader.headers()?.iter().map(String::from).collect();
        let file = self.files.len();
        let mut columns = header.clone();
        for record in reader.records() {
            let record = record?;
            let line = record.position().map_or(0, |p| p.line());
            let mut cells: HashMap<String, String> =
                header.iter().cloned().zip(record.iter().map(String::from)).collect();
            let packed = cells.get("settings").cloned().unwrap_or_default();
            for (key, value) in split_settings(&packed) {
                if !columns.iter().any(|c| c == key) {
                    columns.push(key.to_string());
                }
                cells.entry(key.to_string()).or_insert_with(|| value.to_string());
            }
            self.rows.push(Row { file, line, cells });
        }
        self.files.push(File { path: path.to_path_buf(), columns });
        Ok(())
    }

    /// Fails unless every file has `column` (real or virtual), naming the file and its columns.
    pub fn require(&self, column: &str) -> Result<()> {
        for file in &self.files {
            if !file.columns.iter().any(|c| c == column) {
                bail!(
                    "{} has no column `{column}` (its columns: {})",
                    file.path.display(),
                    file.columns.join(", ")
                );
            }
        }
        Ok(())
    }

    /// Whether some file has `column`.
    pub fn has(&self, column: &str) -> bool {
        self.files.iter().any(|f| f.columns.iter().any(|c| c == column))
    }

    /// The setting columns of all files, in order of first appearance.
    pub fn settings(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for column in self.files.iter().flat_map(|f| &f.columns) {
            if is_setting(column) && !out.contains(column) {
                out.push(column.clone());
            }
        }
        out
    }

    /// The path of `row`'s file.
    pub fn path(&self, row: &Row) -> &Path {
        &self.files[row.file].path
    }
}

/// `key=value` pairs of a packed `settings` cell (`;`-separated); malformed parts are skipped.
fn split_settings(packed: &str) -> impl Iterator<Item = (&str, &str)> {
    packed
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_the_columns_that_are_neither_fixed_nor_metrics() {
        for setting in ["noise_std", "lr", "hidden", "teacher_hidden", "v_star", "data"] {
            assert!(is_setting(setting), "{setting}");
        }
        for other in ["method", "seed", "settings", "ge_expected", "ge_new", "val_error", "epoch"] {
            assert!(!is_setting(other), "{other}");
        }
    }

    #[test]
    fn packed_settings_become_columns_and_real_columns_win() {
        let text = "seed,settings,lr\n1,noise_std=0.25;lr=0.1,0.5\n2,noise_std=0.0,0.5\n";
        let table = Table::from_text(Path::new("a.csv"), text).unwrap();
        assert_eq!(table.files[0].columns, ["seed", "settings", "lr", "noise_std"]);
        assert_eq!(table.settings(), ["lr", "noise_std"]);
        let row = &table.rows[0];
        assert_eq!((row.get("noise_std"), row.get("lr"), row.get("nope")), ("0.25", "0.5", ""));
        assert_eq!((table.rows[1].get("noise_std"), table.rows[1].line), ("0.0", 3));
        assert!(table.require("noise_std").is_ok());
        let err = table.require("v_star").unwrap_err().to_string();
        assert!(err.contains("a.csv has no column `v_star`") && err.contains("noise_std"), "{err}");
    }
}
