//! The plan of whole-model pruning in an MLP run: `prune.layers` (a list or `all`),
//! `.allocation` and `.finetune` checked and resolved.
use super::HiddenLayer;
use crate::config::{self, schema::LayerList};
use crate::prune::whole::{self, Allocation};
use anyhow::{bail, Result};
use serde::Serialize;

/// Hidden layers pruned in order under one kept fraction of their weights, then fine-tuned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WholePrune {
    pub layers: Vec<HiddenLayer>,
    pub allocation: Allocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneRun>,
}

/// Fine-tuning settings (named for their setting columns).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FinetuneRun {
    pub finetune_epochs: usize,
    pub finetune_lr: f64,
    pub finetune_momentum: f64,
    pub finetune_batch_size: usize,
}

/// `prune.layers`, `.allocation` and `.finetune`, when any is given.
pub(super) fn whole_prune(
    prune: &config::Prune,
    layer: &HiddenLayer,
    hidden: usize,
) -> Result<Option<Box<WholePrune>>> {
    if prune.layers.is_none() && prune.allocation.is_none() && prune.finetune.is_none() {
        return Ok(None);
    }
    let layers = match &prune.layers {
        None => vec![layer.clone()],
        Some(LayerList::Word(w)) if w == "all" => {
            (0..hidden).map(|index| HiddenLayer { index }).collect()
        }
        Some(LayerList::Word(w)) => {
            bail!("prune.layers: {w:?} is neither `all` nor a list of layers ([w1, w2])")
        }
        Some(LayerList::Names(names)) => {
            let mut layers: Vec<HiddenLayer> =
                names.iter().map(|n| HiddenLayer::parse(n, hidden)).collect::<Result<_>>()?;
            layers.sort_by_key(|l| l.index);
            if layers.is_empty() || layers.windows(2).any(|w| w[0] == w[1]) {
                bail!("prune.layers: {names:?} must name each hidden layer at most once, and at least one");
            }
            layers
        }
    };
    if prune.budget.fractions.is_none() {
        bail!("prune.budget: pruning with prune.layers, .allocation or .finetune takes kept fractions (budget.fractions), one budget over all the pruned layers");
    }
    let allocation = prune.allocation.unwrap_or_default();
    for &method in &prune.methods {
        if let Err(e) = whole::check_allocation(method, allocation) {
            bail!("prune.allocation: {e}");
        }
    }
    let finetune = match &prune.finetune {
        Some(f)
            if f.epochs < 1
                || f.batch_size < 1
                || !(f.lr.is_finite() && f.lr > 0.0)
                || !(0.0..1.0).contains(&f.momentum) =>
        {
            bail!("prune.finetune: epochs and batch_size must be at least 1, lr a finite number > 0 and momentum in [0, 1)")
        }
        Some(f) => Some(FinetuneRun {
            finetune_epochs: f.epochs as usize,
            finetune_lr: f.lr,
            finetune_momentum: f.momentum,
            finetune_batch_size: f.batch_size as usize,
        }),
        None => None,
    };
    Ok(Some(Box::new(WholePrune { layers, allocation, finetune })))
}
