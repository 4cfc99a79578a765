//! Sparse (SPLADE-style) embeddings: the activation and pooling over MLM logits in one pass, pruning to the most
//! active dimensions, and the result in CSR form.
//!
//! The reference multiplies the `(batch, seq, vocab)` logits by the mask, applies `relu` and `log1p` (twice for
//! `log1p_relu`) in place and pools over the sequence; here each row is pooled straight from the logits of its
//! attended tokens, without intermediate `(batch, seq, vocab)` tensors.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use ndarray::{Array1, Array2, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

/// How token activations are combined over the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpladeStrategy {
    /// Maximum over tokens.
    Max,
    /// Sum over tokens.
    Sum,
}

/// The activation applied to each logit before pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpladeActivation {
    /// `log1p(relu(x))`.
    Relu,
    /// `log1p(log1p(relu(x)))`.
    Log1pRelu,
}

impl SpladeStrategy {
    /// Parses `"max"` or `"sum"`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "max" => Ok(SpladeStrategy::Max),
            "sum" => Ok(SpladeStrategy::Sum),
            other => Err(invalid(format!(
                "pooling_strategy must be 'max' or 'sum', got '{other}'"
            ))),
        }
    }
}

impl SpladeActivation {
    /// Parses `"relu"` or `"log1p_relu"`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "relu" => Ok(SpladeActivation::Relu),
            "log1p_relu" => Ok(SpladeActivation::Log1pRelu),
            other => Err(invalid(format!(
                "activation_function must be 'relu' or 'log1p_relu', got '{other}'"
            ))),
        }
    }
}

/// Sparse rows: row `r` holds `indices[indptr[r]..indptr[r+1]]` (ascending) with their `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseCsr {
    /// Row offsets, `rows + 1` entries.
    pub indptr: Vec<i64>,
    /// Column of each stored value.
    pub indices: Vec<i64>,
    /// The stored values.
    pub values: Vec<f32>,
    /// Number of columns.
    pub cols: usize,
}

/// Keeps the `k` largest-magnitude entries of a dense row (ties to the lower index) and returns them sorted by
/// column; zeros are never stored.
fn top_active(row: &[f32], k: Option<usize>) -> Vec<(usize, f32)> {
    let mut active: Vec<(usize, f32)> = row
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, v)| v != 0.0)
        .collect();
    if let Some(k) = k {
        if active.len() > k {
            active.select_nth_unstable_by(k, |a, b| {
                b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0))
            });
            active.truncate(k);
            active.sort_by_key(|&(j, _)| j);
        }
    }
    active
}

fn to_csr(rows: Vec<Vec<(usize, f32)>>, cols: usize) -> SparseCsr {
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0i64);
    let total: usize = rows.iter().map(Vec::len).sum();
    let mut indices = Vec::with_capacity(total);
    let mut values = Vec::with_capacity(total);
    for row in rows {
        for (j, v) in row {
            indices.push(j as i64);
            values.push(v);
        }
        indptr.push(indices.len() as i64);
    }
    SparseCsr {
        indptr,
        indices,
        values,
        cols,
    }
}

