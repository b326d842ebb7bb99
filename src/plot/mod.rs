//! Plotting: turns tidy `results.csv` files into a [`Figure`] and writes it as SVG ([`svg`],
//! drawn by hand), PNG ([`png`], the SVG rasterised by `resvg`) or PDF ([`pdf`], the SVG
//! converted by `svg2pdf`). Nothing here depends on `tch`.
//!
//! The way from files to a figure, one module per step:
//!
//! 1. [`table`] reads the files; every setting is a column (packed `settings` cells are split);
//! 2. [`query`] keeps the rows the filters select (not MLP training rows unless asked for) and
//!    refuses to pool rows that differ in a setting (the **pooling rule**, see there);
//! 3. [`aggregate`] averages them (rule below);
//! 4. [`labels`] names things in words ("DPP node", "σ = 0.25") and writes title and caption;
//! 5. [`theory`] adds closed forms as lines.
//!
//! [`heatmap`] draws matrices (overlaps, DPP inclusion probabilities) instead of rows.
//!
//! # Aggregation rule
//!
//! A row is used when its `status` is `ok`, every filter holds and its x and y cells are
//! non-empty. On unpruned rows an empty cell passes any filter (it means "not applicable"), so
//! `--where reweight=true` keeps the reference. Cells that are not finite numbers (`NaN` from a
//! diverged run) are dropped and counted in [`Figure::dropped`]. x and y are multiplied by
//! [`Query::x_scale`] and [`Query::y_scale`].
//!
//! Rows are grouped into series by the values of the `by` columns, in order of first
//! appearance. Within a series, for each x:
//!
//! 1. the y values are averaged over mask samples within each run (rows sharing `seed` and
//!    `run_id`);
//! 2. the point's `mean` is the mean of those per-run means, and its `err` is their population
//!    standard deviation (ddof = 0) when there are at least two runs; with a single run, `err` is
//!    the population standard deviation over that run's mask samples;
//! 3. `n` is the number of rows used.
//!
//! Rows whose `method` is `none` (the unpruned network) form no series, except on a training-time
//! x axis ([`query::TIME_AXES`]: `alpha`, `step` of trajectory files), where the unpruned
//! student's error along training is a series like any other. They are grouped by the
//! `by` columns other than `method`, and each group's mean y (steps 1–2, x ignored) becomes a
//! [`Reference`]: a dashed horizontal line labelled `unpruned`, or `unpruned, <group>` when there
//! are several groups (e.g. two noise levels).
pub mod aggregate;
mod axis;
pub mod heatmap;
pub mod labels;
mod legend;
pub mod pdf;
pub mod png;
pub mod query;
mod style;
pub mod svg;
pub mod table;
pub mod theory;

pub use query::ClosedForm;
pub use query::Query;
pub use table::Table;
pub use theory::Curve;

use aggregate::Key;
use anyhow::{bail, Result};
use query::Obs;
use std::path::Path;

/// One aggregated point: the mean of y at `x`, its spread `err`, the number of rows and runs
/// used, and the mean `ge_theory` of those rows when asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub err: f64,
    pub n: usize,
    pub runs: usize,
    pub theory: Option<f64>,
}

/// One line of the plot; `points` are sorted by x. `colour`, `dash` and `marker` number the
/// palette entries, line styles and marker shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    pub colour: usize,
    pub dash: usize,
    pub marker: usize,
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
    /// Drawn under the plot: what points and error bars are; empty for none.
    pub caption: String,
    pub series: Vec<Series>,
    pub reference: Vec<Reference>,
    /// Theory lines (closed forms).
    pub curves: Vec<Curve>,
    pub log_y: bool,
    /// Logarithmic x axis (points at x ≤ 0 are left out).
    pub log_x: bool,
    /// Shift series sideways a little so their error bars stay apart.
    pub jitter: bool,
    /// Rows skipped because their x or y was not a finite number (NaN, inf).
    pub dropped: usize,
}

