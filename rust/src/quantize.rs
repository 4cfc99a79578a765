//! Search over quantised embeddings: Hamming distance over packed bits, inner products over int8/uint8 codes.
//!
//! Scalar and binary quantisation themselves are cheap numpy one-liners kept in Python; what needs native speed
//! is scanning a large quantised corpus. Both searches are exact; ties break by the lower corpus index.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use crate::topk::TopKState;
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::collections::BinaryHeap;

/// Corpus rows scanned per block: a block of packed codes stays in cache while a group of queries walks it.
const HAMMING_BLOCK: usize = 4096;

/// Packed bits (rows of bytes) as little-endian `u64` words, zero-padded; returns `(words, words_per_row)`.
fn pack_rows(codes: ArrayView2<u8>) -> (Vec<u64>, usize) {
    let words = codes.ncols().div_ceil(8).max(1);
    let mut out = vec![0u64; codes.nrows() * words];
    for (r, row) in codes.rows().into_iter().enumerate() {
        for (b, &v) in row.iter().enumerate() {
            out[r * words + b / 8] |= u64::from(v) << (8 * (b % 8));
        }
    }
    (out, words)
}

/// The same words laid out word-major per block of rows, so a query's word `w` meets `HAMMING_BLOCK`
/// consecutive corpus words (a loop the compiler vectorises, with `vpopcntq` where the CPU has it).
fn pack_block_columns(rows: &[u64], n: usize, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; rows.len()];
    for b0 in (0..n).step_by(HAMMING_BLOCK) {
        let len = (b0 + HAMMING_BLOCK).min(n) - b0;
        for r in 0..len {
            for w in 0..words {
                out[b0 * words + w * len + r] = rows[(b0 + r) * words + w];
            }
        }
    }
    out
}

/// Keeps the best `k` of one query's hits: a max-heap of `(distance, index)` and the distance a newcomer must
/// beat once the heap is full.
struct Nearest {
    heap: BinaryHeap<(u32, usize)>,
    bar: u32,
}

impl Nearest {
    /// Offers row `index` at distance `d`; rows must arrive in increasing index order (ties keep the lower one).
    #[inline(always)]
    fn offer(&mut self, d: u32, index: usize, k: usize) {
        if d < self.bar {
            self.heap.push((d, index));
            if self.heap.len() > k {
                self.heap.pop();
            }
            if self.heap.len() == k {
                self.bar = self.heap.peek().map_or(u32::MAX, |&(worst, _)| worst);
            }
        }
    }
}

/// Lanes checked together before looking at single distances.
const SCAN_CHUNK: usize = 32;

/// Distances of one query to a block (word-major columns), then the block's hits into `best`.
#[inline(always)]
fn scan_generic(
    query: &[u64],
    block: &[u64],
    out: &mut [u32],
    best: &mut Nearest,
    base: usize,
    k: usize,
) {
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
            best.offer(d, base + c * SCAN_CHUNK + j, k);
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
    k: usize,
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
                    nearest.offer(d[lane] as u32, base + r + lane, k);
                }
            }
        }
        r += 8;
    }
}

/// Queries scanned together by the fixed-width AVX-512 kernel.
const WIDE_GROUP: usize = 8;

