//! Exact expected generalisation errors of pruning methods, computed from a student's weights or
//! order parameters rather than by drawing masks. Pure f64. ε(Q, R, T, v, v*) is `ge`'s closed
//! form; write A_ik = asin(Q_ik/√((1+Q_ii)(1+Q_kk))), b_i = Σ_n v*_n asin(R_in/√((1+Q_ii)(1+T_nn)))
//! and τ = Σ_nm v*_n v*_m asin(T_nm/√((1+T_nn)(1+T_mm))), so a student that keeps the units S
//! with second-layer weights u has ε(S, u) = (1/π)[uᵀ A_SS u − 2 u·b_S + τ].
//!
//! * Node methods ([`node_pruning`]): exact sums over all C(K, kn) subsets S (K ≤
//!   [`MAX_ENUMERATED_UNITS`]): random node E ε = Σ_S ε(S)/C(K, kn); DPP node (k-DPP, linear
//!   kernel L = W Wᵀ ∝ Q) E ε = Σ_S det(Q_SS) ε(S) / Σ_S det(Q_SS) (the normaliser is e_kn of the
//!   eigenvalues of Q); importance node keeps the kn largest |v_k| (ties to the lower index).
//!   DIVNET (Mariet & Sra 2016 §2.2) per subset: the activations' second moments are
//!   E[g(λ_i)g(λ_k)] = (2/π)A_ik; the removed units P are regressed on the kept ones,
//!   α = A_SS⁺ A_SP (the 2/π cancels), and folded into v: u = v_S + α v_P.
//! * Random edge ([`random_edge`]): each unit keeps exactly ke of its N inputs, uniformly and
//!   independently of the other units; c = ke/N. For such a mask E[m_j] = c and, for j ≠ l,
//!   E[m_j m_l] = c(ke−1)/(N−1) =: p. The masked order parameters have the exact means
//!   E Q̃_ii = c Q_ii, E Q̃_ik = c² Q_ik (i ≠ k), E R̃_in = c R_in, and exact covariances from
//!   Cov(Σ u_j a_j, Σ u_j b_j) = (μ − μ²)Σ a_j b_j + (π₂ − μ²)(Σa Σb − Σ a_j b_j) for a mask u with
//!   E u_j = μ, E u_j u_l = π₂: (μ, π₂) = (c, p) for one unit's mask, (c², p²) for the product of
//!   two units' masks, and Cov(Q̃_ii, Q̃_ik) = c·Cov_(c,p)(w_i², w_i w_k)/N². ε at the means is the
//!   N → ∞ limit (the closed form of Theorem 3); E ε adds the second-order (delta-method) term
//!   ½ Σ ∂²ε·Cov per asin term, so it is exact up to O(N^{-3/2}) (third cumulants).
//! * [`expected_network`]: ε of the literal expected network E[f], weights c·w (Q → c²Q, R → cR);
//!   Remark 4 says it equals E ε as N → ∞; it does not (Q̃_ii → cQ_ii, not c²Q_ii).
//! * Reweighted edge pruning. Per-unit least squares of the kept inputs on the removed ones is a
//!   no-op under C = I (the inputs are uncorrelated), so the paper's reweighted random edge is
//!   read as Mariet & Sra's reweighting of the outgoing weights applied to the edge-pruned layer:
//!   v' = argmin E[(v'ᵀ g(λ̃) − vᵀ g(λ))²] = G̃⁺ C v with G̃_kl = asin(Q̃_kl/√((1+Q̃_kk)(1+Q̃_ll)))
//!   and C_ki = asin(X_ki/√((1+Q̃_kk)(1+Q_ii))), X_ki = (1/N)Σ_j m_kj w_kj w_ij (E X_ki = c Q_ki).
//!   For node masks this is exactly DIVNET. Random edge + reweighting is evaluated at the mean
//!   order parameters (its N → ∞ limit); importance edge (deterministic) exactly.
use super::ge::generalisation_error;
use super::linalg::{det, mat_vec, pinv_sym};
use super::order_params::OrderParams;
use crate::model::two_layer::TwoLayer;
use crate::prune::select::top_k;
use crate::prune::Method;
use anyhow::{ensure, Result};
use serde::Serialize;
use std::f64::consts::PI;

