//! DPP edge selection over dense kernels: every unit of a layer gets its own D×D kernel over its
//! inputs, decomposed once for all budgets and samples. Units are independent, so workers take
//! them one at a time from a shared counter, each unit drawing from its own stream derived from
//! the base seed: the masks do not depend on the worker count. The kernels are built and
//! decomposed on the weights' device (a CUDA run decomposes on the GPU); sampling is on the CPU.
use super::kernel::{self, InputMoments, KernelKind};
use crate::prune::budget::Budget;
use crate::prune::eta::Eta;
use crate::prune::Mask;
use crate::seed;
use anyhow::{Context, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{Kind, Tensor};

/// What each unit's kernel is built from.
pub struct UnitKernels<'a> {
    /// The layer's incoming weights [H, D], on any device.
    pub weight: &'a Tensor,
    /// The layer inputs' second moments (on the CPU; moved to the weights' device).
    pub moments: &'a InputMoments,
    pub kind: KernelKind,
}

/// `count` DPP edge masks per budget, one row of kept inputs per unit, on at most `workers`
/// threads.
pub fn masks(
    kernels: &UnitKernels,
    budgets: &[Budget],
    count: usize,
    base: u64,
    workers: usize,
) -> Result<Vec<Vec<Mask>>> {
    let w = kernels.weight.to_kind(Kind::Double);
    let moments = kernels.moments.to_device(w.device());
    let hidden = w.size()[0] as usize;
    let workers = workers.clamp(1, hidden);
    // One libtorch thread per worker while they run, so the cores are not oversubscribed.
    let (threads, eta) = (tch::get_num_threads(), &Eta::new("DPP edge", hidden));
    let kind = kernels.kind;
    if workers > 1 {
        tch::set_num_threads(1);
    }
    // Each worker takes the next unit not yet taken; the first error stops them all.
    let next = &AtomicUsize::new(0);
    let per_unit = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (w, moments) = (w.shallow_clone(), moments.shallow_clone());
                scope.spawn(move || -> Result<Vec<(usize, UnitMasks)>> {
                    let mut done = Vec::new();
                    loop {
                        let h = next.fetch_add(1, Ordering::Relaxed);
                        if h >= hidden {
                            return Ok(done);
                        }
                        match unit_masks(&w, &moments, kind, h, budgets, count, base) {
                            Ok(masks) => done.push((h, masks)),
                            Err(e) => {
                                next.store(hidden, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        eta.tick();
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a DPP edge worker panicked"))
            .collect::<Result<Vec<_>>>()
    });
    tch::set_num_threads(threads);
    let mut per_unit: Vec<(usize, UnitMasks)> = per_unit?.into_iter().flatten().collect();
    per_unit.sort_unstable_by_key(|&(h, _)| h);
    let per_unit: Vec<UnitMasks> = per_unit.into_iter().map(|(_, masks)| masks).collect();
    // per_unit[h][budget][sample] → masks[budget][sample] with one row per unit.
    Ok((0..budgets.len())
        .map(|b| {
            (0..count)
                .map(|s| Mask::Edges(per_unit.iter().map(|u| u[b][s].clone()).collect()))
                .collect()
        })
        .collect())
}

/// One unit's kept inputs for every budget and sample: [budget][sample] → sorted input indices.
type UnitMasks = Vec<Vec<Vec<usize>>>;

/// The DPP edge masks of unit `h`, from its own stream derived from `base`.
fn unit_masks(
    w: &Tensor,
    moments: &InputMoments,
    kind: KernelKind,
    h: usize,
    budgets: &[Budget],
    count: usize,
    base: u64,
) -> Result<UnitMasks> {
    let mut rng = seed::rng(base, &format!("unit{h}"));
    let dpp = kernel::decompose(&kernel::edge_kernel(&w.get(h as i64), moments, kind))?;
    budgets
        .iter()
        .map(|b| {
            (0..count)
                .map(|_| dpp.sample(b.edges, &mut rng))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("DPP edge selection for unit {h}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::budget::{self, BudgetSpec, LayerShape};
    use tch::Device;

    #[test]
    fn dpp_edge_masks_do_not_depend_on_the_worker_count() {
        tch::manual_seed(5);
        let x = Tensor::randn([40, 12], (Kind::Double, Device::Cpu));
        let weight = Tensor::randn([7, 12], (Kind::Float, Device::Cpu));
        let moments = InputMoments::Gram(x.tr().matmul(&x));
        let kind = KernelKind::Rbf { beta: 0.1, epsilon: 0.01 };
        let kernels = UnitKernels { weight: &weight, moments: &moments, kind };
        let shape = LayerShape { inputs: 12, hidden: 7, fan_out: 3 };
        let budgets = budget::resolve(&BudgetSpec::Fractions(vec![0.3, 0.8]), shape).unwrap();
        let draw = |workers, base| masks(&kernels, &budgets, 2, base, workers).unwrap();
        let one = draw(1, 17);
        assert_eq!(one.len(), 2);
        assert_eq!(one, draw(3, 17));
        assert_eq!(one, draw(7, 17));
        assert_ne!(one, draw(3, 18));
    }
}