/// [`scan_group_avx512`] for rows of exactly `W` words and up to [`WIDE_GROUP`] queries: the word loop unrolls,
/// each corpus vector loaded serves eight queries (their words broadcast straight from memory), and the eight
/// bars stay in registers, so the per-row cost is the xor/popcount/add chain and one compare per query.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
fn scan_wide_avx512<const W: usize>(
    queries: &[u64],
    block: &[u64],
    len: usize,
    best: &mut [Nearest],
    base: usize,
    k: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(best.len() <= WIDE_GROUP && queries.len() >= WIDE_GROUP * W);
    debug_assert!(block.len() >= W * len);
    let queries = &queries[..WIDE_GROUP * W];
    let block = &block[..W * len];
    // Padding queries get a bar of 0: no distance is below it.
    let mut bars = [_mm512_setzero_si512(); WIDE_GROUP];
    for (bar, nearest) in bars.iter_mut().zip(best.iter()) {
        *bar = _mm512_set1_epi64(i64::from(nearest.bar));
    }
    let mut r = 0;
    while r < len {
        let lanes = (len - r).min(8);
        let lane_mask: __mmask8 = if lanes == 8 { 0xFF } else { (1u8 << lanes) - 1 };
        let mut acc = [_mm512_setzero_si512(); WIDE_GROUP];
        for w in 0..W {
            // SAFETY: w * len + r + lanes <= W * len = block.len(); masked-off lanes are not read.
            let c = unsafe {
                _mm512_maskz_loadu_epi64(lane_mask, block.as_ptr().add(w * len + r).cast::<i64>())
            };
            for (g, a) in acc.iter_mut().enumerate() {
                let q = _mm512_set1_epi64(queries[g * W + w] as i64);
                *a = _mm512_add_epi64(*a, _mm512_popcnt_epi64(_mm512_xor_si512(c, q)));
            }
        }
        let mut masks = [0 as __mmask8; WIDE_GROUP];
        let mut any: __mmask8 = 0;
        for g in 0..WIDE_GROUP {
            masks[g] = _mm512_mask_cmplt_epu64_mask(lane_mask, acc[g], bars[g]);
            any |= masks[g];
        }
        if any != 0 {
            for (g, nearest) in best.iter_mut().enumerate() {
                let mut hits = masks[g];
                if hits == 0 {
                    continue;
                }
                let mut d = [0u64; 8];
                // SAFETY: `d` holds exactly one 512-bit vector.
                unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), acc[g]) };
                while hits != 0 {
                    let lane = hits.trailing_zeros() as usize;
                    hits &= hits - 1;
                    nearest.offer(d[lane] as u32, base + r + lane, k);
                }
                bars[g] = _mm512_set1_epi64(i64::from(nearest.bar));
            }
        }
        r += 8;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn scan_avx2(
    query: &[u64],
    block: &[u64],
    out: &mut [u32],
    best: &mut Nearest,
    base: usize,
    k: usize,
) {
    scan_generic(query, block, out, best, base, k)
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
    k: usize,
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
                            $($w => unsafe { scan_wide_avx512::<$w>(group_words, block, len, group, base, k) },)*
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
                unsafe { scan_group_avx512(group_words, words, block, len, group, base, k) };
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
                        k,
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
                    k,
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
    let (c_rows, _) = pack_rows(corpus);
    let c_cols = pack_block_columns(&c_rows, nc, words);
    drop(c_rows);
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
            .map(|_| Nearest {
                heap: BinaryHeap::with_capacity(k + 1),
                bar: u32::MAX,
            })
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
                k,
            );
        }
        for (i, nearest) in best.into_iter().enumerate() {
            for (rank, (d, j)) in nearest.heap.into_sorted_vec().into_iter().enumerate() {
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
        fn hamming_matches_naive(nq in 1usize..12, nc in 1usize..300, width in 1usize..20, k in 1usize..15,
                                 bytes in proptest::collection::vec(any::<u8>(), 312 * 20)) {
            let q = Array2::from_shape_fn((nq, width), |(i, j)| bytes[i * 20 + j]);
            let c = Array2::from_shape_fn((nc, width), |(i, j)| bytes[(12 + i) * 20 + j] & 0xF0);
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

    #[test]
    fn width_mismatch_is_an_error() {
        let a = Array2::<u8>::zeros((1, 4));
        let b = Array2::<u8>::zeros((1, 5));
        assert!(hamming_topk(a.view(), b.view(), 1).is_err());
        assert!(code_dot_topk(a.view(), b.view(), 1).is_err());
    }
}
