//! Closed-form generalisation errors of erf networks under Gaussian inputs.
//!
//! * `generalisation_error`: ε = ½ E[(ŷ − y*)²] from the order parameters (Saad & Solla 1995;
//!   nn2pp's `eg_analytical`), exact for any fixed weights, pruned or not.
//! * `theorem1_dpp_node`, `theorem1_dpp_node_reweighted`: paper eq. 5 and 6, the error of an idealised
//!   specialised student (Z = K/M copies per teacher unit) after DPP node pruning to kn ≤ M units.
//! * `random_edge`: the closed form for random edge pruning at kept fraction c (Theorem 3; it is
//!   ε at the mean order parameters, the N → ∞ limit of the expected error).
//! * `node_groups`: ε for an idealised student that keeps a_n of the Z units of teacher unit n.
use super::order_params::OrderParams;
use std::f64::consts::PI;

/// ε from Q, R, T and the second layers `v` (student, length K) and `v_star` (teacher, length M).
/// With label noise σ the expected empirical test loss ½·MSE is ε + σ²/2.
#[allow(clippy::needless_range_loop)] // the indices mirror the formula
pub fn generalisation_error(op: &OrderParams, v: &[f64], v_star: &[f64]) -> f64 {
    assert_eq!(v.len(), op.k, "v has {} entries for K = {}", v.len(), op.k);
    assert_eq!(v_star.len(), op.m, "v* has {} entries for M = {}", v_star.len(), op.m);
    let asin =
        |c: f64, a: f64, b: f64| (c / ((1.0 + a) * (1.0 + b)).sqrt()).clamp(-1.0, 1.0).asin();
    let mut student = 0.0;
    for i in 0..op.k {
        for k in 0..op.k {
            student += v[i] * v[k] * asin(op.q(i, k), op.q(i, i), op.q(k, k));
        }
    }
    let mut teacher = 0.0;
    for n in 0..op.m {
        for m in 0..op.m {
            teacher += v_star[n] * v_star[m] * asin(op.t(n, m), op.t(n, n), op.t(m, m));
        }
    }
    let mut cross = 0.0;
    for i in 0..op.k {
        for n in 0..op.m {
            cross += v[i] * v_star[n] * asin(op.r(i, n), op.q(i, i), op.t(n, n));
        }
    }
    (student + teacher - 2.0 * cross) / PI
}

/// Paper eq. 5: ε_DPP = v*²[kn(1 − 1/Z)²/6 + (M − kn)/6] for kn ≤ M kept units.
pub fn theorem1_dpp_node(m: usize, z: usize, v_star: f64, kn: usize) -> f64 {
    let (m, z, kn) = (m as f64, z as f64, kn as f64);
    v_star * v_star * (kn * (1.0 - 1.0 / z).powi(2) / 6.0 + (m - kn) / 6.0)
}

/// Paper eq. 6: with DIVNET reweighting, ε = (M − kn)·v*²/6.
pub fn theorem1_dpp_node_reweighted(m: usize, v_star: f64, kn: usize) -> f64 {
    (m as f64 - kn as f64) * v_star * v_star / 6.0
}

/// Idealised specialised student keeping `kept[n]` of the Z units of teacher unit n:
/// ε = (v*²/6)·Σ_n (1 − a_n/Z)².
pub fn node_groups(kept: &[usize], z: usize, v_star: f64) -> f64 {
    kept.iter().map(|&a| (1.0 - a as f64 / z as f64).powi(2)).sum::<f64>() * v_star * v_star / 6.0
}

/// Random edge pruning of an idealised specialised student at kept fraction c:
/// ε(c) = (M v*²/π)[asin(c/(1+c))/Z + (1 − 1/Z)·asin(c²/(1+c)) + π/6 − 2·asin(c/√(2+2c))].
pub fn random_edge(m: usize, z: usize, v_star: f64, c: f64) -> f64 {
    let (m, z) = (m as f64, z as f64);
    m * v_star * v_star / PI
        * ((c / (1.0 + c)).asin() / z + (1.0 - 1.0 / z) * (c * c / (1.0 + c)).asin() + PI / 6.0
            - 2.0 * (c / (2.0 + 2.0 * c).sqrt()).asin())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idealised student of the theory scripts: Z copies of each teacher unit, v = v*/Z.
    fn ideal(m: usize, z: usize) -> OrderParams {
        let k = m * z;
        let mut q = vec![0.0; k * k];
        let mut r = vec![0.0; k * m];
        for i in 0..k {
            for j in 0..k {
                q[i * k + j] = if i / z == j / z { 1.0 } else { 0.0 };
            }
            r[i * m + i / z] = 1.0;
        }
        let t = (0..m * m).map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 }).collect();
        OrderParams { k, m, q, r, t }
    }

    #[test]
    fn specialised_student_has_zero_error() {
        let op = ideal(2, 3);
        let e = generalisation_error(&op, &[4.0 / 3.0; 6], &[4.0; 2]);
        assert!(e.abs() < 1e-12, "{e}");
    }

    #[test]
    fn empty_student_has_the_teachers_output_variance() {
        // v = 0: ε = (1/π) Σ v*² asin(1/2) = M v*²/6.
        let op = ideal(2, 3);
        let e = generalisation_error(&op, &[0.0; 6], &[4.0; 2]);
        assert!((e - 2.0 * 16.0 / 6.0).abs() < 1e-12, "{e}");
    }

    #[test]
    fn reference_numbers_for_the_idealised_student() {
        // The authors' closed form: balanced node pruning of K=6, M=2, v*=4 gives 3.8519 … 0.2963.
        let balanced = [[1, 0], [1, 1], [2, 1], [2, 2], [3, 2]];
        let expected = [3.8519, 2.3704, 1.4815, 0.5926, 0.2963];
        for (kept, want) in balanced.iter().zip(expected) {
            assert!((node_groups(kept, 3, 4.0) - want).abs() < 1e-4, "{kept:?}");
        }
        // Random edge at c = 83/500 … 417/500: 3.760, 2.578, 1.659, 0.951, 0.399.
        let expected = [3.760, 2.578, 1.659, 0.951, 0.399];
        for (e, want) in [83.0, 166.0, 250.0, 333.0, 417.0].iter().zip(expected) {
            assert!((random_edge(2, 3, 4.0, e / 500.0) - want).abs() < 1e-3, "c = {e}/500");
        }
        // Theorem 1 at kn = M agrees with keeping one unit per teacher unit.
        assert!((theorem1_dpp_node(2, 3, 4.0, 2) - node_groups(&[1, 1], 3, 4.0)).abs() < 1e-12);
        assert!((theorem1_dpp_node_reweighted(2, 4.0, 1) - 16.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn random_edge_is_exact_at_the_ends() {
        assert!(random_edge(2, 3, 4.0, 1.0).abs() < 1e-12);
        assert!((random_edge(2, 3, 4.0, 0.0) - 2.0 * 16.0 / 6.0).abs() < 1e-12);
    }
}
