//! Search over quantised embeddings: Hamming distance over packed bits, inner products over int8/uint8 codes.
//!
//! Scalar and binary quantisation themselves are cheap numpy one-liners kept in Python; what needs native speed
//! is scanning a large quantised corpus. Both searches are exact; ties break by the lower corpus index.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use crate::topk::TopKState;
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Corpus rows scanned per block: a block of packed codes stays in cache while a group of queries walks it.
const HAMMING_BLOCK: usize = 4096;

/// The little-endian `u64` word `w` of a row of packed bytes (zero-padded past the row's end).
#[inline(always)]
fn row_word(row: &[u8], w: usize) -> u64 {
    let start = w * 8;
    match row.get(start..start + 8) {
        Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
        None => {
            let mut buf = [0u8; 8];
            let tail = row.get(start..).unwrap_or(&[]);
            buf[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(buf)
        }
    }
}

/// Packed bits (rows of bytes) as little-endian `u64` words, zero-padded; returns `(words, words_per_row)`.
fn pack_rows(codes: ArrayView2<u8>) -> (Vec<u64>, usize) {
    let words = codes.ncols().div_ceil(8).max(1);
    let mut out = vec![0u64; codes.nrows() * words];
    for (row, dst) in codes.rows().into_iter().zip(out.chunks_mut(words)) {
        let bytes = row.as_slice().map_or_else(|| row.to_vec(), <[u8]>::to_vec);
        for (w, word) in dst.iter_mut().enumerate() {
            *word = row_word(&bytes, w);
        }
    }
    (out, words)
}

/// The corpus as words laid out word-major per block of [`HAMMING_BLOCK`] rows, so a query's word `w` meets
/// consecutive corpus words (one vector load serves eight rows). Blocks are filled in parallel.
fn pack_block_columns(codes: ArrayView2<u8>, words: usize) -> Vec<u64> {
    let n = codes.nrows();
    let mut out = vec![0u64; n * words];
    let fill = |(b, block): (usize, &mut [u64])| {
        let b0 = b * HAMMING_BLOCK;
        let len = block.len() / words;
        for r in 0..len {
            let row = codes.row(b0 + r);
            let owned;
            let bytes: &[u8] = match row.as_slice() {
                Some(slice) => slice,
                None => {
                    owned = row.to_vec();
                    &owned
                }
            };
            for w in 0..words {
                block[w * len + r] = row_word(bytes, w);
            }
        }
    };
    let blocks = out.chunks_mut(HAMMING_BLOCK * words).enumerate();
    if parallel::parallel_enabled() && n > HAMMING_BLOCK {
        parallel::install(|| blocks.par_bridge().for_each(fill));
    } else {
        blocks.for_each(fill);
    }
    out
}

/// The query (f64, padded to `8 * code.len()`) times the bits of `code` in `np.packbits` order (dimension `8 t + j`
/// is bit `7 - j` of byte `t`): branch-free, eight lane accumulators the compiler turns into one vector.
#[inline(always)]
fn bit_dot(q: &[f64], code: &[u8]) -> f64 {
    let mut acc = [0f64; 8];
    for (qs, &byte) in q.chunks_exact(8).zip(code) {
        for j in 0..8 {
            acc[j] += qs[j] * f64::from((byte >> (7 - j)) & 1);
        }
    }
    acc.iter().sum()
}

/// [`bit_dot`] with one masked add per byte: the byte, bit-reversed, masks the eight query values it selects.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn bit_dot_avx512(q: &[f64], code: &[u8]) -> f64 {
    use std::arch::x86_64::*;
    let mut acc = _mm512_setzero_pd();
    for (qs, &byte) in q.chunks_exact(8).zip(code) {
        // SAFETY: `qs` holds exactly eight f64.
        let values = unsafe { _mm512_loadu_pd(qs.as_ptr()) };
        acc = _mm512_mask_add_pd(acc, byte.reverse_bits(), acc, values);
    }
    _mm512_reduce_add_pd(acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bit_dot_avx2(q: &[f64], code: &[u8]) -> f64 {
    bit_dot(q, code)
}

/// Defines `$name()`, which returns the compilation of an `fn(&[f64], &[$elem]) -> f64` kernel for the widest
/// vectors this CPU has: `$avx512` (avx512f), `$avx2` (avx2 + fma) or the portable `$portable`.
macro_rules! widest_kernel {
    ($(#[$doc:meta])* $name:ident, $elem:ty, $portable:ident, $avx512:ident, $avx2:ident) => {
        $(#[$doc])*
        fn $name() -> fn(&[f64], &[$elem]) -> f64 {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: avx512f was just detected.
                    return |q, x| unsafe { $avx512(q, x) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: avx2 and fma were just detected.
                    return |q, x| unsafe { $avx2(q, x) };
                }
            }
            $portable
        }
    };
}

widest_kernel!(
    /// [`bit_dot`] compiled for the widest vectors this CPU has.
    bit_dot_kernel, u8, bit_dot, bit_dot_avx512, bit_dot_avx2
);

/// Checks candidate ids against `nq` queries and `n` corpus rows (`-1` marks no candidate).
fn check_candidates(ids: ArrayView2<i64>, nq: usize, n: usize) -> CoreResult<()> {
    if ids.nrows() != nq {
        return Err(CoreError::ShapeMismatch(format!(
            "ids must have one row per query ({nq}), got {}",
            ids.nrows()
        )));
    }
    let n = n as i64;
    if let Some(&bad) = ids.iter().find(|&&j| j >= n || j < -1) {
        return Err(invalid(format!(
            "ids must be corpus rows in [0, {n}) or -1, got {bad}"
        )));
    }
    Ok(())
}

/// Candidates looked ahead when prefetching their corpus rows.
const PREFETCH_AHEAD: usize = 4;

/// `score(i, q, j)` for every query row `i` and candidate `j = ids[i][..]` (`-inf` for `-1`), in parallel over
/// queries. `prepare(i)` builds the per-query state `q` once; `prefetch(j)` is called a few candidates ahead.
fn score_candidates<Q>(
    ids: ArrayView2<i64>,
    prepare: impl Fn(usize) -> Q + Sync,
    prefetch: impl Fn(usize) + Sync,
    score: impl Fn(&Q, usize) -> f32 + Sync,
) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(ids.dim());
    let work = |(i, mut row): (usize, ndarray::ArrayViewMut1<f32>)| {
        let q = prepare(i);
        let cands = ids.row(i);
        for &j in cands.iter().take(PREFETCH_AHEAD) {
            if j >= 0 {
                prefetch(j as usize);
            }
        }
        for (t, slot) in row.iter_mut().enumerate() {
            if let Some(&ahead) = cands.get(t + PREFETCH_AHEAD) {
                if ahead >= 0 {
                    prefetch(ahead as usize);
                }
            }
            let j = cands[t];
            *slot = if j < 0 {
                f32::NEG_INFINITY
            } else {
                score(&q, j as usize)
            };
        }
    };
    let rows = out.axis_iter_mut(Axis(0)).enumerate();
    if parallel::parallel_enabled() && ids.nrows() > 1 {
        parallel::install(|| rows.par_bridge().for_each(work));
    } else {
        rows.for_each(work);
    }
    out
}

/// Float scores of packed-bit candidates: for each query `i` and candidate `ids[i][j]` (a corpus row; `-1` gives
/// `-inf`), the sum of the query's values at the candidate's set bits (bit `b` of byte `t` is dimension
/// `8 t + 7 - b`, `np.packbits` order), accumulated in f64. This is the query times the unpacked 0/1 vector.
pub fn rescore_bits(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<u8>,
    ids: ArrayView2<i64>,
) -> CoreResult<Array2<f32>> {
    let (nq, dim) = queries.dim();
    if corpus.ncols() != dim.div_ceil(8) {
        return Err(CoreError::ShapeMismatch(format!(
            "corpus codes of {} bytes cannot hold {dim} dimensions (expected {})",
            corpus.ncols(),
            dim.div_ceil(8)
        )));
    }
    check_candidates(ids, nq, corpus.nrows())?;
    let bytes = dim.div_ceil(8);
    let kernel = bit_dot_kernel();
    let prepare = |i: usize| {
        // The query in f64, zero-padded to whole bytes: padding bits then add nothing.
        let mut q = vec![0f64; bytes * 8];
        for (dst, &v) in q.iter_mut().zip(queries.row(i)) {
            *dst = f64::from(v);
        }
        q
    };
    Ok(score_candidates(
        ids,
        prepare,
        |_| {},
        |q: &Vec<f64>, j| {
            let code = corpus.row(j);
            match code.as_slice() {
                Some(slice) => kernel(q, slice) as f32,
                None => kernel(q, &code.to_vec()) as f32,
            }
        },
    ))
}

/// Dot product of an f64 query with an f32 row, accumulated in f64 over eight lanes.
#[inline(always)]
fn row_dot(q: &[f64], row: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut qs = q.chunks_exact(8);
    let mut rs = row.chunks_exact(8);
    for (qc, rc) in (&mut qs).zip(&mut rs) {
        for l in 0..8 {
            acc[l] += qc[l] * f64::from(rc[l]);
        }
    }
    let tail: f64 = qs
        .remainder()
        .iter()
        .zip(rs.remainder())
        .map(|(&a, &b)| a * f64::from(b))
        .sum();
    acc.iter().sum::<f64>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn row_dot_avx512(q: &[f64], row: &[f32]) -> f64 {
    row_dot(q, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_dot_avx2(q: &[f64], row: &[f32]) -> f64 {
    row_dot(q, row)
}

widest_kernel!(
    /// [`row_dot`] compiled for the widest vectors this CPU has.
    row_dot_kernel, f32, row_dot, row_dot_avx512, row_dot_avx2
);

/// Asks the CPU to start loading a contiguous row (a hint; nothing happens for strided rows or other CPUs).
#[inline(always)]
fn prefetch_row(row: ndarray::ArrayView1<f32>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(slice) = row.as_slice() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(slice);
        let start = slice.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: prefetching is a hint that never faults; the address lies inside `slice`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Float scores of candidates `ids` (`-1` gives `-inf`) against float corpus rows: the dot product of query `i`
/// and row `ids[i][j]`, accumulated in f64 and rounded once. Only the candidate rows are read, so rescoring a
/// quantised search with the float corpus costs one gather per candidate, not a copy of them all.
pub fn rescore_rows(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    ids: ArrayView2<i64>,
) -> CoreResult<Array2<f32>> {
    let (nq, dim) = queries.dim();
    if corpus.ncols() != dim {
        return Err(CoreError::ShapeMismatch(format!(
            "corpus rows have {} dimensions, the queries {dim}",
            corpus.ncols()
        )));
    }
    check_candidates(ids, nq, corpus.nrows())?;
    let kernel = row_dot_kernel();
    let prepare = |i: usize| {
        queries
            .row(i)
            .iter()
            .map(|&v| f64::from(v))
            .collect::<Vec<f64>>()
    };
    let prefetch = |j: usize| prefetch_row(corpus.row(j));
    Ok(score_candidates(
        ids,
        prepare,
        prefetch,
        |q: &Vec<f64>, j| {
            let row = corpus.row(j);
            match row.as_slice() {
                Some(slice) => kernel(q, slice) as f32,
                None => kernel(q, &row.to_vec()) as f32,
            }
        },
    ))
}

/// Keeps the best `k` of one query's hits as `(distance, index)`. Rows arrive in increasing index order, so a
/// newcomer enters only with a distance strictly below `bar`: the smallest distance `D` such that `k` kept hits lie
/// at `D` or nearer (a later row at `D` loses the tie to them). Distances are small integers, so a histogram of the
/// kept hits moves `bar` down exactly as hits arrive (amortised O(1) per hit): the bar is never stale, which keeps
/// the number of hits near `k (1 + ln(n / k))` even for a large `k`. Hits are appended to a buffer that is cut back
/// to the best `k` only when it fills.
struct Nearest {
    hits: Vec<(u32, usize)>,
    /// Kept hits per distance; `hist.len()` is one past the largest possible distance.
    hist: Vec<u32>,
    bar: u32,
    /// Kept hits with a distance below `bar`; always `< k` once `bar` has left its initial value.
    below: usize,
    k: usize,
}

impl Nearest {
    /// `max_distance`: the largest distance a row can have (the code width in bits).
    fn new(k: usize, max_distance: u32) -> Self {
        Nearest {
            hits: Vec::with_capacity(Self::capacity(k)),
            hist: vec![0; max_distance as usize + 1],
            bar: max_distance + 1,
            below: 0,
            k,
        }
    }

    fn capacity(k: usize) -> usize {
        (4 * k).max(k + 64)
    }

    /// Offers row `index` at distance `d` (callers may skip rows with `d >= bar`).
    #[inline(always)]
    fn offer(&mut self, d: u32, index: usize) {
        if d >= self.bar {
            return;
        }
        self.hits.push((d, index));
        self.hist[d as usize] += 1;
        self.below += 1;
        while self.below >= self.k {
            self.bar -= 1;
            self.below -= self.hist[self.bar as usize] as usize;
        }
        if self.hits.len() >= Self::capacity(self.k) {
            self.prune();
        }
    }

    /// Drops the hits that can no longer be among the best `k`: those beyond `bar`, and those at `bar` past the first
    /// `k - below` (a later index loses a tie). `hist[bar]` may then overcount, which is harmless: `bar` only moves
    /// down, and the histogram is only read below it.
    fn prune(&mut self) {
        let (bar, mut at_bar) = (self.bar, self.k.saturating_sub(self.below));
        self.hits.retain(|&(d, _)| {
            d < bar
                || (d == bar && at_bar > 0 && {
                    at_bar -= 1;
                    true
                })
        });
    }

    /// The best `k` hits, nearest first (ties by the lower index).
    fn into_sorted(mut self) -> Vec<(u32, usize)> {
        self.prune();
        self.hits.sort_unstable();
        self.hits.truncate(self.k);
        self.hits
    }
}

/// Lanes checked together before looking at single distances.
const SCAN_CHUNK: usize = 32;

/// Distances of one query to a block (word-major columns), then the block's hits into `best`.
#[inline(always)]
fn scan_generic(query: &[u64], block: &[u64], out: &mut [u32], best: &mut Nearest, base: usize) {
    let len = out.len();
    out.fill(0);
    for (w, &qw) in query.iter().enumerate() {
        let column = &block[w * len..(w + 1) * len];
        for (d, &c) in out.iter_mut().zip(column) {
            *d += (qw ^ c).count_ones();
        }
    }
    for (c, chunk) in out.chunks(SCAN_CHUNK).enumerate() {
        // A vectorised minimum first: most chunks hold nothing that beats the bar.
        if chunk.iter().fold(u32::MAX, |m, &d| m.min(d)) >= best.bar {
            continue;
        }
        for (j, &d) in chunk.iter().enumerate() {
            // Rows arrive in increasing index order, so only a strictly smaller distance displaces a kept hit.
            best.offer(d, base + c * SCAN_CHUNK + j);
        }
    }
}

/// Queries scanned together by the AVX-512 kernel: each corpus word loaded once serves all of them.
const QUERY_GROUP: usize = 4;

/// Row widths (in 64-bit words, so up to 1024 bits) the fixed-width kernel is compiled for.
const WIDE_MAX_WORDS: usize = 16;

/// Distances of [`QUERY_GROUP`] queries (query-major words in `queries`) to a block (word-major columns of `len`
/// rows), eight rows per step, kept in registers: no distance array is written. Lanes that beat a query's bar go
/// to its `Nearest`, in row order; only the first `best.len()` queries are real (the rest pad the group).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn scan_group_avx512(
    queries: &[u64],
    words: usize,
    block: &[u64],
    len: usize,
    best: &mut [Nearest],
    base: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(best.len() <= QUERY_GROUP && queries.len() >= QUERY_GROUP * words);
    debug_assert!(block.len() >= words * len);
    let mut r = 0;
    while r < len {
        let lanes = (len - r).min(8);
        let lane_mask: __mmask8 = if lanes == 8 { 0xFF } else { (1u8 << lanes) - 1 };
        let (mut a0, mut a1, mut a2, mut a3) = (
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
        );
        for w in 0..words {
            // SAFETY: w * len + r + lanes <= words * len <= block.len(); lanes beyond `lanes` are masked off
            // and not read.
            let c = unsafe {
                _mm512_maskz_loadu_epi64(lane_mask, block.as_ptr().add(w * len + r).cast::<i64>())
            };
            let q = |g: usize| _mm512_set1_epi64(queries[g * words + w] as i64);
            a0 = _mm512_add_epi64(a0, _mm512_popcnt_epi64(_mm512_xor_si512(c, q(0))));
            a1 = _mm512_add_epi64(a1, _mm512_popcnt_epi64(_mm512_xor_si512(c, q(1))));
            a2 = _mm512_add_epi64(a2, _mm512_popcnt_epi64(_mm512_xor_si512(c, q(2))));
            a3 = _mm512_add_epi64(a3, _mm512_popcnt_epi64(_mm512_xor_si512(c, q(3))));
        }
        for (nearest, acc) in best.iter_mut().zip([a0, a1, a2, a3]) {
            let bar = _mm512_set1_epi64(i64::from(nearest.bar));
            let mut hits = _mm512_mask_cmplt_epu64_mask(lane_mask, acc, bar);
            if hits != 0 {
                let mut d = [0u64; 8];
                // SAFETY: `d` holds exactly one 512-bit vector.
                unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), acc) };
                while hits != 0 {
                    let lane = hits.trailing_zeros() as usize;
                    hits &= hits - 1;
                    nearest.offer(d[lane] as u32, base + r + lane);
                }
            }
        }
        r += 8;
    }
}

/// Queries scanned together by the fixed-width AVX-512 kernel.
const WIDE_GROUP: usize = 8;

/// Rows per hit check of the fixed-width kernel: eight steps of eight rows. Each step only records which lanes beat
/// each query's bar (scalar bit work beside the vector pipes); the hits are handed over once per window, so the
/// branch on "any hit" is taken once per 64 rows instead of once per 8, and the bars lag by at most 64 rows.
const WIDE_WINDOW: usize = 64;

/// Distances of the [`WIDE_GROUP`] queries to the eight rows from `r` (those in `lane_mask`): a bit mask per query of
/// the rows strictly below its bar, and the distances.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
#[inline]
fn wide_step<const W: usize>(
    queries: &[u64],
    block: &[u64],
    len: usize,
    r: usize,
    lane_mask: std::arch::x86_64::__mmask8,
    bars: &[std::arch::x86_64::__m512i; WIDE_GROUP],
) -> [std::arch::x86_64::__mmask8; WIDE_GROUP] {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); WIDE_GROUP];
    for w in 0..W {
        // SAFETY: w * len + r + lanes <= W * len <= block.len() (asserted by the caller); masked-off lanes are not
        // read.
        let c = unsafe {
            _mm512_maskz_loadu_epi64(lane_mask, block.as_ptr().add(w * len + r).cast::<i64>())
        };
        for (g, a) in acc.iter_mut().enumerate() {
            let q = _mm512_set1_epi64(queries[g * W + w] as i64);
            *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(c, q)));
        }
    }
    let mut masks = [0 as __mmask8; WIDE_GROUP];
    for g in 0..WIDE_GROUP {
        masks[g] = _mm512_mask_cmplt_epu64_mask(lane_mask, acc[g], bars[g]);
    }
    masks
}

