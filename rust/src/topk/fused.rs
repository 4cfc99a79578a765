//! Fused scan kernels of the exact top-k search that run at a chosen SIMD level ([`crate::simd`]).
//!
//! Each kernel scores [`GROUP`] queries against a panel of [`PANEL`] corpus rows with the accumulators in registers,
//! compares the scores with each query's bar and hands only the rows that reach it to the per-query heaps: the
//! query x corpus scores never reach memory. Two precisions:
//!
//! - fp32 (portable, or AVX2 + FMA): the answer itself, used below the AVX-512 level where the `gemm` crate (which
//!   dispatches on its own) must not run.
//! - int16 candidates (AVX2 `vpmaddwd` + `vpaddd`, or AVX-VNNI `vpdpwssd`): each row is scaled to integers in
//!   `[-L, L]` with `L = floor(sqrt((2^31 - 1) / d))` (so no int32 sum can overflow) and rounded; the integer dot
//!   product is exact. With `q = s_q a + e` and `c = s_c b + f` (`|e_i| <= s_q / 2`, `|f_i| <= s_c / 2`),
//!   `q.c - s_q s_c (a.b) = sum_i s_q a_i f_i + e_i c_i`, so the error is at most
//!   `(s_q / 2) (s_c |a|_1 + |c|_1)`: [`I16Queries::error_bound`] takes the maxima over the corpus. The caller
//!   rescores the candidates in fp32 and proves from that bound that no other row can enter the top k.

use super::hits::{offer, rank_key, Hit};
use crate::parallel;
use ndarray::{ArrayView1, ArrayView2};
use rayon::prelude::*;
use std::collections::BinaryHeap;

/// Corpus rows per packed panel (two 256-bit registers of fp32 or int32 scores).
pub const PANEL: usize = 16;
/// Queries scored together per panel pass (12 accumulators, 2 panel registers and a broadcast: 15 of 16 ymm).
pub const GROUP: usize = 6;
/// Bytes of packed corpus per block: a block is scanned by every query group, so it should stay in the L2 cache.
const BLOCK_BYTES: usize = 192 * 1024;

/// The fp32 scan kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F32Kernel {
    /// Plain Rust (the compiler's baseline vectors).
    Portable,
    /// AVX2 + FMA.
    Avx2,
}

/// The int16 scan kernels (x86-64 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I16Kernel {
    /// AVX2 `vpmaddwd` then `vpaddd`.
    Avx2,
    /// AVX-VNNI `vpdpwssd` (multiply and accumulate in one instruction).
    AvxVnni,
}

/// Corpus rows per block for rows of `words` 4-byte words, a multiple of [`PANEL`].
pub fn block_rows(words: usize) -> usize {
    (BLOCK_BYTES / (4 * words.max(1))).max(PANEL) / PANEL * PANEL
}

/// Queries packed for [`scan_f32`]: contiguous rows, padded with zero rows to whole groups.
pub struct F32Queries {
    width: usize,
    data: Vec<f32>,
}

impl F32Queries {
    /// Packs `(n, d)` queries.
    pub fn new(queries: ArrayView2<f32>) -> Self {
        let width = queries.ncols();
        let padded = queries.nrows().div_ceil(GROUP) * GROUP;
        let mut data = vec![0f32; padded * width];
        for (r, row) in queries.rows().into_iter().enumerate() {
            for (slot, &v) in data[r * width..(r + 1) * width].iter_mut().zip(row.iter()) {
                *slot = v;
            }
        }
        F32Queries { width, data }
    }
}

/// Integer range of the int16 codes for dimension `d`: every int32 sum of `d` products stays in range.
pub fn i16_levels(d: usize) -> f32 {
    let even = d.div_ceil(2) * 2;
    (((i32::MAX as f64) / even.max(1) as f64).sqrt().floor()).min(32767.0) as f32
}

