//! Inference-time pooling of token embeddings into sentence embeddings, normalisation and truncation.
//!
//! Inputs are the forward pass's `(batch, seq, hidden)` float32 token embeddings and the `(batch, seq)`
//! attention mask. Several modes at once are concatenated in the order given, as the reference does.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use ndarray::{s, Array2, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, Axis};
use rayon::prelude::*;

/// One pooling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first attended token.
    Cls,
    /// Element-wise maximum over attended tokens.
    Max,
    /// Mean over attended tokens.
    Mean,
    /// Sum over attended tokens divided by the square root of their count.
    MeanSqrtLenTokens,
    /// Mean weighted by position (1, 2, ... from the first attended token).
    WeightedMean,
    /// The last attended token.
    LastToken,
}

impl PoolingMode {
    /// Parses the reference's mode names.
    pub fn parse(name: &str) -> CoreResult<Self> {
        Ok(match name {
            "cls" => PoolingMode::Cls,
            "max" => PoolingMode::Max,
            "mean" => PoolingMode::Mean,
            "mean_sqrt_len_tokens" => PoolingMode::MeanSqrtLenTokens,
            "weightedmean" => PoolingMode::WeightedMean,
            "lasttoken" => PoolingMode::LastToken,
            other => {
                return Err(invalid(format!(
                    "pooling_mode must be one of 'cls', 'max', 'mean', 'mean_sqrt_len_tokens', 'weightedmean', \
                     'lasttoken', got '{other}'"
                )))
            }
        })
    }
}

/// Pools `tokens` `(batch, seq, hidden)` under `mask` `(batch, seq)` into `(batch, hidden * modes.len())`.
///
/// `skip_first` drops the `skip_first` positions starting at each row's first attended token from the pooled
/// set (the prompt, for `include_prompt=False`); every mode, `Cls` and `LastToken` included, then works on what
/// is left, as the reference does.
pub fn pool(
    tokens: ArrayView3<f32>,
    mask: ArrayView2<i64>,
    modes: &[PoolingMode],
    skip_first: usize,
) -> CoreResult<Array2<f32>> {
    let (batch, seq, hidden) = tokens.dim();
    if mask.dim() != (batch, seq) {
        return Err(CoreError::ShapeMismatch(format!(
            "attention_mask must have shape ({batch}, {seq}) to match token_embeddings, got {:?}",
            mask.dim()
        )));
    }
    if modes.is_empty() {
        return Err(invalid("pooling needs at least one mode, got none"));
    }
    if seq == 0 && batch > 0 {
        return Err(invalid(
            "token_embeddings must have at least one token per row, got a sequence length of 0",
        ));
    }
    let width = hidden * modes.len();
    let mut out = Array2::<f32>::zeros((batch, width));
    let work = |(b, mut row): (usize, ArrayViewMut1<f32>)| {
        let tok = tokens.index_axis(Axis(0), b);
        let m = mask.row(b);
        for (k, mode) in modes.iter().enumerate() {
            let dst = row.slice_mut(s![k * hidden..(k + 1) * hidden]);
            pool_row(tok, m, *mode, skip_first, dst);
        }
    };
    if parallel::parallel_enabled() && batch * seq * hidden > 1 << 16 {
        parallel::install(|| {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(work)
        });
    } else {
        out.axis_iter_mut(Axis(0)).enumerate().for_each(work);
    }
    Ok(out)
}

