//! The deterministic learning dynamics of online SGD in the teacher-student setting, N → ∞
//! (Saad & Solla 1995; Goldt et al. 2019), for g(u) = erf(u/√2) with both layers trained.
//!
//! SGD (see `train::online`): w_i ← w_i − (η/√N)·Δ·v_i·g'(λ_i)·x, v_i ← v_i − (η/N)·Δ·g(λ_i),
//! Δ = Σ_j v_j g(λ_j) − Σ_n v*_n g(ν_n) − σζ, λ_i = w_i·x/√N, ν_n = w*_n·x/√N. The local fields
//! u = (λ, ν) are Gaussian with covariance C = [[Q, R], [Rᵀ, T]]. Write a = (v, −v*) so that the
//! noise-free error is Δ₀ = Σ_p a_p g(u_p). With time α = steps/N and x·x/N → 1:
//!
//! * dR_in/dα = −η v_i Σ_p a_p I₃(i, n, p)
//! * dQ_ik/dα = −η v_i Σ_p a_p I₃(i, k, p) − η v_k Σ_p a_p I₃(k, i, p)
//!   + η² v_i v_k [Σ_pq a_p a_q I₄(i, k, p, q) + σ² J₂(i, k)]
//! * dv_i/dα = −η Σ_p a_p I₂(i, p), T and v* constant,
//!
//! with the Gaussian averages (derived by Stein's lemma and by tilting the Gaussian with
//! exp(−(u_a² + u_b²)/2)):
//!
//! * I₂(a, b) = E[g(u_a) g(u_b)] = (2/π)·asin(C_ab / √((1 + C_aa)(1 + C_bb)))
//! * J₂(a, b) = E[g'(u_a) g'(u_b)] = (2/π) / √Λ, Λ = (1 + C_aa)(1 + C_bb) − C_ab²
//!   (so the noise term of dQ_ii is η² v_i² σ²·(2/π)/√(1 + 2Q_ii))
//! * I₃(a, b, c) = E[g'(u_a) u_b g(u_c)] = (2/π)·(C_bc(1 + C_aa) − C_ab C_ac) / ((1 + C_aa)√Λ₃),
//!   Λ₃ = (1 + C_aa)(1 + C_cc) − C_ac²
//! * I₄(a, b, c, d) = E[g'(u_a) g'(u_b) g(u_c) g(u_d)] = J₂(a, b)·I₂'(c, d), where I₂' is I₂
//!   under the tilted covariance C' = C − C_{·,ab} (I + C_{ab,ab})⁻¹ C_{ab,·}; this equals Saad &
//!   Solla's (4/π²)·asin(Λ₀/√(Λ₁Λ₂))/√Λ₄.
use super::ge;
use super::order_params::OrderParams;
use crate::data::teacher::{seeded_student, seeded_teacher};
use crate::model::two_layer::TwoLayer;
use anyhow::{ensure, Result};
use std::f64::consts::FRAC_2_PI;

/// The fixed parts of the dynamics: the teacher (T, v*), the learning rate η and the label noise σ.
/// States are flat vectors `[Q (K×K row-major), R (K×M row-major), v (K)]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ode {
    pub k: usize,
    pub m: usize,
    pub t: Vec<f64>,
    pub v_star: Vec<f64>,
    pub lr: f64,
    pub noise_std: f64,
}

impl Ode {
    /// Length of a state vector.
    pub fn dim(&self) -> usize {
        self.k * self.k + self.k * self.m + self.k
    }

    /// Packs Q, R and v into a state vector.
    pub fn pack(&self, q: &[f64], r: &[f64], v: &[f64]) -> Vec<f64> {
        assert_eq!((q.len(), r.len(), v.len()), (self.k * self.k, self.k * self.m, self.k));
        [q, r, v].concat()
    }

