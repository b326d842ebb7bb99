//! Selection primitives shared by every network: uniform subsets and top-k by score (k-DPP
//! subsets come from `dpp::sampler::KDpp::sample`).
//! All return sorted indices; all randomness comes from the caller's generator.
use super::RandomVariant;
use rand::seq::index::sample;
use rand::Rng;

/// k of n items uniformly (`Exact`), or each with probability k/n (`Bernoulli`).
pub fn random_subset(n: usize, k: usize, variant: RandomVariant, rng: &mut impl Rng) -> Vec<usize> {
    let mut chosen = match variant {
        RandomVariant::Exact => sample(rng, n, k.min(n)).into_vec(),
        RandomVariant::Bernoulli => {
            let p = k as f64 / n as f64;
            (0..n).filter(|_| rng.gen::<f64>() < p).collect()
        }
    };
    chosen.sort_unstable();
    chosen
}

/// The k items with the largest scores (ties go to the lower index).
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = order.into_iter().take(k).collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn exact_random_subsets_have_k_distinct_items() {
        let mut rng = seed::rng(1, "t");
        for k in [0, 1, 5, 10] {
            let s = random_subset(10, k, RandomVariant::Exact, &mut rng);
            assert_eq!(s.len(), k);
            assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|&i| i < 10));
        }
    }

    #[test]
    fn bernoulli_subsets_have_k_items_on_average() {
        let mut rng = seed::rng(2, "t");
        let total: usize = (0..2000)
            .map(|_| random_subset(100, 30, RandomVariant::Bernoulli, &mut rng).len())
            .sum();
        let mean = total as f64 / 2000.0;
        assert!((mean - 30.0).abs() < 0.5, "{mean}");
    }

    #[test]
    fn top_k_picks_the_largest() {
        assert_eq!(top_k(&[0.1, 3.0, -5.0, 2.0, 3.0], 3), [1, 3, 4]);
        assert_eq!(top_k(&[1.0, 1.0, 1.0], 2), [0, 1]);
    }
}