/// Pooling of one row: `tok` `(seq, hidden)`, `mask` `(seq,)`.
fn pool_row(
    tok: ArrayView2<f32>,
    mask: ArrayView1<i64>,
    mode: PoolingMode,
    skip_first: usize,
    mut dst: ArrayViewMut1<f32>,
) {
    let seq = mask.len();
    // Left padding shifts where a row starts; the prompt is the `skip_first` positions from there on.
    let start = (0..seq).find(|&t| mask[t] != 0).unwrap_or(0);
    let pooled: Vec<usize> = (0..seq)
        .filter(|&t| mask[t] != 0 && t >= start.saturating_add(skip_first))
        .collect();
    match mode {
        // With nothing left to pool the reference reads position 0 (argmax of an all-zero mask).
        PoolingMode::Cls => dst.assign(&tok.row(pooled.first().copied().unwrap_or(0))),
        PoolingMode::LastToken => match pooled.last() {
            Some(&t) => dst.assign(&tok.row(t)),
            None => dst.fill(0.0),
        },
        PoolingMode::Max => {
            dst.fill(f32::NEG_INFINITY);
            for &t in &pooled {
                dst.zip_mut_with(&tok.row(t), |d, &x| *d = d.max(x));
            }
        }
        PoolingMode::Mean | PoolingMode::MeanSqrtLenTokens => {
            dst.fill(0.0);
            for &t in &pooled {
                dst.zip_mut_with(&tok.row(t), |d, &x| *d += x);
            }
            let count = (pooled.len() as f32).max(1e-9);
            let denom = if mode == PoolingMode::Mean {
                count
            } else {
                count.sqrt()
            };
            dst.mapv_inplace(|v| v / denom);
        }
        PoolingMode::WeightedMean => {
            dst.fill(0.0);
            let mut weight_sum = 0.0f32;
            for &t in &pooled {
                let w = (t - start + 1) as f32;
                weight_sum += w;
                dst.zip_mut_with(&tok.row(t), |d, &x| *d += w * x);
            }
            let denom = weight_sum.max(1e-9);
            dst.mapv_inplace(|v| v / denom);
        }
    }
}

/// L2-normalises every row in place: `x / max(||x||, 1e-12)`.
pub fn normalize_rows(x: &mut Array2<f32>) {
    let work = |mut row: ArrayViewMut1<f32>| {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.mapv_inplace(|v| v / norm);
    };
    if parallel::parallel_enabled() && x.len() > 1 << 16 {
        parallel::install(|| x.axis_iter_mut(Axis(0)).into_par_iter().for_each(work));
    } else {
        x.axis_iter_mut(Axis(0)).for_each(work);
    }
}

