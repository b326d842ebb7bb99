//! Writes the model fixtures in `models/` that the tests read (`tests/models.rs`):
//!
//! * `tiny-mlp.pt`, `tiny-mlp.safetensors`: a 16-16-8-3 sigmoid MLP trained on the tiny
//!   MNIST-format dataset of `tests/common::tiny_idx_dataset(dir, 60)` (60 4×4 images, pixel i of
//!   image k = (7k + 13i) mod 256, label k mod 3, normalised as MNIST: (x/255 − 0.1307)/0.3081),
//!   as TorchScript (an `nn.Sequential`, what `torch.jit.script` saves) and as prunelab's
//!   safetensors;
//! * `not-an-mlp.pt`: the same layers, but a forward with a skip connection around the first
//!   layer, act(W₁x + b₁) + x: a TorchScript module that looks like an MLP and is not one;
//! * `traced-function.pt`: the MLP traced as a function by `CModule::create_by_tracing`, whose
//!   weights become graph constants: a module without parameters.
//!
//! Regenerate with `cargo run --release --example make_fixtures` (from the repository root).
use anyhow::Result;
use prunelab::model::io::save_mlp;
use prunelab::model::mlp::{Activation, Mlp};
use prunelab::model::torchscript;
use prunelab::seed;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    std::fs::create_dir_all(&dir)?;
    let n = 60i64;
    let pixels: Vec<f32> = (0..n * 16)
        .map(|j| (((j / 16) * 7 + (j % 16) * 13) % 256) as f32 / 255.0)
        .map(|x| (x - 0.1307) / 0.3081)
        .collect();
    let x = Tensor::from_slice(&pixels).view([n, 16]);
    let y = Tensor::from_slice(&(0..n).map(|k| k % 3).collect::<Vec<i64>>());

    let mut mlp =
        Mlp::xavier(&[16, 16, 8, 3], Activation::Sigmoid, &mut seed::rng(1, "init"), Device::Cpu)?;
    let steps = 3000;
    adam(&mut mlp, &x, &y, steps, 1e-2);
    println!(
        "tiny MLP: training error {:.3} after {steps} full-batch Adam steps",
        mlp.error_rate(&x, &y)
    );

    std::fs::write(dir.join("tiny-mlp.pt"), torchscript::encode(&mlp)?)?;
    save_mlp(&mlp, &dir.join("tiny-mlp.safetensors"))?;
    std::fs::write(
        dir.join("not-an-mlp.pt"),
        torchscript::encode_custom(
            &mlp,
            "SkipConnection",
            &[
                "h = torch.add((_1).forward((_0).forward(input, ), ), input)",
                "return (_4).forward((_3).forward((_2).forward(h, ), ), )",
            ],
        )?,
    )?;
    let traced = tch::CModule::create_by_tracing(
        "TracedFunction",
        "forward",
        &[Tensor::zeros([1, 16], (Kind::Float, Device::Cpu))],
        &mut |inputs: &[Tensor]| vec![mlp.forward(&inputs[0])],
    )?;
    traced.save(dir.join("traced-function.pt"))?;
    for name in ["tiny-mlp.pt", "tiny-mlp.safetensors", "not-an-mlp.pt", "traced-function.pt"] {
        println!("wrote models/{name} ({} bytes)", std::fs::metadata(dir.join(name))?.len());
    }
    Ok(())
}

/// Full-batch Adam (β = 0.9, 0.999) on the cross-entropy: this tiny set is hard for plain SGD.
fn adam(mlp: &mut Mlp, x: &Tensor, y: &Tensor, steps: usize, lr: f64) {
    let params: Vec<Tensor> =
        mlp.weights.iter().chain(&mlp.biases).map(|p| p.set_requires_grad(true)).collect();
    let mut m: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    let mut v: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    for t in 1..=steps {
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        mlp.forward(x).cross_entropy_for_logits(y).backward();
        let _guard = tch::no_grad_guard();
        let (c1, c2) = (1.0 - 0.9f64.powi(t as i32), 1.0 - 0.999f64.powi(t as i32));
        for ((p, m), v) in params.iter().zip(&mut m).zip(&mut v) {
            let g = p.grad();
            *m = &*m * 0.9 + &g * 0.1;
            *v = &*v * 0.999 + g.square() * 0.001;
            let step = (&*m / c1) / ((&*v / c2).sqrt() + 1e-8) * lr;
            let _ = p.shallow_clone().g_sub_(&step);
        }
    }
    mlp.weights = mlp.weights.iter().map(|w| w.detach().copy()).collect();
    mlp.biases = mlp.biases.iter().map(|b| b.detach().copy()).collect();
}
