//! The N → ∞ learning dynamics (`theory::ode`) against prunelab's online SGD at finite N, both
//! started from the same seeded networks; and `prunelab theory ode` end to end.
use prunelab::data::teacher::TeacherStream;
use prunelab::evaluate::ge_theory;
use prunelab::seed;
use prunelab::theory::{ode, rk45};
use prunelab::train::online::{self, Engine};

/// ε of SGD (N = 500, K = M = 2) at several α against the ODE from the same start.
#[test]
fn sgd_follows_the_ode() {
    let (n, k, m, v_star, lr, noise, s) = (500, 2, 2, 2.0, 0.5, 0.1, 3);
    let (mut student, teacher) = ode::seeded_networks(n, k, m, v_star, s, false);
    let (eq, y0) = ode::from_networks(&student, &teacher, lr, noise).unwrap();
    let checkpoints = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];
    let traj =
        rk45::integrate(|y, d| eq.derivative(y, d), &y0, &checkpoints, Default::default()).unwrap();
    let mut stream = TeacherStream::new(&teacher, noise as f32, seed::rng(s, "train"));
    let mut done = 0u64;
    for (alpha, y) in traj.alpha.iter().zip(&traj.states) {
        let target = (alpha * n as f64).round() as u64;
        online::train(&mut student, &mut stream, target - done, lr, Engine::Fused, |_, _| {})
            .unwrap();
        done = target;
        let (sim, theory) = (ge_theory(&student, &teacher).unwrap(), eq.error(y));
        eprintln!("α = {alpha:6}: SGD ε = {sim:.5}, ODE ε = {theory:.5}");
        assert!(
            (sim - theory).abs() <= 0.2 * theory + 0.01,
            "α = {alpha}: SGD ε = {sim} vs ODE ε = {theory}"
        );
    }
}
