//! Pruning one hidden layer of a classification MLP (paper §5.2; REFERENCE.md §3.2) with statistics
//! of the training set, reduced to Gram matrices so that wide layers stay practical:
//! G = XᵀX (summed over the calibration samples) of the layer's inputs X [n, D], and for DIVNET the
//! activations' AᵀA [H, H]. Kernels follow the reference (RBF over summed squared distances of the
//! bias-free pre-activation vectors for nodes and of the weight-scaled input columns for edges).
//!
//! Removing unit p of layer l: its incoming weights and bias are zeroed and its outgoing column of
//! W_{l+1} too. By default (`node_removal: fold_bias`) its constant output act(b_p) — what the
//! reference's masked unit still feeds forward — is folded into the next bias,
//! b_{l+1} += W_{l+1}[:, p]·act(b_p): the same function as the reference, with the parameters truly
//! gone. `node_removal: drop` leaves that constant out.
use super::budget::Budget;
use super::dpp::kernel::{self, InputMoments, KernelKind};
use super::dpp::sampler::KDpp;
use super::select::{random_subset, top_k};
use super::{Mask, Method, RandomVariant};
use crate::model::mlp::Mlp;
use crate::seed;
use anyhow::{bail, ensure, Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// What a removed unit leaves behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRemoval {
    /// Fold its constant output act(b_p) into the next layer's bias (the reference's function).
    #[default]
    FoldBias,
    /// Remove it and its contribution entirely.
    Drop,
}

/// Choices for real-data pruning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub random: RandomVariant,
    pub node_kernel: KernelKind,
    pub edge_kernel: KernelKind,
    pub node_removal: NodeRemoval,
    /// DIVNET regresses act(XWᵀ + b) instead of the reference's bias-free act(XWᵀ).
    pub include_bias: bool,
}

/// Gram matrices of one layer over the calibration inputs (f64, CPU).
pub struct Calibration {
    /// XᵀX of the layer's inputs [D, D].
    pub inputs: Tensor,
    /// AᵀA of the layer's activations [H, H].
    pub activations: Tensor,
    pub samples: usize,
}

/// Computes the Gram matrices of linear layer `layer` of `mlp` over `x` (the network's inputs).
pub fn calibrate(mlp: &Mlp, layer: usize, x: &Tensor, include_bias: bool) -> Result<Calibration> {
    let n = x.size()[0];
    ensure!(
        n > 0,
        "the calibration set is empty: pruning needs training samples for its statistics"
    );
    let _guard = tch::no_grad_guard();
    let (w, b) = (&mlp.weights[layer], &mlp.biases[layer]);
    let d = w.size()[1];
    let h = w.size()[0];
    let mut inputs = Tensor::zeros([d, d], (Kind::Double, Device::Cpu));
    let mut activations = Tensor::zeros([h, h], (Kind::Double, Device::Cpu));
    for start in (0..n).step_by(10_000) {
        let chunk = mlp.layer_input(&x.narrow(0, start, 10_000.min(n - start)), layer);
        let pre =
            if include_bias { chunk.linear(w, Some(b)) } else { chunk.linear::<&Tensor>(w, None) };
        let a = mlp.activation.apply(&pre).to_kind(Kind::Double).to_device(Device::Cpu);
        let chunk = chunk.to_kind(Kind::Double).to_device(Device::Cpu);
        inputs += chunk.tr().matmul(&chunk);
        activations += a.tr().matmul(&a);
    }
    Ok(Calibration { inputs, activations, samples: n as usize })
}

/// Budget points from kept fractions p of the layer's incoming weights (REFERENCE.md §4):
/// e = ⌈p·D⌉ inputs per unit and n = ⌊H(⌊p·D⌋ + H₂)/(D + H₂)⌋ units, H₂ the next layer's width.
pub fn budgets_from_fractions(
    fractions: &[f64],
    inputs: usize,
    hidden: usize,
    fan_out: usize,
) -> Result<Vec<Budget>> {
    fractions
        .iter()
        .map(|&p| {
            ensure!(
                p > 0.0 && p <= 1.0,
                "prune.budget.fractions: {p} is not a kept fraction in (0, 1]"
            );
            let edges = ((p * inputs as f64 - 1e-9).ceil() as usize).clamp(1, inputs);
            let floor = (p * inputs as f64 + 1e-9).floor() as usize;
            let nodes = (hidden * (floor + fan_out) / (inputs + fan_out)).clamp(1, hidden);
            Ok(Budget { nodes, edges, fraction: p })
        })
        .collect()
}

