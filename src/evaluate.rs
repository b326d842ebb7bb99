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
        column_means(&self.losses(net).unsqueeze(1))[0]
    }

    /// ε̂ for many networks of the same shape at once (one matmul per group of networks).
    pub fn ge_empirical_many(&self, nets: &[TwoLayer]) -> Vec<f64> {
        let Some(first) = nets.first() else { return Vec::new() };
        let _guard = tch::no_grad_guard();
        let device = self.x.device();
        let (samples, k, n) = (self.x.size()[0], first.hidden as i64, first.input_dim as i64);
        // Keep the [samples, group·K] pre-activations around 64 MB.
        let group = ((16_000_000 / (samples * k).max(1)) as usize).clamp(1, nets.len());
        let mut out = Vec::with_capacity(nets.len());
        for chunk in nets.chunks(group) {
            let s = chunk.len() as i64;
            let w: Vec<f32> = chunk.iter().flat_map(|net| net.w.iter().copied()).collect();
            let v: Vec<f32> = chunk.iter().flat_map(|net| net.v.iter().copied()).collect();
            let w = Tensor::from_slice(&w).view([s * k, n]).to_device(device);
            let v = Tensor::from_slice(&v).view([1, s, k]).to_device(device);
            let lam = self.x.matmul(&w.tr()) / (n as f64).sqrt(); // [samples, s·K]
            let g = (lam * std::f64::consts::FRAC_1_SQRT_2).erf().view([samples, s, k]);
            let y_hat = (g * v).sum_dim_intlist(-1, false, Kind::Float); // [samples, s]
            let err = (y_hat - self.y.unsqueeze(1)).to_kind(Kind::Double).square() * 0.5;
            out.extend(column_means(&err));
        }
        out
    }

    /// The activations g(X wᵀ/√N) of `net`'s units on the test inputs ([samples, K]).
    pub fn activations(&self, net: &TwoLayer) -> Tensor {
        let _guard = tch::no_grad_guard();
        let w = Tensor::from_slice(&net.w)
            .view([net.hidden as i64, net.input_dim as i64])
            .to_device(self.x.device());
        (self.x.matmul(&w.tr()) / (net.input_dim as f64).sqrt() * std::f64::consts::FRAC_1_SQRT_2)
            .erf()
    }

    /// ε̂ for networks that share the first layer whose `activations` are given (units removed by
    /// node pruning output g(0) = 0, so only the second layers `vs` differ): one cheap product.
    pub fn ge_empirical_from_activations(&self, activations: &Tensor, vs: &[Vec<f32>]) -> Vec<f64> {
        if vs.is_empty() {
            return Vec::new();
        }
        let _guard = tch::no_grad_guard();
        let flat: Vec<f32> = vs.iter().flatten().copied().collect();
        let v = Tensor::from_slice(&flat).view([vs.len() as i64, -1]).to_device(self.x.device()); // [S, K]
        let y_hat = activations.matmul(&v.tr()); // [samples, S]
        column_means(&((y_hat - self.y.unsqueeze(1)).to_kind(Kind::Double).square() * 0.5))
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

/// Means of the columns of a [samples, S] f64 tensor, summed in sample order on the CPU: unlike
/// libtorch's threaded reductions, the result does not depend on the number of threads, so runs
/// under `--jobs` and on other machines agree to the last bit.
fn column_means(values: &Tensor) -> Vec<f64> {
    let (rows, cols) = (values.size()[0] as usize, values.size()[1] as usize);
    let flat = Vec::<f64>::try_from(values.to_device(Device::Cpu).contiguous().flatten(0, -1))
        .expect("f64 values");
    let mut sums = vec![0.0f64; cols];
    for row in flat.chunks_exact(cols.max(1)) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    sums.into_iter().map(|s| s / rows.max(1) as f64).collect()
}

/// The analytic generalisation error ε of `net` against `teacher` (noise-free).
pub fn ge_theory(net: &TwoLayer, teacher: &TwoLayer) -> Result<f64> {
    let op = OrderParams::new(net, teacher)?;
    let v: Vec<f64> = net.v.iter().map(|&x| x as f64).collect();
    let v_star: Vec<f64> = teacher.v.iter().map(|&x| x as f64).collect();
    Ok(generalisation_error(&op, &v, &v_star))
}
