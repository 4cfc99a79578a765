//! Python wrapper of [`crate::batching`].

use super::{detach, IndexArrays};
use crate::batching::plan_batches;
use numpy::IntoPyArray;
use pyo3::prelude::*;

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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(plan_batches_py, m)?)?;
    Ok(())
}
