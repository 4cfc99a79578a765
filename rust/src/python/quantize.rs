//! Python wrappers of [`crate::quantize`]: Hamming and int8/uint8 code search, and float rescoring of candidates.

use super::{detach, detach_cancellable, ArrayPair, TopKArrays};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
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
    let words = q.ncols().div_ceil(8);
    let work = q.nrows().saturating_mul(c.nrows()).saturating_mul(words);
    let (ids, dists) = detach_cancellable(py, work, |cancel| {
        crate::quantize::hamming_topk(q, c, k, cancel)
    })?;
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

/// Best uint8 codes by inner product: `(ids, scores)`. Ctrl-C stops it.
#[pyfunction]
fn code_dot_topk_u8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, u8>,
    corpus: PyReadonlyArray2<'py, u8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let work = q
        .nrows()
        .saturating_mul(c.nrows())
        .saturating_mul(q.ncols());
    let (ids, scores) = detach_cancellable(py, work, |cancel| {
        crate::quantize::code_dot_topk(q, c, k, cancel)
    })?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

/// Best int8 codes by inner product: `(ids, scores)`. Ctrl-C stops it.
#[pyfunction]
fn code_dot_topk_i8<'py>(
    py: Python<'py>,
    queries: PyReadonlyArray2<'py, i8>,
    corpus: PyReadonlyArray2<'py, i8>,
    k: usize,
) -> PyResult<TopKArrays<'py>> {
    let (q, c) = (queries.as_array(), corpus.as_array());
    let work = q
        .nrows()
        .saturating_mul(c.nrows())
        .saturating_mul(q.ncols());
    let (ids, scores) = detach_cancellable(py, work, |cancel| {
        crate::quantize::code_dot_topk(q, c, k, cancel)
    })?;
    Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hamming_topk, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_bits, m)?)?;
    m.add_function(wrap_pyfunction!(rescore_rows, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_u8, m)?)?;
    m.add_function(wrap_pyfunction!(code_dot_topk_i8, m)?)?;
    Ok(())
}
