//! A pruning sweep over one layer: every method × budget × reweight choice, `masks` samples of
//! each random method (one of each deterministic one), drawn and pruned by one `LayerPruner` and
//! handed batch by batch to the caller, which evaluates and records them.
use super::budget::{Budget, BudgetSpec};
use super::layer::{Layer, LayerPruner, Options};
use super::{Mask, Method};
use anyhow::Result;
use rand::Rng;
use serde::Serialize;
use std::time::Instant;

/// What to prune a layer by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PruneSweep {
    pub methods: Vec<Method>,
    pub budget: BudgetSpec,
    pub reweight: Vec<bool>,
    /// Mask samples per random method and budget.
    pub masks: usize,
    pub options: Options,
}

impl PruneSweep {
    /// Mask samples of `method` per budget.
    pub fn count(&self, method: Method) -> usize {
        if method.is_random() {
            self.masks
        } else {
            1
        }
    }
}

/// Which random streams the masks are drawn from: one per method and budget (teacher-student
/// runs), or one per method for all its budgets (MLP runs). Kept per task so that results stay
/// what they were when first published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    PerMethodAndBudget,
    PerMethod,
}

/// The masks of one method at one budget, pruned with or without reweighting.
pub struct Batch<'a> {
    pub method: Method,
    pub budget: &'a Budget,
    pub reweight: bool,
    pub masks: &'a [Mask],
    /// The pruned layers, one per mask.
    pub layers: Vec<Layer>,
    /// Milliseconds per mask spent on selection and pruning.
    pub ms_per_mask: f64,
}

/// Runs `sweep` at `budgets` and hands every batch to `each`; `rng_for(method, budget)` gives the
/// stream of a method (and budget, with `Streams::PerMethodAndBudget`); `done` is called after
/// each method.
pub fn run<R: Rng>(
    pruner: &mut LayerPruner,
    sweep: &PruneSweep,
    budgets: &[Budget],
    streams: Streams,
    rng_for: impl Fn(Method, Option<&Budget>) -> R,
    mut each: impl FnMut(Batch) -> Result<()>,
    mut done: impl FnMut(Method),
) -> Result<()> {
    for &method in &sweep.methods {
        let count = sweep.count(method);
        let started = Instant::now();
        let masks = match streams {
            Streams::PerMethod => {
                pruner.masks(method, budgets, count, &mut rng_for(method, None))?
            }
            Streams::PerMethodAndBudget => budgets
                .iter()
                .map(|b| {
                    let mut rng = rng_for(method, Some(b));
                    Ok(pruner.masks(method, std::slice::from_ref(b), count, &mut rng)?.remove(0))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let select_ms =
            started.elapsed().as_secs_f64() * 1e3 / (count * budgets.len()).max(1) as f64;
        for (budget, masks) in budgets.iter().zip(&masks) {
            for &reweight in &sweep.reweight {
                let started = Instant::now();
                let layers =
                    masks.iter().map(|m| pruner.pruned(m, reweight)).collect::<Result<_>>()?;
                let prune_ms = started.elapsed().as_secs_f64() * 1e3 / count.max(1) as f64;
                each(Batch {
                    method,
                    budget,
                    reweight,
                    masks,
                    layers,
                    ms_per_mask: select_ms + prune_ms,
                })?;
            }
        }
        done(method);
    }
    Ok(())
}
