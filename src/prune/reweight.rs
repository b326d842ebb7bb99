//! Reweighting after pruning, by least squares in f64 (REFERENCE.md §7.10): pseudo-inverses with a
//! relative cutoff of 1e-6·s_max, which equal the minimum-norm least-squares solutions.
//!
//! * Nodes (DIVNET, Mariet & Sra 2016 §2.2): with A the second-moment matrix of the units'
//!   activations, each pruned unit p is approximated by the kept ones, a_p ≈ Σ_s α_sp a_s with
//!   α = A_SS⁺ A_SP; its outgoing weights are folded into theirs, W2[:, S] += W2[:, P]·αᵀ, and
//!   the pruned units are removed.
//! * Edges: each unit's kept incoming weights are re-fitted to reproduce its full pre-activation,
//!   w_S ← w_S + C_SS⁺ C_SP w_P with C the inputs' second moments (a no-op when C = I).
use super::dpp::kernel::InputMoments;
use tch::{Kind, Tensor};

fn index(items: &[usize]) -> Tensor {
    Tensor::from_slice(&items.iter().map(|&i| i as i64).collect::<Vec<_>>())
}

fn block(gram: &Tensor, rows: &[usize], cols: &[usize]) -> Tensor {
    gram.index_select(0, &index(rows)).index_select(1, &index(cols))
}

/// α = G_SS⁺ G_SP ([|S|, |P|], f64) for a symmetric second-moment matrix `gram`.
pub fn regression_coefficients(gram: &Tensor, kept: &[usize], pruned: &[usize]) -> Tensor {
    if kept.is_empty() || pruned.is_empty() {
        return Tensor::zeros(
            [kept.len() as i64, pruned.len() as i64],
            (Kind::Double, tch::Device::Cpu),
        );
    }
    let g_ss = block(gram, kept, kept);
    let g_sp = block(gram, kept, pruned);
    g_ss.linalg_pinv_atol_rtol_float(None, Some(1e-6), true).matmul(&g_sp)
}

/// Folds the pruned units' outgoing weights into the kept units'. `out_weight` is the next layer
/// [H2, H] row-major (for the teacher-student student, v with H2 = 1); pruned columns become 0.
pub fn fold_into_kept(
    out_weight: &mut [f32],
    hidden: usize,
    kept: &[usize],
    pruned: &[usize],
    alpha: &Tensor,
) {
    let alpha = Vec::<f64>::try_from(alpha.contiguous().flatten(0, -1)).unwrap_or_default();
    let p = pruned.len();
    for row in out_weight.chunks_exact_mut(hidden) {
        for (si, &s) in kept.iter().enumerate() {
            let gain: f64 =
                pruned.iter().enumerate().map(|(pi, &q)| alpha[si * p + pi] * row[q] as f64).sum();
            row[s] += gain as f32;
        }
        for &q in pruned {
            row[q] = 0.0;
        }
    }
}

/// The re-fitted incoming weights of one unit: kept entries w_S + C_SS⁺ C_SP w_P, pruned ones 0.
pub fn refit_edges(moments: &InputMoments, row: &[f32], kept: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0f32; row.len()];
    for &j in kept {
        out[j] = row[j];
    }
    if let InputMoments::Gram(c) = moments {
        let mut is_kept = vec![false; row.len()];
        kept.iter().for_each(|&j| is_kept[j] = true);
        let pruned: Vec<usize> = (0..row.len()).filter(|&j| !is_kept[j]).collect();
        if !pruned.is_empty() && !kept.is_empty() {
            let w_p =
                Tensor::from_slice(&pruned.iter().map(|&j| row[j] as f64).collect::<Vec<_>>());
            let delta = regression_coefficients(c, kept, &pruned).mv(&w_p);
            let delta = Vec::<f64>::try_from(delta).unwrap_or_default();
            for (&j, d) in kept.iter().zip(delta) {
                out[j] += d as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_preserves_outputs_when_pruned_units_are_combinations_of_kept_ones() {
        // Activations of 3 units over 5 inputs; unit 2 = 2·unit 0 − unit 1.
        let a0 = [1.0f64, 0.5, -1.0, 2.0, 0.0];
        let a1 = [0.0f64, 1.0, 1.0, -1.0, 3.0];
        let a2: Vec<f64> = a0.iter().zip(&a1).map(|(x, y)| 2.0 * x - y).collect();
        let acts = Tensor::from_slice(&[a0.to_vec(), a1.to_vec(), a2].concat()).view([3, 5]);
        let gram = acts.matmul(&acts.tr());
        let alpha = regression_coefficients(&gram, &[0, 1], &[2]);
        let mut w2 = vec![0.3f32, -0.7, 1.1, 2.0, 0.1, -0.4]; // [2 outputs, 3 units]
        let before = Tensor::from_slice(&w2).view([2, 3]).to_kind(Kind::Double).matmul(&acts);
        fold_into_kept(&mut w2, 3, &[0, 1], &[2], &alpha);
        assert_eq!((w2[2], w2[5]), (0.0, 0.0));
        let after = Tensor::from_slice(&w2).view([2, 3]).to_kind(Kind::Double).matmul(&acts);
        assert!(before.allclose(&after, 1e-5, 1e-5, false));
    }

    #[test]
    fn edge_refit_reproduces_correlated_inputs() {
        // Input 1 always equals input 0, so weight on 1 can move to 0 without changing anything.
        let c = Tensor::from_slice(&[1.0f64, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]).view([3, 3]);
        let out = refit_edges(&InputMoments::Gram(c), &[0.5, 0.25, 2.0], &[0, 2]);
        assert!(
            (out[0] - 0.75).abs() < 1e-6 && out[1] == 0.0 && (out[2] - 2.0).abs() < 1e-6,
            "{out:?}"
        );
        let same = refit_edges(&InputMoments::Identity(3), &[0.5, 0.25, 2.0], &[0, 2]);
        assert_eq!(same, [0.5, 0.0, 2.0]);
    }
}