/// Size and type of the drawing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Canvas {
    /// In SVG units: pixels in SVG and PNG (at 96 dpi), points in PDF.
    pub width: f64,
    pub height: f64,
    /// Size of tick and legend text; labels and title are a little larger.
    pub font_size: f64,
    /// Resolution of PNG output: pixels = units × dpi / 96.
    pub dpi: f64,
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas { width: 720.0, height: 450.0, font_size: 12.0, dpi: 192.0 }
    }
}

/// The figure `query` describes from the rows of `table` (see the module docs).
pub fn figure(table: &Table, query: &Query) -> Result<Figure> {
    let selection = query::select(table, query)?;
    let obs = &selection.obs;
    let by = resolve_by(table, obs, query)?;
    query::check_pooling(table, obs, &query.x, &by, &query.average_over)?;
    let groups = aggregate::aggregate(obs, &by);
    let keys: Vec<Key> = groups.series.iter().map(|g| g.key.clone()).collect();
    let (labels, shared) = labels::series_labels(&keys);
    let styles = styles(&keys, query);
    let series = groups
        .series
        .into_iter()
        .zip(labels)
        .zip(styles)
        .map(|((group, label), (colour, dash, marker))| Series {
            label: if label.is_empty() { query.y.clone() } else { label },
            points: group.points,
            colour,
            dash,
            marker,
        })
        .collect();
    let curves = match query.closed_form {
        Some(form) => theory::closed_form(form, table, obs, query)?,
        None => Vec::new(),
    };
    Ok(Figure {
        title: labels::title(&[title_parts(table, obs), shared].concat()),
        x_label: labels::axis_label(&query.x, query.x_scale),
        y_label: labels::axis_label(&query.y, query.y_scale),
        caption: caption(&groups.stats, query),
        series,
        reference: references(&groups.reference),
        curves,
        log_y: false,
        log_x: false,
        jitter: query.jitter,
        dropped: selection.dropped,
    })
}

/// The `by` columns: as given or [`query::default_by`], plus the colour and style columns.
fn resolve_by(table: &Table, obs: &[Obs], query: &Query) -> Result<Vec<String>> {
    let mut by = query.by.clone().unwrap_or_else(|| query::default_by(table, obs, &query.x));
    for column in query.color_by.iter().chain(&query.style_by) {
        table.require(column)?;
        if !by.contains(column) {
            by.push(column.clone());
        }
    }
    Ok(by)
}

/// `(colour, dash, marker)` of each series: colour follows `--color-by` (default `method`, or
/// the first column that tells series apart), the dash `--style-by` (default the next such
/// column), the marker the remaining columns (or the colour when there are none).
fn styles(keys: &[Key], query: &Query) -> Vec<(usize, usize, usize)> {
    let columns: Vec<&str> =
        keys.first().map_or_else(Vec::new, |k| k.iter().map(|(c, _)| c.as_str()).collect());
    let varies = |c: &&str| keys.iter().any(|k| value(k, c) != value(&keys[0], c));
    let varying: Vec<&str> = columns.iter().copied().filter(varies).collect();
    let colour = query.color_by.as_deref().or_else(|| {
        varying.iter().copied().find(|&c| c == "method").or_else(|| varying.first().copied())
    });
    let style =
        query.style_by.as_deref().or_else(|| varying.iter().copied().find(|&c| Some(c) != colour));
    let rest: Vec<&str> =
        varying.into_iter().filter(|&c| Some(c) != colour && Some(c) != style).collect();
    let index = |pick: &dyn Fn(&Key) -> Vec<String>| -> Vec<usize> {
        let mut seen: Vec<Vec<String>> = Vec::new();
        keys.iter()
            .map(|k| {
                let v = pick(k);
                seen.iter().position(|s| *s == v).unwrap_or_else(|| {
                    seen.push(v);
                    seen.len() - 1
                })
            })
            .collect()
    };
    let colours = index(&|k| colour.map(|c| value(k, c)).into_iter().collect());
    let dashes = index(&|k| style.map(|c| value(k, c)).into_iter().collect());
    let markers = if rest.is_empty() {
        colours.clone()
    } else {
        index(&|k| rest.iter().map(|c| value(k, c)).collect())
    };
    (0..keys.len()).map(|i| (colours[i], dashes[i], markers[i])).collect()
}

