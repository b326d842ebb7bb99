//! `prunelab theory expected`: the exact expected ε of every pruning method of a saved student,
//! DIVNET against reweighted random edge, and how likely a k-DPP and a uniform draw keep one unit
//! per teacher block.
use super::super::Status;
use crate::model::io::load_two_layer;
use crate::prune::budget::edges_for_nodes;
use crate::theory::blocks::{dpp_probability, teacher_blocks, uniform_probability};
use crate::theory::expected::{self, Student};
use crate::theory::{ge, report};
use anyhow::Result;
use std::path::Path;

/// The exact probabilities that a k-DPP (kernel L ∝ Q, as `dpp_node` samples) and a uniform draw
/// of kn units keep one unit per teacher block.
fn block_probabilities(s: &Student, kn: usize) -> Result<(Option<f64>, Option<f64>)> {
    let op = &s.net.op;
    let blocks = teacher_blocks(op);
    let dpp = dpp_probability(&op.q, &blocks, op.m, kn).ok();
    Ok((dpp, uniform_probability(&blocks, op.m, kn)))
}

pub fn run(folder: &Path, nodes: &[usize], reweight: bool, json: bool) -> Result<Status> {
    let student = load_two_layer(&folder.join("student.safetensors"))?;
    let teacher = load_two_layer(&folder.join("teacher.safetensors"))?;
    let s = Student::from_two_layer(&student, &teacher)?;
    let (k, n) = (student.hidden, student.input_dim);
    anyhow::ensure!(
        k <= expected::MAX_ENUMERATED_UNITS,
        "the student has K = {k} hidden units; exact node expectations enumerate all subsets and are limited to K ≤ {}",
        expected::MAX_ENUMERATED_UNITS
    );
    let nodes: Vec<usize> = if nodes.is_empty() { (1..k.max(2)).collect() } else { nodes.to_vec() };
    if let Some(bad) = nodes.iter().find(|&&x| !(1..=k).contains(&x)) {
        anyhow::bail!("--nodes: {bad} is outside 1..={k}");
    }
    let unpruned = ge::generalisation_error(&s.net.op, &s.net.v, &s.net.v_star);
    anyhow::ensure!(
        unpruned.is_finite(),
        "the order parameters overflow: the weights are too large"
    );
    let mut rows = vec![];
    for &kn in &nodes {
        let ke = edges_for_nodes(kn, n, k, 1);
        let c = ke as f64 / n as f64;
        let node = expected::node_pruning(&s.net, kn, reweight)?;
        let edge_rw = reweight.then(|| expected::random_edge_reweighted_limit(&s.net, c));
        let divnet_wins = node.dpp_reweighted.zip(edge_rw).map(|(d, e)| d < e);
        let (dpp_block, uniform_block) = block_probabilities(&s, kn)?;
        let imp_rw = if reweight { Some(expected::importance_edge(&s, ke, true)?) } else { None };
        rows.push(serde_json::json!({
            "kn": kn, "ke": ke, "c": c,
            "random_node": node.random, "dpp_node": node.dpp, "importance_node": node.importance,
            "random_edge": expected::random_edge(&s, ke)?,
            "random_edge_limit": expected::random_edge_limit(&s.net, c),
            "importance_edge": expected::importance_edge(&s, ke, false)?,
            "random_node_reweighted": node.random_reweighted, "dpp_node_reweighted": node.dpp_reweighted,
            "importance_node_reweighted": node.importance_reweighted,
            "random_edge_reweighted_limit": edge_rw,
            "importance_edge_reweighted": imp_rw,
            "divnet_beats_reweighted_random_edge": divnet_wins,
            "one_per_block_dpp": dpp_block, "one_per_block_uniform": uniform_block,
        }));
    }
    if json {
        let value = serde_json::json!({"K": k, "M": teacher.hidden, "N": n, "unpruned": unpruned, "rows": rows});
        println!("{value}");
    } else {
        println!(
            "exact expected ε, N = {n}, K = {k}, M = {}; unpruned ε = {unpruned:.4}",
            teacher.hidden
        );
        print!("{}", report::expected(&rows, reweight));
    }
    Ok(Status::Ok)
}
