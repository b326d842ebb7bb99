//! `prunelab theory`: closed-form quantities of the teacher-student setting. Arguments are
//! checked before anything is computed: sizes within [`MAX_UNITS`] and [`MAX_INPUTS`], a finite
//! --v-star, kept fractions in (0, 1], so that no table shows NaN or an overflowed number; the
//! order parameters of saved networks must come out finite.
use super::Status;
use crate::evaluate::ge_theory;
use crate::model::io::load_two_layer;
use crate::prune::budget::edges_for_nodes;
use crate::theory::report;
use crate::theory::theorems::{self, Ideal};
use crate::theory::{ge, order_params::OrderParams};
use anyhow::Result;
use std::path::{Path, PathBuf};

mod expected_cmd;
mod ode;

/// Closed-form generalisation errors and order parameters.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The teacher-student sizes every closed form takes.
#[derive(clap::Args)]
struct Committee {
    /// Teacher hidden units M.
    #[arg(long, default_value_t = 2)]
    m: usize,
    /// Student hidden units K = Z·M.
    #[arg(long, default_value_t = 6)]
    k: usize,
    /// v*, every teacher second-layer weight.
    #[arg(long, default_value_t = 4.0)]
    v_star: f64,
}

/// Edge budgets: matched to kn = 1..K−1 kept units at input dimension N, or given fractions.
#[derive(clap::Args)]
struct EdgeBudgets {
    /// Input dimension N (for the matched budgets kn:ke, c = ke/N).
    #[arg(long, default_value_t = 500)]
    n: usize,
    /// Kept fractions c instead of the matched budgets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    c: Vec<f64>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The N → ∞ learning dynamics (ODEs of online SGD) of a teacher-student config's run,
    /// integrated from its seed's initial order parameters: ε(α), Q, R and v as CSV.
    #[command(
        after_help = "Examples:\n  prunelab theory ode configs/quickstart.yaml --out ode.csv\n  prunelab theory ode configs/quickstart.yaml --alpha-max 100 --points 50 --linear --seed 2 --out ode.csv"
    )]
    Ode(ode::OdeArgs),
    /// Theorem 1 (paper eq. 5–6): ε of DPP node pruning of an idealised specialised student to
    /// kn = 1..M units, without and with DIVNET reweighting.
    #[command(after_help = "Example:\n  prunelab theory theorem1 --m 2 --k 6 --v-star 4")]
    Theorem1 {
        #[command(flatten)]
        net: Committee,
        #[arg(long)]
        json: bool,
    },
    /// The random-edge closed form at the edge budgets matched to kn = 1..K−1
    /// kept nodes, or at given kept fractions.
    #[command(
        after_help = "Examples:\n  prunelab theory random-edge --m 2 --k 6 --n 500\n  prunelab theory random-edge --c 0.1,0.25,0.5"
    )]
    RandomEdge {
        #[command(flatten)]
        net: Committee,
        #[command(flatten)]
        edges: EdgeBudgets,
    },
    /// Theorem 2 (paper eq. 7–9): random vs DPP node pruning, without and with DIVNET, and
    /// importance node vs DIVNET, both sides and whether each strict inequality holds.
    #[command(
        after_help = "For the paper's idealised specialised student (assumption A6 taken literally): K = Z·M units, Z identical copies of each teacher unit (Q = R = T = 1 within a group, 0 across), v_i = v*/Z.\n\nExample:\n  prunelab theory theorem2 --m 2 --k 6 --v-star 4"
    )]
    Theorem2 {
        #[command(flatten)]
        net: Committee,
        /// Kept units (comma-separated, each 1..=M); default 1..=M.
        #[arg(long, value_delimiter = ',')]
        kn: Vec<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Theorem 3 and Remark 4: the random-edge closed form, the same ε computed from the mean
    /// order parameters, and the error of the expected network E[f] = c·w, which Remark 4 equates
    /// with it.
    #[command(
        after_help = "For the paper's idealised specialised student (assumption A6 taken literally): K = Z·M units, Z identical copies of each teacher unit (Q = R = T = 1 within a group, 0 across), v_i = v*/Z.\n\nExamples:\n  prunelab theory theorem3 --m 2 --k 6 --n 500\n  prunelab theory theorem3 --c 0.1,0.5"
    )]
    Theorem3 {
        #[command(flatten)]
        net: Committee,
        #[command(flatten)]
        edges: EdgeBudgets,
    },
    /// Theorem 4 (eq. 11): ε_DPP node(kn) ≥ ε_random edge(c) with kn/K = c, at c = kn/K and at
    /// the rounded matched budget ke/N; and §4.2's claim that with reweighting DPP node wins.
    #[command(
        after_help = "For the paper's idealised specialised student (assumption A6 taken literally): K = Z·M units, Z identical copies of each teacher unit (Q = R = T = 1 within a group, 0 across), v_i = v*/Z.\n\nExamples:\n  prunelab theory theorem4 --m 2 --k 6\n  prunelab theory theorem4 --m 5 --k 20 --n 500\n  prunelab theory theorem4 --m 5 --k 20 --c 0.05,0.25"
    )]
    Theorem4 {
        #[command(flatten)]
        net: Committee,
        #[arg(long, default_value_t = 500)]
        n: usize,
        /// Kept units (comma-separated, 1..=M); default 1..=M.
        #[arg(long, value_delimiter = ',', conflicts_with = "c")]
        kn: Vec<usize>,
        /// Kept fractions c (kn = c·K, possibly fractional: eq. 5 is linear in kn).
        #[arg(long, value_delimiter = ',')]
        c: Vec<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Exact expected ε of each pruning method of a saved student, per budget: node methods by
    /// enumerating all C(K, kn) subsets (K ≤ 20), random edge from the exact moments of
    /// exact-ke masks (to second order; also its N → ∞ limit), importance exactly.
    #[command(
        after_help = "Importance node ranks |v|, importance edge |w|, ties to the lower index. With --reweight: DIVNET for node methods; for edge methods the outgoing weights are refitted to the unpruned layer's output (Mariet & Sra's reweighting; the per-unit least squares of the incoming weights is a no-op for Gaussian inputs), random edge at its N → ∞ limit.\n\nExample:\n  prunelab theory expected runs/quickstart/models/<run_id> --nodes 1,2,3 --reweight"
    )]
    Expected {
        /// A run's model folder holding student.safetensors and teacher.safetensors.
        folder: PathBuf,
        /// Kept units (comma-separated); edge methods get the matched ke; default 1..K−1.
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<usize>,
        /// Also the reweighted methods.
        #[arg(long)]
        reweight: bool,
        #[arg(long)]
        json: bool,
    },
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
        Command::Ode(args) => ode::run(args),
        Command::Theorem1 { net, json } => theorem1(net.m, net.k, net.v_star, json),
        Command::RandomEdge { net, edges: e } => {
            random_edge(net.m, net.k, e.n, net.v_star, &e.c, e.json)
        }
        Command::Theorem2 { net, kn, json } => theorem2(net.m, net.k, net.v_star, &kn, json),
        Command::Theorem3 { net, edges: e } => {
            theorem3(net.m, net.k, e.n, net.v_star, &e.c, e.json)
        }
        Command::Theorem4 { net, n, kn, c, json } => {
            theorem4(net.m, net.k, n, net.v_star, &kn, &c, json)
        }
        Command::Expected { folder, nodes, reweight, json } => {
            expected_cmd::run(&folder, &nodes, reweight, json)
        }
        Command::OrderParams { folder, student, teacher, json } => {
            let (student, teacher) = match folder {
                Some(dir) => (dir.join("student.safetensors"), dir.join("teacher.safetensors")),
                None => (student.unwrap_or_default(), teacher.unwrap_or_default()),
            };
            order_params(&student, &teacher, json)
        }
    }
}

