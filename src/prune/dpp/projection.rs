//! The projection phase of the k-DPP sampler (see `sampler`'s module documentation for the
//! algorithm, its cost and its safeguards): drawing `k` items from the projection DPP spanned by
//! the chosen eigenvectors, with blocked residual refreshes and kernels compiled for the
//! widest vector extension the CPU has.
use rand::Rng;

use crate::simd::madd;

/// Items per register tile of the blocked residual update ([`project_block`]).
const TILE_I: usize = 8;

/// Directions per register tile of the blocked residual update.
const TILE_T: usize = 4;

/// Consecutive rejections after which the projection phase refreshes the proposal early. With
/// the regular refreshes a proposal is accepted with probability at least about 1/2, so this only
/// triggers when round-off has made the proposal useless.
const MAX_REJECTIONS: usize = 32;

/// Re-orthogonalise the Gram–Schmidt direction when its squared norm is below this fraction of
/// the chosen row's squared norm. A direction left with a fraction `ρ` of the row's norm is
/// orthogonal to the earlier ones to about `ε / √ρ`, so above `2⁻¹⁰` less than five bits are lost
/// per direction: far below what can change a draw, while re-orthogonalising costs as much as the
/// first pass.
const REORTH: f64 = 1.0 / 1024.0;

/// Samples the projection DPP with kernel `V Vᵀ`, where `rows[a]` (length `n`) is column `a` of
/// `V` and the columns are orthonormal. Returns `rows.len()` distinct items in draw order.
/// `buffers` are the chain's large arrays, kept between samples (see [`Buffers`]).
pub(super) fn sample_projection<R: Rng + ?Sized>(
    rows: &[&[f64]],
    n: usize,
    rng: &mut R,
    buffers: &mut Buffers,
) -> Vec<usize> {
    let mut chain = Chain::new(rows, n, std::mem::take(buffers));
    let items = chain.draw_all(rng);
    *buffers = Buffers { vp: chain.vp, b: chain.b, c: chain.c };
    items
}

/// The chain's `O(n·k)` and `O(k²)` arrays, reused by the next sample: freshly allocated, they
/// come from the operating system as untouched pages (tens of MB for a CIFAR-sized layer), and
/// faulting them in cost about a tenth of a sample.
#[derive(Default)]
pub(super) struct Buffers {
    vp: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

/// State of the projection-phase chain rule (see the module documentation).
struct Chain {
    n: usize,
    k: usize,
    /// `V` in tiles of [`TILE_I`] items, coordinate-major within a tile (see [`pack_items`]).
    vp: Vec<f64>,
    /// Residual squared row norms after the first `fresh` directions; −∞ for chosen items.
    res: Vec<f64>,
    /// Inclusive prefix sums of `max(res, 0)`: the proposal of the current phase.
    cum: Vec<f64>,
    /// Number of directions `res` and `c` account for (the step of the last refresh).
    fresh: usize,
    /// Orthonormal directions in coefficient space, `k` each: `c_t = V b_t`.
    b: Vec<f64>,
    /// `c_t[i]` for `t < fresh`, item-major (`k` per item).
    c: Vec<f64>,
    /// Row `V_j` of the last candidate, and its `c_t[j]` for `fresh ≤ t < it`.
    row: Vec<f64>,
    recent: Vec<f64>,
}

impl Chain {
    fn new(rows: &[&[f64]], n: usize, buffers: Buffers) -> Self {
        let k = rows.len();
        let Buffers { mut vp, mut b, mut c } = buffers;
        pack_items_into(rows, n, &mut vp);
        // Every entry of `b` is written before it is read; `c` is zeroed because a refresh
        // continues its sums from it.
        b.resize(k * k, 0.0);
        c.clear();
        c.resize(n * k, 0.0);
        let mut res = vec![0.0; n];
        for r in rows {
            for (s, &v) in res.iter_mut().zip(*r) {
                *s += v * v;
            }
        }
        let mut chain = Self {
            n,
            k,
            vp,
            res,
            cum: vec![0.0; n],
            fresh: 0,
            b,
            c,
            row: vec![0.0; k],
            recent: Vec::with_capacity(k),
        };
        chain.rebuild_proposal();
        chain
    }

