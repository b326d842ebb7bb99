//! Teacher-student data: inputs x ~ N(0, I_N), labels y = teacher(x) + σζ with ζ ~ N(0, 1),
//! drawn one sample at a time from a seeded stream (never a stored training set: memory does not
//! grow with the number of steps). Each sample takes the next N + 1 values of a vectorised normal
//! stream (`data::normal`): x, then ζ. ζ is drawn even when σ = 0, as in the reference, so the
//! input stream does not depend on the noise level.
//!
//! [`seeded_teacher`] and [`seeded_student`] draw a run's initial networks from its seed; the
//! experiment task and the learning-dynamics ODE (`theory::ode`) both call them, so a simulation
//! and its ODE start from the same networks.
use crate::data::normal::Normals;
use crate::model::two_layer::TwoLayer;
use crate::seed;

/// The teacher of a teacher-student run with `seed`: M rows w*_n ~ N(0, I_N) and v*_n = `v_star`.
/// With `normalize`, each row is rescaled to norm √N, so T_nn = |w*_n|²/N = 1 (to f32 rounding);
/// the random draws are the same either way.
pub fn seeded_teacher(
    input_dim: usize,
    m: usize,
    v_star: f64,
    normalize: bool,
    seed: u64,
) -> TwoLayer {
    let teacher =
        TwoLayer::gaussian(input_dim, m, Some(v_star as f32), &mut seed::rng(seed, "teacher"));
    if normalize {
        teacher.normalized_rows()
    } else {
        teacher
    }
}

/// The untrained student of a teacher-student run with `seed`: K rows w_k ~ N(0, I_N), v_k ~ N(0, 1).
pub fn seeded_student(input_dim: usize, k: usize, seed: u64) -> TwoLayer {
    TwoLayer::gaussian(input_dim, k, None, &mut seed::rng(seed, "student"))
}

/// An endless stream of labelled samples from a teacher.
pub struct TeacherStream<'a> {
    teacher: &'a TwoLayer,
    noise_std: f32,
    normals: Normals,
}

impl<'a> TeacherStream<'a> {
    /// The stream of `teacher` with label noise `noise_std`, its normals seeded from `rng`.
    pub fn new(teacher: &'a TwoLayer, noise_std: f32, mut rng: seed::Rng) -> Self {
        Self { teacher, noise_std, normals: Normals::new(&mut rng) }
    }

    /// Fills `ys.len()` samples: `xs` holds them row by row ([ys.len(), N]).
    pub fn fill(&mut self, xs: &mut [f32], ys: &mut [f32]) {
        let n = self.teacher.input_dim;
        assert_eq!(xs.len(), ys.len() * n, "buffer sizes do not match");
        for (x, zeta) in xs.chunks_exact_mut(n).zip(ys.iter_mut()) {
            self.normals.fill(x);
            *zeta = self.normals.next_value();
        }
        labels(self.teacher, xs, self.noise_std, ys);
    }

    /// Draws `samples` samples at once: ([samples × N] inputs, [samples] labels).
    pub fn take(&mut self, samples: usize) -> (Vec<f32>, Vec<f32>) {
        let mut xs = vec![0.0; samples * self.teacher.input_dim];
        let mut ys = vec![0.0; samples];
        self.fill(&mut xs, &mut ys);
        (xs, ys)
    }
}

/// `ys[i] ← teacher(x_i) + noise_std·ys[i]`, where `ys` holds ζ on entry.
#[inline(always)]
fn labels_body(teacher: &TwoLayer, xs: &[f32], noise_std: f32, ys: &mut [f32]) {
    for (x, y) in xs.chunks_exact(teacher.input_dim).zip(ys.iter_mut()) {
        *y = teacher.forward(x) + noise_std * *y;
    }
}

crate::simd::widest!(
    /// [`labels_body`] with the widest instruction set this CPU has.
    fn labels(teacher: &TwoLayer, xs: &[f32], noise_std: f32, ys: &mut [f32]) => labels_body
);

#[cfg(test)]
mod tests {
    use super::*;

    /// T_nn = |w*_n|²/N in f64.
    fn self_overlaps(net: &TwoLayer) -> Vec<f64> {
        (0..net.hidden)
            .map(|n| {
                let row = net.row(n);
                row.iter().map(|&x| x as f64 * x as f64).sum::<f64>() / net.input_dim as f64
            })
            .collect()
    }

    #[test]
    fn a_normalized_teacher_has_unit_self_overlaps_and_the_same_directions() {
        let plain = seeded_teacher(300, 3, 4.0, false, 7);
        let normal = seeded_teacher(300, 3, 4.0, true, 7);
        let t_plain = self_overlaps(&plain);
        assert!(
            t_plain.iter().all(|t| (t - 1.0).abs() > 1e-3),
            "raw rows are not unit: {t_plain:?}"
        );
        for t in self_overlaps(&normal) {
            assert!((t - 1.0).abs() < 1e-6, "T_nn = {t}");
        }
        assert_eq!(normal.v, vec![4.0; 3]);
        // Each normalised row is the raw row times a positive factor.
        for (n, t) in t_plain.iter().enumerate() {
            let scale = (1.0 / t).sqrt() as f32;
            for (a, b) in plain.row(n).iter().zip(normal.row(n)) {
                assert!((a * scale - b).abs() < 1e-5, "{a} · {scale} vs {b}");
            }
        }
        assert_eq!(seeded_student(300, 6, 7), seeded_student(300, 6, 7));
    }
}