fn theorem1(m: usize, k: usize, v_star: f64, json: bool) -> Result<Status> {
    check_sizes(m, k)?;
    check_v_star(v_star)?;
    let z = k / m;
    let rows: Vec<(usize, f64, f64)> = (1..=m)
        .map(|kn| {
            (
                kn,
                ge::theorem1_dpp_node(m, z, v_star, kn),
                ge::theorem1_dpp_node_reweighted(m, v_star, kn),
            )
        })
        .collect();
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(
                |(kn, e, r)| serde_json::json!({"kn": kn, "dpp_node": e, "dpp_node_reweighted": r}),
            )
            .collect();
        println!("{}", serde_json::json!({"M": m, "K": k, "Z": z, "v_star": v_star, "rows": rows}));
    } else {
        println!("Theorem 1, M = {m}, K = {k} (Z = {z}), v* = {v_star}");
        println!("{:>4}  {:>12}  {:>16}", "kn", "ε DPP node", "ε DPP + DIVNET");
        for (kn, e, r) in rows {
            println!("{kn:>4}  {e:>12.4}  {r:>16.4}");
        }
    }
    Ok(Status::Ok)
}

fn random_edge(m: usize, k: usize, n: usize, v_star: f64, c: &[f64], json: bool) -> Result<Status> {
    check_sizes(m, k)?;
    check_v_star(v_star)?;
    anyhow::ensure!(
        (1..=MAX_INPUTS).contains(&n),
        "--n = {n} is out of range: the input dimension must be 1 to {MAX_INPUTS}"
    );
    if let Some(bad) = c.iter().find(|c| !(**c > 0.0 && **c <= 1.0)) {
        anyhow::bail!("--c: {bad} is not a kept fraction in (0, 1]");
    }
    let z = k / m;
    let points: Vec<(String, f64)> = if c.is_empty() {
        (1..k)
            .map(|kn| {
                let e = edges_for_nodes(kn, n, k, 1);
                (format!("{kn}:{e}"), e as f64 / n as f64)
            })
            .collect()
    } else {
        c.iter().map(|&c| (String::new(), c)).collect()
    };
    let rows: Vec<(String, f64, f64)> =
        points.into_iter().map(|(label, c)| (label, c, ge::random_edge(m, z, v_star, c))).collect();
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(l, c, e)| serde_json::json!({"budget": l, "c": c, "random_edge": e}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"M": m, "K": k, "Z": z, "N": n, "v_star": v_star, "rows": rows})
        );
    } else {
        println!("random edge pruning of an idealised student, M = {m}, K = {k} (Z = {z}), v* = {v_star}");
        println!("{:>10}  {:>8}  {:>8}", "nodes:edges", "c", "ε");
        for (label, c, e) in rows {
            println!("{label:>10}  {c:>8.4}  {e:>8.4}");
        }
    }
    Ok(Status::Ok)
}

