//! The only place that touches pyo3 and numpy: argument extraction, GIL release and result conversion.

mod kernels;
mod tokenizer;

use crate::error::CoreError;
use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyType;

/// Maps a [`CoreError`] to the Python exception users catch.
pub(crate) fn to_py_err(py: Python<'_>, err: CoreError) -> PyErr {
    match err {
        CoreError::InvalidArgument(msg) | CoreError::ShapeMismatch(msg) => {
            PyValueError::new_err(msg)
        }
        CoreError::FileNotFound(msg) => PyFileNotFoundError::new_err(msg),
        CoreError::Tokenizer(msg) => tokenizer_error(py, msg),
    }
}

/// A `sentrs.exceptions.TokenizerError` (a `ValueError` subclass); a plain `ValueError` if that cannot be imported.
fn tokenizer_error(py: Python<'_>, msg: String) -> PyErr {
    let class = py
        .import("sentrs.exceptions")
        .and_then(|m| m.getattr("TokenizerError"))
        .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
    match class {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(_) => PyValueError::new_err(msg),
    }
}

/// Runs `f` with the GIL released and maps its error.
pub(crate) fn detach<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, CoreError> + Send,
) -> PyResult<T> {
    py.detach(f).map_err(|e| to_py_err(py, e))
}

/// Turns parallelism off in a forked child (called from `os.register_at_fork`).
#[pyfunction]
fn _mark_forked() {
    crate::parallel::mark_forked();
}

/// Number of threads the core's pool runs.
#[pyfunction]
fn num_threads() -> usize {
    crate::parallel::current_num_threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_mark_forked, m)?)?;
    m.add_function(wrap_pyfunction!(num_threads, m)?)?;
    tokenizer::register(m)?;
    kernels::register(m)?;
    Ok(())
}
