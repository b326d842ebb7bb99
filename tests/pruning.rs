//! Pruning the teacher-student student: exact budgets, whole-unit node masks, reweighting that is
//! exact when it can be, Theorem 1, and the orderings of the paper's Figure 2 over seeds.
use crate::common::paper_student;
use prunelab::evaluate::ge_theory;
use prunelab::model::two_layer::TwoLayer;
use prunelab::prune::budget::{from_nodes, Budget};
use prunelab::prune::layer::{Layer, LayerPruner, Options};
use prunelab::prune::stats::LayerStats;
use prunelab::prune::{Mask, Method, RandomVariant};
use prunelab::seed;
use prunelab::theory::ge::{theorem1_dpp_node, theorem1_dpp_node_reweighted};

/// A student's hidden layer with its exact Gaussian-input statistics (a pruner borrows both).
struct Student {
    layer: Layer,
    stats: LayerStats,
}

impl Student {
    fn new(net: &TwoLayer) -> Self {
        let layer = Layer::of_two_layer(net);
        let stats = LayerStats::exact_gaussian(&layer.weight);
        Self { layer, stats }
    }

    fn pruner(&self, options: Options) -> LayerPruner<'_> {
        LayerPruner::new(&self.layer, &self.stats, options, "w").unwrap()
    }
}

/// One mask of `method` at `budget`.
fn draw(
    pruner: &mut LayerPruner,
    method: Method,
    budget: &Budget,
    rng: &mut impl rand::Rng,
) -> Mask {
    pruner.masks(method, std::slice::from_ref(budget), 1, rng).unwrap().remove(0).remove(0)
}

/// The pruned student for `mask`.
fn pruned(pruner: &LayerPruner, mask: &Mask, reweight: bool) -> TwoLayer {
    pruner.pruned(mask, reweight).unwrap().to_two_layer()
}

/// Mean analytic ε over `masks` masks of `method` at `budget` (one mask for importance methods).
fn mean_error(
    net: &TwoLayer,
    teacher: &TwoLayer,
    method: Method,
    budget: &Budget,
    reweight: bool,
    masks: usize,
    options: Options,
) -> f64 {
    let student = Student::new(net);
    let mut pruner = student.pruner(options);
    let mut rng = seed::rng(7, method.name());
    let count = if method.is_random() { masks } else { 1 };
    (0..count)
        .map(|_| {
            let mask = draw(&mut pruner, method, budget, &mut rng);
            ge_theory(&pruned(&pruner, &mask, reweight), teacher).unwrap()
        })
        .sum::<f64>()
        / count as f64
}

#[test]
fn masks_keep_exactly_the_budget_and_node_masks_remove_whole_units() {
    let pair = paper_student(1, 0.0);
    let student = Student::new(&pair.0.normalized_rows());
    let mut pruner = student.pruner(Options::default());
    let mut rng = seed::rng(1, "masks");
    for budget in from_nodes(&[1, 3, 5], 500, 6, 1).unwrap() {
        for method in Method::ALL {
            let mask = draw(&mut pruner, method, &budget, &mut rng);
            let net = pruned(&pruner, &mask, false);
            match &mask {
                Mask::Nodes(kept) => {
                    assert!(method.is_node());
                    assert_eq!(kept.len(), budget.nodes, "{method:?}");
                    for h in 0..6 {
                        let row_zero = net.row(h).iter().all(|&w| w == 0.0);
                        assert_eq!(row_zero, !kept.contains(&h), "{method:?}: unit {h}");
                        assert_eq!(
                            net.v[h] == 0.0,
                            !kept.contains(&h),
                            "{method:?}: v of unit {h}"
                        );
                    }
                    assert_eq!(net.params_nonzero(), budget.nodes * 501, "{method:?}");
                }
                Mask::Edges(rows) => {
                    assert!(!method.is_node());
                    assert!(rows.iter().all(|r| r.len() == budget.edges), "{method:?}");
                    for h in 0..6 {
                        assert_eq!(
                            net.row(h).iter().filter(|&&w| w != 0.0).count(),
                            budget.edges,
                            "{method:?}"
                        );
                    }
                    assert_eq!(net.params_nonzero(), 6 * (budget.edges + 1), "{method:?}");
                }
            }
        }
    }
    // The reference's Bernoulli variant keeps the budget only on average.
    let options = Options { random: RandomVariant::Bernoulli, ..Options::default() };
    let mut pruner = student.pruner(options);
    let budget = from_nodes(&[3], 500, 6, 1).unwrap()[0];
    let kept: usize = (0..200)
        .map(|_| match draw(&mut pruner, Method::RandomEdge, &budget, &mut rng) {
            Mask::Edges(rows) => rows.iter().map(Vec::len).sum::<usize>(),
            Mask::Nodes(_) => unreachable!(),
        })
        .sum();
    assert!((kept as f64 / 200.0 - 1500.0).abs() < 10.0, "{}", kept as f64 / 200.0);
}

