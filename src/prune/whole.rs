//! Whole-model pruning: several hidden layers of an MLP pruned by one method under one budget over
//! all of them. The budget is a kept fraction of the pruned layers' incoming weights, allocated
//! per layer `uniform` (each layer pruned as a single-layer prune at that fraction would prune it)
//! or by `scores` (a global ranking of the importance methods' scores across the layers). Layers
//! are pruned in order by the one `LayerPruner`, each calibrated on the activations that the
//! already-pruned layers before it compute: calibration data flows through the pruned prefix.
use super::budget::{self, Budget, BudgetSpec};
use super::dpp::kernel::InputMoments;
use super::layer::{Layer, LayerPruner, Options};
use super::stats::LayerStats;
use super::{ImportanceVariant, Mask, Method, ReweightVariant};
use crate::model::mlp::Mlp;
use anyhow::{bail, Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// How a whole-model budget is shared out among the pruned layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    /// Every layer at the same kept fraction (the single-layer matched budget of each layer).
    #[default]
    Uniform,
    /// Per-layer shares from a global ranking of importance scores (importance methods only):
    /// |w| of every incoming weight for `importance_edge`, each unit's outgoing L1 norm divided
    /// by its layer's mean for `importance_node`.
    Scores,
}

impl Allocation {
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Uniform => "uniform",
            Allocation::Scores => "scores",
        }
    }
}

impl std::str::FromStr for Allocation {
    type Err = anyhow::Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "uniform" => Ok(Allocation::Uniform),
            "scores" => Ok(Allocation::Scores),
            _ => bail!("unknown allocation `{text}`: use uniform or scores"),
        }
    }
}

/// What to prune and how.
#[derive(Clone, Debug)]
pub struct WholeSpec {
    /// Hidden layers (0-based linear-layer indices), pruned in ascending order.
    pub layers: Vec<usize>,
    /// The layers' names, for messages and random streams (`names[l]` for linear layer l).
    pub names: Vec<String>,
    pub method: Method,
    /// Kept fraction of the pruned layers' incoming weights, in (0, 1].
    pub keep: f64,
    pub allocation: Allocation,
    pub reweight: bool,
    /// DIVNET regresses act(XWᵀ + b) rather than act(XWᵀ).
    pub include_bias: bool,
    pub options: Options,
}

/// One pruned layer.
#[derive(Clone, Debug)]
pub struct PrunedLayer {
    pub index: usize,
    pub mask: Mask,
    /// Non-zero incoming weights after all layers were pruned, over the layer's weights.
    pub kept_fraction: f64,
}

/// The pruned network and what was done to each layer.
pub struct Pruned {
    pub mlp: Mlp,
    pub layers: Vec<PrunedLayer>,
    /// Non-zero weights of all pruned layers over their weights.
    pub kept_fraction: f64,
}

/// Refuses allocations a method has no scores for.
pub fn check_allocation(method: Method, allocation: Allocation) -> Result<()> {
    if allocation == Allocation::Scores && method.is_random() {
        bail!(
            "allocation `scores` shares the budget out by a global ranking of importance scores, which {method} does not have \
             (its masks are random); use allocation `uniform` with {method}, or importance_node/importance_edge"
        );
    }
    Ok(())
}

