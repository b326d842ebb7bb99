//! The `ge_expected` column of teacher-student runs: the exact expectation of the closed-form
//! error over a pruned batch's mask distribution, computed once per method, budget and
//! reweighting choice with `theory::expected`, for the distribution the pruner really draws from
//! (its DPP node kernel, its importance scores, its random variant, its reweighting).
//!
//! Left empty (`None`) where no exact value exists here: `dpp_edge` (no closed form for the
//! moments of k-DPP edge masks is implemented), node methods above K = 20 units (the enumeration
//! limit), `random: bernoulli` node masks (random size), and node reweighting `as_coded`.
use crate::model::two_layer::TwoLayer;
use crate::prune::budget::Budget;
use crate::prune::layer::{LayerPruner, Options};
use crate::prune::{Method, RandomVariant, ReweightVariant};
use crate::theory::expected::{
    self, node_pruning_with, NodeExpectation, Student, MAX_ENUMERATED_UNITS,
};
use anyhow::Result;
use std::collections::HashMap;

/// What the expectations of one pruned student are computed from, and those already computed.
pub struct Expectations {
    student: Student,
    /// The pruner's DPP node kernel [K×K], row-major.
    kernel: Vec<f64>,
    /// The pruner's importance scores of the units.
    scores: Vec<f64>,
    options: Options,
    /// Whether any batch is reweighted (DIVNET expectations are computed with the plain ones).
    reweight: bool,
    nodes: HashMap<usize, Option<NodeExpectation>>,
}

impl Expectations {
    /// For the student `base` (the network the pruner prunes) of `teacher`.
    pub fn new(
        base: &TwoLayer,
        teacher: &TwoLayer,
        pruner: &LayerPruner,
        options: Options,
        reweight: bool,
    ) -> Result<Self> {
        let student = Student::from_two_layer(base, teacher)?;
        let kernel = Vec::<f64>::try_from(pruner.node_kernel().flatten(0, -1))?;
        let scores = pruner.unit_scores()?;
        Ok(Self { student, kernel, scores, options, reweight, nodes: HashMap::new() })
    }

    /// E ε over the masks of `method` at `budget`, reweighted or not; `None` where not exact.
    pub fn of(&mut self, method: Method, budget: &Budget, reweight: bool) -> Option<f64> {
        let exact_random = self.options.random == RandomVariant::Exact;
        let value = match method {
            Method::RandomNode | Method::DppNode | Method::ImportanceNode => {
                if reweight && self.options.reweight_variant != ReweightVariant::Divnet {
                    return None;
                }
                if method == Method::RandomNode && !exact_random {
                    return None;
                }
                self.node(budget.nodes)?.of(method, reweight)
            }
            // With C = I, edge reweighting (the kept weights re-fitted) is a no-op.
            Method::RandomEdge if exact_random => {
                expected::random_edge(&self.student, budget.edges).ok()
            }
            Method::RandomEdge => expected::random_edge_bernoulli(&self.student, budget.edges).ok(),
            Method::ImportanceEdge => {
                expected::importance_edge(&self.student, budget.edges, false).ok()
            }
            Method::DppEdge => None,
        };
        value.filter(|v| v.is_finite())
    }

    /// The node expectations at kn kept units (computed on first use).
    fn node(&mut self, kn: usize) -> Option<&NodeExpectation> {
        if self.student.net.op.k > MAX_ENUMERATED_UNITS {
            return None;
        }
        let (student, kernel, scores, reweight) =
            (&self.student, &self.kernel, &self.scores, self.reweight);
        self.nodes
            .entry(kn)
            .or_insert_with(|| {
                node_pruning_with(&student.net, kn, reweight, kernel, scores)
                    .map_err(|e| tracing::warn!("no exact node expectation at kn = {kn}: {e:#}"))
                    .ok()
            })
            .as_ref()
    }
}