/// [`scan_group_avx512`] for rows of exactly `W` words and up to [`WIDE_GROUP`] queries: the word loop unrolls,
/// each corpus vector loaded serves eight queries (their words broadcast straight from memory), and the eight
/// bars stay in registers, so the per-row cost is the xor/popcount/add chain and one compare per query. Hits are
/// collected per [`WIDE_WINDOW`] rows as bit masks and their distances recomputed (they are few) when handed over.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn scan_wide_avx512<const W: usize>(
    queries: &[u64],
    block: &[u64],
    len: usize,
    best: &mut [Nearest],
    base: usize,
) {
    use std::arch::x86_64::*;
    assert!(best.len() <= WIDE_GROUP && queries.len() >= WIDE_GROUP * W && block.len() >= W * len);
    let queries = &queries[..WIDE_GROUP * W];
    let block = &block[..W * len];
    // Padding queries get a bar of 0: no distance is below it.
    let mut bars = [_mm512_setzero_si512(); WIDE_GROUP];
    for (bar, nearest) in bars.iter_mut().zip(best.iter()) {
        *bar = _mm512_set1_epi64(i64::from(nearest.bar));
    }
    let mut r0 = 0;
    while r0 < len {
        let window = (len - r0).min(WIDE_WINDOW);
        let mut found = [0u64; WIDE_GROUP];
        if window == WIDE_WINDOW {
            for step in 0..WIDE_WINDOW / 8 {
                let masks = wide_step::<W>(queries, block, len, r0 + 8 * step, 0xFF, &bars);
                for (f, m) in found.iter_mut().zip(masks) {
                    *f |= u64::from(m) << (8 * step);
                }
            }
        } else {
            for step in 0..window.div_ceil(8) {
                let lanes = (window - 8 * step).min(8);
                let lane_mask: __mmask8 = if lanes == 8 { 0xFF } else { (1u8 << lanes) - 1 };
                let masks = wide_step::<W>(queries, block, len, r0 + 8 * step, lane_mask, &bars);
                for (f, m) in found.iter_mut().zip(masks) {
                    *f |= u64::from(m) << (8 * step);
                }
            }
        }
        if found.iter().any(|&f| f != 0) {
            for (g, nearest) in best.iter_mut().enumerate() {
                let mut hits = found[g];
                if hits == 0 {
                    continue;
                }
                let query = &queries[g * W..(g + 1) * W];
                while hits != 0 {
                    let r = r0 + hits.trailing_zeros() as usize;
                    hits &= hits - 1;
                    let d: u32 = (0..W)
                        .map(|w| (query[w] ^ block[w * len + r]).count_ones())
                        .sum();
                    nearest.offer(d, base + r);
                }
                bars[g] = _mm512_set1_epi64(i64::from(nearest.bar));
            }
        }
        r0 += WIDE_WINDOW;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn scan_avx2(query: &[u64], block: &[u64], out: &mut [u32], best: &mut Nearest, base: usize) {
    scan_generic(query, block, out, best, base)
}

/// Which popcount kernel this CPU runs.
#[derive(Clone, Copy)]
enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

fn detect_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return Kernel::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// One block (word-major columns of `len` rows from corpus index `base`) against every query of a chunk (`queries`:
/// query-major words, padded to whole groups of [`QUERY_GROUP`]), with the kernel this CPU runs.
#[allow(clippy::too_many_arguments)]
fn scan_block(
    kernel: Kernel,
    queries: &[u64],
    words: usize,
    block: &[u64],
    len: usize,
    best: &mut [Nearest],
    scratch: &mut [u32],
    base: usize,
) {
    let out = &mut scratch[..len];
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 if (1..=WIDE_MAX_WORDS).contains(&words) => {
            for (g, group) in best.chunks_mut(WIDE_GROUP).enumerate() {
                let group_words = &queries[g * WIDE_GROUP * words..(g + 1) * WIDE_GROUP * words];
                macro_rules! wide {
                    ($($w:literal)*) => {
                        match words {
                            // SAFETY: detect_kernel() returned Avx512 only after checking avx512f and
                            // avx512vpopcntdq.
                            $($w => unsafe { scan_wide_avx512::<$w>(group_words, block, len, group, base) },)*
                            _ => unreachable!("guarded by the match arm"),
                        }
                    };
                }
                wide!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            for (g, group) in best.chunks_mut(QUERY_GROUP).enumerate() {
                let group_words = &queries[g * QUERY_GROUP * words..(g + 1) * QUERY_GROUP * words];
                // SAFETY: detect_kernel() returned Avx512 only after checking avx512f and avx512vpopcntdq.
                unsafe { scan_group_avx512(group_words, words, block, len, group, base) };
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            for (i, nearest) in best.iter_mut().enumerate() {
                // SAFETY: detect_kernel() returned Avx2 only after checking avx2 and popcnt.
                unsafe {
                    scan_avx2(
                        &queries[i * words..(i + 1) * words],
                        block,
                        out,
                        nearest,
                        base,
                    )
                };
            }
        }
        Kernel::Portable => {
            for (i, nearest) in best.iter_mut().enumerate() {
                scan_generic(
                    &queries[i * words..(i + 1) * words],
                    block,
                    out,
                    nearest,
                    base,
                );
            }
        }
    }
}

/// The `k` corpus rows nearest in Hamming distance to each query: `(ids, distances)`, `(q, min(k, n))`,
/// nearest first, ties to the lower index. Rows are packed bits (`np.packbits` output, uint8).
pub fn hamming_topk(
    queries: ArrayView2<u8>,
    corpus: ArrayView2<u8>,
    k: usize,
) -> CoreResult<(Array2<i64>, Array2<u32>)> {
    if queries.ncols() != corpus.ncols() {
        return Err(CoreError::ShapeMismatch(format!(
            "query and corpus codes must have the same width in bytes, got {} and {}",
            queries.ncols(),
            corpus.ncols()
        )));
    }
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let k = k.min(nc);
    let mut ids = Array2::<i64>::from_elem((nq, k), -1);
    let mut dists = Array2::<u32>::zeros((nq, k));
    if nq == 0 || k == 0 {
        return Ok((ids, dists));
    }
    let (q_words, words) = pack_rows(queries);
    let c_cols = pack_block_columns(corpus, words);
    let kernel = detect_kernel();
    let threads = if parallel::parallel_enabled() {
        parallel::current_num_threads()
    } else {
        1
    };
    let q_chunk = nq.div_ceil(threads).max(1);
    let work = |(chunk, (mut id_rows, mut dist_rows)): (
        usize,
        (ndarray::ArrayViewMut2<i64>, ndarray::ArrayViewMut2<u32>),
    )| {
        let q0 = chunk * q_chunk;
        let rows = id_rows.nrows();
        let mut best: Vec<Nearest> = (0..rows)
            .map(|_| Nearest::new(k, (words * 64) as u32))
            .collect();
        let mut scratch = vec![0u32; HAMMING_BLOCK.min(nc)];
        // This chunk's query words, padded with zero queries to whole groups of QUERY_GROUP (their results are
        // dropped).
        let mut padded = q_words[q0 * words..(q0 + rows) * words].to_vec();
        padded.resize(rows.div_ceil(WIDE_GROUP) * WIDE_GROUP * words, 0);
        for b0 in (0..nc).step_by(HAMMING_BLOCK) {
            let len = (b0 + HAMMING_BLOCK).min(nc) - b0;
            let block = &c_cols[b0 * words..(b0 + len) * words];
            scan_block(
                kernel,
                &padded,
                words,
                block,
                len,
                &mut best,
                &mut scratch,
                b0,
            );
        }
        for (i, nearest) in best.into_iter().enumerate() {
            for (rank, (d, j)) in nearest.into_sorted().into_iter().enumerate() {
                id_rows[[i, rank]] = j as i64;
                dist_rows[[i, rank]] = d;
            }
        }
    };
    let chunks = ids
        .axis_chunks_iter_mut(Axis(0), q_chunk)
        .zip(dists.axis_chunks_iter_mut(Axis(0), q_chunk));
    if threads > 1 && nq > 1 {
        parallel::install(|| chunks.enumerate().par_bridge().for_each(work));
    } else {
        chunks.enumerate().for_each(work);
    }
    Ok((ids, dists))
}

/// Integer codes that can be widened to float for scoring.
pub trait Code: Copy + Send + Sync {
    /// The code as a float.
    fn to_f32(self) -> f32;
}
impl Code for u8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}
impl Code for i8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}

/// Corpus rows widened to float per block.
const CODE_BLOCK: usize = 4096;

/// Best `k` corpus rows by inner product of integer codes (int8 or uint8): `(ids, scores)`, best first.
///
/// Blocks of the corpus are widened to float32 and scored with a GEMM (exact for codes of up to 8 bits and
/// dimensions below 2^24 / 255^2), so memory stays at one block.
pub fn code_dot_topk<T: Code>(
    queries: ArrayView2<T>,
    corpus: ArrayView2<T>,
    k: usize,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    if queries.ncols() != corpus.ncols() {
        return Err(CoreError::ShapeMismatch(format!(
            "query and corpus codes must have the same dimension, got {} and {}",
            queries.ncols(),
            corpus.ncols()
        )));
    }
    if queries.ncols() == 0 {
        return Err(invalid("codes must have at least one dimension"));
    }
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let k = k.min(nc);
    let mut state = TopKState::new(nq, k);
    if nq == 0 || k == 0 {
        return Ok(state.finish());
    }
    let q = queries.mapv(T::to_f32);
    for c0 in (0..nc).step_by(CODE_BLOCK) {
        let block = corpus
            .slice(s![c0..(c0 + CODE_BLOCK).min(nc), ..])
            .mapv(T::to_f32);
        let scores = crate::similarity::matmul_nt(q.view(), block.view())?;
        state.push_block(scores.view(), 0, c0, None, false)?;
    }
    Ok(state.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_hamming(q: &Array2<u8>, c: &Array2<u8>, k: usize) -> Vec<Vec<(u32, usize)>> {
        q.rows()
            .into_iter()
            .map(|qr| {
                let mut v: Vec<(u32, usize)> = c
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(j, cr)| {
                        (
                            qr.iter()
                                .zip(cr.iter())
                                .map(|(a, b)| (a ^ b).count_ones())
                                .sum(),
                            j,
                        )
                    })
                    .collect();
                v.sort();
                v.truncate(k);
                v
            })
            .collect()
    }

    proptest! {
        #[test]
        fn hamming_matches_naive(nq in 1usize..20, nc in 1usize..300, width in 1usize..140, k in 1usize..15,
                                 bytes in proptest::collection::vec(any::<u8>(), 320 * 140)) {
            // Widths up to 140 bytes cover every fixed-width kernel (1..=16 words) and the generic one beyond;
            // up to 19 queries cover partial groups of both kernels.
            let q = Array2::from_shape_fn((nq, width), |(i, j)| bytes[i * 140 + j]);
            let c = Array2::from_shape_fn((nc, width), |(i, j)| bytes[(20 + i) * 140 + j] & 0xF0);
            let (ids, dists) = hamming_topk(q.view(), c.view(), k).unwrap();
            let want = naive_hamming(&q, &c, k);
            for i in 0..nq {
                let got: Vec<(u32, usize)> = (0..ids.ncols()).map(|r| (dists[[i, r]], ids[[i, r]] as usize)).collect();
                prop_assert_eq!(&got, &want[i]);
            }
        }

        #[test]
        fn hamming_with_many_ties_and_a_large_k(nq in 1usize..10, nc in 1usize..3000, words in 1usize..3,
                                                k in 1usize..400, levels in 1u8..6, seed in any::<u64>()) {
            // Codes drawn from a handful of values tie massively, so the histogram bar, the pruning of hits at
            // the bar and the hand-over per window all decide which of many equal rows are kept (the lowest).
            let width = words * 8;
            let value = |i: usize, j: usize| {
                let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(j as u32 % 64);
                ((h >> 7) % u64::from(levels)) as u8
            };
            let q = Array2::from_shape_fn((nq, width), |(i, j)| value(i + 1_000_000, j));
            let c = Array2::from_shape_fn((nc, width), |(i, j)| value(i, j));
            let (ids, dists) = hamming_topk(q.view(), c.view(), k).unwrap();
            let want = naive_hamming(&q, &c, k);
            for i in 0..nq {
                let got: Vec<(u32, usize)> = (0..ids.ncols()).map(|r| (dists[[i, r]], ids[[i, r]] as usize)).collect();
                prop_assert_eq!(&got, &want[i]);
            }
        }

        #[test]
        fn code_dot_matches_naive(nq in 1usize..6, nc in 1usize..80, d in 1usize..10, k in 1usize..10,
                                  vals in proptest::collection::vec(any::<i8>(), 86 * 10)) {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| vals[i * 10 + j]);
            let c = Array2::from_shape_fn((nc, d), |(i, j)| vals[(6 + i) * 10 + j]);
            let (ids, scores) = code_dot_topk(q.view(), c.view(), k).unwrap();
            for i in 0..nq {
                let mut all: Vec<(i64, usize)> = (0..nc)
                    .map(|j| ((0..d).map(|t| i64::from(q[[i, t]]) * i64::from(c[[j, t]])).sum(), j))
                    .collect();
                all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                for r in 0..ids.ncols() {
                    prop_assert_eq!(ids[[i, r]] as usize, all[r].1);
                    prop_assert_eq!(scores[[i, r]] as i64, all[r].0);
                }
            }
        }
    }

    #[test]
    fn hamming_across_several_blocks() {
        let nc = 2 * HAMMING_BLOCK + 123;
        let c = Array2::from_shape_fn((nc, 48), |(i, j)| ((i * 131 + j * 17) % 251) as u8);
        let q = Array2::from_shape_fn((3, 48), |(i, j)| ((i * 7 + j * 3) % 256) as u8);
        let (ids, dists) = hamming_topk(q.view(), c.view(), 25).unwrap();
        let want = naive_hamming(&q, &c, 25);
        for i in 0..3 {
            let got: Vec<(u32, usize)> = (0..25)
                .map(|r| (dists[[i, r]], ids[[i, r]] as usize))
                .collect();
            assert_eq!(got, want[i]);
        }
    }

    proptest! {
        #[test]
        fn rescore_bits_is_the_query_times_the_unpacked_bits(
            nq in 1usize..5, nc in 1usize..30, dim in 1usize..70, k in 1usize..6,
            vals in proptest::collection::vec(-4.0f32..4.0, 5 * 70),
            bytes in proptest::collection::vec(any::<u8>(), 30 * 9),
            picks in proptest::collection::vec(-1i64..30, 5 * 6),
        ) {
            let width = dim.div_ceil(8);
            let q = Array2::from_shape_fn((nq, dim), |(i, j)| vals[i * 70 + j]);
            // np.packbits leaves the bits past `dim` zero.
            let c = Array2::from_shape_fn((nc, width), |(i, t)| {
                let keep = (dim - 8 * t).min(8);
                bytes[i * 9 + t] & (0xFFu16 << (8 - keep)) as u8
            });
            let ids = Array2::from_shape_fn((nq, k), |(i, j)| picks[i * 6 + j].min(nc as i64 - 1));
            let got = rescore_bits(q.view(), c.view(), ids.view()).unwrap();
            for i in 0..nq {
                for j in 0..k {
                    let id = ids[[i, j]];
                    if id < 0 {
                        prop_assert!(got[[i, j]] == f32::NEG_INFINITY);
                        continue;
                    }
                    let want: f64 = (0..dim)
                        .filter(|&d| c[[id as usize, d / 8]] >> (7 - d % 8) & 1 == 1)
                        .map(|d| f64::from(q[[i, d]]))
                        .sum();
                    prop_assert!((f64::from(got[[i, j]]) - want).abs() <= 1e-5 * (1.0 + want.abs()));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn rescore_rows_is_the_dot_product_of_the_candidates(
            nq in 1usize..5, nc in 1usize..30, dim in 1usize..40, k in 1usize..6,
            vals in proptest::collection::vec(-4.0f32..4.0, 5 * 40),
            rows in proptest::collection::vec(-4.0f32..4.0, 30 * 40),
            picks in proptest::collection::vec(-1i64..30, 5 * 6),
        ) {
            let q = Array2::from_shape_fn((nq, dim), |(i, j)| vals[i * 40 + j]);
            let c = Array2::from_shape_fn((nc, dim), |(i, j)| rows[i * 40 + j]);
            let ids = Array2::from_shape_fn((nq, k), |(i, j)| picks[i * 6 + j].min(nc as i64 - 1));
            let got = rescore_rows(q.view(), c.view(), ids.view()).unwrap();
            // A transposed (non-contiguous) corpus view gives the same scores.
            let ct = c.t().to_owned();
            let strided = rescore_rows(q.view(), ct.t(), ids.view()).unwrap();
            for i in 0..nq {
                for j in 0..k {
                    let id = ids[[i, j]];
                    if id < 0 {
                        prop_assert!(got[[i, j]] == f32::NEG_INFINITY);
                        continue;
                    }
                    let want: f64 = (0..dim).map(|d| f64::from(q[[i, d]]) * f64::from(c[[id as usize, d]])).sum();
                    prop_assert!((f64::from(got[[i, j]]) - want).abs() <= 1e-5 * (1.0 + want.abs()));
                    prop_assert_eq!(got[[i, j]], strided[[i, j]]);
                }
            }
        }
    }

    #[test]
    fn rescore_rows_rejects_bad_ids_and_dims() {
        let q = Array2::<f32>::zeros((1, 4));
        let c = Array2::<f32>::zeros((3, 4));
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((1, 1), 3i64).view()).is_err());
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((1, 1), -2i64).view()).is_err());
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((2, 1), 0i64).view()).is_err());
        let wide = Array2::<f32>::zeros((3, 5));
        assert!(rescore_rows(
            q.view(),
            wide.view(),
            Array2::from_elem((1, 1), 0i64).view()
        )
        .is_err());
    }

    #[test]
    fn rescore_bits_rejects_bad_ids_and_widths() {
        let q = Array2::<f32>::zeros((1, 16));
        let c = Array2::<u8>::zeros((3, 2));
        assert!(rescore_bits(q.view(), c.view(), Array2::from_elem((1, 1), 3i64).view()).is_err());
        assert!(rescore_bits(q.view(), c.view(), Array2::from_elem((2, 1), 0i64).view()).is_err());
        assert!(rescore_bits(
            q.view(),
            Array2::<u8>::zeros((3, 3)).view(),
            Array2::from_elem((1, 1), 0i64).view()
        )
        .is_err());
    }

    #[test]
    fn width_mismatch_is_an_error() {
        let a = Array2::<u8>::zeros((1, 4));
        let b = Array2::<u8>::zeros((1, 5));
        assert!(hamming_topk(a.view(), b.view(), 1).is_err());
        assert!(code_dot_topk(a.view(), b.view(), 1).is_err());
    }
}