/// SPLADE pooling of MLM logits `(batch, seq, vocab)` under `mask` `(batch, seq)`, pruned to `max_active_dims`.
pub fn splade_pool(
    logits: ArrayView3<f32>,
    mask: ArrayView2<i64>,
    strategy: SpladeStrategy,
    activation: SpladeActivation,
    max_active_dims: Option<usize>,
) -> CoreResult<SparseCsr> {
    let (batch, seq, vocab) = logits.dim();
    if mask.dim() != (batch, seq) {
        return Err(CoreError::ShapeMismatch(format!(
            "attention_mask must have shape ({batch}, {seq}) to match the logits, got {:?}",
            mask.dim()
        )));
    }
    if max_active_dims == Some(0) {
        return Err(invalid("max_active_dims must be >= 1, got 0"));
    }
    let activate = |x: f32| {
        let y = x.max(0.0).ln_1p();
        if activation == SpladeActivation::Log1pRelu {
            y.ln_1p()
        } else {
            y
        }
    };
    let pool_row = |b: usize| -> Vec<(usize, f32)> {
        let tokens = logits.index_axis(Axis(0), b);
        let attended: Vec<usize> = (0..seq).filter(|&t| mask[[b, t]] != 0).collect();
        let mut acc = Array1::<f32>::zeros(vocab);
        if attended.is_empty() {
            return Vec::new();
        }
        match strategy {
            // The activation is monotonic, so the max of activations is the activation of the max logit: one
            // cheap max pass per token and one log1p per vocabulary entry, not per (token, entry).
            SpladeStrategy::Max => {
                acc.fill(f32::NEG_INFINITY);
                for &t in &attended {
                    acc.zip_mut_with(&tokens.row(t), |a, &x| *a = a.max(x));
                }
                // Most entries never turn positive and stay 0 without calling log1p.
                acc.mapv_inplace(|x| if x > 0.0 { activate(x) } else { 0.0 });
            }
            // Non-positive logits contribute log1p(0) = 0: only positive ones pay for log1p.
            SpladeStrategy::Sum => {
                for &t in &attended {
                    acc.zip_mut_with(&tokens.row(t), |a, &x| {
                        if x > 0.0 {
                            *a += activate(x);
                        }
                    });
                }
            }
        }
        top_active(acc.as_slice().unwrap_or(&[]), max_active_dims)
    };
    let rows: Vec<Vec<(usize, f32)>> = if parallel::parallel_enabled() && batch > 1 {
        parallel::install(|| (0..batch).into_par_iter().map(pool_row).collect())
    } else {
        (0..batch).map(pool_row).collect()
    };
    Ok(to_csr(rows, vocab))
}

/// Dense rows `(n, dim)` to CSR, keeping the `max_active_dims` largest magnitudes per row when given.
pub fn dense_to_csr(x: ArrayView2<f32>, max_active_dims: Option<usize>) -> CoreResult<SparseCsr> {
    if max_active_dims == Some(0) {
        return Err(invalid("max_active_dims must be >= 1, got 0"));
    }
    let row = |r: usize| -> Vec<(usize, f32)> {
        let owned: Vec<f32> = x.row(r).to_vec();
        top_active(&owned, max_active_dims)
    };
    let rows: Vec<Vec<(usize, f32)>> = if parallel::parallel_enabled() && x.nrows() > 1 {
        parallel::install(|| (0..x.nrows()).into_par_iter().map(row).collect())
    } else {
        (0..x.nrows()).map(row).collect()
    };
    Ok(to_csr(rows, x.ncols()))
}

/// Per-thread search state: the score accumulator, one slot per document.
type Scratch = Vec<f32>;

/// Documents checked together by the scan's vectorised pre-filter.
const SCAN_CHUNK: usize = 64;

/// An inverted index over sparse document vectors: for each dimension, the documents that use it.
#[derive(Debug, Clone)]
pub struct InvertedIndex {
    n_docs: usize,
    dim: usize,
    /// Column offsets into `docs`/`values`, `dim + 1` entries (CSC layout of the document matrix).
    col_ptr: Vec<usize>,
    docs: Vec<u32>,
    values: Vec<f32>,
    /// L2 norm of each document (for cosine).
    norms: Vec<f32>,
}

fn check_csr(
    indptr: &[i64],
    indices: &[i64],
    values: &[f32],
    dim: usize,
    what: &str,
) -> CoreResult<usize> {
    if indptr.is_empty() || indptr[0] != 0 {
        return Err(invalid(format!("{what} indptr must start with 0")));
    }
    if indices.len() != values.len() || *indptr.last().unwrap_or(&0) as usize != indices.len() {
        return Err(CoreError::ShapeMismatch(format!(
            "{what} indptr, indices and values disagree: indptr ends at {}, {} indices, {} values",
            indptr.last().unwrap_or(&0),
            indices.len(),
            values.len()
        )));
    }
    if indptr.windows(2).any(|w| w[1] < w[0]) {
        return Err(invalid(format!("{what} indptr must be non-decreasing")));
    }
    if let Some(&bad) = indices.iter().find(|&&j| j < 0 || j as usize >= dim) {
        return Err(invalid(format!(
            "{what} has column index {bad} outside 0..{dim}"
        )));
    }
    Ok(indptr.len() - 1)
}

/// Largest column count an index takes: one counter per column is allocated (2^28 columns: 2 GiB).
pub const MAX_DIM: usize = 1 << 28;

