//! Python wrappers of [`crate::similarity`]: similarity matrices and row-wise similarities.

use super::{detach_into_numpy, to_py_err};
use crate::error::CoreResult;
use crate::similarity::{self, Similarity};
use ndarray::{Array, ArrayView2, Dimension};
use numpy::{PyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

/// [`similarity::similarity_matrix`] (`D` = `Ix2`) or [`similarity::similarity_pairwise`] (`D` = `Ix1`).
type SimilarityKernel<D> =
    fn(ArrayView2<f32>, ArrayView2<f32>, Similarity) -> CoreResult<Array<f32, D>>;

/// The body of both wrappers: parses `similarity_fn_name`, then runs `kernel` on the two float32 matrices with the
/// GIL released.
fn similarity_py<'py, D: Dimension>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    similarity_fn_name: &str,
    kernel: SimilarityKernel<D>,
) -> PyResult<Bound<'py, PyArray<f32, D>>> {
    let sim = Similarity::parse(similarity_fn_name).map_err(|e| to_py_err(py, e))?;
    let (a, b) = (a.as_array(), b.as_array());
    detach_into_numpy(py, || kernel(a, b, sim))
}

/// `(n, m)` similarity matrix between float32 `(n, d)` and `(m, d)`.
#[pyfunction]
fn similarity_matrix<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    similarity_fn_name: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    similarity_py(py, a, b, similarity_fn_name, similarity::similarity_matrix)
}

/// Row-wise similarity between float32 `(n, d)` and `(n, d)`.
#[pyfunction]
fn similarity_pairwise<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f32>,
    b: PyReadonlyArray2<'py, f32>,
    similarity_fn_name: &str,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    similarity_py(
        py,
        a,
        b,
        similarity_fn_name,
        similarity::similarity_pairwise,
    )
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(similarity_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(similarity_pairwise, m)?)?;
    Ok(())
}
