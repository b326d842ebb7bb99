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
/// for the reweighted ones: over kn with `--x keep_nodes` (every whole kn ≤ M within the x
/// range), or, with any other x (e.g. input_dim), as horizontal lines at the rows' one kn.
fn theorem1(table: &Table, obs: &[Obs], query: &Query) -> Result<Vec<Curve>> {
    let what = "--closed-form theorem1";
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
    let points = kn_points(&pruned, query, m, what)?;
    let line = |f: &dyn Fn(usize) -> f64| points.iter().map(|&(x, kn)| (x, f(kn))).collect();
    let reweight = |v: &str| pruned.iter().any(|o| o.row.get("reweight").eq_ignore_ascii_case(v));
    let mut curves = Vec::new();
    if reweight("false") || !table.has("reweight") {
        let points = line(&|kn| theorem1_dpp_node(m, z, v_star, kn));
        curves.push(Curve { label: "Theorem 1 (eq. 5)".into(), points, dash: 0 });
    }
    if reweight("true") {
        let points = line(&|kn| theorem1_dpp_node_reweighted(m, v_star, kn));
        curves.push(Curve { label: "Theorem 1 reweighted (eq. 6)".into(), points, dash: 1 });
    }
    Ok(curves)
}

/// Where theorem 1's lines are drawn, as (x, kn): each whole kn ≤ M in the x range when x is
/// keep_nodes, else the ends of the x range at the one kn of the pruned rows.
fn kn_points(pruned: &[&Obs], query: &Query, m: usize, what: &str) -> Result<Vec<(f64, usize)>> {
    let xs = pruned.iter().map(|o| o.x);
    let (x_lo, x_hi) =
        xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if query.x == "keep_nodes" {
        ensure!(query.x_scale == 1.0, "{what} needs keep_nodes unscaled (--no-percent)");
        let lo = x_lo.max(0.0).ceil() as usize;
        let hi = x_hi.min(m as f64).floor() as usize;
        ensure!(lo <= hi, "{what}: no kept-unit count kn ≤ M = {m} among the rows");
        return Ok((lo..=hi).map(|kn| (kn as f64, kn)).collect());
    }
    let mut kns: Vec<&str> = pruned.iter().map(|o| o.row.get("keep_nodes")).collect();
    kns.sort_unstable();
    kns.dedup();
    let kn = match kns.as_slice() {
        [one] => one.parse::<usize>().ok().filter(|kn| (1..=m).contains(kn)),
        _ => bail!(
            "{what} with --x {}: the rows keep {} units; select one kn with --where keep_nodes=…",
            query.x,
            kns.join(", ")
        ),
    };
    let Some(kn) = kn else {
        bail!("{what}: the rows keep {} units, not a count from 1 to M = {m}", kns.join(", "))
    };
    ensure!(x_lo.is_finite(), "{what}: no pruned rows to draw beside");
    Ok(vec![(x_lo, kn), (x_hi, kn)])
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
