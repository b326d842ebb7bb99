//! Budgets matched by parameter count (paper eq. 4).
//!
//! Keeping n of H units of a layer W [H, D] whose outputs feed H₂ weights each keeps n·(D + H₂)
//! parameters; keeping e inputs per unit keeps H·e + H·H₂. Equal counts give
//! e = (n(D + H₂) − H·H₂)/H, rounded half up: for the teacher-student student (D = N = 500,
//! H = K = 6, H₂ = 1) nodes 1..5 match 83, 166, 250, 333, 417 edges per node.
//!
//! Kept fractions p of the layer's incoming weights (the reference's real-data grid) give
//! e = ⌈p·D⌉ inputs per unit and n = ⌊H(⌊p·D⌋ + H₂)/(D + H₂)⌋ units.
//!
//! [`resolve`] is the one place a budget is turned into counts for a layer.
use anyhow::{ensure, Result};
use serde::Serialize;

/// How a layer is shaped for budgeting: D inputs per unit, H units, H₂ outgoing weights per unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    pub inputs: usize,
    pub hidden: usize,
    pub fan_out: usize,
}

/// The budget points of a sweep as written: kept units, kept inputs per unit, or kept fractions
/// of the layer's incoming weights; the other granularity gets the matched count.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSpec {
    Nodes(Vec<usize>),
    Edges(Vec<usize>),
    Fractions(Vec<f64>),
}

/// The budget points of `spec` for a layer of `shape`.
pub fn resolve(spec: &BudgetSpec, shape: LayerShape) -> Result<Vec<Budget>> {
    let LayerShape { inputs, hidden, fan_out } = shape;
    match spec {
        BudgetSpec::Nodes(nodes) => from_nodes(nodes, inputs, hidden, fan_out),
        BudgetSpec::Edges(edges) => from_edges(edges, inputs, hidden, fan_out),
        BudgetSpec::Fractions(fractions) => from_fractions(fractions, inputs, hidden, fan_out),
    }
}

/// Edges per unit that keep as many parameters as `nodes` kept units.
pub fn edges_for_nodes(nodes: usize, inputs: usize, hidden: usize, fan_out: usize) -> usize {
    let kept = nodes as f64 * (inputs as f64 + fan_out as f64);
    let e = (kept - hidden as f64 * fan_out as f64) / hidden as f64;
    ((e + 0.5).floor().max(1.0) as usize).min(inputs)
}

/// Units that keep as many parameters as `edges` inputs per unit (the inverse matching).
pub fn nodes_for_edges(edges: usize, inputs: usize, hidden: usize, fan_out: usize) -> usize {
    let kept = hidden as f64 * (edges as f64 + fan_out as f64);
    let n = kept / (inputs as f64 + fan_out as f64);
    ((n + 0.5).floor().max(1.0) as usize).min(hidden)
}

/// A budget point: how many units a node method keeps and how many inputs per unit an edge
/// method keeps, and the nominal fraction of the layer's parameters both stand for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub nodes: usize,
    pub edges: usize,
    pub fraction: f64,
}

/// Budget points from kept-node counts (fraction n/H).
pub fn from_nodes(
    nodes: &[usize],
    inputs: usize,
    hidden: usize,
    fan_out: usize,
) -> Result<Vec<Budget>> {
    nodes
        .iter()
        .map(|&n| {
            ensure!(
                n >= 1 && n <= hidden,
                "prune.budget.nodes: {n} is outside 1..={hidden} (the layer has {hidden} units)"
            );
            let edges = edges_for_nodes(n, inputs, hidden, fan_out);
            Ok(Budget { nodes: n, edges, fraction: n as f64 / hidden as f64 })
        })
        .collect()
}