/// Scale and codes of one row: `x ~ scale * code`, codes in `[-levels, levels]` (all zero for a zero row).
fn quantize_row(row: ArrayView1<f32>, levels: f32, out: &mut [u32]) -> f32 {
    let values: std::borrow::Cow<[f32]> = row
        .as_slice()
        .map_or_else(|| row.to_vec().into(), Into::into);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::supports(crate::simd::Level::Avx2) {
        // SAFETY: avx2 and fma were detected.
        return unsafe { quantize_avx2(&values, levels, out) };
    }
    quantize(&values, levels, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn quantize_avx2(values: &[f32], levels: f32, out: &mut [u32]) -> f32 {
    quantize(values, levels, out)
}

/// [`quantize_row`] on a slice. Multiplies by the reciprocal of the scale and rounds half away from zero by
/// truncation: `|v / scale - code|` stays within `1/2 + levels 2^-23` (the product's rounding; `x + 1/2` is exact
/// below 2^15), inside the error bound's 1% margin. Written to vectorise: no branch per value.
#[inline(always)]
fn quantize(values: &[f32], levels: f32, out: &mut [u32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0f32, |m, &v| m.max(v.abs()));
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let max = lanes.iter().fold(tail, |m, &v| m.max(v));
    let scale = max / levels;
    let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    let bound = levels + 0.5;
    let code = |v: f32| -> u32 {
        let x = v * inverse;
        // `max`/`min` also map NaN to a bound, so the conversion below always has an in-range number.
        let rounded = (x + 0.5f32.copysign(x)).max(-bound).min(bound);
        // SAFETY: `rounded` is a number within [-levels - 1/2, levels + 1/2], levels < 2^15.
        (unsafe { rounded.to_int_unchecked::<i32>() } as u32) & 0xFFFF
    };
    let pairs = values.chunks_exact(2);
    let last = pairs.remainder().first().copied();
    for (slot, pair) in out.iter_mut().zip(pairs) {
        *slot = code(pair[0]) | (code(pair[1]) << 16);
    }
    if let (Some(v), Some(slot)) = (last, out.get_mut(values.len() / 2)) {
        *slot = code(v);
    }
    scale
}

/// Queries packed for [`scan_i16`]: int16 pairs per row (low half = even dimension), padded to whole groups.
pub struct I16Queries {
    pairs: usize,
    levels: f32,
    data: Vec<u32>,
    scales: Vec<f32>,
    /// `s_q |a|_1` per query: the magnitude of its codes, in its own units.
    code_l1: Vec<f64>,
}

impl I16Queries {
    /// Packs `(n, d)` queries with finite values.
    pub fn new(queries: ArrayView2<f32>) -> Self {
        let d = queries.ncols();
        let pairs = d.div_ceil(2);
        let levels = i16_levels(d);
        let padded = queries.nrows().div_ceil(GROUP) * GROUP;
        let mut data = vec![0u32; padded * pairs];
        let mut scales = vec![0f32; padded];
        let mut code_l1 = vec![0f64; queries.nrows()];
        for (r, row) in queries.rows().into_iter().enumerate() {
            let words = &mut data[r * pairs..(r + 1) * pairs];
            let scale = quantize_row(row, levels, words);
            scales[r] = scale;
            let l1: i64 = words
                .iter()
                .map(|&w| {
                    i64::from((w as u16 as i16).unsigned_abs())
                        + i64::from(((w >> 16) as u16 as i16).unsigned_abs())
                })
                .sum();
            code_l1[r] = f64::from(scale) * l1 as f64;
        }
        I16Queries {
            pairs,
            levels,
            data,
            scales,
            code_l1,
        }
    }

    /// The integer range the codes use.
    pub fn levels(&self) -> f32 {
        self.levels
    }

    /// Bound on `|approximate - exact|` of query `i`'s scores against any row, given the corpus maxima over rows of
    /// `s_c g` (`max_scale`) and `|c|_1 g` (`max_l1`), where `g` is the row's score factor (its inverse norm for
    /// cosine, else 1). Includes the rounding of the division that made the codes and of the fp32 products.
    pub fn error_bound(&self, i: usize, max_scale: f64, max_l1: f64) -> f64 {
        let s_q = f64::from(self.scales[i]);
        // |e_i| <= s_q (1/2 + L 2^-24) from the fp32 division; 1% more covers that and the fp32 maxima.
        0.5 * 1.01 * (max_scale * self.code_l1[i] + s_q * max_l1)
    }
}

/// A corpus block packed panel-major: panel p, word j holds [`PANEL`] rows' word j contiguously, then a factor per
/// row (padding rows: 0).
struct Panels<T> {
    width: usize,
    panels: usize,
    data: Vec<T>,
    factors: Vec<f32>,
}

fn pack_panels<T: Copy + Default + Send + Sync>(
    rows: usize,
    width: usize,
    parallel: bool,
    row_words: impl Fn(usize, &mut [T]) -> f32 + Sync,
) -> Panels<T> {
    let panels = rows.div_ceil(PANEL);
    let mut data = vec![T::default(); panels * width * PANEL];
    let mut factors = vec![0f32; panels * PANEL];
    let fill = |(p, (panel, factor)): (usize, (&mut [T], &mut [f32]))| {
        let mut words = vec![T::default(); width];
        for lane in 0..PANEL {
            let r = p * PANEL + lane;
            if r >= rows {
                break;
            }
            factor[lane] = row_words(r, &mut words);
            for (j, &v) in words.iter().enumerate() {
                panel[j * PANEL + lane] = v;
            }
        }
    };
    let chunks = data
        .chunks_mut(width * PANEL)
        .zip(factors.chunks_mut(PANEL))
        .enumerate();
    if parallel && parallel::parallel_enabled() && panels > 8 {
        let par = data
            .par_chunks_mut(width * PANEL)
            .zip(factors.par_chunks_mut(PANEL))
            .enumerate();
        parallel::install(|| par.for_each(fill));
    } else {
        chunks.for_each(fill);
    }
    Panels {
        width,
        panels,
        data,
        factors,
    }
}

/// Scans `nc` corpus rows in blocks of `step`: `block(c0, c1, heaps, parallel)` offers rows `c0..c1` to one heap of
/// at most `k` hits per query (`nq` of them). With enough blocks, workers take whole blocks into their own heaps,
/// merged at the end: one synchronisation per search rather than one per block (a busy machine that deschedules a
/// worker stalls a per-block barrier each time), and each packed block stays in the cache of the core scanning it.
/// With few blocks they run in turn and `parallel` lets each spread over query groups. `cancel` is checked per block.
pub(super) fn scan_blocks(
    nq: usize,
    nc: usize,
    step: usize,
    k: usize,
    cancel: &crate::cancel::Cancel,
    block: impl Fn(usize, usize, &mut [BinaryHeap<Hit>], bool) + Sync,
) -> crate::error::CoreResult<Vec<BinaryHeap<Hit>>> {
    let step = step.max(1);
    let starts: Vec<usize> = (0..nc).step_by(step).collect();
    let fresh =
        || -> Vec<BinaryHeap<Hit>> { (0..nq).map(|_| BinaryHeap::with_capacity(k + 1)).collect() };
    let threads = parallel::current_num_threads();
    if !parallel::parallel_enabled() || starts.len() < 4 * threads {
        let mut heaps = fresh();
        for &c0 in &starts {
            cancel.check()?;
            block(c0, (c0 + step).min(nc), &mut heaps, true);
        }
        return Ok(heaps);
    }
    let merge = |mut a: Vec<BinaryHeap<Hit>>, b: Vec<BinaryHeap<Hit>>| {
        for (into, from) in a.iter_mut().zip(b) {
            for hit in from {
                offer(into, k, hit);
            }
        }
        a
    };
    // One accumulator per worker, blocks handed out in order from a shared counter: balanced on a busy machine,
    // and exactly `threads` sets of heaps to merge.
    let next = std::sync::atomic::AtomicUsize::new(0);
    parallel::install(|| {
        (0..threads)
            .into_par_iter()
            .map(|_| {
                let mut heaps = fresh();
                loop {
                    let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&c0) = starts.get(b) else {
                        return Ok(heaps);
                    };
                    cancel.check()?;
                    block(c0, (c0 + step).min(nc), &mut heaps, false);
                }
            })
            .try_reduce(fresh, |a, b| Ok(merge(a, b)))
    })
}

/// The per-query bars: the score a row must reach to enter each heap (`+inf` for padding queries).
fn bars_of(group: &[BinaryHeap<Hit>], k: usize) -> [f32; GROUP] {
    let mut bars = [f32::INFINITY; GROUP];
    for (bar, heap) in bars.iter_mut().zip(group.iter()) {
        *bar = if heap.len() == k {
            heap.peek().map_or(f32::NEG_INFINITY, |w| w.score)
        } else {
            f32::NEG_INFINITY
        };
    }
    bars
}

/// A tile kernel: `(queries of the group, query width, panel, factors, query scales, lanes, bars, tile) -> hits`,
/// 16 bits per query (query-major), and the scores of the hit lanes in the tile.
type TileFn<T> = dyn Fn(
        &[T],
        usize,
        &[T],
        &[f32],
        &[f32; GROUP],
        usize,
        &[f32; GROUP],
        &mut [[f32; PANEL]; GROUP],
    ) -> u128
    + Sync;

/// Offers every row of `panels` (corpus indices from `col_offset`) to the heaps, group by group.
#[allow(clippy::too_many_arguments)]
fn scan<T: Sync>(
    queries: &[T],
    query_width: usize,
    query_scales: Option<&[f32]>,
    panels: &Panels<T>,
    rows: usize,
    col_offset: usize,
    exclude_self: bool,
    heaps: &mut [BinaryHeap<Hit>],
    k: usize,
    tile_fn: &TileFn<T>,
    parallel: bool,
) {
    if rows == 0 || k == 0 || heaps.is_empty() {
        return;
    }
    let width = panels.width;
    let work = |(g, group): (usize, &mut [BinaryHeap<Hit>])| {
        let q = &queries[g * GROUP * query_width..(g + 1) * GROUP * query_width];
        let mut scales = [1f32; GROUP];
        if let Some(s) = query_scales {
            scales.copy_from_slice(&s[g * GROUP..(g + 1) * GROUP]);
        }
        let mut bars = bars_of(group, k);
        let mut tile = [[0f32; PANEL]; GROUP];
        for p in 0..panels.panels {
            let panel = &panels.data[p * width * PANEL..(p + 1) * width * PANEL];
            let factor = &panels.factors[p * PANEL..(p + 1) * PANEL];
            let lanes = PANEL.min(rows - p * PANEL);
            let hits = tile_fn(
                q,
                query_width,
                panel,
                factor,
                &scales,
                lanes,
                &bars,
                &mut tile,
            );
            if hits == 0 {
                continue;
            }
            for (i, heap) in group.iter_mut().enumerate() {
                let mut mask = (hits >> (i * PANEL)) & 0xFFFF;
                while mask != 0 {
                    let lane = mask.trailing_zeros() as usize;
                    mask &= mask - 1;
                    let index = col_offset + p * PANEL + lane;
                    if exclude_self && index == g * GROUP + i {
                        continue;
                    }
                    let score = rank_key(tile[i][lane]);
                    if score >= bars[i] {
                        bars[i] = offer(heap, k, Hit { score, index });
                    }
                }
            }
        }
    };
    if parallel && parallel::parallel_enabled() && heaps.len() > GROUP {
        parallel::install(|| heaps.par_chunks_mut(GROUP).enumerate().for_each(work));
    } else {
        heaps.chunks_mut(GROUP).enumerate().for_each(work);
    }
}

/// Scores the `lanes` first lanes of `acc` rows (already scaled) against the bars: the hit mask, scores in `tile`.
/// A query whose heap is not full yet (bar `-inf`) takes every lane, NaN scores included, as the fp32 GEMM pass does.
#[inline(always)]
fn select(
    values: &[[f32; PANEL]; GROUP],
    lanes: usize,
    bars: &[f32; GROUP],
    tile: &mut [[f32; PANEL]; GROUP],
) -> u128 {
    let mut hits = 0u128;
    for (i, (row, &bar)) in values.iter().zip(bars).enumerate() {
        let mut m = 0u128;
        for (lane, &v) in row.iter().enumerate().take(lanes) {
            if v >= bar || bar == f32::NEG_INFINITY {
                m |= 1 << lane;
            }
        }
        if m != 0 {
            tile[i] = *row;
            hits |= m << (i * PANEL);
        }
    }
    hits
}

#[allow(clippy::too_many_arguments)]
fn tile_f32_portable(
    q: &[f32],
    width: usize,
    panel: &[f32],
    factor: &[f32],
    _scales: &[f32; GROUP],
    lanes: usize,
    bars: &[f32; GROUP],
    tile: &mut [[f32; PANEL]; GROUP],
) -> u128 {
    let mut acc = [[0f32; PANEL]; GROUP];
    for j in 0..width {
        let c = &panel[j * PANEL..(j + 1) * PANEL];
        for (i, a) in acc.iter_mut().enumerate() {
            let b = q[i * width + j];
            for (x, &y) in a.iter_mut().zip(c) {
                *x += b * y;
            }
        }
    }
    for a in acc.iter_mut() {
        for (x, &f) in a.iter_mut().zip(factor) {
            *x *= f;
        }
    }
    select(&acc, lanes, bars, tile)
}

/// Defines an AVX2 tile kernel: `$load(ptr)` loads 8 corpus words, `$bcast(q, idx)` broadcasts a query word, and
/// `$fma(acc, c, b)` accumulates; `$to_f32` turns an accumulator into 8 fp32 scores.
#[cfg(target_arch = "x86_64")]
macro_rules! avx2_tile {
    ($name:ident, $features:literal, $t:ty, $zero:expr, $load:expr, $bcast:expr, $fma:expr, $to_f32:expr) => {
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        fn $name(
            q: &[$t],
            width: usize,
            panel: &[$t],
            factor: &[f32],
            scales: &[f32; GROUP],
            lanes: usize,
            bars: &[f32; GROUP],
            tile: &mut [[f32; PANEL]; GROUP],
        ) -> u128 {
            use std::arch::x86_64::*;
            assert!(
                q.len() >= GROUP * width && panel.len() >= width * PANEL && factor.len() >= PANEL
            );
            let mut acc = [[$zero; 2]; GROUP];
            let (qp, pp) = (q.as_ptr(), panel.as_ptr());
            for j in 0..width {
                // SAFETY: j * PANEL + 16 <= width * PANEL <= panel.len() (asserted above).
                let (c0, c1) = unsafe { ($load(pp.add(j * PANEL)), $load(pp.add(j * PANEL + 8))) };
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: i * width + j < GROUP * width <= q.len().
                    let b = unsafe { $bcast(qp.add(i * width + j)) };
                    a[0] = $fma(a[0], c0, b);
                    a[1] = $fma(a[1], c1, b);
                }
            }
            // SAFETY: factor holds at least 16 values (asserted above).
            let (f0, f1) = unsafe {
                (
                    _mm256_loadu_ps(factor.as_ptr()),
                    _mm256_loadu_ps(factor.as_ptr().add(8)),
                )
            };
            let lane_mask: u32 = if lanes >= PANEL {
                0xFFFF
            } else {
                (1u32 << lanes) - 1
            };
            let mut hits = 0u128;
            for (i, a) in acc.iter().enumerate() {
                let s = _mm256_set1_ps(scales[i]);
                let v0 = _mm256_mul_ps(_mm256_mul_ps($to_f32(a[0]), f0), s);
                let v1 = _mm256_mul_ps(_mm256_mul_ps($to_f32(a[1]), f1), s);
                let m = if bars[i] == f32::NEG_INFINITY {
                    lane_mask
                } else {
                    let bar = _mm256_set1_ps(bars[i]);
                    let m0 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(v0, bar)) as u32;
                    let m1 = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(v1, bar)) as u32;
                    (m0 | (m1 << 8)) & lane_mask
                };
                if m != 0 {
                    // SAFETY: each tile row holds exactly 16 f32.
                    unsafe {
                        _mm256_storeu_ps(tile[i].as_mut_ptr(), v0);
                        _mm256_storeu_ps(tile[i].as_mut_ptr().add(8), v1);
                    }
                    hits |= u128::from(m) << (i * PANEL);
                }
            }
            hits
        }
    };
}

