//! Fine-tuning a pruned model file: the masks of every pruned layer merged into one mask per
//! parameter, minibatch SGD (`train::minibatch::train_masked`) on the training split with those
//! masks held, and a check that every removed parameter is still exactly zero afterwards.
use super::outputs::{layer_masks, LayerMask};
use crate::data::images::Dataset;
use crate::model::mlp::Mlp;
use crate::prune::whole::PrunedLayer;
use crate::seed;
use crate::train::minibatch::{self, EpochReport, Sgd};
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// What fine-tuning did.
#[derive(Clone, Debug)]
pub struct FineTuned {
    pub sgd: Sgd,
    /// Each epoch's training loss and test error.
    pub epochs: Vec<EpochReport>,
    /// Removed parameters checked to be exactly zero after the last epoch.
    pub masked_params: usize,
}

/// Refuses settings SGD cannot run with.
pub fn check_sgd(sgd: &Sgd) -> Result<()> {
    if sgd.epochs == 0 {
        bail!("--finetune-epochs 0 fine-tunes nothing; give at least 1 or leave it out");
    }
    if !(sgd.lr.is_finite() && sgd.lr > 0.0) {
        bail!("--finetune-lr must be a finite number > 0, got {}", sgd.lr);
    }
    if !(sgd.momentum.is_finite() && (0.0..1.0).contains(&sgd.momentum)) {
        bail!("--finetune-momentum must be in [0, 1), got {}", sgd.momentum);
    }
    if sgd.batch_size == 0 {
        bail!("--finetune-batch-size must be at least 1");
    }
    Ok(())
}

/// The masks of all pruned layers in the unpruned network's shapes, one per masked linear layer:
/// where two layers' masks meet (a node-pruned layer's outgoing columns in the next pruned
/// layer), their product.
pub fn merged_masks(layers: &[PrunedLayer], mlp: &Mlp) -> Vec<LayerMask> {
    let mut merged: Vec<LayerMask> = Vec::new();
    for layer in layers {
        for m in layer_masks(&layer.mask, layer.index, mlp) {
            match merged.iter_mut().find(|o| o.layer == m.layer) {
                Some(o) => {
                    o.weight = &o.weight * &m.weight;
                    o.bias = match (o.bias.take(), m.bias) {
                        (Some(a), Some(b)) => Some(a * b),
                        (a, b) => a.or(b),
                    };
                }
                None => merged.push(m),
            }
        }
    }
    merged.sort_by_key(|m| m.layer);
    merged
}

/// Fine-tunes a copy of `pruned` on `data`'s training split with `masks` held, and checks that
/// every masked parameter is exactly zero afterwards.
pub fn finetune(
    pruned: &Mlp,
    data: &Dataset,
    sgd: &Sgd,
    masks: &[LayerMask],
    seed: u64,
) -> Result<(Mlp, FineTuned)> {
    if data.train_x.size()[0] == 0 {
        bail!("fine-tuning needs training samples, but the --data folder has none");
    }
    let layers = pruned.weights.len();
    let mut params: Vec<Option<Tensor>> = (0..2 * layers).map(|_| None).collect();
    for m in masks {
        params[m.layer] = Some(m.weight.shallow_clone());
        params[layers + m.layer] = m.bias.as_ref().map(Tensor::shallow_clone);
    }
    let mut net = pruned.clone();
    let epochs = minibatch::train_masked(
        &mut net,
        (&data.train_x, &data.train_y),
        (&data.test_x, &data.test_y),
        sgd,
        &params,
        &mut seed::rng(seed, "finetune"),
        |_| {},
    )?;
    let mut masked_params = 0;
    for (p, mask) in net.weights.iter().chain(&net.biases).zip(&params) {
        let Some(mask) = mask else { continue };
        let removed = mask.to_device(p.device()).eq(0.0);
        masked_params += removed.sum(Kind::Int64).int64_value(&[]) as usize;
        let leaked = p.masked_select(&removed).abs().sum(Kind::Double).double_value(&[]);
        if leaked != 0.0 {
            bail!("fine-tuning moved removed parameters (sum of |value| {leaked:e}); nothing was written");
        }
    }
    Ok((net, FineTuned { sgd: sgd.clone(), epochs, masked_params }))
}
