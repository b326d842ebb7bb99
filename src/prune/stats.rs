//! The statistics a layer is pruned with: second moments of its inputs (DPP kernels, edge
//! re-fitting), of its pre-activations and of its activations (node reweighting). Each source of
//! networks supplies them its own way:
//! * teacher-student students, exactly: the inputs are standard Gaussian (C = I), the
//!   pre-activations λ = Wx/√N have E[λλᵀ] = Q = WWᵀ/N, and the erf activations
//!   E[g(λ_i)g(λ_k)] = (2/π)·asin(Q_ik/√((1+Q_ii)(1+Q_kk))) ([`LayerStats::exact_gaussian`]);
//! * MLPs, from data: Gram matrices summed over calibration samples, so that wide layers stay
//!   practical: G = XᵀX of the layer's inputs [D, D] and the [H, H] Gram matrices of its
//!   pre-activations and activations ([`LayerStats::calibrate`]).
use super::budget::LayerShape;
use super::dpp::kernel::InputMoments;
use crate::model::mlp::Mlp;
use anyhow::{ensure, Result};
use tch::{Device, Kind, Tensor};

/// Second moments of one layer (f64, CPU).
pub struct LayerStats {
    /// C, the inputs' second moments [D, D] (or the identity).
    pub inputs: InputMoments,
    /// The pre-activations' second moments [H, H] (needed only by `reweight_variant: as_coded`).
    pub pre_activations: Option<Tensor>,
    /// The activations' second moments [H, H].
    pub activations: Tensor,
}

impl LayerStats {
    /// The exact moments of erf units g(w·x/√N) on standard Gaussian inputs, for W [H, N].
    pub fn exact_gaussian(weight: &Tensor) -> Self {
        let w = weight.to_device(Device::Cpu).to_kind(Kind::Double);
        let n = w.size()[1];
        let q = w.matmul(&w.tr()) / n as f64;
        let activations = erf_activation_moments(&q);
        Self { inputs: InputMoments::Identity(n as usize), pre_activations: Some(q), activations }
    }

    /// Gram matrices of linear layer `layer` (0-based) of `mlp` over the network inputs `x`.
    /// `include_bias`: the pre-activations are XWᵀ + b (what the network computes) rather than the
    /// reference's bias-free XWᵀ. `with_pre_activations`: also their Gram matrix.
    pub fn calibrate(
        mlp: &Mlp,
        layer: usize,
        x: &Tensor,
        include_bias: bool,
        with_pre_activations: bool,
    ) -> Result<Self> {
        let n = x.size()[0];
        ensure!(
            n > 0,
            "the calibration set is empty: pruning needs training samples for its statistics"
        );
        let _guard = tch::no_grad_guard();
        let (w, b) = (&mlp.weights[layer], &mlp.biases[layer]);
        let (h, d) = (w.size()[0], w.size()[1]);
        let zeros = |m| Tensor::zeros([m, m], (Kind::Double, Device::Cpu));
        let (mut inputs, mut pre_gram, mut activations) = (zeros(d), zeros(h), zeros(h));
        for start in (0..n).step_by(10_000) {
            let chunk = mlp.layer_input(&x.narrow(0, start, 10_000.min(n - start)), layer);
            let pre = if include_bias {
                chunk.linear(w, Some(b))
            } else {
                chunk.linear::<&Tensor>(w, None)
            };
            let a = mlp.activation.apply(&pre).to_kind(Kind::Double).to_device(Device::Cpu);
            let chunk = chunk.to_kind(Kind::Double).to_device(Device::Cpu);
            inputs += chunk.tr().matmul(&chunk);
            activations += a.tr().matmul(&a);
            if with_pre_activations {
                let pre = pre.to_kind(Kind::Double).to_device(Device::Cpu);
                pre_gram += pre.tr().matmul(&pre);
            }
        }
        let pre_activations = with_pre_activations.then_some(pre_gram);
        Ok(Self { inputs: InputMoments::Gram(inputs), pre_activations, activations })
    }

    /// Refuses moments whose sizes do not fit `shape`.
    pub fn check(&self, shape: LayerShape) -> Result<()> {
        let inputs = match &self.inputs {
            InputMoments::Identity(d) => *d as i64,
            InputMoments::Gram(c) => c.size()[0],
        };
        ensure!(
            inputs == shape.inputs as i64
                && self.activations.size() == [shape.hidden as i64; 2]
                && self.pre_activations.as_ref().is_none_or(|p| p.size() == [shape.hidden as i64; 2]),
            "the moments are for {inputs} inputs and {:?} units, the layer has {} inputs and {} units",
            self.activations.size(),
            shape.inputs,
            shape.hidden
        );
        Ok(())
    }
}

/// E[g(λ_i)g(λ_k)] = (2/π)·asin(Q_ik/√((1+Q_ii)(1+Q_kk))) for g(u) = erf(u/√2), λ ~ N(0, Q).
pub fn erf_activation_moments(q: &Tensor) -> Tensor {
    let d = q.diagonal(0, 0, 1) + 1.0;
    let denom = (d.unsqueeze(1) * d.unsqueeze(0)).sqrt();
    (q / denom).clamp(-1.0, 1.0).asin() * (2.0 / std::f64::consts::PI)
}