#[test]
fn divnet_is_exact_when_pruned_units_duplicate_kept_ones() {
    // Units 2 and 3 copy units 0 and 1 (unit 3 with the sign flipped): folding their outgoing
    // weights into 0 and 1 must give exactly the same function.
    let teacher = TwoLayer::gaussian(40, 2, Some(4.0), &mut seed::rng(3, "teacher"));
    let mut net = TwoLayer::gaussian(40, 4, None, &mut seed::rng(3, "student"));
    for j in 0..40 {
        net.w[2 * 40 + j] = net.w[j];
        net.w[3 * 40 + j] = -net.w[40 + j];
    }
    let layer = Student::new(&net);
    let pruner = layer.pruner(Options::default());
    let mask = Mask::Nodes(vec![0, 1]);
    let before = ge_theory(&net, &teacher).unwrap();
    let reweighted = pruned(&pruner, &mask, true);
    assert!((ge_theory(&reweighted, &teacher).unwrap() - before).abs() < 1e-5);
    assert!((reweighted.v[0] - (net.v[0] + net.v[2])).abs() < 1e-5);
    assert!((reweighted.v[1] - (net.v[1] - net.v[3])).abs() < 1e-5);
    assert_eq!((reweighted.v[2], reweighted.v[3]), (0.0, 0.0));
    // The same holds input by input; without reweighting the copies' contribution is lost.
    let plain = pruned(&pruner, &mask, false);
    let (xs, _) =
        prunelab::data::teacher::TeacherStream::new(&teacher, 0.0, seed::rng(3, "x")).take(20);
    let mut lost = 0.0f32;
    for x in xs.chunks(40) {
        assert!((reweighted.forward(x) - net.forward(x)).abs() < 1e-4);
        lost = lost.max((plain.forward(x) - net.forward(x)).abs());
    }
    assert!(lost > 0.1, "{lost}");
}

#[test]
fn theorem1_holds_on_trained_specialised_students() {
    // Eq. 5 and 6 describe an idealised student; trained students differ a little from seed to
    // seed, so the check is on the mean over 5 seeds: within 10% of eq. 5/6, and for kn = M with
    // reweighting (eq. 6 = 0) within 10% of the scale M·v*²/6 of the problem.
    let scale = 2.0 * 16.0 / 6.0;
    for kn in 1..=2usize {
        let budget = Budget { nodes: kn, edges: 0, fraction: kn as f64 / 6.0 };
        let (mut plain, mut reweighted) = (0.0, 0.0);
        for s in 1..=5 {
            let pair = paper_student(s, 0.0);
            let student = pair.0.normalized_rows();
            plain += mean_error(
                &student,
                &pair.1,
                Method::DppNode,
                &budget,
                false,
                100,
                Options::default(),
            ) / 5.0;
            reweighted += mean_error(
                &student,
                &pair.1,
                Method::DppNode,
                &budget,
                true,
                100,
                Options::default(),
            ) / 5.0;
        }
        let (eq5, eq6) =
            (theorem1_dpp_node(2, 3, 4.0, kn), theorem1_dpp_node_reweighted(2, 4.0, kn));
        assert!(
            (plain - eq5).abs() <= 0.1 * eq5,
            "kn = {kn}: DPP node {plain:.4} vs eq. 5 {eq5:.4}"
        );
        assert!(
            (reweighted - eq6).abs() <= 0.1 * eq6.max(scale),
            "kn = {kn}: DIVNET {reweighted:.4} vs eq. 6 {eq6:.4}"
        );
        assert!(reweighted < plain, "reweighting helps");
    }
}

