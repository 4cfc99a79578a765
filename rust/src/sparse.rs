//! Sparse (SPLADE-style) embeddings: the activation and pooling over MLM logits in one pass, pruning to the most
//! active dimensions, and the result in CSR form.
//!
//! The reference multiplies the `(batch, seq, vocab)` logits by the mask, applies `relu` and `log1p` (twice for
//! `log1p_relu`) in place and pools over the sequence; here each row is pooled straight from the logits of its
//! attended tokens, without intermediate `(batch, seq, vocab)` tensors.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use ndarray::{Array1, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

/// How token activations are combined over the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpladeStrategy {
    /// Maximum over tokens.
    Max,
    /// Sum over tokens.
    Sum,
}

/// The activation applied to each logit before pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpladeActivation {
    /// `log1p(relu(x))`.
    Relu,
    /// `log1p(log1p(relu(x)))`.
    Log1pRelu,
}

impl SpladeStrategy {
    /// Parses `"max"` or `"sum"`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "max" => Ok(SpladeStrategy::Max),
            "sum" => Ok(SpladeStrategy::Sum),
            other => Err(invalid(format!(
                "pooling_strategy must be 'max' or 'sum', got '{other}'"
            ))),
        }
    }
}

impl SpladeActivation {
    /// Parses `"relu"` or `"log1p_relu"`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "relu" => Ok(SpladeActivation::Relu),
            "log1p_relu" => Ok(SpladeActivation::Log1pRelu),
            other => Err(invalid(format!(
                "activation_function must be 'relu' or 'log1p_relu', got '{other}'"
            ))),
        }
    }
}

/// Sparse rows: row `r` holds `indices[indptr[r]..indptr[r+1]]` (ascending) with their `values`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseCsr {
    /// Row offsets, `rows + 1` entries.
    pub indptr: Vec<i64>,
    /// Column of each stored value.
    pub indices: Vec<i64>,
    /// The stored values.
    pub values: Vec<f32>,
    /// Number of columns.
    pub cols: usize,
}

/// Keeps the `k` largest-magnitude entries of a dense row (ties to the lower index) and returns them sorted by
/// column; zeros are never stored.
fn top_active(row: &[f32], k: Option<usize>) -> Vec<(usize, f32)> {
    let mut active: Vec<(usize, f32)> = row
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, v)| v != 0.0)
        .collect();
    if let Some(k) = k {
        if active.len() > k {
            active.select_nth_unstable_by(k, |a, b| {
                b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0))
            });
            active.truncate(k);
            active.sort_by_key(|&(j, _)| j);
        }
    }
    active
}

fn to_csr(rows: Vec<Vec<(usize, f32)>>, cols: usize) -> SparseCsr {
    let mut indptr = Vec::with_capacity(rows.len() + 1);
    indptr.push(0i64);
    let total: usize = rows.iter().map(Vec::len).sum();
    let mut indices = Vec::with_capacity(total);
    let mut values = Vec::with_capacity(total);
    for row in rows {
        for (j, v) in row {
            indices.push(j as i64);
            values.push(v);
        }
        indptr.push(indices.len() as i64);
    }
    SparseCsr {
        indptr,
        indices,
        values,
        cols,
    }
}

/// SPLADE pooling of MLM logits `(batch, seq, vocab)` under `mask` `(batch, seq)`, pruned to `max_active_dims`.
pub fn splade_pool(
    logits: ArrayView3<f32>,
    mask: ArrayView2<i64>,
    strategy: SpladeStrategy,
    activation: SpladeActivation,
    max_active_dims: Option<usize>,
) -> CoreResult<SparseCsr> {
    let (batch, seq, vocab) = logits.dim();
    if mask.dim() != (batch, seq) {
        return Err(CoreError::ShapeMismatch(format!(
            "attention_mask must have shape ({batch}, {seq}) to match the logits, got {:?}",
            mask.dim()
        )));
    }
    if max_active_dims == Some(0) {
        return Err(invalid("max_active_dims must be >= 1, got 0"));
    }
    let pool_row = |b: usize| -> Vec<(usize, f32)> {
        let mut acc = Array1::<f32>::zeros(vocab);
        let tokens = logits.index_axis(Axis(0), b);
        for t in 0..seq {
            if mask[[b, t]] == 0 {
                continue;
            }
            let row = tokens.row(t);
            acc.zip_mut_with(&row, |a, &x| {
                let mut y = x.max(0.0).ln_1p();
                if activation == SpladeActivation::Log1pRelu {
                    y = y.ln_1p();
                }
                *a = match strategy {
                    SpladeStrategy::Max => a.max(y),
                    SpladeStrategy::Sum => *a + y,
                };
            });
        }
        top_active(acc.as_slice().unwrap_or(&[]), max_active_dims)
    };
    let rows: Vec<Vec<(usize, f32)>> = if parallel::parallel_enabled() && batch > 1 {
        parallel::install(|| (0..batch).into_par_iter().map(pool_row).collect())
    } else {
        (0..batch).map(pool_row).collect()
    };
    Ok(to_csr(rows, vocab))
}