/// The largest K whose node subsets are enumerated (C(20, 10) = 184 756 subsets).
pub const MAX_ENUMERATED_UNITS: usize = 20;
/// The pruner's pseudo-inverse cutoff, relative to the largest eigenvalue.
const PINV_RTOL: f64 = 1e-6;

/// What ε depends on: order parameters and both second layers.
#[derive(Clone, Debug)]
pub struct Network {
    pub op: OrderParams,
    pub v: Vec<f64>,
    pub v_star: Vec<f64>,
}

/// A student with its weights (w [K, N], w* [M, N], row-major), needed by edge methods.
#[derive(Clone, Debug)]
pub struct Student {
    pub net: Network,
    pub n: usize,
    pub w: Vec<f64>,
    pub w_star: Vec<f64>,
}

impl Student {
    pub fn new(
        n: usize,
        w: Vec<f64>,
        w_star: Vec<f64>,
        v: Vec<f64>,
        v_star: Vec<f64>,
    ) -> Result<Self> {
        let (k, m) = (v.len(), v_star.len());
        ensure!(n > 0 && k > 0 && m > 0, "empty network: N = {n}, K = {k}, M = {m}");
        ensure!(
            w.len() == k * n && w_star.len() == m * n,
            "weights do not match N = {n}, K = {k}, M = {m}"
        );
        let op = OrderParams {
            k,
            m,
            q: overlaps(&w, &w, n),
            r: overlaps(&w, &w_star, n),
            t: overlaps(&w_star, &w_star, n),
        };
        Ok(Self { net: Network { op, v, v_star }, n, w, w_star })
    }

    pub fn from_two_layer(student: &TwoLayer, teacher: &TwoLayer) -> Result<Self> {
        ensure!(
            student.input_dim == teacher.input_dim,
            "the student has {} inputs, the teacher {}",
            student.input_dim,
            teacher.input_dim
        );
        let f = |x: &[f32]| x.iter().map(|&x| x as f64).collect::<Vec<_>>();
        Self::new(student.input_dim, f(&student.w), f(&teacher.w), f(&student.v), f(&teacher.v))
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.w[i * self.n..(i + 1) * self.n]
    }

    fn teacher_row(&self, n: usize) -> &[f64] {
        &self.w_star[n * self.n..(n + 1) * self.n]
    }
}

/// (1/N)·a bᵀ for row-major a [·, N], b [·, N].
fn overlaps(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    a.chunks(n)
        .flat_map(|x| {
            b.chunks(n).map(move |y| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / n as f64)
        })
        .collect()
}

fn asin_ratio(x: f64, a: f64, b: f64) -> f64 {
    (x / ((1.0 + a) * (1.0 + b)).sqrt()).clamp(-1.0, 1.0).asin()
}

/// The asin tables A, b and τ of one network.
struct Terms {
    k: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    teacher: f64,
}

impl Terms {
    fn new(net: &Network) -> Self {
        let op = &net.op;
        let (k, m) = (op.k, op.m);
        let a = (0..k * k)
            .map(|x| asin_ratio(op.q(x / k, x % k), op.q(x / k, x / k), op.q(x % k, x % k)))
            .collect();
        let b = (0..k)
            .map(|i| {
                (0..m).map(|n| net.v_star[n] * asin_ratio(op.r(i, n), op.q(i, i), op.t(n, n))).sum()
            })
            .collect();
        let teacher = (0..m * m)
            .map(|x| {
                net.v_star[x / m]
                    * net.v_star[x % m]
                    * asin_ratio(op.t(x / m, x % m), op.t(x / m, x / m), op.t(x % m, x % m))
            })
            .sum();
        Self { k, a, b, teacher }
    }

