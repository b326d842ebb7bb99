//! Theory drawn beside the data: closed forms as lines (`--closed-form theorem1`: paper eq. 5 and
//! 6, from [`crate::theory::ge`]). The per-row `ge_theory` overlay (`--theory`) is aggregated with
//! the points ([`super::Point::theory`]).
use super::query::{ClosedForm, Obs, Query};
use super::table::Table;
use crate::theory::ge::{theorem1_dpp_node, theorem1_dpp_node_reweighted};
use anyhow::{bail, ensure, Result};

/// A theory line: drawn dark grey with dash pattern number `dash`, listed in the legend.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub dash: usize,
}

/// The curves of `form` for the rows `obs` selects.
pub fn closed_form(
    form: ClosedForm,
    table: &Table,
    obs: &[Obs],
    query: &Query,
) -> Result<Vec<Curve>> {
    match form {
        ClosedForm::Theorem1 => theorem1(table, obs, query),
    }
}

/// Eq. 5 ε = v*²[kn(1−1/Z)²/6 + (M−kn)/6] for the rows not reweighted and eq. 6 ε = (M−kn)v*²/6
/// for the reweighted ones, at every whole kn ≤ M within the x range.
fn theorem1(table: &Table, obs: &[Obs], query: &Query) -> Result<Vec<Curve>> {
    let what = "--closed-form theorem1";
    ensure!(
        query.x == "keep_nodes" && query.x_scale == 1.0,
        "{what} needs --x keep_nodes (kept hidden units), not {}",
        query.x
    );
    ensure!(
        query.y.starts_with("ge_") && query.y_scale == 1.0,
        "{what} needs a generalisation error on the y axis (ge_empirical, ge_theory), not {}",
        query.y
    );
    let pruned: Vec<&Obs> = obs.iter().filter(|o| o.unpruned.is_none()).collect();
    ensure!(
        pruned.iter().all(|o| o.row.get("method") == "dpp_node"),
        "{what} describes DPP node pruning: select it with --where method=dpp_node"
    );
    let m = setting(table, obs, "teacher_hidden", what)?;
    let k = setting(table, obs, "student_hidden", what)?;
    let v_star = setting(table, obs, "v_star", what)?;
    let whole = |v: f64| v >= 1.0 && v.fract() == 0.0;
    ensure!(whole(m) && whole(k) && (k % m) == 0.0, "{what}: K = {k} is not a multiple of M = {m}");
    let (m, z) = (m as usize, (k / m) as usize);
    let xs = pruned.iter().map(|o| o.x);
    let lo = xs.clone().fold(f64::INFINITY, f64::min).max(0.0).ceil() as usize;
    let hi = xs.fold(0.0, f64::max).min(m as f64).floor() as usize;
    ensure!(lo <= hi, "{what}: no kept-unit count kn ≤ M = {m} among the rows");
    let reweight = |v: &str| pruned.iter().any(|o| o.row.get("reweight").eq_ignore_ascii_case(v));
    let mut curves = Vec::new();
    if reweight("false") || !table.has("reweight") {
        let points = (lo..=hi).map(|kn| (kn as f64, theorem1_dpp_node(m, z, v_star, kn))).collect();
        curves.push(Curve { label: "Theorem 1 (eq. 5)".into(), points, dash: 0 });
    }
    if reweight("true") {
        let points =
            (lo..=hi).map(|kn| (kn as f64, theorem1_dpp_node_reweighted(m, v_star, kn))).collect();
        curves.push(Curve { label: "Theorem 1 reweighted (eq. 6)".into(), points, dash: 1 });
    }
    Ok(curves)
}

/// The one value of setting `column` among `obs`, or an error saying it is missing or varies.
fn setting(table: &Table, obs: &[Obs], column: &str, what: &str) -> Result<f64> {
    if !table.has(column) {
        bail!(
            "{what} needs the setting `{column}`, which the files do not record (results.csv \
             files written before settings had their own columns name only the settings that \
             vary); its columns: {}",
            table.files.iter().flat_map(|f| &f.columns).cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let mut values: Vec<&str> = obs.iter().map(|o| o.row.get(column)).collect();
    values.sort_unstable();
    values.dedup();
    match values.as_slice() {
        [one] if !one.is_empty() => one
            .parse::<f64>()
            .map_err(|_| anyhow::anyhow!("{what}: setting `{column}` holds `{one}`, not a number")),
        _ => bail!(
            "{what}: the rows differ in `{column}` ({}); select one value with --where {column}=…",
            values
                .iter()
                .map(|v| if v.is_empty() { "(empty)" } else { v })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
