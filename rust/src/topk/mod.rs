//! Exact top-k search without materialising the full query x corpus score matrix.
//!
//! Queries are scored against the corpus one block of rows at a time (a GEMM per block); each query keeps a
//! bounded heap of its best `k` hits. Peak extra memory is `queries_in_flight x block` scores, whatever the
//! corpus size. Ties break by the lower corpus index, so results are deterministic.
//!
//! Layout: this module holds the search entry points and the fp32 and bf16-rescored passes; [`hits`] the hits and
//! the running selection both passes feed; [`bf16`] the bf16 candidate scan. Neither of those imports this module.

pub mod bf16;
pub mod hits;

use crate::cancel::Cancel;
use crate::error::{check_same_size, invalid, CoreResult};
use crate::parallel;
use crate::pooling::normalize_rows;
use crate::similarity::{matmul_nt, row_norms};
use hits::{rank_key, Hit, TopKState};
use ndarray::{s, Array1, Array2, ArrayView2};
use rayon::prelude::*;

/// Scoring used by [`topk_search`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKScore {
    /// Cosine similarity.
    Cosine,
    /// Dot product.
    Dot,
}

/// Rows of queries scored per GEMM call.
const QUERY_BLOCK: usize = 1024;

/// Best `k` hits per query: `(ids, scores)`, each `(n_queries, min(k, n_corpus))`, best first.
///
/// The corpus is scored `corpus_block` rows at a time (a GEMM through the `gemm` crate), so extra memory is
/// bounded by `min(n_queries, 1024) x corpus_block` scores. With `exclude_self`, query i never matches corpus
/// row i (a set searched against itself); such rows pad with id -1 / score -inf when k exceeds the candidates.
///
/// Large searches on CPUs with AVX512-BF16 pick candidates in bf16 and rescore them in fp32 (same result);
/// `force_fp32` turns that pass off (for benchmarks and checks). `cancel` is checked between blocks.
#[allow(clippy::too_many_arguments)]
pub fn topk_search(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    exclude_self: bool,
    force_fp32: bool,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    check_same_size(
        "query and corpus embeddings must have the same dimension",
        queries.ncols(),
        corpus.ncols(),
    )?;
    if corpus_block == 0 {
        return Err(invalid("corpus_chunk_size must be >= 1, got 0"));
    }
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let k = k.min(nc);
    if nq == 0 || k == 0 {
        return Ok(TopKState::new(nq, k).finish());
    }
    let queries = match score {
        TopKScore::Cosine => {
            let mut q = queries.to_owned();
            normalize_rows(&mut q);
            q
        }
        TopKScore::Dot => queries.to_owned(),
    };
    let macs = nq.saturating_mul(nc).saturating_mul(queries.ncols());
    if !exclude_self && !force_fp32 && macs >= BF16_MIN_MACS && bf16::supported() {
        return topk_bf16_probed(queries.view(), corpus, k, score, corpus_block, cancel);
    }
    topk_fp32(
        queries.view(),
        corpus,
        k,
        score,
        corpus_block,
        exclude_self,
        cancel,
    )
}

/// Work (query x corpus x dimension multiply-adds) from which the bf16 candidate search pays off.
const BF16_MIN_MACS: usize = 1 << 26;
/// Corpus rows packed and scanned at a time by the bf16 pass (their packed bf16 stays in the L2 cache).
const BF16_BLOCK: usize = 2048;
/// Candidates kept per query beyond `k` by the bf16 pass, for the fp32 rescoring.
const BF16_EXTRA: usize = 32;

