//! Standard normal draws in bulk, vectorised: the input stream of the teacher-student task
//! (4·10⁸ draws for the paper's 800,000 steps at N = 500) is generated here.
//!
//! The generator runs [`LANES`] independent xoshiro256++ generators side by side, their states
//! stored lane by lane so that one step of all of them is a handful of vector instructions. Each
//! 64-bit output becomes two normals by the Box–Muller transform: the upper 32 bits give the radius
//! r = √(−2 ln u₁) with u₁ = (⌊b/2⌋ + ½)·2⁻³¹ ∈ (0, 1] (so |z| ≤ 6.66), the lower 32 bits the angle:
//! two bits choose a quarter turn, 24 bits a uniform angle in [−π/4, π/4). ln, sin and cos are
//! Cephes' single-precision polynomials (about 1 ulp on these ranges), written with plain
//! additions and multiplications so the compiler vectorises them.
//!
//! Every operation is an IEEE-754 operation (Rust never fuses a·b + c), so the numbers are the same
//! bits on every x86-64 machine whichever instruction set runs them: the widest available (AVX-512,
//! AVX2, else SSE2) is chosen at run time, and the binary stays portable.
//!
//! The stream is a sequence of blocks of [`BLOCK`] normals, independent of how callers cut it:
//! drawing 3 then 500 values gives the same 503 numbers as drawing 503 at once.
use rand::RngCore;

/// Independent xoshiro256++ generators run side by side.
const LANES: usize = 8;
/// Generator steps per block.
const STEPS: usize = 8;
/// 64-bit outputs per block.
const WORDS: usize = LANES * STEPS;
/// Normals per block: the first `WORDS` are r·cos θ, the next `WORDS` r·sin θ of the same words.
pub const BLOCK: usize = 2 * WORDS;

/// A seeded source of standard normal `f32` values, filled a buffer at a time.
#[derive(Clone)]
pub struct Normals {
    /// xoshiro256++ state word `i` of lane `j` is `state[i][j]`.
    state: [[u64; LANES]; 4],
    spare: [f32; BLOCK],
    /// Index of the first unused value in `spare` (`BLOCK` when none is left).
    spare_from: usize,
}

impl Normals {
    /// A generator whose lanes are seeded from `rng` (4·LANES words).
    pub fn new(rng: &mut impl RngCore) -> Self {
        let mut state = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            for word in &mut state {
                word[lane] = rng.next_u64();
            }
            // xoshiro's one forbidden state (all zero), for completeness.
            if state.iter().all(|w| w[lane] == 0) {
                state[0][lane] = 1;
            }
        }
        Self { state, spare: [0.0; BLOCK], spare_from: BLOCK }
    }

    /// Fills `out` with the next `out.len()` values of the stream.
    pub fn fill(&mut self, out: &mut [f32]) {
        let take = (BLOCK - self.spare_from).min(out.len());
        out[..take].copy_from_slice(&self.spare[self.spare_from..self.spare_from + take]);
        self.spare_from += take;
        let out = &mut out[take..];
        let full = out.len() / BLOCK * BLOCK;
        blocks(&mut self.state, &mut out[..full]);
        let rest = &mut out[full..];
        if !rest.is_empty() {
            blocks(&mut self.state, &mut self.spare);
            rest.copy_from_slice(&self.spare[..rest.len()]);
            self.spare_from = rest.len();
        }
    }

    /// The next value of the stream.
    pub fn next_value(&mut self) -> f32 {
        let mut z = [0.0];
        self.fill(&mut z);
        z[0]
    }
}

crate::simd::widest!(
    /// Fills `out` (a multiple of `BLOCK` long), with the widest instruction set this CPU has.
    fn blocks(state: &mut [[u64; LANES]; 4], out: &mut [f32]) => blocks_portable
);