    /// Draws all `k` items, in draw order.
    fn draw_all<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Vec<usize> {
        let k = self.k;
        let mut items = Vec::with_capacity(k);
        for it in 0..k {
            // Refresh once half of the items still to draw at the last refresh have been drawn:
            // the proposal mass is then at most twice the true mass k − it.
            if it > self.fresh && 2 * (it - self.fresh) >= k - self.fresh {
                self.refresh(it);
            }
            let j = self.draw(it, rng);
            items.push(j);
            self.res[j] = f64::NEG_INFINITY;
            if it + 1 < k {
                self.add_direction(it, j);
            }
        }
        items
    }

    /// Sum of the clamped residuals, in index order.
    fn total(&self) -> f64 {
        self.cum.last().copied().unwrap_or(0.0)
    }

    fn rebuild_proposal(&mut self) {
        let mut acc = 0.0;
        for (s, &r) in self.cum.iter_mut().zip(&self.res) {
            acc += r.max(0.0);
            *s = acc;
        }
    }

    /// Accounts for directions `fresh..it` in every residual (blocked, see [`project_block`])
    /// and rebuilds the proposal from the exact residuals.
    fn refresh(&mut self, it: usize) {
        let (lo, k) = (self.fresh, self.k);
        project_block(&self.vp, &self.b[lo * k..it * k], lo, &mut self.c, &mut self.res);
        self.fresh = it;
        self.rebuild_proposal();
    }

    /// Draws item `it`'s index by rejection from the phase proposal, leaving the candidate's row
    /// in `row` and its `c_t[j]`, `fresh ≤ t < it`, in `recent`.
    fn draw<R: Rng + ?Sized>(&mut self, it: usize, rng: &mut R) -> usize {
        let mut rejected = 0;
        loop {
            if rejected >= MAX_REJECTIONS && self.fresh < it {
                self.refresh(it);
            }
            let total = self.total();
            if !(total > 0.0 && total.is_finite()) {
                if self.fresh < it {
                    self.refresh(it);
                    continue;
                }
                return self.fallback();
            }
            let i = self.propose(rng.gen::<f64>() * total);
            let weight = self.res[i].max(0.0);
            if weight > 0.0 && rng.gen::<f64>() * weight < self.current_residual(i, it) {
                return i;
            }
            rejected += 1;
        }
    }

    /// The first index whose prefix sum exceeds `target` (the last positive one if none does).
    fn propose(&self, target: f64) -> usize {
        let i = self.cum.partition_point(|&s| s <= target);
        if i < self.n {
            return i;
        }
        let last = self.total();
        self.cum.partition_point(|&s| s < last).min(self.n - 1)
    }

    /// The residual of unchosen item `i` after `it` directions (`−∞` if chosen), from its
    /// residual after `fresh`: `res[i] − Σ_{fresh ≤ t < it} (V_i · b_t)²`, never above `res[i]`.
    fn current_residual(&mut self, i: usize, it: usize) -> f64 {
        let k = self.k;
        self.load_row(i);
        let directions = &self.b[self.fresh * k..it * k];
        self.recent.resize(it - self.fresh, 0.0);
        project_row(&self.row, directions, &mut self.recent);
        self.recent.iter().fold(self.res[i], |r, &ct| r - ct * ct)
    }

