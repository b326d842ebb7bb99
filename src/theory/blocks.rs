//! Which units a k-DPP keeps, exactly: the joint inclusion probabilities of its items (Figure 2G),
//! and "a DPP keeps one unit per teacher block": which teacher unit each student unit stands for,
//! and how often a node mask keeps one unit per block, under a k-DPP and under uniform selection.
//!
//! Student unit i belongs to the block of the teacher unit it overlaps most, argmax_n |R_in|. A
//! set of kn kept units keeps "one per block" when its units lie in distinct blocks (kn ≤ M) and
//! when it covers every block (kn ≥ M); at kn = M both say one unit in each block.
use super::expected::{for_each_subset, subset_det, MAX_ENUMERATED_UNITS};
use super::order_params::OrderParams;
use anyhow::{ensure, Result};

/// The joint inclusion probabilities P(i ∈ S and k ∈ S) of the k-DPP with kernel `l` (K×K,
/// row-major, symmetric PSD) that draws kn items, P(S) = det(L_S)/e_kn(λ), by summing det(L_S)
/// over all C(K, kn) subsets (K ≤ [`MAX_ENUMERATED_UNITS`]). Row-major K×K; the diagonal holds
/// the marginals P(i ∈ S), which sum to kn, and row i sums to kn·P(i ∈ S). DPP node pruning of a
/// teacher-student layer uses the linear kernel L = W Wᵀ = N·Q, and a k-DPP does not change when
/// its kernel is scaled, so `l` may be Q itself.
pub fn dpp_inclusion(l: &[f64], k: usize, kn: usize) -> Result<Vec<f64>> {
    ensure!(
        l.len() == k * k,
        "a DPP kernel over {k} items needs {} entries, got {}",
        k * k,
        l.len()
    );
    ensure!(
        k <= MAX_ENUMERATED_UNITS,
        "exact inclusion probabilities enumerate all C(K, kn) subsets; K = {k} is above the limit of {MAX_ENUMERATED_UNITS}"
    );
    ensure!((1..=k).contains(&kn), "kn = {kn} kept units is outside 1..={k}");
    let mut joint = vec![0.0; k * k];
    let (mut total, mut largest) = (0.0, 0.0f64);
    for_each_subset(k, kn, |s| {
        let (d, diag) = subset_det(l, k, s);
        largest = largest.max(diag);
        total += d;
        for &i in s {
            for &j in s {
                joint[i * k + j] += d;
            }
        }
    });
    // Hadamard: det L_S ≤ Π L_ii, so a total this small means rank L < kn.
    ensure!(
        total > 1e-12 * largest && total.is_finite(),
        "the DPP kernel has rank below kn = {kn}: no {kn} units can be drawn"
    );
    Ok(joint.into_iter().map(|x| x / total).collect())
}

/// The block (teacher unit) of each student unit: argmax_n |R_in| (ties to the lower n).
pub fn teacher_blocks(op: &OrderParams) -> Vec<usize> {
    (0..op.k)
        .map(|i| {
            (0..op.m)
                .fold(0, |best, n| if op.r(i, n).abs() > op.r(i, best).abs() { n } else { best })
        })
        .collect()
}

/// Whether the units `kept` keep one unit per block, for `blocks` of `m` teacher units.
pub fn one_per_block(kept: &[usize], blocks: &[usize], m: usize) -> bool {
    let mut seen = vec![0usize; m];
    for &i in kept {
        seen[blocks[i]] += 1;
    }
    if kept.len() <= m {
        seen.iter().all(|&c| c <= 1)
    } else {
        seen.iter().all(|&c| c >= 1)
    }
}

/// C(a, kn)/C(k, kn) without overflow.
fn binomial_ratio(a: usize, k: usize, kn: usize) -> f64 {
    (0..kn).map(|t| (a as f64 - t as f64).max(0.0) / (k - t) as f64).product()
}

