//! Words for a figure: display names of methods and settings ("DPP node", "σ = 0.25"), legend
//! labels, the default title (what the rows share), axis labels and the caption (what points and
//! error bars are).
use super::aggregate::{Key, Stats};

/// Display names of the `method` values.
const METHODS: [(&str, &str); 10] = [
    ("random_node", "random node"),
    ("importance_node", "importance node"),
    ("dpp_node", "DPP node"),
    ("random_edge", "random edge"),
    ("importance_edge", "importance edge"),
    ("dpp_edge", "DPP edge"),
    ("none", "unpruned"),
    ("normalized", "unpruned, rows normalised"),
    ("training", "training"),
    ("", ""),
];

/// Symbols of known columns (shown as `symbol = value`); `true` marks headline settings, which
/// the default title names when all rows share them.
const SYMBOLS: [(&str, &str, bool); 14] = [
    ("input_dim", "N", true),
    ("teacher_hidden", "M", true),
    ("student_hidden", "K", true),
    ("v_star", "v*", true),
    ("noise_std", "σ", true),
    ("data", "data", true),
    ("hidden", "hidden", true),
    ("lr", "η", false),
    ("train_steps", "steps", false),
    ("test_samples", "test samples", false),
    ("batch_size", "batch size", false),
    ("keep_nodes", "kn", false),
    ("keep_edges", "kept edges", false),
    ("seed", "seed", false),
];

/// Display names of the `task` values.
const TASKS: [(&str, &str); 2] = [("teacher_student", "teacher–student"), ("mlp", "MLP")];

/// The display name of a method (unknown ones as they are).
pub fn method_name(method: &str) -> &str {
    METHODS.iter().find(|(m, _)| *m == method).map_or(method, |(_, name)| name)
}

/// Whether `column` is a setting the default title names when shared.
pub fn is_headline(column: &str) -> bool {
    SYMBOLS.iter().any(|&(c, _, headline)| c == column && headline)
}

/// A value as people write it: numbers without trailing zeros (`0.0` → `0`), strings unquoted.
pub fn value_text(value: &str) -> String {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && !value.contains(['e', 'E']) => format!("{v}"),
        _ => value.trim_matches('"').to_string(),
    }
}

/// One label part for `column = value`: `"DPP node"`, `"reweighted"`, `"σ = 0.25"`, `"foo = 3"`.
/// `reweight=false` gives `"not reweighted"`, which [`join`] leaves out beside other parts.
pub fn part(column: &str, value: &str) -> String {
    match (column, value) {
        (_, "") => String::new(),
        ("method", m) => method_name(m).to_string(),
        ("task", t) => TASKS.iter().find(|(k, _)| *k == t).map_or(t, |(_, n)| n).to_string(),
        ("rows", "normalised") => "rows normalised".into(),
        ("rows", _) => String::new(),
        ("reweight", v) if v.eq_ignore_ascii_case("true") => "reweighted".into(),
        ("reweight", v) if v.eq_ignore_ascii_case("false") => NOT_REWEIGHTED.into(),
        ("experiment", v) => v.to_string(),
        ("source", "ode") => "ODE (N → ∞)".into(),
        ("source", v) => v.to_string(),
        // Budgets are often thirds (kn/K): three decimals tell them apart.
        ("keep_fraction", v) => match v.parse::<f64>() {
            Ok(p) if p.is_finite() => format!("p = {}", value_text(&format!("{p:.3}"))),
            _ => format!("p = {v}"),
        },
        (c, v) => {
            let symbol = SYMBOLS.iter().find(|(k, _, _)| *k == c).map_or(c, |(_, s, _)| s);
            format!("{symbol} = {}", value_text(v))
        }
    }
}

const NOT_REWEIGHTED: &str = "not reweighted";

/// Joins non-empty parts with ", "; "not reweighted" only when it is the only part.
pub fn join(parts: &[String]) -> String {
    let shown: Vec<&str> = parts.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
    let other: Vec<&str> = shown.iter().copied().filter(|p| *p != NOT_REWEIGHTED).collect();
    if other.is_empty() { shown } else { other }.join(", ")
}

/// Legend labels for series keys: the parts that tell the series apart (all parts for a single
/// series), and the parts all series share, for the title.
pub fn series_labels(keys: &[Key]) -> (Vec<String>, Vec<String>) {
    let width = keys.first().map_or(0, Vec::len);
    let shared: Vec<bool> =
        (0..width).map(|i| keys.len() > 1 && keys.iter().all(|k| k[i] == keys[0][i])).collect();
    let labels = keys
        .iter()
        .map(|key| {
            let parts: Vec<String> = key
                .iter()
                .zip(&shared)
                .filter(|(_, &s)| !s)
                .map(|((c, v), _)| part(c, v))
                .collect();
            join(&parts)
        })
        .collect();
    let common = keys.first().map_or_else(Vec::new, |key| {
        key.iter().zip(&shared).filter(|(_, &s)| s).map(|((c, v), _)| part(c, v)).collect()
    });
    (labels, common)
}

/// The label of an unpruned reference line: "unpruned" plus what tells it from the others.
pub fn reference_label(distinct: &str) -> String {
    match distinct {
        "" => "unpruned".into(),
        d => format!("unpruned, {d}"),
    }
}

