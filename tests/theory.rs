//! The exact expectations of `theory::expected` against Monte-Carlo means of the pruner
//! (`prune::layer`) on a small student at fixed seeds: each mean lies within 4 standard errors.
use prunelab::evaluate::ge_theory;
use prunelab::model::two_layer::TwoLayer;
use prunelab::prune::budget::Budget;
use prunelab::prune::layer::{Layer, LayerPruner, Options};
use prunelab::prune::stats::LayerStats;
use prunelab::prune::Method;
use prunelab::seed;
use prunelab::theory::expected::{self, Student};
use rand::Rng;

/// A student near a specialised one: w_i = w*_{i mod M} + 0.6·noise, v_i = 1 + noise.
fn pair(n: usize, k: usize, m: usize, s: u64) -> (TwoLayer, TwoLayer) {
    let teacher = TwoLayer::gaussian(n, m, Some(2.0), &mut seed::rng(s, "teacher"));
    let mut rng = seed::rng(s, "student");
    let mut normal = || -> f32 { rng.sample(rand_distr::StandardNormal) };
    let w = (0..k * n).map(|x| teacher.w[(x / n % m) * n + x % n] + 0.6 * normal()).collect();
    let v = (0..k).map(|_| 1.0 + normal()).collect();
    (TwoLayer::new(n, k, w, v).unwrap(), teacher)
}

/// Mean and standard error of ε over `count` masks of `method` drawn by the pruner.
fn monte_carlo(
    net: &TwoLayer,
    teacher: &TwoLayer,
    method: Method,
    budget: Budget,
    reweight: bool,
    count: usize,
) -> (f64, f64) {
    let layer = Layer::of_two_layer(net);
    let stats = LayerStats::exact_gaussian(&layer.weight);
    let mut pruner = LayerPruner::new(&layer, &stats, Options::default(), "w1").unwrap();
    let masks = pruner.masks(method, &[budget], count, &mut seed::rng(7, method.name())).unwrap();
    let errors: Vec<f64> = masks[0]
        .iter()
        .map(|mask| {
            ge_theory(&pruner.pruned(mask, reweight).unwrap().to_two_layer(), teacher).unwrap()
        })
        .collect();
    let mean = errors.iter().sum::<f64>() / count as f64;
    let var =
        errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (count as f64 - 1.0).max(1.0);
    (mean, (var / count as f64).sqrt())
}

fn assert_within(what: &str, exact: f64, (mean, se): (f64, f64)) {
    // 4 standard errors, plus the f32 rounding of the pruned weights.
    assert!(
        (mean - exact).abs() <= 4.0 * se + 1e-5 * exact.abs().max(1.0),
        "{what}: exact {exact:.5}, Monte Carlo {mean:.5} ± {se:.5}"
    );
}

#[test]
fn node_expectations_match_the_pruners_monte_carlo_means() {
    let (net, teacher) = pair(40, 5, 2, 1);
    let student = Student::from_two_layer(&net, &teacher).unwrap();
    for kn in [1, 2, 3] {
        let e = expected::node_pruning(&student.net, kn, true).unwrap();
        let budget = Budget { nodes: kn, edges: 1, fraction: 0.0 };
        let mc =
            |method, reweight, count| monte_carlo(&net, &teacher, method, budget, reweight, count);
        assert_within(
            &format!("random node kn={kn}"),
            e.random,
            mc(Method::RandomNode, false, 3000),
        );
        assert_within(
            &format!("DPP node kn={kn}"),
            e.dpp.unwrap(),
            mc(Method::DppNode, false, 3000),
        );
        assert_within(
            &format!("random node + DIVNET kn={kn}"),
            e.random_reweighted.unwrap(),
            mc(Method::RandomNode, true, 3000),
        );
        assert_within(
            &format!("DIVNET kn={kn}"),
            e.dpp_reweighted.unwrap(),
            mc(Method::DppNode, true, 3000),
        );
        // Importance is deterministic: one mask, the same number.
        assert_within(
            &format!("importance node kn={kn}"),
            e.importance,
            mc(Method::ImportanceNode, false, 1),
        );
        assert_within(
            &format!("importance node + DIVNET kn={kn}"),
            e.importance_reweighted.unwrap(),
            mc(Method::ImportanceNode, true, 1),
        );
    }
}

#[test]
fn edge_expectations_match_the_pruners_monte_carlo_means() {
    let (net, teacher) = pair(60, 4, 2, 2);
    let student = Student::from_two_layer(&net, &teacher).unwrap();
    for ke in [6, 15, 40] {
        let budget = Budget { nodes: 1, edges: ke, fraction: 0.0 };
        let mc = monte_carlo(&net, &teacher, Method::RandomEdge, budget, false, 4000);
        assert_within(
            &format!("random edge ke={ke}"),
            expected::random_edge(&student, ke).unwrap(),
            mc,
        );
        // The pruner's edge reweighting (per-unit least squares) is a no-op for Gaussian inputs.
        let rw = monte_carlo(&net, &teacher, Method::RandomEdge, budget, true, 4000);
        assert!((rw.0 - mc.0).abs() < 1e-5, "ke={ke}: {rw:?} vs {mc:?}");
        let imp = monte_carlo(&net, &teacher, Method::ImportanceEdge, budget, false, 1);
        assert_within(
            &format!("importance edge ke={ke}"),
            expected::importance_edge(&student, ke, false).unwrap(),
            imp,
        );
    }
}