/// One hidden layer of an MLP, ready to be pruned many times.
pub struct LayerPruner<'a> {
    mlp: &'a Mlp,
    layer: usize,
    calibration: &'a Calibration,
    options: Options,
    node_dpp: Option<KDpp>,
}

impl<'a> LayerPruner<'a> {
    /// `layer` is a linear layer with a next layer (its units are hidden units).
    pub fn new(
        mlp: &'a Mlp,
        layer: usize,
        calibration: &'a Calibration,
        options: Options,
    ) -> Result<Self> {
        ensure!(
            layer + 1 < mlp.weights.len(),
            "layer w{} is the output layer; only hidden layers (w1..w{}) can be pruned",
            layer + 1,
            mlp.weights.len() - 1
        );
        Ok(Self { mlp, layer, calibration, options, node_dpp: None })
    }

    fn weight_cpu(&self) -> Tensor {
        self.mlp.weights[self.layer].to_device(Device::Cpu).to_kind(Kind::Double)
    }

    /// `count` masks of `method` for each budget (masks[budget][sample]). DPP edge masks are drawn
    /// unit by unit, so that each unit's kernel is decomposed once for all budgets and samples.
    pub fn masks(
        &mut self,
        method: Method,
        budgets: &[Budget],
        count: usize,
        rng: &mut impl Rng,
    ) -> Result<Vec<Vec<Mask>>> {
        let w = self.weight_cpu();
        let (hidden, inputs) = (w.size()[0] as usize, w.size()[1] as usize);
        let random = self.options.random;
        let mut out: Vec<Vec<Mask>> = Vec::with_capacity(budgets.len());
        match method {
            Method::RandomNode => {
                for b in budgets {
                    out.push(
                        (0..count)
                            .map(|_| Mask::Nodes(random_subset(hidden, b.nodes, random, rng)))
                            .collect(),
                    );
                }
            }
            Method::ImportanceNode => {
                let next =
                    self.mlp.weights[self.layer + 1].to_device(Device::Cpu).to_kind(Kind::Double);
                let scores =
                    Vec::<f64>::try_from(next.abs().sum_dim_intlist(0, false, Kind::Double))?;
                for b in budgets {
                    out.push(vec![Mask::Nodes(top_k(&scores, b.nodes)); count]);
                }
            }
            Method::DppNode => {
                if self.node_dpp.is_none() {
                    let l = kernel::node_kernel(
                        &w,
                        &InputMoments::Gram(self.calibration.inputs.shallow_clone()),
                        self.options.node_kernel,
                    );
                    self.node_dpp = Some(kernel::decompose(&l)?);
                }
                let dpp = self.node_dpp.as_ref().expect("decomposed above");
                for b in budgets {
                    out.push(
                        (0..count)
                            .map(|_| dpp.sample(b.nodes, rng).map(Mask::Nodes))
                            .collect::<Result<_>>()?,
                    );
                }
            }
            Method::RandomEdge => {
                for b in budgets {
                    out.push(
                        (0..count)
                            .map(|_| {
                                Mask::Edges(
                                    (0..hidden)
                                        .map(|_| random_subset(inputs, b.edges, random, rng))
                                        .collect(),
                                )
                            })
                            .collect(),
                    );
                }
            }
            Method::ImportanceEdge => {
                let rows: Vec<Vec<f64>> = (0..hidden)
                    .map(|h| Vec::<f64>::try_from(w.get(h as i64).abs()).unwrap_or_default())
                    .collect();
                for b in budgets {
                    let mask = Mask::Edges(rows.iter().map(|r| top_k(r, b.edges)).collect());
                    out.push(vec![mask; count]);
                }
            }
            Method::DppEdge => {
                // Units are independent: split them over threads, each unit with its own stream
                // derived from one draw of `rng`, so the masks do not depend on the thread count.
                let base: u64 = rng.gen();
                let workers =
                    std::thread::available_parallelism().map_or(1, |n| n.get()).min(hidden).max(1);
                let units: Vec<usize> = (0..hidden).collect();
                let per_unit: Vec<UnitMasks> = std::thread::scope(|scope| {
                    let handles: Vec<_> = units
                        .chunks(hidden.div_ceil(workers))
                        .map(|chunk| {
                            let (w, gram) =
                                (w.shallow_clone(), self.calibration.inputs.shallow_clone());
                            let kind = self.options.edge_kernel;
                            scope.spawn(move || -> Result<Vec<UnitMasks>> {
                                let moments = InputMoments::Gram(gram);
                                chunk
                                    .iter()
                                    .map(|&h| {
                                        let mut rng = seed::rng(base, &format!("unit{h}"));
                                        let l =
                                            kernel::edge_kernel(&w.get(h as i64), &moments, kind);
                                        let dpp = kernel::decompose(&l)?;
                                        budgets
                                            .iter()
                                            .map(|b| {
                                                (0..count)
                                                    .map(|_| dpp.sample(b.edges, &mut rng))
                                                    .collect::<Result<Vec<_>>>()
                                                    .map_err(|e| {
                                                        e.context(format!(
                                                            "DPP edge selection for unit {h}"
                                                        ))
                                                    })
                                            })
                                            .collect()
                                    })
                                    .collect()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("a DPP edge worker panicked"))
                        .collect::<Result<Vec<_>>>()
                })?
                .into_iter()
                .flatten()
                .collect();
                // per_unit[h][budget][sample] → masks[budget][sample] with one row per unit.
                out = (0..budgets.len())
                    .map(|bi| {
                        (0..count)
                            .map(|s| {
                                Mask::Edges(per_unit.iter().map(|u| u[bi][s].clone()).collect())
                            })
                            .collect()
                    })
                    .collect();
            }
        }
        Ok(out)
    }

    /// The pruned (and, if asked, reweighted) network for `mask`.
    pub fn pruned(&self, mask: &Mask, reweight: bool) -> Result<Mlp> {
        let mut net = self.mlp.clone();
        let _guard = tch::no_grad_guard();
        let l = self.layer;
        let device = net.weights[l].device();
        match mask {
            Mask::Nodes(kept) => {
                let hidden = net.weights[l].size()[0] as usize;
                let pruned: Vec<usize> = (0..hidden).filter(|h| !kept.contains(h)).collect();
                if pruned.is_empty() {
                    return Ok(net);
                }
                let p_index = index(&pruned, device);
                let w_next = net.weights[l + 1].to_kind(Kind::Double); // [H2, H]
                let mut w_next_new = w_next.copy();
                if reweight {
                    let alpha = super::reweight::regression_coefficients(
                        &self.calibration.activations,
                        kept,
                        &pruned,
                    )
                    .to_device(device);
                    let gain = w_next.index_select(1, &p_index).matmul(&alpha.tr()); // [H2, |S|]
                    let s_index = index(kept, device);
                    w_next_new = w_next_new.index_add(1, &s_index, &gain);
                } else if self.options.node_removal == NodeRemoval::FoldBias {
                    let constant = self
                        .mlp
                        .activation
                        .apply(&net.biases[l].index_select(0, &p_index))
                        .to_kind(Kind::Double);
                    let shift = w_next.index_select(1, &p_index).mv(&constant);
                    net.biases[l + 1] =
                        (net.biases[l + 1].to_kind(Kind::Double) + shift).to_kind(Kind::Float);
                }
                let _ = w_next_new.index_fill_(1, &p_index, 0.0);
                net.weights[l + 1] = w_next_new.to_kind(Kind::Float);
                let _ = net.weights[l].index_fill_(0, &p_index, 0.0);
                let _ = net.biases[l].index_fill_(0, &p_index, 0.0);
            }
            Mask::Edges(rows) => {
                let (hidden, inputs) =
                    (net.weights[l].size()[0] as usize, net.weights[l].size()[1] as usize);
                let keep = Tensor::from_slice(
                    &Mask::Edges(rows.clone())
                        .keep_matrix(hidden, inputs)
                        .iter()
                        .map(|&k| k as u8 as f32)
                        .collect::<Vec<_>>(),
                )
                .view([hidden as i64, inputs as i64])
                .to_device(device);
                net.weights[l] = if reweight {
                    self.refit(rows)?.to_device(device)
                } else {
                    &net.weights[l] * keep
                };
            }
        }
        Ok(net)
    }

    /// Per unit, the kept incoming weights re-fitted to the full pre-activation over the
    /// calibration inputs: w_S ← w_S + (G_SS + ρI)⁻¹ G_SP w_P, ρ = 1e-6·max diag G_SS (a ridge that
    /// keeps rank-deficient inputs, such as constant background pixels, solvable; it stands for the
    /// minimum-norm least squares). Units with the same number of kept inputs are solved in batches.
    fn refit(&self, rows: &[Vec<usize>]) -> Result<Tensor> {
        let w = self.weight_cpu(); // [H, D]
        let g = &self.calibration.inputs;
        let (hidden, inputs) = (w.size()[0] as usize, w.size()[1]);
        let mut out = Tensor::zeros([hidden as i64, inputs], (Kind::Double, Device::Cpu));
        let mut by_size: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (h, row) in rows.iter().enumerate() {
            by_size.entry(row.len()).or_default().push(h);
        }
        for (k, units) in by_size {
            if k == 0 {
                continue;
            }
            let batch = (16_000_000 / (k * k)).clamp(1, units.len());
            for group in units.chunks(batch) {
                let idx: Vec<i64> =
                    group.iter().flat_map(|&h| rows[h].iter().map(|&j| j as i64)).collect();
                let idx = Tensor::from_slice(&idx).view([group.len() as i64, k as i64]); // [B, k]
                let units_t =
                    Tensor::from_slice(&group.iter().map(|&h| h as i64).collect::<Vec<_>>());
                let w_units = w.index_select(0, &units_t); // [B, D]
                let g_s = g.index_select(0, &idx.flatten(0, -1)).view([
                    group.len() as i64,
                    k as i64,
                    inputs,
                ]); // [B, k, D]
                let target = g_s.matmul(&w_units.unsqueeze(2)).squeeze_dim(2); // G_S: w  [B, k]
                let g_ss = g_s.gather(
                    2,
                    &idx.unsqueeze(1).expand([group.len() as i64, k as i64, k as i64], false),
                    false,
                ); // [B, k, k]
                let ridge = g_ss.diagonal(0, 1, 2).amax(&[1i64][..], true).clamp_min(1e-300) * 1e-6; // [B, 1]
                let eye = Tensor::eye(k as i64, (Kind::Double, Device::Cpu)).unsqueeze(0);
                let system = &g_ss + eye * ridge.unsqueeze(2);
                // G_SS + ρI is symmetric positive definite: Cholesky (MKL's batched LU misbehaves
                // on threads other than the main one; Cholesky is also 2x cheaper).
                let factor = system.f_linalg_cholesky(false).with_context(|| {
                    format!(
                        "the least-squares re-fit of layer w{} is not positive definite",
                        self.layer + 1
                    )
                })?;
                let solved = target.unsqueeze(2).f_cholesky_solve(&factor, false)?.squeeze_dim(2); // [B, k]
                if solved.isfinite().all().int64_value(&[]) == 0 {
                    bail!(
                        "the least-squares re-fit of layer w{} is singular even with a ridge",
                        self.layer + 1
                    );
                }
                let rows_out =
                    Tensor::zeros([group.len() as i64, inputs], (Kind::Double, Device::Cpu))
                        .scatter(1, &idx, &solved);
                out = out.index_copy(0, &units_t, &rows_out);
            }
        }
        Ok(out.to_kind(Kind::Float))
    }
}

/// One unit's kept inputs for every budget and sample: [budget][sample] → sorted input indices.
type UnitMasks = Vec<Vec<Vec<usize>>>;

/// The network with the units of hidden layer `layer` (0-based) that are not in `kept`
/// physically removed: their rows of W_l and b_l and their columns of W_{l+1}, so that the
/// matrices are smaller. For a network pruned by a node mask (`LayerPruner::pruned`: removed units
/// have zero incoming weights, bias and outgoing weights, their constant output already folded
/// into the next bias) the function is unchanged.
pub fn compact(mlp: &Mlp, layer: usize, kept: &[usize]) -> Result<Mlp> {
    ensure!(
        layer + 1 < mlp.weights.len(),
        "layer w{} is the output layer; only hidden layers have units to remove",
        layer + 1
    );
    let hidden = mlp.weights[layer].size()[0] as usize;
    ensure!(
        !kept.is_empty()
            && kept.windows(2).all(|w| w[0] < w[1])
            && kept.last().is_some_and(|&k| k < hidden),
        "compaction needs the kept units of w{} as sorted indices below {hidden}",
        layer + 1
    );
    let _guard = tch::no_grad_guard();
    let mut net = mlp.clone();
    let keep = index(kept, mlp.weights[layer].device());
    net.weights[layer] = mlp.weights[layer].index_select(0, &keep);
    net.biases[layer] = mlp.biases[layer].index_select(0, &keep);
    net.weights[layer + 1] = mlp.weights[layer + 1].index_select(1, &keep);
    Ok(net)
}

fn index(items: &[usize], device: Device) -> Tensor {
    Tensor::from_slice(&items.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_grids_match_the_reference() {
        let ps: Vec<f64> = (1..=9).map(|i| i as f64 / 10.0).collect();
        let mnist = budgets_from_fractions(&ps, 784, 500, 500).unwrap();
        assert_eq!(
            mnist.iter().map(|b| b.nodes).collect::<Vec<_>>(),
            [225, 255, 286, 316, 347, 377, 408, 438, 469]
        );
        assert_eq!(
            mnist.iter().map(|b| b.edges).collect::<Vec<_>>(),
            [79, 157, 236, 314, 392, 471, 549, 628, 706]
        );
        let cifar = budgets_from_fractions(&ps, 3072, 1000, 1000).unwrap();
        assert_eq!(
            cifar.iter().map(|b| b.nodes).collect::<Vec<_>>(),
            [320, 396, 471, 547, 622, 698, 773, 848, 924]
        );
        assert_eq!(
            cifar.iter().map(|b| b.edges).collect::<Vec<_>>(),
            [308, 615, 922, 1229, 1536, 1844, 2151, 2458, 2765]
        );
        assert!(budgets_from_fractions(&[0.0], 784, 500, 500).is_err());
        assert!(budgets_from_fractions(&[1.5], 784, 500, 500).is_err());
    }

    #[test]
    fn compact_drops_rows_and_next_columns_of_removed_units() {
        let mut rng = crate::seed::rng(2, "compact");
        let mlp =
            Mlp::xavier(&[5, 4, 3], crate::model::mlp::Activation::Tanh, &mut rng, Device::Cpu)
                .unwrap();
        let x = Tensor::randn([20, 5], (Kind::Float, Device::Cpu));
        let masked = mlp.clone();
        for p in [1i64, 2] {
            let _ = masked.weights[0].get(p).fill_(0.0);
            let _ = masked.weights[1].select(1, p).fill_(0.0);
        }
        let small = compact(&masked, 0, &[0, 3]).unwrap();
        assert_eq!(small.sizes(), [5, 2, 3]);
        assert_eq!(small.weights[1].size(), [3, 2]);
        let diff = (small.forward(&x) - masked.forward(&x)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        assert!(compact(&mlp, 1, &[0]).is_err(), "the output layer has no units to remove");
        assert!(compact(&mlp, 0, &[]).is_err() && compact(&mlp, 0, &[4]).is_err());
    }
}
