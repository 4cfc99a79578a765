//! Python wrappers of the numeric kernels: batching, pooling, normalisation, similarity, top-k search.

use super::{detach, to_py_err};
use crate::batching::plan_batches;
use crate::pooling::{self, PoolingMode};
use crate::similarity::{self, Similarity};
use crate::topk::TopKScore;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
};
use pyo3::prelude::*;

/// Two int64 index arrays handed back to Python (an order and its bounds, or CSR offsets and members).
type IndexArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

/// Plans length-sorted batches: returns `(order, boundaries)` where batch k is `order[boundaries[k]:boundaries[k+1]]`.
#[pyfunction]
#[pyo3(name = "plan_batches", signature = (lengths, batch_size, max_tokens=None))]
fn plan_batches_py<'py>(
    py: Python<'py>,
    lengths: Vec<usize>,
    batch_size: usize,
    max_tokens: Option<usize>,
) -> PyResult<IndexArrays<'py>> {
    let plan = detach(py, move || plan_batches(&lengths, batch_size, max_tokens))?;
    let order: Vec<i64> = plan.order.iter().map(|&i| i as i64).collect();
    let mut bounds: Vec<i64> = plan.batches.iter().map(|r| r.start as i64).collect();
    bounds.push(plan.order.len() as i64);
    Ok((order.into_pyarray(py), bounds.into_pyarray(py)))
}

/// Pools `(batch, seq, hidden)` float32 token embeddings under an int64 mask into `(batch, hidden * len(modes))`.
#[pyfunction]
#[pyo3(signature = (token_embeddings, attention_mask, modes, skip_first=0))]
fn pool<'py>(
    py: Python<'py>,
    token_embeddings: PyReadonlyArray3<'py, f32>,
    attention_mask: PyReadonlyArray2<'py, i64>,
    modes: Vec<String>,
    skip_first: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let modes: Vec<PoolingMode> = modes
        .iter()
        .map(|m| PoolingMode::parse(m))
        .collect::<Result<_, _>>()
        .map_err(|e| to_py_err(py, e))?;
    let tokens = token_embeddings.as_array();
    let mask = attention_mask.as_array();
    let out = detach(py, || pooling::pool(tokens, mask, &modes, skip_first))?;
    Ok(out.into_pyarray(py))
}

/// L2-normalises the rows of a float32 matrix into a new array.
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let view = x.as_array();
    let out = detach(py, || {
        let mut owned = view.to_owned();
        pooling::normalize_rows(&mut owned);
        Ok(owned)
    })?;
    Ok(out.into_pyarray(py))
}

/// `(n, m)` similarity matrix between float32 `(n, d)` and `(m, d)`.
#[pyfunction]
fn similarity_matrix<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    similarity_fn_name: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let sim = Similarity::parse(similarity_fn_name).map_err(|e| to_py_err(py, e))?;
    let (a, b) = (a.as_array(), b.as_array());
    let out = detach(py, || similarity::similarity_matrix(a, b, sim))?;
    Ok(out.into_pyarray(py))
}

/// Row-wise similarity between float32 `(n, d)` and `(n, d)`.
#[pyfunction]
fn similarity_pairwise<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    similarity_fn_name: &str,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let sim = Similarity::parse(similarity_fn_name).map_err(|e| to_py_err(py, e))?;
    let (a, b) = (a.as_array(), b.as_array());
    let out = detach(py, || similarity::similarity_pairwise(a, b, sim))?;
    Ok(out.into_pyarray(py))
}

/// `(ids, scores)` of a top-k search handed back to Python.
type TopKArrays<'py> = ArrayPair<'py, i64, f32>;

/// Two matrices handed back to Python together.
type ArrayPair<'py, A, B> = (Bound<'py, PyArray2<A>>, Bound<'py, PyArray2<B>>);

/// The search score functions the kernels implement, by name.
fn parse_score(score_function: &str) -> PyResult<TopKScore> {
    match score_function {
        "cosine" => Ok(TopKScore::Cosine),
        "dot" => Ok(TopKScore::Dot),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "score_function must be 'cosine' or 'dot', got '{other}'"
        ))),
    }
}

