//! Plotting: turns tidy `results.csv` files into a [`Figure`] (this file: loading and
//! aggregation) and writes it as SVG ([`svg`], drawn by hand) or PNG ([`png`], the same SVG
//! rasterised by `resvg`). Nothing here depends on `tch`.
//!
//! # Aggregation rule
//!
//! Columns are looked up by name in each file's header; unknown columns are ignored. A row is used
//! when its `status` is `ok`, every filter holds and its x and y cells are non-empty. On unpruned
//! rows an empty cell passes any filter (it means "not applicable"), so `--where reweight=true`
//! keeps the reference. Cells that are not finite numbers (`NaN` from a diverged run) are dropped
//! and counted in [`Figure::dropped`]. x and y are multiplied by [`Query::x_scale`] and
//! [`Query::y_scale`].
//!
//! Rows are grouped into series by the values of the [`Query::by`] columns, in order of first
//! appearance. A series' label joins its values (`dpp_node, reweight=true, noise_std=0.25`;
//! booleans and numbers as `column=value`, empty values left out); values that all series share
//! move from the labels to the title. Within a series, for each x:
//!
//! 1. the y values are averaged over mask samples within each run (rows sharing `seed` and
//!    `run_id`);
//! 2. the point's `mean` is the mean of those per-run means, and its `err` is their population
//!    standard deviation (ddof = 0) when there are at least two runs; with a single run, `err` is
//!    the population standard deviation over that run's mask samples;
//! 3. `n` is the number of rows used.
//!
//! Rows whose `method` is `none` (the unpruned network) form no series. They are grouped by the
//! `by` columns other than `method`, and each group's mean y (steps 1–2, x ignored) becomes a
//! [`Reference`]: a dashed horizontal line labelled `unpruned`, or `unpruned, <group>` when there
//! are several groups (e.g. two noise levels).
pub mod png;
pub mod svg;

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One aggregated point: the mean of y at `x`, its spread `err` and the number of rows used.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub err: f64,
    pub n: usize,
}

/// One line of the plot; `points` are sorted by x.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// A horizontal dashed line across the plot, e.g. the unpruned network's error.
#[derive(Clone, Debug, PartialEq)]
pub struct Reference {
    pub label: String,
    pub y: f64,
}

/// Everything needed to draw one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Drawn above the plot; empty for none.
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub reference: Vec<Reference>,
    pub log_y: bool,
    /// Rows skipped because their x or y was not a finite number (NaN, inf).
    pub dropped: usize,
}

/// What to plot from the CSV files.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Column for the x axis.
    pub x: String,
    /// Column for the y axis.
    pub y: String,
    /// Columns whose values split rows into series (empty: a single series).
    pub by: Vec<String>,
    /// `(column, value)`: all must hold; a value may be a comma list meaning any of them. Numbers
    /// compare by value (`1` matches `1.0`), everything else exactly; an empty value matches empty
    /// cells.
    pub filters: Vec<(String, String)>,
    /// x is multiplied by this (100 for percent).
    pub x_scale: f64,
    /// y is multiplied by this (100 for percent).
    pub y_scale: f64,
}

impl Query {
    /// A query with no grouping, no filters and unit scales.
    pub fn new(x: &str, y: &str) -> Self {
        Query {
            x: x.into(),
            y: y.into(),
            by: Vec::new(),
            filters: Vec::new(),
            x_scale: 1.0,
            y_scale: 1.0,
        }
    }
}

/// The method values of unpruned networks' rows: the trained network, and the teacher-student
/// student after row normalisation (the network the masks are applied to).
const UNPRUNED: [&str; 2] = ["none", "normalized"];

/// A readable axis label for `column` with its values multiplied by `scale`.
pub fn axis_label(column: &str, scale: f64) -> String {
    let percent = scale == 100.0;
    match column {
        "keep_fraction" | "achieved_fraction" if percent => "% of parameters kept".into(),
        "keep_fraction" | "achieved_fraction" if scale == 1.0 => {
            "fraction of parameters kept".into()
        }
        "ge_empirical" if scale == 1.0 => "generalisation error ε̂ (½·MSE)".into(),
        "ge_theory" if scale == 1.0 => "ε (closed form)".into(),
        "test_error" if percent => "test error (%)".into(),
        "test_error" if scale == 1.0 => "test error".into(),
        _ if scale == 1.0 => column.into(),
        _ if percent => format!("{column} (%)"),
        _ => format!("{column} (×{scale})"),
    }
}