/// The value of `column` in `key` ("" when absent).
fn value(key: &Key, column: &str) -> String {
    key.iter().find(|(c, _)| c == column).map_or_else(String::new, |(_, v)| v.clone())
}

/// What all rows share, in words, for the title: the task, the method and reweighting of the
/// pruned rows, and the headline settings (N, M, K, v*, σ, …).
fn title_parts(table: &Table, obs: &[Obs]) -> Vec<String> {
    let pruned: Vec<&Obs> = obs.iter().filter(|o| o.unpruned.is_none()).collect();
    let shared = |rows: &[&Obs], column: &str| -> Option<String> {
        let first = rows.first()?.row.get(column);
        rows.iter().all(|o| o.row.get(column) == first).then(|| labels::part(column, first))
    };
    let all: Vec<&Obs> = obs.iter().collect();
    let settings = table.settings().into_iter().filter(|c| labels::is_headline(c));
    let mut parts: Vec<String> = shared(&all, "task").into_iter().collect();
    parts.extend(["method", "reweight"].iter().filter_map(|c| shared(&pruned, c)));
    parts.extend(settings.filter_map(|c| shared(&all, &c)));
    parts
}

/// The caption: what points and bars are, plus the sideways shift and theory lines when drawn.
fn caption(stats: &aggregate::Stats, query: &Query) -> String {
    let mut text = labels::caption(stats, &query.average_over);
    if query.theory {
        text.push_str("; dotted: mean ge_theory (closed-form ε of the same pruned networks)");
    }
    if query.jitter {
        text.push_str("; series shifted sideways by a few px to keep bars apart");
    }
    text
}

/// Reference lines of the unpruned groups: "unpruned", or "unpruned, <what differs>".
fn references(groups: &[(Key, f64)]) -> Vec<Reference> {
    let keys: Vec<Key> = groups.iter().map(|(k, _)| k.clone()).collect();
    let (labels, _) = labels::series_labels(&keys);
    let single = groups.len() == 1;
    groups
        .iter()
        .zip(labels)
        .map(|((key, y), label)| {
            let label = if single { labels::part("rows", &value(key, "rows")) } else { label };
            Reference { label: labels::reference_label(&label), y: *y }
        })
        .collect()
}

/// Writes `fig` to `path` atomically, as SVG, PNG or PDF by the extension.
pub fn write(fig: &Figure, path: &Path, canvas: &Canvas) -> Result<()> {
    if fig.log_y && !fig.series.iter().flat_map(|s| &s.points).any(|p| p.mean > 0.0) {
        bail!("cannot write {}: a log y axis needs positive values", path.display());
    }
    if fig.log_x && !fig.series.iter().flat_map(|s| &s.points).any(|p| p.x > 0.0) {
        bail!("cannot write {}: a log x axis needs positive values", path.display());
    }
    write_svg(&svg::render_svg(fig, canvas), path, canvas)
}

