//! `prunelab plot`: draws a figure (SVG and/or PNG) from one or more results.csv files.
use super::Status;
use crate::plot::{self, Query};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Series split by default by these columns (those missing from the files are left out).
const DEFAULT_BY: [&str; 3] = ["method", "reweight", "settings"];

/// Draw a figure from results.csv files.
///
/// Each point is the mean over runs (seeds) of the per-run mean over mask samples, with the
/// standard deviation over runs as error bar (over mask samples when there is a single run).
/// Unpruned rows (method `none`) are drawn as a dashed reference line. Only rows with status `ok`
/// are used.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab plot runs/fig2a/results.csv --by method --out fig2a.svg --out fig2a.png
  prunelab plot runs/fig2a/results.csv --where method=dpp_node,random_node --where reweight=true --out dpp.svg
  prunelab plot runs/*/results.csv --y ge_theory --by method,settings --log-y --out theory.png
  prunelab plot runs/mnist/results.csv --x achieved_fraction --y test_error --title MNIST --out mnist.png")]
pub struct Args {
    /// results.csv files; their rows are pooled.
    #[arg(required = true, value_name = "CSV")]
    csv: Vec<PathBuf>,
    /// Column on the x axis.
    #[arg(long, default_value = "keep_fraction", value_name = "COLUMN")]
    x: String,
    /// Column on the y axis (test_error is shown in percent).
    #[arg(long, default_value = "ge_empirical", value_name = "COLUMN")]
    y: String,
    /// Columns whose values split the rows into series, comma-separated; '' for a single series
    /// [default: method,reweight,settings, those present in the files]
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    by: Option<Vec<String>>,
    /// Keep only rows where COLUMN is one of the VALUEs (repeatable; all must hold).
    #[arg(long = "where", value_name = "COLUMN=VALUE[,VALUE...]", value_parser = parse_filter)]
    filters: Vec<(String, String)>,
    /// Title above the plot [default: the experiment names and the values all series share].
    #[arg(long)]
    title: Option<String>,
    /// x axis label [default: from the column, e.g. "% of parameters kept"].
    #[arg(long, value_name = "TEXT")]
    x_label: Option<String>,
    /// y axis label [default: from the column, e.g. "generalisation error ε̂ (½·MSE)"].
    #[arg(long, value_name = "TEXT")]
    y_label: Option<String>,
    /// Show x × 100 (on by default when x is keep_fraction or achieved_fraction).
    #[arg(long, overrides_with = "no_percent")]
    percent: bool,
    /// Show x as it is in the files.
    #[arg(long, overrides_with = "percent")]
    no_percent: bool,
    /// Logarithmic y axis.
    #[arg(long)]
    log_y: bool,
    /// Output file, .svg or .png (repeatable: --out fig.svg --out fig.png).
    #[arg(long, required = true, value_name = "FILE")]
    out: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<Status> {
    for out in &args.out {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if !ext.eq_ignore_ascii_case("svg") && !ext.eq_ignore_ascii_case("png") {
            bail!("--out {}: unknown figure format `{ext}` (use .svg or .png)", out.display());
        }
    }
    let fraction = matches!(args.x.as_str(), "keep_fraction" | "achieved_fraction");
    let percent = args.percent || (fraction && !args.no_percent);
    let by = match args.by {
        Some(by) => {
            by.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
        }
        None => default_by(&args.csv),
    };
    let query = Query {
        x: args.x.clone(),
        y: args.y.clone(),
        by,
        filters: args.filters,
        x_scale: if percent { 100.0 } else { 1.0 },
        y_scale: if args.y == "test_error" { 100.0 } else { 1.0 },
    };
    let mut fig = plot::aggregate(&args.csv, &query)?;
    if let Some(title) = args.title {
        fig.title = title;
    }
    if let Some(label) = args.x_label {
        fig.x_label = label;
    }
    if let Some(label) = args.y_label {
        fig.y_label = label;
    }
    fig.log_y = args.log_y;
    if fig.dropped > 0 {
        eprintln!(
            "note: left out {} rows whose {} or {} is not a finite number",
            fig.dropped, args.x, args.y
        );
    }
    for out in &args.out {
        plot::write(&fig, out)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(Status::Ok)
}

/// Parses `column=value[,value...]`.
fn parse_filter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((column, values)) if !column.trim().is_empty() => {
            Ok((column.trim().to_string(), values.trim().to_string()))
        }
        _ => Err(format!("expected COLUMN=VALUE[,VALUE...], got `{text}`")),
    }
}

/// The default series columns present in every readable file (unreadable files are reported by
/// the aggregation).
fn default_by(paths: &[PathBuf]) -> Vec<String> {
    let headers: Vec<csv::StringRecord> = paths
        .iter()
        .filter_map(|p| csv::Reader::from_path(p).ok()?.headers().ok().cloned())
        .collect();
    DEFAULT_BY
        .iter()
        .filter(|c| headers.iter().all(|h| h.iter().any(|name| name.trim() == **c)))
        .map(|c| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::{scratch, EXAMPLE};
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    #[command(name = "plot")]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(args: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("plot").chain(args.iter().copied())).unwrap().args
    }

    fn example() -> String {
        format!("{}/{EXAMPLE}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn help_shows_examples() {
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("Examples:") && help.contains("--out fig2a.svg --out fig2a.png"),
            "{help}"
        );
    }

    #[test]
    fn options_parse() {
        let args = parse(&[
            "a.csv",
            "b.csv",
            "--by",
            "method,seed",
            "--where",
            "method=dpp_node,none",
            "--out",
            "f.svg",
        ]);
        assert_eq!(args.csv.len(), 2);
        assert_eq!(args.by, Some(vec!["method".to_string(), "seed".to_string()]));
        assert_eq!(args.filters, [("method".to_string(), "dpp_node,none".to_string())]);
        assert!(Cli::try_parse_from(["plot", "a.csv", "--where", "method"]).is_err());
        assert!(Cli::try_parse_from(["plot", "--out", "x.svg"]).is_err(), "a CSV is required");
        assert!(Cli::try_parse_from(["plot", "a.csv"]).is_err(), "--out is required");
    }

    #[test]
    fn writes_every_output_with_percent_axes() {
        let dir = scratch("cli");
        let (svg, png) = (dir.join("fig.svg"), dir.join("fig.png"));
        let args = parse(&[
            &example(),
            "--where",
            "reweight=false",
            "--out",
            svg.to_str().unwrap(),
            "--out",
            png.to_str().unwrap(),
        ]);
        run(args).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert_eq!(
            text.matches("<polyline").count(),
            3,
            "random, importance and dpp without reweighting"
        );
        assert!(text.contains(">% of parameters kept<") && text.contains(">90<"));
        assert!(text.contains(">random_node<") && text.contains(">unpruned<"));
        assert!(
            text.contains(">fig2a (reweight=false, noise_std=0.25)<"),
            "shared values go to the title"
        );
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    }

    #[test]
    fn bad_outputs_fail_before_any_work() {
        let dir = scratch("cli-bad");
        let svg = dir.join("fig.svg");
        let args = parse(&[&example(), "--out", svg.to_str().unwrap(), "--out", "fig.pdf"]);
        let Err(err) = run(args) else { panic!("a .pdf output must be refused") };
        let err = err.to_string();
        assert!(err.contains("fig.pdf") && err.contains("`pdf`"), "{err}");
        assert!(!svg.exists());
    }

    #[test]
    fn default_series_columns_skip_missing_ones() {
        let path = scratch("cli-by").join("results.csv");
        std::fs::write(
            &path,
            "seed,run_id,status,method,keep_fraction,ge_empirical\n1,a,ok,dpp_node,0.5,1\n",
        )
        .unwrap();
        assert_eq!(default_by(std::slice::from_ref(&path)), ["method"]);
        assert_eq!(default_by(&[PathBuf::from(example()), path]), ["method"]);
    }
}
