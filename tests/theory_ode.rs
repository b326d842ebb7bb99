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

/// Training in segments between checkpoints gives the same student, bit for bit, as one
/// uninterrupted run, and visits every checkpoint once, in order.
#[test]
fn checkpoints_leave_the_trained_student_bit_identical() {
    use prunelab::experiment::task::trajectory::train_segments;
    let (n, steps, lr) = (60, 5000u64, 0.5);
    let (start, teacher) = ode::seeded_networks(n, 4, 2, 4.0, 9, false);
    let mut whole = start.clone();
    let mut stream = TeacherStream::new(&teacher, 0.1, seed::rng(9, "train"));
    online::train(&mut whole, &mut stream, steps, lr, Engine::Fused, |_, _| {}).unwrap();
    let mut parts = start.clone();
    let mut stream = TeacherStream::new(&teacher, 0.1, seed::rng(9, "train"));
    let checkpoints = [0, 1, 77, 1024, 1500, 3000, 5000];
    let mut seen = Vec::new();
    let at = |step: u64, net: &prunelab::model::two_layer::TwoLayer, loss: f64| {
        assert_eq!(loss.is_nan(), step == 0, "no loss before the first step");
        seen.push((step, net.w[0]));
        Ok(())
    };
    let report = train_segments(
        &mut parts,
        &mut stream,
        (steps, &checkpoints),
        (lr, Engine::Fused),
        at,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(report.steps, steps);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), checkpoints);
    assert_eq!(seen[0].1, start.w[0]);
    assert_ne!(seen[3].1, start.w[0], "the checkpoints see the student as it learns");
    assert_eq!(parts.w, whole.w, "first layer bit-identical");
    assert_eq!(parts.v, whole.v, "second layer bit-identical");
}

/// K = M = 1, written out by hand with Saad & Solla's (1995) I₄ formula (an expression
/// independent of the generic tilted-covariance code) and integrated by fixed-step RK4, against
/// the ODE's adaptive integration.
#[test]
fn one_unit_dynamics_match_a_hand_integrated_solution() {
    use std::f64::consts::PI;
    let (eta, v_star, sigma, t) = (0.6, 1.5, 0.2, 1.3);
    // State (Q, R, v). Covariance of (λ, ν): [[Q, R], [R, T]].
    let rhs = |y: [f64; 3]| -> [f64; 3] {
        let (q, r, v) = (y[0], y[1], y[2]);
        let c = [[q, r], [r, t]];
        let i2 = |a: usize, b: usize| {
            (2.0 / PI) * (c[a][b] / ((1.0 + c[a][a]) * (1.0 + c[b][b])).sqrt()).asin()
        };
        let i3 = |a: usize, b: usize, d: usize| {
            let l3 = (1.0 + c[a][a]) * (1.0 + c[d][d]) - c[a][d] * c[a][d];
            (2.0 / PI) * (c[b][d] * (1.0 + c[a][a]) - c[a][b] * c[a][d])
                / ((1.0 + c[a][a]) * l3.sqrt())
        };
        let i4 = |a: usize, b: usize, e: usize, d: usize| {
            let l4 = (1.0 + c[a][a]) * (1.0 + c[b][b]) - c[a][b] * c[a][b];
            let l0 = l4 * c[e][d]
                - c[b][e] * c[b][d] * (1.0 + c[a][a])
                - c[a][e] * c[a][d] * (1.0 + c[b][b])
                + c[a][b] * c[a][e] * c[b][d]
                + c[a][b] * c[a][d] * c[b][e];
            let l1 = l4 * (1.0 + c[e][e])
                - c[b][e] * c[b][e] * (1.0 + c[a][a])
                - c[a][e] * c[a][e] * (1.0 + c[b][b])
                + 2.0 * c[a][b] * c[a][e] * c[b][e];
            let l2 = l4 * (1.0 + c[d][d])
                - c[b][d] * c[b][d] * (1.0 + c[a][a])
                - c[a][d] * c[a][d] * (1.0 + c[b][b])
                + 2.0 * c[a][b] * c[a][d] * c[b][d];
            4.0 / (PI * PI) / l4.sqrt() * (l0 / (l1 * l2).sqrt()).asin()
        };
        let j2 = (2.0 / PI) / (1.0 + 2.0 * q).sqrt();
        // Index 0 is the student's field λ, 1 the teacher's ν.
        let dr = -eta * v * (v * i3(0, 1, 0) - v_star * i3(0, 1, 1));
        let dq = -2.0 * eta * v * (v * i3(0, 0, 0) - v_star * i3(0, 0, 1))
            + eta
                * eta
                * v
                * v
                * (v * v * i4(0, 0, 0, 0) - 2.0 * v * v_star * i4(0, 0, 0, 1)
                    + v_star * v_star * i4(0, 0, 1, 1)
                    + sigma * sigma * j2);
        let dv = -eta * (v * i2(0, 0) - v_star * i2(0, 1));
        [dq, dr, dv]
    };
    let y0 = [0.8, 0.1, 0.3];
    let (h, end): (f64, f64) = (1e-3, 30.0);
    let mut y = y0;
    let mut hand = Vec::new();
    for step in 1..=(end / h).round() as usize {
        let add =
            |a: [f64; 3], b: [f64; 3], s: f64| [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]];
        let k1 = rhs(y);
        let k2 = rhs(add(y, k1, h / 2.0));
        let k3 = rhs(add(y, k2, h / 2.0));
        let k4 = rhs(add(y, k3, h));
        for i in 0..3 {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        if step % 5000 == 0 {
            hand.push(y);
        }
    }
    let eq = ode::Ode { k: 1, m: 1, t: vec![t], v_star: vec![v_star], lr: eta, noise_std: sigma };
    let outputs: Vec<f64> = (1..=hand.len()).map(|i| 5.0 * i as f64).collect();
    let start = eq.pack(&[y0[0]], &[y0[1]], &[y0[2]]);
    let traj =
        rk45::integrate(|y, d| eq.derivative(y, d), &start, &outputs, Default::default()).unwrap();
    for ((alpha, ode_y), hand_y) in outputs.iter().zip(&traj.states).zip(&hand) {
        for (a, b) in ode_y.iter().zip(hand_y) {
            assert!((a - b).abs() < 1e-6, "α = {alpha}: ODE {ode_y:?} vs hand {hand_y:?}");
        }
    }
    // The student learns: ε falls.
    assert!(eq.error(traj.states.last().unwrap()) < 0.5 * eq.error(&start));
}