    /// ε(S, u): the units `kept` with second-layer weights `u`.
    fn eps(&self, kept: &[usize], u: &[f64]) -> f64 {
        let mut sum = self.teacher;
        for (s, &i) in kept.iter().enumerate() {
            sum -= 2.0 * u[s] * self.b[i];
            for (t, &j) in kept.iter().enumerate() {
                sum += u[s] * u[t] * self.a[i * self.k + j];
            }
        }
        sum / PI
    }

    /// DIVNET's weights of the kept units: u = v_S + A_SS⁺ A_SP v_P.
    fn divnet(&self, kept: &[usize], v: &[f64]) -> Vec<f64> {
        let removed: Vec<usize> = (0..self.k).filter(|i| !kept.contains(i)).collect();
        let a_ss: Vec<f64> =
            kept.iter().flat_map(|&i| kept.iter().map(move |&j| self.a[i * self.k + j])).collect();
        let y: Vec<f64> = kept
            .iter()
            .map(|&i| removed.iter().map(|&p| self.a[i * self.k + p] * v[p]).sum())
            .collect();
        let shift = mat_vec(&pinv_sym(&a_ss, kept.len(), PINV_RTOL), &y);
        kept.iter().zip(shift).map(|(&i, d)| v[i] + d).collect()
    }
}

/// Expected ε of the node methods at kn kept units; `*_reweighted` with DIVNET (when asked).
/// `dpp` is `None` when Q has rank below kn (the k-DPP does not exist).
#[derive(Clone, Debug, Serialize)]
pub struct NodeExpectation {
    pub kn: usize,
    pub random: f64,
    pub dpp: Option<f64>,
    pub importance: f64,
    pub random_reweighted: Option<f64>,
    pub dpp_reweighted: Option<f64>,
    pub importance_reweighted: Option<f64>,
}

impl NodeExpectation {
    /// The expectation for one node method, with or without DIVNET; `None` for an edge method or
    /// where there is none (no k-DPP of that size, DIVNET not computed).
    pub fn of(&self, method: Method, reweight: bool) -> Option<f64> {
        match (method, reweight) {
            (Method::RandomNode, false) => Some(self.random),
            (Method::RandomNode, true) => self.random_reweighted,
            (Method::DppNode, false) => self.dpp,
            (Method::DppNode, true) => self.dpp_reweighted,
            (Method::ImportanceNode, false) => Some(self.importance),
            (Method::ImportanceNode, true) => self.importance_reweighted,
            _ => None,
        }
    }
}

/// Exact expectations of random, DPP and importance node pruning to `kn` units by enumeration,
/// with the k-DPP kernel L ∝ Q and importance ranking |v|.
pub fn node_pruning(net: &Network, kn: usize, reweight: bool) -> Result<NodeExpectation> {
    let scores: Vec<f64> = net.v.iter().map(|x| x.abs()).collect();
    node_pruning_with(net, kn, reweight, &net.op.q, &scores)
}

