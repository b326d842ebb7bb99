//! The one layer pruner. Whatever the network (a teacher-student student, an MLP trained here, a
//! model file), a pruning target is one hidden layer: its incoming weights W [H, D] and bias, the
//! next layer's weights [H₂, H] and bias, and the layer's statistics (`stats::LayerStats`).
//! Selection by the six methods, DIVNET, edge re-fitting and the removal of units are written
//! here once; `sweep` runs a method × budget × reweight grid over one `LayerPruner`.
//!
//! Removing unit p: its incoming weights and bias and its outgoing column of the next layer are
//! zeroed. By default (`node_removal: fold_bias`) its constant output act(b_p), what a masked unit
//! would still feed forward, is folded into the next bias, b₂ += W₂[:, p]·act(b_p), so the function
//! is the one the reference computes while the parameters are really gone (`drop` leaves it out).
//! Bias-free layers (the teacher-student student, g(0) = 0) have nothing to fold.
use super::budget::{Budget, LayerShape};
use super::dpp::edge;
use super::dpp::kernel::{self, InputMoments, KernelKind};
use super::dpp::sampler::KDpp;
use super::reweight::{refit_rows, regression_coefficients};
use super::select::{random_subset, top_k};
use super::stats::LayerStats;
use super::{ImportanceVariant, Mask, Method, RandomVariant, ReweightVariant};
use crate::model::mlp::{Activation, Mlp};
use crate::model::two_layer::TwoLayer;
use anyhow::{bail, ensure, Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// What a removed unit leaves behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRemoval {
    /// Fold its constant output act(b_p) into the next layer's bias (the reference's function).
    #[default]
    FoldBias,
    /// Remove it and its contribution entirely.
    Drop,
}

/// Choices that change how masks are drawn and how pruned layers are reweighted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    pub random: RandomVariant,
    pub importance: ImportanceVariant,
    pub reweight_variant: ReweightVariant,
    /// The DPP kernel over units.
    pub node_kernel: KernelKind,
    /// The DPP kernel over each unit's inputs.
    pub edge_kernel: KernelKind,
    pub node_removal: NodeRemoval,
}

impl Default for Options {
    /// The teacher-student choices: linear kernels (the reference's), exact random masks.
    fn default() -> Self {
        Self {
            random: RandomVariant::Exact,
            importance: ImportanceVariant::Abs,
            reweight_variant: ReweightVariant::Divnet,
            node_kernel: KernelKind::Linear,
            edge_kernel: KernelKind::Linear,
            node_removal: NodeRemoval::FoldBias,
        }
    }
}

/// One hidden layer and the weights around it.
///
/// # Shapes
/// `weight` [H, D], `bias` [H], `next_weight` [H₂, H], `next_bias` [H₂]; f32 on any device.
#[derive(Debug)]
pub struct Layer {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub next_weight: Tensor,
    pub next_bias: Option<Tensor>,
    /// The units' activation, for the constant output of a removed unit with a bias.
    pub activation: Option<Activation>,
}

impl Layer {
    /// Hidden layer `layer` (0-based) of an MLP.
    pub fn of_mlp(mlp: &Mlp, layer: usize) -> Result<Self> {
        ensure!(
            layer + 1 < mlp.weights.len(),
            "layer w{} is the output layer; only hidden layers (w1..w{}) can be pruned",
            layer + 1,
            mlp.weights.len() - 1
        );
        Ok(Self {
            weight: mlp.weights[layer].shallow_clone(),
            bias: Some(mlp.biases[layer].shallow_clone()),
            next_weight: mlp.weights[layer + 1].shallow_clone(),
            next_bias: Some(mlp.biases[layer + 1].shallow_clone()),
            activation: Some(mlp.activation),
        })
    }

    /// The hidden layer of a teacher-student network (no biases; v is the next layer [1, K]).
    pub fn of_two_layer(net: &TwoLayer) -> Self {
        Self {
            weight: Tensor::from_slice(&net.w).view([net.hidden as i64, net.input_dim as i64]),
            bias: None,
            next_weight: Tensor::from_slice(&net.v).view([1, net.hidden as i64]),
            next_bias: None,
            activation: None,
        }
    }

