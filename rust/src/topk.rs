//! Exact top-k search without materialising the full query x corpus score matrix.
//!
//! Queries are scored against the corpus one block of rows at a time (a GEMM per block); each query keeps a
//! bounded heap of its best `k` hits. Peak extra memory is `queries_in_flight x block` scores, whatever the
//! corpus size. Ties break by the lower corpus index, so results are deterministic.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use crate::similarity::{matmul_nt, row_norms};
use ndarray::{s, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Scoring used by [`topk_search`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKScore {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
}

/// One hit; ordered so that the *worst* hit is the greatest (the top of a max-heap is evicted first).
#[derive(Debug, Clone, Copy)]
struct Hit {
    score: f32,
    index: usize,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lower score is worse; at equal score the higher index is worse.
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

/// The value hits are ranked by: -0.0 equals 0.0 (a GEMM may produce either) and NaN ranks last.
fn rank_key(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Best `k` hits per query: `(ids, scores)`, each `(n_queries, min(k, n_corpus))`, best first.
pub fn topk_search(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    if queries.ncols() != corpus.ncols() {
        return Err(CoreError::ShapeMismatch(format!(
            "query and corpus embeddings must have the same dimension, got {} and {}",
            queries.ncols(),
            corpus.ncols()
        )));
    }
    if corpus_block == 0 {
        return Err(invalid("corpus_chunk_size must be >= 1, got 0"));
    }
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let k = k.min(nc);
    let mut ids = Array2::<i64>::zeros((nq, k));
    let mut scores = Array2::<f32>::zeros((nq, k));
    if nq == 0 || k == 0 {
        return Ok((ids, scores));
    }
    let query_norms = row_norms(queries);
    // Each task owns a chunk of queries and walks the whole corpus; GEMMs inside run single-threaded then.
    let q_chunk = if parallel::parallel_enabled() {
        nq.div_ceil(parallel::current_num_threads() * 4).max(1)
    } else {
        nq
    };
    let work = |(chunk, (mut id_rows, mut score_rows)): (
        usize,
        (ndarray::ArrayViewMut2<i64>, ndarray::ArrayViewMut2<f32>),
    )|
     -> CoreResult<()> {
        let q0 = chunk * q_chunk;
        let q = queries.slice(s![q0..q0 + id_rows.nrows(), ..]);
        let mut heaps: Vec<BinaryHeap<Hit>> = (0..q.nrows())
            .map(|_| BinaryHeap::with_capacity(k + 1))
            .collect();
        let mut start = 0;
        while start < nc {
            let end = (start + corpus_block).min(nc);
            let block = corpus.slice(s![start..end, ..]);
            let mut block_scores = matmul_nt(q, block)?;
            if score == TopKScore::Cosine {
                let block_norms = row_norms(block);
                for (i, mut row) in block_scores.axis_iter_mut(Axis(0)).enumerate() {
                    let qn = query_norms[q0 + i];
                    row.zip_mut_with(&block_norms, |v, &n| *v /= qn * n);
                }
            }
            for (heap, row) in heaps.iter_mut().zip(block_scores.axis_iter(Axis(0))) {
                for (j, &value) in row.iter().enumerate() {
                    let hit = Hit {
                        score: rank_key(value),
                        index: start + j,
                    };
                    if heap.len() < k {
                        heap.push(hit);
                    } else if let Some(worst) = heap.peek() {
                        if hit < *worst {
                            heap.pop();
                            heap.push(hit);
                        }
                    }
                }
            }
            start = end;
        }
        for (i, heap) in heaps.into_iter().enumerate() {
            for (rank, hit) in heap.into_sorted_vec().into_iter().enumerate() {
                id_rows[[i, rank]] = hit.index as i64;
                score_rows[[i, rank]] = hit.score;
            }
        }
        Ok(())
    };
    let chunks = ids
        .axis_chunks_iter_mut(Axis(0), q_chunk)
        .zip(scores.axis_chunks_iter_mut(Axis(0), q_chunk));
    let results: Vec<CoreResult<()>> = if parallel::parallel_enabled() && nq > 1 {
        parallel::install(|| chunks.enumerate().par_bridge().map(work).collect())
    } else {
        chunks.enumerate().map(work).collect()
    };
    results.into_iter().collect::<CoreResult<Vec<()>>>()?;
    Ok((ids, scores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::{similarity_matrix, Similarity};
    use proptest::prelude::*;

    fn naive(
        q: &Array2<f32>,
        c: &Array2<f32>,
        k: usize,
        score: TopKScore,
    ) -> Vec<Vec<(usize, f32)>> {
        let sim = if score == TopKScore::Cosine {
            Similarity::Cosine
        } else {
            Similarity::Dot
        };
        let m = similarity_matrix(q.view(), c.view(), sim).unwrap();
        m.rows()
            .into_iter()
            .map(|row| {
                let mut v: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
                v.sort_by(|a, b| rank_key(b.1).total_cmp(&rank_key(a.1)).then(a.0.cmp(&b.0)));
                v.truncate(k);
                v
            })
            .collect()
    }

    #[test]
    fn ties_break_by_lower_index() {
        let q = Array2::from_elem((1, 2), 1.0f32);
        let c = Array2::from_elem((5, 2), 1.0f32);
        let (ids, _) = topk_search(q.view(), c.view(), 3, TopKScore::Dot, 2).unwrap();
        assert_eq!(ids.row(0).to_vec(), vec![0, 1, 2]);
    }

    #[test]
    fn edge_cases() {
        let q = Array2::from_elem((2, 3), 1.0f32);
        let c = Array2::from_elem((4, 3), 1.0f32);
        assert_eq!(
            topk_search(q.view(), c.view(), 10, TopKScore::Dot, 3)
                .unwrap()
                .0
                .dim(),
            (2, 4)
        );
        assert_eq!(
            topk_search(q.view(), c.view(), 0, TopKScore::Dot, 3)
                .unwrap()
                .0
                .dim(),
            (2, 0)
        );
        let empty = Array2::<f32>::zeros((0, 3));
        assert_eq!(
            topk_search(q.view(), empty.view(), 5, TopKScore::Cosine, 3)
                .unwrap()
                .0
                .dim(),
            (2, 0)
        );
        let bad = Array2::<f32>::zeros((4, 2));
        assert!(topk_search(q.view(), bad.view(), 1, TopKScore::Dot, 3).is_err());
        assert!(topk_search(q.view(), c.view(), 1, TopKScore::Dot, 0).is_err());
    }

    proptest! {
        #[test]
        fn matches_full_sort(nq in 1usize..30, nc in 1usize..200, d in 1usize..8, k in 1usize..20,
                             block in 1usize..64, cosine in any::<bool>(),
                             vals in proptest::collection::vec(-4i8..4, 230 * 8)) {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| f32::from(vals[i * 8 + j]));
            let c = Array2::from_shape_fn((nc, d), |(i, j)| f32::from(vals[(30 + i) * 8 + j]) * 0.5);
            let score = if cosine { TopKScore::Cosine } else { TopKScore::Dot };
            let (ids, scores) = topk_search(q.view(), c.view(), k, score, block).unwrap();
            let want = naive(&q, &c, k, score);
            for i in 0..nq {
                for (rank, &(j, s)) in want[i].iter().enumerate() {
                    prop_assert!((scores[[i, rank]] - s).abs() <= 1e-5);
                    // Ids may differ only where scores tie (GEMM and direct sums round alike here: small ints).
                    if (scores[[i, rank]] - s).abs() == 0.0 { prop_assert_eq!(ids[[i, rank]] as usize, j); }
                }
            }
        }
    }
}
