//! `prunelab bench`: speed figures for the README, measured on this machine.
mod dpp_edge;
mod scalar;

use super::Status;
use crate::data::dataset_dir::DEBIAN_FASHION_MNIST;
use crate::data::teacher::TeacherStream;
use crate::experiment::cost::MAX_MASKS;
use crate::model::two_layer::TwoLayer;
use crate::prune::dpp::kernel::{self, InputMoments, KernelKind};
use crate::seed;
use crate::train::online::{self, Engine};
use anyhow::{ensure, Context as _, Result};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Measure speed (online SGD in the paper setting, an MLP epoch, k-DPP sampling).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  prunelab bench sgd\n  prunelab bench sgd --steps 100000 --tensor\n  prunelab bench mlp --threads 2\n  prunelab bench mlp --threads 2 --finetune\n  prunelab bench dpp --n 1000 --k 300\n  prunelab bench dpp-edge --units 4
  prunelab bench dpp-edge --units 16 --device cuda"
)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Online SGD, N=500, M=2, K=6, η=0.5 (the paper's setting), on one CPU core.
    Sgd {
        /// Training steps to time.
        #[arg(long, default_value_t = 800_000)]
        steps: u64,
        /// Also time the libtorch tensor engine (on a tenth of the steps).
        #[arg(long)]
        tensor: bool,
    },
    /// The quickstart's maths (training, then the test error) as the obvious scalar loop: one
    /// rand_distr normal per input, plain dot products and updates. The baseline the engines are
    /// measured against (`scripts/bench-engine.sh` runs it beside `prunelab run
    /// configs/quickstart.yaml`).
    Scalar {
        #[arg(long, default_value_t = 800_000)]
        steps: u64,
        #[arg(long, default_value_t = 80_000)]
        test_samples: usize,
        /// Dot products with eight running sums instead of one (the stronger baseline: the CPU
        /// overlaps the sums instead of waiting for each addition).
        #[arg(long)]
        unrolled_dot: bool,
    },
    /// One training epoch of the paper's 784-500-500-10 sigmoid MLP at batch 100 (SGD, momentum 0.9).
    Mlp {
        /// A dataset folder (default: Debian's Fashion-MNIST, else 60,000 random inputs).
        #[arg(long)]
        data: Option<std::path::PathBuf>,
        /// libtorch threads.
        #[arg(long, default_value_t = 2)]
        threads: i32,
        #[arg(long, default_value_t = 2)]
        epochs: usize,
        /// Then prune half of every hidden layer's weights (random masks) and time as many
        /// fine-tuning epochs (the same SGD with the masks held, as `prune --finetune-epochs`).
        #[arg(long)]
        finetune: bool,
    },
    /// DPP edge pruning of a CIFAR-sized layer (fig3-cifar.yaml's RBF kernel, nine budgets, three
    /// masks): a few units through the real pruner, extrapolated to the whole layer.
    DppEdge {
        #[arg(long, default_value_t = 3072)]
        inputs: usize,
        /// Units timed.
        #[arg(long, default_value_t = 4)]
        units: usize,
        /// Units of the layer the time is extrapolated to.
        #[arg(long, default_value_t = 1000)]
        layer_units: usize,
        #[arg(long, default_value_t = 3)]
        masks: usize,
        /// Where the kernels are built and decomposed (auto, cpu, cuda, cuda:N); sampling is
        /// always on the CPU.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// k-DPP sampling: one eigendecomposition of a random n×n RBF kernel, then timed samples.
    Dpp {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 300)]
        k: usize,
        /// Samples to time.
        #[arg(long, default_value_t = 100)]
        samples: usize,
    },
}

