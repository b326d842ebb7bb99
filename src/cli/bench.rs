//! `prunelab bench`: speed figures for the README, measured on this machine.
use super::Status;
use crate::data::teacher::TeacherStream;
use crate::model::two_layer::TwoLayer;
use crate::seed;
use crate::train::online::{self, Engine};
use anyhow::Result;
use tch::Device;

/// Measure speed (online SGD in the paper setting).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  prunelab bench sgd\n  prunelab bench sgd --steps 100000 --tensor"
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
    }
}
