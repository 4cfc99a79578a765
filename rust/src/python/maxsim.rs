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
    let (q, d) = (queries.as_array(), documents.as_array());
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
    let kernel = crate::maxsim::Kernel::parse(kernel).map_err(|e| super::to_py_err(py, e))?;
    if kernel == crate::maxsim::Kernel::Amx && !crate::maxsim::amx::supported() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "kernel='amx' needs a CPU with AMX-BF16 (and an OS that grants it); use 'auto' or 'fp32'",
        ));
    }
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

/// Whether this CPU runs the AMX MaxSim kernel.
#[pyfunction]
fn maxsim_amx_supported() -> bool {
    crate::maxsim::amx::supported()
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(maxsim_amx_supported, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim, m)?)?;
    m.add_function(wrap_pyfunction!(maxsim_pairwise, m)?)?;
    Ok(())
}
