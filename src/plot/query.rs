//! What to plot and which rows it uses: the [`Query`], the `--where` filters, the rule that
//! leaves MLP training rows out, and the **pooling rule**.
//!
//! # Pooling rule
//!
//! Rows are pooled into one point only when they are repeats of the same thing: seeds and mask
//! samples. Rows of one series at one x (or of one unpruned reference) that differ in a *design
//! column* (a setting, see [`super::table::is_setting`], or `experiment`, `task`, `layer`,
//! `method`, `reweight`, and the budget `keep_fraction` unless x is a fraction) are refused
//! by [`check_pooling`], naming the column and its values, unless the column is in
//! [`Query::average_over`]. Points at different x may differ (so x can itself be a setting, e.g.
//! `--x input_dim`, with the settings tied to it such as `train_steps`). Filtering a column to one
//! value, or splitting series by it, removes the difference.
use super::table::{Row, Table};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;

/// A closed form that can be drawn over the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedForm {
    /// Theorem 1: DPP node pruning of an idealised specialised student to kn ≤ M units, eq. 5
    /// (not reweighted) and eq. 6 (DIVNET reweighting).
    Theorem1,
}

impl std::str::FromStr for ClosedForm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "theorem1" => Ok(ClosedForm::Theorem1),
            _ => Err(format!("unknown closed form `{text}` (known: theorem1)")),
        }
    }
}

/// What to plot from the CSV files.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Column for the x axis.
    pub x: String,
    /// Column for the y axis.
    pub y: String,
    /// Columns whose values split rows into series; `None`: every design column that varies
    /// among the selected rows ([`default_by`]).
    pub by: Option<Vec<String>>,
    /// `(column, value)`: all must hold; a value may be a comma list meaning any of them. Numbers
    /// compare by value (`1` matches `1.0`), everything else exactly; an empty value matches empty
    /// cells.
    pub filters: Vec<(String, String)>,
    /// Design columns whose different values may be averaged together (see the module docs).
    pub average_over: Vec<String>,
    /// x is multiplied by this (100 for percent).
    pub x_scale: f64,
    /// y is multiplied by this (100 for percent).
    pub y_scale: f64,
    /// Series colours follow this column [default: `method` when it splits series, else the first
    /// `by` column].
    pub color_by: Option<String>,
    /// Series line styles follow this column [default: the next `by` column].
    pub style_by: Option<String>,
    /// Draw each series' mean `ge_theory` as a dotted line beside its points.
    pub theory: bool,
    /// Draw a closed form as lines.
    pub closed_form: Option<ClosedForm>,
    /// Shift series sideways a little so their error bars do not overlap.
    pub jitter: bool,
}

impl Query {
    /// A query with default grouping, no filters, unit scales and no extras.
    pub fn new(x: &str, y: &str) -> Self {
        Query {
            x: x.into(),
            y: y.into(),
            by: None,
            filters: Vec::new(),
            average_over: Vec::new(),
            x_scale: 1.0,
            y_scale: 1.0,
            color_by: None,
            style_by: None,
            theory: false,
            closed_form: None,
            jitter: false,
        }
    }
}

/// The method values of unpruned networks' rows: the trained network, and the teacher-student
/// student after row normalisation (the network the masks are applied to).
pub const UNPRUNED: [&str; 2] = ["none", "normalized"];

/// x columns that measure training time (trajectory files): on them unpruned rows are points of
/// a series, not a reference line.
pub const TIME_AXES: [&str; 2] = ["alpha", "step"];

/// The method of MLP training rows (one per epoch).
pub const TRAINING: &str = "training";

/// Design columns that are not settings, in the order they split series by default.
const DESIGN: [&str; 5] = ["method", "reweight", "experiment", "layer", "task"];

/// The x axes that are the budget as a fraction. On any other axis rows with different budgets
/// are different things, so `keep_fraction` is a design column: on α, an epoch or a setting it
/// splits series by default; on `keep_nodes` or `keep_edges` (where edge budgets all keep K units
/// and node budgets all keep every input) it only refuses to pool budgets at one x.
const FRACTION_AXES: [&str; 2] = ["keep_fraction", "achieved_fraction"];

/// One selected row with its x and y (already scaled).
#[derive(Clone, Debug)]
pub struct Obs<'a> {
    pub row: &'a Row,
    pub x: f64,
    pub y: f64,
    /// `ge_theory` of the row, when asked for and present.
    pub theory: Option<f64>,
    /// For unpruned rows: whether the rows were normalised (method `normalized`).
    pub unpruned: Option<bool>,
}