#[inline(always)]
fn blocks_portable(state: &mut [[u64; LANES]; 4], out: &mut [f32]) {
    let mut s = *state;
    let mut words = [0u64; WORDS];
    let (mut hi, mut lo) = ([0u32; WORDS], [0u32; WORDS]);
    for block in out.chunks_exact_mut(BLOCK) {
        for step in words.chunks_exact_mut(LANES) {
            xoshiro_step(&mut s, step);
        }
        // Split into 32-bit halves, so that the transform runs on as many lanes as f32 allows.
        for i in 0..WORDS {
            (hi[i], lo[i]) = ((words[i] >> 32) as u32, words[i] as u32);
        }
        let (cos, sin) = block.split_at_mut(WORDS);
        for i in 0..WORDS {
            (cos[i], sin[i]) = box_muller(hi[i], lo[i]);
        }
    }
    *state = s;
}

/// One xoshiro256++ step of every lane; `out[j]` is lane `j`'s output.
#[inline(always)]
fn xoshiro_step(s: &mut [[u64; LANES]; 4], out: &mut [u64]) {
    for j in 0..LANES {
        out[j] = s[0][j].wrapping_add(s[3][j]).rotate_left(23).wrapping_add(s[0][j]);
        let t = s[1][j] << 17;
        s[2][j] ^= s[0][j];
        s[3][j] ^= s[1][j];
        s[1][j] ^= s[2][j];
        s[0][j] ^= s[3][j];
        s[2][j] ^= t;
        s[3][j] = s[3][j].rotate_left(45);
    }
}

/// Two independent standard normals from 64 random bits, `hi` and `lo` (Box–Muller).
#[inline(always)]
fn box_muller(hi: u32, lo: u32) -> (f32, f32) {
    let u1 = (((hi >> 1) as i32) as f32 + 0.5) * (1.0 / 2_147_483_648.0); // (0, 1]
    let r = (-2.0 * ln(u1)).sqrt();
    let f = (((lo & 0x3fff_ffff) >> 6) as i32) as f32 * (1.0 / 16_777_216.0); // [0, 1)
    let a = (f - 0.5) * std::f32::consts::FRAC_PI_2; // [−π/4, π/4)
    let (c, s) = (r * cos_small(a), r * sin_small(a));
    // Rotate by (lo >> 30) quarter turns: bit 0 swaps (c, s) → (−s, c), bit 1 negates both.
    let (x, y) = if lo & (1 << 30) != 0 { (-s, c) } else { (c, s) };
    let flip = lo & (1 << 31);
    (f32::from_bits(x.to_bits() ^ flip), f32::from_bits(y.to_bits() ^ flip))
}

/// ln x for normal positive x (Cephes logf).
#[inline(always)]
fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // [0.5, 1)
    let small = m < SQRT_HALF;
    let e = (e - small as i32) as f32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut p = 7.037_683_6e-2;
    for c in [-1.151_461e-1, 1.167_699_9e-1, -1.242_014_1e-1, 1.424_932_3e-1, -1.666_805_8e-1] {
        p = p * m + c;
    }
    for c in [2.000_071_4e-1, -2.499_999_4e-1, 0.333_333_3] {
        p = p * m + c;
    }
    let y = p * m * z + e * -2.121_944_4e-4 - 0.5 * z;
    m + y + e * 0.693_359_4
}

/// sin a for |a| ≤ π/4 (Cephes sinf).
#[inline(always)]
fn sin_small(a: f32) -> f32 {
    let z = a * a;
    ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 1.666_665_5e-1) * z * a + a
}

