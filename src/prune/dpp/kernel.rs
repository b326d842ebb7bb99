//! DPP kernels, in f64, from second moments of a layer's inputs.
//!
//! With C the inputs' second-moment matrix (D×D: XᵀX/n, or XᵀX summed for the reference's real-data
//! RBF) and W [H, D] the layer:
//! * node kernel over units, from the units' pre-activation vectors a_h = X w_h:
//!   linear L = W C Wᵀ (the reference's teacher-student kernel, ∝ N·Q);
//!   RBF L_hg = exp(−β‖a_h − a_g‖²) + ε·δ_hg with ‖a_h − a_g‖² = (w_h − w_g)ᵀ C (w_h − w_g);
//! * edge kernel over the inputs of unit h, from the weight-scaled input columns a_j = w_hj X_j:
//!   linear L = diag(w_h) C diag(w_h); RBF with ‖a_j − a_l‖² = w_j²C_jj + w_l²C_ll − 2w_jw_lC_jl.
//!
//! Only C is needed, never the n×D data, which makes `dpp_edge` on wide layers practical.
use super::sampler::KDpp;
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum KernelKind {
    Linear,
    Rbf { beta: f64, epsilon: f64 },
}

/// Second moments of a layer's inputs.
pub enum InputMoments {
    /// C = I (standard Gaussian inputs, the teacher-student setting, exactly).
    Identity(usize),
    /// A D×D f64 matrix on the CPU.
    Gram(Tensor),
}

impl InputMoments {
    /// The same moments, sharing the tensor's storage (for another thread).
    pub fn shallow_clone(&self) -> Self {
        match self {
            InputMoments::Identity(d) => InputMoments::Identity(*d),
            InputMoments::Gram(c) => InputMoments::Gram(c.shallow_clone()),
        }
    }

    /// The same moments on `device` (shared, not copied, when they are already there).
    pub fn to_device(&self, device: tch::Device) -> Self {
        match self {
            InputMoments::Identity(d) => InputMoments::Identity(*d),
            InputMoments::Gram(c) => InputMoments::Gram(c.to_device(device)),
        }
    }
}

/// The node kernel [H, H] for W [H, D] (f64).
pub fn node_kernel(weight: &Tensor, moments: &InputMoments, kind: KernelKind) -> Tensor {
    let w = weight.to_kind(Kind::Double);
    let m = match moments {
        InputMoments::Identity(_) => w.matmul(&w.tr()),
        InputMoments::Gram(c) => w.matmul(c).matmul(&w.tr()),
    };
    match kind {
        KernelKind::Linear => m,
        KernelKind::Rbf { beta, epsilon } => rbf_from_inner_products(&m, beta, epsilon),
    }
}

/// The edge kernel [D, D] of one unit with incoming weights `row` [D] (f64), on `row`'s device
/// (the moments must be there too).
pub fn edge_kernel(row: &Tensor, moments: &InputMoments, kind: KernelKind) -> Tensor {
    let w = row.to_kind(Kind::Double);
    let mut m = match moments {
        InputMoments::Identity(_) => Tensor::diag_embed(&w.square(), 0, -2, -1),
        InputMoments::Gram(c) => {
            let mut m = c * w.unsqueeze(1);
            m *= w.unsqueeze(0);
            m
        }
    };
    match kind {
        KernelKind::Linear => m,
        KernelKind::Rbf { beta, epsilon } => {
            // As `rbf_from_inner_products`, in place: a CIFAR-sized kernel is 75 MB, and
            // each temporary would cost a pass over fresh memory (the same bits: −2M is exact).
            let diag = m.diagonal(0, 0, 1);
            let mut d2 = diag.unsqueeze(1) + diag.unsqueeze(0);
            m *= -2.0;
            d2 += m;
            let _ = d2.clamp_min_(0.0);
            d2 *= -beta;
            let _ = d2.exp_();
            let _ = d2.diagonal(0, 0, 1).g_add_scalar_(epsilon);
            d2
        }
    }
}

