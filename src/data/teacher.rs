//! Teacher-student data: inputs x ~ N(0, I_N), labels y = teacher(x) + σζ with ζ ~ N(0, 1),
//! drawn one sample at a time from a seeded stream (never a stored training set: memory does not
//! grow with the number of steps). Each sample takes the next N + 1 values of a vectorised normal
//! stream (`data::normal`): x, then ζ. ζ is drawn even when σ = 0, as in the reference, so the
//! input stream does not depend on the noise level.
use crate::data::normal::Normals;
use crate::model::two_layer::TwoLayer;
use crate::seed;

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
