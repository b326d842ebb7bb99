//! Teacher-student data: inputs x ~ N(0, I_N), labels y = teacher(x) + σζ with ζ ~ N(0, 1),
//! drawn one sample at a time from a seeded stream (never a stored training set: memory does not
//! grow with the number of steps). ζ is drawn even when σ = 0, as in the reference, so the input
//! stream does not depend on the noise level.
use crate::model::two_layer::TwoLayer;
use crate::seed;
use rand::Rng;
use rand_distr::StandardNormal;

/// An endless stream of labelled samples from a teacher.
pub struct TeacherStream<'a> {
    teacher: &'a TwoLayer,
    noise_std: f32,
    rng: seed::Rng,
}

impl<'a> TeacherStream<'a> {
    pub fn new(teacher: &'a TwoLayer, noise_std: f32, rng: seed::Rng) -> Self {
        Self { teacher, noise_std, rng }
    }

    /// Fills `ys.len()` samples: `xs` holds them row by row ([ys.len(), N]).
    pub fn fill(&mut self, xs: &mut [f32], ys: &mut [f32]) {
        let n = self.teacher.input_dim;
        assert_eq!(xs.len(), ys.len() * n, "buffer sizes do not match");
        for (x, y) in xs.chunks_exact_mut(n).zip(ys.iter_mut()) {
            for xi in x.iter_mut() {
                *xi = self.rng.sample(StandardNormal);
            }
            let zeta: f32 = self.rng.sample(StandardNormal);
            *y = self.teacher.forward(x) + self.noise_std * zeta;
        }
    }

    /// Draws `samples` samples at once: ([samples × N] inputs, [samples] labels).
    pub fn take(&mut self, samples: usize) -> (Vec<f32>, Vec<f32>) {
        let mut xs = vec![0.0; samples * self.teacher.input_dim];
        let mut ys = vec![0.0; samples];
        self.fill(&mut xs, &mut ys);
        (xs, ys)
    }
}
