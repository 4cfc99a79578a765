//! Python wrapper of [`crate::tokenize`].

use super::{detach, detach_cancellable, detach_into_numpy};
use crate::error::CoreError;
use crate::static_embed::embed_mean;
use crate::tokenize::{BatchTokenizer, EncodedBatch, Padding, Side, TokenizerSettings, Truncation};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// A tokenizer loaded from `tokenizer.json`, with explicit truncation and padding settings.
#[pyclass(module = "sentrs._core", name = "Tokenizer", frozen)]
pub struct PyTokenizer {
    inner: Arc<BatchTokenizer>,
}

/// Ragged token ids of a whole input, kept in Rust until padded per batch.
#[pyclass(module = "sentrs._core", name = "Encoding", frozen)]
pub struct PyEncoding {
    inner: Arc<EncodedBatch>,
    tokenizer: Arc<BatchTokenizer>,
}

#[allow(clippy::too_many_arguments)]
fn settings(
    max_length: Option<usize>,
    truncation_strategy: &str,
    truncation_side: &str,
    pad_id: u32,
    pad_type_id: u32,
    padding_side: &str,
) -> Result<TokenizerSettings, crate::error::CoreError> {
    Ok(TokenizerSettings {
        max_length,
        truncation: Truncation::parse(truncation_strategy)?,
        truncation_side: Side::parse(truncation_side, "truncation_side")?,
        pad_id,
        pad_type_id,
        padding_side: Side::parse(padding_side, "padding_side")?,
    })
}

/// Texts tokenized per cancellable step of `Tokenizer.encode`.
const ENCODE_CHUNK: usize = 8192;

#[pymethods]
impl PyTokenizer {
    /// Builds a tokenizer from the JSON text of a `tokenizer.json`.
    #[staticmethod]
    #[pyo3(signature = (json, *, max_length=None, truncation_strategy="longest_first", truncation_side="right",
                        pad_id=0, pad_type_id=0, padding_side="right"))]
    #[allow(clippy::too_many_arguments)]
    fn from_str(
        py: Python<'_>,
        json: String,
        max_length: Option<usize>,
        truncation_strategy: &str,
        truncation_side: &str,
        pad_id: u32,
        pad_type_id: u32,
        padding_side: &str,
    ) -> PyResult<Self> {
        let s = settings(
            max_length,
            truncation_strategy,
            truncation_side,
            pad_id,
            pad_type_id,
            padding_side,
        )
        .map_err(|e| super::to_py_err(py, e))?;
        let inner = detach(py, || BatchTokenizer::from_json(&json, s))?;
        Ok(PyTokenizer {
            inner: Arc::new(inner),
        })
    }

    /// Loads a tokenizer from a `tokenizer.json` file.
    #[staticmethod]
    #[pyo3(signature = (path, *, max_length=None, truncation_strategy="longest_first", truncation_side="right",
                        pad_id=0, pad_type_id=0, padding_side="right"))]
    #[allow(clippy::too_many_arguments)]
    fn from_file(
        py: Python<'_>,
        path: PathBuf,
        max_length: Option<usize>,
        truncation_strategy: &str,
        truncation_side: &str,
        pad_id: u32,
        pad_type_id: u32,
        padding_side: &str,
    ) -> PyResult<Self> {
        let json = detach(py, move || {
            std::fs::read_to_string(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    CoreError::FileNotFound(format!("tokenizer file not found: {}", path.display()))
                }
                _ => CoreError::Tokenizer(format!("could not read {}: {e}", path.display())),
            })
        })?;
        Self::from_str(
            py,
            json,
            max_length,
            truncation_strategy,
            truncation_side,
            pad_id,
            pad_type_id,
            padding_side,
        )
    }

    /// The truncation length, or None.
    #[getter]
    fn max_length(&self) -> Option<usize> {
        self.inner.settings().max_length
    }

    /// Id of a token, or None when it is not in the vocabulary.
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size, added tokens included.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    /// Encodes texts (and optional second texts of pairs; None in a row: a single text) in parallel, truncated,
    /// unpadded.
    #[pyo3(signature = (texts, pairs=None, *, add_special_tokens=true))]
    fn encode(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        pairs: Option<Vec<Option<String>>>,
        add_special_tokens: bool,
    ) -> PyResult<PyEncoding> {
        let tok = Arc::clone(&self.inner);
        // Chunks of texts, so that Ctrl-C stops a huge batch between them (each chunk is still tokenized in
        // parallel); the rows come back in order, as one batch.
        // A byte of text costs about as much as a few hundred multiply-adds (the unit of the work estimate).
        let work = texts
            .iter()
            .map(String::len)
            .sum::<usize>()
            .saturating_mul(256);
        let enc = detach_cancellable(py, work, move |cancel| {
            let mut all = EncodedBatch {
                ids: Vec::with_capacity(texts.len()),
                type_ids: Vec::with_capacity(texts.len()),
            };
            if let Some(p) = &pairs {
                crate::error::check_same_size(
                    "texts and pairs must have the same length",
                    texts.len(),
                    p.len(),
                )?;
            }
            if texts.is_empty() {
                return tok.encode(&texts, pairs.as_deref(), add_special_tokens);
            }
            for start in (0..texts.len()).step_by(ENCODE_CHUNK) {
                cancel.check()?;
                let end = (start + ENCODE_CHUNK).min(texts.len());
                let part = tok.encode(
                    &texts[start..end],
                    pairs.as_deref().map(|p| &p[start..end]),
                    add_special_tokens,
                )?;
                all.ids.extend(part.ids);
                all.type_ids.extend(part.type_ids);
            }
            Ok(all)
        })?;
        Ok(PyEncoding {
            inner: Arc::new(enc),
            tokenizer: Arc::clone(&self.inner),
        })
    }

    /// The `(len(texts), dim)` float32 mean of `weights` rows over each text's tokens (no special tokens; zeros
    /// for a text without tokens), as `torch.nn.EmbeddingBag(mode="mean")`.
    fn embed_mean<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        weights: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let view = weights.as_array();
        let tok = Arc::clone(&self.inner);
        detach_into_numpy(py, move || embed_mean(&tok, &texts, view))
    }
}

