//! Reweighting after pruning, by least squares in f64: pseudo-inverses with a
//! relative cutoff of 1e-6·s_max, which equal the minimum-norm least-squares solutions.
//!
//! * Nodes (DIVNET, Mariet & Sra 2016 §2.2): with A the second-moment matrix of the units'
//!   activations, each pruned unit p is approximated by the kept ones, a_p ≈ Σ_s α_sp a_s with
//!   α = A_SS⁺ A_SP ([`regression_coefficients`]); `layer` folds its outgoing weights into theirs.
//! * Edges: each unit's kept incoming weights are re-fitted to reproduce its full pre-activation,
//!   w_S ← w_S + C_SS⁻¹ C_SP w_P with C the inputs' second moments ([`refit_rows`]; a no-op
//!   when C = I, which `layer` skips).
use anyhow::{ensure, Context, Result};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

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

/// Per unit, the kept incoming weights re-fitted to the full pre-activation over the calibration
/// inputs: w_S ← w_S + (G_SS + ρI)⁻¹ G_SP w_P, ρ = 1e-6·max diag G_SS (a ridge that keeps
/// rank-deficient inputs, such as constant background pixels, solvable; it stands for the
/// minimum-norm least squares). `weight` is W [H, D] in f64 on the CPU, `gram` G = XᵀX [D, D],
/// `rows[h]` the kept inputs of unit h. Units with the same number of kept inputs are solved in
/// batches; the result is f32 [H, D] with zeros at the pruned inputs.
pub fn refit_rows(weight: &Tensor, gram: &Tensor, rows: &[Vec<usize>]) -> Result<Tensor> {
    let (hidden, inputs) = (weight.size()[0], weight.size()[1]);
    let mut out = Tensor::zeros([hidden, inputs], (Kind::Double, Device::Cpu));
    let mut by_size: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (h, row) in rows.iter().enumerate() {
        by_size.entry(row.len()).or_default().push(h);
    }
    for (k, units) in by_size.into_iter().filter(|(k, _)| *k > 0) {
        let batch = (16_000_000 / (k * k)).clamp(1, units.len());
        for group in units.chunks(batch) {
            let idx: Vec<i64> =
                group.iter().flat_map(|&h| rows[h].iter().map(|&j| j as i64)).collect();
            let idx = Tensor::from_slice(&idx).view([group.len() as i64, k as i64]); // [B, k]
            let units = Tensor::from_slice(&group.iter().map(|&h| h as i64).collect::<Vec<_>>());
            let solved = solve_group(&weight.index_select(0, &units), gram, &idx)?; // [B, k]
            let rows_out = Tensor::zeros([group.len() as i64, inputs], (Kind::Double, Device::Cpu))
                .scatter(1, &idx, &solved);
            out = out.index_copy(0, &units, &rows_out);
        }
    }
    Ok(out.to_kind(Kind::Float))
}

/// The re-fitted kept weights [B, k] of a group of units `w` [B, D] keeping inputs `idx` [B, k].
fn solve_group(w: &Tensor, gram: &Tensor, idx: &Tensor) -> Result<Tensor> {
    let (b, k, d) = (idx.size()[0], idx.size()[1], gram.size()[0]);
    let g_s = gram.index_select(0, &idx.flatten(0, -1)).view([b, k, d]); // [B, k, D]
    let target = g_s.matmul(&w.unsqueeze(2)).squeeze_dim(2); // G_S: w  [B, k]
    let g_ss = g_s.gather(2, &idx.unsqueeze(1).expand([b, k, k], false), false); // [B, k, k]
    let ridge = g_ss.diagonal(0, 1, 2).amax(&[1i64][..], true).clamp_min(1e-300) * 1e-6; // [B, 1]
    let eye = Tensor::eye(k, (Kind::Double, Device::Cpu)).unsqueeze(0);
    let system = &g_ss + eye * ridge.unsqueeze(2);
    // G_SS + ρI is symmetric positive definite: Cholesky (MKL's batched LU misbehaves on threads
    // other than the main one; Cholesky is also 2x cheaper).
    let factor = system.f_linalg_cholesky(false).context("the system is not positive definite")?;
    let solved = target.unsqueeze(2).f_cholesky_solve(&factor, false)?.squeeze_dim(2);
    ensure!(
        solved.isfinite().all().int64_value(&[]) != 0,
        "the system is singular even with a ridge"
    );
    Ok(solved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_reproduces_units_that_are_combinations_of_kept_ones() {
        // Activations of 3 units over 5 inputs; unit 2 = 2·unit 0 − unit 1.
        let a0 = [1.0f64, 0.5, -1.0, 2.0, 0.0];
        let a1 = [0.0f64, 1.0, 1.0, -1.0, 3.0];
        let a2: Vec<f64> = a0.iter().zip(&a1).map(|(x, y)| 2.0 * x - y).collect();
        let acts = Tensor::from_slice(&[a0.to_vec(), a1.to_vec(), a2].concat()).view([3, 5]);
        let alpha = regression_coefficients(&acts.matmul(&acts.tr()), &[0, 1], &[2]);
        let alpha = Vec::<f64>::try_from(alpha.flatten(0, -1)).unwrap();
        assert!((alpha[0] - 2.0).abs() < 1e-9 && (alpha[1] + 1.0).abs() < 1e-9, "{alpha:?}");
        assert_eq!(regression_coefficients(&acts.matmul(&acts.tr()), &[0, 1, 2], &[]).numel(), 0);
    }

    #[test]
    fn edge_refit_moves_weight_onto_correlated_inputs() {
        // Input 1 always equals input 0, so weight on 1 can move to 0 without changing anything.
        let c = Tensor::from_slice(&[1.0f64, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0]).view([3, 3]);
        let w = Tensor::from_slice(&[0.5f64, 0.25, 2.0, 1.0, -1.0, 0.5]).view([2, 3]);
        let out = refit_rows(&w, &c, &[vec![0, 2], vec![1, 2]]).unwrap();
        let out = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap();
        let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
        assert!(close(out[0], 0.75) && out[1] == 0.0 && close(out[2], 2.0), "{out:?}");
        assert!(out[3] == 0.0 && close(out[4], 0.0) && close(out[5], 0.5), "{out:?}");
    }
}
