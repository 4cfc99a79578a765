//! Hits and the running best-`k` selection shared by the fp32 and the bf16 passes of the top-k search.
//!
//! A [`Hit`] orders so that the worst one tops a max-heap; [`offer`] keeps a heap at `k` hits and returns the bar a
//! newcomer must reach; [`TopKState`] holds one such heap per query row and is fed blocks of scores. Ties break by
//! the lower corpus index.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One hit; ordered so that the *worst* hit is the greatest (the top of a max-heap is evicted first).
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit {
    pub(super) score: f32,
    pub(super) index: usize,
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

/// Offers a hit to a heap of at most `k` best hits; returns the score a newcomer must reach once the heap is full
/// (`-inf` before).
#[inline]
pub(super) fn offer(heap: &mut BinaryHeap<Hit>, k: usize, hit: Hit) -> f32 {
    if heap.len() < k {
        heap.push(hit);
    } else if let Some(worst) = heap.peek() {
        if hit < *worst {
            heap.pop();
            heap.push(hit);
        }
    }
    if heap.len() == k {
        heap.peek().map_or(f32::NEG_INFINITY, |w| w.score)
    } else {
        f32::NEG_INFINITY
    }
}

/// The value hits are ranked by: -0.0 equals 0.0 (a GEMM may produce either) and NaN ranks last.
pub(super) fn rank_key(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else if score == 0.0 {
        0.0
    } else {
        score
    }
}

/// Scores compared against a full heap's bar at a time.
const SCAN_LANES: usize = 32;

/// Running best-`k` hits for a set of query rows, fed one block of scores at a time.
///
/// This is the selection half of a search: the caller computes score blocks (with any GEMM) and pushes them;
/// memory stays at `rows x k` hits. Ties break by the lower column index.
#[derive(Debug, Clone)]
pub struct TopKState {
    k: usize,
    pub(super) heaps: Vec<BinaryHeap<Hit>>,
}

impl TopKState {
    /// State for `rows` query rows keeping `k` hits each.
    pub fn new(rows: usize, k: usize) -> Self {
        TopKState {
            k,
            heaps: (0..rows)
                .map(|_| BinaryHeap::with_capacity(k + 1))
                .collect(),
        }
    }

    /// Number of query rows.
    pub fn rows(&self) -> usize {
        self.heaps.len()
    }

    /// Offers a block of scores: row `i` of `scores` belongs to query `row_offset + i`, column `j` to corpus
    /// index `col_offset + j`. With `col_scale`, score `(i, j)` is multiplied by `col_scale[j]` first (cosine from
    /// dot products and corpus inverse norms). With `exclude_self`, corpus index == query index is skipped
    /// (paraphrase mining of a set against itself).
    pub fn push_block(
        &mut self,
        scores: ArrayView2<f32>,
        row_offset: usize,
        col_offset: usize,
        col_scale: Option<ArrayView1<f32>>,
        exclude_self: bool,
    ) -> CoreResult<()> {
        let (n, m) = scores.dim();
        if row_offset + n > self.heaps.len() {
            return Err(invalid(format!(
                "score block rows {row_offset}..{} exceed the {} query rows of this search",
                row_offset + n,
                self.heaps.len()
            )));
        }
        if let Some(scale) = &col_scale {
            if scale.len() != m {
                return Err(CoreError::ShapeMismatch(format!(
                    "col_scale must have one value per score column, got {} for {m} columns",
                    scale.len()
                )));
            }
        }
        let k = self.k;
        if k == 0 {
            return Ok(());
        }
        let heaps = &mut self.heaps[row_offset..row_offset + n];
        let work = |(i, heap): (usize, &mut BinaryHeap<Hit>)| {
            let row = scores.row(i);
            let query = row_offset + i;
            // Once the heap is full, a score below the worst kept one cannot enter: checked before any heap work.
            let mut bar = if heap.len() == k {
                heap.peek().map_or(f32::NEG_INFINITY, |w| w.score)
            } else {
                f32::NEG_INFINITY
            };
            let mut visit = |j: usize, value: f32, bar: &mut f32| {
                let score = rank_key(value);
                if score < *bar {
                    return;
                }
                let index = col_offset + j;
                if exclude_self && index == query {
                    return;
                }
                *bar = offer(heap, k, Hit { score, index });
            };
            let mut scaled = [0f32; SCAN_LANES];
            let mut j0 = 0;
            while j0 < m {
                let j1 = (j0 + SCAN_LANES).min(m);
                let width = j1 - j0;
                match (&col_scale, row.as_slice()) {
                    (Some(scale), Some(values)) => {
                        for ((out, &raw), &factor) in scaled[..width]
                            .iter_mut()
                            .zip(&values[j0..j1])
                            .zip(scale.slice(ndarray::s![j0..j1]).iter())
                        {
                            *out = raw * factor;
                        }
                    }
                    (Some(scale), None) => {
                        for (t, out) in scaled[..width].iter_mut().enumerate() {
                            *out = row[j0 + t] * scale[j0 + t];
                        }
                    }
                    (None, Some(values)) => scaled[..width].copy_from_slice(&values[j0..j1]),
                    (None, None) => {
                        for (t, out) in scaled[..width].iter_mut().enumerate() {
                            *out = row[j0 + t];
                        }
                    }
                }
                // A full heap's bar is finite: a lane of scores that all fall below it (NaN included, which ranks
                // last) is skipped with one vectorised comparison.
                let skip = bar > f32::NEG_INFINITY
                    && !scaled[..width]
                        .iter()
                        .fold(false, |any, &v| any | (v >= bar));
                if !skip {
                    for (t, &value) in scaled[..width].iter().enumerate() {
                        visit(j0 + t, value, &mut bar);
                    }
                }
                j0 = j1;
            }
        };
        if parallel::parallel_enabled() && n > 1 && n * m > 1 << 14 {
            parallel::install(|| heaps.par_iter_mut().enumerate().for_each(work));
        } else {
            heaps.iter_mut().enumerate().for_each(work);
        }
        Ok(())
    }

    /// The score a new hit must reach per row: the `k`-th best so far, `-inf` while a row has fewer than `k`.
    pub fn bars(&self) -> Vec<f32> {
        self.heaps
            .iter()
            .map(|heap| {
                if heap.len() == self.k {
                    heap.peek().map_or(f32::NEG_INFINITY, |w| w.score)
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect()
    }

    /// Adds the hits of `other` (a state over the same rows, from another part of the corpus).
    pub fn merge(&mut self, other: TopKState) {
        for (heap, theirs) in self.heaps.iter_mut().zip(other.heaps) {
            for hit in theirs {
                offer(heap, self.k, hit);
            }
        }
    }

    /// Ids (`-1` where a row has fewer than `k` hits) and scores (`-inf` there), `(rows, k)`, best first.
    pub fn finish(self) -> (Array2<i64>, Array2<f32>) {
        let k = self.k;
        let mut ids = Array2::<i64>::from_elem((self.heaps.len(), k), -1);
        let mut scores = Array2::<f32>::from_elem((self.heaps.len(), k), f32::NEG_INFINITY);
        for (i, heap) in self.heaps.into_iter().enumerate() {
            for (rank, hit) in heap.into_sorted_vec().into_iter().enumerate() {
                ids[[i, rank]] = hit.index as i64;
                scores[[i, rank]] = hit.score;
            }
        }
        (ids, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_excludes_self_and_pads_short_rows() {
        let scores = ndarray::array![[9.0f32, 1.0, 5.0], [2.0, 8.0, 3.0]];
        let mut state = TopKState::new(2, 2);
        state.push_block(scores.view(), 0, 0, None, true).unwrap();
        let (ids, s) = state.finish();
        assert_eq!(ids, ndarray::array![[2i64, 1], [2, 0]]);
        assert_eq!(s, ndarray::array![[5.0f32, 1.0], [3.0, 2.0]]);
        let mut short = TopKState::new(1, 3);
        short
            .push_block(ndarray::array![[1.0f32]].view(), 0, 0, None, false)
            .unwrap();
        assert_eq!(short.finish().0, ndarray::array![[0i64, -1, -1]]);
        let mut bad = TopKState::new(1, 1);
        assert!(bad.push_block(scores.view(), 0, 0, None, false).is_err());
    }
}
