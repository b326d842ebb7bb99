use super::*;
use crate::prune::dpp::sampler::log_esp;
use crate::theory::blocks::dpp_inclusion;
use crate::theory::linalg::sym_eigen;
use rand::Rng;

/// A small student near a specialised one: w_i = w*_{i mod M} + noise, with random v.
fn student(n: usize, k: usize, m: usize, seed: u64) -> Student {
    let mut rng = crate::seed::rng(seed, "expected-test");
    let mut normal = || -> f64 { rng.sample(rand_distr::StandardNormal) };
    let w_star: Vec<f64> = (0..m * n).map(|_| normal()).collect();
    let w = (0..k * n).map(|x| w_star[(x / n % m) * n + x % n] + 0.6 * normal()).collect();
    let v = (0..k).map(|_| 1.0 + normal()).collect();
    Student::new(n, w, w_star, v, vec![2.0; m]).unwrap()
}

#[test]
fn combinations_are_enumerated_once_each() {
    let mut s = vec![0, 1];
    let mut all = vec![s.clone()];
    while next_combination(&mut s, 4) {
        all.push(s.clone());
    }
    assert_eq!(all, [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]);
}

#[test]
fn dpp_normaliser_is_the_elementary_symmetric_polynomial() {
    let s = student(30, 5, 2, 1);
    let op = &s.net.op;
    let (lambda, _) = sym_eigen(&op.q, 5);
    for kn in 1..=5 {
        let mut sub: Vec<usize> = (0..kn).collect();
        let mut total = 0.0;
        loop {
            let q: Vec<f64> =
                sub.iter().flat_map(|&i| sub.iter().map(move |&j| op.q(i, j))).collect();
            total += det(&q, kn);
            if !next_combination(&mut sub, 5) {
                break;
            }
        }
        assert!((total.ln() - log_esp(&lambda, kn)).abs() < 1e-9, "kn = {kn}");
    }
}

#[test]
fn keeping_everything_changes_nothing() {
    let s = student(40, 4, 2, 2);
    let full = generalisation_error(&s.net.op, &s.net.v, &s.net.v_star);
    let e = node_pruning(&s.net, 4, true).unwrap();
    for x in [
        e.random,
        e.dpp.unwrap(),
        e.importance,
        e.random_reweighted.unwrap(),
        e.dpp_reweighted.unwrap(),
    ] {
        assert!((x - full).abs() < 1e-9, "{x} vs {full}");
    }
    assert!((random_edge(&s, 40).unwrap() - full).abs() < 1e-9);
    assert!((random_edge_limit(&s.net, 1.0) - full).abs() < 1e-12);
    assert!((random_edge_reweighted_limit(&s.net, 1.0) - full).abs() < 1e-9);
    assert!((importance_edge(&s, 40, true).unwrap() - full).abs() < 1e-9);
    assert!((expected_network(&s.net, 1.0) - full).abs() < 1e-12);
}

#[test]
fn divnet_never_hurts_on_average_and_random_node_is_the_plain_mean() {
    let s = student(40, 5, 2, 3);
    for kn in 1..5 {
        let e = node_pruning(&s.net, kn, true).unwrap();
        // DIVNET minimises the output discrepancy to the unpruned student, not ε; it still helps here.
        assert!(e.random_reweighted.unwrap() <= e.random + 1e-9, "kn = {kn}: {e:?}");
    }
    // Random node at kn = 1 by hand: the mean of the five single-unit errors.
    let terms = Terms::new(&s.net);
    let mean: f64 = (0..5).map(|i| terms.eps(&[i], &[s.net.v[i]])).sum::<f64>() / 5.0;
    assert!((node_pruning(&s.net, 1, false).unwrap().random - mean).abs() < 1e-12);
}

#[test]
fn larger_students_are_refused() {
    let s = student(10, 21, 3, 4);
    let err = node_pruning(&s.net, 2, false).unwrap_err().to_string();
    assert!(err.contains("K = 21") && err.contains("limit of 20"), "{err}");
}

