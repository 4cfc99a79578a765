//! Python wrappers of [`crate::topk`]: exact top-k search, and a set searched against itself.

use super::{detach_cancellable_into_numpy, search_work, TopKArrays};
use crate::topk::TopKScore;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

/// The search score functions the kernels implement, by name.
pub(super) fn parse_score(score_function: &str) -> PyResult<TopKScore> {
    match score_function {
        "cosine" => Ok(TopKScore::Cosine),
        "dot" => Ok(TopKScore::Dot),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "score_function must be 'cosine' or 'dot', got '{other}'"
        ))),
    }
}

/// Exact top-k: `(ids, scores)` of shape `(n_queries, min(k, n_corpus))`, best first, ties by lower index;
/// `exclude_self` skips corpus row i for query i; `force_fp32` turns the bf16 candidate pass off. Ctrl-C stops it.
#[pyfunction]
#[pyo3(signature = (queries, corpus, k, score_function="cosine", corpus_chunk_size=8192, exclude_self=false, *, force_fp32=false))]
#[allow(clippy::too_many_arguments)]
fn topk_search<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    corpus: PyReadonlyArray2<'py, f32>,
    k: usize,
    score_function: &str,
    corpus_chunk_size: usize,
    exclude_self: bool,
    force_fp32: bool,
) -> PyResult<TopKArrays<'py>> {
    let score = parse_score(score_function)?;
    let (q, c) = (queries.as_array(), corpus.as_array());
    let work = search_work(q.nrows(), c.nrows(), q.ncols());
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::topk::topk_search(
            q,
            c,
            k,
            score,
            corpus_chunk_size,
            exclude_self,
            force_fp32,
            cancel,
        )
    })
}

/// How the last `topk_search` of the process ran: `(candidate pass, queries through it, queries it could not prove)`.
#[pyfunction]
fn topk_last_pass() -> (&'static str, usize, usize) {
    crate::topk::last_pass()
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
    let work = search_work(x.nrows(), x.nrows(), x.ncols()) / 2;
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::topk::topk_self_search(x, k, score, cancel)
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(topk_search, m)?)?;
    m.add_function(wrap_pyfunction!(topk_self_search, m)?)?;
    m.add_function(wrap_pyfunction!(topk_last_pass, m)?)?;
    Ok(())
}
