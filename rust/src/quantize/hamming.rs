//! Hamming top-k over packed bits (`np.packbits` rows): the corpus packed word-major per block, scanned block by
//! block by every chunk of queries in parallel. Exact; ties break by the lower corpus index.

use super::hamming_scan::{detect_kernel, scan_block, QUERY_PADDING};
use super::nearest::Nearest;
use crate::cancel::Cancel;
use crate::error::{check_same_size, CoreResult};
use crate::parallel;
use ndarray::{Array2, ArrayView2, Axis};
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

/// The `k` corpus rows nearest in Hamming distance to each query: `(ids, distances)`, `(q, min(k, n))`,
/// nearest first, ties to the lower index. Rows are packed bits (`np.packbits` output, uint8). `cancel` is checked
/// between blocks.
pub fn hamming_topk(
    queries: ArrayView2<u8>,
    corpus: ArrayView2<u8>,
    k: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<u32>)> {
    check_same_size(
        "query and corpus codes must have the same width in bytes",
        queries.ncols(),
        corpus.ncols(),
    )?;
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
        // This chunk's query words, padded with zero queries to whole groups (their results are dropped).
        let mut padded = q_words[q0 * words..(q0 + rows) * words].to_vec();
        padded.resize(rows.div_ceil(QUERY_PADDING) * QUERY_PADDING * words, 0);
        for b0 in (0..nc).step_by(HAMMING_BLOCK) {
            if cancel.is_cancelled() {
                // The search fails below; this chunk's results are never read.
                return;
            }
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
    cancel.check()?;
    Ok((ids, dists))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use proptest::prelude::*;

    fn naive_hamming(q: &Array2<u8>, c: &Array2<u8>, k: usize) -> Hits {
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

    /// Each query's `(distance, id)` hits, best first.
    type Hits = Vec<Vec<(u32, usize)>>;

    /// `(got, want)`: the hits of [`hamming_topk`] and of [`naive_hamming`].
    fn hits_and_naive(q: &Array2<u8>, c: &Array2<u8>, k: usize) -> (Hits, Hits) {
        let (ids, dists) = hamming_topk(q.view(), c.view(), k, &Cancel::new()).unwrap();
        let got = (0..ids.nrows())
            .map(|i| {
                (0..ids.ncols())
                    .map(|r| (dists[[i, r]], ids[[i, r]] as usize))
                    .collect()
            })
            .collect();
        (got, naive_hamming(q, c, k))
    }

    proptest! {
        #[test]
        fn hamming_matches_naive(nq in 1usize..20, nc in 1usize..300, width in 1usize..140, k in 1usize..15,
                                 bytes in proptest::collection::vec(any::<u8>(), 320 * 140)) {
            // Widths up to 140 bytes cover every fixed-width kernel (1..=16 words) and the generic one beyond;
            // up to 19 queries cover partial groups of both kernels.
            let q = Array2::from_shape_fn((nq, width), |(i, j)| bytes[i * 140 + j]);
            let c = Array2::from_shape_fn((nc, width), |(i, j)| bytes[(20 + i) * 140 + j] & 0xF0);
            let (got, want) = hits_and_naive(&q, &c, k);
            prop_assert_eq!(got, want);
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
            let (got, want) = hits_and_naive(&q, &c, k);
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn hamming_across_several_blocks() {
        let nc = 2 * HAMMING_BLOCK + 123;
        let c = Array2::from_shape_fn((nc, 48), |(i, j)| ((i * 131 + j * 17) % 251) as u8);
        let q = Array2::from_shape_fn((3, 48), |(i, j)| ((i * 7 + j * 3) % 256) as u8);
        let (got, want) = hits_and_naive(&q, &c, 25);
        assert_eq!(got[0].len(), 25);
        assert_eq!(got, want);
    }

    #[test]
    fn width_mismatch_and_cancellation_are_errors() {
        let a = Array2::<u8>::zeros((1, 4));
        let b = Array2::<u8>::zeros((1, 5));
        assert!(hamming_topk(a.view(), b.view(), 1, &Cancel::new()).is_err());
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(
            hamming_topk(a.view(), a.view(), 1, &cancel),
            Err(CoreError::Cancelled)
        );
    }
}