/// E ε over every pair of exact-ke masks of a K = 2 student, by enumeration.
fn enumerate_random_edge(s: &Student, ke: usize) -> f64 {
    let n = s.n;
    let mut masks = vec![];
    let mut sub: Vec<usize> = (0..ke).collect();
    loop {
        masks.push(sub.clone());
        if !next_combination(&mut sub, n) {
            break;
        }
    }
    let (mut total, mut count) = (0.0, 0.0);
    for a in &masks {
        for b in &masks {
            let mut w = vec![0.0; 2 * n];
            a.iter().for_each(|&j| w[j] = s.w[j]);
            b.iter().for_each(|&j| w[n + j] = s.w[n + j]);
            let p = Student::new(n, w, s.w_star.clone(), s.net.v.clone(), s.net.v_star.clone())
                .unwrap();
            total += generalisation_error(&p.net.op, &p.net.v, &p.net.v_star);
            count += 1.0;
        }
    }
    total / count
}

#[test]
fn random_edge_second_order_matches_exhaustive_enumeration() {
    for (seed, ke) in [(5, 5), (6, 3), (7, 8)] {
        let s = student(10, 2, 1, seed);
        let exact = enumerate_random_edge(&s, ke);
        let limit = random_edge_limit(&s.net, ke as f64 / 10.0);
        let approx = random_edge(&s, ke).unwrap();
        // The second-order term removes most of the finite-N gap even at N = 10.
        assert!(
            (approx - exact).abs() <= 0.25 * (limit - exact).abs() + 1e-12,
            "ke = {ke}: exact {exact:.6}, second order {approx:.6}, limit {limit:.6}"
        );
    }
}

#[test]
fn dpp_inclusion_matches_the_sampler_that_pruning_uses() {
    let (k, kn) = (6, 2);
    let s = student(40, k, 2, 4);
    let joint = dpp_inclusion(&s.net.op.q, k, kn).unwrap();
    let marginal: Vec<f64> = (0..k).map(|i| joint[i * k + i]).collect();
    assert!((marginal.iter().sum::<f64>() - kn as f64).abs() < 1e-12, "{marginal:?}");
    for i in 0..k {
        let row: f64 = joint[i * k..(i + 1) * k].iter().sum();
        assert!((row - kn as f64 * marginal[i]).abs() < 1e-12, "row {i}: {row}");
        for j in 0..k {
            assert!((joint[i * k + j] - joint[j * k + i]).abs() < 1e-15);
        }
    }
    // Units 0 and 2 copy the same teacher unit, 0 and 1 different ones: the DPP avoids the first.
    assert!(joint[2] < 0.7 * joint[1], "{joint:?}");
    // The sampler dpp_node draws from: linear kernel L = W Wᵀ of the same weights.
    let w = tch::Tensor::from_slice(&s.w).view([k as i64, 40]);
    let kernel = crate::prune::dpp::kernel::node_kernel(
        &w,
        &crate::prune::dpp::kernel::InputMoments::Identity(40),
        crate::prune::dpp::kernel::KernelKind::Linear,
    );
    let dpp = crate::prune::dpp::kernel::decompose(&kernel).unwrap();
    let mut rng = crate::seed::rng(9, "inclusion-test");
    let draws = 40_000;
    let mut counts = vec![0.0; k * k];
    for _ in 0..draws {
        let set = dpp.sample(kn, &mut rng).unwrap();
        for &i in &set {
            for &j in &set {
                counts[i * k + j] += 1.0;
            }
        }
    }
    for (x, (&p, &c)) in joint.iter().zip(&counts).enumerate() {
        let freq = c / draws as f64;
        let se = (p * (1.0 - p) / draws as f64).sqrt();
        assert!((freq - p).abs() <= 4.0 * se + 1e-9, "entry {x}: sampled {freq} vs exact {p}");
    }
}

#[test]
fn dpp_inclusion_refuses_rank_deficient_kernels_and_bad_sizes() {
    // Rank 1: no two items together.
    let l = [1.0, 1.0, 1.0, 1.0];
    assert!(dpp_inclusion(&l, 2, 2).unwrap_err().to_string().contains("rank"));
    assert!(dpp_inclusion(&l, 2, 3).is_err());
    assert!(dpp_inclusion(&l, 3, 1).is_err());
    // Uniform for the identity: P(i ∈ S) = kn/K, P(i, k ∈ S) = kn(kn−1)/(K(K−1)).
    let eye: Vec<f64> = (0..16).map(|x| if x % 5 == 0 { 1.0 } else { 0.0 }).collect();
    let joint = dpp_inclusion(&eye, 4, 2).unwrap();
    assert!((joint[0] - 0.5).abs() < 1e-12 && (joint[1] - 1.0 / 6.0).abs() < 1e-12);
}

