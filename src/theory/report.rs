//! Text tables for `prunelab theory theorem2|theorem3|theorem4|expected`: both sides of each
//! statement, whether it holds, and one line for every failure saying where and how.
use super::theorems::{Ideal, Theorem2Row, Theorem3Row, Theorem4Row, Verdict};
use std::fmt::Write;

/// A right-aligned table; the header and each row are cells separated by `|`.
pub fn table(head: &str, rows: &[String]) -> String {
    let cells: Vec<Vec<&str>> = std::iter::once(head)
        .chain(rows.iter().map(String::as_str))
        .map(|r| r.split('|').collect())
        .collect();
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|i| cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &cells {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{}{c}", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  "));
    }
    out
}

/// The line for a failed inequality `lhs op rhs`, if it failed.
fn failure(what: &str, verdict: Verdict, lhs: f64, rhs: f64, op: &str) -> Option<String> {
    match verdict {
        Verdict::Holds => None,
        Verdict::Equal => {
            Some(format!("{what} fails: both sides are {lhs:.6} (equal, not strictly {op})\n"))
        }
        Verdict::Fails => Some(format!("{what} fails: {lhs:.6} is not {op} {rhs:.6}\n")),
    }
}

fn title(what: &str, ideal: &Ideal) -> String {
    format!(
        "{what}, idealised student: M = {}, K = {} (Z = {}), v* = {}\n",
        ideal.m,
        ideal.k(),
        ideal.z,
        ideal.v_star
    )
}

pub fn theorem2(ideal: &Ideal, rows: &[Theorem2Row]) -> String {
    let head =
        "kn|E ε rand|ε DPP|(7) >|E ε̂ rand|ε̂ DPP|(8) >|ε imp best|ε imp worst|(9) best > ε̂ DPP";
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            let (w7, w8, w9) = (r.eq7.word(), r.eq8.word(), r.eq9.word());
            format!(
                "{}|{:.4}|{:.4}|{w7}|{:.4}|{:.4}|{w8}|{:.4}|{:.4}|{w9}",
                r.kn,
                r.random,
                r.dpp,
                r.random_reweighted,
                r.dpp_reweighted,
                r.importance_best,
                r.importance_worst
            )
        })
        .collect();
    let mut out = title("Theorem 2", ideal) + &table(head, &body);
    for r in rows {
        let sides = [
            (7, r.eq7, r.random, r.dpp),
            (8, r.eq8, r.random_reweighted, r.dpp_reweighted),
            (9, r.eq9, r.importance_best, r.dpp_reweighted),
        ];
        for (eq, v, lhs, rhs) in sides {
            out.extend(failure(&format!("({eq}) at kn = {}", r.kn), v, lhs, rhs, ">"));
        }
    }
    out
}

pub fn theorem3(ideal: &Ideal, rows: &[Theorem3Row]) -> String {
    let head = "budget|c|ε Thm 3|ε(E[Q,R]) = E ε (N→∞)|ε(E[f]), E[f] = c·w|Remark 4";
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{:.4}|{:.4}|{:.4}|{:.4}|{}",
                r.budget,
                r.c,
                r.closed_form,
                r.at_mean_order_params,
                r.expected_network,
                r.remark4.word()
            )
        })
        .collect();
    let mut out = title("Theorem 3 and Remark 4", ideal) + &table(head, &body);
    for r in rows.iter().filter(|r| r.remark4 != Verdict::Holds) {
        let _ = writeln!(
            out,
            "Remark 4 fails at c = {:.4}: the expected error {:.4} differs from the expected network's error {:.4}",
            r.c, r.closed_form, r.expected_network
        );
    }
    out
}

pub fn theorem4(ideal: &Ideal, rows: &[Theorem4Row]) -> String {
    let head = "budget|kn|c|ε DPP|ε rand edge|(11) ≥|c≤1/Z, Z≥4|ε̂ DPP|ε̂ rand edge|ε̂ DPP <";
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            let met = if r.assumptions_met { "yes" } else { "no" };
            format!(
                "{}|{:.3}|{:.4}|{:.4}|{:.4}|{}|{met}|{:.4}|{:.4}|{}",
                r.budget,
                r.kn,
                r.c,
                r.dpp,
                r.random_edge,
                r.eq11.word(),
                r.dpp_reweighted,
                r.random_edge_reweighted,
                r.reweighted.word()
            )
        })
        .collect();
    let mut out = title("Theorem 4 (assumes c ≤ 1/Z and Z ≥ 4)", ideal) + &table(head, &body);
    for r in rows {
        let outside = if r.assumptions_met { "" } else { ", outside the assumptions" };
        let what = format!("(11) at {} (kn = {:.3}, c = {:.4}{outside})", r.budget, r.kn, r.c);
        out.extend(failure(&what, r.eq11, r.dpp, r.random_edge, "≥"));
        let what = format!("the reweighted claim at {}", r.budget);
        out.extend(failure(&what, r.reweighted, r.random_edge_reweighted, r.dpp_reweighted, ">"));
    }
    out
}

/// The tables of `theory expected` from its JSON rows.
pub fn expected(rows: &[serde_json::Value], reweight: bool) -> String {
    let cell = |r: &serde_json::Value, key: &str| {
        r[key].as_f64().map_or("n/a".into(), |x| format!("{x:.4}"))
    };
    let body = |keys: &[&str]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                std::iter::once(format!("{}:{}", r["kn"], r["ke"]))
                    .chain(keys.iter().map(|k| cell(r, k)))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    let plain = [
        "random_node",
        "dpp_node",
        "importance_node",
        "random_edge",
        "random_edge_limit",
        "importance_edge",
    ];
    let head = "nodes:edges|random node|DPP node|importance node|random edge|(N→∞)|importance edge";
    let mut out = table(head, &body(&plain));
    if reweight {
        out += "reweighted (DIVNET for nodes, outgoing-weight refit for edges):\n";
        let keys = [
            "random_node_reweighted",
            "dpp_node_reweighted",
            "importance_node_reweighted",
            "random_edge_reweighted_limit",
            "importance_edge_reweighted",
        ];
        let head =
            "nodes:edges|random node|DIVNET|importance node|random edge (N→∞)|importance edge";
        out += &table(head, &body(&keys));
        out += &divnet_vs_edge(rows);
    }
    out += "one unit per teacher block (argmax_n |R_in|), exact probability:\n";
    out +=
        &table("nodes:edges|k-DPP|uniform", &body(&["one_per_block_dpp", "one_per_block_uniform"]));
    out
}

/// The appendix's claim, row by row: DIVNET (DPP node + reweighting) below reweighted random edge.
fn divnet_vs_edge(rows: &[serde_json::Value]) -> String {
    let verdicts: Vec<String> = rows
        .iter()
        .map(|r| {
            let verdict = match r["divnet_beats_reweighted_random_edge"].as_bool() {
                Some(true) => "holds",
                Some(false) => "FAILS",
                None => "n/a",
            };
            format!("{}:{} {verdict}", r["kn"], r["ke"])
        })
        .collect();
    format!("DIVNET < reweighted random edge (N→∞): {}\n", verdicts.join(", "))
}
