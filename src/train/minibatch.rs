//! Minibatch SGD with momentum for classification MLPs (cross-entropy loss), on any device.
//! The update is PyTorch's `optim.SGD` (dampening 0, no weight decay): v ← μv + ∇, p ← p − ηv.
//! Shuffling draws its permutations from a seeded stream, so training is reproducible.
//! [`train_masked`] fine-tunes a pruned network with its removed parameters held at exactly zero.
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
    train: (&Tensor, &Tensor),
    test: (&Tensor, &Tensor),
    sgd: &Sgd,
    rng: &mut impl Rng,
    on_epoch: impl FnMut(&EpochReport),
    on_batch: impl FnMut(usize, usize),
) -> Result<Vec<EpochReport>> {
    run(mlp, (train, test), sgd, &[], rng, on_epoch, on_batch)
}

/// Fine-tunes a pruned `mlp` as [`train`] does, with `masks[i]` (1 kept, 0 removed; None: all
/// kept) over its parameters in the order weights, then biases: each step's gradient is masked
/// (in place) before the momentum update, so that a removed parameter (zeroed once at the start)
/// has zero velocity and stays exactly zero (0·μ + 0 = 0, 0 − η·0 = 0).
pub fn train_masked(
    mlp: &mut Mlp,
    train: (&Tensor, &Tensor),
    test: (&Tensor, &Tensor),
    sgd: &Sgd,
    masks: &[Option<Tensor>],
    rng: &mut impl Rng,
    on_epoch: impl FnMut(&EpochReport),
) -> Result<Vec<EpochReport>> {
    let count = mlp.weights.len() + mlp.biases.len();
    if masks.len() != count {
        bail!("{} parameter masks for an MLP with {count} parameter tensors", masks.len());
    }
    for (p, mask) in mlp.weights.iter_mut().chain(mlp.biases.iter_mut()).zip(masks) {
        if let Some(mask) = mask {
            *p = &*p * mask.to_device(p.device());
        }
    }
    run(mlp, (train, test), sgd, masks, rng, on_epoch, |_, _| {})
}

fn run(
    mlp: &mut Mlp,
    ((train_x, train_y), (test_x, test_y)): ((&Tensor, &Tensor), (&Tensor, &Tensor)),
    sgd: &Sgd,
    masks: &[Option<Tensor>],
    rng: &mut impl Rng,
    mut on_epoch: impl FnMut(&EpochReport),
    mut on_batch: impl FnMut(usize, usize),
) -> Result<Vec<EpochReport>> {
    let n = train_x.size()[0] as usize;
    let device = train_x.device();
    let mut params: Vec<Tensor> =
        mlp.weights.iter().chain(&mlp.biases).map(|p| p.set_requires_grad(true)).collect();
    let masks: Vec<Option<Tensor>> = (0..params.len())
        .map(|i| masks.get(i).and_then(|m| m.as_ref()).map(|m| m.to_device(device)))
        .collect();
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
                for ((p, v), mask) in params.iter().zip(velocity.iter_mut()).zip(&masks) {
                    let mut grad = p.grad();
                    if let Some(mask) = mask {
                        // A zero gradient keeps a zero weight's velocity and value exactly 0.
                        let _ = grad.g_mul_(mask);
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mlp::Activation;
    use crate::seed;
    use tch::{Device, Kind};

    #[test]
    fn masked_parameters_stay_exactly_zero_and_the_others_learn() {
        let mut rng = seed::rng(5, "init");
        let mut mlp = Mlp::xavier(&[6, 8, 3], Activation::Relu, &mut rng, Device::Cpu).unwrap();
        tch::manual_seed(5);
        let x = Tensor::randn([200, 6], (Kind::Float, Device::Cpu));
        let y = x.narrow(1, 0, 3).argmax(1, false);
        // Remove unit 2 of the hidden layer (row, bias, outgoing column) and half of w1's inputs.
        let w1 = Tensor::ones([8, 6], (Kind::Float, Device::Cpu));
        let _ = w1.narrow(1, 0, 3).fill_(0.0);
        let _ = w1.get(2).fill_(0.0);
        let b1 = Tensor::ones([8], (Kind::Float, Device::Cpu));
        let _ = b1.get(2).fill_(0.0);
        let w2 = Tensor::ones([3, 8], (Kind::Float, Device::Cpu));
        let _ = w2.narrow(1, 2, 1).fill_(0.0);
        let masks = [Some(w1), Some(w2), Some(b1), None];
        for (p, m) in mlp.weights.iter_mut().chain(mlp.biases.iter_mut()).zip(&masks) {
            if let Some(m) = m {
                *p = &*p * m;
            }
        }
        let before = mlp.clone();
        let sgd = Sgd { lr: 0.1, momentum: 0.9, batch_size: 20, epochs: 3, shuffle: true };
        let reports = train_masked(
            &mut mlp,
            (&x, &y),
            (&x, &y),
            &sgd,
            &masks,
            &mut seed::rng(1, "s"),
            |_| {},
        )
        .unwrap();
        assert_eq!(reports.len(), 3);
        assert!(reports[2].train_loss < reports[0].train_loss, "{reports:?}");
        let params = mlp.weights.iter().chain(&mlp.biases);
        let old = before.weights.iter().chain(&before.biases);
        for ((p, o), m) in params.zip(old).zip(&masks) {
            let m = m.as_ref().map_or_else(|| p.ones_like(), |m| m.shallow_clone());
            let removed = m.eq(0.0);
            let leaked = p.masked_select(&removed).abs().sum(Kind::Double).double_value(&[]);
            assert_eq!(leaked, 0.0, "a removed parameter moved");
            let kept = m.ne(0.0);
            let moved = (p - o).masked_select(&kept).abs().min().double_value(&[]);
            assert!(moved > 0.0, "a kept parameter did not change");
        }
        let err = train_masked(
            &mut mlp,
            (&x, &y),
            (&x, &y),
            &sgd,
            &masks[..2],
            &mut seed::rng(1, "s"),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("2 parameter masks for an MLP with 4"), "{err}");
    }
}
