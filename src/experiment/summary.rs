//! What a finished experiment found, for the screen (and `--json`): each run's unpruned error,
//! and for pruning sweeps a method × budget table of means ± standard deviations, one table per
//! combination of the settings that vary between runs.
use super::masks_file::{self, MaskRecord};
use super::names;
use super::plan::TaskKind;
use super::record::{ResultRow, RowKind, RunStatus};
use crate::prune::{Mask, Method};
use crate::theory::blocks::{one_per_block, uniform_probability};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One unpruned network.
#[derive(Clone, Debug, Serialize)]
pub struct RunLine {
    pub run_id: String,
    pub seed: u64,
    pub settings: String,
    pub ge_empirical: Option<f64>,
    pub ge_theory: Option<f64>,
    pub test_error: Option<f64>,
}

/// Mean and standard deviation of a metric over the rows of a cell (runs × masks).
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub mean: f64,
    pub sd: f64,
    pub rows: usize,
}

/// A method × budget table for one value of the varying settings.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    pub settings: String,
    /// `ge_empirical` for teacher-student runs, `test_error` for MLPs.
    pub metric: &'static str,
    /// Column labels: `kn:ke` for node and edge budgets, or the kept fraction.
    pub budgets: Vec<String>,
    /// Row label (method, with `+rw` when reweighted) → one cell per budget.
    pub rows: Vec<(String, Vec<Option<Cell>>)>,
}

/// The summary of an experiment's rows.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub runs: Vec<RunLine>,
    pub failed: usize,
    pub tables: Vec<Table>,
    /// Teacher-student runs with DPP node masks: how often they keep one unit per teacher block
    /// (filled by [`Summary::with_blocks`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub one_per_block: Vec<BlockLine>,
}

/// How often the DPP node masks of one run at one budget keep one unit per teacher block
/// (`theory::blocks`), against the exact probability under uniform selection.
#[derive(Clone, Debug, Serialize)]
pub struct BlockLine {
    pub run_id: String,
    pub settings: String,
    pub kn: usize,
    pub masks: usize,
    pub one_per_block: usize,
    pub uniform: Option<f64>,
}

impl Summary {
    /// Adds the block counts of the DPP node masks recorded under `dir`/models (runs without a
    /// masks file are left out).
    pub fn with_blocks(mut self, dir: &Path, rows: &[ResultRow]) -> Self {
        let mut seen = std::collections::BTreeSet::new();
        for row in rows.iter().filter(|r| r.method == RowKind::Pruned(Method::DppNode)) {
            if row.task != TaskKind::TeacherStudent || !seen.insert(row.run_id.clone()) {
                continue;
            }
            let path = dir.join(names::MODELS).join(&row.run_id).join(masks_file::FILE);
            match MaskRecord::read(&path) {
                Ok(record) => self.one_per_block.extend(block_lines(&record, row)),
                Err(e) => tracing::debug!("no block counts for run {}: {e:#}", row.run_id),
            }
        }
        self
    }
}

/// The block lines of one run's masks file.
fn block_lines(record: &MaskRecord, row: &ResultRow) -> Vec<BlockLine> {
    let Some((blocks, m)) = &record.teacher_block else { return Vec::new() };
    let prefix = format!("{}/", Method::DppNode);
    let mut lines: Vec<BlockLine> = record
        .masks
        .iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .filter_map(|(_, masks)| {
            let kept: Vec<&Vec<usize>> = masks
                .iter()
                .filter_map(|mask| match mask {
                    Mask::Nodes(units) => Some(units),
                    Mask::Edges(_) => None,
                })
                .collect();
            let kn = kept.first()?.len();
            Some(BlockLine {
                run_id: row.run_id.clone(),
                settings: row.settings.clone(),
                kn,
                masks: kept.len(),
                one_per_block: kept.iter().filter(|s| one_per_block(s, blocks, *m)).count(),
                uniform: uniform_probability(blocks, *m, kn),
            })
        })
        .collect();
    lines.sort_by_key(|l| l.kn);
    lines
}

/// Summarises the current rows of an output folder.
pub fn summarize(rows: &[ResultRow]) -> Summary {
    let ok = rows.iter().filter(|r| r.status == RunStatus::Ok);
    let runs = ok
        .clone()
        .filter(|r| r.method == RowKind::Unpruned)
        .map(|r| RunLine {
            run_id: r.run_id.clone(),
            seed: r.seed,
            settings: r.settings.clone(),
            ge_empirical: r.ge_empirical,
            ge_theory: r.ge_theory,
            test_error: r.test_error,
        })
        .collect();
    let failed = rows.iter().filter(|r| r.status == RunStatus::Failed).count();
    let mut by_settings: BTreeMap<String, Vec<&ResultRow>> = BTreeMap::new();
    for row in ok.filter(|r| matches!(r.method, RowKind::Pruned(_))) {
        by_settings.entry(row.settings.clone()).or_default().push(row);
    }
    let tables = by_settings.into_iter().map(|(settings, rows)| table(settings, &rows)).collect();
    Summary { runs, failed, tables, one_per_block: Vec::new() }
}

fn is_node(row: &ResultRow) -> bool {
    matches!(row.method, RowKind::Pruned(m) if m.is_node())
}