/// The idealised student after checking the sizes and v*.
fn ideal(m: usize, k: usize, v_star: f64) -> Result<Ideal> {
    check_sizes(m, k)?;
    check_v_star(v_star)?;
    Ideal::new(m, k, v_star)
}

fn check_n(n: usize) -> Result<()> {
    anyhow::ensure!(
        (1..=MAX_INPUTS).contains(&n),
        "--n = {n} is out of range: the input dimension must be 1 to {MAX_INPUTS}"
    );
    Ok(())
}

fn check_fractions(c: &[f64]) -> Result<()> {
    if let Some(bad) = c.iter().find(|c| !(**c > 0.0 && **c <= 1.0)) {
        anyhow::bail!("--c: {bad} is not a kept fraction in (0, 1]");
    }
    Ok(())
}

fn theorem2(m: usize, k: usize, v_star: f64, kn: &[usize], json: bool) -> Result<Status> {
    let ideal = ideal(m, k, v_star)?;
    let kns: Vec<usize> = if kn.is_empty() { (1..=m).collect() } else { kn.to_vec() };
    let rows = theorems::theorem2(&ideal, &kns)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"M": m, "K": k, "Z": ideal.z, "v_star": v_star, "rows": rows})
        );
    } else {
        print!("{}", report::theorem2(&ideal, &rows));
    }
    Ok(Status::Ok)
}

/// Matched budgets kn:ke (c = ke/N) for kn = 1..K−1, or the given fractions.
fn edge_points(k: usize, n: usize, c: &[f64]) -> Vec<(String, f64)> {
    if c.is_empty() {
        (1..k.max(2))
            .map(|kn| {
                let e = edges_for_nodes(kn, n, k, 1);
                (format!("{kn}:{e}"), e as f64 / n as f64)
            })
            .collect()
    } else {
        c.iter().map(|&c| (String::new(), c)).collect()
    }
}

