//! The projection phase of the k-DPP sampler (see `sampler`'s module documentation for the
//! algorithm, its cost and its safeguards): drawing `k` items from the projection DPP spanned by
//! the chosen eigenvectors, with blocked residual refreshes and AVX2 kernels where the CPU has them.
use rand::Rng;

/// Items per register tile of the blocked residual update ([`project_block`]).
const TILE_I: usize = 8;

/// Directions per register tile of the blocked residual update.
const TILE_T: usize = 4;

/// Consecutive rejections after which the projection phase refreshes the proposal early. With
/// the regular refreshes a proposal is accepted with probability at least about 1/2, so this only
/// triggers when round-off has made the proposal useless.
const MAX_REJECTIONS: usize = 32;

/// Re-orthogonalise the Gram–Schmidt direction when its squared norm is below this fraction of
/// the chosen row's squared norm (the classical "twice is enough" criterion).
const REORTH: f64 = 0.5;

/// Samples the projection DPP with kernel `V Vᵀ`, where `rows[a]` (length `n`) is column `a` of
/// `V` and the columns are orthonormal. Returns `rows.len()` distinct items in draw order.
pub(super) fn sample_projection<R: Rng + ?Sized>(
    rows: &[&[f64]],
    n: usize,
    rng: &mut R,
) -> Vec<usize> {
    let k = rows.len();
    let mut chain = Chain::new(rows, n);
    let mut items = Vec::with_capacity(k);
    for it in 0..k {
        // Refresh once half of the items still to draw at the last refresh have been drawn:
        // the proposal mass is then at most twice the true mass k − it.
        if it > chain.fresh && 2 * (it - chain.fresh) >= k - chain.fresh {
            chain.refresh(it);
        }
        let j = chain.draw(it, rng);
        items.push(j);
        chain.res[j] = f64::NEG_INFINITY;
        if it + 1 < k {
            chain.add_direction(it, j);
        }
    }
    items
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
    fn new(rows: &[&[f64]], n: usize) -> Self {
        let k = rows.len();
        let mut res = vec![0.0; n];
        for r in rows {
            for (s, &v) in res.iter_mut().zip(*r) {
                *s += v * v;
            }
        }
        let mut chain = Self {
            n,
            k,
            vp: pack_items(rows, n),
            res,
            cum: vec![0.0; n],
            fresh: 0,
            b: vec![0.0; k * k],
            c: vec![0.0; n * k],
            row: vec![0.0; k],
            recent: Vec::with_capacity(k),
        };
        chain.rebuild_proposal();
        chain
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
        let mut r = self.res[i];
        for bt in self.b[self.fresh * k..it * k].chunks_exact(k) {
            let ct = dot(&self.row, bt);
            self.recent.push(ct);
            r -= ct * ct;
        }
        r
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
    /// Gram–Schmidt pass when more than half of `‖V_j‖²` cancels.
    fn add_direction(&mut self, it: usize, j: usize) {
        let k = self.k;
        let (done, rest) = self.b.split_at_mut(it * k);
        let prev: Vec<&[f64]> = done.chunks_exact(k).collect();
        let bt = &mut rest[..k];
        bt.copy_from_slice(&self.row);
        let row_norm2 = dot(bt, bt);
        let mut coef: Vec<f64> = self.c[j * k..][..self.fresh].iter().map(|&x| -x).collect();
        coef.extend(self.recent.iter().map(|&x| -x));
        accumulate(bt, &prev, &coef, 0);
        let mut norm2 = dot(bt, bt);
        if norm2 < REORTH * row_norm2 {
            for (s, bprev) in coef.iter_mut().zip(&prev) {
                *s = -dot(bprev, bt);
            }
            accumulate(bt, &prev, &coef, 0);
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

/// For the directions `b` (`k` each, numbered from `first`): stores `c_t[i] = V_i · b_t` at
/// `c[i·k + t]` and subtracts `c_t[i]²` from `res[i]`, in increasing `t`, for every item `i`.
///
/// A matrix product: tiles of [`TILE_I`] items × [`TILE_T`] directions are accumulated in
/// registers over all `k` coordinates from packed copies of `V` and `b`, so each tile of `V` is
/// read from memory once per refresh instead of once per direction.
pub(super) fn project_block(vp: &[f64], b: &[f64], first: usize, c: &mut [f64], res: &mut [f64]) {
    let n = res.len();
    let k = c.len() / n;
    let m = b.len() / k;
    let bp = pack_directions(b, k);
    for (tile, lo) in vp.chunks_exact(k * TILE_I).zip((0..n).step_by(TILE_I)) {
        let width = TILE_I.min(n - lo);
        for (q, bq) in bp.chunks_exact(k * TILE_T).enumerate() {
            let acc = tile_product(tile, bq);
            for (l, i) in (lo..lo + width).enumerate() {
                for (p, t) in (q * TILE_T..m.min((q + 1) * TILE_T)).enumerate() {
                    c[i * k + first + t] = acc[p][l];
                }
            }
        }
        for i in lo..lo + width {
            for &ct in &c[i * k + first..][..m] {
                res[i] -= ct * ct;
            }
        }
    }
}

/// Packs the rows (`k` of length `n`) into tiles of [`TILE_I`] items, coordinate-major within
/// a tile (`k · TILE_I` values: the tile's items' coordinate `a`, then `a + 1`), zero-padded.
pub(super) fn pack_items(rows: &[&[f64]], n: usize) -> Vec<f64> {
    let k = rows.len();
    let mut vp = vec![0.0; n.div_ceil(TILE_I) * k * TILE_I];
    for (tile, lo) in vp.chunks_exact_mut(k * TILE_I).zip((0..n).step_by(TILE_I)) {
        let width = TILE_I.min(n - lo);
        for (dst, r) in tile.chunks_exact_mut(TILE_I).zip(rows) {
            dst[..width].copy_from_slice(&r[lo..lo + width]);
        }
    }
    vp
}

/// Packs directions (`k` each) into groups of [`TILE_T`], coordinate-major within a group
/// (`k · TILE_T` values: all directions' coordinate `a`, then `a + 1`), zero-padded.
fn pack_directions(b: &[f64], k: usize) -> Vec<f64> {
    let m = b.len() / k;
    let groups = m.div_ceil(TILE_T);
    let mut bp = vec![0.0; groups * k * TILE_T];
    for (t, bt) in b.chunks_exact(k).enumerate() {
        let group = &mut bp[t / TILE_T * k * TILE_T..][..k * TILE_T];
        for (a, &x) in bt.iter().enumerate() {
            group[a * TILE_T + t % TILE_T] = x;
        }
    }
    bp
}

/// `acc[p][l] = Σ_a vp[a][l] · bp[a][p]` for packed `vp` (`TILE_I` per coordinate) and `bp`
/// (`TILE_T` per coordinate), summed in increasing `a`.
///
/// Uses AVX2 where the CPU has it (detected at run time; the crate is built for baseline x86-64).
/// Only the vector width changes, never the operations or their order (no fused multiply-add), so
/// both paths give bit-identical results and seeded draws do not depend on the machine.
fn tile_product(vp: &[f64], bp: &[f64]) -> [[f64; TILE_I]; TILE_T] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of `tile_product_avx2`.
        return unsafe { tile_product_avx2(vp, bp) };
    }
    tile_product_body(vp, bp)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tile_product_avx2(vp: &[f64], bp: &[f64]) -> [[f64; TILE_I]; TILE_T] {
    tile_product_body(vp, bp)
}

#[inline(always)]
fn tile_product_body(vp: &[f64], bp: &[f64]) -> [[f64; TILE_I]; TILE_T] {
    let mut acc = [[0.0; TILE_I]; TILE_T];
    for (v, w) in vp.chunks_exact(TILE_I).zip(bp.chunks_exact(TILE_T)) {
        for (accp, &wp) in acc.iter_mut().zip(w) {
            for (x, &vl) in accp.iter_mut().zip(v) {
                *x += vl * wp;
            }
        }
    }
    acc
}

/// `out += Σ_a coef[a] · rows[a][lo..lo + out.len()]`, four rows per pass over `out`.
fn accumulate(out: &mut [f64], rows: &[&[f64]], coef: &[f64], lo: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of `accumulate_avx2`.
        return unsafe { accumulate_avx2(out, rows, coef, lo) };
    }
    accumulate_body(out, rows, coef, lo)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(out: &mut [f64], rows: &[&[f64]], coef: &[f64], lo: usize) {
    accumulate_body(out, rows, coef, lo)
}

#[inline(always)]
fn accumulate_body(out: &mut [f64], rows: &[&[f64]], coef: &[f64], lo: usize) {
    let hi = lo + out.len();
    let mut quads = rows.chunks_exact(4).zip(coef.chunks_exact(4));
    for (r, w) in &mut quads {
        let (r0, r1, r2, r3) = (&r[0][lo..hi], &r[1][lo..hi], &r[2][lo..hi], &r[3][lo..hi]);
        let (w0, w1, w2, w3) = (w[0], w[1], w[2], w[3]);
        // Index loops: the same vectorised code as iterator chains in release builds, and several
        // times faster in unoptimised test builds.
        for i in 0..out.len() {
            out[i] += (w0 * r0[i] + w1 * r1[i]) + (w2 * r2[i] + w3 * r3[i]);
        }
    }
    let tail = rows.len().min(coef.len()) / 4 * 4;
    for (r, &w) in rows[tail..].iter().zip(&coef[tail..]) {
        axpy(w, &r[lo..hi], out);
    }
}

/// `y += a · x`.
pub(super) fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    let len = x.len().min(y.len());
    let (x, y) = (&x[..len], &mut y[..len]);
    for i in 0..len {
        y[i] += a * x[i];
    }
}

/// `x · y`, with four independent accumulators so that it vectorises.
pub(super) fn dot(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of `dot_avx2`.
        return unsafe { dot_avx2(x, y) };
    }
    dot_body(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(x: &[f64], y: &[f64]) -> f64 {
    dot_body(x, y)
}

#[inline(always)]
fn dot_body(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len().min(y.len());
    let (x, y) = (&x[..len], &y[..len]);
    let mut acc = [0.0; 4];
    let quads = len / 4 * 4;
    for i in (0..quads).step_by(4) {
        acc[0] += x[i] * y[i];
        acc[1] += x[i + 1] * y[i + 1];
        acc[2] += x[i + 2] * y[i + 2];
        acc[3] += x[i + 3] * y[i + 3];
    }
    let mut tail = 0.0;
    for i in quads..len {
        tail += x[i] * y[i];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