impl InvertedIndex {
    /// Builds the index from documents in CSR form (`dim` columns).
    pub fn from_csr(
        indptr: &[i64],
        indices: &[i64],
        values: &[f32],
        dim: usize,
    ) -> CoreResult<Self> {
        if dim > MAX_DIM {
            return Err(invalid(format!(
                "dim (the number of columns) must be at most {MAX_DIM}, got {dim}"
            )));
        }
        let n_docs = check_csr(indptr, indices, values, dim, "corpus")?;
        if n_docs > u32::MAX as usize {
            return Err(invalid(format!(
                "at most {} documents per index, got {n_docs}",
                u32::MAX
            )));
        }
        let mut counts = vec![0usize; dim + 1];
        for &j in indices {
            counts[j as usize + 1] += 1;
        }
        for j in 0..dim {
            counts[j + 1] += counts[j];
        }
        let col_ptr = counts.clone();
        let mut fill = counts;
        let mut docs = vec![0u32; indices.len()];
        let mut vals = vec![0f32; indices.len()];
        let mut norms = vec![0f32; n_docs];
        for d in 0..n_docs {
            for p in indptr[d] as usize..indptr[d + 1] as usize {
                let j = indices[p] as usize;
                docs[fill[j]] = d as u32;
                vals[fill[j]] = values[p];
                fill[j] += 1;
                norms[d] += values[p] * values[p];
            }
        }
        for n in &mut norms {
            *n = n.sqrt().max(1e-12);
        }
        Ok(InvertedIndex {
            n_docs,
            dim,
            col_ptr,
            docs,
            values: vals,
            norms,
        })
    }

    fn scratch(&self) -> Scratch {
        vec![0f32; self.n_docs]
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.n_docs
    }

    /// Whether the index holds no documents.
    pub fn is_empty(&self) -> bool {
        self.n_docs == 0
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Best `k` documents per query (queries in CSR form): `(ids, scores)`, `(q, min(k, n_docs))`, best first,
    /// ties to the lower document index; exact, including documents that share no dimension (score 0).
    pub fn search(
        &self,
        indptr: &[i64],
        indices: &[i64],
        values: &[f32],
        k: usize,
        cosine: bool,
        cancel: &crate::cancel::Cancel,
    ) -> CoreResult<(Array2<i64>, Array2<f32>)> {
        let nq = check_csr(indptr, indices, values, self.dim, "query")?;
        let k = k.min(self.n_docs);
        let mut ids = Array2::<i64>::from_elem((nq, k), -1);
        let mut scores = Array2::<f32>::zeros((nq, k));
        if nq == 0 || k == 0 {
            return Ok((ids, scores));
        }
        let one = |acc: &mut Scratch, q: usize| -> Vec<(usize, f32)> {
            if cancel.is_cancelled() {
                return Vec::new(); // the whole search is discarded below
            }
            let (start, end) = (indptr[q] as usize, indptr[q + 1] as usize);
            // Scatter-add along the posting lists of the query's dimensions.
            for p in start..end {
                let (j, qv) = (indices[p] as usize, values[p]);
                let (lo, hi) = (self.col_ptr[j], self.col_ptr[j + 1]);
                for (&d, &v) in self.docs[lo..hi].iter().zip(&self.values[lo..hi]) {
                    acc[d as usize] += qv * v;
                }
            }
            let q_norm = if cosine {
                (start..end)
                    .map(|p| values[p] * values[p])
                    .sum::<f32>()
                    .sqrt()
                    .max(1e-12)
            } else {
                1.0
            };
            let score = |d: usize, raw: f32| {
                if cosine {
                    raw / (q_norm * self.norms[d])
                } else {
                    raw
                }
            };
            // Bounded heap over the non-zero scores; ordering: lower score worse, then higher index worse.
            let mut heap: std::collections::BinaryHeap<Ranked> =
                std::collections::BinaryHeap::with_capacity(k + 1);
            let mut bar = f32::NEG_INFINITY; // the worst kept score once the heap is full
            for (c, chunk) in acc.chunks(SCAN_CHUNK).enumerate() {
                if heap.len() == k
                    && !cosine
                    && chunk.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) <= bar
                {
                    continue; // nothing here beats the bar (documents arrive in index order, so ties lose)
                }
                for (o, &raw) in chunk.iter().enumerate() {
                    if raw == 0.0 {
                        continue;
                    }
                    let d = c * SCAN_CHUNK + o;
                    let s = score(d, raw);
                    if s == 0.0 || (heap.len() == k && s <= bar) {
                        continue;
                    }
                    heap.push(Ranked { score: s, index: d });
                    if heap.len() > k {
                        heap.pop();
                    }
                    if heap.len() == k {
                        bar = heap.peek().map_or(f32::NEG_INFINITY, |w| w.score);
                    }
                }
            }
            // Zero scores (documents sharing nothing, or cancelling out) compete only when the heap is short or
            // holds something not above zero.
            if heap.len() < k || heap.peek().is_some_and(|w| w.score <= 0.0) {
                let mut added = 0;
                for (d, &raw) in acc.iter().enumerate() {
                    if score(d, raw) == 0.0 {
                        heap.push(Ranked {
                            score: 0.0,
                            index: d,
                        });
                        if heap.len() > k {
                            heap.pop();
                        }
                        added += 1;
                        if added >= k {
                            break; // later zeros have higher indices and lose every tie
                        }
                    }
                }
            }
            acc.fill(0.0);
            heap.into_sorted_vec()
                .into_iter()
                .map(|r| (r.index, r.score))
                .collect()
        };
        let results: Vec<Vec<(usize, f32)>> = if parallel::parallel_enabled() && nq > 1 {
            parallel::install(|| {
                (0..nq)
                    .into_par_iter()
                    .map_init(|| self.scratch(), |scratch, q| one(scratch, q))
                    .collect()
            })
        } else {
            let mut scratch = self.scratch();
            (0..nq).map(|q| one(&mut scratch, q)).collect()
        };
        cancel.check()?;
        for (q, row) in results.into_iter().enumerate() {
            for (rank, (d, s)) in row.into_iter().enumerate() {
                ids[[q, rank]] = d as i64;
                scores[[q, rank]] = s;
            }
        }
        Ok((ids, scores))
    }
}

