//! Search over int8 and uint8 codes by inner product: blocks of the corpus widened to float32 and scored with a
//! GEMM, fed to the running top-k selection.

use crate::cancel::Cancel;
use crate::error::{check_same_size, invalid, CoreResult};
use crate::simd::Level;
use crate::topk::fused::{self, I16Kernel};
use crate::topk::hits::TopKState;
use ndarray::{s, Array2, ArrayView2};

/// Integer codes that can be widened to float (or int16) for scoring.
pub trait Code: Copy + Send + Sync + Into<i16> {
    /// The code as a float.
    fn to_f32(self) -> f32;
}
impl Code for u8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}
impl Code for i8 {
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
}

/// Corpus rows widened to float per block.
const CODE_BLOCK: usize = 4096;

/// Best `k` corpus rows by inner product of integer codes (int8 or uint8): `(ids, scores)`, best first.
///
/// From the AVX2 level ([`crate::simd`]) the int16 kernels of [`crate::topk::fused`] score the codes with exact
/// integer sums; below it (or past [`fused::MAX_CODE_DIM`] dimensions) blocks of the corpus are widened to float32
/// and scored with a GEMM (exact for dimensions below 2^24 / 255^2). Memory stays at one block either way.
/// `cancel` is checked between blocks.
pub fn code_dot_topk<T: Code>(
    queries: ArrayView2<T>,
    corpus: ArrayView2<T>,
    k: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    code_dot_topk_at(crate::simd::active(), queries, corpus, k, cancel)
}

/// [`code_dot_topk`] at SIMD level `level` (capped at what this CPU runs).
pub fn code_dot_topk_at<T: Code>(
    level: Level,
    queries: ArrayView2<T>,
    corpus: ArrayView2<T>,
    k: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    check_same_size(
        "query and corpus codes must have the same dimension",
        queries.ncols(),
        corpus.ncols(),
    )?;
    if queries.ncols() == 0 {
        return Err(invalid("codes must have at least one dimension"));
    }
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let k = k.min(nc);
    let mut state = TopKState::new(nq, k);
    if nq == 0 || k == 0 {
        return Ok(state.finish());
    }
    let level = level.min(crate::simd::detected());
    if queries.ncols() <= fused::MAX_CODE_DIM {
        let kernel = if level >= Level::Avx2Vnni && fused::i16_supported(I16Kernel::AvxVnni) {
            Some(I16Kernel::AvxVnni)
        } else if level >= Level::Avx2 && fused::i16_supported(I16Kernel::Avx2) {
            Some(I16Kernel::Avx2)
        } else {
            None
        };
        if let Some(kernel) = kernel {
            return fused::code_topk(kernel, queries, corpus, k, cancel);
        }
    }
    let q = queries.mapv(T::to_f32);
    for c0 in (0..nc).step_by(CODE_BLOCK) {
        cancel.check()?;
        let block = corpus
            .slice(s![c0..(c0 + CODE_BLOCK).min(nc), ..])
            .mapv(T::to_f32);
        let scores = crate::similarity::matmul_nt(q.view(), block.view())?;
        state.push_block(scores.view(), 0, c0, None, false)?;
    }
    Ok(state.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn code_dot_matches_naive(nq in 1usize..6, nc in 1usize..80, d in 1usize..10, k in 1usize..10,
                                  vals in proptest::collection::vec(any::<i8>(), 86 * 10)) {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| vals[i * 10 + j]);
            let c = Array2::from_shape_fn((nc, d), |(i, j)| vals[(6 + i) * 10 + j]);
            for level in crate::simd::supported_levels() {
            let (ids, scores) = code_dot_topk_at(level, q.view(), c.view(), k, &Cancel::new()).unwrap();
            for i in 0..nq {
                let mut all: Vec<(i64, usize)> = (0..nc)
                    .map(|j| ((0..d).map(|t| i64::from(q[[i, t]]) * i64::from(c[[j, t]])).sum(), j))
                    .collect();
                all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                for r in 0..ids.ncols() {
                    prop_assert_eq!(ids[[i, r]] as usize, all[r].1);
                    prop_assert_eq!(scores[[i, r]] as i64, all[r].0);
                }
            }
            }
        }
    }

    #[test]
    fn uint8_codes_score_exactly_at_every_level() {
        let (nq, nc, d) = (7, 3000, 201);
        let q = Array2::from_shape_fn((nq, d), |(i, j)| ((i * 37 + j * 11) % 256) as u8);
        let c = Array2::from_shape_fn((nc, d), |(i, j)| ((i * 53 + j * 29 + i * j) % 256) as u8);
        for level in crate::simd::supported_levels() {
            let (ids, scores) =
                code_dot_topk_at(level, q.view(), c.view(), 15, &Cancel::new()).unwrap();
            for i in 0..nq {
                let mut all: Vec<(i64, usize)> = (0..nc)
                    .map(|j| {
                        (
                            (0..d)
                                .map(|t| i64::from(q[[i, t]]) * i64::from(c[[j, t]]))
                                .sum(),
                            j,
                        )
                    })
                    .collect();
                all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                for r in 0..15 {
                    assert_eq!(ids[[i, r]] as usize, all[r].1, "{}", level.name());
                    assert_eq!(scores[[i, r]] as i64, all[r].0, "{}", level.name());
                }
            }
        }
    }

    #[test]
    fn width_mismatch_and_cancellation_are_errors() {
        let a = Array2::<u8>::zeros((1, 4));
        let b = Array2::<u8>::zeros((1, 5));
        assert!(code_dot_topk(a.view(), b.view(), 1, &Cancel::new()).is_err());
        let cancel = Cancel::new();
        cancel.cancel();
        assert_eq!(
            code_dot_topk(a.view(), a.view(), 1, &cancel),
            Err(CoreError::Cancelled)
        );
    }
}