/// The exact probability that kn units drawn uniformly without replacement keep one per block:
/// e_kn(block sizes)/C(K, kn) for kn ≤ M, inclusion–exclusion over the missed blocks for kn > M
/// (`None` above 20 teacher units, where that sum has too many terms).
pub fn uniform_probability(blocks: &[usize], m: usize, kn: usize) -> Option<f64> {
    let k = blocks.len();
    if kn == 0 || kn > k {
        return Some(0.0);
    }
    let mut sizes = vec![0usize; m];
    blocks.iter().for_each(|&b| sizes[b] += 1);
    if kn <= m {
        // e_j(sizes) by the usual recursion; binomial_ratio(kn, K, kn) = 1/C(K, kn).
        let mut e = vec![0.0; kn + 1];
        e[0] = 1.0;
        for &c in &sizes {
            for j in (1..=kn).rev() {
                e[j] += e[j - 1] * c as f64;
            }
        }
        return Some(e[kn] * binomial_ratio(kn, k, kn));
    }
    if m > 20 {
        return None;
    }
    let sum = (0u32..1 << m)
        .map(|missed| {
            let left = k - (0..m).filter(|b| missed >> b & 1 == 1).map(|b| sizes[b]).sum::<usize>();
            let sign = if missed.count_ones() % 2 == 0 { 1.0 } else { -1.0 };
            sign * binomial_ratio(left, k, kn)
        })
        .sum();
    Some(sum)
}

/// The exact probability that a k-DPP with kernel `kernel` [K×K] keeps one unit per block, by
/// enumerating the C(K, kn) subsets (K ≤ 20).
pub fn dpp_probability(kernel: &[f64], blocks: &[usize], m: usize, kn: usize) -> Result<f64> {
    let k = blocks.len();
    ensure!(
        k <= MAX_ENUMERATED_UNITS,
        "K = {k} is above the enumeration limit of {MAX_ENUMERATED_UNITS}"
    );
    ensure!((1..=k).contains(&kn), "kn = {kn} kept units is outside 1..={k}");
    let (mut hit, mut all) = (0.0, 0.0);
    for_each_subset(k, kn, |s| {
        let d = subset_det(kernel, k, s).0;
        all += d;
        if one_per_block(s, blocks, m) {
            hit += d;
        }
    });
    ensure!(all > 0.0, "the k-DPP with kn = {kn} does not exist (the kernel's rank is below kn)");
    Ok(hit / all)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fraction of all kn-subsets that keep one per block, by enumeration.
    fn counted(blocks: &[usize], m: usize, kn: usize) -> f64 {
        let (mut hit, mut all) = (0.0, 0.0);
        for_each_subset(blocks.len(), kn, |s| {
            all += 1.0;
            hit += one_per_block(s, blocks, m) as u8 as f64;
        });
        hit / all
    }

    #[test]
    fn uniform_probabilities_match_counting() {
        let blocks = [0, 0, 1, 2, 1, 0, 2, 2, 0];
        for kn in 1..=blocks.len() {
            let p = uniform_probability(&blocks, 3, kn).unwrap();
            assert!((p - counted(&blocks, 3, kn)).abs() < 1e-12, "kn = {kn}: {p}");
        }
        // K = 6, M = 2, blocks of 3 and 3, kn = 2: 9 of the 15 pairs are split.
        let p = uniform_probability(&[0, 0, 0, 1, 1, 1], 2, 2).unwrap();
        assert!((p - 0.6).abs() < 1e-12, "{p}");
    }

    #[test]
    fn an_identity_kernel_is_uniform_and_a_block_kernel_is_not() {
        let blocks = [0, 0, 0, 1, 1, 1];
        let eye: Vec<f64> = (0..36).map(|x| (x / 6 == x % 6) as u8 as f64).collect();
        let p = dpp_probability(&eye, &blocks, 2, 2).unwrap();
        assert!((p - 0.6).abs() < 1e-12, "{p}");
        // Units of one block nearly parallel: pairs inside a block have det ≈ 0.
        let kernel: Vec<f64> = (0..36)
            .map(|x| match (x / 6, x % 6) {
                (i, j) if i == j => 1.0,
                (i, j) if blocks[i] == blocks[j] => 0.99,
                _ => 0.0,
            })
            .collect();
        let p = dpp_probability(&kernel, &blocks, 2, 2).unwrap();
        // det = 1 − 0.99² inside a block, 1 across: 9 / (9 + 6·0.0199).
        assert!((p - 9.0 / (9.0 + 6.0 * 0.0199)).abs() < 1e-9, "{p}");
    }

    #[test]
    fn blocks_follow_the_largest_overlap() {
        let op = OrderParams {
            k: 3,
            m: 2,
            q: vec![0.0; 9],
            r: vec![0.9, 0.1, -0.2, -0.7, 0.3, 0.3],
            t: vec![0.0; 4],
        };
        assert_eq!(teacher_blocks(&op), [0, 1, 0]);
        assert!(one_per_block(&[0, 1], &[0, 1, 0], 2));
        assert!(!one_per_block(&[0, 2], &[0, 1, 0], 2));
        assert!(one_per_block(&[0, 1, 2], &[0, 1, 0], 2));
    }
}