/// Mean analytic ε over 5 seeds of the paper's student (rows normalised) for each budget 1..5.
fn curve(noise: f32, method: Method) -> Vec<f64> {
    from_nodes(&[1, 2, 3, 4, 5], 500, 6, 1)
        .unwrap()
        .iter()
        .map(|budget| {
            (1..=5)
                .map(|s| {
                    let pair = paper_student(s, noise);
                    mean_error(
                        &pair.0.normalized_rows(),
                        &pair.1,
                        method,
                        budget,
                        false,
                        50,
                        Options::default(),
                    )
                })
                .sum::<f64>()
                / 5.0
        })
        .collect()
}

/// Figure 2A–C over 5 seeds, noiseless and σ = 0.25. The orderings asserted are the ones the paper
/// shows and the idealised closed forms support; README "Reproducing the paper" discusses the rest.
#[test]
fn figure2_orderings_hold_over_seeds() {
    for noise in [0.0f32, 0.25] {
        let c = |m| curve(noise, m);
        let (rn, inode, dn) =
            (c(Method::RandomNode), c(Method::ImportanceNode), c(Method::DppNode));
        let (re, ie, de) = (c(Method::RandomEdge), c(Method::ImportanceEdge), c(Method::DppEdge));
        let at = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" ");
        let report = format!(
            "σ={noise}\nrandom node {}\nimportance node {}\nDPP node {}\nrandom edge {}\nimportance edge {}\nDPP edge {}",
            at(&rn), at(&inode), at(&dn), at(&re), at(&ie), at(&de)
        );
        // 2C: DPP node beats random node wherever the choice matters (kn = 2..4; at kn = 1 every
        // unit is equally likely under both, at kn = 5 only one unit is dropped) and importance
        // node at kn = 2, 3.
        for i in 1..4 {
            assert!(dn[i] < rn[i], "DPP node vs random node at {}:\n{report}", i + 1);
        }
        assert!(dn[1] < inode[1] && dn[2] < inode[2], "DPP node vs importance node:\n{report}");
        // 2B: importance edge far below importance node at every budget.
        assert!(ie.iter().zip(&inode).all(|(e, n)| e < n), "importance edge vs node:\n{report}");
        // 2A: random edge below random node for c ≤ 1/Z = 1/3 (1:83, 2:166).
        assert!(re[0] < rn[0] && re[1] < rn[1], "random edge vs random node:\n{report}");
        // DPP edge below random edge everywhere (the paper's headline for edges).
        assert!(de.iter().zip(&re).all(|(d, r)| d < r), "DPP edge vs random edge:\n{report}");
    }
}

/// Figure 2D: for a wider student (K = 20, M = 5, Z = 4), random edge pruning beats DPP node
/// pruning at every matched budget 1:24 … 5:124 (kept fractions c ≤ 1/Z), over 3 seeds.
#[test]
fn figure2d_random_edge_beats_dpp_node_when_c_is_below_one_over_z() {
    use prunelab::data::teacher::TeacherStream;
    use prunelab::train::online::{self, Engine};
    let budgets = from_nodes(&[1, 2, 3, 4, 5], 500, 20, 1).unwrap();
    assert_eq!(budgets.iter().map(|b| b.edges).collect::<Vec<_>>(), [24, 49, 74, 99, 124]);
    let (mut edge, mut node) = (vec![0.0; 5], vec![0.0; 5]);
    for s in 1..=3u64 {
        let teacher = TwoLayer::gaussian(500, 5, Some(4.0), &mut seed::rng(s, "teacher"));
        let mut student = TwoLayer::gaussian(500, 20, None, &mut seed::rng(s, "student"));
        let mut stream = TeacherStream::new(&teacher, 0.0, seed::rng(s, "train"));
        online::train(&mut student, &mut stream, 1_500_000, 0.5, Engine::Fused, |_, _| {}).unwrap();
        let student = student.normalized_rows();
        for (i, budget) in budgets.iter().enumerate() {
            edge[i] += mean_error(
                &student,
                &teacher,
                Method::RandomEdge,
                budget,
                false,
                30,
                Options::default(),
            ) / 3.0;
            node[i] += mean_error(
                &student,
                &teacher,
                Method::DppNode,
                budget,
                false,
                30,
                Options::default(),
            ) / 3.0;
        }
    }
    for i in 0..5 {
        assert!(edge[i] < node[i], "at {}: random edge {:?} vs DPP node {:?}", i + 1, edge, node);
    }
}