#[pymethods]
impl PyEncoding {
    /// The ids of the given rows (all rows when None) end to end, with each row's start: `(ids, offsets)` int64
    /// arrays, the input of `torch.nn.EmbeddingBag`.
    #[pyo3(signature = (rows=None))]
    #[allow(clippy::type_complexity)]
    fn flat<'py>(
        &self,
        py: Python<'py>,
        rows: Option<Vec<usize>>,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>)> {
        let n = self.inner.len();
        let rows = rows.unwrap_or_else(|| (0..n).collect());
        if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "rows must be < {n}, got {bad}"
            )));
        }
        let mut ids = Vec::new();
        let mut offsets = Vec::with_capacity(rows.len());
        for &r in &rows {
            offsets.push(ids.len() as i64);
            ids.extend(self.inner.ids[r].iter().map(|&t| i64::from(t)));
        }
        Ok((ids.into_pyarray(py), offsets.into_pyarray(py)))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Token count per row, as int64.
    fn lengths<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let v: Vec<i64> = self.inner.ids.iter().map(|r| r.len() as i64).collect();
        v.into_pyarray(py)
    }

    /// The token ids of one row.
    fn ids(&self, row: usize) -> PyResult<Vec<u32>> {
        self.inner.ids.get(row).cloned().ok_or_else(|| {
            pyo3::exceptions::PyIndexError::new_err(format!(
                "row must be < {}, got {row}",
                self.inner.len()
            ))
        })
    }

    /// Pads the given rows (all rows when None) into `(input_ids, attention_mask, token_type_ids)` int64 arrays.
    #[pyo3(signature = (rows=None, *, pad_to=None, pad_to_multiple_of=None))]
    #[allow(clippy::type_complexity)]
    fn pad<'py>(
        &self,
        py: Python<'py>,
        rows: Option<Vec<usize>>,
        pad_to: Option<usize>,
        pad_to_multiple_of: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray2<i64>>,
        Bound<'py, PyArray2<i64>>,
        Bound<'py, PyArray2<i64>>,
    )> {
        let rows = rows.unwrap_or_else(|| (0..self.inner.len()).collect());
        let padding = match pad_to {
            Some(n) => Padding::Fixed(n),
            None => Padding::Longest,
        };
        let enc = Arc::clone(&self.inner);
        let tok = Arc::clone(&self.tokenizer);
        let batch = detach(py, move || {
            tok.pad(&enc, &rows, padding, pad_to_multiple_of)
        })?;
        Ok((
            batch.input_ids.into_pyarray(py),
            batch.attention_mask.into_pyarray(py),
            batch.token_type_ids.into_pyarray(py),
        ))
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTokenizer>()?;
    m.add_class::<PyEncoding>()?;
    Ok(())
}