/// The default title: `shared` parts (what all rows have in common, in words) joined.
pub fn title(shared: &[String]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for p in shared {
        if !p.is_empty() && p != NOT_REWEIGHTED && !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// A readable axis label for `column` with its values multiplied by `scale`.
pub fn axis_label(column: &str, scale: f64) -> String {
    let percent = scale == 100.0;
    match column {
        "keep_fraction" | "achieved_fraction" if percent => "% of parameters kept".into(),
        "keep_fraction" | "achieved_fraction" if scale == 1.0 => {
            "fraction of parameters kept".into()
        }
        "keep_nodes" if scale == 1.0 => "hidden units kept (kn)".into(),
        "ge_empirical" if scale == 1.0 => "generalisation error ε̂ (½·MSE)".into(),
        "ge_theory" if scale == 1.0 => "ε (closed form)".into(),
        "eps" if scale == 1.0 => "ε (closed form; pruned: expected)".into(),
        "alpha" if scale == 1.0 => "α = steps / N".into(),
        "test_error" if percent => "test error (%)".into(),
        "test_error" if scale == 1.0 => "test error".into(),
        _ if scale == 1.0 => column.into(),
        _ if percent => format!("{column} (%)"),
        _ => format!("{column} (×{scale})"),
    }
}

/// "5" or "2–5".
fn range((lo, hi): (usize, usize)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// What the points and error bars are, from the counts in `stats`, e.g. "points: mean over 5
/// seeds of the mean over 100 masks; bars: ±1 sd over seeds". `averaged` names the
/// `--average-over` columns.
pub fn caption(stats: &Stats, averaged: &[String]) -> String {
    let unit = if stats.pooled_settings { "runs" } else { "seeds" };
    let pooled = if averaged.is_empty() {
        String::new()
    } else {
        format!(" (pooling {})", averaged.join(", "))
    };
    let masks = match stats.masks {
        (1, 1) => String::new(),
        m => format!(" of the mean over {} masks", range(m)),
    };
    let (points, bars) = match stats.runs {
        (1, 1) if stats.masks.1 == 1 => ("single rows".to_string(), "no error bars".to_string()),
        (1, 1) => (
            format!("mean over {} masks of one seed", range(stats.masks)),
            "±1 sd over masks".into(),
        ),
        (1, _) => (
            format!("mean over {} {unit}{pooled}{masks}", range(stats.runs)),
            format!("±1 sd over {unit} (over masks where there is one)"),
        ),
        runs => (
            format!("mean over {} {unit}{pooled}{masks}", range(runs)),
            format!("±1 sd over {unit}"),
        ),
    };
    format!("points: {points}; bars: {bars}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Key {
        pairs.iter().map(|(c, v)| (c.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parts_use_display_names_and_symbols() {
        assert_eq!(part("method", "dpp_node"), "DPP node");
        assert_eq!(part("noise_std", "0.25"), "σ = 0.25");
        assert_eq!(part("noise_std", "0.0"), "σ = 0");
        assert_eq!(part("input_dim", "500"), "N = 500");
        assert_eq!(part("v_star", "4.0"), "v* = 4");
        assert_eq!(part("data", "\"data/mnist\""), "data = data/mnist");
        assert_eq!(part("frobnication", "3"), "frobnication = 3");
        assert_eq!(part("task", "teacher_student"), "teacher–student");
        assert_eq!(
            join(&[part("method", "random_edge"), part("reweight", "true")]),
            "random edge, reweighted"
        );
        assert_eq!(
            join(&[part("method", "random_edge"), part("reweight", "false")]),
            "random edge"
        );
        assert_eq!(join(&[part("reweight", "false")]), "not reweighted");
    }

    #[test]
    fn shared_parts_leave_the_labels_for_the_title() {
        let keys = [
            key(&[("method", "dpp_node"), ("reweight", "true"), ("noise_std", "0.25")]),
            key(&[("method", "random_node"), ("reweight", "true"), ("noise_std", "0.25")]),
        ];
        let (labels, common) = series_labels(&keys);
        assert_eq!(labels, ["DPP node", "random node"]);
        assert_eq!(title(&common), "reweighted, σ = 0.25");
        let (labels, common) = series_labels(&keys[..1]);
        assert_eq!((labels[0].as_str(), common.len()), ("DPP node, reweighted, σ = 0.25", 0));
    }

    #[test]
    fn captions_say_what_points_and_bars_are() {
        let stats = Stats { runs: (5, 5), masks: (100, 100), pooled_settings: false };
        assert_eq!(
            caption(&stats, &[]),
            "points: mean over 5 seeds of the mean over 100 masks; bars: ±1 sd over seeds"
        );
        let stats = Stats { runs: (1, 1), masks: (1, 100), pooled_settings: false };
        assert_eq!(
            caption(&stats, &[]),
            "points: mean over 1–100 masks of one seed; bars: ±1 sd over masks"
        );
        let stats = Stats { runs: (2, 2), masks: (1, 1), pooled_settings: true };
        assert_eq!(
            caption(&stats, &["noise_std".into()]),
            "points: mean over 2 runs (pooling noise_std); bars: ±1 sd over runs"
        );
        assert_eq!(axis_label("test_error", 100.0), "test error (%)");
        assert_eq!(axis_label("wall_ms", 2.0), "wall_ms (×2)");
    }
}
