//! Python wrappers of [`crate::similarity`]: similarity matrices and row-wise similarities.

use super::{detach, to_py_err};
use crate::similarity::{self, Similarity};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(similarity_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(similarity_pairwise, m)?)?;
    Ok(())
}
