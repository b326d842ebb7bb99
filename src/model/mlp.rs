//! Multi-layer perceptrons for classification: Linear layers (with bias) and an element-wise
//! activation after every hidden layer, as the paper's MNIST 784-500-500-10 and CIFAR
//! 3072-1000-1000-1000-10 sigmoid networks. Weights are plain tensors, so pruned
//! and reweighted copies are cheap to make; `train::minibatch` trains them.
use anyhow::{ensure, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The hidden-layer activation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The logistic function (the paper's "sigmoid").
    #[default]
    Sigmoid,
    Relu,
    Tanh,
    /// PyTorch's `nn.GELU()` (the exact, erf-based form).
    Gelu,
    /// `nn.SiLU()`: x·sigmoid(x).
    Silu,
    /// `nn.LeakyReLU()` with its default negative slope 0.01.
    LeakyRelu,
}

/// The negative slope of `Activation::LeakyRelu` (PyTorch's default).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

impl Activation {
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Sigmoid => x.sigmoid(),
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu("none"),
            Activation::Silu => x.silu(),
            Activation::LeakyRelu => x.leaky_relu(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::LeakyRelu => "leaky_relu",
        }
    }

    /// Every activation, in the order TorchScript detection tries them.
    pub const ALL: [Activation; 6] = [
        Activation::Sigmoid,
        Activation::Relu,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::LeakyRelu,
    ];
}

/// An MLP.
///
/// # Shapes
/// `weights[l]`: [out_l, in_l] (PyTorch's `nn.Linear` layout), `biases[l]`: [out_l].
#[derive(Debug)]
pub struct Mlp {
    pub weights: Vec<Tensor>,
    pub biases: Vec<Tensor>,
    pub activation: Activation,
}

impl Clone for Mlp {
    fn clone(&self) -> Self {
        Self {
            weights: self.weights.iter().map(|w| w.copy()).collect(),
            biases: self.biases.iter().map(|b| b.copy()).collect(),
            activation: self.activation,
        }
    }
}

impl Mlp {
    /// Xavier-uniform weights (gain 1) and zero biases, as the reference's models; drawn from
    /// `rng` so that runs are reproducible whatever else uses libtorch's generator.
    pub fn xavier(
        sizes: &[usize],
        activation: Activation,
        rng: &mut impl Rng,
        device: Device,
    ) -> Result<Self> {
        ensure!(
            sizes.len() >= 2 && sizes.iter().all(|&s| s > 0),
            "an MLP needs at least two positive layer sizes, got {sizes:?}"
        );
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
            let w: Vec<f32> = (0..fan_in * fan_out).map(|_| rng.gen_range(-bound..bound)).collect();
            weights.push(
                Tensor::from_slice(&w).view([fan_out as i64, fan_in as i64]).to_device(device),
            );
            biases.push(Tensor::zeros([fan_out as i64], (Kind::Float, device)));
        }
        Ok(Self { weights, biases, activation })
    }

    /// Layer sizes, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.weights[0].size()[1] as usize];
        sizes.extend(self.weights.iter().map(|w| w.size()[0] as usize));
        sizes
    }

    /// Logits for inputs `x` [n, in].
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.weights.len() - 1;
        let mut h = x.shallow_clone();
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            h = h.linear(w, Some(b));
            if l < last {
                h = self.activation.apply(&h);
            }
        }
        h
    }

    /// The inputs that reach linear layer `layer` (0-based): `x` itself for layer 0, otherwise
    /// the previous hidden layer's activations.
    pub fn layer_input(&self, x: &Tensor, layer: usize) -> Tensor {
        let mut h = x.shallow_clone();
        for (w, b) in self.weights.iter().zip(&self.biases).take(layer) {
            h = self.activation.apply(&h.linear(w, Some(b)));
        }
        h
    }

    /// Classification error (a fraction) on `x`, `y`, evaluated in batches without gradients.
    pub fn error_rate(&self, x: &Tensor, y: &Tensor) -> f64 {
        let _guard = tch::no_grad_guard();
        let n = x.size()[0];
        let mut wrong = 0i64;
        for start in (0..n).step_by(10_000) {
            let len = 10_000.min(n - start);
            let predicted = self.forward(&x.narrow(0, start, len)).argmax(-1, false);
            wrong +=
                predicted.ne_tensor(&y.narrow(0, start, len)).sum(Kind::Int64).int64_value(&[]);
        }
        wrong as f64 / n.max(1) as f64
    }

    /// Number of weights and biases.
    pub fn params_total(&self) -> usize {
        self.weights.iter().chain(&self.biases).map(|t| t.numel()).sum()
    }

    /// Number of weights and biases that are not zero.
    pub fn params_nonzero(&self) -> usize {
        self.weights
            .iter()
            .chain(&self.biases)
            .map(|t| t.count_nonzero(None::<i64>).int64_value(&[]) as usize)
            .sum()
    }
}
