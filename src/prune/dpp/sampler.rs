//! Exact k-DPP sampling from a precomputed eigendecomposition.
//!
//! A k-DPP with a symmetric PSD kernel `L` (n×n) draws a subset `S` of exactly `k` items with
//! probability `P(S) = det(L_S) / e_k(λ)`, where `e_k` is the k-th elementary symmetric
//! polynomial of the eigenvalues of `L`. Pruning draws many such subsets (e.g. the neurons to
//! keep) from one kernel, so [`KDpp`] takes the eigenpairs once (the eigendecomposition itself is
//! done elsewhere) and every [`KDpp::sample`] reuses them.
//!
//! Algorithm (Kulesza & Taskar 2012, Alg. 8 followed by the projection-DPP chain rule):
//! 1. **Eigenvalue phase.** Scan the eigenvalues from the last to the first and keep eigenvector
//!    `m` with probability `λ_m e_{l-1}(λ_1..λ_{m-1}) / e_l(λ_1..λ_m)` while `l` are still to be
//!    chosen. The table is cached for the last `k` used.
//! 2. **Projection phase.** With `V` the `n×k` matrix of the chosen eigenvectors, draw items one
//!    at a time with probability proportional to the squared norm of their residual row (the
//!    diagonal of the conditioned projection kernel), Gram–Schmidt form: after choosing `j`,
//!    `c = (V V_jᵀ − Σ_t c_t c_t[j]) / ‖·‖` and the residuals drop by `c²`. The directions are
//!    kept in the k-dimensional coefficient space (`c_t = V b_t`, `b_t` orthonormal).
//!    Residuals are not updated for every item at every draw (that streams all of `V` k times):
//!    draws are made by **rejection** from the residuals as of the last *refresh* `s`, which
//!    bound the current ones from above. A candidate `i` proposed with probability
//!    `∝ r_i(s)` is accepted with probability `r_i(now) / r_i(s)`, where
//!    `r_i(now) = r_i(s) − Σ_{s≤t<now} (V_i · b_t)²` costs `O(k · (now − s))`; an accepted
//!    candidate is therefore distributed exactly `∝ r_i(now)`. Since the exact residuals sum to
//!    `k − now`, the proposal is refreshed once half of the items left at the last refresh have
//!    been drawn, keeping the acceptance rate above about 1/2. A refresh accounts for all new
//!    directions in every residual at once: a matrix product over register tiles of
//!    items × directions from a tiled copy of `V`, blocked for the L1 and L2 caches, so `V` is
//!    read once per 64 new directions of a refresh (about `log₂ k` refreshes) instead of once
//!    per draw. A sample costs `O(n k²)` flops in all (`O(n k²)` for the refreshes plus `O(k³)`
//!    for rejections and Gram–Schmidt); the inner kernels use fused multiply-adds at the widest
//!    vector width the CPU has (`simd::widest_fused!`).
//!
//! Numerical safeguards:
//! - Eigenvalues are clamped at 0; those at or below `λ_max · n · ε` (the numerical rank
//!   threshold) are treated as exact zeros, and the rest are divided by `λ_max`.
//! - The eigenvalue phase never forms `e_l` itself (it under/overflows for wide spectra and large
//!   `k`): it tabulates the ratios `w_l(m) = e_l(λ_1..λ_m) / e_{l-1}(λ_1..λ_m)` with a recursion
//!   of positive terms only, which stays in `[λ_min / m, m]` and loses no accuracy to cancellation.
//!   [`log_esp`] uses the same recursion.
//! - The projection phase renormalises by the actual sum of the clamped residuals: proposals
//!   are drawn against the running sum of `max(r_i(s), 0)` over the items not yet chosen, and
//!   the acceptance test compares with the clamped current residual, which is never above the
//!   proposal weight because it is computed by subtracting squares from it. It runs a second
//!   Gram–Schmidt pass whenever less than 2⁻¹⁰ of the chosen row's squared norm survives the
//!   first (`REORTH`; a test checks that the directions of a 150-step chain stay within 1e-11
//!   of orthonormal, far below what can change a draw), and never picks an item twice
//!   (chosen items have weight zero after a refresh and are rejected before one). After
//!   `MAX_REJECTIONS` (in `projection`) consecutive rejections it refreshes early (the proposal is then exact
//!   and the next candidate is accepted); if round-off has driven every residual to zero it
//!   takes the remaining item with the largest residual instead of failing.
//!
//! [`KDpp`] is `Send + Sync`; the table cache sits behind a mutex that is held only to look it up
//! or to rebuild it.
//!
//! All randomness comes from the caller's `rng`, so a seeded generator gives reproducible draws.

use std::sync::{Arc, Mutex, PoisonError};

#[cfg(test)]
use super::projection::{dot, pack_items, project_block, project_row};
use super::projection::{sample_projection, Buffers};

use anyhow::{bail, ensure, Result};
use rand::Rng;

/// An exact k-DPP sampler over `n` items, built from the eigenpairs of its kernel `L`.
pub struct KDpp {
    n: usize,
    /// Eigenvalues above the rank threshold, divided by the largest eigenvalue.
    lambda: Vec<f64>,
    /// Their eigenvectors, row-major `rank × n`: row `a` is the eigenvector of `lambda[a]`.
    vecs: Vec<f64>,
    /// Eigenvalue-phase table of the last `k` sampled.
    table: Mutex<Option<Arc<EigenTable>>>,
    /// The projection phase's arrays, kept for the next sample (a concurrent sample that finds
    /// them taken allocates its own).
    buffers: Mutex<Buffers>,
    /// For a diagonal kernel, the item of each kept eigenvector: the projection phase then
    /// returns exactly the chosen eigenvectors' items, and is skipped.
    diagonal_items: Option<Vec<usize>>,
}

