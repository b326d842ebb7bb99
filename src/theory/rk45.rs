//! Integrators for autonomous ODEs dy/dα = f(y) (pure f64).
//!
//! * `integrate`: Dormand–Prince 5(4) with step-size control (Hairer, Nørsett & Wanner,
//!   "Solving ODEs I", §II.4–5). The 5th-order solution is kept; the local error estimate
//!   e = y₅ − y₄ is scaled componentwise, err = max_i |e_i| / (atol + rtol·max(|y_i|, |y'_i|)),
//!   the step is accepted when err ≤ 1 and the next one is h·min(5, max(0.2, 0.9·err^(−1/5))).
//!   Steps end exactly on the requested output times.
//! * `rk4`: the classical fixed-step Runge–Kutta scheme, an independent reference.
use anyhow::{bail, ensure, Result};

/// Relative and absolute tolerances of `integrate`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self { rtol: 1e-8, atol: 1e-10 }
    }
}

/// The states at the output times and what it cost.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub alpha: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub accepted: usize,
    pub rejected: usize,
}

const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
];
/// b₅ − b₄: the weights of the error estimate (the 7th stage is f at the new point, FSAL).
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];
/// Steps allowed per call before giving up.
const MAX_STEPS: usize = 10_000_000;

/// One Dormand–Prince step (the system is autonomous, so the stage times are not needed) of size h from y (k[0] = f(y)); writes y₅ into `out` and
/// returns the scaled error. k[6] ends as f(y₅).
fn step(
    f: &mut impl FnMut(&[f64], &mut [f64]),
    y: &[f64],
    h: f64,
    k: &mut [Vec<f64>; 7],
    out: &mut [f64],
    tol: Tolerance,
) -> f64 {
    let mut tmp = vec![0.0; y.len()];
    for s in 1..7 {
        for (j, t) in tmp.iter_mut().enumerate() {
            *t = y[j] + h * A[s - 1].iter().enumerate().map(|(r, a)| a * k[r][j]).sum::<f64>();
        }
        f(&tmp, &mut k[s]);
        if s == 6 {
            out.copy_from_slice(&tmp);
        }
    }
    let mut err = 0.0f64;
    for j in 0..y.len() {
        let e = h * (0..7).map(|s| E[s] * k[s][j]).sum::<f64>();
        let scale = tol.atol + tol.rtol * y[j].abs().max(out[j].abs());
        err = err.max((e / scale).abs());
    }
    if err.is_nan() {
        f64::INFINITY
    } else {
        err
    }
}

/// Integrates dy/dα = f(y) from y(0) = `y0` and returns y at each of `outputs` (ascending, ≥ 0).
pub fn integrate(
    mut f: impl FnMut(&[f64], &mut [f64]),
    y0: &[f64],
    outputs: &[f64],
    tol: Tolerance,
) -> Result<Trajectory> {
    ensure!(outputs.windows(2).all(|w| w[0] <= w[1]), "output times must ascend");
    ensure!(outputs.first().is_none_or(|&a| a >= 0.0), "output times must be ≥ 0");
    let n = y0.len();
    let mut y = y0.to_vec();
    let mut k: [Vec<f64>; 7] = std::array::from_fn(|_| vec![0.0; n]);
    f(&y, &mut k[0]);
    let mut out = vec![0.0; n];
    let (mut alpha, mut h) = (0.0, 1e-3);
    let mut traj = Trajectory { alpha: vec![], states: vec![], accepted: 0, rejected: 0 };
    for &target in outputs {
        while alpha < target {
            if traj.accepted + traj.rejected >= MAX_STEPS {
                bail!("the ODE needed more than {MAX_STEPS} steps to reach α = {target}");
            }
            let last = alpha + h >= target;
            let h_try = if last { target - alpha } else { h };
            let err = step(&mut f, &y, h_try, &mut k, &mut out, tol);
            let factor = (0.9 * err.powf(-0.2)).clamp(0.2, 5.0);
            if err <= 1.0 {
                alpha = if last { target } else { alpha + h_try };
                y.copy_from_slice(&out);
                k.swap(0, 6);
                traj.accepted += 1;
                ensure!(y.iter().all(|x| x.is_finite()), "the ODE diverged at α = {alpha}");
                h = if last { h.max(h_try * factor) } else { h_try * factor };
            } else {
                traj.rejected += 1;
                h = h_try * factor;
                ensure!(h > 1e-14, "the ODE's step size vanished at α = {alpha}");
            }
        }
        traj.alpha.push(target);
        traj.states.push(y.clone());
    }
    Ok(traj)
}

/// Classical fixed-step RK4 from y(0) = `y0` to α = `alpha_end` in `steps` equal steps.
pub fn rk4(
    mut f: impl FnMut(&[f64], &mut [f64]),
    y0: &[f64],
    alpha_end: f64,
    steps: usize,
) -> Vec<f64> {
    let n = y0.len();
    let h = alpha_end / steps as f64;
    let mut y = y0.to_vec();
    let (mut k1, mut k2, mut k3, mut k4) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut tmp = vec![0.0; n];
    let shifted = |tmp: &mut [f64], y: &[f64], k: &[f64], c: f64| {
        for j in 0..y.len() {
            tmp[j] = y[j] + c * k[j];
        }
    };
    for _ in 0..steps {
        f(&y, &mut k1);
        shifted(&mut tmp, &y, &k1, h / 2.0);
        f(&tmp, &mut k2);
        shifted(&mut tmp, &y, &k2, h / 2.0);
        f(&tmp, &mut k3);
        shifted(&mut tmp, &y, &k3, h);
        f(&tmp, &mut k4);
        for j in 0..n {
            y[j] += h / 6.0 * (k1[j] + 2.0 * k2[j] + 2.0 * k3[j] + k4[j]);
        }
    }
    y
}