    /// The unchosen item with the largest residual, once round-off has lost every residual.
    fn fallback(&mut self) -> usize {
        let best = self.res.iter().enumerate().fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        });
        self.load_row(best.0);
        best.0
    }

    /// Copies row `V_i` into `row` and empties `recent`.
    fn load_row(&mut self, i: usize) {
        let tile = &self.vp[i / TILE_I * self.k * TILE_I..][..self.k * TILE_I];
        for (x, coords) in self.row.iter_mut().zip(tile.chunks_exact(TILE_I)) {
            *x = coords[i % TILE_I];
        }
        self.recent.clear();
    }

    /// Makes direction `b_it` from the chosen item `j` (whose row and recent `c_t[j]` the draw
    /// left in `row` and `recent`): `b̃ = V_jᵀ − Σ_t c_t[j] b_t`, normalised, with a second
    /// Gram–Schmidt pass when all but a fraction [`REORTH`] of `‖V_j‖²` cancels.
    fn add_direction(&mut self, it: usize, j: usize) {
        let k = self.k;
        let (done, rest) = self.b.split_at_mut(it * k);
        let prev: Vec<&[f64]> = done.chunks_exact(k).collect();
        let bt = &mut rest[..k];
        bt.copy_from_slice(&self.row);
        let row_norm2 = dot(bt, bt);
        let mut coef: Vec<f64> = self.c[j * k..][..self.fresh].iter().map(|&x| -x).collect();
        coef.extend(self.recent.iter().map(|&x| -x));
        accumulate(bt, &prev, &coef);
        let mut norm2 = dot(bt, bt);
        if norm2 < REORTH * row_norm2 {
            project_row(bt, done, &mut coef);
            coef.iter_mut().for_each(|x| *x = -*x);
            accumulate(bt, &prev, &coef);
            norm2 = dot(bt, bt);
        }
        if norm2 > 0.0 && norm2.is_finite() {
            let inv = norm2.sqrt().recip();
            bt.iter_mut().for_each(|x| *x *= inv);
        } else {
            // Degenerate round-off case: j adds no direction, leave the residuals as they are.
            bt.fill(0.0);
        }
    }
}

/// Coordinates per cache block of a refresh: a tile's block (`TILE_I · KC` values, 16 KiB) stays
/// in the L1 cache while every direction group of the block passes over it.
const KC: usize = 256;

/// Directions per cache block of a refresh: their packed block (at most `DC · KC` values,
/// 128 KiB) stays in the L2 cache while every item tile passes over it.
const DC: usize = 64;

/// For the directions `b` (`k` each, numbered from `first`): stores `c_t[i] = V_i · b_t` at
/// `c[i·k + t]` and subtracts `c_t[i]²` from `res[i]`, in increasing `t`, for every item `i`.
///
/// A matrix product blocked for the caches: for each block of [`DC`] directions and [`KC`]
/// coordinates, tiles of [`TILE_I`] items × [`TILE_T`] directions are accumulated in registers
/// from packed copies of `V` and `b`, continuing from the partial sums of the previous coordinate
/// block. Each `c_t[i]` is therefore summed in increasing coordinate order whatever the blocks,
/// and `V` is streamed from memory once per direction block instead of once per direction.
pub(super) fn project_block(vp: &[f64], b: &[f64], first: usize, c: &mut [f64], res: &mut [f64]) {
    let n = res.len();
    let k = c.len() / n;
    let m = b.len() / k;
    for d0 in (0..m).step_by(DC) {
        let directions = &b[d0 * k..(d0 + DC).min(m) * k];
        let block_m = directions.len() / k;
        for a0 in (0..k).step_by(KC) {
            let a1 = (a0 + KC).min(k);
            let bp = pack_directions(directions, k, a0..a1);
            for (tile, lo) in vp.chunks_exact(k * TILE_I).zip((0..n).step_by(TILE_I)) {
                let width = TILE_I.min(n - lo);
                let coords = &tile[a0 * TILE_I..a1 * TILE_I];
                for (q, bq) in bp.chunks_exact((a1 - a0) * TILE_T).enumerate() {
                    let ts = q * TILE_T..block_m.min((q + 1) * TILE_T);
                    let at = |i: usize, t: usize| i * k + first + d0 + t;
                    let mut acc = [[0.0; TILE_I]; TILE_T];
                    for (p, t) in ts.clone().enumerate() {
                        for (l, i) in (lo..lo + width).enumerate() {
                            acc[p][l] = c[at(i, t)];
                        }
                    }
                    tile_product(coords, bq, &mut acc);
                    for (p, t) in ts.enumerate() {
                        for (l, i) in (lo..lo + width).enumerate() {
                            c[at(i, t)] = acc[p][l];
                        }
                    }
                }
            }
        }
    }
    for (i, r) in res.iter_mut().enumerate() {
        for &ct in &c[i * k + first..][..m] {
            *r -= ct * ct;
        }
    }
}

