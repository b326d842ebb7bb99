//! `prunelab bench dpp-edge`: the cost of DPP edge pruning on a CIFAR-sized layer (3072 inputs,
//! the RBF kernel of `configs/paper/fig3-cifar.yaml`, its nine budgets and three masks), measured
//! on a few units through the real pruner and extrapolated to the whole layer.
use crate::prune::budget::{self, Budget, BudgetSpec, LayerShape};
use crate::prune::dpp::kernel::{self, InputMoments, KernelKind};
use crate::prune::layer::{Layer, LayerPruner, Options};
use crate::prune::stats::LayerStats;
use crate::prune::Method;
use crate::seed;
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What to measure.
pub struct Setting {
    pub inputs: usize,
    /// Units timed.
    pub units: usize,
    /// Units of the layer the figure is extrapolated to.
    pub layer_units: usize,
    pub masks: usize,
    /// Where the kernels are built and decomposed.
    pub device: Device,
}

/// Times one kernel eigendecomposition, then all masks of `units` units; prints both and the
/// extrapolation to `layer_units` units.
pub fn run(s: &Setting) -> Result<()> {
    let (d, samples) = (s.inputs as i64, 5_000i64);
    tch::manual_seed(1);
    // Pixels of random bytes normalised to [−1, 1]; C summed over 50,000 images as for CIFAR-10.
    let x = Tensor::randint(256, [samples, d], (Kind::Double, Device::Cpu)) / 127.5 - 1.0;
    let gram = x.tr().matmul(&x) * (50_000.0 / samples as f64);
    let std = (2.0 / (s.inputs + s.layer_units) as f64).sqrt();
    let weight =
        (Tensor::randn([s.units as i64, d], (Kind::Float, Device::Cpu)) * std).to_device(s.device);
    let layer = Layer {
        weight: weight.shallow_clone(),
        bias: None,
        next_weight: Tensor::randn([10, s.units as i64], (Kind::Float, s.device)),
        next_bias: None,
        activation: None,
    };
    let stats = LayerStats {
        inputs: InputMoments::Gram(gram.shallow_clone()),
        pre_activations: None,
        activations: Tensor::eye(s.units as i64, (Kind::Double, Device::Cpu)),
    };
    let kind = KernelKind::Rbf { beta: 10.0 / 60_000.0, epsilon: 0.01 };
    let options = Options { edge_kernel: kind, ..Options::default() };
    let fractions = (1..=9).map(|i| i as f64 / 10.0).collect();
    let shape = LayerShape { inputs: s.inputs, hidden: s.layer_units, fan_out: s.layer_units };
    let budgets: Vec<Budget> = budget::resolve(&BudgetSpec::Fractions(fractions), shape)?;

    let start = Instant::now();
    let l =
        kernel::edge_kernel(&weight.get(0), &InputMoments::Gram(gram.to_device(s.device)), kind);
    let dpp = kernel::decompose(&l)?;
    let eig = start.elapsed().as_secs_f64();
    let mut rng = seed::rng(1, "bench");
    let start = Instant::now();
    for b in &budgets {
        dpp.sample(b.edges, &mut rng)?;
    }
    let sample = start.elapsed().as_secs_f64() / budgets.len() as f64;
    println!(
        "DPP edge, one {d}×{d} RBF kernel: built and eigendecomposed on {:?} in {eig:.2} s; one sample per budget ({}…{} inputs kept) {sample:.2} s on average",
        s.device,
        budgets[0].edges,
        budgets[budgets.len() - 1].edges
    );

    let mut pruner = LayerPruner::new(&layer, &stats, options, "w1")?;
    let start = Instant::now();
    pruner.masks(Method::DppEdge, &budgets, s.masks, &mut rng)?;
    let all = start.elapsed().as_secs_f64();
    let per_unit = all / s.units as f64;
    println!(
        "DPP edge, {} units × {} budgets × {} masks on {} core(s): {all:.1} s = {per_unit:.2} s per unit; the {}-unit layer ≈ {:.1} min (extrapolated)",
        s.units,
        budgets.len(),
        s.masks,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        s.layer_units,
        per_unit * s.layer_units as f64 / 60.0
    );
    Ok(())
}