/// exp(−β d²) + εI with d²_ij = M_ii + M_jj − 2M_ij (clamped at 0).
fn rbf_from_inner_products(m: &Tensor, beta: f64, epsilon: f64) -> Tensor {
    let diag = m.diagonal(0, 0, 1);
    let d2 = (diag.unsqueeze(1) + diag.unsqueeze(0) - m * 2.0).clamp_min(0.0);
    let n = m.size()[0];
    (d2 * -beta).exp() + Tensor::eye(n, (Kind::Double, m.device())) * epsilon
}

/// Eigendecomposes a symmetric kernel, on the device it is on (cuSOLVER for a CUDA tensor),
/// into a reusable k-DPP sampler, which always lives on the CPU.
pub fn decompose(kernel: &Tensor) -> Result<KDpp> {
    let kernel = kernel.to_kind(Kind::Double);
    let n = kernel.size()[0] as usize;
    ensure!(
        kernel.size() == [n as i64, n as i64],
        "a DPP kernel must be square, got {:?}",
        kernel.size()
    );
    let mut symmetric = &kernel + kernel.tr();
    symmetric *= 0.5;
    let (values, vectors) =
        symmetric.f_linalg_eigh("L").context("eigendecomposition of a DPP kernel failed")?;
    let cpu = |t: Tensor| t.to_device(tch::Device::Cpu).contiguous().flatten(0, -1);
    let values = Vec::<f64>::try_from(cpu(values))?;
    let vectors = Vec::<f64>::try_from(cpu(vectors))?;
    KDpp::new(n, values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_kernels_follow_the_formulas() {
        let w = Tensor::from_slice(&[1.0f64, 2.0, 0.0, -1.0, 1.0, 1.0]).view([2, 3]);
        let c = Tensor::from_slice(&[2.0f64, 0.5, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 3.0]).view([3, 3]);
        let node = node_kernel(&w, &InputMoments::Gram(c.shallow_clone()), KernelKind::Linear);
        let expected = w.matmul(&c).matmul(&w.tr());
        assert!(node.allclose(&expected, 1e-12, 1e-12, false));
        let edge = edge_kernel(&w.get(0), &InputMoments::Gram(c), KernelKind::Linear);
        // diag(w) C diag(w) with w = (1, 2, 0)
        assert_eq!(edge.double_value(&[0, 1]), 1.0 * 0.5 * 2.0);
        assert_eq!(edge.double_value(&[1, 1]), 4.0);
        assert_eq!(edge.double_value(&[2, 2]), 0.0);
        let identity = edge_kernel(&w.get(1), &InputMoments::Identity(3), KernelKind::Linear);
        assert_eq!(Vec::<f64>::try_from(identity.diagonal(0, 0, 1)).unwrap(), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn edge_rbf_kernel_is_bitwise_the_formula() {
        // The in-place construction must give exactly exp(−β d²) + εI.
        tch::manual_seed(3);
        let x = Tensor::randn([50, 20], (Kind::Double, tch::Device::Cpu));
        let c = x.tr().matmul(&x);
        let w = Tensor::randn([20], (Kind::Double, tch::Device::Cpu));
        let (beta, epsilon) = (0.3, 0.01);
        let kind = KernelKind::Rbf { beta, epsilon };
        let built = edge_kernel(&w, &InputMoments::Gram(c.shallow_clone()), kind);
        let m = &c * w.unsqueeze(1) * w.unsqueeze(0);
        assert!(built.equal(&rbf_from_inner_products(&m, beta, epsilon)));
        let identity = edge_kernel(&w, &InputMoments::Identity(20), kind);
        let m = Tensor::diag_embed(&w.square(), 0, -2, -1);
        assert!(identity.equal(&rbf_from_inner_products(&m, beta, epsilon)));
    }

    #[test]
    fn rbf_kernel_uses_distances_of_the_activation_vectors() {
        // With C = I, ‖a_h − a_g‖² = ‖w_h − w_g‖².
        let w = Tensor::from_slice(&[0.0f64, 0.0, 3.0, 4.0]).view([2, 2]);
        let l = node_kernel(
            &w,
            &InputMoments::Identity(2),
            KernelKind::Rbf { beta: 0.1, epsilon: 0.01 },
        );
        assert!((l.double_value(&[0, 1]) - (-2.5f64).exp()).abs() < 1e-12);
        assert!((l.double_value(&[0, 0]) - 1.01).abs() < 1e-12);
    }
}
