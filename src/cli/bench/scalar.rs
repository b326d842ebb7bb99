//! The baseline of the teacher-student engine: the quickstart's maths written as the obvious
//! per-sample scalar code (one `rand_distr` normal per input, plain dot products, the update), with
//! no buffering or vectorisation. `prunelab bench scalar` times it; `scripts/bench-engine.sh`
//! compares it with the real run.
use crate::model::two_layer::{g, g_prime};
use crate::seed;
use rand::Rng;
use rand_distr::StandardNormal;

const N: usize = 500;
const M: usize = 2;
const K: usize = 6;
const V_STAR: f32 = 4.0;
const LR: f32 = 0.5;

/// `a·b` as one running sum (`unrolled`: eight running sums, which the CPU overlaps).
fn dot(a: &[f32], b: &[f32], unrolled: bool) -> f32 {
    if unrolled {
        crate::model::two_layer::dot(a, b)
    } else {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }
}

/// Draws one sample: the input into `x`, its label as the return value.
fn sample(rng: &mut seed::Rng, teacher: &[f32], x: &mut [f32], unrolled: bool) -> f32 {
    for xi in x.iter_mut() {
        *xi = rng.sample(StandardNormal);
    }
    let zeta: f32 = rng.sample(StandardNormal);
    let scale = 1.0 / (N as f32).sqrt();
    (0..M).map(|m| V_STAR * g(dot(&teacher[m * N..(m + 1) * N], x, unrolled) * scale)).sum::<f32>()
        + 0.0 * zeta
}

/// Trains a student for `steps` steps (N = 500, M = 2, K = 6, η = 0.5, σ = 0, seed 1), then
/// returns its empirical error on `test_samples` fresh samples. `unrolled` picks the dot product.
pub fn quickstart(steps: u64, test_samples: usize, unrolled: bool) -> f64 {
    let mut rng = seed::rng(1, "teacher");
    let teacher: Vec<f32> = (0..M * N).map(|_| rng.sample(StandardNormal)).collect();
    let mut rng = seed::rng(1, "student");
    let mut w: Vec<f32> = (0..K * N).map(|_| rng.sample(StandardNormal)).collect();
    let mut v: Vec<f32> = (0..K).map(|_| rng.sample(StandardNormal)).collect();
    let scale = 1.0 / (N as f32).sqrt();
    let mut x = vec![0.0f32; N];
    let mut lam = [0.0f32; K];
    let mut rng = seed::rng(1, "train");
    for _ in 0..steps {
        let y = sample(&mut rng, &teacher, &mut x, unrolled);
        for k in 0..K {
            lam[k] = dot(&w[k * N..(k + 1) * N], &x, unrolled) * scale;
        }
        let delta = (0..K).map(|k| v[k] * g(lam[k])).sum::<f32>() - y;
        for k in 0..K {
            let coef = LR * scale * delta * v[k] * g_prime(lam[k]);
            for (wi, xi) in w[k * N..(k + 1) * N].iter_mut().zip(&x) {
                *wi -= coef * xi;
            }
            v[k] -= LR / N as f32 * delta * g(lam[k]);
        }
    }
    let mut rng = seed::rng(1, "test");
    let mut sum = 0.0f64;
    for _ in 0..test_samples {
        let y = sample(&mut rng, &teacher, &mut x, unrolled);
        let y_hat: f32 =
            (0..K).map(|k| v[k] * g(dot(&w[k * N..(k + 1) * N], &x, unrolled) * scale)).sum();
        sum += 0.5 * ((y_hat - y) as f64).powi(2);
    }
    sum / test_samples.max(1) as f64
}
