//! Small dense f64 linear algebra for the exact expectations (row-major n×n, n ≤ 20):
//! * `det`: LU with partial pivoting, det A = ±Π u_ii;
//! * `sym_eigen`: cyclic Jacobi rotations, A = V diag(λ) Vᵀ;
//! * `pinv_sym`: A⁺ = Σ_{|λ| > rtol·max|λ|} v vᵀ/λ, the pseudo-inverse with the relative cutoff the
//!   pruner's least squares use (so A⁺ b is the minimum-norm least-squares solution).

/// The determinant of the n×n matrix `a`.
pub fn det(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut d = 1.0;
    for col in 0..n {
        let p = (col..n)
            .max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs()))
            .expect("col < n");
        if m[p * n + col] == 0.0 {
            return 0.0;
        }
        if p != col {
            for j in 0..n {
                m.swap(p * n + j, col * n + j);
            }
            d = -d;
        }
        let pivot = m[col * n + col];
        d *= pivot;
        for i in col + 1..n {
            let f = m[i * n + col] / pivot;
            if f != 0.0 {
                for j in col..n {
                    m[i * n + j] -= f * m[col * n + j];
                }
            }
        }
    }
    d
}

/// Eigenvalues and eigenvectors (the columns of the row-major V) of the symmetric matrix `a`.
pub fn sym_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                rotate(&mut a, &mut v, n, p, q, c, s);
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// A ← Jᵀ A J and V ← V J for the rotation J with J_pp = J_qq = c, J_pq = s, J_qp = −s.
fn rotate(a: &mut [f64], v: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    for m in [&mut *a, &mut *v] {
        for k in 0..n {
            let (kp, kq) = (m[k * n + p], m[k * n + q]);
            m[k * n + p] = c * kp - s * kq;
            m[k * n + q] = s * kp + c * kq;
        }
    }
    for k in 0..n {
        let (pk, qk) = (a[p * n + k], a[q * n + k]);
        a[p * n + k] = c * pk - s * qk;
        a[q * n + k] = s * pk + c * qk;
    }
}

/// The pseudo-inverse of the symmetric matrix `a`, dropping eigenvalues below `rtol`·max|λ|.
pub fn pinv_sym(a: &[f64], n: usize, rtol: f64) -> Vec<f64> {
    let (lambda, v) = sym_eigen(a, n);
    let cutoff = rtol * lambda.iter().fold(0.0_f64, |m, l| m.max(l.abs()));
    let mut out = vec![0.0; n * n];
    for (e, &l) in lambda.iter().enumerate() {
        if l.abs() > cutoff && l != 0.0 {
            for i in 0..n {
                for j in 0..n {
                    out[i * n + j] += v[i * n + e] * v[j * n + e] / l;
                }
            }
        }
    }
    out
}

/// y = A x for the row-major n×m matrix `a`.
pub fn mat_vec(a: &[f64], x: &[f64]) -> Vec<f64> {
    a.chunks(x.len()).map(|row| row.iter().zip(x).map(|(r, x)| r * x).sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn determinants_by_hand() {
        assert!((det(&[2.0, 1.0, 1.0, 3.0], 2) - 5.0).abs() < 1e-12);
        // Needs a row swap: det [[0,1],[1,0]] = −1.
        assert!((det(&[0.0, 1.0, 1.0, 0.0], 2) + 1.0).abs() < 1e-12);
        assert_eq!(det(&[1.0, 1.0, 1.0, 1.0], 2), 0.0);
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        assert!((det(&a, 3) - (4.0 * 14.0 - 2.0 * 5.4 + 0.6 * (2.0 - 3.0))).abs() < 1e-12);
    }

    #[test]
    fn eigen_decomposition_reconstructs_the_matrix() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let (l, v) = sym_eigen(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let back: f64 = (0..3).map(|e| v[i * 3 + e] * l[e] * v[j * 3 + e]).sum();
                assert!((back - a[i * 3 + j]).abs() < 1e-12, "{i},{j}");
            }
        }
        assert!((l.iter().product::<f64>() - det(&a, 3)).abs() < 1e-10);
    }

    #[test]
    fn pseudo_inverse_of_a_singular_block() {
        // [[1,1],[1,1]]⁺ = [[1,1],[1,1]]/4.
        let p = pinv_sym(&[1.0, 1.0, 1.0, 1.0], 2, 1e-6);
        assert!(p.iter().all(|x| (x - 0.25).abs() < 1e-12), "{p:?}");
        let p = pinv_sym(&[2.0, 0.0, 0.0, 4.0], 2, 1e-6);
        assert!((p[0] - 0.5).abs() < 1e-15 && (p[3] - 0.25).abs() < 1e-15 && p[1] == 0.0);
        assert_eq!(mat_vec(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0]), [3.0, 7.0]);
    }
}