/// The rows a query uses.
pub struct Selection<'a> {
    pub obs: Vec<Obs<'a>>,
    /// Rows skipped because their x or y was not a finite number (NaN, inf).
    pub dropped: usize,
}

/// Keeps the rows of `table` that `query` selects (status `ok`, every filter, no training rows
/// unless a `method` filter names `training`) and reads their x and y.
pub fn select<'a>(table: &'a Table, query: &Query) -> Result<Selection<'a>> {
    for column in ["seed", "run_id", "status", query.x.as_str(), query.y.as_str()] {
        table.require(column)?;
    }
    for column in query.filters.iter().map(|(c, _)| c).chain(query.by.iter().flatten()) {
        table.require(column)?;
    }
    if let Some(column) = query.average_over.iter().find(|c| !table.has(c)) {
        bail!("--average-over {column}: {} has no such column", describe_files(table));
    }
    let training = query.filters.iter().any(|(c, v)| c == "method" && matches("training", v));
    let (mut matched, mut dropped, mut obs) = (0, 0, Vec::new());
    for row in &table.rows {
        let method = row.get("method");
        let unpruned = UNPRUNED.contains(&method) && !TIME_AXES.contains(&query.x.as_str());
        // Unpruned rows leave pruning columns (reweight, …) empty: not applicable, so a filter on
        // such a column keeps them.
        let keep = |(c, wanted): &(String, String)| {
            matches(row.get(c), wanted) || (unpruned && row.get(c).is_empty())
        };
        if row.get("status") != "ok"
            || (method == TRAINING && !training)
            || !query.filters.iter().all(keep)
        {
            continue;
        }
        matched += 1;
        let (x, y) = (row.get(&query.x), row.get(&query.y));
        if y.is_empty() || (x.is_empty() && !unpruned) {
            continue;
        }
        let y = number(table, row, &query.y)? * query.y_scale;
        let x = if unpruned { 0.0 } else { number(table, row, &query.x)? * query.x_scale };
        if !x.is_finite() || !y.is_finite() {
            dropped += 1;
            continue;
        }
        let theory = match row.get("ge_theory") {
            "" => None,
            _ if !query.theory => None,
            _ => Some(number(table, row, "ge_theory")? * query.y_scale).filter(|t| t.is_finite()),
        };
        obs.push(Obs { row, x, y, theory, unpruned: unpruned.then(|| method != UNPRUNED[0]) });
    }
    refuse_empty(table, query, matched, &obs)?;
    Ok(Selection { obs, dropped })
}

/// The errors for selections that leave nothing to draw.
fn refuse_empty(table: &Table, query: &Query, matched: usize, obs: &[Obs]) -> Result<()> {
    let described = describe(table, query);
    if matched == 0 {
        bail!("no rows left after filtering {described}");
    }
    if obs.iter().all(|o| o.unpruned.is_some()) && !obs.is_empty() {
        bail!("only unpruned (method=none) rows are left after filtering {described}");
    }
    if obs.is_empty() {
        bail!(
            "no rows with both `{}` and `{}` values are left after filtering {described}",
            query.x,
            query.y
        );
    }
    Ok(())
}

/// The cell of `column` in `row` as a number, or an error naming the file, line and column.
fn number(table: &Table, row: &Row, column: &str) -> Result<f64> {
    let text = row.get(column);
    text.parse::<f64>().with_context(|| {
        format!(
            "{} line {}: column `{column}` holds `{text}`, not a number",
            table.path(row).display(),
            row.line
        )
    })
}