/// A budget's column label: `kn:ke` (kept units : kept inputs per unit) for teacher-student
/// sweeps, the kept fraction for MLPs.
fn budget_label(rows: &[&ResultRow], fraction: f64) -> String {
    let at: Vec<&&ResultRow> = rows.iter().filter(|r| r.keep_fraction == Some(fraction)).collect();
    let student = at.iter().any(|r| r.task == super::plan::TaskKind::TeacherStudent);
    let nodes = at.iter().find(|r| is_node(r)).and_then(|r| r.keep_nodes);
    let edges = at.iter().find(|r| !is_node(r)).and_then(|r| r.keep_edges);
    match (student, nodes, edges) {
        (true, Some(n), Some(e)) => format!("{n}:{e}"),
        (true, Some(n), None) => format!("kn={n}"),
        (true, None, Some(e)) => format!("ke={e}"),
        _ => format!("{fraction}"),
    }
}

fn table(settings: String, rows: &[&ResultRow]) -> Table {
    let metric =
        if rows.iter().any(|r| r.ge_empirical.is_some()) { "ge_empirical" } else { "test_error" };
    let value =
        |r: &ResultRow| if metric == "ge_empirical" { r.ge_empirical } else { r.test_error };
    let mut fractions: Vec<f64> = rows.iter().filter_map(|r| r.keep_fraction).collect();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    let mut labels: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for row in rows {
        let label =
            format!("{}{}", row.method, if row.reweight == Some(true) { " +rw" } else { "" });
        if !order.contains(&label) {
            order.push(label.clone());
        }
        let column = fractions.iter().position(|f| Some(*f) == row.keep_fraction).unwrap_or(0);
        let cells = labels.entry(label).or_insert_with(|| vec![Vec::new(); fractions.len()]);
        cells[column].extend(value(row));
    }
    let budgets = fractions.iter().map(|&f| budget_label(rows, f)).collect();
    let rows = order
        .into_iter()
        .map(|label| {
            let cells = labels[&label].iter().map(|v| cell(v)).collect();
            (label, cells)
        })
        .collect();
    Table { settings, metric, budgets, rows }
}

fn cell(values: &[f64]) -> Option<Cell> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Some(Cell { mean, sd: var.sqrt(), rows: values.len() })
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for run in &self.runs {
            let mut line = format!("  run {} seed {}", run.run_id, run.seed);
            if !run.settings.is_empty() {
                let _ = write!(line, " ({})", run.settings.replace(';', ", "));
            }
            if let Some(e) = run.ge_empirical {
                let _ = write!(line, ": ε̂ {e:.4}");
            }
            if let Some(e) = run.ge_theory {
                let _ = write!(line, ", ε theory {e:.4}");
            }
            if let Some(e) = run.test_error {
                let _ = write!(line, ": test error {:.2}%", 100.0 * e);
            }
            writeln!(f, "{line}")?;
        }
        for table in &self.tables {
            write_table(f, table)?;
        }
        write_blocks(f, &self.one_per_block)
    }
}

/// One line per run: the share of DPP node masks keeping one unit per teacher block, per kn.
fn write_blocks(f: &mut std::fmt::Formatter<'_>, lines: &[BlockLine]) -> std::fmt::Result {
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(f, "  DPP node masks keeping one unit per teacher block (uniform selection: exact)")?;
    let mut runs: Vec<&str> = lines.iter().map(|l| l.run_id.as_str()).collect();
    runs.dedup();
    for run in runs {
        let of_run: Vec<&BlockLine> = lines.iter().filter(|l| l.run_id == run).collect();
        let settings = &of_run[0].settings;
        let mut text = format!("    run {run}");
        if !settings.is_empty() {
            let _ = write!(text, " ({})", settings.replace(';', ", "));
        }
        for l in of_run {
            let share = 100.0 * l.one_per_block as f64 / l.masks.max(1) as f64;
            let uniform = l.uniform.map_or("-".into(), |u| format!("{:.1}%", 100.0 * u));
            let _ = write!(text, "; kn={}: {share:.0}% of {} (uniform {uniform})", l.kn, l.masks);
        }
        writeln!(f, "{text}")?;
    }
    Ok(())
}

fn write_table(f: &mut std::fmt::Formatter<'_>, table: &Table) -> std::fmt::Result {
    let percent = table.metric == "test_error";
    let title = if percent { "test error (%)" } else { "ε̂" };
    let settings = if table.settings.is_empty() {
        String::new()
    } else {
        format!(", {}", table.settings.replace(';', ", "))
    };
    writeln!(f, "  pruned: mean ± sd of {title} over runs and masks{settings}")?;
    let text = |c: &Option<Cell>| match c {
        Some(c) if percent => format!("{:.1} ± {:.1}", 100.0 * c.mean, 100.0 * c.sd),
        Some(c) => format!("{:.3} ± {:.3}", c.mean, c.sd),
        None => "-".into(),
    };
    let first = table.rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(6).max(6);
    let widths: Vec<usize> = (0..table.budgets.len())
        .map(|i| {
            table
                .rows
                .iter()
                .map(|(_, c)| text(&c[i]).chars().count())
                .chain([table.budgets[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut header = format!("    {:<first$}", "method");
    for (b, w) in table.budgets.iter().zip(&widths) {
        let _ = write!(header, "  {b:>w$}");
    }
    writeln!(f, "{header}")?;
    for (label, cells) in &table.rows {
        let mut line = format!("    {label:<first$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(line, "  {:>w$}", text(c));
        }
        writeln!(f, "{line}")?;
    }
    Ok(())
}