/// Reads `csv_paths`, keeps the rows `query` selects and aggregates them into a figure (see the
/// module docs for the rule). Axis labels come from [`axis_label`]; the title lists the
/// `experiment` values found and, in parentheses, the `by` values all series share.
pub fn aggregate(csv_paths: &[PathBuf], query: &Query) -> Result<Figure> {
    let mut groups = Groups::default();
    let mut experiments: Vec<String> = Vec::new();
    let mut matched = 0;
    let mut dropped = 0;
    for path in csv_paths {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let header = reader.headers().with_context(|| format!("cannot read {}", path.display()))?;
        let columns = Columns::new(header, path, query)?;
        for record in reader.records() {
            let record = record.with_context(|| format!("cannot read {}", path.display()))?;
            let cell = |i: usize| record.get(i).unwrap_or("");
            let unpruned_kind = columns.method.map(cell).filter(|m| UNPRUNED.contains(m));
            let unpruned = unpruned_kind.is_some();
            // Unpruned rows leave pruning columns (reweight, …) empty: not applicable, so a
            // filter on such a column keeps them.
            let keep = |(&i, (_, wanted)): (&usize, &(String, String))| {
                matches(cell(i), wanted) || (unpruned && cell(i).is_empty())
            };
            if cell(columns.status) != "ok" || !columns.filters.iter().zip(&query.filters).all(keep)
            {
                continue;
            }
            matched += 1;
            let (x, y) = (cell(columns.x), cell(columns.y));
            if y.is_empty() || (x.is_empty() && !unpruned) {
                continue;
            }
            let line = record.position().map_or(0, |p| p.line());
            let number = |text: &str, column: &str| {
                text.parse::<f64>().with_context(|| {
                    format!(
                        "{} line {line}: column `{column}` holds `{text}`, not a number",
                        path.display()
                    )
                })
            };
            let y = number(y, &query.y)? * query.y_scale;
            let x = if unpruned { 0.0 } else { number(x, &query.x)? * query.x_scale };
            if !x.is_finite() || !y.is_finite() {
                dropped += 1;
                continue;
            }
            if let Some(i) = columns.experiment {
                if !experiments.iter().any(|e| e == cell(i)) && !cell(i).is_empty() {
                    experiments.push(cell(i).to_string());
                }
            }
            let run = (cell(columns.seed).to_string(), cell(columns.run_id).to_string());
            let by: Vec<(&str, &str)> =
                query.by.iter().zip(&columns.by).map(|(c, &i)| (c.as_str(), cell(i))).collect();
            if let Some(kind) = unpruned_kind {
                let mut by = by.into_iter().filter(|&(c, _)| c != "method").collect::<Vec<_>>();
                if kind != UNPRUNED[0] {
                    by.insert(0, ("rows", "normalised"));
                }
                groups.reference(parts(&by)).push(run, y);
            } else {
                // `+ 0.0` turns -0 into +0, so both land on one point.
                groups.series(parts(&by)).entry((x + 0.0).to_bits()).push(run, y);
            }
        }
    }
    let described = describe(csv_paths, query);
    if matched == 0 {
        bail!("no rows left after filtering {described}");
    }
    if groups.series.is_empty() && !groups.reference.is_empty() {
        bail!("only unpruned (method=none) rows are left after filtering {described}");
    }
    if groups.series.is_empty() {
        bail!(
            "no rows with both `{}` and `{}` values are left after filtering {described}",
            query.x,
            query.y
        );
    }

    let (reference_keys, reference_runs): (Vec<_>, Vec<_>) = groups.reference.into_iter().unzip();
    let (reference_labels, _) = distinct_labels(&reference_keys);
    let several = reference_keys.len() > 1;
    let reference = reference_labels
        .into_iter()
        .zip(reference_runs)
        .map(|(group, runs)| Reference {
            label: if several && !group.is_empty() {
                format!("unpruned, {group}")
            } else {
                "unpruned".into()
            },
            y: runs.summary().0,
        })
        .collect();
    let (series_keys, series_points): (Vec<_>, Vec<_>) = groups.series.into_iter().unzip();
    let (labels, common) = distinct_labels(&series_keys);
    let series = labels
        .into_iter()
        .zip(series_points)
        .map(|(label, by_x)| {
            let mut points: Vec<Point> = by_x
                .into_iter()
                .map(|(x, runs)| {
                    let (mean, err, n) = runs.summary();
                    Point { x: f64::from_bits(x), mean, err, n }
                })
                .collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            let label = if label.is_empty() { query.y.clone() } else { label };
            Series { label, points }
        })
        .collect();
    let title = match (experiments.join(", "), common) {
        (experiments, common) if common.is_empty() => experiments,
        (experiments, common) if experiments.is_empty() => common,
        (experiments, common) => format!("{experiments} ({common})"),
    };
    Ok(Figure {
        title,
        x_label: axis_label(&query.x, query.x_scale),
        y_label: axis_label(&query.y, query.y_scale),
        series,
        reference,
        log_y: false,
        dropped,
    })
}