    pub fn q<'a>(&self, y: &'a [f64]) -> &'a [f64] {
        &y[..self.k * self.k]
    }
    pub fn r<'a>(&self, y: &'a [f64]) -> &'a [f64] {
        &y[self.k * self.k..self.k * (self.k + self.m)]
    }
    pub fn v<'a>(&self, y: &'a [f64]) -> &'a [f64] {
        &y[self.k * (self.k + self.m)..]
    }

    /// The order parameters of state `y`.
    pub fn order_params(&self, y: &[f64]) -> OrderParams {
        let (q, r, t) = (self.q(y).to_vec(), self.r(y).to_vec(), self.t.clone());
        OrderParams { k: self.k, m: self.m, q, r, t }
    }

    /// ε(Q, R, T, v, v*) of state `y` (noise-free; the test loss is ε + σ²/2).
    pub fn error(&self, y: &[f64]) -> f64 {
        ge::generalisation_error(&self.order_params(y), self.v(y), &self.v_star)
    }

    /// The covariance C = [[Q, R], [Rᵀ, T]] of the local fields, (K+M)×(K+M) row-major.
    fn covariance(&self, y: &[f64]) -> Vec<f64> {
        let (k, p) = (self.k, self.k + self.m);
        let (q, r) = (self.q(y), self.r(y));
        let mut c = vec![0.0; p * p];
        for a in 0..p {
            for b in 0..p {
                c[a * p + b] = match (a < k, b < k) {
                    (true, true) => q[a * k + b],
                    (true, false) => r[a * self.m + b - k],
                    (false, true) => r[b * self.m + a - k],
                    (false, false) => self.t[(a - k) * self.m + b - k],
                };
            }
        }
        c
    }

    /// dy/dα at state `y`, written into `dy`.
    pub fn derivative(&self, y: &[f64], dy: &mut [f64]) {
        let (k, m, p) = (self.k, self.m, self.k + self.m);
        let c = self.covariance(y);
        let v = self.v(y);
        let a: Vec<f64> = v.iter().copied().chain(self.v_star.iter().map(|x| -x)).collect();
        let eta = self.lr;
        // s3[i·P + b] = Σ_c a_c I₃(i, b, c) = E[Δ₀ g'(λ_i) u_b].
        let mut s3 = vec![0.0; k * p];
        for i in 0..k {
            for b in 0..p {
                s3[i * p + b] = (0..p).map(|cc| a[cc] * i3(&c, p, i, b, cc)).sum();
            }
        }
        let (dq, rest) = dy.split_at_mut(k * k);
        let (dr, dv) = rest.split_at_mut(k * m);
        for i in 0..k {
            for kk in i..k {
                let linear = -eta * (v[i] * s3[i * p + kk] + v[kk] * s3[kk * p + i]);
                let (j2, s4) = second_order(&c, p, &a, i, kk);
                let quad = eta * eta * v[i] * v[kk] * (s4 + self.noise_std.powi(2) * j2);
                dq[i * k + kk] = linear + quad;
                dq[kk * k + i] = linear + quad;
            }
            for n in 0..m {
                dr[i * m + n] = -eta * v[i] * s3[i * p + k + n];
            }
            dv[i] = -eta * (0..p).map(|cc| a[cc] * i2(&c, p, i, cc)).sum::<f64>();
        }
    }
}

/// I₂(a, b) = (2/π)·asin(C_ab / √((1 + C_aa)(1 + C_bb))).
fn i2(c: &[f64], p: usize, a: usize, b: usize) -> f64 {
    let x = c[a * p + b] / ((1.0 + c[a * p + a]) * (1.0 + c[b * p + b])).sqrt();
    FRAC_2_PI * x.clamp(-1.0, 1.0).asin()
}

