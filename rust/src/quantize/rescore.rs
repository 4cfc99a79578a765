//! Float rescoring of quantised-search candidates: a query against the packed bits of a binary code, or against
//! the float corpus row itself, accumulated in f64 and rounded once.
//!
//! Each kernel is compiled for the widest vectors the CPU has (AVX-512, AVX2 + FMA or portable) and picked at run
//! time; only the candidate rows are read.

use crate::error::{invalid, CoreError, CoreResult};
use crate::parallel;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

/// The query (f64, padded to `8 * code.len()`) times the bits of `code` in `np.packbits` order (dimension `8 t + j`
/// is bit `7 - j` of byte `t`): branch-free, eight lane accumulators the compiler turns into one vector.
#[inline(always)]
fn bit_dot(q: &[f64], code: &[u8]) -> f64 {
    let mut acc = [0f64; 8];
    for (qs, &byte) in q.chunks_exact(8).zip(code) {
        for j in 0..8 {
            acc[j] += qs[j] * f64::from((byte >> (7 - j)) & 1);
        }
    }
    acc.iter().sum()
}

/// [`bit_dot`] with one masked add per byte: the byte, bit-reversed, masks the eight query values it selects.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn bit_dot_avx512(q: &[f64], code: &[u8]) -> f64 {
    use std::arch::x86_64::*;
    let mut acc = _mm512_setzero_pd();
    for (qs, &byte) in q.chunks_exact(8).zip(code) {
        // SAFETY: `qs` holds exactly eight f64.
        let values = unsafe { _mm512_loadu_pd(qs.as_ptr()) };
        acc = _mm512_mask_add_pd(acc, byte.reverse_bits(), acc, values);
    }
    _mm512_reduce_add_pd(acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bit_dot_avx2(q: &[f64], code: &[u8]) -> f64 {
    bit_dot(q, code)
}

/// Defines `$name()`, which returns the compilation of an `fn(&[f64], &[$elem]) -> f64` kernel for the widest
/// vectors this CPU has: `$avx512` (avx512f), `$avx2` (avx2 + fma) or the portable `$portable`.
macro_rules! widest_kernel {
    ($(#[$doc:meta])* $name:ident, $elem:ty, $portable:ident, $avx512:ident, $avx2:ident) => {
        $(#[$doc])*
        fn $name() -> fn(&[f64], &[$elem]) -> f64 {
            #[cfg(target_arch = "x86_64")]
            {
                let level = crate::simd::active();
                if level >= crate::simd::Level::Avx512 && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: avx512f was just detected.
                    return |q, x| unsafe { $avx512(q, x) };
                }
                if level >= crate::simd::Level::Avx2
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: avx2 and fma were just detected.
                    return |q, x| unsafe { $avx2(q, x) };
                }
            }
            $portable
        }
    };
}

widest_kernel!(
    /// [`bit_dot`] compiled for the widest vectors this CPU has.
    bit_dot_kernel, u8, bit_dot, bit_dot_avx512, bit_dot_avx2
);

/// Checks candidate ids against `nq` queries and `n` corpus rows (`-1` marks no candidate).
fn check_candidates(ids: ArrayView2<i64>, nq: usize, n: usize) -> CoreResult<()> {
    if ids.nrows() != nq {
        return Err(CoreError::ShapeMismatch(format!(
            "ids must have one row per query ({nq}), got {}",
            ids.nrows()
        )));
    }
    let n = n as i64;
    if let Some(&bad) = ids.iter().find(|&&j| j >= n || j < -1) {
        return Err(invalid(format!(
            "ids must be corpus rows in [0, {n}) or -1, got {bad}"
        )));
    }
    Ok(())
}

/// Candidates looked ahead when prefetching their corpus rows.
const PREFETCH_AHEAD: usize = 4;

/// `score(i, q, j)` for every query row `i` and candidate `j = ids[i][..]` (`-inf` for `-1`), in parallel over
/// queries. `prepare(i)` builds the per-query state `q` once; `prefetch(j)` is called a few candidates ahead.
fn score_candidates<Q>(
    ids: ArrayView2<i64>,
    prepare: impl Fn(usize) -> Q + Sync,
    prefetch: impl Fn(usize) + Sync,
    score: impl Fn(&Q, usize) -> f32 + Sync,
) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(ids.dim());
    let work = |(i, mut row): (usize, ndarray::ArrayViewMut1<f32>)| {
        let q = prepare(i);
        let cands = ids.row(i);
        for &j in cands.iter().take(PREFETCH_AHEAD) {
            if j >= 0 {
                prefetch(j as usize);
            }
        }
        for (t, slot) in row.iter_mut().enumerate() {
            if let Some(&ahead) = cands.get(t + PREFETCH_AHEAD) {
                if ahead >= 0 {
                    prefetch(ahead as usize);
                }
            }
            let j = cands[t];
            *slot = if j < 0 {
                f32::NEG_INFINITY
            } else {
                score(&q, j as usize)
            };
        }
    };
    let rows = out.axis_iter_mut(Axis(0)).enumerate();
    if parallel::parallel_enabled() && ids.nrows() > 1 {
        parallel::install(|| rows.par_bridge().for_each(work));
    } else {
        rows.for_each(work);
    }
    out
}

