//! Pruning a teacher-student student (paper §4–5.1; REFERENCE.md §3.1) with the exact statistics of
//! its standard Gaussian inputs: the inputs' second moments are C = I, the pre-activations'
//! E[λ_iλ_k] = Q_ik, and the activations' E[g(λ_i)g(λ_k)] = (2/π)·asin(Q_ik/√((1+Q_ii)(1+Q_kk))).
//! So the DPP node kernel is the reference's linear kernel W C Wᵀ = N·Q, each unit's DPP edge
//! kernel is diag(w_h²), DIVNET regresses the exact activation moments, and edge re-fitting is a
//! no-op (the reference's least squares on 800k samples is ≈ 0 too).
use super::budget::Budget;
use super::dpp::kernel::{self, InputMoments, KernelKind};
use super::dpp::sampler::KDpp;
use super::reweight::{fold_into_kept, refit_edges, regression_coefficients};
use super::select::{random_subset, top_k};
use super::{ImportanceVariant, Mask, Method, RandomVariant, ReweightVariant};
use crate::model::two_layer::TwoLayer;
use anyhow::Result;
use rand::Rng;
use tch::{Kind, Tensor};

/// Choices that change how masks are drawn and reweighted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Options {
    pub random: RandomVariant,
    pub importance: ImportanceVariant,
    pub reweight_variant: ReweightVariant,
}

/// A student ready to be pruned many times: its kernels are decomposed once and reused.
pub struct StudentPruner<'a> {
    student: &'a TwoLayer,
    options: Options,
    node_dpp: Option<KDpp>,
    edge_dpps: Vec<Option<KDpp>>,
    moments: InputMoments,
}

/// Rescales every first-layer row to norm √N (so Q_ii = 1), as the reference does before pruning.
pub fn normalize_rows(net: &TwoLayer) -> TwoLayer {
    let mut out = net.clone();
    let target = (net.input_dim as f64).sqrt();
    for row in out.w.chunks_exact_mut(net.input_dim) {
        let norm = row.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x = (*x as f64 * target / norm) as f32);
        }
    }
    out
}

impl<'a> StudentPruner<'a> {
    pub fn new(student: &'a TwoLayer, options: Options) -> Self {
        Self {
            student,
            options,
            node_dpp: None,
            edge_dpps: (0..student.hidden).map(|_| None).collect(),
            moments: InputMoments::Identity(student.input_dim),
        }
    }

    fn weight(&self) -> Tensor {
        Tensor::from_slice(&self.student.w)
            .view([self.student.hidden as i64, self.student.input_dim as i64])
    }

    /// Draws one mask for `method` at `budget`.
    pub fn mask(&mut self, method: Method, budget: &Budget, rng: &mut impl Rng) -> Result<Mask> {
        let (k, n) = (self.student.hidden, self.student.input_dim);
        Ok(match method {
            Method::RandomNode => {
                Mask::Nodes(random_subset(k, budget.nodes, self.options.random, rng))
            }
            Method::ImportanceNode => {
                let scores: Vec<f64> = self
                    .student
                    .v
                    .iter()
                    .map(|&v| match self.options.importance {
                        ImportanceVariant::Abs => v.abs() as f64,
                        ImportanceVariant::Signed => v as f64,
                    })
                    .collect();
                Mask::Nodes(top_k(&scores, budget.nodes))
            }
            Method::DppNode => {
                if self.node_dpp.is_none() {
                    let l = kernel::node_kernel(&self.weight(), &self.moments, KernelKind::Linear);
                    self.node_dpp = Some(kernel::decompose(&l)?);
                }
                Mask::Nodes(
                    self.node_dpp.as_ref().expect("decomposed above").sample(budget.nodes, rng)?,
                )
            }
            Method::RandomEdge => Mask::Edges(
                (0..k).map(|_| random_subset(n, budget.edges, self.options.random, rng)).collect(),
            ),
            Method::ImportanceEdge => Mask::Edges(
                (0..k)
                    .map(|h| {
                        top_k(
                            &self.student.row(h).iter().map(|w| w.abs() as f64).collect::<Vec<_>>(),
                            budget.edges,
                        )
                    })
                    .collect(),
            ),
            Method::DppEdge => {
                let mut rows = Vec::with_capacity(k);
                for h in 0..k {
                    if self.edge_dpps[h].is_none() {
                        // With C = I the edge kernel diag(w_h) C diag(w_h) is diagonal.
                        let squares =
                            self.student.row(h).iter().map(|&w| w as f64 * w as f64).collect();
                        self.edge_dpps[h] = Some(KDpp::from_diagonal(squares)?);
                    }
                    rows.push(
                        self.edge_dpps[h]
                            .as_ref()
                            .expect("decomposed above")
                            .sample(budget.edges, rng)?,
                    );
                }
                Mask::Edges(rows)
            }
        })
    }

    /// The pruned student for `mask`, reweighted or not.
    pub fn pruned(&self, mask: &Mask, reweight: bool) -> TwoLayer {
        let (k, n) = (self.student.hidden, self.student.input_dim);
        let mut net = self.student.clone();
        match mask {
            Mask::Nodes(kept) => {
                let pruned: Vec<usize> = (0..k).filter(|h| !kept.contains(h)).collect();
                if reweight {
                    let op = self.self_overlaps();
                    let gram = match self.options.reweight_variant {
                        ReweightVariant::Divnet => activation_moments(&op),
                        ReweightVariant::AsCoded => op,
                    };
                    let alpha = regression_coefficients(&gram, kept, &pruned);
                    if self.options.reweight_variant == ReweightVariant::AsCoded {
                        // The reference adds α·v_P to v_S and keeps the pruned units as they are.
                        let v_p: Vec<f32> = pruned.iter().map(|&p| net.v[p]).collect();
                        fold_into_kept(&mut net.v, k, kept, &pruned, &alpha);
                        pruned.iter().zip(v_p).for_each(|(&p, v)| net.v[p] = v);
                        return net;
                    }
                    fold_into_kept(&mut net.v, k, kept, &pruned, &alpha);
                }
                mask.apply(&mut net.w, k, n);
                pruned.iter().for_each(|&p| net.v[p] = 0.0);
            }
            Mask::Edges(rows) => {
                for (h, kept) in rows.iter().enumerate() {
                    let row = if reweight {
                        refit_edges(&self.moments, self.student.row(h), kept)
                    } else {
                        let mut row = vec![0.0; n];
                        kept.iter().for_each(|&j| row[j] = self.student.row(h)[j]);
                        row
                    };
                    net.w[h * n..(h + 1) * n].copy_from_slice(&row);
                }
            }
        }
        net
    }

    /// Q = w wᵀ/N as a [K, K] f64 tensor.
    fn self_overlaps(&self) -> Tensor {
        let w = self.weight().to_kind(Kind::Double);
        w.matmul(&w.tr()) / self.student.input_dim as f64
    }
}

/// E[g(λ_i)g(λ_k)] = (2/π)·asin(Q_ik/√((1+Q_ii)(1+Q_kk))) for g(u) = erf(u/√2), λ ~ N(0, Q).
pub fn activation_moments(q: &Tensor) -> Tensor {
    let d = q.diagonal(0, 0, 1) + 1.0;
    let denom = (d.unsqueeze(1) * d.unsqueeze(0)).sqrt();
    (q / denom).clamp(-1.0, 1.0).asin() * (2.0 / std::f64::consts::PI)
}