/// I₃(a, b, c) = (2/π)·(C_bc(1 + C_aa) − C_ab C_ac) / ((1 + C_aa)√Λ₃).
fn i3(cov: &[f64], p: usize, a: usize, b: usize, c: usize) -> f64 {
    let at = |x: usize, y: usize| cov[x * p + y];
    let lambda3 = (1.0 + at(a, a)) * (1.0 + at(c, c)) - at(a, c).powi(2);
    FRAC_2_PI * (at(b, c) * (1.0 + at(a, a)) - at(a, b) * at(a, c))
        / ((1.0 + at(a, a)) * lambda3.max(0.0).sqrt())
}

/// (J₂(i, k), Σ_pq a_p a_q I₄(i, k, p, q)): the tilted covariance C' of the fields under
/// g'(u_i)g'(u_k) is formed once, then each I₄ is J₂·I₂ under C'.
fn second_order(cov: &[f64], p: usize, a: &[f64], i: usize, k: usize) -> (f64, f64) {
    let at = |x: usize, y: usize| cov[x * p + y];
    let (d11, d12, d22) = (1.0 + at(i, i), at(i, k), 1.0 + at(k, k));
    let lambda4 = d11 * d22 - d12 * d12;
    let j2 = FRAC_2_PI / lambda4.sqrt();
    // (I + C_{ik,ik})⁻¹ = [[d22, −d12], [−d12, d11]] / Λ₄.
    let tilted = |x: usize, y: usize| {
        let (xi, xk, yi, yk) = (at(x, i), at(x, k), at(y, i), at(y, k));
        at(x, y) - (xi * (d22 * yi - d12 * yk) + xk * (d11 * yk - d12 * yi)) / lambda4
    };
    let diag: Vec<f64> = (0..p).map(|x| 1.0 + tilted(x, x)).collect();
    let mut sum = 0.0;
    for x in 0..p {
        if a[x] == 0.0 {
            continue;
        }
        for y in x..p {
            let arg = tilted(x, y) / (diag[x] * diag[y]).sqrt();
            let weight = if x == y { 1.0 } else { 2.0 };
            sum += weight * a[x] * a[y] * arg.clamp(-1.0, 1.0).asin();
        }
    }
    (j2, j2 * FRAC_2_PI * sum)
}

/// The initial student and teacher of a teacher-student run with `seed`, drawn by the functions
/// the run itself uses (`data::teacher::{seeded_student, seeded_teacher}`), so a simulation and
/// its ODE share a start; `normalize_teacher` as the config's key.
pub fn seeded_networks(
    input_dim: usize,
    k: usize,
    m: usize,
    v_star: f64,
    seed: u64,
    normalize_teacher: bool,
) -> (TwoLayer, TwoLayer) {
    let teacher = seeded_teacher(input_dim, m, v_star, normalize_teacher, seed);
    (seeded_student(input_dim, k, seed), teacher)
}

/// The ODE and initial state of `student` learning `teacher` at learning rate `lr`, noise σ.
pub fn from_networks(
    student: &TwoLayer,
    teacher: &TwoLayer,
    lr: f64,
    noise_std: f64,
) -> Result<(Ode, Vec<f64>)> {
    ensure!(lr.is_finite() && lr > 0.0, "the learning rate must be positive, got {lr}");
    ensure!(noise_std.is_finite() && noise_std >= 0.0, "σ must be ≥ 0, got {noise_std}");
    let op = OrderParams::new(student, teacher)?;
    let ode = Ode {
        k: op.k,
        m: op.m,
        t: op.t.clone(),
        v_star: teacher.v.iter().map(|&x| x as f64).collect(),
        lr,
        noise_std,
    };
    let v: Vec<f64> = student.v.iter().map(|&x| x as f64).collect();
    let y = ode.pack(&op.q, &op.r, &v);
    Ok((ode, y))
}