/// `kernel` applied to the prepared query `q` and one corpus row (copied first when strided), rounded to f32.
#[inline(always)]
fn score_row<T: Copy>(kernel: fn(&[f64], &[T]) -> f64, q: &[f64], row: ArrayView1<T>) -> f32 {
    match row.as_slice() {
        Some(slice) => kernel(q, slice) as f32,
        None => kernel(q, &row.to_vec()) as f32,
    }
}

/// Float scores of packed-bit candidates: for each query `i` and candidate `ids[i][j]` (a corpus row; `-1` gives
/// `-inf`), the sum of the query's values at the candidate's set bits (bit `b` of byte `t` is dimension
/// `8 t + 7 - b`, `np.packbits` order), accumulated in f64. This is the query times the unpacked 0/1 vector.
pub fn rescore_bits(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<u8>,
    ids: ArrayView2<i64>,
) -> CoreResult<Array2<f32>> {
    let (nq, dim) = queries.dim();
    if corpus.ncols() != dim.div_ceil(8) {
        return Err(CoreError::ShapeMismatch(format!(
            "corpus codes of {} bytes cannot hold {dim} dimensions (expected {})",
            corpus.ncols(),
            dim.div_ceil(8)
        )));
    }
    check_candidates(ids, nq, corpus.nrows())?;
    let bytes = dim.div_ceil(8);
    let kernel = bit_dot_kernel();
    let prepare = |i: usize| {
        // The query in f64, zero-padded to whole bytes: padding bits then add nothing.
        let mut q = vec![0f64; bytes * 8];
        for (dst, &v) in q.iter_mut().zip(queries.row(i)) {
            *dst = f64::from(v);
        }
        q
    };
    Ok(score_candidates(
        ids,
        prepare,
        |_| {},
        |q: &Vec<f64>, j| score_row(kernel, q, corpus.row(j)),
    ))
}

