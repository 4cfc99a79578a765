//! Similarity functions as the reference defines them: cosine, dot, euclidean (negative L2 distance) and
//! manhattan (negative L1 distance), as a full `(n, m)` matrix and pairwise (row i with row i).

use crate::error::{check_same_size, invalid, CoreResult};
use crate::parallel;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, Axis};
use rayon::prelude::*;

/// A similarity function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Similarity {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
    /// Negative euclidean distance.
    Euclidean,
    /// Negative manhattan distance.
    Manhattan,
}

impl Similarity {
    /// Parses `"cosine"`, `"dot"`, `"euclidean"` or `"manhattan"`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        Ok(match name {
            "cosine" => Similarity::Cosine,
            "dot" => Similarity::Dot,
            "euclidean" => Similarity::Euclidean,
            "manhattan" => Similarity::Manhattan,
            other => {
                return Err(invalid(format!(
                    "similarity_fn_name must be one of 'cosine', 'dot', 'euclidean', 'manhattan', got '{other}'"
                )))
            }
        })
    }
}

fn check_dims(a: &ArrayView2<f32>, b: &ArrayView2<f32>) -> CoreResult<()> {
    check_same_size(
        "embeddings must have the same dimension",
        a.ncols(),
        b.ncols(),
    )
}

/// Row L2 norms clamped at 1e-12 (the reference's `F.normalize` epsilon).
pub fn row_norms(x: ArrayView2<f32>) -> Array1<f32> {
    x.rows()
        .into_iter()
        .map(|r| r.dot(&r).sqrt().max(1e-12))
        .collect()
}

/// `a @ b.T` through the `gemm` crate (runtime-dispatched AVX2/AVX-512 kernels, parallel on the core's pool).
pub fn matmul_nt(a: ArrayView2<f32>, b: ArrayView2<f32>) -> CoreResult<Array2<f32>> {
    check_dims(&a, &b)?;
    let (n, d) = a.dim();
    let m = b.nrows();
    let mut out = Array2::<f32>::zeros((n, m));
    if n == 0 || m == 0 || d == 0 {
        return Ok(out);
    }
    let threads = if parallel::parallel_enabled() && n * m * d > 1 << 16 {
        parallel::current_num_threads()
    } else {
        1
    };
    matmul_nt_into(a, b, out.view_mut(), threads);
    Ok(out)
}