#[cfg(test)]
mod tests {
    use super::super::{linalg, rk45};
    use super::*;
    use crate::seed;
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// Z = K/M identical copies of each of M orthonormal teacher units, v_i = v*/Z: ε = 0.
    fn specialised(m: usize, z: usize, v_star: f64, noise_std: f64) -> (Ode, Vec<f64>) {
        let k = m * z;
        let q: Vec<f64> =
            (0..k * k).map(|x| if x / k / z == x % k / z { 1.0 } else { 0.0 }).collect();
        let r: Vec<f64> = (0..k * m).map(|x| if x / m / z == x % m { 1.0 } else { 0.0 }).collect();
        let t = (0..m * m).map(|x| if x % (m + 1) == 0 { 1.0 } else { 0.0 }).collect();
        let ode = Ode { k, m, t, v_star: vec![v_star; m], lr: 0.5, noise_std };
        let y = ode.pack(&q, &r, &vec![v_star / z as f64; k]);
        (ode, y)
    }

    #[test]
    fn the_specialised_student_is_a_fixed_point_without_noise() {
        // v* = 1, η = 0.5 (stable); with v* = 4 this point is unstable at η = 0.5 (η·v² too
        // large: ε leaves 0 from round-off and the ODE diverges) but stable at η = 0.2.
        let (ode, y) = specialised(2, 3, 1.0, 0.0);
        assert!(ode.error(&y).abs() < 1e-12);
        let mut dy = vec![1.0; ode.dim()];
        ode.derivative(&y, &mut dy);
        assert!(dy.iter().all(|d| d.abs() < 1e-12), "{dy:?}");
        let traj =
            rk45::integrate(|y, d| ode.derivative(y, d), &y, &[1.0, 1000.0], Default::default())
                .unwrap();
        for s in &traj.states {
            assert!(ode.error(s).abs() < 1e-12, "{}", ode.error(s));
        }
        // With noise the norms grow: dQ_ii = η² v_i² σ²·(2/π)/√(1 + 2Q_ii) > 0, the rest 0.
        let (noisy, y) = specialised(2, 3, 1.0, 0.5);
        noisy.derivative(&y, &mut dy);
        let want = 0.25 * (1.0f64 / 3.0).powi(2) * 0.25 * FRAC_2_PI / 3f64.sqrt();
        assert!((dy[0] - want).abs() < 1e-12, "{} vs {want}", dy[0]);
    }

    /// Monte-Carlo means of the SGD update's integrands over local fields u ~ N(0, C) and label
    /// noise, with their standard errors, in the order of the state vector.
    fn monte_carlo(ode: &Ode, y: &[f64], samples: usize) -> (Vec<f64>, Vec<f64>) {
        let (k, m, p) = (ode.k, ode.m, ode.k + ode.m);
        let c = ode.covariance(y);
        let mut l = vec![0.0; p * p]; // Cholesky factor of C
        for i in 0..p {
            for j in 0..=i {
                let s = c[i * p + j] - (0..j).map(|x| l[i * p + x] * l[j * p + x]).sum::<f64>();
                l[i * p + j] = if i == j { s.sqrt() } else { s / l[j * p + j] };
            }
        }
        let v = ode.v(y);
        let g = |u: f64| libm::erf(u * std::f64::consts::FRAC_1_SQRT_2);
        let gp = |u: f64| (FRAC_2_PI).sqrt() * (-0.5 * u * u).exp();
        let mut rng = seed::rng(3, "ode-monte-carlo");
        let (mut sum, mut sum2) = (vec![0.0; ode.dim()], vec![0.0; ode.dim()]);
        let mut d = vec![0.0; ode.dim()];
        for _ in 0..samples {
            let z: Vec<f64> = (0..p).map(|_| rng.sample(StandardNormal)).collect();
            let u: Vec<f64> = (0..p).map(|i| (0..=i).map(|j| l[i * p + j] * z[j]).sum()).collect();
            let zeta: f64 = rng.sample(StandardNormal);
            let delta = (0..k).map(|i| v[i] * g(u[i])).sum::<f64>()
                - (0..m).map(|n| ode.v_star[n] * g(u[k + n])).sum::<f64>()
                - ode.noise_std * zeta;
            let eta = ode.lr;
            for i in 0..k {
                for j in 0..k {
                    d[i * k + j] = -eta * delta * (v[i] * gp(u[i]) * u[j] + v[j] * gp(u[j]) * u[i])
                        + eta * eta * v[i] * v[j] * delta * delta * gp(u[i]) * gp(u[j]);
                }
                for n in 0..m {
                    d[k * k + i * m + n] = -eta * v[i] * delta * gp(u[i]) * u[k + n];
                }
                d[k * (k + m) + i] = -eta * delta * g(u[i]);
            }
            for (x, (s, s2)) in d.iter().zip(sum.iter_mut().zip(sum2.iter_mut())) {
                *s += x;
                *s2 += x * x;
            }
        }
        let n = samples as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let se = sum2.iter().zip(&mean).map(|(s2, mu)| ((s2 / n - mu * mu) / n).sqrt()).collect();
        (mean, se)
    }

