//! Online SGD for the teacher-student setting (Goldt et al. 2019; paper §3).
//!
//! One fresh sample per step, batch 1, Δ = ŷ − y, both updates from the pre-step weights:
//! w_k ← w_k − (η/√N)·Δ·v_k·g'(λ_k)·x and v_k ← v_k − (η/N)·Δ·g(λ_k), λ_k = w_k·x/√N.
//! This is the closed form of the reference's rescaled-gradient SGD.
//!
//! Two engines run the same update on the same input stream:
//! * `Engine::Fused`: plain loops over `f32` slices on one CPU core. Per-sample work is tiny
//!   (K·N multiply-adds), so avoiding per-operation dispatch is what makes it fast.
//! * `Engine::Tensor(device)`: libtorch tensor operations on any device (CPU or CUDA).
//!
//! Inputs always come from the seeded Rust stream, so both engines see identical samples.
use crate::data::teacher::TeacherStream;
use crate::model::two_layer::{dot, g, g_prime, TwoLayer};
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// Samples generated and consumed per chunk; also how often progress and divergence are checked.
const CHUNK: usize = 1024;

/// Which implementation runs the SGD steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Engine {
    Fused,
    Tensor(Device),
}

/// What a training run reports.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub steps: u64,
    pub seconds: f64,
    /// Mean of ½Δ² over the last chunk of training samples (a running estimate of the error).
    pub recent_loss: f64,
}

/// One online SGD step on `net` with the fused CPU engine. `scratch` is space for 2K values
/// (λ_k, then g(λ_k)). Returns Δ = ŷ − y computed before the update.
#[inline(always)]
pub fn fused_step(net: &mut TwoLayer, x: &[f32], y: f32, lr: f32, scratch: &mut [f32]) -> f32 {
    let (n, hidden) = (net.input_dim, net.hidden);
    let (lam, gs) = scratch[..2 * hidden].split_at_mut(hidden);
    let inv_sqrt_n = 1.0 / (n as f32).sqrt();
    let mut y_hat = 0.0;
    for k in 0..hidden {
        lam[k] = dot(&net.w[k * n..(k + 1) * n], x) * inv_sqrt_n;
        gs[k] = g(lam[k]);
        y_hat += net.v[k] * gs[k];
    }
    let delta = y_hat - y;
    for k in 0..hidden {
        let coef = lr * inv_sqrt_n * delta * net.v[k] * g_prime(lam[k]);
        for (w, xi) in net.w[k * n..(k + 1) * n].iter_mut().zip(x) {
            *w -= coef * xi;
        }
        net.v[k] -= lr / n as f32 * delta * gs[k];
    }
    delta
}

/// The fused engine over a chunk of samples (`xs` row by row); returns Σ ½Δ².
#[inline(always)]
fn fused_chunk_body(
    net: &mut TwoLayer,
    xs: &[f32],
    ys: &[f32],
    lr: f32,
    scratch: &mut [f32],
) -> f64 {
    let mut sum = 0.0f64;
    for (x, &y) in xs.chunks_exact(net.input_dim).zip(ys) {
        let delta = fused_step(net, x, y, lr, scratch);
        sum += 0.5 * (delta as f64) * (delta as f64);
    }
    sum
}

crate::simd::widest!(
    /// [`fused_chunk_body`] with the widest instruction set this CPU has.
    fn fused_chunk(net: &mut TwoLayer, xs: &[f32], ys: &[f32], lr: f32, scratch: &mut [f32]) -> f64
        => fused_chunk_body
);

/// The student as tensors on a device, for the tensor engine.
pub struct TensorStudent {
    w: Tensor, // [K, N]
    v: Tensor, // [K]
    input_dim: usize,
}

impl TensorStudent {
    pub fn new(net: &TwoLayer, device: Device) -> Self {
        let w = Tensor::from_slice(&net.w)
            .view([net.hidden as i64, net.input_dim as i64])
            .to_device(device);
        let v = Tensor::from_slice(&net.v).to_device(device);
        Self { w, v, input_dim: net.input_dim }
    }