/// Writes an SVG document drawn on `canvas` to `path` atomically, as SVG, PNG or PDF by the
/// extension.
pub fn write_svg(svg: &str, path: &Path, canvas: &Canvas) -> Result<()> {
    let bytes = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) {
        Some(ext) if ext == "svg" => svg.as_bytes().to_vec(),
        Some(ext) if ext == "png" => png::svg_to_png(svg, canvas)?,
        Some(ext) if ext == "pdf" => pdf::svg_to_pdf(svg)?,
        other => bail!(
            "cannot write {}: unknown figure format `{}` (use .svg, .png or .pdf)",
            path.display(),
            other.unwrap_or_default()
        ),
    };
    crate::files::write_atomic(path, &bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh, empty scratch folder for one test.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join("prunelab-tests")
            .join(format!("plot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The example results file, relative to the crate root.
    pub(crate) const EXAMPLE: &str = "src/plot/testdata/example_results.csv";

    /// 2 seeds × 2 masks of dpp_node at two x values, one unpruned row per seed, a failed row, and
    /// a random_node series with one seed. Columns deliberately out of the usual order, plus an
    /// unknown metric.
    const TINY: &str = "\
status,seed,run_id,method,reweight,keep_fraction,mask_sample,ge_empirical,val_error,settings
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

    /// Two noise levels (old format: packed settings), one seed, dpp_node only, plus an unpruned
    /// row per level and two MLP-style training rows.
    const TWO_NOISES: &str = "\
experiment,status,seed,run_id,task,method,reweight,keep_nodes,mask_sample,ge_empirical,ge_theory,epoch,test_error,settings
e,ok,1,a,teacher_student,none,,6,,0.1,0.1,,,noise_std=0.0
e,ok,1,a,teacher_student,dpp_node,false,1,0,2.0,1.9,,,noise_std=0.0
e,ok,1,a,teacher_student,dpp_node,false,2,0,1.0,0.9,,,noise_std=0.0
e,ok,1,b,teacher_student,none,,6,,0.3,0.3,,,noise_std=0.25
e,ok,1,b,teacher_student,dpp_node,false,1,0,4.0,3.9,,,noise_std=0.25
e,ok,1,b,teacher_student,dpp_node,false,2,0,3.0,2.9,,,noise_std=0.25
e,ok,1,b,teacher_student,training,,,,,,1,0.5,noise_std=0.25
e,ok,1,b,teacher_student,training,,,,,,2,0.4,noise_std=0.25
";

    /// The same rows with the settings as columns (the newer results.csv) and the fixed
    /// Theorem-1 settings recorded.
    fn new_format(text: &str) -> String {
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let mut out = format!("{header},noise_std,teacher_hidden,student_hidden,v_star\n");
        for line in lines {
            let noise = line.rsplit("noise_std=").next().unwrap();
            out.push_str(&format!("{line},{noise},2,6,4.0\n"));
        }
        out
    }

    fn table(text: &str) -> Table {
        Table::from_text(Path::new("results.csv"), text).unwrap()
    }

    fn query(by: &[&str]) -> Query {
        Query {
            by: Some(by.iter().map(|s| s.to_string()).collect()),
            ..Query::new("keep_fraction", "ge_empirical")
        }
    }

    fn nodes(by: &[&str]) -> Query {
        Query { x: "keep_nodes".into(), ..query(by) }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn labels(fig: &Figure) -> Vec<&str> {
        fig.series.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn means_over_masks_then_runs_with_population_std() {
        let fig = figure(&table(TINY), &query(&["method", "reweight", "noise_std"])).unwrap();
        // The setting all series share moves from the labels to the title.
        assert_eq!(labels(&fig), ["DPP node, reweighted", "random node"]);
        assert_eq!(fig.title, "σ = 0.25");
        let dpp = &fig.series[0].points;
        // Sorted by x; the empty-y row at 0.75 and the failed row are skipped.
        assert_eq!(dpp.iter().map(|p| p.x).collect::<Vec<_>>(), [0.25, 0.5]);
        // x = 0.5: run means 2 and 6 → mean 4, population std 2 (not the per-row std √5).
        assert!(close(dpp[1].mean, 4.0) && close(dpp[1].err, 2.0), "{:?}", dpp[1]);
        assert_eq!((dpp[1].n, dpp[1].runs), (4, 2));
        // x = 0.25: one mask per run, runs 10 and 20 → mean 15, std 5.
        assert!(close(dpp[0].mean, 15.0) && close(dpp[0].err, 5.0), "{:?}", dpp[0]);
        // Unpruned rows are a reference line, not a series: mean of 0.5 and 1.5.
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 1.0 }]);
        assert_eq!(
            fig.caption,
            "points: mean over 1–2 seeds of the mean over 1–3 masks; bars: ±1 sd over seeds \
             (over masks where there is one)"
        );
    }

    #[test]
    fn a_single_run_uses_the_std_over_masks() {
        let q =
            Query { filters: vec![("method".into(), "random_node".into())], ..query(&["method"]) };
        let fig = figure(&table(TINY), &q).unwrap();
        let p = &fig.series[0].points[0];
        // Masks 2, 4, 9: mean 5, population variance (9 + 1 + 16) / 3.
        assert!(close(p.mean, 5.0) && close(p.err, (26.0f64 / 3.0).sqrt()), "{p:?}");
        assert_eq!(p.n, 3);
        assert!(fig.reference.is_empty(), "the filter removed the unpruned rows");
        assert_eq!(fig.caption, "points: mean over 3 masks of one seed; bars: ±1 sd over masks");
        assert_eq!(fig.title, "random node, σ = 0.25", "`not reweighted` goes without saying");

        // A filter on a column the unpruned rows leave empty keeps them as the reference.
        let q = Query { filters: vec![("reweight".into(), "false".into())], ..query(&["method"]) };
        let fig = figure(&table(TINY), &q).unwrap();
        assert_eq!(fig.series.len(), 1);
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 1.0 }]);
    }

    #[test]
    fn filters_accept_lists_and_numbers_and_scales_apply() {
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
        let fig = figure(&table(TINY), &q).unwrap();
        let p = &fig.series[0].points;
        assert_eq!((fig.series.len(), p.len()), (1, 1));
        assert!(close(p[0].x, 50.0) && close(p[0].mean, 20.0) && close(p[0].err, 10.0), "{p:?}");
        assert_eq!(fig.reference, [Reference { label: "unpruned".into(), y: 5.0 }]);
        assert_eq!(fig.x_label, "% of parameters kept");
    }

    #[test]
    fn rows_that_differ_in_a_setting_are_not_pooled() {
        for text in [TWO_NOISES.to_string(), new_format(TWO_NOISES)] {
            let t = table(&text);
            let err = figure(&t, &nodes(&["method"])).unwrap_err().to_string();
            assert!(
                err.starts_with("the rows with method=dpp_node differ in noise_std (0.0, 0.25)"),
                "{err}"
            );
            assert!(
                err.contains("--where noise_std=0.0") && err.contains("--average-over noise_std"),
                "{err}"
            );
            // Splitting by it, or filtering it to one value, is fine.
            let fig = figure(&t, &nodes(&["method", "noise_std"])).unwrap();
            assert_eq!(labels(&fig), ["σ = 0", "σ = 0.25"]);
            let refs: Vec<&str> = fig.reference.iter().map(|r| r.label.as_str()).collect();
            assert_eq!(refs, ["unpruned, σ = 0", "unpruned, σ = 0.25"]);
            let q = Query { filters: vec![("noise_std".into(), "0".into())], ..nodes(&["method"]) };
            let fig = figure(&t, &q).unwrap();
            assert_eq!((fig.series.len(), fig.series[0].points[0].mean), (1, 2.0));
            // The default splits by every design column that varies.
            let fig = figure(&t, &Query { by: None, ..nodes(&[]) }).unwrap();
            assert_eq!(labels(&fig), ["σ = 0", "σ = 0.25"]);
            assert!(fig.title.starts_with("teacher–student, DPP node"), "{}", fig.title);
        }
    }

    #[test]
    fn average_over_pools_a_setting_on_request() {
        let q = Query { average_over: vec!["noise_std".into()], ..nodes(&["method"]) };
        let fig = figure(&table(TWO_NOISES), &q).unwrap();
        let p = &fig.series[0].points;
        // kn = 1: runs a (2.0) and b (4.0) → mean 3, sd 1.
        assert!(close(p[0].mean, 3.0) && close(p[0].err, 1.0) && p[0].runs == 2, "{p:?}");
        assert_eq!(fig.reference.len(), 1);
        assert_eq!(
            fig.caption,
            "points: mean over 2 runs (pooling noise_std); bars: ±1 sd over runs"
        );
    }

    #[test]
    fn training_rows_are_left_out_unless_selected() {
        let q = Query { x: "keep_nodes".into(), y: "test_error".into(), ..query(&["method"]) };
        let err = figure(&table(TWO_NOISES), &q).unwrap_err().to_string();
        assert!(err.contains("no rows with both `keep_nodes` and `test_error`"), "{err}");
        let q = Query {
            x: "epoch".into(),
            y: "test_error".into(),
            filters: vec![("method".into(), "training".into())],
            ..query(&["method"])
        };
        let fig = figure(&table(TWO_NOISES), &q).unwrap();
        let xs: Vec<f64> = fig.series[0].points.iter().map(|p| p.x).collect();
        assert_eq!((labels(&fig), xs), (vec!["training"], vec![1.0, 2.0]));
    }

    #[test]
    fn colour_follows_method_and_style_the_next_column() {
        let text = format!(
            "{}{}",
            TWO_NOISES,
            "e,ok,1,a,teacher_student,random_node,false,1,0,5.0,5.0,,,noise_std=0.0\n\
             e,ok,1,b,teacher_student,random_node,false,1,0,6.0,6.0,,,noise_std=0.25\n"
        );
        let fig = figure(&table(&text), &nodes(&["method", "noise_std"])).unwrap();
        let styles: Vec<(usize, usize)> = fig.series.iter().map(|s| (s.colour, s.dash)).collect();
        assert_eq!(
            labels(&fig),
            [
                "DPP node, σ = 0",
                "DPP node, σ = 0.25",
                "random node, σ = 0",
                "random node, σ = 0.25"
            ]
        );
        assert_eq!(styles, [(0, 0), (0, 1), (1, 0), (1, 1)]);
        let q = Query {
            color_by: Some("noise_std".into()),
            style_by: Some("method".into()),
            ..nodes(&["method"])
        };
        let fig = figure(&table(&text), &q).unwrap();
        let styles: Vec<(usize, usize)> = fig.series.iter().map(|s| (s.colour, s.dash)).collect();
        assert_eq!(styles, [(0, 0), (1, 0), (0, 1), (1, 1)], "--color-by adds its column to --by");
    }

    #[test]
    fn theory_values_and_theorem1_lines() {
        let t = table(&new_format(TWO_NOISES));
        let q = Query {
            theory: true,
            closed_form: Some(ClosedForm::Theorem1),
            filters: vec![("noise_std".into(), "0.0".into())],
            ..nodes(&["method"])
        };
        let fig = figure(&t, &q).unwrap();
        let theory: Vec<Option<f64>> = fig.series[0].points.iter().map(|p| p.theory).collect();
        assert_eq!(theory, [Some(1.9), Some(0.9)]);
        assert!(fig.caption.contains("dotted: mean ge_theory"), "{}", fig.caption);
        // M = 2, K = 6 (Z = 3), v* = 4: eq. 5 at kn = 1 is 16·[(2/3)²/6 + 1/6], at kn = 2 16·(8/9)/6.
        assert_eq!(fig.curves.len(), 1);
        let c = &fig.curves[0];
        assert!(c.label.contains("eq. 5"));
        assert!(
            close(c.points[0].1, 16.0 * (4.0 / 9.0 / 6.0 + 1.0 / 6.0))
                && close(c.points[1].1, 16.0 * 8.0 / 54.0)
        );
        assert_eq!(fig.title, "teacher–student, DPP node, σ = 0, M = 2, K = 6, v* = 4");

        // Refusals: settings not recorded (old format), or varying.
        let err = figure(&table(TWO_NOISES), &q).unwrap_err().to_string();
        assert!(err.contains("needs the setting `teacher_hidden`"), "{err}");
        let varied = new_format(TWO_NOISES).replacen(",2,6,4.0\n", ",3,6,4.0\n", 2);
        let q = Query {
            filters: Vec::new(),
            average_over: vec!["noise_std".into(), "teacher_hidden".into()],
            ..q
        };
        let err = figure(&table(&varied), &q).unwrap_err().to_string();
        assert!(err.contains("differ in `teacher_hidden` (2, 3)"), "{err}");
        let q = Query { x: "mask_sample".into(), ..q };
        let err = figure(&t, &q).unwrap_err().to_string();
        assert!(err.contains("the rows keep 1, 2 units; select one kn"), "{err}");
        // Another x at one kn (e.g. input_dim in a finite-size sweep): horizontal lines.
        let q = Query {
            filters: vec![("noise_std".into(), "0.0".into()), ("keep_nodes".into(), "2".into())],
            average_over: Vec::new(),
            ..q
        };
        let fig = figure(&t, &q).unwrap();
        let line = &fig.curves[0].points;
        assert_eq!(line.len(), 2);
        assert!(close(line[0].1, 16.0 * 8.0 / 54.0) && close(line[1].1, line[0].1));
    }

    #[test]
    fn several_files_are_read_and_missing_columns_are_named() {
        let a = scratch("files-a").join("results.csv");
        std::fs::write(&a, TINY).unwrap();
        let b = scratch("files-b").join("other.csv");
        // Same data, columns in another order: still found by name.
        std::fs::write(&b, "seed,ge_empirical,keep_fraction,run_id,status\n3,8.0,0.5,c,ok\n")
            .unwrap();
        let t = Table::load(&[a.clone(), b.clone()]).unwrap();
        let q = Query {
            average_over: vec!["method".into(), "reweight".into(), "noise_std".into()],
            ..query(&[])
        };
        let fig = figure(&t, &q).unwrap();
        let half = fig.series[0].points.iter().find(|p| p.x == 0.5).unwrap();
        // No grouping: dpp and random rows of run a, run b and the second file's run c.
        assert_eq!(half.n, 8);

        let err = figure(&t, &query(&["method"])).unwrap_err().to_string();
        assert!(err.contains("`method`") && err.contains(&b.display().to_string()), "{err}");
        assert!(err.contains("seed, ge_empirical, keep_fraction, run_id, status"), "{err}");
        let missing = scratch("unreadable").join("nope.csv");
        let err = Table::load(std::slice::from_ref(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains(&missing.display().to_string()), "{err:#}");
    }

    #[test]
    fn empty_selections_non_numbers_and_non_finite_values() {
        let q = Query { filters: vec![("method".into(), "dpp_edge".into())], ..query(&["method"]) };
        let err = figure(&table(TINY), &q).unwrap_err().to_string();
        assert!(err.contains("no rows left") && err.contains("method=dpp_edge"), "{err}");
        let q = Query { filters: vec![("method".into(), "none".into())], ..query(&["method"]) };
        let err = figure(&table(TINY), &q).unwrap_err().to_string();
        assert!(err.contains("only unpruned"), "{err}");

        let t =
            table("seed,run_id,status,keep_fraction,ge_empirical\n1,a,ok,0.5,NaN\n1,a,ok,0.5,2\n");
        let fig = figure(&t, &query(&[])).unwrap();
        assert_eq!((fig.dropped, fig.series[0].points[0].mean), (1, 2.0));
        let t = table("seed,run_id,status,keep_fraction,ge_empirical\n1,a,ok,half,2\n");
        let err = figure(&t, &query(&[])).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("`keep_fraction`") && err.contains("half"),
            "{err}"
        );
    }

    #[test]
    fn the_example_results_aggregate_to_four_series() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
        let q = Query { x_scale: 100.0, by: None, ..query(&[]) };
        let fig = figure(&Table::load(&[path]).unwrap(), &q).unwrap();
        assert_eq!(fig.title, "teacher–student, σ = 0.25");
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
        let fig = figure(&table(TINY), &query(&["method"])).unwrap();
        let canvas = Canvas::default();
        let svg = dir.join("fig.svg");
        write(&fig, &svg, &canvas).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
        let pdf = dir.join("fig.pdf");
        write(&fig, &pdf, &canvas).unwrap();
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));

        let nowhere = dir.join("missing").join("fig.svg");
        let err = format!("{:#}", write(&fig, &nowhere, &canvas).unwrap_err());
        assert!(err.contains(&nowhere.display().to_string()), "{err}");
        assert!(!dir.join("missing").exists());

        let eps = dir.join("fig.eps");
        let err = write(&fig, &eps, &canvas).unwrap_err().to_string();
        assert!(err.contains("`eps`") && err.contains(&eps.display().to_string()), "{err}");
        let mut names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["fig.pdf", "fig.svg"], "no temporary or partial files are left");
    }

    #[test]
    fn a_setting_on_the_x_axis_may_differ_between_points_but_not_within_one() {
        // A finite-size sweep: train_steps = 1600·N changes with x = input_dim.
        let text = "\
status,seed,run_id,method,reweight,keep_nodes,ge_theory,input_dim,train_steps
ok,1,a,dpp_node,false,2,2.6,100,160000
ok,2,b,dpp_node,false,2,2.4,100,160000
ok,1,c,dpp_node,false,2,2.5,200,320000
";
        let q = Query { by: Some(vec!["method".into()]), ..Query::new("input_dim", "ge_theory") };
        let fig = figure(&table(text), &q).unwrap();
        let xs: Vec<f64> = fig.series[0].points.iter().map(|p| p.x).collect();
        assert_eq!(xs, [100.0, 200.0]);
        assert!(close(fig.series[0].points[0].mean, 2.5));
        let mixed =
            text.replace("2,b,dpp_node,false,2,2.4,100,160000", "2,b,dpp_node,false,2,2.4,100,1");
        let err = figure(&table(&mixed), &q).unwrap_err().to_string();
        assert!(err.contains("differ in train_steps (1, 160000)"), "{err}");
    }

    #[test]
    fn budgets_are_kept_apart_on_any_other_x_axis() {
        // A trajectory: one row per run, method, budget and α, no mask samples.
        let text = "\
status,seed,run_id,method,reweight,keep_nodes,keep_fraction,alpha,eps
ok,1,a,random_edge,false,2,0.3333333333333333,1,2.0
ok,1,a,random_edge,false,4,0.6666666666666666,1,1.0
ok,2,b,random_edge,false,2,0.3333333333333333,1,4.0
ok,2,b,random_edge,false,4,0.6666666666666666,1,3.0
";
        let t = table(text);
        // By default the budgets are two series (they were averaged as if they were masks).
        let fig = figure(&t, &Query::new("alpha", "eps")).unwrap();
        let means: Vec<f64> = fig.series.iter().map(|s| s.points[0].mean).collect();
        assert_eq!(means, [3.0, 2.0]);
        assert_eq!(labels(&fig), ["p = 0.333", "p = 0.667"]);
        // Pooled only on request.
        let q = Query { by: Some(vec!["method".into()]), ..Query::new("alpha", "eps") };
        let err = figure(&t, &q).unwrap_err().to_string();
        assert!(err.contains("differ in keep_fraction") && err.contains("--where keep_fraction="));
        let q = Query { average_over: vec!["keep_fraction".into()], ..q };
        assert!(close(figure(&t, &q).unwrap().series[0].points[0].mean, 2.5));
        // On a budget axis the budget is x: one series of two points.
        let fig = figure(&t, &Query::new("keep_nodes", "eps")).unwrap();
        assert_eq!(fig.series.len(), 1);
        assert_eq!(fig.series[0].points.len(), 2);
        // Edge budgets all keep K units: at x = keep_nodes they would land on one point.
        let edges = text.replace(",false,2,", ",false,6,").replace(",false,4,", ",false,6,");
        let err = figure(&table(&edges), &Query::new("keep_nodes", "eps")).unwrap_err();
        assert!(err.to_string().contains("differ in keep_fraction"), "{err}");
    }
}
