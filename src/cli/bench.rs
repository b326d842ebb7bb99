//! `prunelab bench`: speed figures for the README, measured on this machine.
use super::Status;
use crate::data::teacher::TeacherStream;
use crate::model::two_layer::TwoLayer;
use crate::prune::dpp::kernel::{self, InputMoments, KernelKind};
use crate::seed;
use crate::train::online::{self, Engine};
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Measure speed (online SGD in the paper setting, k-DPP sampling).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  prunelab bench sgd\n  prunelab bench sgd --steps 100000 --tensor\n  prunelab bench dpp --n 1000 --k 300"
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
        What::Sgd { steps, tensor } => {
            tch::set_num_threads(1);
            let time = |engine: Engine, steps: u64| -> Result<f64> {
                let teacher = TwoLayer::gaussian(500, 2, Some(4.0), &mut seed::rng(1, "teacher"));
                let mut student = TwoLayer::gaussian(500, 6, None, &mut seed::rng(1, "student"));
                let mut stream = TeacherStream::new(&teacher, 0.0, seed::rng(1, "train"));
                let report =
                    online::train(&mut student, &mut stream, steps, 0.5, engine, |_, _| {})?;
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
        What::Dpp { n, k, samples } => {
            anyhow::ensure!(
                n >= 1 && k >= 1 && k <= n && samples >= 1,
                "need 1 ≤ k ≤ n and at least one sample"
            );
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
            let start = Instant::now();
            for _ in 0..samples {
                dpp.sample(k, &mut rng)?;
            }
            let per = start.elapsed().as_secs_f64() / samples as f64;
            println!("k-DPP n = {n}, k = {k}: eigendecomposition {:.1} ms, then {:.2} ms per sample ({samples} samples)", eig * 1e3, per * 1e3);
            Ok(Status::Ok)
        }
    }
}