    /// One online SGD step on a single sample `x` [N] with label `y` [] (both on the device).
    pub fn step(&mut self, x: &Tensor, y: &Tensor, lr: f64) {
        let _guard = tch::no_grad_guard();
        let n = self.input_dim as f64;
        let lam = self.w.mv(x) / n.sqrt(); // [K]
        let g = (&lam * std::f64::consts::FRAC_1_SQRT_2).erf();
        let delta = g.dot(&self.v) - y; // []
        let g_prime = (&lam * &lam * -0.5).exp() * (2.0 / std::f64::consts::PI).sqrt();
        let coef = &self.v * &g_prime * &delta * (-lr / n.sqrt()); // [K]
        let dv = g * &delta * (-lr / n);
        let _ = self.w.addr_(&coef, x);
        let _ = self.v.g_add_(&dv);
    }

    pub fn to_two_layer(&self) -> Result<TwoLayer> {
        let w = Vec::<f32>::try_from(self.w.to_device(Device::Cpu).flatten(0, -1))?;
        let v = Vec::<f32>::try_from(self.v.to_device(Device::Cpu))?;
        TwoLayer::new(self.input_dim, v.len(), w, v)
    }
}

/// Trains `student` for `steps` online SGD steps on samples from `stream` with learning rate `lr`.
/// `on_chunk(steps_done, recent_loss)` is called after every chunk (for progress bars).
/// Fails, naming the step, when the weights stop being finite.
pub fn train(
    student: &mut TwoLayer,
    stream: &mut TeacherStream,
    steps: u64,
    lr: f64,
    engine: Engine,
    mut on_chunk: impl FnMut(u64, f64),
) -> Result<TrainReport> {
    let start = std::time::Instant::now();
    let n = student.input_dim;
    let mut xs = vec![0.0f32; CHUNK * n];
    let mut ys = vec![0.0f32; CHUNK];
    let mut scratch = vec![0.0f32; 2 * student.hidden];
    let mut tensor_student = match engine {
        Engine::Tensor(device) => Some((TensorStudent::new(student, device), device)),
        Engine::Fused => None,
    };
    let mut done = 0u64;
    let mut recent_loss = f64::NAN;
    while done < steps {
        let size = CHUNK.min((steps - done) as usize);
        stream.fill(&mut xs[..size * n], &mut ys[..size]);
        match &mut tensor_student {
            None => {
                let sum =
                    fused_chunk(student, &xs[..size * n], &ys[..size], lr as f32, &mut scratch);
                recent_loss = sum / size as f64;
            }
            Some((ts, device)) => {
                let x_chunk = Tensor::from_slice(&xs[..size * n])
                    .view([size as i64, n as i64])
                    .to_device(*device);
                let y_chunk = Tensor::from_slice(&ys[..size]).to_device(*device);
                let _guard = tch::no_grad_guard();
                // The chunk's loss is measured before its updates, with the weights at its start.
                let lam = x_chunk.matmul(&ts.w.tr()) / (n as f64).sqrt();
                let out = (lam * std::f64::consts::FRAC_1_SQRT_2).erf().mv(&ts.v);
                recent_loss =
                    ((out - &y_chunk).square().mean(Kind::Double) * 0.5).double_value(&[]);
                for i in 0..size as i64 {
                    ts.step(&x_chunk.get(i), &y_chunk.get(i), lr);
                }
            }
        }
        done += size as u64;
        if let Some((ts, _)) = &tensor_student {
            if done >= steps || !recent_loss.is_finite() {
                *student = ts.to_two_layer()?;
            }
        }
        if !recent_loss.is_finite() || !student.is_finite() {
            bail!(
                "online SGD diverged by step {done}: the error is no longer finite (a smaller learning rate may help)"
            );
        }
        on_chunk(done, recent_loss);
    }
    Ok(TrainReport { steps: done, seconds: start.elapsed().as_secs_f64(), recent_loss })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn every_instruction_set_gives_the_same_weights() {
        let teacher = TwoLayer::gaussian(100, 2, Some(4.0), &mut seed::rng(2, "teacher"));
        let start = TwoLayer::gaussian(100, 3, None, &mut seed::rng(2, "student"));
        let (xs, ys) = TeacherStream::new(&teacher, 0.1, seed::rng(2, "train")).take(500);
        let mut scratch = vec![0.0; 6];
        let (mut widest, mut portable) = (start.clone(), start.clone());
        let a = fused_chunk(&mut widest, &xs, &ys, 0.5, &mut scratch);
        let b = fused_chunk_body(&mut portable, &xs, &ys, 0.5, &mut scratch);
        assert_ne!(widest, start);
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(widest, portable);
    }
}
