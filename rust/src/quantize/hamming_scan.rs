//! The popcount scans behind [`super::hamming_topk`]: distances of a chunk of queries to one block of the corpus,
//! with the hits that beat each query's bar handed to its [`Nearest`]. One kernel per CPU family (AVX-512 with
//! VPOPCNTDQ, fixed-width or any width; AVX2 + POPCNT; portable), picked once per search by [`detect_kernel`].

use super::nearest::Nearest;

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

/// [`scan_block`] reads a chunk's queries in whole groups: callers pad them with zero queries to a multiple of this
/// (their results are dropped). It covers the groups of both AVX-512 kernels.
pub(super) const QUERY_PADDING: usize = WIDE_GROUP;
const _: () = assert!(QUERY_PADDING.is_multiple_of(QUERY_GROUP));

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
#[derive(Clone, Copy, Debug)]
pub(super) enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

/// The widest popcount kernel this CPU runs at the active SIMD level ([`crate::simd`]).
pub(super) fn detect_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        let level = crate::simd::active();
        if level >= crate::simd::Level::Avx512
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return Kernel::Avx512;
        }
        if level >= crate::simd::Level::Avx2
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// One block (word-major columns of `len` rows from corpus index `base`) against every query of a chunk (`queries`:
/// query-major words, padded to whole groups of [`QUERY_PADDING`]), with the kernel this CPU runs.
#[allow(clippy::too_many_arguments)]
pub(super) fn scan_block(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU can run, the portable one first (so the fallback is checked on every machine).
    fn runnable_kernels() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("popcnt")
            {
                kernels.push(Kernel::Avx2);
            }
            if matches!(detect_kernel(), Kernel::Avx512) {
                kernels.push(Kernel::Avx512);
            }
        }
        kernels
    }

    /// Deterministic words; `pool > 0` draws them from that many values, which makes many equal distances.
    fn words_from(seed: &mut u64, count: usize, pool: u64) -> Vec<u64> {
        (0..count)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                if pool > 0 {
                    (*seed % pool).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                } else {
                    *seed
                }
            })
            .collect()
    }

    #[test]
    fn every_dispatch_level_matches_the_portable_kernel() {
        let kernels = runnable_kernels();
        let mut seed = 0x1234_5678_9ABC_DEF1_u64;
        // Word counts inside and beyond the fixed-width AVX-512 kernels, queries not a multiple of a group.
        for words in [1, 2, 5, 8, 16, 17, 24] {
            for pool in [0, 3] {
                let len = 301;
                let n_queries: usize = 11;
                let padded = n_queries.div_ceil(QUERY_PADDING) * QUERY_PADDING;
                let mut queries = words_from(&mut seed, n_queries * words, pool);
                queries.resize(padded * words, 0);
                let block = words_from(&mut seed, len * words, pool);
                let k = 7;
                let results: Vec<Vec<Vec<(u32, usize)>>> = kernels
                    .iter()
                    .map(|&kernel| {
                        let mut best: Vec<Nearest> = (0..padded)
                            .map(|_| Nearest::new(k, (words * 64) as u32))
                            .collect();
                        let mut scratch = vec![0u32; len];
                        scan_block(
                            kernel,
                            &queries,
                            words,
                            &block,
                            len,
                            &mut best,
                            &mut scratch,
                            40,
                        );
                        best.into_iter()
                            .take(n_queries)
                            .map(Nearest::into_sorted)
                            .collect()
                    })
                    .collect();
                for (kernel, got) in kernels.iter().zip(&results).skip(1) {
                    assert_eq!(
                        got, &results[0],
                        "{kernel:?} differs from the portable kernel, {words} words"
                    );
                }
            }
        }
    }
}
