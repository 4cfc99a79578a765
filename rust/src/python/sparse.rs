//! Python wrappers of [`crate::sparse`]: SPLADE pooling, dense rows to CSR, and the inverted index.

use super::topk::parse_score;
use super::{detach, detach_cancellable_into_numpy, search_work, to_py_err, TopKArrays};
use crate::topk::TopKScore;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;

/// CSR arrays `(indptr, indices, values)` handed back to Python.
type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f32>>,
);

fn csr_to_py(py: Python<'_>, csr: crate::sparse::SparseCsr) -> CsrArrays<'_> {
    (
        csr.indptr.into_pyarray(py),
        csr.indices.into_pyarray(py),
        csr.values.into_pyarray(py),
    )
}

/// SPLADE pooling of `(batch, seq, vocab)` float32 logits straight to CSR rows, pruned to `max_active_dims`.
#[pyfunction]
#[pyo3(signature = (logits, attention_mask, pooling_strategy="max", activation_function="relu", max_active_dims=None))]
fn splade_pool<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray3<'py, f32>,
    attention_mask: PyReadonlyArray2<'py, i64>,
    pooling_strategy: &str,
    activation_function: &str,
    max_active_dims: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    let strategy =
        crate::sparse::SpladeStrategy::parse(pooling_strategy).map_err(|e| to_py_err(py, e))?;
    let activation = crate::sparse::SpladeActivation::parse(activation_function)
        .map_err(|e| to_py_err(py, e))?;
    let (l, m) = (logits.as_array(), attention_mask.as_array());
    let csr = detach(py, || {
        crate::sparse::splade_pool(l, m, strategy, activation, max_active_dims)
    })?;
    Ok(csr_to_py(py, csr))
}

/// SPLADE max pooling straight from the MLM decoder's input on Intel AMX (bf16 tiles, exact fp32 rescoring of the
/// entries that can be active): `hidden` `(batch, seq, dim)`, `weight` `(vocab, dim)`, `bias` `(vocab,)`. `None` when
/// the inputs hold non-finite values; a `ValueError` on CPUs without AMX. Ctrl-C stops it.
#[pyfunction]
#[pyo3(signature = (hidden, attention_mask, weight, bias=None, activation_function="relu", max_active_dims=None))]
fn splade_max_head<'py>(
    py: Python<'py>,
    hidden: PyReadonlyArray3<'py, f32>,
    attention_mask: PyReadonlyArray2<'py, i64>,
    weight: PyReadonlyArray2<'py, f32>,
    bias: Option<PyReadonlyArray1<'py, f32>>,
    activation_function: &str,
    max_active_dims: Option<usize>,
) -> PyResult<Option<CsrArrays<'py>>> {
    if !crate::maxsim::amx::supported() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "splade_max_head needs a CPU with AMX-BF16 (and an OS that grants it)",
        ));
    }
    let activation = crate::sparse::SpladeActivation::parse(activation_function)
        .map_err(|e| to_py_err(py, e))?;
    let (h, m, w) = (
        hidden.as_array(),
        attention_mask.as_array(),
        weight.as_array(),
    );
    let b = bias.as_ref().map(|b| b.as_array());
    let work = super::search_work(h.shape()[0] * h.shape()[1], w.nrows(), w.ncols());
    let csr = super::detach_cancellable(py, work, |cancel| {
        crate::sparse_head::splade_max_head(h, m, w, b, activation, max_active_dims, cancel)
    })?;
    Ok(csr.map(|csr| csr_to_py(py, csr)))
}

/// The MLM decoder's weight `(vocab, dim)` and bias `(vocab,)` prepared once for SPLADE max pooling on Intel AMX
/// (bf16 tiles, exact fp32 rescoring): `max_pool` is `splade_max_head` without packing the weights per call. A
/// `ValueError` on CPUs without AMX.
#[pyclass(module = "sentrs._core", name = "SpladeHeadWeights", frozen)]
pub struct PySpladeHeadWeights {
    inner: std::sync::Arc<crate::sparse_head::SpladeHeadWeights>,
}