#[cfg(target_arch = "x86_64")]
avx2_tile!(
    tile_f32_avx2,
    "avx2,fma",
    f32,
    _mm256_setzero_ps(),
    |p: *const f32| _mm256_loadu_ps(p),
    |p: *const f32| _mm256_broadcast_ss(&*p),
    |a, c, b| _mm256_fmadd_ps(b, c, a),
    |a| a
);

#[cfg(target_arch = "x86_64")]
avx2_tile!(
    tile_i16_avx2,
    "avx2",
    u32,
    _mm256_setzero_si256(),
    |p: *const u32| _mm256_loadu_si256(p.cast()),
    |p: *const u32| _mm256_set1_epi32(*p as i32),
    |a, c, b| _mm256_add_epi32(a, _mm256_madd_epi16(c, b)),
    |a| _mm256_cvtepi32_ps(a)
);

/// `acc + madd(a, b)` in one `vpdpwssd`. Written in assembly: without a VNNI-tuned target CPU, LLVM splits the
/// intrinsic back into `vpmaddwd` + `vpaddd`, which costs the instruction its point.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
#[inline]
fn dpwssd(
    acc: std::arch::x86_64::__m256i,
    a: std::arch::x86_64::__m256i,
    b: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    let mut acc = acc;
    // SAFETY: register-only arithmetic; callers are compiled with avxvnni, which dispatch checked.
    unsafe {
        std::arch::asm!(
            "{{vex}} vpdpwssd {acc}, {a}, {b}",
            acc = inout(ymm_reg) acc,
            a = in(ymm_reg) a,
            b = in(ymm_reg) b,
            options(pure, nomem, nostack),
        );
    }
    acc
}

