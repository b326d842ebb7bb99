//! The two-layer "soft committee" network of the teacher-student setting (Goldt et al. 2019):
//! ŷ = Σ_k v_k g(w_k·x/√N) with g(u) = erf(u/√2), no biases. The same type holds the teacher
//! (K = M units, v = v*) and the student. Weights live in plain `f32` vectors because online SGD
//! updates them one sample at a time; tensors are made from them where batches are evaluated.
use anyhow::{ensure, Result};
use rand::Rng;
use rand_distr::StandardNormal;

/// g(u) = erf(u/√2).
#[inline]
pub fn g(u: f32) -> f32 {
    libm::erff(u * std::f32::consts::FRAC_1_SQRT_2)
}

/// g'(u) = √(2/π)·exp(−u²/2).
#[inline]
pub fn g_prime(u: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    SQRT_2_OVER_PI * (-0.5 * u * u).exp()
}

/// A two-layer network with `hidden` erf units over `input_dim` inputs.
///
/// # Shapes
/// `w`: [hidden, input_dim] row-major, `v`: [hidden].
#[derive(Clone, Debug, PartialEq)]
pub struct TwoLayer {
    pub input_dim: usize,
    pub hidden: usize,
    pub w: Vec<f32>,
    pub v: Vec<f32>,
}

impl TwoLayer {
    /// Checks that the weight vectors have the sizes their shape promises.
    pub fn new(input_dim: usize, hidden: usize, w: Vec<f32>, v: Vec<f32>) -> Result<Self> {
        ensure!(
            input_dim > 0 && hidden > 0,
            "a two-layer network needs input_dim > 0 and hidden > 0"
        );
        ensure!(
            w.len() == hidden * input_dim && v.len() == hidden,
            "weights of shape [{}] and [{}] do not fit a {hidden}×{input_dim} two-layer network",
            w.len(),
            v.len()
        );
        Ok(Self { input_dim, hidden, w, v })
    }

    /// First-layer weights N(0, 1); second layer N(0, 1) (`v = None`) or all equal to `v`.
    pub fn gaussian(input_dim: usize, hidden: usize, v: Option<f32>, rng: &mut impl Rng) -> Self {
        let w = (0..hidden * input_dim).map(|_| rng.sample(StandardNormal)).collect();
        let v = match v {
            Some(v) => vec![v; hidden],
            None => (0..hidden).map(|_| rng.sample(StandardNormal)).collect(),
        };
        Self { input_dim, hidden, w, v }
    }

    /// Row `k` of the first layer.
    pub fn row(&self, k: usize) -> &[f32] {
        &self.w[k * self.input_dim..(k + 1) * self.input_dim]
    }

    /// The output for one input vector.
    #[inline(always)]
    pub fn forward(&self, x: &[f32]) -> f32 {
        let scale = 1.0 / (self.input_dim as f32).sqrt();
        let mut out = 0.0;
        for k in 0..self.hidden {
            out += self.v[k] * g(dot(self.row(k), x) * scale);
        }
        out
    }

    /// Number of parameters (first and second layer).
    pub fn params_total(&self) -> usize {
        self.w.len() + self.v.len()
    }

    /// Number of parameters that are not exactly zero.
    pub fn params_nonzero(&self) -> usize {
        self.w.iter().chain(&self.v).filter(|&&p| p != 0.0).count()
    }

    /// A copy with every first-layer row rescaled to norm √N (so Q_ii = 1), as the reference does
    /// before pruning; all-zero rows stay zero.
    pub fn normalized_rows(&self) -> Self {
        let mut out = self.clone();
        let target = (self.input_dim as f64).sqrt();
        for row in out.w.chunks_exact_mut(self.input_dim) {
            let norm = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x = (*x as f64 * target / norm) as f32);
            }
        }
        out
    }

    /// True when every weight is finite.
    pub fn is_finite(&self) -> bool {
        self.w.iter().chain(&self.v).all(|p| p.is_finite())
    }
}

/// Accumulators of [`dot`].
const ACC: usize = 32;

/// Dot product with 32 independent accumulators (the tail zero-padded), so that the compiler
/// vectorises it at any width without reordering a sum: the result is the same bits with SSE2,
/// AVX2 or AVX-512.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; ACC];
    let mut add = |ca: &[f32], cb: &[f32]| {
        for i in 0..ACC {
            acc[i] += ca[i] * cb[i];
        }
    };
    let full = a.len() / ACC * ACC;
    for (ca, cb) in a[..full].chunks_exact(ACC).zip(b[..full].chunks_exact(ACC)) {
        add(ca, cb);
    }
    if full < a.len() {
        let (mut ta, mut tb) = ([0.0f32; ACC], [0.0f32; ACC]);
        ta[..a.len() - full].copy_from_slice(&a[full..]);
        tb[..a.len() - full].copy_from_slice(&b[full..a.len()]);
        add(&ta, &tb);
    }
    let mut width = ACC / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_and_derivative() {
        assert!((g(0.0)).abs() < 1e-7);
        // erf(1/√2) = P(|Z| < 1) = 0.682689...
        assert!((g(1.0) - 0.682_689_5).abs() < 1e-6);
        let h = 1e-3;
        for u in [-2.0f32, -0.3, 0.0, 0.7, 3.0] {
            let numeric = (g(u + h) - g(u - h)) / (2.0 * h);
            assert!((numeric - g_prime(u)).abs() < 1e-3, "g'({u})");
        }
    }

    #[test]
    fn dot_matches_naive_sum_for_all_tail_lengths() {
        for n in [1, 7, 8, 9, 31, 32, 33, 64, 500] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - naive).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn rejects_weights_of_the_wrong_size() {
        let err = TwoLayer::new(3, 2, vec![0.0; 5], vec![0.0; 2]).unwrap_err();
        assert!(err.to_string().contains("do not fit a 2×3"), "{err}");
    }
}