    /// `mlp` with hidden layer `layer` replaced by this one.
    pub fn into_mlp(&self, mlp: &Mlp, layer: usize) -> Mlp {
        let mut net = mlp.clone();
        net.weights[layer] = self.weight.shallow_clone();
        net.weights[layer + 1] = self.next_weight.shallow_clone();
        if let (Some(b), Some(b2)) = (&self.bias, &self.next_bias) {
            net.biases[layer] = b.shallow_clone();
            net.biases[layer + 1] = b2.shallow_clone();
        }
        net
    }

    /// The teacher-student network this layer stands for.
    pub fn to_two_layer(&self) -> TwoLayer {
        let (hidden, input_dim) = (self.hidden(), self.inputs());
        let flat = |t: &Tensor| Vec::<f32>::try_from(t.to_device(Device::Cpu).flatten(0, -1));
        TwoLayer {
            input_dim,
            hidden,
            w: flat(&self.weight).expect("f32 weights"),
            v: flat(&self.next_weight).expect("f32 weights"),
        }
    }

    pub fn hidden(&self) -> usize {
        self.weight.size()[0] as usize
    }

    pub fn inputs(&self) -> usize {
        self.weight.size()[1] as usize
    }

    /// Units, inputs per unit and outgoing weights per unit.
    pub fn shape(&self) -> LayerShape {
        LayerShape {
            inputs: self.inputs(),
            hidden: self.hidden(),
            fan_out: self.next_weight.size()[0] as usize,
        }
    }

    /// Weights of this layer and the next (the parameters a budget counts) that are not zero.
    pub fn weights_nonzero(&self) -> usize {
        [&self.weight, &self.next_weight]
            .iter()
            .map(|w| w.count_nonzero(None::<i64>).int64_value(&[]) as usize)
            .sum()
    }

    fn copy(&self) -> Self {
        Self {
            weight: self.weight.copy(),
            bias: self.bias.as_ref().map(Tensor::copy),
            next_weight: self.next_weight.copy(),
            next_bias: self.next_bias.as_ref().map(Tensor::copy),
            activation: self.activation,
        }
    }

    fn weight_cpu(&self) -> Tensor {
        self.weight.to_device(Device::Cpu).to_kind(Kind::Double)
    }
}

/// A layer ready to be pruned many times: its DPP kernels are decomposed once and reused.
pub struct LayerPruner<'a> {
    layer: &'a Layer,
    stats: &'a LayerStats,
    options: Options,
    node_dpp: Option<KDpp>,
    /// One DPP per unit when the edge kernels are diagonal (built on first use).
    edge_dpps: Vec<Option<KDpp>>,
    /// Names the layer in error messages.
    name: String,
}

impl<'a> LayerPruner<'a> {
    /// `name` names the layer in messages (`w1`, `fc1`).
    pub fn new(
        layer: &'a Layer,
        stats: &'a LayerStats,
        options: Options,
        name: &str,
    ) -> Result<Self> {
        let shape = layer.shape();
        ensure!(
            shape.hidden > 0 && shape.inputs > 0 && shape.fan_out > 0,
            "layer `{name}` has no units or no inputs to prune ({} units × {} inputs)",
            shape.hidden,
            shape.inputs
        );
        stats.check(shape).with_context(|| format!("statistics of layer `{name}`"))?;
        let edge_dpps = (0..shape.hidden).map(|_| None).collect();
        Ok(Self { layer, stats, options, node_dpp: None, edge_dpps, name: name.to_string() })
    }