#[pymethods]
impl PySpladeHeadWeights {
    #[new]
    #[pyo3(signature = (weight, bias=None))]
    fn new(
        py: Python<'_>,
        weight: PyReadonlyArray2<'_, f32>,
        bias: Option<PyReadonlyArray1<'_, f32>>,
    ) -> PyResult<Self> {
        if !crate::maxsim::amx::supported() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "SpladeHeadWeights needs a CPU with AMX-BF16 (and an OS that grants it)",
            ));
        }
        let w = weight.as_array();
        let b = bias.as_ref().map(|b| b.as_array());
        let inner = detach(py, || crate::sparse_head::SpladeHeadWeights::new(w, b))?;
        Ok(PySpladeHeadWeights {
            inner: std::sync::Arc::new(inner),
        })
    }

    /// The vocabulary size.
    #[getter]
    fn vocab(&self) -> usize {
        self.inner.vocab()
    }

    /// The hidden size.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// SPLADE max pooling of `hidden` `(batch, seq, dim)` under `attention_mask` as CSR arrays; `None` when the
    /// inputs hold non-finite values. Ctrl-C stops it.
    #[pyo3(signature = (hidden, attention_mask, activation_function="relu", max_active_dims=None))]
    fn max_pool<'py>(
        &self,
        py: Python<'py>,
        hidden: PyReadonlyArray3<'py, f32>,
        attention_mask: PyReadonlyArray2<'py, i64>,
        activation_function: &str,
        max_active_dims: Option<usize>,
    ) -> PyResult<Option<CsrArrays<'py>>> {
        let activation = crate::sparse::SpladeActivation::parse(activation_function)
            .map_err(|e| to_py_err(py, e))?;
        let (h, m) = (hidden.as_array(), attention_mask.as_array());
        let weights = std::sync::Arc::clone(&self.inner);
        let work = super::search_work(h.shape()[0] * h.shape()[1], weights.vocab(), weights.dim());
        let csr = super::detach_cancellable(py, work, |cancel| {
            weights.max_pool(h, m, activation, max_active_dims, cancel)
        })?;
        Ok(csr.map(|csr| csr_to_py(py, csr)))
    }
}

/// Dense float32 rows to CSR, keeping the `max_active_dims` largest magnitudes per row.
#[pyfunction]
#[pyo3(signature = (x, max_active_dims=None))]
fn dense_to_csr<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    max_active_dims: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    let view = x.as_array();
    let csr = detach(py, || crate::sparse::dense_to_csr(view, max_active_dims))?;
    Ok(csr_to_py(py, csr))
}

/// An inverted index over sparse document vectors (CSR in), searched exactly for sparse queries.
#[pyclass(module = "sentrs._core", name = "SparseIndex", frozen)]
pub struct PySparseIndex {
    inner: std::sync::Arc<crate::sparse::InvertedIndex>,
}

#[pymethods]
impl PySparseIndex {
    #[new]
    fn new(
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        values: PyReadonlyArray1<'_, f32>,
        dim: usize,
    ) -> PyResult<Self> {
        let (p, i, v) = (indptr.as_slice()?, indices.as_slice()?, values.as_slice()?);
        let index = detach(py, || crate::sparse::InvertedIndex::from_csr(p, i, v, dim))?;
        Ok(PySparseIndex {
            inner: std::sync::Arc::new(index),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Number of columns (the vocabulary size).
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// Best `k` documents per CSR query row: `(ids, scores)`; `score_function` is "dot" or "cosine".
    #[pyo3(signature = (indptr, indices, values, k, score_function="dot"))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, i64>,
        indices: PyReadonlyArray1<'py, i64>,
        values: PyReadonlyArray1<'py, f32>,
        k: usize,
        score_function: &str,
    ) -> PyResult<TopKArrays<'py>> {
        let cosine = parse_score(score_function)? == TopKScore::Cosine;
        let (p, i, v) = (indptr.as_slice()?, indices.as_slice()?, values.as_slice()?);
        let index = std::sync::Arc::clone(&self.inner);
        // Work: every posting of every query dimension, roughly; long searches honour Ctrl-C.
        let work = search_work(p.len().saturating_sub(1), index.len(), 8);
        detach_cancellable_into_numpy(py, work, move |cancel| {
            index.search(p, i, v, k, cosine, cancel)
        })
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(splade_pool, m)?)?;
    m.add_function(wrap_pyfunction!(splade_max_head, m)?)?;
    m.add_function(wrap_pyfunction!(dense_to_csr, m)?)?;
    m.add_class::<PySparseIndex>()?;
    m.add_class::<PySpladeHeadWeights>()?;
    Ok(())
}