/// Prunes `spec.layers` of `mlp` in order; `calib` (network inputs) calibrates each layer on the
/// pruned prefix, `rng_for(name)` gives the selection stream of the layer named `name`.
pub fn prune_layers<R: Rng>(
    mlp: &Mlp,
    spec: &WholeSpec,
    calib: Option<&Tensor>,
    mut rng_for: impl FnMut(&str) -> R,
) -> Result<Pruned> {
    check_allocation(spec.method, spec.allocation)?;
    let budgets = allocate(mlp, spec)?;
    let as_coded = spec.options.reweight_variant == ReweightVariant::AsCoded;
    let mut net = mlp.clone();
    let mut masks = Vec::new();
    for (&index, budget) in spec.layers.iter().zip(&budgets) {
        let name = &spec.names[index];
        let layer = Layer::of_mlp(&net, index)?;
        let stats = match calib {
            Some(x) => LayerStats::calibrate(&net, index, x, spec.include_bias, as_coded)?,
            None => uncalibrated(&layer),
        };
        let mut pruner = LayerPruner::new(&layer, &stats, spec.options, name)?;
        let mut rng = rng_for(name);
        let mask = pruner.masks(spec.method, &[*budget], 1, &mut rng)?.remove(0).remove(0);
        net = pruner
            .pruned(&mask, spec.reweight)
            .with_context(|| format!("pruning layer `{name}`"))?
            .into_mlp(&net, index);
        masks.push((index, mask));
    }
    let nonzero = |l: usize| net.weights[l].count_nonzero(None::<i64>).int64_value(&[]) as f64;
    let size = |l: usize| net.weights[l].numel() as f64;
    let layers = masks
        .into_iter()
        .map(|(index, mask)| PrunedLayer {
            index,
            mask,
            kept_fraction: nonzero(index) / size(index),
        })
        .collect();
    let kept_fraction = spec.layers.iter().map(|&l| nonzero(l)).sum::<f64>()
        / spec.layers.iter().map(|&l| size(l)).sum::<f64>();
    Ok(Pruned { mlp: net, layers, kept_fraction })
}

/// Statistics for methods that need none: identity input moments, no activations.
fn uncalibrated(layer: &Layer) -> LayerStats {
    let shape = layer.shape();
    LayerStats {
        inputs: InputMoments::Identity(shape.inputs),
        pre_activations: None,
        activations: Tensor::zeros([shape.hidden as i64; 2], (Kind::Double, Device::Cpu)),
    }
}

/// Each pruned layer's budget point, in the order of `spec.layers`.
pub fn allocate(mlp: &Mlp, spec: &WholeSpec) -> Result<Vec<Budget>> {
    let shapes: Vec<_> = spec
        .layers
        .iter()
        .map(|&l| Layer::of_mlp(mlp, l).map(|layer| layer.shape()))
        .collect::<Result<_>>()?;
    let points: Vec<BudgetSpec> = match (spec.allocation, spec.method) {
        (Allocation::Uniform, _) => {
            shapes.iter().map(|_| BudgetSpec::Fractions(vec![spec.keep])).collect()
        }
        (Allocation::Scores, Method::ImportanceEdge) => edge_shares(mlp, &spec.layers, spec.keep)?
            .into_iter()
            .map(|e| BudgetSpec::Edges(vec![e]))
            .collect(),
        (Allocation::Scores, Method::ImportanceNode) => {
            let signed = spec.options.importance == ImportanceVariant::Signed;
            node_shares(mlp, &spec.layers, spec.keep, signed)?
                .into_iter()
                .map(|n| BudgetSpec::Nodes(vec![n]))
                .collect()
        }
        (Allocation::Scores, method) => {
            check_allocation(method, spec.allocation)?;
            unreachable!("every random method is refused above")
        }
    };
    points
        .iter()
        .zip(&shapes)
        .zip(&spec.layers)
        .map(|((point, &shape), &l)| {
            Ok(budget::resolve(point, shape)
                .with_context(|| format!("the budget of layer `{}`", spec.names[l]))?[0])
        })
        .collect()
}

/// Inputs kept per unit in each layer: the layer's share of the ⌈keep·total⌉ incoming weights of
/// largest |w| over all pruned layers, spread evenly over its units (at least one input each).
fn edge_shares(mlp: &Mlp, layers: &[usize], keep: f64) -> Result<Vec<usize>> {
    let mut all: Vec<(f32, usize)> = Vec::new();
    for (i, &l) in layers.iter().enumerate() {
        let w = Vec::<f32>::try_from(mlp.weights[l].to_device(Device::Cpu).abs().flatten(0, -1))?;
        all.extend(w.into_iter().map(|v| (v, i)));
    }
    let kept = ((keep * all.len() as f64).ceil() as usize).min(all.len());
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut counts = vec![0usize; layers.len()];
    for &(_, i) in &all[..kept] {
        counts[i] += 1;
    }
    Ok(layers
        .iter()
        .zip(counts)
        .map(|(&l, count)| {
            let (hidden, inputs) =
                (mlp.weights[l].size()[0] as f64, mlp.weights[l].size()[1] as usize);
            ((count as f64 / hidden).round() as usize).clamp(1, inputs)
        })
        .collect())
}