/// Whether `cell` equals one of the comma-separated `wanted` values (numbers by value).
pub fn matches(cell: &str, wanted: &str) -> bool {
    wanted.split(',').map(str::trim).any(|w| {
        w == cell || matches!((w.parse::<f64>(), cell.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
    })
}

/// The files and the filters as the user wrote them, for error messages.
fn describe(table: &Table, query: &Query) -> String {
    let filters: Vec<String> = std::iter::once("status=ok".to_string())
        .chain(query.filters.iter().map(|(c, v)| format!("{c}={v}")))
        .collect();
    format!("{} by {}", describe_files(table), filters.join(", "))
}

/// The files' paths, joined.
fn describe_files(table: &Table) -> String {
    let files: Vec<String> = table.files.iter().map(|f| f.path.display().to_string()).collect();
    files.join(", ")
}

/// The design columns of `table` for an `x` axis: `method`, `reweight`, `keep_fraction` (see
/// [`FRACTION_AXES`]), the settings, then `experiment`, `layer`, `task` (those present).
pub fn design_columns(table: &Table, x: &str) -> Vec<String> {
    let (first, rest) = DESIGN.split_at(2);
    let named = |names: &[&str]| -> Vec<String> {
        names.iter().filter(|c| table.has(c)).map(|c| c.to_string()).collect()
    };
    let budget = if FRACTION_AXES.contains(&x) { Vec::new() } else { named(&["keep_fraction"]) };
    [named(first), budget, table.settings(), named(rest)].concat()
}

/// The design columns that take more than one value among the pruned rows of `obs` (not the
/// budget on a budget axis: there it is x).
pub fn default_by(table: &Table, obs: &[Obs], x: &str) -> Vec<String> {
    let pruned: Vec<&Row> = obs.iter().filter(|o| o.unpruned.is_none()).map(|o| o.row).collect();
    let budget_axis = matches!(x, "keep_nodes" | "keep_edges");
    design_columns(table, x)
        .into_iter()
        .filter(|c| !(budget_axis && c == "keep_fraction"))
        .filter(|c| pruned.iter().any(|r| r.get(c) != pruned[0].get(c)))
        .collect()
}

/// The key of the series or reference `o` belongs to: `(column, value)` of each `by` column;
/// unpruned rows leave out `method` and are marked by a leading `rows` pair.
pub fn group_key(o: &Obs, by: &[String]) -> Vec<(String, String)> {
    let pairs = by.iter().map(|c| (c.clone(), o.row.get(c).to_string()));
    match o.unpruned {
        None => pairs.collect(),
        Some(normalised) => {
            let kind = if normalised { "normalised" } else { "unpruned" };
            let rows = ("rows".to_string(), kind.to_string());
            std::iter::once(rows).chain(pairs.filter(|(c, _)| c != "method")).collect()
        }
    }
}

/// Refuses to pool rows that differ in a design column (see the module docs).
pub fn check_pooling(
    table: &Table,
    obs: &[Obs],
    x: &str,
    by: &[String],
    average_over: &[String],
) -> Result<()> {
    let free: Vec<String> = design_columns(table, x)
        .into_iter()
        .filter(|c| !by.contains(c) && !average_over.contains(c))
        .collect();
    // A series' rows are pooled per x; an unpruned reference pools over every x.
    let key_of = |o: &Obs| {
        let mut key = group_key(o, by);
        if o.unpruned.is_none() {
            key.push(("x".to_string(), o.x.to_bits().to_string()));
        }
        key
    };
    let mut first: HashMap<Vec<(String, String)>, &Row> = HashMap::new();
    // Series rows first: their difference is the one worth naming.
    let (pruned, unpruned): (Vec<&Obs>, Vec<&Obs>) = obs.iter().partition(|o| o.unpruned.is_none());
    for o in pruned.into_iter().chain(unpruned) {
        let key = key_of(o);
        let seen = *first.entry(key.clone()).or_insert(o.row);
        let differs = |c: &&String| {
            seen.get(c) != o.row.get(c)
                && !(o.unpruned.is_some() && DESIGN[..2].contains(&c.as_str()))
        };
        if let Some(column) = free.iter().find(differs) {
            let group: Vec<&Row> = obs.iter().filter(|p| key_of(p) == key).map(|p| p.row).collect();
            let key: Vec<(String, String)> = key.into_iter().filter(|(c, _)| c != "x").collect();
            bail!(pooling_message(column, &group, &key));
        }
    }
    Ok(())
}

/// "rows with method=dpp_node differ in noise_std (0.0, 0.25): add it to --by, …".
fn pooling_message(column: &str, rows: &[&Row], key: &[(String, String)]) -> String {
    let mut values: Vec<&str> = Vec::new();
    for row in rows {
        if !values.contains(&row.get(column)) {
            values.push(row.get(column));
        }
    }
    if values.iter().all(|v| v.parse::<f64>().is_ok()) {
        values.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse().unwrap_or(0.0)));
    }
    let shown: Vec<&str> =
        values.iter().map(|v| if v.is_empty() { "(empty)" } else { v }).collect();
    let unpruned = key.iter().any(|(c, _)| c == "rows");
    let group: Vec<String> =
        key.iter().filter(|(c, _)| c != "rows").map(|(c, v)| format!("{c}={v}")).collect();
    let rows = if unpruned { "the unpruned rows" } else { "the rows" };
    let whose = if group.is_empty() {
        rows.to_string()
    } else {
        format!("{rows} with {}", group.join(", "))
    };
    format!(
        "{whose} differ in {column} ({}): add it to --by, filter with --where {column}={}, or pass \
         --average-over {column}",
        shown.join(", "),
        values[0]
    )
}