/// Dense rows `(n, dim)` to CSR, keeping the `max_active_dims` largest magnitudes per row when given.
pub fn dense_to_csr(x: ArrayView2<f32>, max_active_dims: Option<usize>) -> CoreResult<SparseCsr> {
    if max_active_dims == Some(0) {
        return Err(invalid("max_active_dims must be >= 1, got 0"));
    }
    let row = |r: usize| -> Vec<(usize, f32)> {
        let owned: Vec<f32> = x.row(r).to_vec();
        top_active(&owned, max_active_dims)
    };
    let rows: Vec<Vec<(usize, f32)>> = if parallel::parallel_enabled() && x.nrows() > 1 {
        parallel::install(|| (0..x.nrows()).into_par_iter().map(row).collect())
    } else {
        (0..x.nrows()).map(row).collect()
    };
    Ok(to_csr(rows, x.ncols()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};
    use proptest::prelude::*;

    fn naive(
        logits: &Array3<f32>,
        mask: &ndarray::Array2<i64>,
        strategy: SpladeStrategy,
        act: SpladeActivation,
    ) -> ndarray::Array2<f32> {
        let (b, s, v) = logits.dim();
        ndarray::Array2::from_shape_fn((b, v), |(i, j)| {
            let vals = (0..s).map(|t| {
                let x = logits[[i, t, j]] * mask[[i, t]] as f32;
                let y = x.max(0.0).ln_1p();
                if act == SpladeActivation::Log1pRelu {
                    y.ln_1p()
                } else {
                    y
                }
            });
            match strategy {
                SpladeStrategy::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                SpladeStrategy::Sum => vals.sum(),
            }
        })
    }

    fn densify(csr: &SparseCsr) -> ndarray::Array2<f32> {
        let rows = csr.indptr.len() - 1;
        let mut out = ndarray::Array2::zeros((rows, csr.cols));
        for r in 0..rows {
            for p in csr.indptr[r] as usize..csr.indptr[r + 1] as usize {
                out[[r, csr.indices[p] as usize]] = csr.values[p];
            }
        }
        out
    }

    #[test]
    fn pools_and_prunes() {
        let logits =
            Array3::from_shape_vec((1, 2, 4), vec![1.0, -1.0, 0.0, 3.0, 2.0, 5.0, -2.0, 0.5])
                .unwrap();
        let mask = array![[1i64, 1]];
        let csr = splade_pool(
            logits.view(),
            mask.view(),
            SpladeStrategy::Max,
            SpladeActivation::Relu,
            Some(2),
        )
        .unwrap();
        assert_eq!(csr.indices, vec![1, 3]);
        assert!((csr.values[0] - 6.0f32.ln()).abs() < 1e-6);
        assert!(splade_pool(
            logits.view(),
            mask.view(),
            SpladeStrategy::Max,
            SpladeActivation::Relu,
            Some(0)
        )
        .is_err());
        assert!(SpladeStrategy::parse("mean").is_err());
        assert!(SpladeActivation::parse("gelu").is_err());
    }

    proptest! {
        #[test]
        fn matches_naive(b in 1usize..4, s in 1usize..6, v in 1usize..12, sum in any::<bool>(), twice in any::<bool>(),
                         vals in proptest::collection::vec(-3.0f32..3.0, 4 * 6 * 12),
                         lens in proptest::collection::vec(0usize..6, 4)) {
            let logits = Array3::from_shape_fn((b, s, v), |(i, t, j)| vals[(i * 6 + t) * 12 + j]);
            let mask = ndarray::Array2::from_shape_fn((b, s), |(i, t)| i64::from(t < lens[i]));
            let strategy = if sum { SpladeStrategy::Sum } else { SpladeStrategy::Max };
            let act = if twice { SpladeActivation::Log1pRelu } else { SpladeActivation::Relu };
            let got = densify(&splade_pool(logits.view(), mask.view(), strategy, act, None).unwrap());
            let want = naive(&logits, &mask, strategy, act);
            for (g, w) in got.iter().zip(want.iter()) {
                prop_assert!((g - w).abs() <= 1e-5);
            }
        }

        #[test]
        fn pruning_keeps_largest(vals in proptest::collection::vec(-5.0f32..5.0, 1..40), k in 1usize..10) {
            let x = ndarray::Array2::from_shape_vec((1, vals.len()), vals.clone()).unwrap();
            let csr = dense_to_csr(x.view(), Some(k)).unwrap();
            let nonzero = vals.iter().filter(|v| **v != 0.0).count();
            prop_assert_eq!(csr.values.len(), k.min(nonzero));
            let kept_min = csr.values.iter().map(|v| v.abs()).fold(f32::INFINITY, f32::min);
            let dropped_max = (0..vals.len()).filter(|j| !csr.indices.contains(&(*j as i64)))
                .map(|j| vals[j].abs()).fold(0.0f32, f32::max);
            prop_assert!(csr.values.is_empty() || kept_min >= dropped_max);
            prop_assert!(csr.indices.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