/// Units kept in each layer: units ranked over all pruned layers by their outgoing weights' L1
/// norm (signed sum with `signed`) divided by their layer's mean, kept in that order until their
/// incoming weights reach keep·total (at least one unit per layer).
fn node_shares(mlp: &Mlp, layers: &[usize], keep: f64, signed: bool) -> Result<Vec<usize>> {
    let mut units: Vec<(f64, usize)> = Vec::new();
    let mut total = 0.0;
    for (i, &l) in layers.iter().enumerate() {
        let next = mlp.weights[l + 1].to_device(Device::Cpu).to_kind(Kind::Double);
        let scores = if signed { next } else { next.abs() }.sum_dim_intlist(0, false, Kind::Double);
        let scores = Vec::<f64>::try_from(scores)?;
        let mean = scores.iter().map(|s| s.abs()).sum::<f64>() / scores.len().max(1) as f64;
        let mean = if mean > 0.0 { mean } else { 1.0 };
        units.extend(scores.iter().map(|s| (s / mean, i)));
        total += mlp.weights[l].numel() as f64;
    }
    units.sort_by(|a, b| b.0.total_cmp(&a.0));
    let inputs: Vec<f64> = layers.iter().map(|&l| mlp.weights[l].size()[1] as f64).collect();
    let mut counts = vec![0usize; layers.len()];
    let mut kept = 0.0;
    for (_, i) in units {
        if kept >= keep * total {
            break;
        }
        counts[i] += 1;
        kept += inputs[i];
    }
    Ok(counts.into_iter().map(|c| c.max(1)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mlp::Activation;
    use crate::seed;

    fn net() -> Mlp {
        let mut rng = seed::rng(3, "init");
        Mlp::xavier(&[12, 10, 8, 3], Activation::Relu, &mut rng, Device::Cpu).unwrap()
    }

    fn spec(method: Method, allocation: Allocation) -> WholeSpec {
        WholeSpec {
            layers: vec![0, 1],
            names: vec!["w1".into(), "w2".into(), "w3".into()],
            method,
            keep: 0.5,
            allocation,
            reweight: false,
            include_bias: true,
            options: Options::default(),
        }
    }

    #[test]
    fn every_layer_is_pruned_and_the_fractions_are_recorded() {
        let mlp = net();
        let x = Tensor::randn([64, 12], (Kind::Float, Device::Cpu));
        for method in Method::ALL {
            let pruned = prune_layers(&mlp, &spec(method, Allocation::Uniform), Some(&x), |n| {
                seed::rng(1, n)
            })
            .unwrap();
            assert_eq!(pruned.layers.len(), 2, "{method}");
            for layer in &pruned.layers {
                assert!(
                    layer.kept_fraction < 0.75 && layer.kept_fraction > 0.0,
                    "{method}: {layer:?}"
                );
            }
            assert!(pruned.kept_fraction > 0.2 && pruned.kept_fraction < 0.7, "{method}");
        }
    }

    #[test]
    fn scores_allocate_by_a_global_ranking_and_random_methods_are_refused() {
        let mut mlp = net();
        // Layer w2's weights are tiny: a global magnitude ranking keeps almost all of w1.
        mlp.weights[1] = &mlp.weights[1] * 1e-3;
        let edges = allocate(&mlp, &spec(Method::ImportanceEdge, Allocation::Scores)).unwrap();
        assert_eq!(edges[1].edges, 1, "{edges:?}");
        assert!(edges[0].edges >= 9, "{edges:?}");
        let uniform = allocate(&mlp, &spec(Method::ImportanceEdge, Allocation::Uniform)).unwrap();
        assert_eq!((uniform[0].edges, uniform[1].edges), (6, 5));
        let err = prune_layers(&mlp, &spec(Method::DppNode, Allocation::Scores), None, |n| {
            seed::rng(1, n)
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("allocation `scores`") && err.contains("dpp_node"), "{err}");
    }
}
