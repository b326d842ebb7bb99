//! `prunelab plot`: draws a figure (SVG, PNG and/or PDF) from one or more results.csv files, or
//! (`--heatmap`, see [`heatmap`]) a heat map of a saved teacher-student run.
mod heatmap;

use super::Status;
use crate::plot::{self, Canvas, ClosedForm, Query, Table};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Draw a figure from results.csv or trajectory files.
///
/// Each point is the mean over runs (seeds) of the per-run mean over mask samples, with the
/// standard deviation over runs as error bar (over mask samples when there is a single run); a
/// caption under the plot says so with the counts. Unpruned rows (method `none`) are drawn as a
/// dashed reference line. Only rows with status `ok` are used; MLP training rows (method
/// `training`) only when `--where method=training` selects them.
///
/// Rows are only averaged over seeds and mask samples: rows of one series that differ in a
/// setting (noise_std, lr, …, or method, reweight, experiment, and the budget keep_fraction when
/// x is not a budget, e.g. along α) are refused with a message naming it; split series by it
/// (--by; without --by, every column that varies splits), keep one value (--where) or allow it
/// (--average-over).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  prunelab plot runs/fig2c-node-methods/results.csv --by method,noise_std --out fig2c.svg --out fig2c.pdf
  prunelab plot runs/fig2c-node-methods/results.csv --by method --where noise_std=0.25 --out sigma025.png
  prunelab plot runs/fig2c-node-methods/results.csv --by method --average-over noise_std --out pooled.svg
  prunelab plot runs/fig2a/results.csv --by method,reweight --color-by reweight --style-by method --jitter --out fig2a.png
  prunelab plot runs/theorem1/results.csv --x keep_nodes --by reweight --theory --closed-form theorem1 --out theorem1.pdf
  prunelab plot runs/mnist/results.csv --where method=training --by hidden --out training.png
  prunelab plot runs/dyn/trajectories/*.csv ode.csv --where method=none --by source --log-x --log-y --out eps.svg
  prunelab plot runs/dyn/trajectories/*.csv ode.csv --where method=dpp_node,random_edge --by method,source,keep_fraction --log-x --out pruned.svg
  prunelab plot runs/mnist/results.csv --x achieved_fraction --y test_error --title MNIST --width 500 --height 320 --font-size 10 --dpi 300 --out mnist.png
  prunelab plot --heatmap q --run runs/theorem1/models/<run_id> --out q.png
  prunelab plot --heatmap dpp-inclusion --kn 2 --run runs/theorem1/models/<run_id> --out dpp.svg")]
pub struct Args {
    /// results.csv (or trajectory) files; their rows are pooled.
    #[arg(required_unless_present = "heatmap", conflicts_with = "heatmap", value_name = "CSV")]
    csv: Vec<PathBuf>,
    /// Draw a heat map of a saved teacher-student run (--run) instead of results: `q` (the
    /// student's overlaps Q_ik = w_i·w_k/N), `r` (its overlaps with the teacher R_in = w_i·w*_n/N),
    /// `kernel` (the DPP node kernel W Wᵀ/N of the rows as pruned) or `dpp-inclusion`
    /// (P(i ∈ S and k ∈ S) for the k-DPP that dpp_node samples with --kn units, computed exactly
    /// over all subsets; diagonal: P(i ∈ S)). Paper Figure 2E–G.
    #[arg(long, value_enum, requires = "run")]
    heatmap: Option<heatmap::Kind>,
    /// A teacher-student run's model folder (runs/<name>/models/<run_id>) holding
    /// student.safetensors and teacher.safetensors, for --heatmap.
    #[arg(long, value_name = "DIR", requires = "heatmap")]
    run: Option<PathBuf>,
    /// Units the k-DPP keeps, for --heatmap dpp-inclusion.
    #[arg(long, requires = "heatmap")]
    kn: Option<usize>,
    /// --heatmap kernel and dpp-inclusion: whether the DPP kernel comes from the student's rows rescaled to
    /// norm √N, as prune.normalize_rows (default true) does before pruning.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    normalize_rows: bool,
    /// Column on the x axis [default: keep_fraction; epoch for training rows].
    #[arg(long, value_name = "COLUMN")]
    x: Option<String>,
    /// Column on the y axis; test_error is shown in percent [default: ge_empirical when the rows
    /// have it, else test_error].
    #[arg(long, value_name = "COLUMN")]
    y: Option<String>,
    /// Columns whose values split the rows into series, comma-separated; '' for a single series.
    /// Settings are columns too, also in files that pack them in `settings` (noise_std, lr, …)
    /// [default: method, reweight and every setting that varies among the rows].
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    by: Option<Vec<String>>,
    /// Keep only rows where COLUMN is one of the VALUEs (repeatable; all must hold).
    #[arg(long = "where", value_name = "COLUMN=VALUE[,VALUE...]", value_parser = parse_filter)]
    filters: Vec<(String, String)>,
    /// Allow averaging rows that differ in COLUMN (a setting, or method, reweight, …), e.g. two
    /// noise levels; comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
    average_over: Vec<String>,
    /// Series colours follow this column [default: method, else the first --by column that
    /// varies]; it is added to --by if missing.
    #[arg(long, value_name = "COLUMN")]
    color_by: Option<String>,
    /// Series line styles (solid, dashed, …) follow this column [default: the next --by column
    /// that varies]; it is added to --by if missing.
    #[arg(long, value_name = "COLUMN")]
    style_by: Option<String>,
    /// Draw each series' mean ge_theory (ε computed from the pruned weights) as a dotted line.
    #[arg(long)]
    theory: bool,
    /// Draw a closed form as lines: `theorem1` (paper eq. 5 and 6; needs --x keep_nodes, DPP node
    /// rows and the settings teacher_hidden, student_hidden, v_star).
    #[arg(long, value_name = "NAME")]
    closed_form: Option<ClosedForm>,
    /// Shift series sideways a little so their error bars stay apart (the caption says so).
    #[arg(long)]
    jitter: bool,
    /// Title above the plot [default: what all rows share, in words, e.g. "teacher–student, σ = 0.25"].
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
    /// Logarithmic x axis (e.g. α of trajectory files).
    #[arg(long)]
    log_x: bool,
    /// Width of the figure: pixels of the SVG (at 96 dpi), points of the PDF.
    #[arg(long, default_value_t = 720.0, value_name = "UNITS", value_parser = positive)]
    width: f64,
    /// Height of the figure, as --width.
    #[arg(long, default_value_t = 450.0, value_name = "UNITS", value_parser = positive)]
    height: f64,
    /// Resolution of PNG output: a PNG has width × dpi / 96 pixels across.
    #[arg(long, default_value_t = 192.0, value_parser = positive)]
    dpi: f64,
    /// Size of tick and legend text in units; title and labels are a little larger.
    #[arg(long, default_value_t = 12.0, value_name = "UNITS", value_parser = positive)]
    font_size: f64,
    /// Output file, .svg, .png or .pdf (repeatable: --out fig.svg --out fig.pdf).
    #[arg(long, required = true, value_name = "FILE")]
    out: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<Status> {
    check_outputs(&args.out)?;
    let canvas =
        Canvas { width: args.width, height: args.height, font_size: args.font_size, dpi: args.dpi };
    if let Some(kind) = args.heatmap {
        let request = heatmap::Request {
            kind,
            run: args.run.clone().unwrap_or_default(),
            kn: args.kn,
            normalize_rows: args.normalize_rows,
        };
        let mut map = heatmap::build(&request)?;
        if let Some(title) = &args.title {
            map.title.clone_from(title);
        }
        let svg = plot::heatmap::render_svg(&map, &canvas);
        for out in &args.out {
            plot::write_svg(&svg, out, &canvas)?;
            eprintln!("wrote {}", out.display());
        }
        return Ok(Status::Ok);
    }
    lines(&args, &canvas)
}

/// Refuses outputs whose extension is not a known figure format, before any work.
fn check_outputs(outs: &[PathBuf]) -> Result<()> {
    for out in outs {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if !["svg", "png", "pdf"].iter().any(|known| ext.eq_ignore_ascii_case(known)) {
            bail!(
                "--out {}: unknown figure format `{ext}` (use .svg, .png or .pdf)",
                out.display()
            );
        }
    }
    Ok(())
}

/// The figure `args` describe from results.csv files.
fn lines(args: &Args, canvas: &Canvas) -> Result<Status> {
    let table = Table::load(&args.csv)?;
    let query = query(args, &table);
    let mut fig = plot::figure(&table, &query)?;
    if let Some(title) = &args.title {
        fig.title.clone_from(title);
    }
    if let Some(label) = &args.x_label {
        fig.x_label.clone_from(label);
    }
    if let Some(label) = &args.y_label {
        fig.y_label.clone_from(label);
    }
    fig.log_y = args.log_y;
    fig.log_x = args.log_x;
    if fig.dropped > 0 {
        eprintln!(
            "note: left out {} rows whose {} or {} is not a finite number",
            fig.dropped, query.x, query.y
        );
    }
    for out in &args.out {
        plot::write(&fig, out, canvas)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(Status::Ok)
}

/// The query the options describe, with the defaults that depend on the rows.
fn query(args: &Args, table: &Table) -> Query {
    let training = args
        .filters
        .iter()
        .any(|(c, v)| c == "method" && v.split(',').all(|m| m.trim() == plot::query::TRAINING));
    let trajectory = table.has("alpha") && table.has("eps");
    let x = args.x.clone().unwrap_or_else(|| {
        if training {
            "epoch"
        } else if trajectory {
            "alpha"
        } else {
            "keep_fraction"
        }
        .into()
    });
    let has_ge = table.rows.iter().any(|r| !r.get("ge_empirical").is_empty());
    let y = args.y.clone().unwrap_or_else(|| {
        if has_ge && !training {
            "ge_empirical"
        } else if trajectory {
            "eps"
        } else {
            "test_error"
        }
        .into()
    });
    let fraction = matches!(x.as_str(), "keep_fraction" | "achieved_fraction");
    let percent = args.percent || (fraction && !args.no_percent);
    let by = args
        .by
        .as_ref()
        .map(|by| by.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect());
    Query {
        by,
        filters: args.filters.clone(),
        average_over: args.average_over.iter().map(|c| c.trim().to_string()).collect(),
        x_scale: if percent { 100.0 } else { 1.0 },
        y_scale: if y == "test_error" { 100.0 } else { 1.0 },
        color_by: args.color_by.clone(),
        style_by: args.style_by.clone(),
        theory: args.theory,
        closed_form: args.closed_form,
        jitter: args.jitter,
        ..Query::new(&x, &y)
    }
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

/// Parses a positive, finite number.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive number, got `{text}`")),
    }
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
    fn help_shows_the_options_and_examples() {
        let help = Cli::command().render_long_help().to_string();
        for text in [
            "Examples:",
            "--out fig2c.svg --out fig2c.pdf",
            "--average-over",
            "--closed-form theorem1",
            "--color-by",
            "--style-by",
            "--jitter",
            "--dpi",
            "--font-size",
        ] {
            assert!(help.contains(text), "{text} missing from {help}");
        }
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
            "--average-over",
            "noise_std,lr",
            "--closed-form",
            "theorem1",
            "--width",
            "300",
            "--out",
            "f.svg",
        ]);
        assert_eq!(args.csv.len(), 2);
        assert_eq!(args.by, Some(vec!["method".to_string(), "seed".to_string()]));
        assert_eq!(args.filters, [("method".to_string(), "dpp_node,none".to_string())]);
        assert_eq!(args.average_over, ["noise_std", "lr"]);
        assert_eq!(
            (args.closed_form, args.width, args.height),
            (Some(ClosedForm::Theorem1), 300.0, 450.0)
        );
        assert!(Cli::try_parse_from(["plot", "a.csv", "--where", "method"]).is_err());
        assert!(Cli::try_parse_from(["plot", "a.csv", "--closed-form", "eq9", "--out", "f.svg"])
            .is_err());
        assert!(Cli::try_parse_from(["plot", "a.csv", "--dpi", "0", "--out", "f.svg"]).is_err());
        assert!(Cli::try_parse_from(["plot", "--out", "x.svg"]).is_err(), "a CSV is required");
        assert!(Cli::try_parse_from(["plot", "a.csv"]).is_err(), "--out is required");
    }

    #[test]
    fn writes_every_output_with_percent_axes_and_readable_labels() {
        let dir = scratch("cli");
        let (svg, png, pdf) = (dir.join("fig.svg"), dir.join("fig.png"), dir.join("fig.pdf"));
        let args = parse(&[
            &example(),
            "--where",
            "reweight=false",
            "--out",
            svg.to_str().unwrap(),
            "--out",
            png.to_str().unwrap(),
            "--out",
            pdf.to_str().unwrap(),
        ]);
        run(args).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert_eq!(
            text.matches(r#"class="mean""#).count(),
            3,
            "random, importance and dpp without reweighting"
        );
        assert!(text.contains(">% of parameters kept<") && text.contains(">90<"));
        assert!(text.contains(">random node<") && text.contains(">DPP node<"));
        assert!(text.contains(">unpruned<"));
        assert!(text.contains(">teacher–student, σ = 0.25<"), "shared values go to the title");
        assert!(
            text.contains(
                ">points: mean over 3 seeds of the mean over 10 masks; bars: ±1 sd over seeds<"
            ),
            "{text}"
        );
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
    }

    #[test]
    fn bad_outputs_fail_before_any_work() {
        let dir = scratch("cli-bad");
        let svg = dir.join("fig.svg");
        let args = parse(&[&example(), "--out", svg.to_str().unwrap(), "--out", "fig.eps"]);
        let Err(err) = run(args) else { panic!("a .eps output must be refused") };
        let err = err.to_string();
        assert!(err.contains("fig.eps") && err.contains("`eps`"), "{err}");
        assert!(!svg.exists());
    }

    #[test]
    fn defaults_follow_the_rows() {
        let path = scratch("cli-defaults").join("results.csv");
        std::fs::write(
            &path,
            "seed,run_id,status,method,keep_fraction,ge_empirical,test_error,epoch\n\
             1,a,ok,none,1.0,,0.1,3\n1,a,ok,training,,,0.2,1\n",
        )
        .unwrap();
        let table = Table::load(std::slice::from_ref(&path)).unwrap();
        let q = query(&parse(&["x.csv", "--out", "f.svg"]), &table);
        assert_eq!(
            (q.x.as_str(), q.y.as_str(), q.x_scale, q.y_scale),
            ("keep_fraction", "test_error", 100.0, 100.0)
        );
        let q = query(&parse(&["x.csv", "--where", "method=training", "--out", "f.svg"]), &table);
        assert_eq!((q.x.as_str(), q.y.as_str(), q.x_scale), ("epoch", "test_error", 1.0));
        let table = Table::load(&[PathBuf::from(example())]).unwrap();
        let q = query(&parse(&["x.csv", "--out", "f.svg"]), &table);
        assert_eq!((q.y.as_str(), q.by), ("ge_empirical", None));
    }

    #[test]
    fn heatmaps_of_a_saved_run_are_written_and_well_formed() {
        use crate::data::teacher::{seeded_student, seeded_teacher};
        use crate::model::io::save_two_layer;
        let dir = scratch("heatmap");
        let run_dir = dir.join("models").join("abc123");
        std::fs::create_dir_all(&run_dir).unwrap();
        let teacher = seeded_teacher(50, 2, 4.0, true, 3);
        let mut student = seeded_student(50, 6, 3);
        // A specialised student: unit i copies teacher unit i mod 2, plus noise.
        for x in 0..student.w.len() {
            student.w[x] = 0.4 * student.w[x] + teacher.w[(x / 50 % 2) * 50 + x % 50];
        }
        save_two_layer(&student, "student", &run_dir.join("student.safetensors")).unwrap();
        save_two_layer(&teacher, "teacher", &run_dir.join("teacher.safetensors")).unwrap();
        let run_arg = run_dir.to_str().unwrap();
        let (svg, png, pdf) = (dir.join("d.svg"), dir.join("d.png"), dir.join("d.pdf"));
        let outs = [svg.to_str().unwrap(), png.to_str().unwrap(), pdf.to_str().unwrap()];
        let mut argv = vec!["--heatmap", "dpp-inclusion", "--kn", "2", "--run", run_arg];
        for out in outs {
            argv.extend(["--out", out]);
        }
        run(parse(&argv)).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert_eq!(text.matches(r#"class="cell""#).count(), 36);
        assert!(text.contains("kn = 2") && text.contains(">student unit i (0 to 5)<"), "{text}");
        assert!(resvg::usvg::Tree::from_str(&text, &resvg::usvg::Options::default()).is_ok());
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
        let q = dir.join("q.svg");
        run(parse(&["--heatmap", "r", "--run", run_arg, "--out", q.to_str().unwrap()])).unwrap();
        assert_eq!(std::fs::read_to_string(&q).unwrap().matches(r#"class="cell""#).count(), 12);

        let refused = |argv: &[&str]| match run(parse(argv)) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("{argv:?} must be refused"),
        };
        let err = refused(&["--heatmap", "dpp-inclusion", "--run", run_arg, "--out", "x.svg"]);
        assert!(err.contains("needs --kn"), "{err}");
        let err = refused(&[
            "--heatmap",
            "dpp-inclusion",
            "--kn",
            "7",
            "--run",
            run_arg,
            "--out",
            "x.svg",
        ]);
        assert!(err.contains("--kn 7") && err.contains("6 units"), "{err}");
        let err = refused(&["--heatmap", "q", "--run", dir.to_str().unwrap(), "--out", "x.svg"]);
        assert!(err.contains("no student.safetensors"), "{err}");
        assert!(Cli::try_parse_from(["plot", "a.csv", "--heatmap", "q", "--out", "x.svg"]).is_err());
        assert!(Cli::try_parse_from(["plot", "--heatmap", "q", "--out", "x.svg"]).is_err());
    }
}