/// Packs the rows (`k` of length `n`) into tiles of [`TILE_I`] items, coordinate-major within
/// a tile (`k · TILE_I` values: the tile's items' coordinate `a`, then `a + 1`), zero-padded.
#[cfg(test)]
pub(super) fn pack_items(rows: &[&[f64]], n: usize) -> Vec<f64> {
    let mut vp = Vec::new();
    pack_items_into(rows, n, &mut vp);
    vp
}

/// [`pack_items`] into `vp`'s storage.
fn pack_items_into(rows: &[&[f64]], n: usize, vp: &mut Vec<f64>) {
    let k = rows.len();
    vp.clear();
    vp.resize(n.div_ceil(TILE_I) * k * TILE_I, 0.0);
    for (tile, lo) in vp.chunks_exact_mut(k * TILE_I).zip((0..n).step_by(TILE_I)) {
        let width = TILE_I.min(n - lo);
        for (dst, r) in tile.chunks_exact_mut(TILE_I).zip(rows) {
            dst[..width].copy_from_slice(&r[lo..lo + width]);
        }
    }
}

/// Packs coordinates `coords` of the directions (`k` each) into groups of [`TILE_T`],
/// coordinate-major within a group (all directions' coordinate `a`, then `a + 1`), zero-padded.
fn pack_directions(b: &[f64], k: usize, coords: std::ops::Range<usize>) -> Vec<f64> {
    let m = b.len() / k;
    let group_len = coords.len() * TILE_T;
    let mut bp = vec![0.0; m.div_ceil(TILE_T) * group_len];
    for (t, bt) in b.chunks_exact(k).enumerate() {
        let group = &mut bp[t / TILE_T * group_len..][..group_len];
        for (a, &x) in bt[coords.clone()].iter().enumerate() {
            group[a * TILE_T + t % TILE_T] = x;
        }
    }
    bp
}

crate::simd::widest_fused!(
    /// `acc[p][l] += Σ_a vp[a][l] · bp[a][p]` for packed `vp` (`TILE_I` per coordinate) and `bp`
    /// (`TILE_T` per coordinate), summed in increasing `a`. Every accumulator is its own lane, so
    /// the vector width never changes the result.
    fn tile_product(vp: &[f64], bp: &[f64], acc: &mut [[f64; TILE_I]; TILE_T]) => tile_product_body
);

#[inline(always)]
fn tile_product_body<const FUSED: bool>(vp: &[f64], bp: &[f64], acc: &mut [[f64; TILE_I]; TILE_T]) {
    for (v, w) in vp.chunks_exact(TILE_I).zip(bp.chunks_exact(TILE_T)) {
        for (accp, &wp) in acc.iter_mut().zip(w) {
            for (x, &vl) in accp.iter_mut().zip(v) {
                *x = madd::<FUSED>(vl, wp, *x);
            }
        }
    }
}

crate::simd::widest_fused!(
    /// `out += Σ_a coef[a] · rows[a]`, one row after the other, four rows per pass over `out`.
    fn accumulate(out: &mut [f64], rows: &[&[f64]], coef: &[f64]) => accumulate_body
);

