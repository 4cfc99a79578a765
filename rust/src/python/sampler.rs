//! Python wrappers of [`crate::sampler`].

use super::{detach, to_py_err, IndexArrays};
use crate::sampler::{no_duplicates_pass, Interner};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

/// Interns the values of `columns` (lists of str, one per compared column, all of one length) into dense ids:
/// returns `(ids, num_values)` with `ids` of shape `(rows, columns)`. Runs with the GIL held (it reads the str
/// objects in place, without copying them).
#[pyfunction]
fn intern_str_columns<'py>(
    py: Python<'py>,
    columns: Vec<Bound<'py, PyList>>,
) -> PyResult<(Bound<'py, PyArray2<u32>>, usize)> {
    let cols = columns.len();
    let rows = columns.first().map_or(0, |c| c.len());
    if let Some((i, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != rows) {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "columns[{i}] has {} values, columns[0] has {rows}",
            c.len()
        )));
    }
    let mut interner = Interner::<String>::new();
    let mut ids = vec![0u32; rows * cols];
    for (c, column) in columns.iter().enumerate() {
        for (r, item) in column.iter().enumerate() {
            let text = item.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "columns[{c}][{r}] must be str, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            ids[r * cols + c] = interner
                .id_of_str(text.to_str()?)
                .map_err(|e| to_py_err(py, e))?;
        }
    }
    Ok((
        to_array2(ids, (rows, cols))?.into_pyarray(py),
        interner.len(),
    ))
}

/// Interns 64-bit value hashes, shape `(rows, columns)`, into dense ids: `(ids, num_values)`.
#[pyfunction]
fn intern_u64<'py>(
    py: Python<'py>,
    hashes: PyReadonlyArray2<'py, u64>,
) -> PyResult<(Bound<'py, PyArray2<u32>>, usize)> {
    let shape = hashes.as_array().dim();
    let values: Vec<u64> = hashes.as_array().iter().copied().collect();
    let (ids, n) = detach(py, move || {
        let mut interner = Interner::<u64>::new();
        let ids = values
            .iter()
            .map(|&h| interner.id_of_u64(h))
            .collect::<Result<Vec<u32>, _>>()?;
        Ok((ids, interner.len()))
    })?;
    Ok((to_array2(ids, shape)?.into_pyarray(py), n))
}

fn to_array2(ids: Vec<u32>, shape: (usize, usize)) -> PyResult<numpy::ndarray::Array2<u32>> {
    numpy::ndarray::Array2::from_shape_vec(shape, ids).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("ids do not fit shape {shape:?}: {e}"))
    })
}

/// One pass of the no-duplicates sampler over `order`: returns `(rows, bounds)`, batch k being
/// `rows[bounds[k]:bounds[k+1]]`.
#[pyfunction]
#[pyo3(signature = (ids, num_values, order, batch_size, drop_last))]
fn no_duplicates_batches<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray2<'py, u32>,
    num_values: usize,
    order: PyReadonlyArray1<'py, i64>,
    batch_size: usize,
    drop_last: bool,
) -> PyResult<IndexArrays<'py>> {
    let per_row = ids.as_array().ncols();
    let flat: Vec<u32> = ids.as_array().iter().copied().collect();
    let order_vec: Vec<i64> = order.as_array().to_vec();
    let (rows, bounds) = detach(py, move || {
        let order: Vec<usize> = order_vec
            .iter()
            .map(|&r| {
                usize::try_from(r)
                    .map_err(|_| crate::error::invalid(format!("order holds a negative row {r}")))
            })
            .collect::<Result<_, _>>()?;
        let batches =
            no_duplicates_pass(&flat, per_row, num_values, &order, batch_size, drop_last)?;
        let mut rows = Vec::with_capacity(order.len());
        let mut bounds = Vec::with_capacity(batches.len() + 1);
        bounds.push(0i64);
        for batch in batches {
            rows.extend(batch.into_iter().map(|r| r as i64));
            bounds.push(rows.len() as i64);
        }
        Ok((rows, bounds))
    })?;
    Ok((rows.into_pyarray(py), bounds.into_pyarray(py)))
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(intern_str_columns, m)?)?;
    m.add_function(wrap_pyfunction!(intern_u64, m)?)?;
    m.add_function(wrap_pyfunction!(no_duplicates_batches, m)?)?;
    Ok(())
}