/// The fp32 search: a GEMM per block and the running top-k. `queries` are already normalised for cosine.
fn topk_fp32(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    exclude_self: bool,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    let (nq, nc) = (queries.nrows(), corpus.nrows());
    let mut state = TopKState::new(nq, k);
    for q0 in (0..nq).step_by(QUERY_BLOCK) {
        let q = queries.slice(s![q0..(q0 + QUERY_BLOCK).min(nq), ..]);
        for c0 in (0..nc).step_by(corpus_block) {
            cancel.check()?;
            let block = corpus.slice(s![c0..(c0 + corpus_block).min(nc), ..]);
            let block_scores = matmul_nt(q, block)?;
            let inverse_norms: Option<Array1<f32>> =
                (score == TopKScore::Cosine).then(|| row_norms(block).mapv(|n| 1.0 / n));
            state.push_block(
                block_scores.view(),
                q0,
                c0,
                inverse_norms.as_ref().map(|a| a.view()),
                exclude_self,
            )?;
        }
    }
    Ok(state.finish())
}

/// Queries searched first through the bf16 pass, to learn whether it pays off on this data.
const BF16_PROBE: usize = 256;

/// The bf16-rescored search, unless a probe shows it does not pay off: on tightly clustered embeddings (scores
/// that differ by less than the bf16 error near the k-th hit) most queries cannot be proven exact from their bf16
/// candidates and are searched again in fp32, which costs more than fp32 alone. The first [`BF16_PROBE`] queries
/// go through the bf16 pass; if more than a quarter of them needed the fp32 search, the rest go straight to fp32.
/// Either way the result is exact.
fn topk_bf16_probed(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    let nq = queries.nrows();
    if nq < 2 * BF16_PROBE {
        return topk_bf16_rescored(queries, corpus, k, score, corpus_block, cancel);
    }
    let (probe_ids, probe_scores, unproven) = bf16_pass(
        queries.slice(s![..BF16_PROBE, ..]),
        corpus,
        k,
        score,
        corpus_block,
        cancel,
    )?;
    let rest = queries.slice(s![BF16_PROBE.., ..]);
    let (rest_ids, rest_scores) = if unproven * 4 > BF16_PROBE {
        topk_fp32(rest, corpus, k, score, corpus_block, false, cancel)?
    } else {
        topk_bf16_rescored(rest, corpus, k, score, corpus_block, cancel)?
    };
    let width_error =
        |e: ndarray::ShapeError| invalid(format!("top-k results of different widths: {e}"));
    let ids = ndarray::concatenate(ndarray::Axis(0), &[probe_ids.view(), rest_ids.view()])
        .map_err(width_error)?;
    let scores = ndarray::concatenate(ndarray::Axis(0), &[probe_scores.view(), rest_scores.view()])
        .map_err(width_error)?;
    Ok((ids, scores))
}

/// Exact top-k through a bf16 candidate pass: the best `k + BF16_EXTRA` rows per query by bf16 scores, rescored
/// in fp32. A bf16 score is within `err = (2^-8 + d 2^-23) |q| |c|` of the fp32 one, so when the last kept
/// candidate scores below the k-th by more than `2 err`, every row left out scores below the true k-th in fp32 and
/// the rescored candidates hold the exact answer. Queries where that is not proven are searched again in fp32.
fn topk_bf16_rescored(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    bf16_pass(queries, corpus, k, score, corpus_block, cancel).map(|(ids, scores, _)| (ids, scores))
}