pub fn run(args: Args) -> Result<Status> {
    match args.what {
        What::Sgd { steps, tensor } => bench_sgd(steps, tensor),
        What::Scalar { steps, test_samples, unrolled_dot } => {
            let start = Instant::now();
            let eps = scalar::quickstart(steps, test_samples, unrolled_dot);
            let dot = if unrolled_dot { "eight running sums" } else { "one running sum" };
            println!(
                "plain scalar loop (dot products with {dot}), quickstart maths: {steps} steps + {test_samples} test samples in {:.3} s (ε̂ = {eps:.4})",
                start.elapsed().as_secs_f64()
            );
            Ok(Status::Ok)
        }
        What::Mlp { data, threads, epochs, finetune } => bench_mlp(data, threads, epochs, finetune),
        What::DppEdge { inputs, units, layer_units, masks, device } => {
            ensure!(
                inputs >= 10 && units >= 1 && layer_units >= units && masks >= 1,
                "need at least 10 inputs, one unit (no more than --layer-units) and one mask"
            );
            ensure!(
                inputs <= MAX_KERNEL && units <= 100_000 && masks <= MAX_MASKS,
                "--inputs is at most {MAX_KERNEL} (each unit's kernel and eigenvectors take 8·inputs² bytes), --units at most 100000 and --masks at most {MAX_MASKS}"
            );
            let device = crate::device::parse(&device)?;
            dpp_edge::run(&dpp_edge::Setting { inputs, units, layer_units, masks, device })?;
            Ok(Status::Ok)
        }
        What::Dpp { n, k, samples } => bench_dpp(n, k, samples),
    }
}

/// The largest kernel side the DPP benches build (20,000: 3.2 GB per n×n matrix).
const MAX_KERNEL: usize = 20_000;

/// Online SGD in the paper's setting on one core.
fn bench_sgd(steps: u64, tensor: bool) -> Result<Status> {
    ensure!(steps >= 10, "--steps must be at least 10 (the tensor engine runs a tenth of them)");
    tch::set_num_threads(1);
    let time = |engine: Engine, steps: u64| -> Result<f64> {
        let teacher = TwoLayer::gaussian(500, 2, Some(4.0), &mut seed::rng(1, "teacher"));
        let mut student = TwoLayer::gaussian(500, 6, None, &mut seed::rng(1, "student"));
        let mut stream = TeacherStream::new(&teacher, 0.0, seed::rng(1, "train"));
        let report = online::train(&mut student, &mut stream, steps, 0.5, engine, |_, _| {})?;
        println!(
            "online SGD ({engine:?}): {steps} steps in {:.3} s = {:.0} steps/s (error at the end ≈ {:.4})",
            report.seconds,
            steps as f64 / report.seconds,
            report.recent_loss
        );
        Ok(report.seconds)
    };
    time(Engine::Fused, steps)?;
    if tensor {
        time(Engine::Tensor(Device::Cpu), steps / 10)?;
    }
    Ok(Status::Ok)
}

/// One epoch of the paper's MNIST MLP.
fn bench_mlp(
    data: Option<std::path::PathBuf>,
    threads: i32,
    epochs: usize,
    finetune: bool,
) -> Result<Status> {
    ensure!(threads >= 1 && epochs >= 1, "need at least one thread and one epoch");
    tch::set_num_threads(threads);
    let load = |dir: &std::path::Path| {
        crate::data::images::load(dir, &Default::default(), None, None, Device::Cpu)
    };
    // A folder named on the command line must load; without one, Debian's Fashion-MNIST if it
    // is installed, else random inputs of its shape.
    let (x, y, dim, classes, what) = match data {
        Some(dir) => {
            let d = load(&dir).with_context(|| format!("--data {}", dir.display()))?;
            (d.train_x, d.train_y, d.dim, d.classes, dir.display().to_string())
        }
        None => match load(DEBIAN_FASHION_MNIST.as_ref()) {
            Ok(d) => (d.train_x, d.train_y, d.dim, d.classes, DEBIAN_FASHION_MNIST.to_string()),
            Err(_) => {
                tch::manual_seed(1);
                (
                    Tensor::randn([60_000, 784], (Kind::Float, Device::Cpu)),
                    Tensor::randint(10, [60_000], (Kind::Int64, Device::Cpu)),
                    784,
                    10,
                    "random inputs".into(),
                )
            }
        },
    };
    let sizes = [dim, 500, 500, classes];
    let shape = sizes.map(|s| s.to_string()).join("-");
    let mut mlp = crate::model::mlp::Mlp::xavier(
        &sizes,
        crate::model::mlp::Activation::Sigmoid,
        &mut seed::rng(1, "init"),
        Device::Cpu,
    )?;
    let sgd = crate::train::minibatch::Sgd {
        lr: 0.1,
        momentum: 0.9,
        batch_size: 100,
        epochs,
        shuffle: true,
    };
    let test = (x.narrow(0, 0, 1000), y.narrow(0, 0, 1000));
    let reports = crate::train::minibatch::train(
        &mut mlp,
        (&x, &y),
        (&test.0, &test.1),
        &sgd,
        &mut seed::rng(1, "shuffle"),
        |_| {},
        |_, _| {},
    )?;
    for r in &reports {
        println!(
            "MLP {shape} sigmoid, batch 100, {threads} thread(s), {what}: epoch {} in {:.2} s",
            r.epoch, r.seconds
        );
    }
    if finetune {
        for r in bench_finetune(&mut mlp, (&x, &y), (&test.0, &test.1), &sgd)? {
            println!("the same, half of each hidden layer's weights masked: fine-tuning epoch {} in {:.2} s", r.epoch, r.seconds);
        }
    }
    Ok(Status::Ok)
}

