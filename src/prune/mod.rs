//! Pruning a linear layer: which units (nodes) or incoming weights (edges) to keep, by six methods
//! (DESIGN.md §5), at budgets matched by parameter count, with optional reweighting.
//!
//! The layer is a weight matrix W [H, D] (H units, D inputs each). Selection needs, depending on
//! the method, the units' importance scores, a DPP kernel over the units, or a DPP kernel per unit
//! over its inputs; reweighting needs second moments of the layer's inputs or of its units'
//! activations. All of these come from a network-specific `Calibration` (see `teacher_student`
//! for the exact Gaussian-input statistics of the paper's setting).
//!
//! Decisions on the reference's inconsistencies (REFERENCE.md §7), each with the reference's
//! variant as an option:
//! * random masks keep exactly k (`random: exact`); `random: bernoulli` keeps each with prob. k/n;
//! * `importance_node` ranks |v| (teacher-student) (`importance: abs`); `signed` ranks signed v;
//! * node reweighting is DIVNET done right (`reweight_variant: divnet`): regress the pruned units'
//!   activations on the kept ones', fold the coefficients into the kept outgoing weights and zero
//!   the pruned units; `as_coded` regresses pre-activations and leaves the pruned units in place;
//! * least squares use f64 pseudo-inverses with a relative cutoff of 1e-6·s_max (min-norm lstsq).
pub mod budget;
pub mod dpp;
pub mod mlp;
pub mod reweight;
pub mod select;
pub mod teacher_student;

use serde::{Deserialize, Serialize};

/// The six pruning methods, named as in YAML and CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    RandomNode,
    ImportanceNode,
    DppNode,
    RandomEdge,
    ImportanceEdge,
    DppEdge,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::RandomNode,
        Method::ImportanceNode,
        Method::DppNode,
        Method::RandomEdge,
        Method::ImportanceEdge,
        Method::DppEdge,
    ];

    /// The YAML/CSV name.
    pub fn name(self) -> &'static str {
        match self {
            Method::RandomNode => "random_node",
            Method::ImportanceNode => "importance_node",
            Method::DppNode => "dpp_node",
            Method::RandomEdge => "random_edge",
            Method::ImportanceEdge => "importance_edge",
            Method::DppEdge => "dpp_edge",
        }
    }

    /// True for methods that remove whole units.
    pub fn is_node(self) -> bool {
        matches!(self, Method::RandomNode | Method::ImportanceNode | Method::DppNode)
    }

    /// True for methods whose masks are random (importance masks are the same every time).
    pub fn is_random(self) -> bool {
        !matches!(self, Method::ImportanceNode | Method::ImportanceEdge)
    }
}

/// Which units or weights a mask keeps (indices sorted ascending).
#[derive(Clone, Debug, PartialEq)]
pub enum Mask {
    /// The kept units.
    Nodes(Vec<usize>),
    /// For each unit, its kept inputs.
    Edges(Vec<Vec<usize>>),
}

impl Mask {
    /// The keep flags as an [H, D] row-major matrix.
    pub fn keep_matrix(&self, hidden: usize, inputs: usize) -> Vec<bool> {
        let mut keep = vec![false; hidden * inputs];
        match self {
            Mask::Nodes(units) => {
                for &h in units {
                    keep[h * inputs..(h + 1) * inputs].iter_mut().for_each(|k| *k = true);
                }
            }
            Mask::Edges(rows) => {
                for (h, row) in rows.iter().enumerate() {
                    for &j in row {
                        keep[h * inputs + j] = true;
                    }
                }
            }
        }
        keep
    }

    /// Zeroes the pruned entries of W [H, D].
    pub fn apply(&self, weight: &mut [f32], hidden: usize, inputs: usize) {
        for (w, keep) in weight.iter_mut().zip(self.keep_matrix(hidden, inputs)) {
            if !keep {
                *w = 0.0;
            }
        }
    }
}

/// How random masks count (REFERENCE.md §7.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RandomVariant {
    /// Exactly k units, or exactly k inputs per unit (the budget holds exactly).
    #[default]
    Exact,
    /// Each kept independently with probability k/n (the reference's teacher-student random edge).
    Bernoulli,
}

/// How `importance_node` ranks teacher-student units (REFERENCE.md §7.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceVariant {
    /// Largest |v_k| (largest outgoing-weight L1 norm in general).
    #[default]
    Abs,
    /// Largest signed v_k, as the reference's code does.
    Signed,
}

/// Node reweighting (REFERENCE.md §7.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReweightVariant {
    /// DIVNET: regress activations, fold into kept outgoing weights, zero the pruned units.
    #[default]
    Divnet,
    /// The reference's teacher-student code: regress pre-activations, add α·v_P to v_S, and
    /// leave the pruned units' weights in place.
    AsCoded,
}