/// Exact top-k: `(ids, scores)` of shape `(n_queries, min(k, n_corpus))`, best first, ties by lower index;
/// `exclude_self` skips corpus row i for query i.
#[pyfunction]
#[pyo3(signature = (queries, corpus, k, score_function="cosine", corpus_chunk_size=8192, exclude_self=false))]
fn topk_search<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    corpus: PyReadonlyArray2<'py, f32>,
    k: usize,
    score_function: &str,
    corpus_chunk_size: usize,
    exclude_self: bool,
) -> PyResult<TopKArrays<'py>> {
    let score = parse_score(score_function)?;
    let (q, c) = (queries.as_array(), corpus.as_array());
    let (ids, scores) = detach(py, || {
        crate::topk::topk_search(q, c, k, score, corpus_chunk_size, exclude_self)
    })?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// Community detection: `(offsets, members)` in CSR form; community c is `members[offsets[c]:offsets[c+1]]`.
#[pyfunction]
#[pyo3(signature = (embeddings, threshold=0.75, min_community_size=10, batch_size=1024))]
fn community_detection<'py>(
    py: Python<'py>,
    embeddings: PyReadonlyArray2<'py, f32>,
    threshold: f32,
    min_community_size: usize,
    batch_size: usize,
) -> PyResult<IndexArrays<'py>> {
    let x = embeddings.as_array();
    let communities = detach(py, || {
        crate::cluster::community_detection(x, threshold, min_community_size, batch_size)
    })?;
    let mut offsets = Vec::with_capacity(communities.len() + 1);
    offsets.push(0i64);
    let mut members = Vec::new();
    for community in communities {
        members.extend(community.into_iter().map(|j| j as i64));
        offsets.push(members.len() as i64);
    }
    Ok((offsets.into_pyarray(py), members.into_pyarray(py)))
}

/// Paraphrase-mining pairs from neighbour lists: `(scores float32, lo int64, hi int64)`, best first.
#[pyfunction]
fn mine_pairs<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray2<'py, i64>,
    scores: PyReadonlyArray2<'py, f32>,
    max_pairs: usize,
) -> PyResult<MinedPairs<'py>> {
    let (i, s) = (ids.as_array(), scores.as_array());
    let (v, lo, hi) = detach(py, || crate::cluster::mine_pairs(i, s, max_pairs))?;
    Ok((v.into_pyarray(py), lo.into_pyarray(py), hi.into_pyarray(py)))
}

/// `(scores, lo, hi)` arrays of mined pairs.
type MinedPairs<'py> = (
    Bound<'py, PyArray1<f32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Nearest packed-bit codes by Hamming distance: `(ids int64, distances uint32)`, `(q, min(k, n))`.
#[pyfunction]
fn hamming_topk<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    corpus: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<ArrayPair<'py, i64, u32>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let (ids, dists) = detach(py, || crate::quantize::hamming_topk(q, c, k))?;
    Ok((ids.into_pyarray(py), dists.into_pyarray(py)))
}

/// Float scores of packed-bit candidates `ids` (`-1`: `-inf`) for float queries: query x unpacked bits.
#[pyfunction]
fn rescore_bits<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    corpus: PyReadonlyArray2<'py, u8>,
    ids: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (q, c, i) = (queries.as_array(), corpus.as_array(), ids.as_array());
    let scores = detach(py, || crate::quantize::rescore_bits(q, c, i))?;
    Ok(scores.into_pyarray(py))
}

/// Float scores of candidates `ids` (`-1`: `-inf`) against float corpus rows, accumulated in f64.
#[pyfunction]
fn rescore_rows<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    corpus: PyReadonlyArray2<'py, f32>,
    ids: PyReadonlyArray2<'py, i64>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let (q, c, i) = (queries.as_array(), corpus.as_array(), ids.as_array());
    let scores = detach(py, || crate::quantize::rescore_rows(q, c, i))?;
    Ok(scores.into_pyarray(py))
}

/// Best uint8 codes by inner product: `(ids, scores)`.
#[pyfunction]
fn code_dot_topk_u8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    corpus: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let (ids, scores) = detach(py, || crate::quantize::code_dot_topk(q, c, k))?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// Best int8 codes by inner product: `(ids, scores)`.
#[pyfunction]
fn code_dot_topk_i8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, i8>,
    corpus: PyReadonlyArray2<'py, i8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let (ids, scores) = detach(py, || crate::quantize::code_dot_topk(q, c, k))?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// CSR arrays `(indptr, indices, values)` handed back to Python.
type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
);

