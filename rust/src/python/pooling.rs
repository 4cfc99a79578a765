//! Python wrappers of [`crate::pooling`]: pooling of token embeddings and row normalisation.

use super::{detach_into_numpy, to_py_err};
use crate::pooling::{self, PoolingMode};
use numpy::{PyArray2, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

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
    detach_into_numpy(py, || pooling::pool(tokens, mask, &modes, skip_first))
}

/// L2-normalises the rows of a float32 matrix into a new array.
#[pyfunction]
fn normalize<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let view = x.as_array();
    detach_into_numpy(py, || {
        let mut owned = view.to_owned();
        pooling::normalize_rows(&mut owned);
        Ok(owned)
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pool, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    Ok(())
}
