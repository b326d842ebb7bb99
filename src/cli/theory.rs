//! `prunelab theory`: closed-form quantities of the teacher-student setting.
use super::Status;
use crate::evaluate::ge_theory;
use crate::model::io::load_two_layer;
use crate::theory::order_params::OrderParams;
use anyhow::Result;
use std::path::PathBuf;

/// Closed-form generalisation errors and order parameters.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Order parameters Q, R, T and the analytic error ε of a saved student against its teacher.
    #[command(
        after_help = "Examples:\n  prunelab theory order-params runs/quickstart/models/<run_id>\n  prunelab theory order-params --student s.safetensors --teacher t.safetensors --json"
    )]
    OrderParams {
        /// A run's model folder holding student.safetensors and teacher.safetensors.
        #[arg(required_unless_present_all = ["student", "teacher"])]
        folder: Option<PathBuf>,
        #[arg(long, conflicts_with = "folder")]
        student: Option<PathBuf>,
        #[arg(long, conflicts_with = "folder")]
        teacher: Option<PathBuf>,
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<Status> {
    match args.command {
        Command::OrderParams { folder, student, teacher, json } => {
            let (student, teacher) = match folder {
                Some(dir) => (dir.join("student.safetensors"), dir.join("teacher.safetensors")),
                None => (student.unwrap_or_default(), teacher.unwrap_or_default()),
            };
            let (student, teacher) = (load_two_layer(&student)?, load_two_layer(&teacher)?);
            let op = OrderParams::new(&student, &teacher)?;
            let eps = ge_theory(&student, &teacher)?;
            if json {
                let value = serde_json::json!({
                    "K": op.k, "M": op.m, "N": student.input_dim,
                    "Q": rows(&op.q, op.k), "R": rows(&op.r, op.m), "T": rows(&op.t, op.m),
                    "v": student.v, "v_star": teacher.v, "ge_theory": eps,
                });
                println!("{value}");
            } else {
                println!("N = {}, K = {}, M = {}", student.input_dim, op.k, op.m);
                print_matrix("Q = w wᵀ/N", &op.q, op.k);
                print_matrix("R = w w*ᵀ/N", &op.r, op.m);
                print_matrix("T = w* w*ᵀ/N", &op.t, op.m);
                println!("v  = {:?}", student.v);
                println!("v* = {:?}", teacher.v);
                println!("ε (analytic, noise-free) = {eps:.6}");
            }
            Ok(Status::Ok)
        }
    }
}

fn rows(values: &[f64], cols: usize) -> Vec<Vec<f64>> {
    values.chunks(cols).map(<[f64]>::to_vec).collect()
}

fn print_matrix(title: &str, values: &[f64], cols: usize) {
    println!("{title}:");
    for row in values.chunks(cols) {
        println!("  {}", row.iter().map(|x| format!("{x:8.4}")).collect::<Vec<_>>().join(" "));
    }
}
