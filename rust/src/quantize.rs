//! Search over quantised embeddings: Hamming distance over packed bits, inner products over int8/uint8 codes.
//!
//! Scalar and binary quantisation themselves are cheap numpy one-liners kept in Python; what needs native speed
//! is scanning a large quantised corpus. Both searches are exact; ties break by the lower corpus index.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use crate::topk::TopKState;
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Corpus rows scanned per block (keeps a block of packed codes in cache while a query group walks it).
const HAMMING_BLOCK: usize = 8192;

/// Rows of `codes` packed into little-endian `u64` words, zero-padded to `words` per row.
fn pack_words(codes: ArrayView2<u8>) -> (Vec<u64>, usize) {
    let bytes = codes.ncols();
    let words = bytes.div_ceil(8).max(1);
    let mut out = vec![0u64; codes.nrows() * words];
    for (r, row) in codes.rows().into_iter().enumerate() {
        for (b, &v) in row.iter().enumerate() {
            out[r * words + b / 8] |= u64::from(v) << (8 * (b % 8));
        }
    }
    (out, words)
}

#[inline(always)]
fn hamming_words(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Hamming distances of one query to a block of rows, with the hardware `popcnt` instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn hamming_block_popcnt(query: &[u64], block: &[u64], words: usize, out: &mut [u32]) {
    for (d, row) in out.iter_mut().zip(block.chunks_exact(words)) {
        *d = hamming_words(query, row);
    }
}

fn hamming_block_portable(query: &[u64], block: &[u64], words: usize, out: &mut [u32]) {
    for (d, row) in out.iter_mut().zip(block.chunks_exact(words)) {
        *d = hamming_words(query, row);
    }
}

fn hamming_block(query: &[u64], block: &[u64], words: usize, out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports popcnt, checked just above.
            unsafe { hamming_block_popcnt(query, block, words, out) };
            return;
        }
    }
    hamming_block_portable(query, block, words, out);
}

/// The `k` corpus rows nearest in Hamming distance to each query: `(ids, distances)`, `(q, min(k, n))`,
/// nearest first. Rows are packed bits (`np.packbits` output, uint8); both sides must have the same width.
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
    let (q_words, words) = pack_words(queries);
    let (c_words, _) = pack_words(corpus);
    let work = |(qi, (mut id_row, mut dist_row)): (
        usize,
        (ndarray::ArrayViewMut1<i64>, ndarray::ArrayViewMut1<u32>),
    )| {
        let query = &q_words[qi * words..(qi + 1) * words];
        // Max-heap of (distance, index): the top is the worst kept hit.
        let mut heap: std::collections::BinaryHeap<(u32, usize)> =
            std::collections::BinaryHeap::with_capacity(k + 1);
        let mut scratch = vec![0u32; HAMMING_BLOCK.min(nc)];
        for c0 in (0..nc).step_by(HAMMING_BLOCK) {
            let c1 = (c0 + HAMMING_BLOCK).min(nc);
            let out = &mut scratch[..c1 - c0];
            hamming_block(query, &c_words[c0 * words..c1 * words], words, out);
            for (j, &d) in out.iter().enumerate() {
                if heap.len() < k {
                    heap.push((d, c0 + j));
                } else if let Some(&(worst, _)) = heap.peek() {
                    // Later rows have higher indices, so only a strictly smaller distance wins a tie-free place.
                    if d < worst {
                        heap.pop();
                        heap.push((d, c0 + j));
                    }
                }
            }
        }
        for (rank, (d, j)) in heap.into_sorted_vec().into_iter().enumerate() {
            id_row[rank] = j as i64;
            dist_row[rank] = d;
        }
    };
    if parallel::parallel_enabled() && nq > 1 {
        parallel::install(|| {
            ids.axis_iter_mut(Axis(0))
                .into_par_iter()
                .zip(dists.axis_iter_mut(Axis(0)).into_par_iter())
                .enumerate()
                .for_each(work)
        });
    } else {
        ids.axis_iter_mut(Axis(0))
            .zip(dists.axis_iter_mut(Axis(0)))
            .enumerate()
            .for_each(work);
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
    fn width_mismatch_is_an_error() {
        let a = Array2::<u8>::zeros((1, 4));
        let b = Array2::<u8>::zeros((1, 5));
        assert!(hamming_topk(a.view(), b.view(), 1).is_err());
        assert!(code_dot_topk(a.view(), b.view(), 1).is_err());
    }
}