/// [`node_pruning`] with the k-DPP's kernel `kernel` [K×K, row-major] (whatever kernel the sampler
/// used: P(S) ∝ det(L_SS)) and importance keeping the kn largest `scores`.
pub fn node_pruning_with(
    net: &Network,
    kn: usize,
    reweight: bool,
    kernel: &[f64],
    scores: &[f64],
) -> Result<NodeExpectation> {
    let k = net.op.k;
    ensure!(
        k <= MAX_ENUMERATED_UNITS,
        "exact node expectations enumerate all C(K, kn) subsets of units; K = {k} is above the limit of {MAX_ENUMERATED_UNITS}"
    );
    ensure!((1..=k).contains(&kn), "kn = {kn} kept units is outside 1..={k}");
    ensure!(
        kernel.len() == k * k && scores.len() == k,
        "a node kernel [{k}×{k}] and {k} importance scores are needed"
    );
    let terms = Terms::new(net);
    let plain = |s: &[usize]| terms.eps(s, &s.iter().map(|&i| net.v[i]).collect::<Vec<_>>());
    let divnet = |s: &[usize]| terms.eps(s, &terms.divnet(s, &net.v));
    // Sums: [ε, ε̂, det·ε, det·ε̂, det, Π diag], and the subset count.
    let mut sums = [0.0; 6];
    let mut count = 0.0;
    for_each_subset(k, kn, |s| {
        let (e, e_rw) = (plain(s), if reweight { divnet(s) } else { 0.0 });
        let (d, diag) = subset_det(kernel, k, s);
        for (sum, x) in sums.iter_mut().zip([e, e_rw, d * e, d * e_rw, d, diag]) {
            *sum += x;
        }
        count += 1.0;
    });
    // Hadamard: det L_SS ≤ Π L_ii, so this ratio measures the kernel's rank deficiency.
    let dpp_exists = sums[4] > 1e-12 * sums[5];
    let importance = top_k(scores, kn);
    Ok(NodeExpectation {
        kn,
        random: sums[0] / count,
        dpp: dpp_exists.then(|| sums[2] / sums[4]),
        importance: plain(&importance),
        random_reweighted: reweight.then(|| sums[1] / count),
        dpp_reweighted: (reweight && dpp_exists).then(|| sums[3] / sums[4]),
        importance_reweighted: reweight.then(|| divnet(&importance)),
    })
}

/// det(L_SS) (clamped at 0) and Π_{i∈S} L_ii for a K×K `kernel`.
pub(crate) fn subset_det(kernel: &[f64], k: usize, s: &[usize]) -> (f64, f64) {
    let l_ss: Vec<f64> =
        s.iter().flat_map(|&i| s.iter().map(move |&j| kernel[i * k + j])).collect();
    let diag = s.iter().map(|&i| kernel[i * k + i]).product();
    (det(&l_ss, s.len()).max(0.0), diag)
}

/// Calls `f` on every kn-subset of 0..k, in lexicographic order.
pub(crate) fn for_each_subset(k: usize, kn: usize, mut f: impl FnMut(&[usize])) {
    let mut s: Vec<usize> = (0..kn).collect();
    loop {
        f(&s);
        if !next_combination(&mut s, k) {
            break;
        }
    }
}