/// Keeps the first `dim` columns (Matryoshka truncation); `dim` larger than the width keeps everything.
pub fn truncate_dim(x: ArrayView2<f32>, dim: usize) -> CoreResult<Array2<f32>> {
    if dim == 0 {
        return Err(invalid("truncate_dim must be >= 1, got 0"));
    }
    let keep = dim.min(x.ncols());
    Ok(x.slice(s![.., ..keep]).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array3};
    use proptest::prelude::*;

    fn naive(
        tokens: &Array3<f32>,
        mask: &Array2<i64>,
        mode: PoolingMode,
        skip: usize,
    ) -> Array2<f32> {
        let (b, s, h) = tokens.dim();
        let mut out = Array2::zeros((b, h));
        for i in 0..b {
            let f = (0..s).find(|&t| mask[[i, t]] != 0).unwrap_or(0);
            let pooled: Vec<usize> = (0..s)
                .filter(|&t| mask[[i, t]] != 0 && t >= f + skip)
                .collect();
            for j in 0..h {
                out[[i, j]] = match mode {
                    PoolingMode::Cls => tokens[[i, *pooled.first().unwrap_or(&0), j]],
                    PoolingMode::LastToken => {
                        pooled.last().map(|&t| tokens[[i, t, j]]).unwrap_or(0.0)
                    }
                    PoolingMode::Max => pooled
                        .iter()
                        .map(|&t| tokens[[i, t, j]])
                        .fold(f32::NEG_INFINITY, f32::max),
                    PoolingMode::Mean => {
                        pooled.iter().map(|&t| tokens[[i, t, j]]).sum::<f32>()
                            / (pooled.len() as f32).max(1e-9)
                    }
                    PoolingMode::MeanSqrtLenTokens => {
                        pooled.iter().map(|&t| tokens[[i, t, j]]).sum::<f32>()
                            / (pooled.len() as f32).max(1e-9).sqrt()
                    }
                    PoolingMode::WeightedMean => {
                        let ws: f32 = pooled.iter().map(|&t| (t - f + 1) as f32).sum();
                        pooled
                            .iter()
                            .map(|&t| (t - f + 1) as f32 * tokens[[i, t, j]])
                            .sum::<f32>()
                            / ws.max(1e-9)
                    }
                };
            }
        }
        out
    }

    #[test]
    fn mean_ignores_padding() {
        let tokens =
            Array3::from_shape_vec((1, 3, 2), vec![1.0, 2.0, 3.0, 4.0, 100.0, 100.0]).unwrap();
        let mask = array![[1i64, 1, 0]];
        let out = pool(tokens.view(), mask.view(), &[PoolingMode::Mean], 0).unwrap();
        assert_eq!(out, array![[2.0f32, 3.0]]);
    }

    #[test]
    fn several_modes_concatenate_in_given_order() {
        let tokens = Array3::from_shape_vec((1, 2, 1), vec![1.0, 3.0]).unwrap();
        let mask = array![[1i64, 1]];
        let modes = [
            PoolingMode::Cls,
            PoolingMode::Max,
            PoolingMode::Mean,
            PoolingMode::LastToken,
        ];
        let out = pool(tokens.view(), mask.view(), &modes, 0).unwrap();
        assert_eq!(out, array![[1.0f32, 3.0, 2.0, 3.0]]);
    }

    #[test]
    fn left_padding_is_respected() {
        let tokens = Array3::from_shape_vec((1, 3, 1), vec![9.0, 1.0, 3.0]).unwrap();
        let mask = array![[0i64, 1, 1]];
        let cls = pool(tokens.view(), mask.view(), &[PoolingMode::Cls], 0).unwrap();
        assert_eq!(cls[[0, 0]], 1.0);
        let wm = pool(tokens.view(), mask.view(), &[PoolingMode::WeightedMean], 0).unwrap();
        assert!((wm[[0, 0]] - (1.0 + 2.0 * 3.0) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn empty_sequence_is_an_error_not_a_panic() {
        let tokens = Array3::<f32>::zeros((2, 0, 4));
        let mask = Array2::<i64>::zeros((2, 0));
        for mode in [PoolingMode::Cls, PoolingMode::Mean, PoolingMode::LastToken] {
            assert!(pool(tokens.view(), mask.view(), &[mode], 0).is_err());
        }
    }

    #[test]
    fn shape_mismatch_and_unknown_mode_are_errors() {
        let tokens = Array3::<f32>::zeros((2, 3, 4));
        let mask = Array2::<i64>::ones((2, 2));
        assert!(pool(tokens.view(), mask.view(), &[PoolingMode::Mean], 0).is_err());
        assert!(PoolingMode::parse("avg")
            .unwrap_err()
            .to_string()
            .contains("'avg'"));
    }

    #[test]
    fn normalize_and_truncate() {
        let mut x = array![[3.0f32, 4.0], [0.0, 0.0]];
        normalize_rows(&mut x);
        assert_eq!(x, array![[0.6f32, 0.8], [0.0, 0.0]]);
        assert_eq!(truncate_dim(x.view(), 1).unwrap(), array![[0.6f32], [0.0]]);
        assert!(truncate_dim(x.view(), 0).is_err());
    }

    fn modes() -> impl Strategy<Value = PoolingMode> {
        prop_oneof![
            Just(PoolingMode::Cls),
            Just(PoolingMode::Max),
            Just(PoolingMode::Mean),
            Just(PoolingMode::MeanSqrtLenTokens),
            Just(PoolingMode::WeightedMean),
            Just(PoolingMode::LastToken)
        ]
    }

    proptest! {
        #[test]
        fn matches_naive_loop(b in 1usize..5, s in 1usize..9, h in 1usize..6, mode in modes(), skip in 0usize..3,
                              seed in proptest::collection::vec(-5.0f32..5.0, 5 * 9 * 6),
                              lens in proptest::collection::vec(1usize..9, 5), left in any::<bool>()) {
            let tokens = Array3::from_shape_fn((b, s, h), |(i, t, j)| seed[(i * 9 + t) * 6 + j]);
            let mask = Array2::from_shape_fn((b, s), |(i, t)| {
                let n = lens[i].min(s);
                let on = if left { t >= s - n } else { t < n };
                i64::from(on)
            });
            let got = pool(tokens.view(), mask.view(), &[mode], skip).unwrap();
            let want = naive(&tokens, &mask, mode, skip);
            for (g, w) in got.iter().zip(want.iter()) {
                prop_assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()) || (g.is_infinite() && w.is_infinite()));
            }
        }
    }
}
