//! Python wrappers of [`crate::quantize`]: Hamming and int8/uint8 code search, and float rescoring of candidates.

use super::{detach_cancellable_into_numpy, detach_into_numpy, search_work, ArrayPair, TopKArrays};
use crate::quantize::Code;
use numpy::{Element, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

/// Nearest packed-bit codes by Hamming distance: `(ids int64, distances uint32)`, `(q, min(k, n))`. Ctrl-C stops it.
#[pyfunction]
fn hamming_topk<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    corpus: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<ArrayPair<'py, i64, u32>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let work = search_work(q.nrows(), c.nrows(), q.ncols().div_ceil(8));
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::quantize::hamming_topk(q, c, k, cancel)
    })
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
    detach_into_numpy(py, || crate::quantize::rescore_bits(q, c, i))
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
    detach_into_numpy(py, || crate::quantize::rescore_rows(q, c, i))
}

/// The body of [`code_dot_topk_u8`] and [`code_dot_topk_i8`]: best codes by inner product, Ctrl-C honoured.
fn code_dot_topk_py<'py, T: Code + Element>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, T>,
    corpus: PyReadonlyArray2<'py, T>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let work = search_work(q.nrows(), c.nrows(), q.ncols());
    detach_cancellable_into_numpy(py, work, |cancel| {
        crate::quantize::code_dot_topk(q, c, k, cancel)
    })
}

/// Best uint8 codes by inner product: `(ids, scores)`. Ctrl-C stops it.
#[pyfunction]
fn code_dot_topk_u8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    corpus: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    code_dot_topk_py(py, queries, corpus, k)
}

/// Best int8 codes by inner product: `(ids, scores)`. Ctrl-C stops it.
#[pyfunction]
fn code_dot_topk_i8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, i8>,
    corpus: PyReadonlyArray2<'py, i8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    code_dot_topk_py(py, queries, corpus, k)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hamming_topk, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_bits, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_rows, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_u8, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_i8, m)?)?;
    Ok(())
}
