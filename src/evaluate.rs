//! Evaluation of teacher-student networks: the empirical error ε̂ = ½·mean (ŷ − y)² on a held-out
//! test set drawn from the teacher (noisy labels when σ > 0, so E[ε̂] = ε + σ²/2), and the analytic
//! error ε from the order parameters. The test set is drawn once per run from its own seeded stream
//! and evaluated with libtorch on the run's device.
use crate::data::teacher::TeacherStream;
use crate::model::two_layer::TwoLayer;
use crate::theory::{ge::generalisation_error, order_params::OrderParams};
use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// Test inputs and labels on a device.
///
/// # Shapes
/// `x`: [samples, N], `y`: [samples].
pub struct TestSet {
    pub x: Tensor,
    pub y: Tensor,
}

impl TestSet {
    /// Draws `samples` labelled samples from `stream` onto `device`.
    pub fn draw(stream: &mut TeacherStream, samples: usize, device: Device) -> Self {
        let (xs, ys) = stream.take(samples);
        let x = Tensor::from_slice(&xs).view([samples as i64, -1]).to_device(device);
        let y = Tensor::from_slice(&ys).to_device(device);
        Self { x, y }
    }

    /// ε̂ = ½·mean over the test set of (ŷ − y)² for `net`.
    pub fn ge_empirical(&self, net: &TwoLayer) -> f64 {
        self.losses(net).mean(Kind::Double).double_value(&[])
    }

    /// The per-sample losses ½(ŷ − y)² ([samples], f64).
    pub fn losses(&self, net: &TwoLayer) -> Tensor {
        let _guard = tch::no_grad_guard();
        let device = self.x.device();
        let w = Tensor::from_slice(&net.w)
            .view([net.hidden as i64, net.input_dim as i64])
            .to_device(device);
        let v = Tensor::from_slice(&net.v).to_device(device);
        let lam = self.x.matmul(&w.tr()) / (net.input_dim as f64).sqrt();
        let y_hat = (lam * std::f64::consts::FRAC_1_SQRT_2).erf().mv(&v);
        (y_hat - &self.y).to_kind(Kind::Double).square() * 0.5
    }
}

/// The analytic generalisation error ε of `net` against `teacher` (noise-free).
pub fn ge_theory(net: &TwoLayer, teacher: &TwoLayer) -> Result<f64> {
    let op = OrderParams::new(net, teacher)?;
    let v: Vec<f64> = net.v.iter().map(|&x| x as f64).collect();
    let v_star: Vec<f64> = teacher.v.iter().map(|&x| x as f64).collect();
    Ok(generalisation_error(&op, &v, &v_star))
}