fn csr_to_py(py: Python<'_>, csr: crate::sparse::SparseCsr) -> CsrArrays<'_> {
    (
        csr.indptr.into_pyarray(py),
        csr.indices.into_pyarray(py),
        csr.values.into_pyarray(py),
    )
}

/// SPLADE pooling of `(batch, seq, vocab)` float32 logits straight to CSR rows, pruned to `max_active_dims`.
#[pyfunction]
#[pyo3(signature = (logits, attention_mask, pooling_strategy="max", activation_function="relu", max_active_dims=None))]
fn splade_pool<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray3<'py, f32>,
    attention_mask: PyReadonlyArray2<'py, i64>,
    pooling_strategy: &str,
    activation_function: &str,
    max_active_dims: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    let strategy =
        crate::sparse::SpladeStrategy::parse(pooling_strategy).map_err(|e| to_py_err(py, e))?;
    let activation = crate::sparse::SpladeActivation::parse(activation_function)
        .map_err(|e| to_py_err(py, e))?;
    let (l, m) = (logits.as_array(), attention_mask.as_array());
    let csr = detach(py, || {
        crate::sparse::splade_pool(l, m, strategy, activation, max_active_dims)
    })?;
    Ok(csr_to_py(py, csr))
}

/// Dense float32 rows to CSR, keeping the `max_active_dims` largest magnitudes per row.
#[pyfunction]
#[pyo3(signature = (x, max_active_dims=None))]
fn dense_to_csr<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    max_active_dims: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    let view = x.as_array();
    let csr = detach(py, || crate::sparse::dense_to_csr(view, max_active_dims))?;
    Ok(csr_to_py(py, csr))
}

/// Best `k` other rows of a set searched against itself (half the GEMM work): `(ids, scores)`, `(n, min(k, n-1))`.
#[pyfunction]
#[pyo3(signature = (embeddings, k, score_function="cosine"))]
fn topk_self_search<'py>(
    py: Python<'py>,
    embeddings: PyReadonlyArray2<'py, f32>,
    k: usize,
    score_function: &str,
) -> PyResult<TopKArrays<'py>> {
    let score = parse_score(score_function)?;
    let x = embeddings.as_array();
    let (ids, scores) = detach(py, || crate::topk::topk_self_search(x, k, score))?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// An inverted index over sparse document vectors (CSR in), searched exactly for sparse queries.
#[pyclass(module = "sentrs._core", name = "SparseIndex", frozen)]
pub struct PySparseIndex {
    inner: std::sync::Arc<crate::sparse::InvertedIndex>,
}

#[pymethods]
impl PySparseIndex {
    #[new]
    fn new(
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        values: PyReadonlyArray1<'_, f32>,
        dim: usize,
    ) -> PyResult<Self> {
        let (p, i, v) = (indptr.as_slice()?, indices.as_slice()?, values.as_slice()?);
        let index = detach(py, || crate::sparse::InvertedIndex::from_csr(p, i, v, dim))?;
        Ok(PySparseIndex {
            inner: std::sync::Arc::new(index),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Number of columns (the vocabulary size).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Best `k` documents per CSR query row: `(ids, scores)`; `score_function` is "dot" or "cosine".
    #[pyo3(signature = (indptr, indices, values, k, score_function="dot"))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, i64>,
        indices: PyReadonlyArray1<'py, i64>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        score_function: &str,
    ) -> PyResult<TopKArrays<'py>> {
        let cosine = parse_score(score_function)? == TopKScore::Cosine;
        let (p, i, v) = (indptr.as_slice()?, indices.as_slice()?, values.as_slice()?);
        let index = std::sync::Arc::clone(&self.inner);
        let (ids, scores) = detach(py, move || index.search(p, i, v, k, cosine))?;
        Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plan_batches_py, m)?)?;
    m.add_function(wrap_pyfunction!(pool, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(similarity_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(similarity_pairwise, m)?)?;
    m.add_function(wrap_pyfunction!(topk_search, m)?)?;
    m.add_function(wrap_pyfunction!(topk_self_search, m)?)?;
    m.add_function(wrap_pyfunction!(community_detection, m)?)?;
    m.add_function(wrap_pyfunction!(mine_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(splade_pool, m)?)?;
    m.add_function(wrap_pyfunction!(dense_to_csr, m)?)?;
    m.add_class::<PySparseIndex>()?;
    m.add_function(wrap_pyfunction!(hamming_topk, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_bits, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_rows, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_u8, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_i8, m)?)?;
    Ok(())
}
