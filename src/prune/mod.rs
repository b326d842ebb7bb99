//! Pruning a hidden layer: which units (nodes) or incoming weights (edges) to keep, by six methods,
//! at budgets matched by parameter count, with optional reweighting.
//!
//! One pruner serves every network: `layer` holds the layer (W [H, D], its bias, the next layer)
//! and the pruner, `stats` the second moments it needs (exact for teacher-student students, Gram
//! matrices of calibration data for MLPs and model files), `budget` the matched budgets, `sweep`
//! a method × budget × reweight grid, `whole` several layers in order under one budget. Adding a
//! method means a variant of [`Method`] and an arm of `LayerPruner::masks`.
//!
//! Decisions on the reference's inconsistencies, each with the reference's
//! variant as an option:
//! * random masks keep exactly k (`random: exact`); `random: bernoulli` keeps each with prob. k/n;
//! * `importance_node` ranks |v| (teacher-student) (`importance: abs`); `signed` ranks signed v;
//! * node reweighting is DIVNET done right (`reweight_variant: divnet`): regress the pruned units'
//!   activations on the kept ones', fold the coefficients into the kept outgoing weights and zero
//!   the pruned units; `as_coded` regresses pre-activations and leaves the pruned units in place;
//! * least squares use f64 pseudo-inverses with a relative cutoff of 1e-6·s_max (min-norm lstsq).
pub mod budget;
pub mod dpp;
pub mod eta;
pub mod layer;
pub mod reweight;
pub mod select;
pub mod stats;
pub mod sweep;
pub mod whole;

use serde::{Deserialize, Serialize};

/// The six pruning methods, named as in YAML and CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
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

    /// True for the DPP methods (they need the layer's input statistics).
    pub fn is_dpp(self) -> bool {
        matches!(self, Method::DppNode | Method::DppEdge)
    }

    /// All names, comma-separated (for messages).
    pub fn names() -> String {
        Method::ALL.map(Method::name).join(", ")
    }
}

impl std::str::FromStr for Method {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == text.trim())
            .ok_or_else(|| anyhow::anyhow!("unknown method `{text}`: use {}", Method::names()))
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
}

/// How random masks count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RandomVariant {
    /// Exactly k units, or exactly k inputs per unit (the budget holds exactly).
    #[default]
    Exact,
    /// Each kept independently with probability k/n (the reference's teacher-student random edge).
    Bernoulli,
}

/// How `importance_node` ranks teacher-student units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceVariant {
    /// Largest |v_k| (largest outgoing-weight L1 norm in general).
    #[default]
    Abs,
    /// Largest signed v_k, as the reference's code does.
    Signed,
}

/// Node reweighting.
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