/// A hit ordered so that the worst is the greatest (lower score, then higher index).
#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f32,
    index: usize,
}
impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};
    use proptest::prelude::*;

    fn naive(
        logits: &Array3<f32>,
        mask: &ndarray::Array2<i64>,
        strategy: SpladeStrategy,
        act: SpladeActivation,
    ) -> ndarray::Array2<f32> {
        let (b, s, v) = logits.dim();
        ndarray::Array2::from_shape_fn((b, v), |(i, j)| {
            let vals = (0..s).map(|t| {
                let x = logits[[i, t, j]] * mask[[i, t]] as f32;
                let y = x.max(0.0).ln_1p();
                if act == SpladeActivation::Log1pRelu {
                    y.ln_1p()
                } else {
                    y
                }
            });
            match strategy {
                SpladeStrategy::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                SpladeStrategy::Sum => vals.sum(),
            }
        })
    }

    fn densify(csr: &SparseCsr) -> ndarray::Array2<f32> {
        let rows = csr.indptr.len() - 1;
        let mut out = ndarray::Array2::zeros((rows, csr.cols));
        for r in 0..rows {
            for p in csr.indptr[r] as usize..csr.indptr[r + 1] as usize {
                out[[r, csr.indices[p] as usize]] = csr.values[p];
            }
        }
        out
    }

    fn naive_search(
        q: &ndarray::Array2<f32>,
        d: &ndarray::Array2<f32>,
        k: usize,
        cosine: bool,
    ) -> Vec<Vec<(usize, f32)>> {
        q.rows()
            .into_iter()
            .map(|qr| {
                let qn = qr.dot(&qr).sqrt().max(1e-12);
                let mut v: Vec<(usize, f32)> = d
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(j, dr)| {
                        let s = qr.dot(&dr);
                        (
                            j,
                            if cosine {
                                s / (qn * dr.dot(&dr).sqrt().max(1e-12))
                            } else {
                                s
                            },
                        )
                    })
                    .collect();
                v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                v.truncate(k);
                v
            })
            .collect()
    }

    proptest! {
        #[test]
        fn inverted_index_matches_dense_search(nq in 1usize..6, nd in 1usize..40, dim in 1usize..15, k in 1usize..12,
                                               cosine in any::<bool>(),
                                               vals in proptest::collection::vec(-2i8..4, 46 * 15)) {
            // Small integers, many zeros: exact float sums, so ids must match exactly.
            let q = ndarray::Array2::from_shape_fn((nq, dim), |(i, j)| f32::from(vals[i * 15 + j].max(0)));
            let d = ndarray::Array2::from_shape_fn((nd, dim), |(i, j)| f32::from(vals[(6 + i) * 15 + j]));
            let qc = dense_to_csr(q.view(), None).unwrap();
            let dc = dense_to_csr(d.view(), None).unwrap();
            let index = InvertedIndex::from_csr(&dc.indptr, &dc.indices, &dc.values, dim).unwrap();
            let (ids, scores) = index.search(&qc.indptr, &qc.indices, &qc.values, k, cosine, &crate::cancel::Cancel::new()).unwrap();
            let want = naive_search(&q, &d, k, cosine);
            for i in 0..nq {
                for (r, &(j, s)) in want[i].iter().enumerate() {
                    prop_assert!((scores[[i, r]] - s).abs() <= 1e-5, "score {} vs {}", scores[[i, r]], s);
                    if !cosine { prop_assert_eq!(ids[[i, r]] as usize, j); }
                }
            }
        }
    }

    #[test]
    fn malformed_csr_is_an_error() {
        assert!(InvertedIndex::from_csr(&[0, 2], &[0], &[1.0], 4).is_err());
        assert!(InvertedIndex::from_csr(&[0, 1], &[7], &[1.0], 4).is_err());
        let index = InvertedIndex::from_csr(&[0, 1], &[1], &[1.0], 4).unwrap();
        assert!(index
            .search(
                &[0, 1],
                &[9],
                &[1.0],
                1,
                false,
                &crate::cancel::Cancel::new()
            )
            .is_err());
    }

    #[test]
    fn pools_and_prunes() {
        let logits =
            Array3::from_shape_vec((1, 2, 4), vec![1.0, -1.0, 0.0, 3.0, 2.0, 5.0, -2.0, 0.5])
                .unwrap();
        let mask = array![[1i64, 1]];
        let csr = splade_pool(
            logits.view(),
            mask.view(),
            SpladeStrategy::Max,
            SpladeActivation::Relu,
            Some(2),
        )
        .unwrap();
        assert_eq!(csr.indices, vec![1, 3]);
        assert!((csr.values[0] - 6.0f32.ln()).abs() < 1e-6);
        assert!(splade_pool(
            logits.view(),
            mask.view(),
            SpladeStrategy::Max,
            SpladeActivation::Relu,
            Some(0)
        )
        .is_err());
        assert!(SpladeStrategy::parse("mean").is_err());
        assert!(SpladeActivation::parse("gelu").is_err());
    }

    proptest! {
        #[test]
        fn matches_naive(b in 1usize..4, s in 1usize..6, v in 1usize..12, sum in any::<bool>(), twice in any::<bool>(),
                         vals in proptest::collection::vec(-3.0f32..3.0, 4 * 6 * 12),
                         lens in proptest::collection::vec(0usize..6, 4)) {
            let logits = Array3::from_shape_fn((b, s, v), |(i, t, j)| vals[(i * 6 + t) * 12 + j]);
            let mask = ndarray::Array2::from_shape_fn((b, s), |(i, t)| i64::from(t < lens[i]));
            let strategy = if sum { SpladeStrategy::Sum } else { SpladeStrategy::Max };
            let act = if twice { SpladeActivation::Log1pRelu } else { SpladeActivation::Relu };
            let got = densify(&splade_pool(logits.view(), mask.view(), strategy, act, None).unwrap());
            let want = naive(&logits, &mask, strategy, act);
            for (g, w) in got.iter().zip(want.iter()) {
                prop_assert!((g - w).abs() <= 1e-5);
            }
        }

        #[test]
        fn pruning_keeps_largest(vals in proptest::collection::vec(-5.0f32..5.0, 1..40), k in 1usize..10) {
            let x = ndarray::Array2::from_shape_vec((1, vals.len()), vals.clone()).unwrap();
            let csr = dense_to_csr(x.view(), Some(k)).unwrap();
            let nonzero = vals.iter().filter(|v| **v != 0.0).count();
            prop_assert_eq!(csr.values.len(), k.min(nonzero));
            let kept_min = csr.values.iter().map(|v| v.abs()).fold(f32::INFINITY, f32::min);
            let dropped_max = (0..vals.len()).filter(|j| !csr.indices.contains(&(*j as i64)))
                .map(|j| vals[j].abs()).fold(0.0f32, f32::max);
            prop_assert!(csr.values.is_empty() || kept_min >= dropped_max);
            prop_assert!(csr.indices.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
