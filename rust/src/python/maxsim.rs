//! Python wrappers of [`crate::maxsim`]: MaxSim scores of ragged token matrices (one buffer + offsets per side).

use super::{detach_cancellable_into_numpy, search_work, IntoNumpy};
use crate::cancel::Cancel;
use crate::error::CoreResult;
use crate::maxsim::Ragged;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

fn offsets_of(values: &PyReadonlyArray1<'_, i64>, what: &str) -> PyResult<Vec<usize>> {
    values
        .as_array()
        .iter()
        .map(|&v| {
            usize::try_from(v).map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(format!(
                    "{what} offsets must be non-negative, got {v}"
                ))
            })
        })
        .collect()
}

/// Largest `(n_queries, k)` result a top-k wrapper builds (and largest `k`): refused beyond, before allocating.
const MAX_TOPK_CELLS: usize = 1 << 32;

fn check_k(k: usize, query_offsets: &PyReadonlyArray1<'_, i64>) -> PyResult<()> {
    let queries = query_offsets.len().unwrap_or(0).saturating_sub(1);
    if k > MAX_TOPK_CELLS || queries.saturating_mul(k) > MAX_TOPK_CELLS {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "k={k} is too large for {queries} queries (at most {MAX_TOPK_CELLS} results); pass at most the \
             number of documents"
        )));
    }
    Ok(())
}

/// The shared half of both wrappers: offsets and weights read, the GIL released, Ctrl-C honoured, the two ragged
/// sides checked and handed to `kernel`.
fn ragged_call<'py, T: Send + IntoNumpy<'py>>(
    py: Python<'py>,
    queries: &PyReadonlyArray2<'py, f32>,
    query_offsets: &PyReadonlyArray1<'py, i64>,
    documents: &PyReadonlyArray2<'py, f32>,
    document_offsets: &PyReadonlyArray1<'py, i64>,
    query_weights: Option<&PyReadonlyArray1<'py, f32>>,
    kernel: impl FnOnce(Ragged, Ragged, Option<&[f32]>, &Cancel) -> CoreResult<T> + Send,
) -> PyResult<T::Py> {
    let (q_off, d_off) = (
        offsets_of(query_offsets, "query")?,
        offsets_of(document_offsets, "document")?,
    );
    // The kernels read rows as contiguous slices: other layouts (Fortran order, strides) are copied first.
    let (q, d) = (
        queries.as_array().as_standard_layout().into_owned(),
        documents.as_array().as_standard_layout().into_owned(),
    );
    let (q, d) = (q.view(), d.view());
    let weights = query_weights.map(|w| w.as_slice()).transpose()?;
    let work = search_work(q.nrows(), d.nrows(), q.ncols());
    detach_cancellable_into_numpy(py, work, |cancel| {
        let qr = Ragged::new(q, &q_off, "query")?;
        let dr = Ragged::new(d, &d_off, "document")?;
        kernel(qr, dr, weights, cancel)
    })
}

/// The `(n_queries, n_documents)` MaxSim matrix: `sum_s w_s max_t (q_s . d_t)`. Item `i` of a side owns rows
/// `offsets[i]:offsets[i + 1]` of its buffer; `query_weights` (one per query row) default to 1; documents without
/// tokens score `empty_score`. `kernel` is `auto` (the fastest this CPU runs), `fp32` or `amx` (bf16 candidates
/// on Intel AMX rescored in fp32: the same scores). Ctrl-C stops it.
#[pyfunction]
#[pyo3(signature = (queries, query_offsets, documents, document_offsets, query_weights=None, empty_score=-1e9,
                    kernel="auto"))]
#[allow(clippy::too_many_arguments)]
fn maxsim<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    query_offsets: PyReadonlyArray1<'py, i64>,
    documents: PyReadonlyArray2<'py, f32>,
    document_offsets: PyReadonlyArray1<'py, i64>,
    query_weights: Option<PyReadonlyArray1<'py, f32>>,
    empty_score: f32,
    kernel: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let kernel = kernel_of(py, kernel)?;
    ragged_call(
        py,
        &queries,
        &query_offsets,
        &documents,
        &document_offsets,
        query_weights.as_ref(),
        |qr, dr, weights, cancel| {
            crate::maxsim::maxsim_with(qr, dr, weights, empty_score, cancel, kernel)
        },
    )
}

/// MaxSim of query `i` with document `i`, `(n,)`; same conventions as `maxsim`.
#[pyfunction]
#[pyo3(signature = (queries, query_offsets, documents, document_offsets, query_weights=None, empty_score=-1e9))]
fn maxsim_pairwise<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    query_offsets: PyReadonlyArray1<'py, i64>,
    documents: PyReadonlyArray2<'py, f32>,
    document_offsets: PyReadonlyArray1<'py, i64>,
    query_weights: Option<PyReadonlyArray1<'py, f32>>,
    empty_score: f32,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    ragged_call(
        py,
        &queries,
        &query_offsets,
        &documents,
        &document_offsets,
        query_weights.as_ref(),
        |qr, dr, weights, cancel| {
            crate::maxsim::maxsim_pairwise(qr, dr, weights, empty_score, cancel)
        },
    )
}

/// Document ids per centroid and their offsets.
type InvertedLists<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<i64>>);

/// Ids and scores of a top-k search, `(queries, k)` each.
type TopK<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

fn kernel_of(py: Python<'_>, kernel: &str) -> PyResult<crate::maxsim::Kernel> {
    let kernel = crate::maxsim::Kernel::parse(kernel).map_err(|e| super::to_py_err(py, e))?;
    if kernel == crate::maxsim::Kernel::Amx && !crate::maxsim::amx::supported() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "kernel='amx' needs a CPU with AMX-BF16 (and an OS that grants it); use 'auto' or 'fp32'",
        ));
    }
    Ok(kernel)
}

