//! Order parameters of a student against its teacher (Goldt et al. 2019; paper §3):
//! Q = w wᵀ/N (student–student), R = w w*ᵀ/N (student–teacher), T = w* w*ᵀ/N (teacher–teacher).
//! They determine the generalisation error of erf networks exactly (see `ge`), for any weights,
//! including pruned ones. Computed in f64.
use crate::model::two_layer::TwoLayer;
use anyhow::{ensure, Result};

/// Q [K×K], R [K×M] and T [M×M], row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderParams {
    pub k: usize,
    pub m: usize,
    pub q: Vec<f64>,
    pub r: Vec<f64>,
    pub t: Vec<f64>,
}

impl OrderParams {
    /// Computes Q, R, T from the first layers of `student` and `teacher`.
    pub fn new(student: &TwoLayer, teacher: &TwoLayer) -> Result<Self> {
        ensure!(
            student.input_dim == teacher.input_dim,
            "the student has {} inputs but the teacher has {}",
            student.input_dim,
            teacher.input_dim
        );
        let n = student.input_dim as f64;
        let overlap = |a: &TwoLayer, b: &TwoLayer| -> Vec<f64> {
            let mut out = Vec::with_capacity(a.hidden * b.hidden);
            for i in 0..a.hidden {
                for j in 0..b.hidden {
                    let s: f64 =
                        a.row(i).iter().zip(b.row(j)).map(|(x, y)| *x as f64 * *y as f64).sum();
                    out.push(s / n);
                }
            }
            out
        };
        Ok(Self {
            k: student.hidden,
            m: teacher.hidden,
            q: overlap(student, student),
            r: overlap(student, teacher),
            t: overlap(teacher, teacher),
        })
    }

    pub fn q(&self, i: usize, k: usize) -> f64 {
        self.q[i * self.k + k]
    }
    pub fn r(&self, i: usize, n: usize) -> f64 {
        self.r[i * self.m + n]
    }
    pub fn t(&self, n: usize, m: usize) -> f64 {
        self.t[n * self.m + m]
    }
}