/// Writes `fig` to `path` atomically, as SVG or PNG by the extension (`.svg`, `.png`).
pub fn write(fig: &Figure, path: &Path) -> Result<()> {
    if fig.log_y && !fig.series.iter().flat_map(|s| &s.points).any(|p| p.mean > 0.0) {
        bail!("cannot write {}: a log y axis needs positive values", path.display());
    }
    let bytes = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
        Some(ext) if ext == "svg" => svg::render_svg(fig).into_bytes(),
        Some(ext) if ext == "png" => png::render_png(fig)?,
        other => bail!(
            "cannot write {}: unknown figure format `{}` (use .svg or .png)",
            path.display(),
            other.unwrap_or_default()
        ),
    };
    crate::files::write_atomic(path, &bytes)
}

/// Column indices in one file's header.
struct Columns {
    x: usize,
    y: usize,
    seed: usize,
    run_id: usize,
    status: usize,
    by: Vec<usize>,
    filters: Vec<usize>,
    method: Option<usize>,
    experiment: Option<usize>,
}

impl Columns {
    fn new(header: &csv::StringRecord, path: &Path, query: &Query) -> Result<Self> {
        let find = |name: &str| header.iter().position(|h| h == name);
        let need = |name: &str| {
            find(name).with_context(|| {
                format!(
                    "{} has no column `{name}` (its columns: {})",
                    path.display(),
                    header.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        Ok(Columns {
            x: need(&query.x)?,
            y: need(&query.y)?,
            seed: need("seed")?,
            run_id: need("run_id")?,
            status: need("status")?,
            by: query.by.iter().map(|c| need(c)).collect::<Result<_>>()?,
            filters: query.filters.iter().map(|(c, _)| need(c)).collect::<Result<_>>()?,
            method: find("method"),
            experiment: find("experiment"),
        })
    }
}

/// Whether `cell` equals one of the comma-separated `wanted` values (numbers by value).
fn matches(cell: &str, wanted: &str) -> bool {
    wanted.split(',').map(str::trim).any(|w| {
        w == cell || matches!((w.parse::<f64>(), cell.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
    })
}

/// Label parts from `(column, value)` pairs, e.g. `dpp_node`, `reweight=true`,
/// `noise_std=0.25`: values that would read ambiguously alone (booleans, numbers) get their column
/// name; empty values give empty parts.
fn parts(by: &[(&str, &str)]) -> Vec<String> {
    by.iter()
        .map(|&(c, v)| {
            let bare = v.contains('=')
                || !(v.eq_ignore_ascii_case("true")
                    || v.eq_ignore_ascii_case("false")
                    || v.parse::<f64>().is_ok());
            if bare || v.is_empty() {
                v.to_string()
            } else {
                format!("{c}={v}")
            }
        })
        .collect()
}

/// Labels for groups keyed by label parts, parts joined by ", ". With several groups, parts that
/// all groups share are left out of the labels and returned, joined, as the second value (they
/// go into the title); a single group keeps its whole label.
fn distinct_labels(keys: &[Vec<String>]) -> (Vec<String>, String) {
    let join = |parts: &mut dyn Iterator<Item = &String>| {
        parts.filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(", ")
    };
    let shared: Vec<bool> = match keys {
        [first, _, ..] => (0..first.len()).map(|i| keys.iter().all(|k| k[i] == first[i])).collect(),
        _ => Vec::new(),
    };
    let labels = keys
        .iter()
        .map(|k| {
            join(
                &mut k
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !shared.get(*i).unwrap_or(&false))
                    .map(|(_, p)| p),
            )
        })
        .collect();
    let common = keys.first().map_or_else(String::new, |k| {
        join(&mut k.iter().zip(&shared).filter(|(_, &s)| s).map(|(p, _)| p))
    });
    (labels, common)
}

/// The files and the filters as the user wrote them, for error messages.
fn describe(paths: &[PathBuf], query: &Query) -> String {
    let filters: Vec<String> = std::iter::once("status=ok".to_string())
        .chain(query.filters.iter().map(|(c, v)| format!("{c}={v}")))
        .collect();
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!("{} by {}", files.join(", "), filters.join(", "))
}

/// Rows accumulated while reading, keyed by label and kept in order of first appearance.
#[derive(Default)]
struct Groups {
    /// label parts → x (as bits) → runs.
    series: Ordered<Vec<String>, Ordered<u64, Runs>>,
    reference: Ordered<Vec<String>, Runs>,
}

impl Groups {
    fn series(&mut self, key: Vec<String>) -> &mut Ordered<u64, Runs> {
        self.series.entry(key)
    }

    fn reference(&mut self, key: Vec<String>) -> &mut Runs {
        self.reference.entry(key)
    }
}

/// A small insertion-ordered map.
struct Ordered<K, V> {
    items: Vec<(K, V)>,
    index: HashMap<K, usize>,
}

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered { items: Vec::new(), index: HashMap::new() }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Default> Ordered<K, V> {
    fn entry(&mut self, key: K) -> &mut V {
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            self.items.push((key, V::default()));
            self.items.len() - 1
        });
        &mut self.items[i].1
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<K, V> IntoIterator for Ordered<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The y values at one point, per run (`(seed, run_id)`), runs in order of first appearance.
#[derive(Default)]
struct Runs(Ordered<(String, String), Vec<f64>>);

impl Runs {
    fn push(&mut self, run: (String, String), y: f64) {
        self.0.entry(run).push(y);
    }

    /// `(mean, err, n)` by the module's aggregation rule.
    fn summary(&self) -> (f64, f64, usize) {
        let n = self.0.items.iter().map(|(_, ys)| ys.len()).sum();
        let (mean, std) = match self.0.items.as_slice() {
            [(_, ys)] => mean_std(ys),
            runs => mean_std(&runs.iter().map(|(_, ys)| mean_std(ys).0).collect::<Vec<_>>()),
        };
        (mean, std, n)
    }
}

/// Mean and population standard deviation of a non-empty slice.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh, empty scratch folder for one test.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join("prunelab-tests")
            .join(format!("plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `text` as `name` in a scratch folder and returns its path.
    fn csv_file(test: &str, text: &str) -> PathBuf {
        let path = scratch(test).join("results.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// 2 seeds × 2 masks of dpp_node at two x values, one unpruned row per seed, a failed row, and
    /// a random_node series with one seed. Columns deliberately out of the usual order, plus an
    /// unknown one.
    const TINY: &str = "\
status,seed,run_id,method,reweight,keep_fraction,mask_sample,ge_empirical,extra,settings
ok,1,a,dpp_node,true,0.5,0,1.0,x,noise_std=0.25
ok,1,a,dpp_node,true,0.5,1,3.0,x,noise_std=0.25
ok,2,b,dpp_node,true,0.5,0,5.0,x,noise_std=0.25
ok,2,b,dpp_node,true,0.5,1,7.0,x,noise_std=0.25
ok,1,a,dpp_node,true,0.25,0,10.0,x,noise_std=0.25
ok,2,b,dpp_node,true,0.25,0,20.0,x,noise_std=0.25
failed,3,c,dpp_node,true,0.5,0,1000.0,x,noise_std=0.25
ok,1,a,dpp_node,true,0.75,0,,x,noise_std=0.25
ok,1,a,none,,1.0,,0.5,x,noise_std=0.25
ok,2,b,none,,1.0,,1.5,x,noise_std=0.25
ok,1,a,random_node,false,0.5,0,2.0,x,noise_std=0.25
ok,1,a,random_node,false,0.5,1,4.0,x,noise_std=0.25
ok,1,a,random_node,false,0.5,2,9.0,x,noise_std=0.25
";

    fn query(by: &[&str]) -> Query {
        Query {
            by: by.iter().map(|s| s.to_string()).collect(),
            ..Query::new("keep_fraction", "ge_empirical")
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn means_over_masks_then_runs_with_population_std() {
        let path = csv_file("means", TINY);
        let fig = aggregate(&[path], &query(&["method", "reweight", "settings"])).unwrap();
        let labels: Vec<&str> = fig.series.iter().map(|s| s.label.as_str()).collect();
        // The setting all series share moves from the labels to the title.
        assert_eq!(labels, ["dpp_node, reweight=true", "random_node, reweight=false"]);
        assert_eq!(fig.title, "noise_std=0.25");
        let dpp = &fig.series[0].points;
        // Sorted by x; the empty-y row at 0.75 and the failed row are skipped.
        assert_eq!(dpp.iter().map(|p| p.x).collect::<Vec<_>>(), [0.25, 0.5]);
        // x = 0.5: run means 2 and 6 → mean 4, population std 2 (not the per-row std √5).
        assert!(close(dpp[1].mean, 4.0) && close(dpp[1].err, 2.0), "{:?}", dpp[1]);
        assert_eq!(dpp[1].n, 4);
        // x = 0.25: one mask per run, runs 10 and 20 → mean 15, std 5.
        assert!(close(dpp[0].mean, 15.0) && close(dpp[0].err, 5.0), "{:?}", dpp[0]);
        assert_eq!(dpp[0].n, 2);
        // Unpruned rows are a reference line, not a series: mean of 0.5 and 1.5.
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 1.0 }]);
    }

    #[test]
    fn a_single_run_uses_the_std_over_masks() {
        let path = csv_file("single", TINY);
        let q =
            Query { filters: vec![("method".into(), "random_node".into())], ..query(&["method"]) };
        let fig = aggregate(&[path], &q).unwrap();
        let p = &fig.series[0].points[0];
        // Masks 2, 4, 9: mean 5, population variance (9 + 1 + 16) / 3.
        assert!(close(p.mean, 5.0) && close(p.err, (26.0f64 / 3.0).sqrt()), "{p:?}");
        assert_eq!(p.n, 3);
        assert!(fig.reference.is_empty(), "the filter removed the unpruned rows");

        // A filter on a column the unpruned rows leave empty keeps them as the reference.
        let q = Query { filters: vec![("reweight".into(), "false".into())], ..query(&["method"]) };
        let fig = aggregate(&[csv_file("single-reference", TINY)], &q).unwrap();
        assert_eq!(fig.series.len(), 1);
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 1.0 }]);
    }

    #[test]
    fn filters_accept_lists_and_numbers_and_scales_apply() {
        let path = csv_file("filters", TINY);
        let q = Query {
            filters: vec![
                ("method".into(), "dpp_node, none".into()),
                ("keep_fraction".into(), "0.50,1".into()),
                ("seed".into(), "1".into()),
            ],
            x_scale: 100.0,
            y_scale: 10.0,
            ..query(&["method"])
        };
        let fig = aggregate(&[path], &q).unwrap();
        assert_eq!(fig.series.len(), 1);
        let p = &fig.series[0].points;
        assert_eq!(p.len(), 1);
        assert!(close(p[0].x, 50.0) && close(p[0].mean, 20.0) && close(p[0].err, 10.0), "{p:?}");
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 5.0 }]);
        assert_eq!(fig.x_label, "% of parameters kept");
    }

    #[test]
    fn one_reference_per_group_of_unpruned_rows() {
        let low = csv_file("references-low", TINY);
        let high = scratch("references-high").join("results.csv");
        std::fs::write(&high, TINY.replace("noise_std=0.25", "noise_std=0.5")).unwrap();
        let fig = aggregate(&[low, high], &query(&["method", "settings"])).unwrap();
        let labels: Vec<&str> = fig.reference.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["unpruned, noise_std=0.25", "unpruned, noise_std=0.5"]);
        let labels: Vec<&str> = fig.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels[..2], ["dpp_node, noise_std=0.25", "random_node, noise_std=0.25"]);
        assert_eq!(fig.series.len(), 4);
    }

    #[test]
    fn several_files_are_read_and_missing_columns_are_named() {
        let a = csv_file("files-a", TINY);
        let b = scratch("files-b").join("other.csv");
        // Same data, columns in another order: still found by name.
        std::fs::write(&b, "seed,ge_empirical,keep_fraction,run_id,status\n3,8.0,0.5,c,ok\n")
            .unwrap();
        let fig = aggregate(&[a.clone(), b.clone()], &query(&[])).unwrap();
        assert_eq!(fig.series.len(), 1);
        let half = fig.series[0].points.iter().find(|p| p.x == 0.5).unwrap();
        // No grouping: dpp and random rows of run a, run b and the second file's run c.
        assert_eq!(half.n, 8);

        let err = aggregate(&[a, b.clone()], &query(&["method"])).unwrap_err().to_string();
        assert!(err.contains("`method`") && err.contains(&b.display().to_string()), "{err}");
        assert!(err.contains("seed, ge_empirical, keep_fraction, run_id, status"), "{err}");
    }

    #[test]
    fn unreadable_files_and_empty_results_are_errors() {
        let missing = scratch("unreadable").join("nope.csv");
        let err = aggregate(std::slice::from_ref(&missing), &query(&[])).unwrap_err();
        assert!(format!("{err:#}").contains(&missing.display().to_string()), "{err:#}");

        let path = csv_file("empty", TINY);
        let q = Query { filters: vec![("method".into(), "dpp_edge".into())], ..query(&["method"]) };
        let err = aggregate(std::slice::from_ref(&path), &q).unwrap_err().to_string();
        assert!(err.contains("no rows left") && err.contains("method=dpp_edge"), "{err}");

        let q = Query { filters: vec![("method".into(), "none".into())], ..query(&["method"]) };
        let err = aggregate(&[path], &q).unwrap_err().to_string();
        assert!(err.contains("only unpruned"), "{err}");
    }

    #[test]
    fn non_numbers_are_errors_and_non_finite_values_are_dropped() {
        let path = csv_file(
            "nan",
            "seed,run_id,status,keep_fraction,ge_empirical\n1,a,ok,0.5,NaN\n1,a,ok,0.5,2\n",
        );
        let fig = aggregate(&[path], &query(&[])).unwrap();
        assert_eq!((fig.dropped, fig.series[0].points[0].mean), (1, 2.0));
        let path =
            csv_file("text", "seed,run_id,status,keep_fraction,ge_empirical\n1,a,ok,half,2\n");
        let err = aggregate(&[path], &query(&[])).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("`keep_fraction`") && err.contains("half"),
            "{err}"
        );
    }

    #[test]
    fn labels_name_ambiguous_values() {
        let by = [
            ("method", "dpp_node"),
            ("reweight", "true"),
            ("settings", "noise_std=0.25"),
            ("seed", "3"),
        ];
        assert_eq!(parts(&by), ["dpp_node", "reweight=true", "noise_std=0.25", "seed=3"]);
        assert_eq!(parts(&[("method", "random_node"), ("reweight", "")]), ["random_node", ""]);
        let key = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let keys = [
            key(&["dpp_node", "reweight=true", "a=1"]),
            key(&["random_node", "reweight=true", "a=1"]),
        ];
        let (labels, common) = distinct_labels(&keys);
        assert_eq!(labels, ["dpp_node", "random_node"]);
        assert_eq!(common, "reweight=true, a=1");
        let (labels, common) = distinct_labels(&keys[..1]);
        assert_eq!(
            (labels, common),
            (vec!["dpp_node, reweight=true, a=1".to_string()], String::new())
        );
        assert_eq!(axis_label("test_error", 100.0), "test error (%)");
        assert_eq!(axis_label("wall_ms", 2.0), "wall_ms (×2)");
    }

    #[test]
    fn the_example_results_aggregate_to_four_series() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
        let q = Query { x_scale: 100.0, ..query(&["method", "reweight", "settings"]) };
        let fig = aggregate(&[path], &q).unwrap();
        assert_eq!(fig.title, "fig2a (noise_std=0.25)");
        assert_eq!(fig.series.len(), 4);
        for s in &fig.series {
            assert_eq!(
                s.points.iter().map(|p| p.x.round()).collect::<Vec<_>>(),
                [10.0, 30.0, 50.0, 70.0, 90.0]
            );
            assert!(s.points.iter().all(|p| p.n == 30 && p.err > 0.0), "{s:?}");
        }
        assert_eq!(fig.reference.len(), 1);
    }

    #[test]
    fn writing_is_atomic_and_needs_a_known_extension() {
        let dir = scratch("write");
        let fig = aggregate(&[csv_file("write-data", TINY)], &query(&["method"])).unwrap();
        let svg = dir.join("fig.svg");
        write(&fig, &svg).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));

        let nowhere = dir.join("missing").join("fig.svg");
        let err = format!("{:#}", write(&fig, &nowhere).unwrap_err());
        assert!(err.contains(&nowhere.display().to_string()), "{err}");
        assert!(!dir.join("missing").exists());

        let pdf = dir.join("fig.pdf");
        let err = write(&fig, &pdf).unwrap_err().to_string();
        assert!(err.contains("`pdf`") && err.contains(&pdf.display().to_string()), "{err}");
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["fig.svg"], "no temporary or partial files are left");
    }

    /// The example results file, relative to the crate root.
    pub(crate) const EXAMPLE: &str = "src/plot/testdata/example_results.csv";
}
