//! Minibatch SGD with momentum for classification MLPs (cross-entropy loss), on any device.
//! The update is PyTorch's `optim.SGD` (dampening 0, no weight decay): v ← μv + ∇, p ← p − ηv.
//! Shuffling draws its permutations from a seeded stream, so training is reproducible.
use crate::model::mlp::Mlp;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use tch::Tensor;

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub shuffle: bool,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub test_error: f64,
    pub seconds: f64,
}

/// Trains `mlp` in place; `on_epoch` receives each epoch's report (after a test evaluation), and
/// `on_batch(done, total)` the progress within the epoch. Fails, naming the epoch, when the loss
/// stops being finite.
pub fn train(
    mlp: &mut Mlp,
    (train_x, train_y): (&Tensor, &Tensor),
    (test_x, test_y): (&Tensor, &Tensor),
    sgd: &Sgd,
    rng: &mut impl Rng,
    mut on_epoch: impl FnMut(&EpochReport),
    mut on_batch: impl FnMut(usize, usize),
) -> Result<Vec<EpochReport>> {
    let n = train_x.size()[0] as usize;
    let device = train_x.device();
    let mut params: Vec<Tensor> =
        mlp.weights.iter().chain(&mlp.biases).map(|p| p.set_requires_grad(true)).collect();
    let mut velocity: Vec<Tensor> = params.iter().map(|p| p.zeros_like()).collect();
    let batches = n.div_ceil(sgd.batch_size);
    let mut reports = Vec::new();
    for epoch in 1..=sgd.epochs {
        let started = std::time::Instant::now();
        let mut order: Vec<i64> = (0..n as i64).collect();
        if sgd.shuffle {
            order.shuffle(rng);
        }
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(sgd.batch_size).enumerate() {
            let index = Tensor::from_slice(chunk).to_device(device);
            let x = train_x.index_select(0, &index);
            let y = train_y.index_select(0, &index);
            for p in params.iter_mut() {
                p.zero_grad();
            }
            let loss = mlp.forward(&x).cross_entropy_for_logits(&y);
            loss.backward();
            tch::no_grad(|| {
                for (p, v) in params.iter().zip(velocity.iter_mut()) {
                    let grad = p.grad();
                    *v = &*v * sgd.momentum + grad;
                    let _ = p.shallow_clone().g_sub_(&(&*v * sgd.lr));
                }
            });
            loss_sum += loss.double_value(&[]) * chunk.len() as f64;
            on_batch(b + 1, batches);
        }
        let train_loss = loss_sum / n as f64;
        if !train_loss.is_finite() {
            bail!("minibatch SGD diverged in epoch {epoch}: the training loss is no longer finite (a smaller learning rate may help)");
        }
        let test_error = mlp.error_rate(test_x, test_y);
        let report =
            EpochReport { epoch, train_loss, test_error, seconds: started.elapsed().as_secs_f64() };
        on_epoch(&report);
        reports.push(report);
    }
    for p in mlp.weights.iter_mut().chain(mlp.biases.iter_mut()) {
        *p = p.detach();
    }
    Ok(reports)
}