/// Budget points from kept-edge counts per unit (fraction e/D).
pub fn from_edges(
    edges: &[usize],
    inputs: usize,
    hidden: usize,
    fan_out: usize,
) -> Result<Vec<Budget>> {
    edges
        .iter()
        .map(|&e| {
            ensure!(
                e >= 1 && e <= inputs,
                "prune.budget.edges: {e} is outside 1..={inputs} (each unit has {inputs} inputs)"
            );
            let nodes = nodes_for_edges(e, inputs, hidden, fan_out);
            Ok(Budget { nodes, edges: e, fraction: e as f64 / inputs as f64 })
        })
        .collect()
}

/// Budget points from kept fractions p of the layer's incoming weights.
pub fn from_fractions(
    fractions: &[f64],
    inputs: usize,
    hidden: usize,
    fan_out: usize,
) -> Result<Vec<Budget>> {
    fractions
        .iter()
        .map(|&p| {
            ensure!(
                p > 0.0 && p <= 1.0,
                "prune.budget.fractions: {p} is not a kept fraction in (0, 1]"
            );
            let edges = ((p * inputs as f64 - 1e-9).ceil() as usize).clamp(1, inputs);
            let floor = (p * inputs as f64 + 1e-9).floor() as usize;
            let nodes =
                (hidden as u128 * (floor + fan_out) as u128 / (inputs + fan_out) as u128) as usize;
            let nodes = nodes.clamp(1, hidden);
            Ok(Budget { nodes, edges, fraction: p })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_reference_grids() {
        let grid = |inputs, hidden| {
            (1..=5).map(|n| edges_for_nodes(n, inputs, hidden, 1)).collect::<Vec<_>>()
        };
        assert_eq!(grid(500, 6), [83, 166, 250, 333, 417]);
        assert_eq!(grid(100, 6), [16, 33, 50, 66, 83]);
        assert_eq!(grid(500, 20), [24, 49, 74, 99, 124]);
    }

    #[test]
    fn matching_keeps_the_parameter_counts_close() {
        for n in 1..=5 {
            let e = edges_for_nodes(n, 500, 6, 1);
            let (node_params, edge_params) = (n * 501, 6 * (e + 1));
            assert!((node_params as i64 - edge_params as i64).abs() <= 3, "n = {n}");
            assert_eq!(nodes_for_edges(e, 500, 6, 1), n);
        }
    }

    #[test]
    fn fraction_grids_match_the_reference() {
        let ps: Vec<f64> = (1..=9).map(|i| i as f64 / 10.0).collect();
        let mnist = from_fractions(&ps, 784, 500, 500).unwrap();
        assert_eq!(
            mnist.iter().map(|b| b.nodes).collect::<Vec<_>>(),
            [225, 255, 286, 316, 347, 377, 408, 438, 469]
        );
        assert_eq!(
            mnist.iter().map(|b| b.edges).collect::<Vec<_>>(),
            [79, 157, 236, 314, 392, 471, 549, 628, 706]
        );
        let cifar = from_fractions(&ps, 3072, 1000, 1000).unwrap();
        assert_eq!(
            cifar.iter().map(|b| b.nodes).collect::<Vec<_>>(),
            [320, 396, 471, 547, 622, 698, 773, 848, 924]
        );
        assert_eq!(
            cifar.iter().map(|b| b.edges).collect::<Vec<_>>(),
            [308, 615, 922, 1229, 1536, 1844, 2151, 2458, 2765]
        );
        assert!(from_fractions(&[0.0], 784, 500, 500).is_err());
        assert!(from_fractions(&[1.5], 784, 500, 500).is_err());
        let shape = LayerShape { inputs: 784, hidden: 500, fan_out: 500 };
        assert_eq!(resolve(&BudgetSpec::Fractions(ps), shape).unwrap(), mnist);
    }

    #[test]
    fn refuses_budgets_outside_the_layer() {
        assert!(from_nodes(&[7], 500, 6, 1).unwrap_err().to_string().contains("outside 1..=6"));
        assert!(from_edges(&[0], 500, 6, 1).is_err());
        let b = from_nodes(&[3], 500, 6, 1).unwrap()[0];
        assert_eq!((b.nodes, b.edges, b.fraction), (3, 250, 0.5));
    }
}