#[cfg(target_arch = "x86_64")]
avx2_tile!(
    tile_i16_avxvnni,
    "avx2,avxvnni",
    u32,
    _mm256_setzero_si256(),
    |p: *const u32| _mm256_loadu_si256(p.cast()),
    |p: *const u32| _mm256_set1_epi32(*p as i32),
    |a, c, b| dpwssd(a, c, b),
    |a| _mm256_cvtepi32_ps(a)
);

/// Whether this CPU runs `kernel`.
pub fn f32_supported(kernel: F32Kernel) -> bool {
    match kernel {
        F32Kernel::Portable => true,
        F32Kernel::Avx2 => crate::simd::supports(crate::simd::Level::Avx2),
    }
}

/// Whether this CPU runs `kernel`.
pub fn i16_supported(kernel: I16Kernel) -> bool {
    match kernel {
        I16Kernel::Avx2 => crate::simd::supports(crate::simd::Level::Avx2),
        I16Kernel::AvxVnni => {
            crate::simd::supports(crate::simd::Level::Avx2) && crate::simd::has_avx_vnni()
        }
    }
}

/// Offers every row of `block` (corpus indices from `col_offset`) to the per-query heaps of at most `k` hits by fp32
/// score (times `scale[row]` when given). With `exclude_self`, query i never takes corpus row i. The kernel must be
/// one [`f32_supported`] accepts.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_f32(
    kernel: F32Kernel,
    queries: &F32Queries,
    block: ArrayView2<f32>,
    col_offset: usize,
    scale: Option<ArrayView1<f32>>,
    exclude_self: bool,
    heaps: &mut [BinaryHeap<Hit>],
    k: usize,
    parallel: bool,
) {
    assert!(
        f32_supported(kernel),
        "{kernel:?} is not supported by this CPU"
    );
    let width = queries.width;
    let panels = pack_panels(block.nrows(), width, parallel, |r, out: &mut [f32]| {
        for (slot, &v) in out.iter_mut().zip(block.row(r).iter()) {
            *slot = v;
        }
        scale.as_ref().map_or(1.0, |s| s[r])
    });
    let tile: &TileFn<f32> = match kernel {
        F32Kernel::Portable => &tile_f32_portable,
        #[cfg(target_arch = "x86_64")]
        // SAFETY: f32_supported(Avx2) checked avx2 and fma above.
        F32Kernel::Avx2 => {
            &|q, w, p, f, s, l, b, t| unsafe { tile_f32_avx2(q, w, p, f, s, l, b, t) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        F32Kernel::Avx2 => &tile_f32_portable,
    };
    scan(
        &queries.data,
        width,
        None,
        &panels,
        block.nrows(),
        col_offset,
        exclude_self,
        heaps,
        k,
        tile,
        parallel,
    );
}

/// Offers every row of `block` to the heaps by int16 score times `factor[row]` (the row's score factor: inverse norm
/// or 1) and the codes' scales. The kernel must be one [`i16_supported`] accepts; values must be finite.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_i16(
    kernel: I16Kernel,
    queries: &I16Queries,
    block: ArrayView2<f32>,
    col_offset: usize,
    factor: Option<ArrayView1<f32>>,
    heaps: &mut [BinaryHeap<Hit>],
    k: usize,
    parallel: bool,
) {
    let levels = queries.levels;
    scan_i16_rows(
        kernel,
        queries,
        block.nrows(),
        col_offset,
        heaps,
        k,
        parallel,
        |r, out| {
            let s_c = quantize_row(block.row(r), levels, out);
            s_c * factor.as_ref().map_or(1.0, |f| f[r])
        },
    );
}

/// [`scan_i16`] over `rows` rows whose int16 pairs and score factor `row_words(r, out)` writes.
#[allow(clippy::too_many_arguments)]
fn scan_i16_rows(
    kernel: I16Kernel,
    queries: &I16Queries,
    rows: usize,
    col_offset: usize,
    heaps: &mut [BinaryHeap<Hit>],
    k: usize,
    parallel: bool,
    row_words: impl Fn(usize, &mut [u32]) -> f32 + Sync,
) {
    assert!(
        i16_supported(kernel),
        "{kernel:?} is not supported by this CPU"
    );
    let pairs = queries.pairs;
    let panels = pack_panels(rows, pairs, parallel, row_words);
    #[cfg(target_arch = "x86_64")]
    {
        let tile: &TileFn<u32> = match kernel {
            // SAFETY: i16_supported checked avx2 (and avxvnni) above.
            I16Kernel::Avx2 => {
                &|q, w, p, f, s, l, b, t| unsafe { tile_i16_avx2(q, w, p, f, s, l, b, t) }
            }
            I16Kernel::AvxVnni => {
                &|q, w, p, f, s, l, b, t| unsafe { tile_i16_avxvnni(q, w, p, f, s, l, b, t) }
            }
        };
        scan(
            &queries.data,
            pairs,
            Some(&queries.scales),
            &panels,
            rows,
            col_offset,
            false,
            heaps,
            k,
            tile,
            parallel,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (panels, heaps, k, col_offset);
}

/// Consecutive values of an integer code row as int16 pairs (low half = even dimension).
fn pack_codes<T: Copy + Into<i16>>(row: ArrayView1<T>, out: &mut [u32]) {
    let values: std::borrow::Cow<[T]> = row
        .as_slice()
        .map_or_else(|| row.to_vec().into(), Into::into);
    for (slot, pair) in out.iter_mut().zip(values.chunks(2)) {
        let lo = pair[0].into() as u16 as u32;
        let hi = pair.get(1).map_or(0, |&v| v.into() as u16 as u32);
        *slot = lo | (hi << 16);
    }
}

/// Largest code dimension [`code_topk`] takes: the int32 sums of `d` products of 8-bit codes cannot overflow.
pub const MAX_CODE_DIM: usize = (i32::MAX as usize) / (255 * 255);

/// Best `k` corpus rows by the inner product of 8-bit integer codes (int8 or uint8 widened to int16), through the
/// int16 kernels: the integer sums are exact, scores are their fp32 roundings. `(ids, scores)`, best first, ties to
/// the lower index. The kernel must be one [`i16_supported`] accepts and the dimension at most [`MAX_CODE_DIM`].
pub fn code_topk<T: Copy + Into<i16> + Send + Sync>(
    kernel: I16Kernel,
    queries: ArrayView2<T>,
    corpus: ArrayView2<T>,
    k: usize,
    cancel: &crate::cancel::Cancel,
) -> crate::error::CoreResult<(ndarray::Array2<i64>, ndarray::Array2<f32>)> {
    let d = queries.ncols();
    assert!(d <= MAX_CODE_DIM && corpus.ncols() == d);
    let pairs = d.div_ceil(2);
    let padded = queries.nrows().div_ceil(GROUP) * GROUP;
    let mut data = vec![0u32; padded * pairs];
    for (r, row) in queries.rows().into_iter().enumerate() {
        pack_codes(row, &mut data[r * pairs..(r + 1) * pairs]);
    }
    let packed = I16Queries {
        pairs,
        levels: 255.0,
        data,
        scales: vec![1.0; padded],
        code_l1: Vec::new(),
    };
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let mut state = super::hits::TopKState::new(nq, k);
    state.heaps = scan_blocks(
        nq,
        nc,
        block_rows(pairs),
        k,
        cancel,
        |c0, c1, heaps, parallel| {
            let block = corpus.slice(ndarray::s![c0..c1, ..]);
            scan_i16_rows(
                kernel,
                &packed,
                block.nrows(),
                c0,
                heaps,
                k,
                parallel,
                |r, out| {
                    pack_codes(block.row(r), out);
                    1.0
                },
            );
        },
    )?;
    Ok(state.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn data(n: usize, d: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            ((i * 31 + j * 17 + seed * 7) % 23) as f32 / 7.0 - 1.5
        })
    }

    fn all_scores(heaps: Vec<BinaryHeap<Hit>>) -> Vec<Vec<(usize, f32)>> {
        heaps
            .into_iter()
            .map(|h| {
                let mut v: Vec<(usize, f32)> = h.into_iter().map(|x| (x.index, x.score)).collect();
                v.sort_by_key(|x| x.0);
                v
            })
            .collect()
    }

    #[test]
    fn f32_kernels_score_every_row() {
        for (nq, nc, d) in [(1, 1, 1), (7, 45, 37), (13, 33, 64), (6, 16, 3)] {
            let (q, c) = (data(nq, d, 1), data(nc, d, 2));
            let scale = ndarray::Array1::from_shape_fn(nc, |r| 0.5 + r as f32 / 10.0);
            for kernel in [F32Kernel::Portable, F32Kernel::Avx2] {
                if !f32_supported(kernel) {
                    continue;
                }
                let mut heaps: Vec<BinaryHeap<Hit>> = (0..nq).map(|_| BinaryHeap::new()).collect();
                scan_f32(
                    kernel,
                    &F32Queries::new(q.view()),
                    c.view(),
                    5,
                    Some(scale.view()),
                    false,
                    &mut heaps,
                    nc,
                    true,
                );
                for (i, hits) in all_scores(heaps).into_iter().enumerate() {
                    assert_eq!(hits.len(), nc, "{kernel:?}");
                    for (index, score) in hits {
                        let r = index - 5;
                        let exact: f32 =
                            (0..d).map(|j| q[[i, j]] * c[[r, j]]).sum::<f32>() * scale[r];
                        assert!(
                            (score - rank_key(exact)).abs() <= 1e-4 * (1.0 + exact.abs()),
                            "{kernel:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn exclude_self_skips_the_diagonal() {
        let x = data(20, 8, 3);
        let mut heaps: Vec<BinaryHeap<Hit>> = (0..20).map(|_| BinaryHeap::new()).collect();
        scan_f32(
            F32Kernel::Portable,
            &F32Queries::new(x.view()),
            x.view(),
            0,
            None,
            true,
            &mut heaps,
            20,
            true,
        );
        for (i, hits) in all_scores(heaps).into_iter().enumerate() {
            assert_eq!(hits.len(), 19);
            assert!(hits.iter().all(|&(index, _)| index != i));
        }
    }

    #[test]
    fn i16_scores_are_within_the_bound() {
        for (nq, nc, d) in [(1, 1, 1), (7, 45, 37), (13, 70, 384), (6, 16, 2)] {
            let (q, c) = (data(nq, d, 4), data(nc, d, 5));
            let packed = I16Queries::new(q.view());
            assert!(
                f64::from(packed.levels())
                    * f64::from(packed.levels())
                    * (d.div_ceil(2) * 2) as f64
                    <= i32::MAX as f64
            );
            let max_scale = c
                .rows()
                .into_iter()
                .map(|r| r.iter().fold(0f32, |m, &v| m.max(v.abs())) / packed.levels())
                .fold(0f32, f32::max);
            let max_l1 = c
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|v| v.abs()).sum::<f32>())
                .fold(0f32, f32::max);
            for kernel in [I16Kernel::Avx2, I16Kernel::AvxVnni] {
                if !i16_supported(kernel) {
                    continue;
                }
                let mut heaps: Vec<BinaryHeap<Hit>> = (0..nq).map(|_| BinaryHeap::new()).collect();
                scan_i16(kernel, &packed, c.view(), 0, None, &mut heaps, nc, true);
                for (i, hits) in all_scores(heaps).into_iter().enumerate() {
                    assert_eq!(hits.len(), nc);
                    let bound = packed.error_bound(i, f64::from(max_scale), f64::from(max_l1));
                    for (r, score) in hits {
                        let exact: f64 = (0..d)
                            .map(|j| f64::from(q[[i, j]]) * f64::from(c[[r, j]]))
                            .sum();
                        let err = (f64::from(score) - exact).abs();
                        assert!(
                            err <= bound + 1e-6 * (1.0 + exact.abs()),
                            "{kernel:?} {i} {r}: {err} > {bound}"
                        );
                    }
                }
            }
        }
    }
}