#[inline(always)]
fn accumulate_body<const FUSED: bool>(out: &mut [f64], rows: &[&[f64]], coef: &[f64]) {
    let n = out.len();
    let mut quads = rows.chunks_exact(4).zip(coef.chunks_exact(4));
    for (r, w) in &mut quads {
        let (r0, r1, r2, r3) = (&r[0][..n], &r[1][..n], &r[2][..n], &r[3][..n]);
        // Index loops: the same vectorised code as iterator chains in release builds, and several
        // times faster in unoptimised test builds.
        for i in 0..n {
            let x = madd::<FUSED>(w[0], r0[i], out[i]);
            let x = madd::<FUSED>(w[1], r1[i], x);
            let x = madd::<FUSED>(w[2], r2[i], x);
            out[i] = madd::<FUSED>(w[3], r3[i], x);
        }
    }
    let tail = rows.len().min(coef.len()) / 4 * 4;
    for (r, &w) in rows[tail..].iter().zip(&coef[tail..]) {
        for (o, &x) in out.iter_mut().zip(*r) {
            *o = madd::<FUSED>(w, x, *o);
        }
    }
}

crate::simd::widest_fused!(
    /// `out[t] = row · b_t` for the directions `b` (`row.len()` each): eight directions at a
    /// time, each summed in eight lanes (element `a` into lane `a mod 8`) that are then added
    /// pairwise, so the row is read once per eight directions.
    pub(super) fn project_row(row: &[f64], b: &[f64], out: &mut [f64]) => project_row_body
);

#[inline(always)]
fn project_row_body<const FUSED: bool>(row: &[f64], b: &[f64], out: &mut [f64]) {
    let k = row.len();
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let full = k / 8 * 8;
    for (group, outs) in b.chunks(8 * k).zip(out.chunks_mut(8)) {
        let mut acc = [[0.0; 8]; 8];
        for start in (0..full).step_by(8) {
            let x = &row[start..start + 8];
            for (acc_t, bt) in acc.iter_mut().zip(group.chunks_exact(k)) {
                let y = &bt[start..start + 8];
                for l in 0..8 {
                    acc_t[l] = madd::<FUSED>(x[l], y[l], acc_t[l]);
                }
            }
        }
        for (acc_t, bt) in acc.iter_mut().zip(group.chunks_exact(k)) {
            for a in full..k {
                acc_t[a - full] = madd::<FUSED>(row[a], bt[a], acc_t[a - full]);
            }
        }
        for (o, acc_t) in outs.iter_mut().zip(&acc) {
            *o = lanes_sum(acc_t);
        }
    }
}

/// The sum of eight lanes, added pairwise in a fixed order.
#[inline(always)]
fn lanes_sum(x: &[f64; 8]) -> f64 {
    ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]))
}

/// `x · y`, as [`project_row`] sums it.
pub(super) fn dot(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len().min(y.len());
    let mut out = [0.0];
    project_row(&x[..len], &y[..len], &mut out);
    out[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn directions_stay_orthonormal_through_a_long_chain() {
        // With re-orthogonalisation only below REORTH, the directions of a whole chain must
        // still be orthonormal far beyond what could change a draw.
        let (n, k) = (400, 150);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(71);
        let mut cols: Vec<Vec<f64>> = Vec::new();
        while cols.len() < k {
            let mut v: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() - 0.5).collect();
            for _ in 0..2 {
                for u in &cols {
                    let p = dot(u, &v);
                    v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
                }
            }
            let norm = dot(&v, &v).sqrt();
            cols.push(v.iter().map(|x| x / norm).collect());
        }
        let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
        let mut chain = Chain::new(&refs, n, Buffers::default());
        let items = chain.draw_all(&mut rng);
        assert_eq!(items.len(), k);
        let mut worst: f64 = 0.0;
        // The last item adds no direction.
        let b: Vec<&[f64]> = chain.b.chunks_exact(k).take(k - 1).collect();
        for (s, bs) in b.iter().enumerate() {
            for (t, bt) in b.iter().enumerate().skip(s) {
                let want = if s == t { 1.0 } else { 0.0 };
                worst = worst.max((dot(bs, bt) - want).abs());
            }
        }
        assert!(worst < 1e-11, "directions off orthonormal by {worst:e}");
    }
}