/// E ε over every pair of Bernoulli(c) masks of a K = 2 student, by enumeration of the 2^N
/// masks of each unit with their probabilities.
fn enumerate_bernoulli_edge(s: &Student, c: f64) -> f64 {
    let n = s.n;
    let prob = |bits: u32| {
        c.powi(bits.count_ones() as i32) * (1.0 - c).powi(n as i32 - bits.count_ones() as i32)
    };
    let mut total = 0.0;
    for a in 0u32..1 << n {
        for b in 0u32..1 << n {
            let w: Vec<f64> = (0..2 * n)
                .map(|x| if [a, b][x / n] >> (x % n) & 1 == 1 { s.w[x] } else { 0.0 })
                .collect();
            let p = Student::new(n, w, s.w_star.clone(), s.net.v.clone(), s.net.v_star.clone())
                .unwrap();
            total += prob(a) * prob(b) * generalisation_error(&p.net.op, &p.net.v, &p.net.v_star);
        }
    }
    total
}

#[test]
fn bernoulli_random_edge_second_order_matches_exhaustive_enumeration() {
    for (seed, ke) in [(5, 5), (6, 3), (7, 8)] {
        let s = student(10, 2, 1, seed);
        let exact = enumerate_bernoulli_edge(&s, ke as f64 / 10.0);
        let limit = random_edge_limit(&s.net, ke as f64 / 10.0);
        let approx = random_edge_bernoulli(&s, ke).unwrap();
        assert!(
            (approx - exact).abs() <= 0.25 * (limit - exact).abs() + 1e-12,
            "ke = {ke}: exact {exact:.6}, second order {approx:.6}, limit {limit:.6}"
        );
        // Bernoulli masks fluctuate more than exact-ke ones: a larger correction.
        let exact_ke = random_edge(&s, ke).unwrap();
        assert!((approx - limit).abs() > (exact_ke - limit).abs(), "ke = {ke}");
    }
}

/// A k-DPP with any kernel: the enumerated expectation equals the mean over masks drawn by the
/// pruner's sampler, and importance follows the scores given.
#[test]
fn a_general_kernel_matches_its_sampler() {
    use crate::prune::dpp::sampler::KDpp;
    let s = student(40, 5, 2, 11);
    let k = 5;
    // An RBF-like kernel on the rows: not proportional to Q.
    let kernel: Vec<f64> = (0..k * k)
        .map(|x| {
            let (i, j) = (x / k, x % k);
            let d2 = s.net.op.q(i, i) + s.net.op.q(j, j) - 2.0 * s.net.op.q(i, j);
            (-0.7 * d2).exp() + if i == j { 0.05 } else { 0.0 }
        })
        .collect();
    let (values, vectors) = sym_eigen(&kernel, k);
    let dpp = KDpp::new(k, values, vectors).unwrap();
    let terms = Terms::new(&s.net);
    let scores = [0.1, 0.5, 0.3, 0.9, 0.2];
    let mut rng = crate::seed::rng(4, "kernel-test");
    for kn in 1..=3 {
        let exact = node_pruning_with(&s.net, kn, false, &kernel, &scores).unwrap();
        let draws: Vec<f64> = (0..20_000)
            .map(|_| {
                let kept = dpp.sample(kn, &mut rng).unwrap();
                terms.eps(&kept, &kept.iter().map(|&i| s.net.v[i]).collect::<Vec<_>>())
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let sd =
            (draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64).sqrt();
        let dpp_exact = exact.dpp.unwrap();
        assert!((mean - dpp_exact).abs() <= 4.0 * sd / (draws.len() as f64).sqrt(), "kn = {kn}");
        let top: Vec<usize> = top_k(&scores, kn);
        let expected_importance =
            terms.eps(&top, &top.iter().map(|&i| s.net.v[i]).collect::<Vec<_>>());
        assert_eq!(exact.importance, expected_importance);
    }
    // The kernel matters: L ∝ Q gives another expectation.
    let q = node_pruning(&s.net, 2, false).unwrap().dpp.unwrap();
    let l = node_pruning_with(&s.net, 2, false, &kernel, &scores).unwrap().dpp.unwrap();
    assert!((q - l).abs() > 1e-6, "{q} vs {l}");
}
