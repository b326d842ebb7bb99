//! `prunelab plot --heatmap`: reads a teacher-student run's saved student and teacher and builds
//! the matrix to draw (paper Figure 2E–G): Q, R, the DPP's kernel, or the exact joint inclusion probabilities of
//! the k-DPP that `dpp_node` samples ([`crate::theory::blocks::dpp_inclusion`]).
use crate::model::io::load_two_layer;
use crate::model::two_layer::TwoLayer;
use crate::plot::heatmap::{Heatmap, Scale};
use crate::theory::blocks::dpp_inclusion;
use crate::theory::expected::MAX_ENUMERATED_UNITS;
use crate::theory::order_params::OrderParams;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Which matrix.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Kind {
    /// The student's overlaps Q_ik = w_i·w_k/N.
    Q,
    /// The student-teacher overlaps R_in = w_i·w*_n/N.
    R,
    /// The kernel of DPP node pruning, L/N = W Wᵀ/N of the rows as pruned (rescaled to norm √N
    /// unless --normalize-rows false): Q normalised to a unit diagonal.
    Kernel,
    /// P(i ∈ S and k ∈ S) under the k-DPP of DPP node pruning.
    DppInclusion,
}

/// What to draw, from the command line.
pub struct Request {
    pub kind: Kind,
    /// The run's model folder.
    pub run: PathBuf,
    pub kn: Option<usize>,
    pub normalize_rows: bool,
}

/// The heat map `request` describes.
pub fn build(request: &Request) -> Result<Heatmap> {
    let student = load(request, "student")?;
    let name = request.run.file_name().map_or_else(String::new, |n| n.to_string_lossy().into());
    let k = student.hidden;
    let unit = |what: &str| format!("{what} (0 to {})", k - 1);
    match request.kind {
        Kind::Q => {
            let op = OrderParams::new(&student, &student)?;
            Ok(Heatmap {
                title: format!("student overlaps Q, run {name}"),
                caption: format!("Q_ik = w_i·w_k/N, N = {}, trained weights", student.input_dim),
                values: op.q,
                rows: k,
                cols: k,
                row_label: unit("student unit i"),
                col_label: unit("student unit k"),
                value_label: "Q_ik".into(),
                scale: Scale::Diverging,
            })
        }
        Kind::R => {
            let teacher = load(request, "teacher")?;
            let op = OrderParams::new(&student, &teacher)
                .with_context(|| format!("the student and teacher of {}", request.run.display()))?;
            Ok(Heatmap {
                title: format!("student–teacher overlaps R, run {name}"),
                caption: format!("R_in = w_i·w*_n/N, N = {}", student.input_dim),
                values: op.r,
                rows: k,
                cols: teacher.hidden,
                row_label: unit("student unit i"),
                col_label: format!("teacher unit n (0 to {})", teacher.hidden - 1),
                value_label: "R_in".into(),
                scale: Scale::Diverging,
            })
        }
        Kind::Kernel => {
            let rows = pruned_rows(request, &student);
            Ok(Heatmap {
                title: format!("DPP node kernel L/N, run {name}"),
                caption: format!("L = W Wᵀ of the student's {}", rows_note(request)),
                values: OrderParams::new(&rows, &rows)?.q,
                rows: k,
                cols: k,
                row_label: unit("student unit i"),
                col_label: unit("student unit k"),
                value_label: "L_ik/N".into(),
                scale: Scale::Diverging,
            })
        }
        Kind::DppInclusion => inclusion(request, &student, &name),
    }
}

/// The student's first layer as DPP node pruning sees it.
fn pruned_rows(request: &Request, student: &TwoLayer) -> TwoLayer {
    if request.normalize_rows {
        student.normalized_rows()
    } else {
        student.clone()
    }
}

/// Which rows the kernel is built from, in words.
fn rows_note(request: &Request) -> &'static str {
    if request.normalize_rows {
        "rows rescaled to norm √N (prune.normalize_rows)"
    } else {
        "raw rows"
    }
}

/// The k-DPP's joint inclusion probabilities for the student's linear kernel.
fn inclusion(request: &Request, student: &TwoLayer, name: &str) -> Result<Heatmap> {
    let k = student.hidden;
    let Some(kn) = request.kn else {
        bail!("--heatmap dpp-inclusion needs --kn, the number of units the DPP keeps (1 to {k})");
    };
    if !(1..=k).contains(&kn) {
        bail!("--kn {kn}: the student has {k} units; give 1 to {k}");
    }
    if k > MAX_ENUMERATED_UNITS {
        bail!(
            "--heatmap dpp-inclusion sums over all subsets of units: the student has K = {k}, \
             above the limit of {MAX_ENUMERATED_UNITS}"
        );
    }
    let rows = pruned_rows(request, student);
    let q = OrderParams::new(&rows, &rows)?.q;
    let joint = dpp_inclusion(&q, k, kn)
        .with_context(|| format!("the student of {}", request.run.display()))?;
    let kernel = rows_note(request);
    Ok(Heatmap {
        title: format!("DPP node, kn = {kn}: P(i ∈ S and k ∈ S), run {name}"),
        caption: format!(
            "exact over all C({k}, {kn}) subsets of the k-DPP with kernel W Wᵀ ({kernel}); \
             diagonal: P(i ∈ S), summing to {kn}; uniform selection: {:.3} and {:.3}",
            kn as f64 / k as f64,
            (kn * (kn - 1)) as f64 / (k * (k - 1)).max(1) as f64
        ),
        values: joint,
        rows: k,
        cols: k,
        row_label: format!("student unit i (0 to {})", k - 1),
        col_label: format!("student unit k (0 to {})", k - 1),
        value_label: "P(i, k ∈ S)".into(),
        scale: Scale::Sequential,
    })
}

/// `<run>/<which>.safetensors`, with a sentence naming the folder when it is not a run's.
fn load(request: &Request, which: &str) -> Result<TwoLayer> {
    let path = request.run.join(format!("{which}.safetensors"));
    if !path.is_file() {
        bail!(
            "--run {}: no {which}.safetensors there; give a teacher-student run's model folder, \
             runs/<name>/models/<run_id>",
            request.run.display()
        );
    }
    load_two_layer(&path)
}