/// Masks half of every hidden layer's incoming weights at random and fine-tunes with them held.
fn bench_finetune(
    mlp: &mut crate::model::mlp::Mlp,
    train: (&Tensor, &Tensor),
    test: (&Tensor, &Tensor),
    sgd: &crate::train::minibatch::Sgd,
) -> Result<Vec<crate::train::minibatch::EpochReport>> {
    tch::manual_seed(1);
    let hidden = mlp.weights.len() - 1;
    let mut masks: Vec<Option<Tensor>> = (0..2 * mlp.weights.len()).map(|_| None).collect();
    for (l, w) in mlp.weights.iter_mut().enumerate().take(hidden) {
        let mask = w.rand_like().ge(0.5).to_kind(Kind::Float);
        *w = &*w * &mask;
        masks[l] = Some(mask);
    }
    crate::train::minibatch::train_masked(
        mlp,
        train,
        test,
        sgd,
        &masks,
        &mut seed::rng(1, "finetune"),
        |_| {},
    )
}

/// k-DPP samples from one eigendecomposition.
fn bench_dpp(n: usize, k: usize, samples: usize) -> Result<Status> {
    ensure!(n >= 1 && k >= 1 && k <= n && samples >= 1, "need 1 ≤ k ≤ n and at least one sample");
    ensure!(
        n <= MAX_KERNEL,
        "--n is at most {MAX_KERNEL} (the kernel and its eigenvectors take 8n² bytes each)"
    );
    // The sampler is single-threaded Rust; one libtorch thread also keeps idle OpenMP
    // workers from spinning on the cores during the timed loop.
    tch::set_num_threads(1);
    tch::manual_seed(1);
    // Kernel over n random 64-dimensional points: full rank, eigenvalues spread widely.
    let points = Tensor::randn([n as i64, 64], (Kind::Double, Device::Cpu));
    let gram = points.matmul(&points.tr());
    let kernel = kernel::node_kernel(
        &Tensor::eye(n as i64, (Kind::Double, Device::Cpu)),
        &InputMoments::Gram(gram),
        KernelKind::Rbf { beta: 0.01, epsilon: 0.01 },
    );
    let start = Instant::now();
    let dpp = kernel::decompose(&kernel)?;
    let eig = start.elapsed().as_secs_f64();
    let mut rng = seed::rng(1, "bench");
    dpp.sample(k, &mut rng)?; // builds the eigenvalue table once
    let (start, cpu_start) = (Instant::now(), thread_cpu_seconds());
    let mut fingerprint = Fingerprint::default();
    for _ in 0..samples {
        fingerprint.add(&dpp.sample(k, &mut rng)?);
    }
    let per = start.elapsed().as_secs_f64() / samples as f64;
    println!("k-DPP n = {n}, k = {k}, one thread: eigendecomposition {:.1} ms, then {:.2} ms per sample (mean of {samples} samples)", eig * 1e3, per * 1e3);
    // Equal fingerprints across builds or machines mean the seeded draws are the same.
    println!("  fingerprint of the drawn items: {:016x}", fingerprint.0);
    // On a busy machine wall time overstates the cost; the thread's CPU time does not.
    if let (Some(a), Some(b)) = (cpu_start, thread_cpu_seconds()) {
        println!(
            "  CPU time of the sampling thread: {:.2} ms per sample",
            (b - a) / samples as f64 * 1e3
        );
    }
    Ok(Status::Ok)
}

/// FNV-1a hash of a sequence of item lists.
struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    fn add(&mut self, items: &[usize]) {
        for &i in items.iter().chain([&usize::MAX]) {
            for byte in (i as u64).to_le_bytes() {
                self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
}

/// CPU time of the calling thread so far, from Linux's `/proc/thread-self/schedstat` (None
/// elsewhere).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}