/// cos a for |a| ≤ π/4 (Cephes cosf).
#[inline(always)]
fn cos_small(a: f32) -> f32 {
    let z = a * a;
    ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    fn draws(n: usize) -> Vec<f32> {
        let mut z = vec![0.0; n];
        Normals::new(&mut seed::rng(1, "normals")).fill(&mut z);
        z
    }

    #[test]
    fn polynomials_match_the_standard_library() {
        let mut worst = [0.0f64; 3];
        for i in 0..=100_000 {
            let t = i as f64 / 100_000.0;
            let x = (t * 30.0 - 30.0).exp2().max(f32::MIN_POSITIVE as f64) as f32;
            let a = ((t - 0.5) * std::f64::consts::FRAC_PI_2) as f32;
            let rel = |got: f32, want: f64| ((got as f64 - want) / want.abs().max(1e-30)).abs();
            worst[0] = worst[0].max(if x == 1.0 { 0.0 } else { rel(ln(x), (x as f64).ln()) });
            worst[1] = worst[1].max((sin_small(a) as f64 - (a as f64).sin()).abs());
            worst[2] = worst[2].max(rel(cos_small(a), (a as f64).cos()));
        }
        assert!(worst[0] < 5e-7 && worst[1] < 2e-7 && worst[2] < 2e-7, "{worst:?}");
    }

    #[test]
    fn the_stream_does_not_depend_on_how_it_is_cut() {
        let whole = draws(1000);
        let mut gen = Normals::new(&mut seed::rng(1, "normals"));
        let mut pieces = vec![0.0; 1000];
        let mut at = 0;
        for len in [3, 500, 1, 128, 255, 113] {
            gen.fill(&mut pieces[at..at + len]);
            at += len;
        }
        assert_eq!(at, 1000);
        assert_eq!(whole, pieces);
        assert_eq!(gen.next_value(), draws(1001)[1000]);
    }

    #[test]
    fn moments_and_tails_are_those_of_a_standard_normal() {
        let n = 4_000_000;
        let z = draws(n);
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let m2 = z.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
        let m4 = z.iter().map(|&v| (v as f64).powi(4)).sum::<f64>() / n as f64;
        // Standard errors: 1/√n, √2/√n and √96/√n; 5σ bounds.
        let se = 1.0 / (n as f64).sqrt();
        assert!(mean.abs() < 5.0 * se, "mean {mean}");
        assert!((m2 - 1.0).abs() < 5.0 * 2f64.sqrt() * se, "variance {m2}");
        assert!((m4 - 3.0).abs() < 5.0 * 96f64.sqrt() * se, "fourth moment {m4}");
        // P(|z| > 2) = 0.0455003, P(z > 3) = 0.0013499.
        let frac = |p: &dyn Fn(f32) -> bool| z.iter().filter(|&&v| p(v)).count() as f64 / n as f64;
        let (p2, p3) = (frac(&|v| v.abs() > 2.0), frac(&|v| v > 3.0));
        assert!((p2 - 0.045_500_3).abs() < 5.0 * (0.0455f64 * 0.9545 / n as f64).sqrt(), "{p2}");
        assert!((p3 - 0.001_349_9).abs() < 5.0 * (0.00135f64 / n as f64).sqrt(), "{p3}");
    }

    #[test]
    fn kolmogorov_smirnov_and_pairs_are_uncorrelated() {
        let n = 200_000;
        let mut z = draws(n);
        // Neighbours in the stream (including r·cos, r·sin of one word) are uncorrelated.
        let lag = |d: usize| z.windows(d + 1).map(|w| (w[0] * w[d]) as f64).sum::<f64>() / n as f64;
        for d in [1, WORDS, LANES] {
            assert!(lag(d).abs() < 5.0 / (n as f64).sqrt(), "lag {d}: {}", lag(d));
        }
        z.sort_by(f32::total_cmp);
        let cdf = |x: f64| 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let d = z
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = cdf(v as f64);
                (c - i as f64 / n as f64).abs().max(((i + 1) as f64 / n as f64 - c).abs())
            })
            .fold(0.0, f64::max);
        // The 0.1% critical value of the KS statistic is 1.95/√n.
        assert!(d < 1.95 / (n as f64).sqrt(), "KS distance {d}");
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let mut state = Normals::new(&mut seed::rng(3, "normals")).state;
        let mut portable_state = state;
        let (mut a, mut b) = (vec![0.0; 4 * BLOCK], vec![0.0; 4 * BLOCK]);
        blocks(&mut state, &mut a);
        blocks_portable(&mut portable_state, &mut b);
        assert_eq!(state, portable_state);
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}