fn theorem3(m: usize, k: usize, n: usize, v_star: f64, c: &[f64], json: bool) -> Result<Status> {
    let ideal = ideal(m, k, v_star)?;
    check_n(n)?;
    check_fractions(c)?;
    let rows = theorems::theorem3(&ideal, &edge_points(k, n, c));
    if json {
        let value = serde_json::json!({"M": m, "K": k, "Z": ideal.z, "N": n, "v_star": v_star, "rows": rows});
        println!("{value}");
    } else {
        print!("{}", report::theorem3(&ideal, &rows));
    }
    Ok(Status::Ok)
}

fn theorem4(
    m: usize,
    k: usize,
    n: usize,
    v_star: f64,
    kn: &[usize],
    c: &[f64],
    json: bool,
) -> Result<Status> {
    let ideal = ideal(m, k, v_star)?;
    check_n(n)?;
    check_fractions(c)?;
    if let Some(bad) = kn.iter().find(|&&x| !(1..=m).contains(&x)) {
        anyhow::bail!("--kn: {bad} is outside 1..={m} (Theorem 4 needs kn ≤ M)");
    }
    // At c = kn/K (eq. 4) and at the rounded matched budget kn:ke (c = ke/N).
    let points: Vec<(String, f64, f64)> = if c.is_empty() {
        let kns: Vec<usize> = if kn.is_empty() { (1..=m).collect() } else { kn.to_vec() };
        kns.iter()
            .flat_map(|&kn| {
                let (e, x) = (edges_for_nodes(kn, n, k, 1), kn as f64);
                [
                    (format!("{kn}/{k}"), x, x / k as f64),
                    (format!("{kn}:{e}"), x, e as f64 / n as f64),
                ]
            })
            .collect()
    } else {
        c.iter().map(|&c| (String::new(), c * k as f64, c)).collect()
    };
    let rows = theorems::theorem4(&ideal, &points);
    if json {
        let value = serde_json::json!({"M": m, "K": k, "Z": ideal.z, "N": n, "v_star": v_star, "rows": rows});
        println!("{value}");
    } else {
        print!("{}", report::theorem4(&ideal, &rows));
    }
    Ok(Status::Ok)
}

fn order_params(student_path: &Path, teacher_path: &Path, json: bool) -> Result<Status> {
    let (student, teacher) = (load_two_layer(student_path)?, load_two_layer(teacher_path)?);
    let op = OrderParams::new(&student, &teacher)?;
    let eps = ge_theory(&student, &teacher)?;
    let all = op.q.iter().chain(&op.r).chain(&op.t).chain(std::iter::once(&eps));
    if let Some(bad) = all.copied().find(|x| !x.is_finite()) {
        anyhow::bail!(
            "the order parameters of {} against {} overflow to {bad}: their weights are too large",
            student_path.display(),
            teacher_path.display()
        );
    }
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

fn rows(values: &[f64], cols: usize) -> Vec<Vec<f64>> {
    values.chunks(cols).map(<[f64]>::to_vec).collect()
}

fn print_matrix(title: &str, values: &[f64], cols: usize) {
    println!("{title}:");
    for row in values.chunks(cols) {
        println!("  {}", row.iter().map(|x| format!("{x:8.4}")).collect::<Vec<_>>().join(" "));
    }
}

/// The most hidden units --m and --k may give (one table row each).
pub const MAX_UNITS: usize = 100_000;
/// The largest input dimension --n may give.
pub const MAX_INPUTS: usize = 1_000_000_000;
/// The largest |v*| accepted: ε grows as v*², which must stay a finite number.
pub const MAX_V_STAR: f64 = 1e100;

fn check_sizes(m: usize, k: usize) -> Result<()> {
    anyhow::ensure!(
        (1..=MAX_UNITS).contains(&m),
        "--m = {m} is out of range: the teacher's hidden units must be 1 to {MAX_UNITS}"
    );
    anyhow::ensure!(
        k <= MAX_UNITS,
        "--k = {k} is out of range: the student's hidden units must be at most {MAX_UNITS}"
    );
    anyhow::ensure!(
        k >= m && k.is_multiple_of(m),
        "--k = {k} must be a positive multiple of --m = {m}"
    );
    Ok(())
}

fn check_v_star(v_star: f64) -> Result<()> {
    anyhow::ensure!(
        v_star.is_finite() && v_star.abs() <= MAX_V_STAR,
        "--v-star = {v_star} is out of range: it must be a finite number of magnitude at most {MAX_V_STAR:e}"
    );
    Ok(())
}
