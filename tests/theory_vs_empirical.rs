//! The closed-form ε from Q, R, T equals the empirical ε̂ on Gaussian test inputs, within sampling
//! error, for random and trained weights at several sizes, with and without label noise.
use prunelab::data::teacher::TeacherStream;
use prunelab::evaluate::{ge_theory, TestSet};
use prunelab::model::two_layer::TwoLayer;
use prunelab::seed;
use prunelab::train::online::{self, Engine};
use tch::{Device, Kind};

/// Asserts |ε̂ − (ε + σ²/2)| ≤ 4 standard errors of ε̂.
fn check(student: &TwoLayer, teacher: &TwoLayer, noise: f32, samples: usize, what: &str) {
    let mut stream = TeacherStream::new(teacher, noise, seed::rng(99, "test"));
    let test = TestSet::draw(&mut stream, samples, Device::Cpu);
    let losses = test.losses(student).to_kind(Kind::Double);
    let mean = losses.mean(Kind::Double).double_value(&[]);
    let se = losses.std(true).double_value(&[]) / (samples as f64).sqrt();
    assert!((test.ge_empirical(student) - mean).abs() < 1e-9);
    let expected = ge_theory(student, teacher).unwrap() + (noise as f64).powi(2) / 2.0;
    assert!(
        (mean - expected).abs() <= 4.0 * se,
        "{what}: empirical {mean:.5} ± {se:.5} vs theory {expected:.5}"
    );
}

#[test]
fn analytic_error_matches_empirical_error_for_random_weights() {
    for (i, &(n, m, k)) in [(50, 1, 2), (100, 2, 6), (300, 3, 3), (20, 4, 8)].iter().enumerate() {
        let teacher = TwoLayer::gaussian(n, m, Some(2.0), &mut seed::rng(i as u64, "teacher"));
        let student = TwoLayer::gaussian(n, k, None, &mut seed::rng(i as u64, "student"));
        check(&student, &teacher, 0.0, 100_000, &format!("random N={n} M={m} K={k}"));
        check(&student, &teacher, 0.5, 100_000, &format!("random N={n} M={m} K={k} σ=0.5"));
    }
}

#[test]
fn analytic_error_matches_empirical_error_for_trained_weights() {
    for (i, &(n, m, k, noise)) in
        [(100, 2, 6, 0.0), (200, 2, 4, 0.25), (60, 3, 6, 0.0)].iter().enumerate()
    {
        let teacher = TwoLayer::gaussian(n, m, Some(4.0), &mut seed::rng(i as u64, "teacher"));
        let mut student = TwoLayer::gaussian(n, k, None, &mut seed::rng(i as u64, "student"));
        let mut stream = TeacherStream::new(&teacher, noise, seed::rng(i as u64, "train"));
        online::train(&mut student, &mut stream, 100_000, 0.5, Engine::Fused, |_, _| {}).unwrap();
        check(&student, &teacher, noise, 200_000, &format!("trained N={n} M={m} K={k} σ={noise}"));
    }
}