/// `a @ b.T` written into `out` (`(a rows, b rows)`, contiguous), on `threads` threads of the core's pool (1: the
/// calling thread, for callers that are already parallel). Dimensions must already be checked.
pub(crate) fn matmul_nt_into(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut out: ndarray::ArrayViewMut2<f32>,
    threads: usize,
) {
    let (n, d) = a.dim();
    let m = b.nrows();
    debug_assert_eq!(out.dim(), (n, m));
    debug_assert!(out.is_standard_layout());
    if n == 0 || m == 0 {
        return;
    }
    if d == 0 {
        out.fill(0.0);
        return;
    }
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    // Raw pointers are not Send; their addresses cross into the pool and become pointers again there.
    let dst_addr = out.as_mut_ptr() as usize;
    let (lhs_addr, rhs_addr) = (a.as_ptr() as usize, b.as_ptr() as usize);
    let run = move || {
        let (dst, lhs, rhs) = (
            dst_addr as *mut f32,
            lhs_addr as *const f32,
            rhs_addr as *const f32,
        );
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: `dst` is an owned, contiguous (n, m) buffer; `lhs` and `rhs` point into live views whose
        // element (i, j) sits at `ptr + i * row_stride + j * col_stride`, which is exactly how `gemm` addresses
        // them. B is read transposed by swapping its strides. Nothing else touches these buffers meanwhile.
        unsafe {
            gemm::gemm(
                n,
                m,
                d,
                dst,
                1,
                m as isize,
                false,
                lhs,
                a_cs,
                a_rs,
                rhs,
                b_rs,
                b_cs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if threads > 1 {
        parallel::install(run);
    } else {
        run();
    }
}

fn for_each_row(out: &mut Array2<f32>, f: impl Fn(usize, ArrayViewMut1<f32>) + Sync) {
    if parallel::parallel_enabled() && out.len() > 1 << 14 {
        parallel::install(|| {
            out.axis_iter_mut(Axis(0))
                .into_par_iter()
                .enumerate()
                .for_each(|(i, r)| f(i, r))
        });
    } else {
        out.axis_iter_mut(Axis(0))
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    }
}

fn l2(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn l1(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
}

/// The `(n, m)` similarity matrix between the rows of `a` `(n, d)` and `b` `(m, d)`.
pub fn similarity_matrix(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    sim: Similarity,
) -> CoreResult<Array2<f32>> {
    check_dims(&a, &b)?;
    match sim {
        Similarity::Dot => matmul_nt(a, b),
        Similarity::Cosine => {
            let mut out = matmul_nt(a, b)?;
            let na = row_norms(a);
            let nb = row_norms(b);
            for_each_row(&mut out, |i, mut row| {
                row.zip_mut_with(&nb, |v, &n| *v /= na[i] * n)
            });
            Ok(out)
        }
        Similarity::Euclidean | Similarity::Manhattan => {
            let mut out = Array2::<f32>::zeros((a.nrows(), b.nrows()));
            let dist = if sim == Similarity::Euclidean { l2 } else { l1 };
            for_each_row(&mut out, |i, mut row| {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = -dist(a.row(i), b.row(j));
                }
            });
            Ok(out)
        }
    }
}

/// Similarity of row i of `a` with row i of `b`, for every i.
pub fn similarity_pairwise(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    sim: Similarity,
) -> CoreResult<Array1<f32>> {
    check_dims(&a, &b)?;
    check_same_size(
        "pairwise similarity needs the same number of rows",
        a.nrows(),
        b.nrows(),
    )?;
    Ok((0..a.nrows())
        .map(|i| {
            let (x, y) = (a.row(i), b.row(i));
            match sim {
                Similarity::Dot => x.dot(&y),
                Similarity::Cosine => {
                    x.dot(&y) / (x.dot(&x).sqrt().max(1e-12) * y.dot(&y).sqrt().max(1e-12))
                }
                Similarity::Euclidean => -l2(x, y),
                Similarity::Manhattan => -l1(x, y),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use proptest::prelude::*;

    fn naive(a: &Array2<f32>, b: &Array2<f32>, sim: Similarity) -> Array2<f32> {
        Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| {
            let (x, y) = (a.row(i), b.row(j));
            let dot: f32 = x.iter().zip(y.iter()).map(|(p, q)| p * q).sum();
            match sim {
                Similarity::Dot => dot,
                Similarity::Cosine => {
                    let nx = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let ny = y.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    dot / (nx * ny)
                }
                Similarity::Euclidean => -x
                    .iter()
                    .zip(y.iter())
                    .map(|(p, q)| (p - q).powi(2))
                    .sum::<f32>()
                    .sqrt(),
                Similarity::Manhattan => -x
                    .iter()
                    .zip(y.iter())
                    .map(|(p, q)| (p - q).abs())
                    .sum::<f32>(),
            }
        })
    }

    #[test]
    fn small_known_values() {
        let a = array![[1.0f32, 0.0], [0.0, 2.0]];
        let b = array![[1.0f32, 1.0]];
        let cos = similarity_matrix(a.view(), b.view(), Similarity::Cosine).unwrap();
        assert!((cos[[0, 0]] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let man = similarity_matrix(a.view(), b.view(), Similarity::Manhattan).unwrap();
        assert_eq!(man, array![[-1.0f32], [-2.0]]);
        let pw = similarity_pairwise(a.view(), a.view(), Similarity::Euclidean).unwrap();
        assert_eq!(pw, array![0.0f32, 0.0]);
    }

    #[test]
    fn large_parallel_gemm_matches_naive_on_strided_views() {
        let a = Array2::from_shape_fn((300, 70), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b_full =
            Array2::from_shape_fn((70, 410), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.25 - 1.0);
        let b = b_full.t(); // a transposed (column-major) view: (410, 70)
        let got = similarity_matrix(a.view(), b, Similarity::Dot).unwrap();
        let want = naive(&a, &b.to_owned(), Similarity::Dot);
        for (g, w) in got.iter().zip(want.iter()) {
            assert!((g - w).abs() <= 1e-3 * (1.0 + w.abs()));
        }
        let empty = Array2::<f32>::zeros((0, 70));
        assert_eq!(
            similarity_matrix(empty.view(), a.view(), Similarity::Cosine)
                .unwrap()
                .dim(),
            (0, 300)
        );
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let a = Array2::<f32>::zeros((2, 3));
        let b = Array2::<f32>::zeros((2, 4));
        let err = similarity_matrix(a.view(), b.view(), Similarity::Dot).unwrap_err();
        assert_eq!(
            err.to_string(),
            "embeddings must have the same dimension, got 3 and 4"
        );
        let c = Array2::<f32>::zeros((3, 3));
        assert!(similarity_pairwise(a.view(), c.view(), Similarity::Dot).is_err());
        assert!(Similarity::parse("cos").is_err());
    }

    fn sims() -> impl Strategy<Value = Similarity> {
        prop_oneof![
            Just(Similarity::Cosine),
            Just(Similarity::Dot),
            Just(Similarity::Euclidean),
            Just(Similarity::Manhattan)
        ]
    }

    proptest! {
        #[test]
        fn matrix_and_pairwise_match_naive(n in 1usize..150, m in 1usize..20, d in 1usize..12, sim in sims(),
                                           vals in proptest::collection::vec(-3.0f32..3.0, 170 * 12)) {
            let a = Array2::from_shape_fn((n, d), |(i, j)| vals[i * 12 + j]);
            let b = Array2::from_shape_fn((m, d), |(i, j)| vals[(150 + i) * 12 + j]);
            let got = similarity_matrix(a.view(), b.view(), sim).unwrap();
            let want = naive(&a, &b, sim);
            for (g, w) in got.iter().zip(want.iter()) {
                prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()));
            }
            let k = n.min(m);
            let pw = similarity_pairwise(a.slice(ndarray::s![..k, ..]), b.slice(ndarray::s![..k, ..]), sim).unwrap();
            for i in 0..k {
                prop_assert!((pw[i] - want[[i, i]]).abs() <= 1e-4 * (1.0 + want[[i, i]].abs()));
            }
        }
    }
}