impl std::fmt::Debug for KDpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KDpp")
            .field("n", &self.n)
            .field("rank", &self.rank())
            .finish_non_exhaustive()
    }
}

impl Clone for KDpp {
    fn clone(&self) -> Self {
        Self {
            n: self.n,
            lambda: self.lambda.clone(),
            vecs: self.vecs.clone(),
            table: Mutex::new(None),
            buffers: Mutex::default(),
            diagonal_items: self.diagonal_items.clone(),
        }
    }
}

impl KDpp {
    /// `eigvals[j]` with eigenvector column j; `eigvecs` is n×n ROW-major: eigvecs[i*n + j] = U[i][j].
    /// Eigenvalues may come in any order and may be slightly negative from round-off (clamp to 0).
    /// Errors (anyhow, one clear sentence) on wrong lengths, n == 0, non-finite values.
    pub fn new(n: usize, eigvals: Vec<f64>, eigvecs: Vec<f64>) -> Result<Self> {
        ensure!(n > 0, "a k-DPP needs at least one item, but n = 0");
        ensure!(eigvals.len() == n, "expected n = {n} eigenvalues, but got {}", eigvals.len());
        let Some(n2) = n.checked_mul(n) else {
            bail!("n = {n} is too large for an n×n eigenvector matrix");
        };
        ensure!(
            eigvecs.len() == n2,
            "expected an n×n = {n2}-entry eigenvector matrix for n = {n}, but got {} entries",
            eigvecs.len()
        );
        if let Some(j) = eigvals.iter().position(|v| !v.is_finite()) {
            bail!("eigenvalue {j} is not finite ({})", eigvals[j]);
        }
        if let Some(p) = eigvecs.iter().position(|v| !v.is_finite()) {
            bail!("eigenvector entry U[{}][{}] is not finite ({})", p / n, p % n, eigvecs[p]);
        }

        let lmax = eigvals.iter().fold(0.0_f64, |m, &v| m.max(v));
        let tol = rank_tolerance(lmax, n);
        let kept: Vec<usize> = (0..n).filter(|&j| eigvals[j] > tol).collect();
        let lambda = kept.iter().map(|&j| eigvals[j] / lmax).collect();
        // All n eigenvectors, the kept ones first: the others span the complement that
        // `sample` projects on when k > n/2.
        let order: Vec<usize> =
            kept.iter().copied().chain((0..n).filter(|&j| eigvals[j] <= tol)).collect();
        let mut vecs = vec![0.0; n * n];
        for (i, urow) in eigvecs.chunks_exact(n).enumerate() {
            for (a, &j) in order.iter().enumerate() {
                vecs[a * n + i] = urow[j];
            }
        }
        Ok(Self {
            n,
            lambda,
            vecs,
            table: Mutex::new(None),
            buffers: Mutex::default(),
            diagonal_items: None,
        })
    }

    /// The k-DPP of a diagonal kernel L = diag(`values`): P(S) ∝ Π_{i∈S} values_i. No
    /// eigendecomposition is needed and a sample costs O(n·k) instead of O(n·k²).
    pub fn from_diagonal(values: Vec<f64>) -> Result<Self> {
        let n = values.len();
        ensure!(n > 0, "a k-DPP needs at least one item, but n = 0");
        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
            bail!("diagonal entry {j} is not finite ({})", values[j]);
        }
        let lmax = values.iter().fold(0.0_f64, |m, &v| m.max(v));
        let tol = rank_tolerance(lmax, n);
        let kept: Vec<usize> = (0..n).filter(|&j| values[j] > tol).collect();
        let lambda = kept.iter().map(|&j| values[j] / lmax).collect();
        Ok(Self {
            n,
            lambda,
            vecs: Vec::new(),
            table: Mutex::new(None),
            buffers: Mutex::default(),
            diagonal_items: Some(kept),
        })
    }

    /// Number of items.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Numerical rank: #{λ > λ_max · n · f64::EPSILON}.
    pub fn rank(&self) -> usize {
        self.lambda.len()
    }

    /// One exact k-DPP sample: k distinct item indices, sorted ascending.
    /// Errors with a clear sentence when k == 0 or k > rank ("k = 12 exceeds the kernel's rank 10 ...").
    ///
    /// Costs `O(n k²)`, plus `O(rank · k)` to build the eigenvalue table when `k` differs from the
    /// previous call's.
    pub fn sample<R: Rng + ?Sized>(&self, k: usize, rng: &mut R) -> Result<Vec<usize>> {
        ensure!(k > 0, "k = 0: a k-DPP sample must contain at least one item");
        let rank = self.rank();
        ensure!(
            k <= rank,
            "k = {k} exceeds the kernel's rank {rank} (eigenvalues at or below λ_max·n·ε count as \
             zero), so no subset of {k} items has positive probability"
        );
        let table = self.table_for(k);
        if let Some(items) = &self.diagonal_items {
            let mut chosen: Vec<usize> =
                table.select(&self.lambda, rng).into_iter().map(|a| items[a]).collect();
            chosen.sort_unstable();
            return Ok(chosen);
        }
        let n = self.n;
        let chosen = table.select(&self.lambda, rng);
        let row = |a: usize| &self.vecs[a * n..][..n];
        let mut own = None;
        let mut guard = self.buffers.try_lock().ok();
        let buffers = match guard.as_deref_mut() {
            Some(kept) => kept,
            None => own.insert(Buffers::default()),
        };
        if 2 * k <= n {
            let rows: Vec<&[f64]> = chosen.into_iter().map(row).collect();
            let mut items = sample_projection(&rows, n, rng, buffers);
            items.sort_unstable();
            return Ok(items);
        }
        // The complement of a sample of the projection DPP V Vᵀ is a sample of the projection
        // DPP I − V Vᵀ, spanned by the other n − k eigenvectors: draw those n − k items instead.
        let mut in_v = vec![false; n];
        chosen.iter().for_each(|&a| in_v[a] = true);
        let others: Vec<&[f64]> = (0..n).filter(|&a| !in_v[a]).map(row).collect();
        let mut left_out = vec![false; n];
        if !others.is_empty() {
            let items = sample_projection(&others, n, rng, buffers);
            items.into_iter().for_each(|i| left_out[i] = true);
        }
        Ok((0..n).filter(|&i| !left_out[i]).collect())
    }

    /// The eigenvalue-phase table for `k`, from the cache or freshly built (and then cached).
    fn table_for(&self, k: usize) -> Arc<EigenTable> {
        let mut cache = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        match cache.as_ref() {
            Some(table) if table.k == k => Arc::clone(table),
            _ => {
                let table = Arc::new(EigenTable::new(&self.lambda, k));
                *cache = Some(Arc::clone(&table));
                table
            }
        }
    }
}