    #[test]
    fn derivatives_match_monte_carlo_averages_of_the_update() {
        // A generic state: a seed's random networks with the student pulled towards the teacher.
        let (mut student, teacher) = seeded_networks(40, 3, 2, 1.5, 11, false);
        for x in 0..student.w.len() {
            student.w[x] = 0.6 * student.w[x] + 0.8 * teacher.w[x % (2 * 40)];
        }
        let (ode, y) = from_networks(&student, &teacher, 0.7, 0.4).unwrap();
        let mut dy = vec![0.0; ode.dim()];
        ode.derivative(&y, &mut dy);
        let (mean, se) = monte_carlo(&ode, &y, 400_000);
        for j in 0..ode.dim() {
            assert!(
                (dy[j] - mean[j]).abs() < 5.0 * se[j] + 1e-9,
                "component {j}: ODE {} vs Monte-Carlo {} ± {}",
                dy[j],
                mean[j],
                se[j]
            );
        }
    }

    #[test]
    fn adaptive_and_fixed_step_integrators_agree_for_one_unit() {
        let (student, teacher) = seeded_networks(100, 1, 1, 1.0, 5, false);
        let (ode, y0) = from_networks(&student, &teacher, 0.5, 0.1).unwrap();
        let f = |y: &[f64], d: &mut [f64]| ode.derivative(y, d);
        // The student first crosses a plateau (v changes sign), then converges.
        let adaptive = rk45::integrate(f, &y0, &[100.0], Default::default()).unwrap();
        let fixed = rk45::rk4(f, &y0, 100.0, 20_000);
        for (a, b) in adaptive.states[0].iter().zip(&fixed) {
            assert!((a - b).abs() < 1e-7, "{a} vs {b}");
        }
        // The student learns: ε falls by orders of magnitude.
        assert!(ode.error(&fixed) < 1e-2 * ode.error(&y0), "{}", ode.error(&fixed));
    }

    #[test]
    fn q_stays_positive_semidefinite_along_a_trajectory() {
        let (student, teacher) = seeded_networks(200, 4, 2, 2.0, 8, false);
        let (ode, y0) = from_networks(&student, &teacher, 0.8, 0.5).unwrap();
        let outputs: Vec<f64> = (0..=60).map(|i| 10f64.powf(-2.0 + i as f64 / 15.0)).collect();
        let traj = rk45::integrate(|y, d| ode.derivative(y, d), &y0, &outputs, Default::default())
            .unwrap();
        for (alpha, y) in traj.alpha.iter().zip(&traj.states) {
            let (eig, _) = linalg::sym_eigen(ode.q(y), ode.k);
            let min = eig.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(min > -1e-9, "α = {alpha}: smallest eigenvalue of Q {min}");
            let full = linalg::sym_eigen(&ode.covariance(y), ode.k + ode.m).0;
            assert!(full.iter().all(|&e| e > -1e-9), "α = {alpha}: C not PSD {full:?}");
            assert!(ode.error(y) >= 0.0);
        }
    }
}