    /// `count` masks of `method` for each budget (`masks[budget][sample]`), drawn from `rng` in
    /// the order budget → sample → unit (DPP edge masks on dense kernels aside: see
    /// [`Self::dpp_edge_masks`]).
    pub fn masks(
        &mut self,
        method: Method,
        budgets: &[Budget],
        count: usize,
        rng: &mut impl Rng,
    ) -> Result<Vec<Vec<Mask>>> {
        let LayerShape { inputs, hidden, .. } = self.layer.shape();
        let random = self.options.random;
        match method {
            Method::RandomNode => each_budget(budgets, count, |b| {
                Ok(Mask::Nodes(random_subset(hidden, b.nodes, random, rng)))
            }),
            Method::ImportanceNode => {
                let scores = self.unit_scores()?;
                each_budget(budgets, count, |b| Ok(Mask::Nodes(top_k(&scores, b.nodes))))
            }
            Method::DppNode => {
                let dpp = self.node_dpp()?;
                each_budget(budgets, count, |b| dpp.sample(b.nodes, rng).map(Mask::Nodes))
            }
            Method::RandomEdge => each_budget(budgets, count, |b| {
                Ok(Mask::Edges(
                    (0..hidden).map(|_| random_subset(inputs, b.edges, random, rng)).collect(),
                ))
            }),
            Method::ImportanceEdge => {
                let w = self.layer.weight_cpu().abs();
                let rows: Vec<Vec<f64>> = (0..hidden)
                    .map(|h| Vec::<f64>::try_from(w.get(h as i64)))
                    .collect::<Result<_, _>>()?;
                each_budget(budgets, count, |b| {
                    Ok(Mask::Edges(rows.iter().map(|r| top_k(r, b.edges)).collect()))
                })
            }
            Method::DppEdge if self.edge_kernels_are_diagonal() => {
                self.diagonal_edge_dpps()?;
                let dpps: Vec<&KDpp> = self.edge_dpps.iter().flatten().collect();
                each_budget(budgets, count, |b| {
                    dpps.iter()
                        .map(|dpp| dpp.sample(b.edges, rng))
                        .collect::<Result<_>>()
                        .map(Mask::Edges)
                })
            }
            Method::DppEdge => self.dpp_edge_masks(budgets, count, rng.gen()),
        }
        .with_context(|| format!("{} selection in layer `{}`", method.name(), self.name))
    }

    /// The DPP kernel over units that `dpp_node` samples from ([H, H], f64, CPU).
    pub fn node_kernel(&self) -> Tensor {
        kernel::node_kernel(&self.layer.weight_cpu(), &self.stats.inputs, self.options.node_kernel)
    }

    /// Importance of each unit: the L1 norm of its outgoing weights (|v_k| for a single output),
    /// or their signed sum (`importance: signed`, the reference's teacher-student ranking).
    pub fn unit_scores(&self) -> Result<Vec<f64>> {
        let next = self.layer.next_weight.to_device(Device::Cpu).to_kind(Kind::Double);
        let scores = match self.options.importance {
            ImportanceVariant::Abs => next.abs().sum_dim_intlist(0, false, Kind::Double),
            ImportanceVariant::Signed => next.sum_dim_intlist(0, false, Kind::Double),
        };
        Ok(Vec::<f64>::try_from(scores)?)
    }

    fn node_dpp(&mut self) -> Result<&KDpp> {
        if self.node_dpp.is_none() {
            self.node_dpp = Some(kernel::decompose(&self.node_kernel())?);
        }
        Ok(self.node_dpp.as_ref().expect("decomposed above"))
    }

    /// With C = I and the linear kernel, unit h's edge kernel is diag(w_h²): no decomposition.
    fn edge_kernels_are_diagonal(&self) -> bool {
        matches!(self.stats.inputs, InputMoments::Identity(_))
            && self.options.edge_kernel == KernelKind::Linear
    }

    fn diagonal_edge_dpps(&mut self) -> Result<()> {
        let w = self.layer.weight_cpu();
        for (h, slot) in self.edge_dpps.iter_mut().enumerate() {
            if slot.is_none() {
                let squares = Vec::<f64>::try_from(w.get(h as i64).square())?;
                *slot = Some(KDpp::from_diagonal(squares)?);
            }
        }
        Ok(())
    }