/// Dot product of an f64 query with an f32 row, accumulated in f64 over eight lanes.
#[inline(always)]
fn row_dot(q: &[f64], row: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut qs = q.chunks_exact(8);
    let mut rs = row.chunks_exact(8);
    for (qc, rc) in (&mut qs).zip(&mut rs) {
        for l in 0..8 {
            acc[l] += qc[l] * f64::from(rc[l]);
        }
    }
    let tail: f64 = qs
        .remainder()
        .iter()
        .zip(rs.remainder())
        .map(|(&a, &b)| a * f64::from(b))
        .sum();
    acc.iter().sum::<f64>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn row_dot_avx512(q: &[f64], row: &[f32]) -> f64 {
    row_dot(q, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_dot_avx2(q: &[f64], row: &[f32]) -> f64 {
    row_dot(q, row)
}

widest_kernel!(
    /// [`row_dot`] compiled for the widest vectors this CPU has.
    row_dot_kernel, f32, row_dot, row_dot_avx512, row_dot_avx2
);

/// Asks the CPU to start loading a contiguous row (a hint; nothing happens for strided rows or other CPUs).
#[inline(always)]
fn prefetch_row(row: ArrayView1<f32>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(slice) = row.as_slice() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(slice);
        let start = slice.as_ptr().cast::<i8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: prefetching is a hint that never faults; the address lies inside `slice`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// Float scores of candidates `ids` (`-1` gives `-inf`) against float corpus rows: the dot product of query `i`
/// and row `ids[i][j]`, accumulated in f64 and rounded once. Only the candidate rows are read, so rescoring a
/// quantised search with the float corpus costs one gather per candidate, not a copy of them all.
pub fn rescore_rows(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    ids: ArrayView2<i64>,
) -> CoreResult<Array2<f32>> {
    let (nq, dim) = queries.dim();
    if corpus.ncols() != dim {
        return Err(CoreError::ShapeMismatch(format!(
            "corpus rows have {} dimensions, the queries {dim}",
            corpus.ncols()
        )));
    }
    check_candidates(ids, nq, corpus.nrows())?;
    let kernel = row_dot_kernel();
    let prepare = |i: usize| {
        queries
            .row(i)
            .iter()
            .map(|&v| f64::from(v))
            .collect::<Vec<f64>>()
    };
    let prefetch = |j: usize| prefetch_row(corpus.row(j));
    Ok(score_candidates(
        ids,
        prepare,
        prefetch,
        |q: &Vec<f64>, j| score_row(kernel, q, corpus.row(j)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks each rescored candidate against `want(query, corpus row)` within 1e-5 relative (`got` is rounded
    /// once from f64), and `-inf` where `ids` holds `-1`.
    fn check_scores(
        got: &Array2<f32>,
        ids: &Array2<i64>,
        want: impl Fn(usize, usize) -> f64,
    ) -> Result<(), TestCaseError> {
        for ((i, j), &id) in ids.indexed_iter() {
            if id < 0 {
                prop_assert!(got[[i, j]] == f32::NEG_INFINITY);
                continue;
            }
            let want = want(i, id as usize);
            prop_assert!((f64::from(got[[i, j]]) - want).abs() <= 1e-5 * (1.0 + want.abs()));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn rescore_bits_is_the_query_times_the_unpacked_bits(
            nq in 1usize..5, nc in 1usize..30, dim in 1usize..70, k in 1usize..6,
            vals in proptest::collection::vec(-4.0f32..4.0, 5 * 70),
            bytes in proptest::collection::vec(any::<u8>(), 30 * 9),
            picks in proptest::collection::vec(-1i64..30, 5 * 6),
        ) {
            let width = dim.div_ceil(8);
            let q = Array2::from_shape_fn((nq, dim), |(i, j)| vals[i * 70 + j]);
            // np.packbits leaves the bits past `dim` zero.
            let c = Array2::from_shape_fn((nc, width), |(i, t)| {
                let keep = (dim - 8 * t).min(8);
                bytes[i * 9 + t] & (0xFFu16 << (8 - keep)) as u8
            });
            let ids = Array2::from_shape_fn((nq, k), |(i, j)| picks[i * 6 + j].min(nc as i64 - 1));
            let got = rescore_bits(q.view(), c.view(), ids.view()).unwrap();
            check_scores(&got, &ids, |i, id| {
                (0..dim)
                    .filter(|&d| c[[id, d / 8]] >> (7 - d % 8) & 1 == 1)
                    .map(|d| f64::from(q[[i, d]]))
                    .sum()
            })?;
        }
    }

    proptest! {
        #[test]
        fn rescore_rows_is_the_dot_product_of_the_candidates(
            nq in 1usize..5, nc in 1usize..30, dim in 1usize..40, k in 1usize..6,
            vals in proptest::collection::vec(-4.0f32..4.0, 5 * 40),
            rows in proptest::collection::vec(-4.0f32..4.0, 30 * 40),
            picks in proptest::collection::vec(-1i64..30, 5 * 6),
        ) {
            let q = Array2::from_shape_fn((nq, dim), |(i, j)| vals[i * 40 + j]);
            let c = Array2::from_shape_fn((nc, dim), |(i, j)| rows[i * 40 + j]);
            let ids = Array2::from_shape_fn((nq, k), |(i, j)| picks[i * 6 + j].min(nc as i64 - 1));
            let got = rescore_rows(q.view(), c.view(), ids.view()).unwrap();
            // A transposed (non-contiguous) corpus view gives the same scores.
            let ct = c.t().to_owned();
            let strided = rescore_rows(q.view(), ct.t(), ids.view()).unwrap();
            prop_assert_eq!(&got, &strided);
            check_scores(&got, &ids, |i, id| (0..dim).map(|d| f64::from(q[[i, d]]) * f64::from(c[[id, d]])).sum())?;
        }
    }

    #[test]
    fn rescore_rows_rejects_bad_ids_and_dims() {
        let q = Array2::<f32>::zeros((1, 4));
        let c = Array2::<f32>::zeros((3, 4));
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((1, 1), 3i64).view()).is_err());
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((1, 1), -2i64).view()).is_err());
        assert!(rescore_rows(q.view(), c.view(), Array2::from_elem((2, 1), 0i64).view()).is_err());
        let wide = Array2::<f32>::zeros((3, 5));
        assert!(rescore_rows(
            q.view(),
            wide.view(),
            Array2::from_elem((1, 1), 0i64).view()
        )
        .is_err());
    }

    #[test]
    fn rescore_bits_rejects_bad_ids_and_widths() {
        let q = Array2::<f32>::zeros((1, 16));
        let c = Array2::<u8>::zeros((3, 2));
        assert!(rescore_bits(q.view(), c.view(), Array2::from_elem((1, 1), 3i64).view()).is_err());
        assert!(rescore_bits(q.view(), c.view(), Array2::from_elem((2, 1), 0i64).view()).is_err());
        assert!(rescore_bits(
            q.view(),
            Array2::<u8>::zeros((3, 3)).view(),
            Array2::from_elem((1, 1), 0i64).view()
        )
        .is_err());
    }
}