/// [`topk_bf16_rescored`], also returning how many queries had to be searched again in fp32.
fn bf16_pass(
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>, usize)> {
    let (nq, nc, d) = (queries.nrows(), corpus.nrows(), queries.ncols());
    let kept = (k + BF16_EXTRA).min(nc);
    let mut approx = TopKState::new(nq, kept);
    let mut inverse_norms = Array1::<f32>::zeros(nc);
    let mut max_norm = 0f32;
    for c0 in (0..nc).step_by(corpus_block) {
        let block = corpus.slice(s![c0..(c0 + corpus_block).min(nc), ..]);
        let norms = row_norms(block);
        max_norm = norms.iter().fold(max_norm, |m, &n| m.max(n));
        inverse_norms
            .slice_mut(s![c0..c0 + block.nrows()])
            .assign(&norms.mapv(|n| 1.0 / n));
    }
    let packed = bf16::PackedQueries::new(queries);
    let step = corpus_block.min(BF16_BLOCK);
    for c0 in (0..nc).step_by(step) {
        cancel.check()?;
        let c1 = (c0 + step).min(nc);
        let scale = (score == TopKScore::Cosine).then(|| inverse_norms.slice(s![c0..c1]));
        bf16::search_block(
            &packed,
            corpus.slice(s![c0..c1, ..]),
            c0,
            scale,
            &mut approx.heaps,
            kept,
        );
    }
    let (cand_ids, cand_scores) = approx.finish();
    let relative = 2f32.powi(-8) + d as f32 * 2f32.powi(-23) + 2f32.powi(-20);
    let mut ids = Array2::<i64>::from_elem((nq, k), -1);
    let mut scores = Array2::<f32>::from_elem((nq, k), f32::NEG_INFINITY);
    let rescore = |i: usize| -> Option<Vec<Hit>> {
        let q = queries.row(i);
        let q_norm = q.dot(&q).sqrt();
        let err = relative
            * match score {
                TopKScore::Cosine => q_norm,
                TopKScore::Dot => q_norm * max_norm,
            };
        let full = kept < nc && cand_ids[[i, kept - 1]] >= 0;
        if full
            && (cand_scores[[i, kept - 1]] >= cand_scores[[i, k - 1]] - 2.0 * err
                || !err.is_finite())
        {
            return None;
        }
        let mut hits: Vec<Hit> = cand_ids
            .row(i)
            .iter()
            .filter(|&&id| id >= 0)
            .map(|&id| {
                let j = id as usize;
                // f64 accumulation: the correctly rounded dot product, whatever the summation order elsewhere.
                let exact: f64 = q
                    .iter()
                    .zip(corpus.row(j).iter())
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let mut value = exact as f32;
                if score == TopKScore::Cosine {
                    value *= inverse_norms[j];
                }
                Hit {
                    score: rank_key(value),
                    index: j,
                }
            })
            .collect();
        hits.sort();
        hits.truncate(k);
        Some(hits)
    };
    let rescored: Vec<Option<Vec<Hit>>> = if parallel::parallel_enabled() && nq > 1 {
        parallel::install(|| (0..nq).into_par_iter().map(rescore).collect())
    } else {
        (0..nq).map(rescore).collect()
    };
    let mut unproven = Vec::new();
    for (i, hits) in rescored.into_iter().enumerate() {
        match hits {
            Some(hits) => {
                for (rank, hit) in hits.into_iter().enumerate() {
                    ids[[i, rank]] = hit.index as i64;
                    scores[[i, rank]] = hit.score;
                }
            }
            None => unproven.push(i),
        }
    }
    if !unproven.is_empty() {
        let subset = queries.select(ndarray::Axis(0), &unproven);
        let (sub_ids, sub_scores) =
            topk_fp32(subset.view(), corpus, k, score, corpus_block, false, cancel)?;
        for (r, &i) in unproven.iter().enumerate() {
            ids.row_mut(i).assign(&sub_ids.row(r));
            scores.row_mut(i).assign(&sub_scores.row(r));
        }
    }
    let n_unproven = unproven.len();
    Ok((ids, scores, n_unproven))
}

/// Rows per block of [`topk_self_search`].
const SELF_BLOCK: usize = 1024;