    /// DPP edge masks over dense kernels, units in parallel on every core (see [`edge`]).
    fn dpp_edge_masks(
        &self,
        budgets: &[Budget],
        count: usize,
        base: u64,
    ) -> Result<Vec<Vec<Mask>>> {
        let kernels = edge::UnitKernels {
            weight: &self.layer.weight,
            moments: &self.stats.inputs,
            kind: self.options.edge_kernel,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        edge::masks(&kernels, budgets, count, base, cores)
    }

    /// The pruned (and, if asked, reweighted) layer for `mask`.
    pub fn pruned(&self, mask: &Mask, reweight: bool) -> Result<Layer> {
        let _guard = tch::no_grad_guard();
        match mask {
            Mask::Nodes(kept) => self.without_units(kept, reweight),
            Mask::Edges(rows) => self.with_inputs(rows, reweight),
        }
    }

    /// Node pruning. With `reweight`, DIVNET: the removed units' activations are regressed on the
    /// kept units' (α = A_SS⁺ A_SP) and their outgoing weights folded in, W₂[:, S] += W₂[:, P]·αᵀ.
    /// `reweight_variant: as_coded` regresses the pre-activations instead and leaves the removed
    /// units in place (the reference's teacher-student code).
    fn without_units(&self, kept: &[usize], reweight: bool) -> Result<Layer> {
        let mut out = self.layer.copy();
        let removed: Vec<usize> = (0..self.layer.hidden()).filter(|h| !kept.contains(h)).collect();
        if removed.is_empty() {
            return Ok(out);
        }
        let device = out.weight.device();
        let removed_index = index(&removed, device);
        let next = out.next_weight.to_kind(Kind::Double);
        let mut new_next = next.copy();
        if reweight {
            let as_coded = self.options.reweight_variant == ReweightVariant::AsCoded;
            let moments = match (as_coded, &self.stats.pre_activations) {
                (false, _) => &self.stats.activations,
                (true, Some(pre)) => pre,
                (true, None) => {
                    bail!("`reweight_variant: as_coded` needs the pre-activations' moments")
                }
            };
            let alpha = regression_coefficients(moments, kept, &removed).to_device(device);
            let gain = next.index_select(1, &removed_index).matmul(&alpha.tr()); // [H₂, |S|]
            new_next = new_next.index_add(1, &index(kept, device), &gain);
            if as_coded {
                out.next_weight = new_next.to_kind(Kind::Float);
                return Ok(out);
            }
        } else if self.options.node_removal == NodeRemoval::FoldBias {
            fold_constant_outputs(&mut out, &next, &removed_index);
        }
        let _ = new_next.index_fill_(1, &removed_index, 0.0);
        out.next_weight = new_next.to_kind(Kind::Float);
        let _ = out.weight.index_fill_(0, &removed_index, 0.0);
        if let Some(bias) = &mut out.bias {
            let _ = bias.index_fill_(0, &removed_index, 0.0);
        }
        Ok(out)
    }

    /// Edge pruning: each unit keeps the inputs of its row of the mask; with `reweight` the kept
    /// weights are re-fitted to the unit's full pre-activation (a no-op when C = I).
    fn with_inputs(&self, rows: &[Vec<usize>], reweight: bool) -> Result<Layer> {
        let mut out = self.layer.copy();
        let LayerShape { inputs, hidden, .. } = self.layer.shape();
        let device = out.weight.device();
        out.weight = match (&self.stats.inputs, reweight) {
            (InputMoments::Gram(gram), true) => refit_rows(&self.layer.weight_cpu(), gram, rows)
                .with_context(|| format!("the least-squares re-fit of layer `{}`", self.name))?
                .to_device(device),
            _ => {
                let keep: Vec<f32> = Mask::Edges(rows.to_vec())
                    .keep_matrix(hidden, inputs)
                    .into_iter()
                    .map(|k| k as u8 as f32)
                    .collect();
                &out.weight
                    * Tensor::from_slice(&keep)
                        .view([hidden as i64, inputs as i64])
                        .to_device(device)
            }
        };
        Ok(out)
    }
}

/// b₂ += W₂[:, P]·act(b_P): the constant outputs of the removed units P, for layers with biases.
fn fold_constant_outputs(out: &mut Layer, next: &Tensor, removed: &Tensor) {
    if let (Some(bias), Some(next_bias), Some(activation)) =
        (&out.bias, &out.next_bias, out.activation)
    {
        let constant = activation.apply(&bias.index_select(0, removed)).to_kind(Kind::Double);
        let shift = next.index_select(1, removed).mv(&constant);
        out.next_bias = Some((next_bias.to_kind(Kind::Double) + shift).to_kind(Kind::Float));
    }
}

/// `count` masks from `draw` for each budget, budget by budget.
fn each_budget(
    budgets: &[Budget],
    count: usize,
    mut draw: impl FnMut(&Budget) -> Result<Mask>,
) -> Result<Vec<Vec<Mask>>> {
    budgets.iter().map(|b| (0..count).map(|_| draw(b)).collect()).collect()
}

/// The network with the units of hidden layer `layer` (0-based) that are not in `kept`
/// physically removed: their rows of W_l and b_l and their columns of W_{l+1}. For a network
/// pruned by a node mask (removed units have zero weights and bias, their constant output folded
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
