//! Budgets matched by parameter count (paper eq. 4; REFERENCE.md §4).
//!
//! Keeping n of H units of a layer W [H, D] whose outputs feed H₂ weights each keeps n·(D + H₂)
//! parameters; keeping e inputs per unit keeps H·e + H·H₂. Equal counts give
//! e = (n(D + H₂) − H·H₂)/H, rounded half up: for the teacher-student student (D = N = 500,
//! H = K = 6, H₂ = 1) nodes 1..5 match 83, 166, 250, 333, 417 edges per node.
use anyhow::{ensure, Result};

/// Edges per unit that keep as many parameters as `nodes` kept units.
pub fn edges_for_nodes(nodes: usize, inputs: usize, hidden: usize, fan_out: usize) -> usize {
    let kept = nodes * (inputs + fan_out);
    let e = (kept as f64 - (hidden * fan_out) as f64) / hidden as f64;
    ((e + 0.5).floor().max(1.0) as usize).min(inputs)
}

/// Units that keep as many parameters as `edges` inputs per unit (the inverse matching).
pub fn nodes_for_edges(edges: usize, inputs: usize, hidden: usize, fan_out: usize) -> usize {
    let kept = hidden * (edges + fan_out);
    let n = kept as f64 / (inputs + fan_out) as f64;
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
    fn refuses_budgets_outside_the_layer() {
        assert!(from_nodes(&[7], 500, 6, 1).unwrap_err().to_string().contains("outside 1..=6"));
        assert!(from_edges(&[0], 500, 6, 1).is_err());
        let b = from_nodes(&[3], 500, 6, 1).unwrap()[0];
        assert_eq!((b.nodes, b.edges, b.fraction), (3, 250, 0.5));
    }
}