/// The `k` best documents per query by exact MaxSim: `(ids (n_queries, k) int64, scores (n_queries, k) float32)`,
/// best first, `-1` / `-inf` past the last document; ties go to the lower index. Same layout and kernels as
/// `maxsim`; memory stays at a block of documents per thread. Ctrl-C stops it.
#[pyfunction]
#[pyo3(signature = (queries, query_offsets, documents, document_offsets, k, query_weights=None, empty_score=-1e9,
                    kernel="auto"))]
#[allow(clippy::too_many_arguments)]
fn maxsim_topk<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    query_offsets: PyReadonlyArray1<'py, i64>,
    documents: PyReadonlyArray2<'py, f32>,
    document_offsets: PyReadonlyArray1<'py, i64>,
    k: usize,
    query_weights: Option<PyReadonlyArray1<'py, f32>>,
    empty_score: f32,
    kernel: &str,
) -> PyResult<TopK<'py>> {
    let kernel = kernel_of(py, kernel)?;
    check_k(k, &query_offsets)?;
    ragged_call(
        py,
        &queries,
        &query_offsets,
        &documents,
        &document_offsets,
        query_weights.as_ref(),
        |qr, dr, weights, cancel| {
            crate::maxsim::maxsim_topk(qr, dr, weights, k, empty_score, cancel, kernel)
        },
    )
}

/// Spherical k-means centroids `(k, dim)` of the rows of `data` (unit vectors), `iterations` Lloyd steps from
/// k-means++ seeds chosen with `seed`. Ctrl-C stops it.
#[pyfunction]
#[pyo3(signature = (data, k, iterations=8, seed=0))]
fn token_kmeans<'py>(
    py: Python<'py>,
    data: PyReadonlyArray2<'py, f32>,
    k: usize,
    iterations: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let view = data.as_array();
    let work = search_work(view.nrows(), k, view.ncols()).saturating_mul(iterations.max(1));
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::maxsim::index::kmeans(view, k, iterations, seed, cancel)
    })
}

/// The index of the centroid with the largest dot product for every row of `data`, `(n,)` uint32.
#[pyfunction]
fn token_assign<'py>(
    py: Python<'py>,
    data: PyReadonlyArray2<'py, f32>,
    centroids: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray1<u32>>> {
    let (view, cents) = (data.as_array(), centroids.as_array());
    let work = search_work(view.nrows(), cents.nrows(), view.ncols());
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::maxsim::index::assign(view, cents, cancel)
    })
}

/// Documents per centroid from token codes: `(ids uint32, offsets int64)`, centroid `c`'s documents being
/// `ids[offsets[c]:offsets[c + 1]]` (ascending, each once).
#[pyfunction]
fn token_inverted_lists<'py>(
    py: Python<'py>,
    codes: PyReadonlyArray1<'py, u32>,
    document_offsets: PyReadonlyArray1<'py, i64>,
    n_centroids: usize,
) -> PyResult<InvertedLists<'py>> {
    let offsets = offsets_of(&document_offsets, "document")?;
    let codes = codes.as_slice()?;
    let (ids, list_offsets) = super::detach(py, || {
        crate::maxsim::index::inverted_lists(codes, &offsets, n_centroids)
    })?;
    let list_offsets: Vec<i64> = list_offsets.into_iter().map(|o| o as i64).collect();
    Ok((ids.into_numpy(py), list_offsets.into_numpy(py)))
}

/// Candidate (PLAID-style) late-interaction search: `(ids, scores)` as `maxsim_topk`, from the documents near each
/// query token's `nprobe` nearest centroids, ranked by centroid MaxSim, the best `candidates` rescored exactly.
#[pyfunction]
#[pyo3(signature = (queries, query_offsets, documents, document_offsets, centroids, codes, list_ids, list_offsets,
                    k, nprobe, candidates))]
#[allow(clippy::too_many_arguments)]
fn candidate_search<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, f32>,
    query_offsets: PyReadonlyArray1<'py, i64>,
    documents: PyReadonlyArray2<'py, f32>,
    document_offsets: PyReadonlyArray1<'py, i64>,
    centroids: PyReadonlyArray2<'py, f32>,
    codes: PyReadonlyArray1<'py, u32>,
    list_ids: PyReadonlyArray1<'py, u32>,
    list_offsets: PyReadonlyArray1<'py, i64>,
    k: usize,
    nprobe: usize,
    candidates: usize,
) -> PyResult<TopK<'py>> {
    let lists = offsets_of(&list_offsets, "inverted-list")?;
    check_k(k, &query_offsets)?;
    let (cents, codes, list_ids) = (
        centroids.as_array(),
        codes.as_slice()?,
        list_ids.as_slice()?,
    );
    ragged_call(
        py,
        &queries,
        &query_offsets,
        &documents,
        &document_offsets,
        None,
        |qr, dr, _, cancel| {
            let index = crate::maxsim::index::CandidateIndex {
                centroids: cents,
                codes,
                list_ids,
                list_offsets: &lists,
            };
            crate::maxsim::index::candidate_search(qr, dr, index, k, nprobe, candidates, cancel)
        },
    )
}

/// Whether this CPU runs the AMX MaxSim kernel.
#[pyfunction]
fn maxsim_amx_supported() -> bool {
    crate::maxsim::amx::supported()
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(maxsim_amx_supported, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_topk, m)?)?;
    m.add_function(wrap_pyfunction!(token_kmeans, m)?)?;
    m.add_function(wrap_pyfunction!(token_assign, m)?)?;
    m.add_function(wrap_pyfunction!(token_inverted_lists, m)?)?;
    m.add_function(wrap_pyfunction!(candidate_search, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_pairwise, m)?)?;
    Ok(())
}