/// log of the elementary symmetric polynomial e_k(λ) — for tests and callers that want P(S) = det(L_S)/e_k(λ).
///
/// Negative eigenvalues count as zero. Returns `0` for `k == 0`, `-∞` when fewer than `k`
/// eigenvalues are positive, and NaN when an eigenvalue is NaN or infinite.
pub fn log_esp(eigvals: &[f64], k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if eigvals.iter().any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let lmax = eigvals.iter().fold(0.0_f64, |m, &v| m.max(v));
    // Values that underflow relative to the largest (a spread beyond ~300 orders) count as zero.
    let lambda: Vec<f64> = eigvals.iter().map(|&v| v / lmax).filter(|&v| v > 0.0).collect();
    if lambda.len() < k {
        return f64::NEG_INFINITY;
    }
    // w[l - 1] = e_l / e_{l-1} of the eigenvalues seen so far; e_k = Π_l w_l (times lmax^k).
    let mut w = vec![0.0_f64; k];
    for (m, &lam) in lambda.iter().enumerate() {
        // Only l ≤ m + 1 are non-zero after this step; update high l first (they read w[l - 2]).
        for l in (2..=k.min(m + 1)).rev() {
            let up = w[l - 2];
            w[l - 1] = (w[l - 1] + lam) * up / (up + lam);
        }
        w[0] += lam;
    }
    k as f64 * lmax.ln() + w.iter().map(|v| v.ln()).sum::<f64>()
}

/// The numerical rank threshold `λ_max · n · ε`.
fn rank_tolerance(lmax: f64, n: usize) -> f64 {
    lmax * n as f64 * f64::EPSILON
}

/// Ratios `w_l(j) = e_l(λ_1..λ_j) / e_{l-1}(λ_1..λ_j)` (1-based `l` and `j`) for one `k`.
///
/// The eigenvalue phase only visits `l ≤ j + 1 ≤ r − k + l` (enough eigenvalues must remain on
/// both sides), so row `l` stores the band `j = l − 1 + d`, `d ∈ 0..r − k + 1`; `d = 0` is
/// `e_l(λ_1..λ_{l−1}) = 0`. The recursion `e_l(j) = e_l(j−1) + λ_j e_{l−1}(j−1)` becomes
/// `w_l(j) = (w_l(j−1) + λ_j) · w_{l−1}(j−1) / (w_{l−1}(j−1) + λ_j)`: positive terms only.
#[derive(Debug)]
struct EigenTable {
    k: usize,
    width: usize,
    w: Vec<f64>,
}

impl EigenTable {
    /// Builds the table for `1 ≤ k ≤ lambda.len()` from positive eigenvalues.
    fn new(lambda: &[f64], k: usize) -> Self {
        let width = lambda.len() + 1 - k;
        let mut w = vec![0.0; k * width];
        // l = 1: w_1(j) = λ_1 + … + λ_j with j = d.
        let mut acc = 0.0;
        for (d, wd) in w[..width].iter_mut().enumerate().skip(1) {
            acc += lambda[d - 1];
            *wd = acc;
        }
        for l in 2..=k {
            let (prev, cur) = w[(l - 2) * width..l * width].split_at_mut(width);
            // j = l − 1 + d, λ_j = lambda[l − 2 + d]; w_{l−1}(j − 1) sits at offset d of `prev`.
            for d in 1..width {
                let lam = lambda[l - 2 + d];
                let up = prev[d];
                cur[d] = (cur[d - 1] + lam) * up / (up + lam);
            }
        }
        Self { k, width, w }
    }