/// The next kn-subset of 0..n in lexicographic order; false after the last.
fn next_combination(s: &mut [usize], n: usize) -> bool {
    let kn = s.len();
    for i in (0..kn).rev() {
        if s[i] < n - kn + i {
            s[i] += 1;
            for j in i + 1..kn {
                s[j] = s[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// The means of the order parameters after random edge pruning at kept fraction c.
fn edge_mean_params(op: &OrderParams, c: f64) -> OrderParams {
    let k = op.k;
    let q = (0..k * k).map(|x| op.q[x] * if x / k == x % k { c } else { c * c }).collect();
    OrderParams { q, r: op.r.iter().map(|r| c * r).collect(), ..op.clone() }
}

/// ε at the mean order parameters of random edge pruning at kept fraction c: E ε as N → ∞
/// (Theorem 3's closed form for an idealised student).
pub fn random_edge_limit(net: &Network, c: f64) -> f64 {
    generalisation_error(&edge_mean_params(&net.op, c), &net.v, &net.v_star)
}

/// ε of the expected network E[f] = (c·w, v) of random edge pruning (Remark 4's quantity).
pub fn expected_network(net: &Network, c: f64) -> f64 {
    let op = &net.op;
    let scaled = OrderParams {
        q: op.q.iter().map(|q| c * c * q).collect(),
        r: op.r.iter().map(|r| c * r).collect(),
        ..op.clone()
    };
    generalisation_error(&scaled, &net.v, &net.v_star)
}

/// First and pairwise moments of a 0/1 mask: E u_j = mean, E u_j u_l = pair (j ≠ l).
#[derive(Clone, Copy)]
struct MaskMoments {
    mean: f64,
    pair: f64,
}

impl MaskMoments {
    /// Cov(Σ u_j a_j, Σ u_j b_j).
    fn cov(self, a: &[f64], b: &[f64]) -> f64 {
        let (sa, sb): (f64, f64) = (a.iter().sum(), b.iter().sum());
        let sab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let mu2 = self.mean * self.mean;
        (self.mean - mu2) * sab + (self.pair - mu2) * (sa * sb - sab)
    }
}

/// E ε of random edge pruning keeping exactly `ke` inputs per unit, to second order in the
/// fluctuations of the order parameters (see the module docs).
pub fn random_edge(student: &Student, ke: usize) -> Result<f64> {
    let n = student.n;
    ensure!((1..=n).contains(&ke), "ke = {ke} kept inputs is outside 1..={n}");
    let c = ke as f64 / n as f64;
    let p = if n > 1 { c * (ke as f64 - 1.0) / (n as f64 - 1.0) } else { c };
    Ok(random_edge_limit(&student.net, c)
        + second_order(student, c, MaskMoments { mean: c, pair: p }))
}

/// E ε of random edge pruning keeping each input independently with probability c = ke/N
/// (`random: bernoulli`): the same expansion with E m_j m_l = c².
pub fn random_edge_bernoulli(student: &Student, ke: usize) -> Result<f64> {
    let n = student.n;
    ensure!((1..=n).contains(&ke), "ke = {ke} kept inputs is outside 1..={n}");
    let c = ke as f64 / n as f64;
    Ok(random_edge_limit(&student.net, c)
        + second_order(student, c, MaskMoments { mean: c, pair: c * c }))
}

/// ½ Σ_terms Σ_ab ∂²term/∂θ_a∂θ_b · Cov(θ_a, θ_b) over the asin terms of ε.
fn second_order(s: &Student, c: f64, one: MaskMoments) -> f64 {
    let (op, k, nn) = (&s.net.op, s.net.op.k, (s.n * s.n) as f64);
    let two = MaskMoments { mean: c * c, pair: one.pair * one.pair };
    let sq = |i: usize| s.row(i).iter().map(|x| x * x).collect::<Vec<f64>>();
    let prod = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).collect::<Vec<f64>>();
    let mut total = 0.0;
    for i in 0..k {
        let (wi2, a) = (sq(i), c * op.q(i, i));
        let var_a = one.cov(&wi2, &wi2) / nn;
        // Diagonal term v_i² asin(Q̃_ii/(1+Q̃_ii)).
        let f = |x: &[f64]| asin_ratio(x[0], x[0], x[0]);
        total += s.net.v[i].powi(2) * half_hessian_dot(f, &[a], &[var_a]);
        for j in (0..k).filter(|&j| j != i) {
            let (wj2, b, wij) = (sq(j), c * op.q(j, j), prod(s.row(i), s.row(j)));
            let x = c * c * op.q(i, j);
            let (cxa, cxb) = (c * one.cov(&wi2, &wij) / nn, c * one.cov(&wj2, &wij) / nn);
            let var_b = one.cov(&wj2, &wj2) / nn;
            let cov = [two.cov(&wij, &wij) / nn, cxa, cxb, cxa, var_a, 0.0, cxb, 0.0, var_b];
            let f = |x: &[f64]| asin_ratio(x[0], x[1], x[2]);
            total += s.net.v[i] * s.net.v[j] * half_hessian_dot(f, &[x, a, b], &cov);
        }
        for m in 0..op.m {
            let win = prod(s.row(i), s.teacher_row(m));
            let cov = [one.cov(&win, &win) / nn, one.cov(&win, &wi2) / nn];
            let cov = [cov[0], cov[1], cov[1], var_a];
            let t = op.t(m, m);
            let f = |x: &[f64]| asin_ratio(x[0], x[1], t);
            total -= 2.0
                * s.net.v[i]
                * s.net.v_star[m]
                * half_hessian_dot(f, &[c * op.r(i, m), a], &cov);
        }
    }
    total / PI
}

/// ½ Σ_ab H_ab cov_ab, with the Hessian H of `f` at `x` by central differences.
fn half_hessian_dot(f: impl Fn(&[f64]) -> f64, x: &[f64], cov: &[f64]) -> f64 {
    let d = x.len();
    let h: Vec<f64> = x.iter().map(|v| 1e-4 * v.abs().max(1e-3)).collect();
    let at = |da: usize, sa: f64, db: usize, sb: f64| {
        let mut y = x.to_vec();
        y[da] += sa * h[da];
        y[db] += sb * h[db];
        f(&y)
    };
    let mut sum = 0.0;
    for a in 0..d {
        for b in 0..d {
            if cov[a * d + b] == 0.0 {
                continue;
            }
            let hess = if a == b {
                (at(a, 1.0, a, 0.0) - 2.0 * f(x) + at(a, -1.0, a, 0.0)) / (h[a] * h[a])
            } else {
                (at(a, 1.0, b, 1.0) - at(a, 1.0, b, -1.0) - at(a, -1.0, b, 1.0)
                    + at(a, -1.0, b, -1.0))
                    / (4.0 * h[a] * h[b])
            };
            sum += hess * cov[a * d + b];
        }
    }
    0.5 * sum
}

/// v' = G̃⁺ C v: outgoing weights refitted to the unpruned layer's output (module docs).
/// `q` is the pruned Q̃ [K×K], `cross` X [K×K] (pruned unit k against original unit i).
fn refit_outgoing(q: &[f64], cross: &[f64], orig: &OrderParams, v: &[f64]) -> Vec<f64> {
    let k = v.len();
    let g: Vec<f64> =
        (0..k * k).map(|x| asin_ratio(q[x], q[(x / k) * (k + 1)], q[(x % k) * (k + 1)])).collect();
    let cm: Vec<f64> = (0..k * k)
        .map(|x| asin_ratio(cross[x], q[(x / k) * (k + 1)], orig.q(x % k, x % k)))
        .collect();
    mat_vec(&pinv_sym(&g, k, PINV_RTOL), &mat_vec(&cm, v))
}

/// Random edge pruning at kept fraction c followed by the outgoing-weight refit, at the mean
/// order parameters (the N → ∞ limit of its expectation).
pub fn random_edge_reweighted_limit(net: &Network, c: f64) -> f64 {
    let mean = edge_mean_params(&net.op, c);
    let cross: Vec<f64> = net.op.q.iter().map(|q| c * q).collect();
    let v = refit_outgoing(&mean.q, &cross, &net.op, &net.v);
    generalisation_error(&mean, &v, &net.v_star)
}

/// Importance edge pruning (each unit keeps its ke largest |w_ij|, ties to the lower index),
/// exactly; with `refit`, followed by the outgoing-weight refit.
pub fn importance_edge(student: &Student, ke: usize, refit: bool) -> Result<f64> {
    let (n, k) = (student.n, student.net.op.k);
    ensure!((1..=n).contains(&ke), "ke = {ke} kept inputs is outside 1..={n}");
    let mut masked = vec![0.0; k * n];
    for i in 0..k {
        let row = student.row(i);
        for j in top_k(&row.iter().map(|x| x.abs()).collect::<Vec<_>>(), ke) {
            masked[i * n + j] = row[j];
        }
    }
    let pruned = Student::new(
        n,
        masked,
        student.w_star.clone(),
        student.net.v.clone(),
        student.net.v_star.clone(),
    )?;
    let op = &pruned.net.op;
    let v = if refit {
        let cross = overlaps(&pruned.w, &student.w, n);
        refit_outgoing(&op.q, &cross, &student.net.op, &student.net.v)
    } else {
        student.net.v.clone()
    };
    Ok(generalisation_error(op, &v, &student.net.v_star))
}

#[cfg(test)]
mod tests;