/// Best `k` other rows for every row of `x` (a set searched against itself, row i never matching itself).
///
/// Scores are symmetric, so only blocks on and above the diagonal are multiplied; each off-diagonal block feeds
/// both its rows and, transposed, its columns. Half the GEMM work of [`topk_search`] with `exclude_self`, same
/// result (hits are ordered by score, then lower index, whatever order they arrive in). `cancel` is checked
/// between blocks.
pub fn topk_self_search(
    x: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    let n = x.nrows();
    let k = k.min(n.saturating_sub(1));
    let mut state = TopKState::new(n, k);
    if n == 0 || k == 0 {
        return Ok(state.finish());
    }
    let x = match score {
        TopKScore::Cosine => {
            let mut unit = x.to_owned();
            normalize_rows(&mut unit);
            unit
        }
        TopKScore::Dot => x.to_owned(),
    };
    for i0 in (0..n).step_by(SELF_BLOCK) {
        let rows = x.slice(s![i0..(i0 + SELF_BLOCK).min(n), ..]);
        for j0 in (i0..n).step_by(SELF_BLOCK) {
            cancel.check()?;
            let cols = x.slice(s![j0..(j0 + SELF_BLOCK).min(n), ..]);
            let block = matmul_nt(rows, cols)?;
            state.push_block(block.view(), i0, j0, None, true)?;
            if j0 != i0 {
                state.push_block(block.t(), j0, i0, None, true)?;
            }
        }
    }
    Ok(state.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::similarity::{similarity_matrix, Similarity};

    /// [`topk_search`] with the bf16 pass allowed and no cancellation.
    fn search(
        q: ArrayView2<f32>,
        c: ArrayView2<f32>,
        k: usize,
        score: TopKScore,
        block: usize,
        exclude_self: bool,
    ) -> CoreResult<(Array2<i64>, Array2<f32>)> {
        topk_search(q, c, k, score, block, exclude_self, false, &Cancel::new())
    }
    use proptest::prelude::*;

    fn naive(
        q: &Array2<f32>,
        c: &Array2<f32>,
        k: usize,
        score: TopKScore,
    ) -> Vec<Vec<(usize, f32)>> {
        let sim = if score == TopKScore::Cosine {
            Similarity::Cosine
        } else {
            Similarity::Dot
        };
        let m = similarity_matrix(q.view(), c.view(), sim).unwrap();
        m.rows()
            .into_iter()
            .map(|row| {
                let mut v: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
                v.sort_by(|a, b| rank_key(b.1).total_cmp(&rank_key(a.1)).then(a.0.cmp(&b.0)));
                v.truncate(k);
                v
            })
            .collect()
    }

    #[test]
    fn ties_break_by_lower_index() {
        let q = Array2::from_elem((1, 2), 1.0f32);
        let c = Array2::from_elem((5, 2), 1.0f32);
        let (ids, _) = search(q.view(), c.view(), 3, TopKScore::Dot, 2, false).unwrap();
        assert_eq!(ids.row(0).to_vec(), vec![0, 1, 2]);
    }

    #[test]
    fn search_excluding_self() {
        let x = ndarray::array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0]];
        let (ids, _) = search(x.view(), x.view(), 2, TopKScore::Cosine, 2, true).unwrap();
        assert_eq!(ids, ndarray::array![[1i64, 2], [0, 2], [1, 0]]);
        let (short, scores) = search(x.view(), x.view(), 3, TopKScore::Dot, 8, true).unwrap();
        assert_eq!(short[[0, 2]], -1);
        assert_eq!(scores[[0, 2]], f32::NEG_INFINITY);
    }

    proptest! {
        #[test]
        fn self_search_matches_exclude_self(n in 1usize..40, d in 1usize..6, k in 1usize..12, cosine in any::<bool>(),
                                            vals in proptest::collection::vec(-3i8..4, 40 * 6)) {
            let x = Array2::from_shape_fn((n, d), |(i, j)| f32::from(vals[i * 6 + j]));
            let score = if cosine { TopKScore::Cosine } else { TopKScore::Dot };
            let (ids, scores) = topk_self_search(x.view(), k, score, &Cancel::new()).unwrap();
            let (want_ids, want_scores) = search(x.view(), x.view(), k.min(n - 1), score, 7, true).unwrap();
            prop_assert_eq!(ids.dim(), want_ids.dim());
            for (a, b) in scores.iter().zip(want_scores.iter()) {
                prop_assert!((a - b).abs() <= 1e-5);
            }
            if !cosine { prop_assert_eq!(ids, want_ids); }
        }
    }

    #[test]
    fn self_search_across_blocks() {
        let n = SELF_BLOCK + 300;
        let x = Array2::from_shape_fn((n, 8), |(i, j)| ((i * 31 + j * 7) % 17) as f32 - 8.0);
        let (ids, _) = topk_self_search(x.view(), 5, TopKScore::Dot, &Cancel::new()).unwrap();
        let (want, _) = search(x.view(), x.view(), 5, TopKScore::Dot, 512, true).unwrap();
        assert_eq!(ids, want);
    }

    #[test]
    fn edge_cases() {
        let q = Array2::from_elem((2, 3), 1.0f32);
        let c = Array2::from_elem((4, 3), 1.0f32);
        let ids_dim = |c: &Array2<f32>, k, score| {
            let (ids, _) = search(q.view(), c.view(), k, score, 3, false).unwrap();
            ids.dim()
        };
        assert_eq!(ids_dim(&c, 10, TopKScore::Dot), (2, 4));
        assert_eq!(ids_dim(&c, 0, TopKScore::Dot), (2, 0));
        let empty = Array2::<f32>::zeros((0, 3));
        assert_eq!(ids_dim(&empty, 5, TopKScore::Cosine), (2, 0));
        let bad = Array2::<f32>::zeros((4, 2));
        assert!(search(q.view(), bad.view(), 1, TopKScore::Dot, 3, false).is_err());
        assert!(search(q.view(), c.view(), 1, TopKScore::Dot, 0, false).is_err());
    }

    #[test]
    fn force_fp32_takes_the_fp32_path_on_large_searches() {
        // 64 x 16384 x 64 = 2^26 multiply-adds: large enough for the bf16 pass where the CPU has it.
        let (nq, nc, d) = (64, 1 << 14, 64);
        let q = Array2::from_shape_fn((nq, d), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 / 7.0 - 1.5
        });
        let c = Array2::from_shape_fn((nc, d), |(i, j)| {
            ((i * 13 + j * 29) % 19) as f32 / 5.0 - 1.8
        });
        let cancel = Cancel::new();
        let forced = topk_search(
            q.view(),
            c.view(),
            5,
            TopKScore::Dot,
            4096,
            false,
            true,
            &cancel,
        )
        .unwrap();
        let fp32 = topk_fp32(q.view(), c.view(), 5, TopKScore::Dot, 4096, false, &cancel).unwrap();
        assert_eq!(forced, fp32);
    }

    #[test]
    fn clustered_embeddings_fall_back_to_fp32_with_the_same_result() {
        // Every row near one direction: scores within the bf16 error of each other, so the probe sends the
        // remaining queries to fp32. The answer must be the fp32 one either way.
        let (nq, nc, d) = (2 * BF16_PROBE + 37, 2048, 64);
        let wobble = |i: usize, j: usize, m: usize| ((i * m + j * 7) % 101) as f32 / 101.0 - 0.5;
        let q = Array2::from_shape_fn((nq, d), |(i, j)| 1.0 + 0.01 * wobble(i, j, 31));
        let c = Array2::from_shape_fn((nc, d), |(i, j)| 1.0 + 0.01 * wobble(i, j, 13));
        let cancel = Cancel::new();
        for score in [TopKScore::Cosine, TopKScore::Dot] {
            let (ids, scores) =
                topk_search(q.view(), c.view(), 10, score, 512, false, false, &cancel).unwrap();
            let mut qn = q.clone();
            if score == TopKScore::Cosine {
                normalize_rows(&mut qn);
            }
            let (want_ids, want_scores) =
                topk_fp32(qn.view(), c.view(), 10, score, 512, false, &cancel).unwrap();
            assert_eq!(ids.dim(), want_ids.dim());
            for i in 0..nq {
                for r in 0..10 {
                    let (a, b) = (scores[[i, r]], want_scores[[i, r]]);
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn a_cancelled_search_stops_with_an_error() {
        let x = Array2::from_elem((3, 2), 1.0f32);
        let cancel = Cancel::new();
        cancel.cancel();
        let searched = topk_search(
            x.view(),
            x.view(),
            1,
            TopKScore::Dot,
            2,
            false,
            true,
            &cancel,
        );
        assert!(matches!(searched, Err(CoreError::Cancelled)));
        let self_searched = topk_self_search(x.view(), 1, TopKScore::Dot, &cancel);
        assert!(matches!(self_searched, Err(CoreError::Cancelled)));
    }

    proptest! {
        #[test]
        fn matches_full_sort(nq in 1usize..30, nc in 1usize..200, d in 1usize..8, k in 1usize..20,
                             block in 1usize..64, cosine in any::<bool>(),
                             vals in proptest::collection::vec(-4i8..4, 230 * 8)) {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| f32::from(vals[i * 8 + j]));
            let c = Array2::from_shape_fn((nc, d), |(i, j)| f32::from(vals[(30 + i) * 8 + j]) * 0.5);
            let score = if cosine { TopKScore::Cosine } else { TopKScore::Dot };
            let (ids, scores) = search(q.view(), c.view(), k, score, block, false).unwrap();
            let want = naive(&q, &c, k, score);
            let sim = if cosine { Similarity::Cosine } else { Similarity::Dot };
            let full = similarity_matrix(q.view(), c.view(), sim).unwrap();
            for i in 0..nq {
                for (rank, &(_, s)) in want[i].iter().enumerate() {
                    prop_assert!((scores[[i, rank]] - s).abs() <= 1e-5);
                    // Near-ties may swap places; the returned id must carry the expected score.
                    let got = ids[[i, rank]] as usize;
                    prop_assert!((full[[i, got]] - s).abs() <= 1e-5);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn bf16_candidates_rescored_equal_fp32(nq in 1usize..20, nc in 1usize..300, d in 1usize..40,
                                               k in 1usize..12, cosine in any::<bool>(), block in 1usize..70,
                                               seed in 0u64..1000) {
            if bf16::supported() {
                let q = Array2::from_shape_fn((nq, d), |(i, j)| (((i * 31 + j * 17) as u64 + seed) % 23) as f32 / 7.0 - 1.5);
                let c = Array2::from_shape_fn((nc, d), |(i, j)| (((i * 13 + j * 29) as u64 + seed * 3) % 19) as f32 / 5.0 - 1.8);
                let score = if cosine { TopKScore::Cosine } else { TopKScore::Dot };
                let mut qn = q.clone();
                if cosine {
                    normalize_rows(&mut qn);
                }
                let k = k.min(nc);
                let (ids_a, sc_a) = topk_bf16_rescored(qn.view(), c.view(), k, score, block, &Cancel::new()).unwrap();
                let (ids_b, sc_b) = topk_fp32(qn.view(), c.view(), k, score, block, false, &Cancel::new()).unwrap();
                for i in 0..nq {
                    for r in 0..k {
                        prop_assert!((sc_a[[i, r]] - sc_b[[i, r]]).abs() <= 1e-5, "score {} vs {}", sc_a[[i, r]], sc_b[[i, r]]);
                        if ids_a[[i, r]] != ids_b[[i, r]] {
                            // Only a near-tie (summation order) may swap two rows.
                            let j = ids_a[[i, r]] as usize;
                            let other = ids_b[[i, r]] as usize;
                            let dot = |x: usize| -> f32 { (0..d).map(|t| qn[[i, t]] * c[[x, t]]).sum() };
                            prop_assert!((dot(j) - dot(other)).abs() <= 1e-4 * (1.0 + dot(j).abs()));
                        }
                    }
                }
            }
        }
    }
}