    /// Chooses `k` eigenvector indices (descending).
    fn select<R: Rng + ?Sized>(&self, lambda: &[f64], rng: &mut R) -> Vec<usize> {
        let mut chosen = Vec::with_capacity(self.k);
        let mut l = self.k;
        for m in (1..=lambda.len()).rev() {
            if l == m {
                // Every remaining eigenvector must be taken.
                chosen.extend((0..m).rev());
                break;
            }
            // P(keep m) = λ_m e_{l−1}(m−1) / e_l(m) = λ_m / (w_l(m−1) + λ_m), with m − l ≥ 1.
            let lam = lambda[m - 1];
            let w = self.w[(l - 1) * self.width + (m - l)];
            if rng.gen::<f64>() * (w + lam) < lam {
                chosen.push(m - 1);
                l -= 1;
                if l == 0 {
                    break;
                }
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::collections::HashMap;

    fn rng(seed: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    /// `y += a · x`.
    fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
    }

    /// Standard normal by Box–Muller.
    fn gaussian(rng: &mut Xoshiro256PlusPlus) -> f64 {
        let u: f64 = 1.0 - rng.gen::<f64>();
        let v: f64 = rng.gen();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Random n×n orthogonal matrix (row-major): modified Gram–Schmidt, applied twice, on the
    /// columns of a Gaussian matrix.
    fn random_orthogonal(n: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
        // cols[j] is column j.
        let mut cols: Vec<Vec<f64>> =
            (0..n).map(|_| (0..n).map(|_| gaussian(rng)).collect()).collect();
        for j in 0..n {
            let (done, rest) = cols.split_at_mut(j);
            let col = &mut rest[0];
            for _ in 0..2 {
                for q in done.iter() {
                    let s = dot(q, col);
                    axpy(-s, q, col);
                }
            }
            let norm = dot(col, col).sqrt();
            col.iter_mut().for_each(|x| *x /= norm);
        }
        let mut u = vec![0.0; n * n];
        for (j, col) in cols.iter().enumerate() {
            for (i, &x) in col.iter().enumerate() {
                u[i * n + j] = x;
            }
        }
        u
    }

    /// A dense n×n orthogonal matrix for n = p·q, cheap enough for debug builds: the Kronecker
    /// product of two random orthogonal factors, two random Householder reflections, and a
    /// random row permutation.
    fn big_orthogonal(p: usize, q: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
        let (a, b) = (random_orthogonal(p, rng), random_orthogonal(q, rng));
        let n = p * q;
        let mut u = vec![0.0; n * n];
        for (i, urow) in u.chunks_exact_mut(n).enumerate() {
            let (i1, i2) = (i / q, i % q);
            for (j, x) in urow.iter_mut().enumerate() {
                *x = a[i1 * p + j / q] * b[i2 * q + j % q];
            }
        }
        for _ in 0..2 {
            // u ← (I − 2 v vᵀ / vᵀv) u
            let v: Vec<f64> = (0..n).map(|_| gaussian(rng)).collect();
            let scale = 2.0 / dot(&v, &v);
            let mut vtu = vec![0.0; n];
            for (urow, &vi) in u.chunks_exact(n).zip(&v) {
                axpy(vi, urow, &mut vtu);
            }
            for (urow, &vi) in u.chunks_exact_mut(n).zip(&v) {
                axpy(-scale * vi, &vtu, urow);
            }
        }
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(rng);
        perm.iter().flat_map(|&i| u[i * n..][..n].iter().copied()).collect()
    }

    /// L = U diag(λ) Uᵀ, row-major.
    fn kernel(n: usize, u: &[f64], lambda: &[f64]) -> Vec<f64> {
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                l[i * n + j] = (0..n).map(|m| u[i * n + m] * lambda[m] * u[j * n + m]).sum();
            }
        }
        l
    }

    /// Determinant by Gaussian elimination with partial pivoting (row-major m×m).
    fn det(mut a: Vec<f64>, m: usize) -> f64 {
        let mut d = 1.0;
        for col in 0..m {
            let piv = (col..m)
                .max_by(|&x, &y| a[x * m + col].abs().total_cmp(&a[y * m + col].abs()))
                .unwrap_or(col);
            if a[piv * m + col] == 0.0 {
                return 0.0;
            }
            if piv != col {
                for t in 0..m {
                    a.swap(piv * m + t, col * m + t);
                }
                d = -d;
            }
            let p = a[col * m + col];
            d *= p;
            for r in col + 1..m {
                let f = a[r * m + col] / p;
                for t in col..m {
                    a[r * m + t] -= f * a[col * m + t];
                }
            }
        }
        d
    }

    /// All k-subsets of 0..n as bitmasks, in increasing order.
    fn subsets(n: usize, k: usize) -> Vec<u32> {
        (0u32..1 << n).filter(|s| s.count_ones() as usize == k).collect()
    }

    fn det_sub(l: &[f64], n: usize, mask: u32) -> f64 {
        let idx: Vec<usize> = (0..n).filter(|&i| mask >> i & 1 == 1).collect();
        let m = idx.len();
        det(idx.iter().flat_map(|&i| idx.iter().map(move |&j| l[i * n + j])).collect(), m)
    }

    fn chi_square(counts: &[u64], probs: &[f64], draws: u64) -> f64 {
        counts
            .iter()
            .zip(probs)
            .map(|(&o, &p)| {
                let e = p * draws as f64;
                (o as f64 - e).powi(2) / e
            })
            .sum()
    }

    /// Draws `draws` samples and checks them against det(L_S)/e_k(λ) with a chi-square test.
    /// Returns (statistic, statistic against the uniform distribution).
    fn exactness(
        n: usize,
        k: usize,
        lambda: &[f64],
        draws: u64,
        expected_rank: usize,
        threshold: f64,
        seed: u64,
    ) -> (f64, f64) {
        let mut r = rng(seed);
        let u = random_orthogonal(n, &mut r);
        let l = kernel(n, &u, lambda);
        let masks = subsets(n, k);
        let log_ek = log_esp(lambda, k);
        let probs: Vec<f64> = masks.iter().map(|&s| det_sub(&l, n, s) / log_ek.exp()).collect();
        let sum: f64 = probs.iter().sum();
        assert!((sum - 1.0).abs() < 1e-10, "Σ det(L_S) / e_k = {sum}, expected 1");
        let min_expected = probs.iter().fold(f64::INFINITY, |m, &p| m.min(p)) * draws as f64;
        assert!(min_expected >= 5.0, "test design: smallest expected count {min_expected} < 5");

        let dpp = KDpp::new(n, lambda.to_vec(), u).expect("valid eigenpairs");
        assert_eq!(dpp.rank(), expected_rank);
        let index: HashMap<u32, usize> = masks.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let mut counts = vec![0u64; masks.len()];
        for _ in 0..draws {
            let s = dpp.sample(k, &mut r).expect("k ≤ rank");
            let mask = s.iter().fold(0u32, |m, &i| m | 1 << i);
            counts[index[&mask]] += 1;
        }
        let stat = chi_square(&counts, &probs, draws);
        assert!(stat < threshold, "chi-square {stat} ≥ {threshold} (n = {n}, k = {k})");
        let uniform = vec![1.0 / masks.len() as f64; masks.len()];
        (stat, chi_square(&counts, &uniform, draws))
    }

    // Chi-square 0.999 quantiles, from bisection on the regularised lower incomplete gamma
    // function P(dof/2, x/2) = 0.999 (checked against mpmath.gammainc; 14 dof: 36.123 as tabled).
    const CHI2_999_DOF14: f64 = 36.1233;
    const CHI2_999_DOF19: f64 = 43.8202;
    const CHI2_999_DOF55: f64 = 93.1675;

    #[test]
    fn exact_distribution_n6_k2() {
        let lambda = [4.0, 0.25, 2.0, 1.0, 0.5, 3.0];
        let (_, against_uniform) = exactness(6, 2, &lambda, 40_000, 6, CHI2_999_DOF14, 1);
        // The test has power: the same counts reject the uniform distribution outright.
        assert!(against_uniform > 10.0 * CHI2_999_DOF14, "{against_uniform}");
    }

    #[test]
    fn diagonal_kernels_sample_products_of_their_entries() {
        // For L = diag(d), P(S) = Π_{i∈S} d_i / e_k(d); the fast path must match it exactly.
        let d = [4.0, 0.25, 2.0, 1.0, 0.5, 3.0];
        let dpp = KDpp::from_diagonal(d.to_vec()).expect("valid diagonal");
        let masks = subsets(6, 2);
        let e2 = log_esp(&d, 2).exp();
        let probs: Vec<f64> = masks
            .iter()
            .map(|&s| (0..6).filter(|i| s & (1 << i) != 0).map(|i| d[i]).product::<f64>() / e2)
            .collect();
        let index: HashMap<u32, usize> = masks.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let mut counts = vec![0u64; masks.len()];
        let mut r = rng(5);
        for _ in 0..40_000 {
            let s = dpp.sample(2, &mut r).expect("k ≤ rank");
            counts[index[&s.iter().fold(0u32, |m, &i| m | 1 << i)]] += 1;
        }
        let stat = chi_square(&counts, &probs, 40_000);
        assert!(stat < CHI2_999_DOF14, "chi-square {stat}");
        // Zero entries are never chosen and bound the rank.
        let sparse = KDpp::from_diagonal(vec![0.0, 1.0, 0.0, 2.0]).expect("valid diagonal");
        assert_eq!(sparse.rank(), 2);
        assert_eq!(sparse.sample(2, &mut r).expect("k = rank"), [1, 3]);
        assert!(sparse.sample(3, &mut r).is_err());
    }

    #[test]
    fn exact_distribution_n8_k3_rank_deficient() {
        // Unordered, with an exact zero, a round-off negative and a sub-tolerance positive value:
        // all three count as zero and the rank is 5.
        let lambda = [0.7, 0.0, 2.5, -3e-17, 1.3, 1e-18, 0.4, 1.9];
        exactness(8, 3, &lambda, 50_000, 5, CHI2_999_DOF55, 2);
    }

    #[test]
    fn exact_distribution_by_the_complement_when_k_exceeds_half() {
        // k > n/2 draws the n − k left-out items from the complementary projection.
        let lambda = [4.0, 0.25, 2.0, 1.0, 0.5, 3.0];
        let (_, against_uniform) = exactness(6, 4, &lambda, 40_000, 6, CHI2_999_DOF14, 4);
        assert!(against_uniform > 10.0 * CHI2_999_DOF14, "{against_uniform}");
        // Rank 5 of 6: the complement includes the null eigenvector.
        let lambda = [0.7, 0.0, 2.5, 1.3, 0.4, 1.9];
        exactness(6, 4, &lambda, 40_000, 5, CHI2_999_DOF14, 5);
        // k = n: the whole set.
        let dpp = KDpp::new(3, vec![1.0, 2.0, 3.0], random_orthogonal(3, &mut rng(6))).unwrap();
        assert_eq!(dpp.sample(3, &mut rng(6)).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn exact_distribution_projection_k_equals_rank() {
        // Rank 3 of 6: the eigenvalue phase is forced, this checks the chain rule alone.
        let lambda = [0.0, 1.5, 0.0, 0.8, 0.0, 2.2];
        exactness(6, 3, &lambda, 30_000, 3, CHI2_999_DOF19, 3);
    }

    #[test]
    fn robust_on_wide_spectrum_n784() {
        let n = 784;
        let mut r = rng(7);
        let u = big_orthogonal(28, 28, &mut r);
        // 300 positive eigenvalues over 15 orders of magnitude, 400 exact zeros and 84
        // round-off negatives, shuffled.
        let pos = 300;
        let mut lambda: Vec<f64> =
            (0..pos).map(|i| 10f64.powf(-15.0 * i as f64 / (pos - 1) as f64)).collect();
        lambda.extend(std::iter::repeat_n(0.0, 400));
        lambda.extend((0..84).map(|_| -1e-17 * r.gen::<f64>()));
        lambda.shuffle(&mut r);
        let tol = n as f64 * f64::EPSILON;
        let expected_rank = lambda.iter().filter(|&&x| x > tol).count();
        let dpp = KDpp::new(n, lambda, u).expect("valid eigenpairs");
        assert_eq!(dpp.rank(), expected_rank);
        assert!(expected_rank > 200 && expected_rank < pos);

        // Interleaved k values also exercise the per-k table cache.
        let rank = dpp.rank();
        let plan: [(usize, usize); 6] =
            [(1, 4000), (2, 3000), (10, 2700), (40, 250), (150, 40), (rank, 10)];
        assert_eq!(plan.iter().map(|p| p.1).sum::<usize>(), 10_000);
        let mut remaining: Vec<usize> = plan.iter().map(|p| p.1).collect();
        let mut hits = vec![0u32; n];
        while remaining.iter().any(|&c| c > 0) {
            for ((k, _), left) in plan.iter().zip(remaining.iter_mut()) {
                if *left == 0 {
                    continue;
                }
                *left -= 1;
                let s = dpp.sample(*k, &mut r).expect("k ≤ rank must always succeed");
                assert_eq!(s.len(), *k);
                assert!(s.windows(2).all(|w| w[0] < w[1]), "not sorted/distinct: {s:?}");
                assert!(s.last().is_some_and(|&i| i < n));
                s.iter().for_each(|&i| hits[i] += 1);
            }
        }
        // The dense eigenvectors spread the draws over (almost) all items.
        assert!(hits.iter().filter(|&&h| h > 0).count() > n / 2);
    }

    #[test]
    fn degenerate_eigenvectors_still_give_distinct_items() {
        // Not a valid eigendecomposition (zero and repeated eigenvector columns), so the
        // residuals collapse to zero before k items are drawn: the sampler must fall back to the
        // largest remaining residual instead of failing or repeating an item.
        let mut r = rng(13);
        let zero = KDpp::new(3, vec![1.0; 3], vec![0.0; 9]).expect("finite input");
        assert_eq!(zero.sample(3, &mut r).expect("k = rank"), vec![0, 1, 2]);
        let repeated =
            vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let dpp = KDpp::new(4, vec![1.0, 1.0, 0.0, 0.0], repeated).expect("finite input");
        for _ in 0..20 {
            assert_eq!(dpp.sample(2, &mut r).expect("k = rank"), vec![0, 1]);
        }
    }

    #[test]
    fn errors_are_reported() {
        let n = 12;
        let mut r = rng(11);
        let u = random_orthogonal(n, &mut r);
        let mut lambda = vec![1.0; n];
        lambda[3] = 0.0;
        lambda[7] = -1e-16;
        let dpp = KDpp::new(n, lambda.clone(), u.clone()).expect("valid eigenpairs");
        assert_eq!(dpp.rank(), 10);
        let msg = dpp.sample(12, &mut r).expect_err("k > rank").to_string();
        assert!(msg.contains("k = 12") && msg.contains("rank 10"), "{msg}");
        assert!(dpp.sample(11, &mut r).is_err());
        assert!(dpp.sample(0, &mut r).expect_err("k = 0").to_string().contains("k = 0"));
        assert_eq!(dpp.sample(10, &mut r).expect("k = rank").len(), 10);

        let short = KDpp::new(n, lambda[..n - 1].to_vec(), u.clone());
        assert!(short.expect_err("short eigvals").to_string().contains("eigenvalues"));
        let long = KDpp::new(n, lambda.clone(), [u.clone(), vec![0.0]].concat());
        assert!(long.expect_err("long eigvecs").to_string().contains("eigenvector matrix"));
        assert!(KDpp::new(0, vec![], vec![]).is_err());
        let mut bad = lambda.clone();
        bad[5] = f64::NAN;
        assert!(KDpp::new(n, bad, u.clone()).is_err());
        let mut bad_u = u;
        bad_u[17] = f64::INFINITY;
        let msg = KDpp::new(n, lambda, bad_u).expect_err("inf").to_string();
        assert!(msg.contains("U[1][5]"), "{msg}");

        // An all-zero kernel has rank 0 and no valid k.
        let zero = KDpp::new(2, vec![0.0, 0.0], vec![1.0, 0.0, 0.0, 1.0]).expect("valid");
        assert_eq!(zero.rank(), 0);
        assert!(zero.sample(1, &mut r).expect_err("rank 0").to_string().contains("rank 0"));
    }

    #[test]
    fn rank_uses_relative_tolerance() {
        let n = 4;
        let u =
            vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let tol = 1e6 * n as f64 * f64::EPSILON;
        let dpp = KDpp::new(n, vec![1e6, 2.0 * tol, 0.5 * tol, -1.0], u).expect("valid");
        assert_eq!(dpp.n(), 4);
        assert_eq!(dpp.rank(), 2);
        // With U = I the kernel is diagonal: only the two kept items can ever be drawn.
        let mut r = rng(5);
        for _ in 0..100 {
            assert_eq!(dpp.sample(2, &mut r).expect("k = rank"), vec![0, 1]);
        }
    }

    #[test]
    fn same_seed_same_samples() {
        let n = 40;
        let mut r = rng(21);
        let u = random_orthogonal(n, &mut r);
        let lambda: Vec<f64> = (0..n).map(|_| r.gen::<f64>().powi(3)).collect();
        let dpp = KDpp::new(n, lambda, u).expect("valid eigenpairs");
        let draw = |dpp: &KDpp, seed: u64| -> Vec<Vec<usize>> {
            let mut r = rng(seed);
            // k from 1 to 30 of 40, both through the complement and not, so the reused
            // projection buffers shrink and grow between samples.
            (0..50).map(|i| dpp.sample(1 + i * 7 % 30, &mut r).expect("k ≤ rank")).collect()
        };
        let first = draw(&dpp, 99);
        assert_eq!(first, draw(&dpp, 99));
        // A clone starts with an empty table cache and no buffers, and must agree too.
        assert_eq!(first, draw(&dpp.clone(), 99));
        assert_ne!(first, draw(&dpp, 100));
    }

    #[test]
    fn invariant_to_kernel_scale() {
        // Scaling by powers of two is exact, so L, 2^900 L and 2^-900 L must give bit-identical
        // draws: nothing in the sampler may overflow or underflow with the scale.
        let n = 30;
        let mut r = rng(31);
        let u = random_orthogonal(n, &mut r);
        let lambda: Vec<f64> = (0..n).map(|i| 10f64.powf(-(i as f64) / 2.0)).collect();
        let draws = |scale: f64| -> Vec<Vec<usize>> {
            let scaled = lambda.iter().map(|&x| x * scale).collect();
            let dpp = KDpp::new(n, scaled, u.clone()).expect("valid eigenpairs");
            let mut r = rng(32);
            (0..200).map(|i| dpp.sample(1 + i % dpp.rank(), &mut r).expect("k ≤ rank")).collect()
        };
        let base = draws(1.0);
        assert_eq!(base, draws(2f64.powi(900)));
        assert_eq!(base, draws(2f64.powi(-900)));
    }

    #[test]
    fn log_esp_matches_brute_force() {
        let lambda: [f64; 8] = [0.3, 2.0, 0.0, 1.7, 5e-3, 11.0, 0.9, -1e-17];
        let pos: Vec<f64> = lambda.iter().map(|&x| x.max(0.0)).collect();
        let n = lambda.len();
        for k in 0..=n {
            let brute: f64 = subsets(n, k)
                .iter()
                .map(|&s| (0..n).filter(|&i| s >> i & 1 == 1).map(|i| pos[i]).product::<f64>())
                .sum();
            let got = log_esp(&lambda, k);
            if k <= 6 {
                assert!((got - brute.ln()).abs() < 1e-12, "k = {k}: {got} vs {}", brute.ln());
            } else {
                assert_eq!(got, f64::NEG_INFINITY, "k = {k}");
            }
        }
        assert!(log_esp(&[1.0, f64::NAN], 1).is_nan());
    }

    #[test]
    fn log_esp_wide_spectrum_n3000() {
        let n = 3000;
        let mut lambda: Vec<f64> =
            (0..n).map(|i| 10f64.powf(-30.0 * i as f64 / (n - 1) as f64)).collect();
        lambda.shuffle(&mut rng(41));
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1.0);
        // Closed forms: e_1 = Σλ, e_n = Πλ, e_{n−1} = Πλ · Σ 1/λ.
        let sum_ln: f64 = lambda.iter().map(|x| x.ln()).sum();
        assert!(rel(log_esp(&lambda, 1), lambda.iter().sum::<f64>().ln()) < 1e-12);
        assert!(rel(log_esp(&lambda, n), sum_ln) < 1e-12);
        let inv: f64 = lambda.iter().map(|x| x.recip()).sum();
        assert!(rel(log_esp(&lambda, n - 1), sum_ln + inv.ln()) < 1e-12);
        // Scale covariance: log e_k(cλ) = k log c + log e_k(λ), with c far outside [1e-30, 1].
        let c = 1e-250_f64;
        let scaled: Vec<f64> = lambda.iter().map(|&x| x * c).collect();
        for k in [2, 10, 700, 1500, 2999] {
            let v = log_esp(&lambda, k);
            assert!(v.is_finite(), "k = {k}: {v}");
            assert!(rel(log_esp(&scaled, k), v + k as f64 * c.ln()) < 1e-12, "k = {k}");
        }
        // e_k is log-concave in k (Newton's inequalities) — a check on the middle of the table.
        let mid: Vec<f64> = (1499..=1501).map(|k| log_esp(&lambda, k)).collect();
        assert!(2.0 * mid[1] >= mid[0] + mid[2]);
    }

    #[test]
    fn blocked_refresh_matches_direct_products() {
        // Sizes that are not multiples of the register tiles (partial item and direction tiles),
        // and sizes spanning several cache blocks of coordinates and of directions.
        for (n, k, first, m) in [(21, 7, 1, 6), (19, 300, 3, 70)] {
            let mut r = rng(51);
            let rows: Vec<Vec<f64>> =
                (0..k).map(|_| (0..n).map(|_| gaussian(&mut r)).collect()).collect();
            let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
            let b: Vec<f64> = (0..m * k).map(|_| gaussian(&mut r)).collect();
            let mut c = vec![0.0; n * k];
            let mut res: Vec<f64> = (0..n).map(|i| 1e3 + i as f64).collect();
            project_block(&pack_items(&refs, n), &b, first, &mut c, &mut res);
            for i in 0..n {
                let row: Vec<f64> = rows.iter().map(|col| col[i]).collect();
                let mut want = 1e3 + i as f64;
                for (t, bt) in b.chunks_exact(k).enumerate() {
                    let ct: f64 = row.iter().zip(bt).map(|(x, y)| x * y).sum();
                    assert!((c[i * k + first + t] - ct).abs() < 1e-11, "c[{i}][{t}], k = {k}");
                    want -= ct * ct;
                }
                assert!((res[i] - want).abs() < 1e-8 * want.abs().max(1.0), "res[{i}], k = {k}");
                // Columns outside the block are left alone.
                assert!(c[i * k..i * k + first].iter().all(|&x| x == 0.0));
                assert!(c[i * k + first + m..(i + 1) * k].iter().all(|&x| x == 0.0));
            }
        }
    }

    #[test]
    fn vector_kernels_match_plain_sums() {
        // Lengths around the kernels' lane and chain widths, so every remainder path runs.
        let mut r = rng(53);
        for len in [0, 1, 7, 8, 9, 31, 32, 33, 300] {
            let x: Vec<f64> = (0..len).map(|_| gaussian(&mut r)).collect();
            let y: Vec<f64> = (0..len).map(|_| gaussian(&mut r)).collect();
            let plain: f64 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert!((dot(&x, &y) - plain).abs() < 1e-12 * (len as f64 + 1.0), "len {len}");
            for m in [1, 8, 11] {
                let b: Vec<f64> = (0..m * len).map(|_| gaussian(&mut r)).collect();
                let mut out = vec![f64::NAN; m];
                project_row(&x, &b, &mut out);
                for (t, bt) in b.chunks_exact(len.max(1)).take(m).enumerate() {
                    let want: f64 = x.iter().zip(bt).map(|(a, b)| a * b).sum();
                    assert!((out[t] - want).abs() < 1e-12 * (len as f64 + 1.0), "{len}, {t}");
                }
                if len == 0 {
                    assert!(out.iter().all(|&v| v == 0.0));
                }
            }
        }
    }

    #[test]
    fn projection_marginals_with_many_refreshes_n40_k12() {
        // k = rank = 12: the projection phase alone, through several refreshes and rejections.
        // For a projection DPP with kernel K, P(i ∈ S) = K_ii and P(i, j ∈ S) = K_ii K_jj − K_ij².
        let (n, k, draws) = (40, 12, 40_000);
        let mut r = rng(61);
        let u = random_orthogonal(n, &mut r);
        let lambda: Vec<f64> =
            (0..n).map(|i| if i % 3 == 0 && i < 3 * k { 1.0 } else { 0.0 }).collect();
        let kk = kernel(n, &u, &lambda);
        let dpp = KDpp::new(n, lambda, u).expect("valid eigenpairs");
        assert_eq!(dpp.rank(), k);
        let mut single = vec![0u32; n];
        let mut pair = vec![0u32; n * n];
        for _ in 0..draws {
            let s = dpp.sample(k, &mut r).expect("k = rank");
            for (x, &i) in s.iter().enumerate() {
                single[i] += 1;
                s[x + 1..].iter().for_each(|&j| pair[i * n + j] += 1);
            }
        }
        let check = |count: u32, p: f64, what: &str| {
            let sd = (p * (1.0 - p) / draws as f64).sqrt().max(1e-4);
            let z = (count as f64 / draws as f64 - p) / sd;
            assert!(
                z.abs() < 5.5,
                "{what}: frequency {} vs {p} (z = {z})",
                count as f64 / draws as f64
            );
        };
        for i in 0..n {
            check(single[i], kk[i * n + i], &format!("P({i} ∈ S)"));
            for j in i + 1..n {
                let p = kk[i * n + i] * kk[j * n + j] - kk[i * n + j].powi(2);
                check(pair[i * n + j], p, &format!("P({i}, {j} ∈ S)"));
            }
        }
    }

    #[test]
    fn sampler_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<KDpp>();
    }
}
