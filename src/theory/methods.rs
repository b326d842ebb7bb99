//! Every configured pruning method's exact expected error for one student, from `expected`: the
//! pruning half of a learning trajectory (at each checkpoint of a run, and along the ODE).
//!
//! A student is given either by its order parameters alone (the ODE's, N → ∞) or also by its
//! weights (a simulated one). Per method, at the budget's kn units or ke inputs per unit:
//!
//! * `random_node`, `dpp_node`, `importance_node`: exact sums over subsets ([`node_pruning`]),
//!   with DIVNET when reweighted; skipped for K above [`MAX_ENUMERATED_UNITS`], and DPP node where
//!   Q has rank below kn (the k-DPP does not exist).
//! * `random_edge`: from weights, the exact-k expectation to second order in 1/N
//!   ([`expected::random_edge`]); from order parameters, its N → ∞ limit ε(cQ_ii, c²Q_ik, cR).
//! * `importance_edge`: from weights only (it depends on the individual |w_ij|).
//! * `dpp_edge`: none (no closed form).
//!
//! Edge methods are recorded without reweighting only: the per-unit least-squares re-fit of the
//! kept incoming weights is a no-op for Gaussian inputs (the inputs are uncorrelated), so a
//! reweighted edge row would repeat the plain one.
use super::expected::{self, node_pruning, Network, Student, MAX_ENUMERATED_UNITS};
use super::order_params::OrderParams;
use crate::prune::budget::Budget;
use crate::prune::Method;
use anyhow::Result;

/// A student: order parameters only, or with its weights.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Limit(&'a Network),
    Weights(&'a Student),
}

impl Subject<'_> {
    fn net(&self) -> &Network {
        match self {
            Subject::Limit(net) => net,
            Subject::Weights(student) => &student.net,
        }
    }
}

/// One method's expected ε at one budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodError {
    pub method: Method,
    pub reweight: bool,
    pub budget: Budget,
    pub eps: f64,
}

/// The expected ε of every method × budget × reweight choice that has one (module docs), for a
/// student with N = `n` inputs, in the order method, budget, reweight.
pub fn method_errors(
    subject: Subject,
    n: usize,
    methods: &[Method],
    budgets: &[Budget],
    reweight: &[bool],
) -> Result<Vec<MethodError>> {
    let net = subject.net();
    let mut out = Vec::new();
    for &method in methods {
        for budget in budgets {
            for &rw in reweight {
                if let Some(eps) = method_error(subject, net, n, method, budget, rw)? {
                    out.push(MethodError { method, reweight: rw, budget: *budget, eps });
                }
            }
        }
    }
    Ok(out)
}

/// One method's expected ε, or None where the module docs say there is none.
fn method_error(
    subject: Subject,
    net: &Network,
    n: usize,
    method: Method,
    budget: &Budget,
    reweight: bool,
) -> Result<Option<f64>> {
    if method.is_node() {
        if net.op.k > MAX_ENUMERATED_UNITS {
            return Ok(None);
        }
        return Ok(node_pruning(net, budget.nodes, reweight)?.of(method, reweight));
    }
    if reweight {
        return Ok(None);
    }
    Ok(match (method, subject) {
        (Method::RandomEdge, Subject::Weights(s)) => Some(expected::random_edge(s, budget.edges)?),
        (Method::RandomEdge, Subject::Limit(net)) => {
            Some(expected::random_edge_limit(net, budget.edges as f64 / n as f64))
        }
        (Method::ImportanceEdge, Subject::Weights(s)) => {
            Some(expected::importance_edge(s, budget.edges, false)?)
        }
        _ => None,
    })
}

/// The order parameters of the student with every row rescaled to norm √N (Q_ii = 1), as the
/// teacher-student task prunes it (`prune.normalize_rows`).
pub fn normalized_rows(op: &OrderParams) -> OrderParams {
    let (k, m) = (op.k, op.m);
    let scale: Vec<f64> =
        (0..k).map(|i| if op.q(i, i) > 0.0 { 1.0 / op.q(i, i).sqrt() } else { 1.0 }).collect();
    OrderParams {
        q: (0..k * k).map(|x| op.q[x] * scale[x / k] * scale[x % k]).collect(),
        r: (0..k * m).map(|x| op.r[x] * scale[x / m]).collect(),
        ..op.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::two_layer::TwoLayer;
    use crate::seed;

    #[test]
    fn limits_follow_the_weights_and_normalising_order_parameters_matches_the_weights() {
        let n = 400;
        let teacher = TwoLayer::gaussian(n, 2, Some(2.0), &mut seed::rng(4, "teacher"));
        let student = TwoLayer::gaussian(n, 4, None, &mut seed::rng(4, "student"));
        let weights = Student::from_two_layer(&student.normalized_rows(), &teacher).unwrap();
        let raw = Student::from_two_layer(&student, &teacher).unwrap();
        let limit = Network { op: normalized_rows(&raw.net.op), ..raw.net.clone() };
        for (a, b) in limit
            .op
            .q
            .iter()
            .chain(&limit.op.r)
            .zip(weights.net.op.q.iter().chain(&weights.net.op.r))
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let budgets = [Budget { nodes: 2, edges: 200, fraction: 0.5 }];
        let methods = Method::ALL;
        let from_weights =
            method_errors(Subject::Weights(&weights), n, &methods, &budgets, &[false, true])
                .unwrap();
        let from_limit =
            method_errors(Subject::Limit(&limit), n, &methods, &budgets, &[false, true]).unwrap();
        let names = |rows: &[MethodError]| {
            rows.iter().map(|r| (r.method.name(), r.reweight)).collect::<Vec<_>>()
        };
        // Node methods twice (DIVNET), random edge once, importance edge from weights only.
        assert_eq!(from_weights.len(), 8, "{:?}", names(&from_weights));
        assert_eq!(from_limit.len(), 7, "{:?}", names(&from_limit));
        for (w, l) in from_weights.iter().zip(&from_limit) {
            assert_eq!((w.method, w.reweight), (l.method, l.reweight));
            // Node methods agree up to the f32 weights; random edge differs by O(1/N).
            let tol = if w.method.is_node() { 1e-5 } else { 0.05 * l.eps };
            assert!((w.eps - l.eps).abs() < tol, "{:?}: {} vs {}", w.method, w.eps, l.eps);
        }
    }
}
