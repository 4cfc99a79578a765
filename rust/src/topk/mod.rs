//! Exact top-k search without materialising the full query x corpus score matrix.
//!
//! Queries are scored against the corpus one block of rows at a time (a GEMM per block); each query keeps a
//! bounded heap of its best `k` hits. Peak extra memory is `queries_in_flight x block` scores, whatever the
//! corpus size. Ties break by the lower corpus index, so results are deterministic.
//!
//! Layout: this module holds the search entry points and the fp32 and bf16-rescored passes; [`hits`] the hits and
//! the running selection both passes feed; [`bf16`] the bf16 candidate scan. Neither of those imports this module.

pub mod bf16;
pub mod fused;
pub mod hits;

use crate::cancel::Cancel;
use crate::error::{check_same_size, invalid, CoreResult};
use crate::parallel;
use crate::pooling::normalize_rows;
use crate::simd::{self, Level};
use crate::similarity::{matmul_nt, row_norms};
use hits::{rank_key, Hit, TopKState};
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};
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
/// The corpus is scored `corpus_block` rows at a time, so extra memory is bounded by
/// `min(n_queries, 1024) x corpus_block` scores. With `exclude_self`, query i never matches corpus row i (a set
/// searched against itself); such rows pad with id -1 / score -inf when k exceeds the candidates.
///
/// Runs at the active SIMD level ([`simd::active`]); see [`topk_search_at`]. `cancel` is checked between blocks.
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
    topk_search_at(
        simd::active(),
        queries,
        corpus,
        k,
        score,
        corpus_block,
        exclude_self,
        force_fp32,
        cancel,
    )
}

/// [`topk_search`] at SIMD level `level` (capped at what this CPU runs).
///
/// Large searches first pick candidates in a cheaper precision and rescore them in fp32 with a proof that no other
/// row can enter the top k (same result as fp32): int16 codes from the AVX2 level (AVX-VNNI where the level and CPU
/// allow, preferred to bf16), bf16 at the AVX-512 level on CPUs with AVX512-BF16 but no AVX-VNNI. The fp32 scoring
/// is the fused kernels of [`fused`] (AVX2 + FMA from the AVX2 level up, portable code at the scalar level).
/// `force_fp32` turns the candidate pass off (for benchmarks and checks).
#[allow(clippy::too_many_arguments)]
pub fn topk_search_at(
    level: Level,
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
    let level = level.min(simd::detected());
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
    if let Ok(mut p) = LAST_PASS.lock() {
        *p = ("none", 0, 0);
    }
    if !exclude_self && !force_fp32 && macs >= CANDIDATE_MIN_MACS {
        if let Some(pass) = Candidates::at(level) {
            let search = Search {
                level,
                corpus,
                k,
                score,
                corpus_block,
                cancel,
            };
            return search.probed(pass, queries.view());
        }
    }
    fp32_at(
        level,
        queries.view(),
        corpus,
        k,
        score,
        corpus_block,
        exclude_self,
        cancel,
    )
}

/// Work (query x corpus x dimension multiply-adds) from which a candidate pass pays off.
const CANDIDATE_MIN_MACS: usize = 1 << 26;
/// Corpus rows packed and scanned at a time by the bf16 pass (their packed bf16 stays in the L2 cache).
const BF16_BLOCK: usize = 2048;
/// Candidates kept per query beyond `k` by a candidate pass, for the fp32 rescoring.
const CANDIDATE_EXTRA: usize = 32;

/// The fp32 search at `level` through the fused kernels (the `gemm` crate only for zero-dimensional rows).
/// `queries` are already normalised for cosine.
#[allow(clippy::too_many_arguments)]
fn fp32_at(
    level: Level,
    queries: ArrayView2<f32>,
    corpus: ArrayView2<f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    exclude_self: bool,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    // Zero-dimensional rows score 0 everywhere; the fused kernels need at least one word per row.
    if queries.ncols() == 0 {
        return topk_fp32(
            queries,
            corpus,
            k,
            score,
            corpus_block,
            exclude_self,
            cancel,
        );
    }
    let kernel = match level {
        // Measured on a 2-vCPU Sapphire Rapids: the fused AVX2 kernel (160 GFLOP/s, no score block written) beats
        // the AVX-512 GEMM of the `gemm` crate plus the running selection (110 GFLOP/s).
        Level::Avx512 | Level::Avx2 | Level::Avx2Vnni => fused::F32Kernel::Avx2,
        Level::Scalar => fused::F32Kernel::Portable,
    };
    topk_fp32_fused(
        kernel,
        queries,
        corpus,
        k,
        score,
        corpus_block,
        exclude_self,
        cancel,
    )
}

/// The fp32 search through the fused kernels of [`fused`] (no score block is materialised).
#[allow(clippy::too_many_arguments)]
fn topk_fp32_fused(
    kernel: fused::F32Kernel,
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
    let packed = fused::F32Queries::new(queries);
    let step = corpus_block.min(fused::block_rows(queries.ncols()));
    state.heaps = fused::scan_blocks(nq, nc, step, k, cancel, |c0, c1, heaps, parallel| {
        let block = corpus.slice(s![c0..c1, ..]);
        let inverse_norms: Option<Array1<f32>> =
            (score == TopKScore::Cosine).then(|| row_norms(block).mapv(|n| 1.0 / n));
        fused::scan_f32(
            kernel,
            &packed,
            block,
            c0,
            inverse_norms.as_ref().map(|a| a.view()),
            exclude_self,
            heaps,
            k,
            parallel,
        );
    })?;
    Ok(state.finish())
}

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

static LAST_PASS: std::sync::Mutex<(&str, usize, usize)> = std::sync::Mutex::new(("none", 0, 0));

/// How the last search of the process ran: the candidate pass (`bf16`, `int16`, `int16-vnni`, or `none` for fp32
/// only), how many queries went through it and how many of those it could not prove (searched again in fp32). For
/// tests and benchmarks (concurrent searches overwrite each other's record).
pub fn last_pass() -> (&'static str, usize, usize) {
    LAST_PASS.lock().map(|p| *p).unwrap_or(("none", 0, 0))
}

fn record_pass(name: &'static str, queries: usize, unproven: usize) {
    if let Ok(mut p) = LAST_PASS.lock() {
        let (old, q, u) = *p;
        *p = if old == name {
            (name, q + queries, u + unproven)
        } else {
            (name, queries, unproven)
        };
    }
}

/// A candidate pass: how a large search picks candidates before rescoring them in fp32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidates {
    /// bf16 products (AVX512-BF16).
    Bf16,
    /// int16 codes ([`fused::scan_i16`]).
    I16(fused::I16Kernel),
}

impl Candidates {
    fn name(self) -> &'static str {
        match self {
            Candidates::Bf16 => "bf16",
            Candidates::I16(fused::I16Kernel::Avx2) => "int16",
            Candidates::I16(fused::I16Kernel::AvxVnni) => "int16-vnni",
        }
    }

    /// The pass a search runs at `level` on this CPU, if any.
    fn at(level: Level) -> Option<Candidates> {
        // AVX-VNNI int16 first where the CPU has it: on a Sapphire Rapids (which also has AVX512-BF16) it ran at
        // 215 GFLOP/s-equivalent where the bf16 pass managed 108; bf16 is for AVX-512 CPUs without AVX-VNNI
        // (Zen 4: 3.4x the reference at 1M rows).
        if level >= Level::Avx2Vnni && fused::i16_supported(fused::I16Kernel::AvxVnni) {
            Some(Candidates::I16(fused::I16Kernel::AvxVnni))
        } else if level >= Level::Avx512 && bf16::cpu_supported() {
            Some(Candidates::Bf16)
        } else if level >= Level::Avx2 && fused::i16_supported(fused::I16Kernel::Avx2) {
            Some(Candidates::I16(fused::I16Kernel::Avx2))
        } else {
            None
        }
    }
}

/// Queries searched first through a candidate pass, to learn whether it pays off on this data.
const PROBE: usize = 256;

/// The parts of a search that stay the same across its passes.
struct Search<'a> {
    level: Level,
    corpus: ArrayView2<'a, f32>,
    k: usize,
    score: TopKScore,
    corpus_block: usize,
    cancel: &'a Cancel,
}

impl Search<'_> {
    fn fp32(&self, queries: ArrayView2<f32>) -> CoreResult<(Array2<i64>, Array2<f32>)> {
        fp32_at(
            self.level,
            queries,
            self.corpus,
            self.k,
            self.score,
            self.corpus_block,
            false,
            self.cancel,
        )
    }

    /// The candidate search, unless a probe shows it does not pay off: on tightly clustered embeddings (scores that
    /// differ by less than the candidate error near the k-th hit) most queries cannot be proven exact from their
    /// candidates and are searched again in fp32, which costs more than fp32 alone. The first [`PROBE`] queries go
    /// through the candidate pass; if more than a quarter of them needed the fp32 search, the rest go straight to
    /// fp32. Either way the result is exact.
    fn probed(
        &self,
        pass: Candidates,
        queries: ArrayView2<f32>,
    ) -> CoreResult<(Array2<i64>, Array2<f32>)> {
        let nq = queries.nrows();
        if nq < 2 * PROBE {
            return self
                .rescored(pass, queries)
                .map(|(ids, scores, _)| (ids, scores));
        }
        let (probe_ids, probe_scores, unproven) =
            self.rescored(pass, queries.slice(s![..PROBE, ..]))?;
        let rest = queries.slice(s![PROBE.., ..]);
        let (rest_ids, rest_scores) = if unproven * 4 > PROBE {
            self.fp32(rest)?
        } else {
            let (ids, scores, _) = self.rescored(pass, rest)?;
            (ids, scores)
        };
        let width_error =
            |e: ndarray::ShapeError| invalid(format!("top-k results of different widths: {e}"));
        let ids = ndarray::concatenate(ndarray::Axis(0), &[probe_ids.view(), rest_ids.view()])
            .map_err(width_error)?;
        let scores =
            ndarray::concatenate(ndarray::Axis(0), &[probe_scores.view(), rest_scores.view()])
                .map_err(width_error)?;
        Ok((ids, scores))
    }

    /// Exact top-k through a candidate pass: the best `k + CANDIDATE_EXTRA` rows per query by approximate score,
    /// rescored in fp32. Each approximate score is within a bound `err` of the exact one (bf16:
    /// `(2^-8 + d 2^-23) |q| |c|`; int16: [`fused::I16Queries::error_bound`]), so when the last kept candidate
    /// scores below the k-th by more than `2 err`, every row left out scores below the true k-th and the rescored
    /// candidates hold the exact answer. Queries where that is not proven are searched again in fp32; returns how
    /// many. Corpora with non-finite values skip the int16 pass (fp32 throughout).
    fn rescored(
        &self,
        pass: Candidates,
        queries: ArrayView2<f32>,
    ) -> CoreResult<(Array2<i64>, Array2<f32>, usize)> {
        let (corpus, k, score) = (self.corpus, self.k, self.score);
        let (nq, nc, d) = (queries.nrows(), corpus.nrows(), queries.ncols());
        let kept = (k + CANDIDATE_EXTRA).min(nc);
        let stats = CorpusStats::new(corpus, score, fused::i16_levels(d));
        if matches!(pass, Candidates::I16(_))
            && !(stats.finite && queries.iter().all(|v| v.is_finite()))
        {
            let (ids, scores) = self.fp32(queries)?;
            return Ok((ids, scores, 0));
        }
        let mut approx = TopKState::new(nq, kept);
        let scale_of = |c0: usize, c1: usize| {
            (score == TopKScore::Cosine).then(|| stats.inverse_norms.slice(s![c0..c1]))
        };
        let errors: Vec<f32> = match pass {
            Candidates::Bf16 => {
                let packed = bf16::PackedQueries::new(queries);
                let step = self.corpus_block.min(BF16_BLOCK);
                for c0 in (0..nc).step_by(step) {
                    self.cancel.check()?;
                    let c1 = (c0 + step).min(nc);
                    let block = corpus.slice(s![c0..c1, ..]);
                    bf16::search_block(
                        &packed,
                        block,
                        c0,
                        scale_of(c0, c1),
                        &mut approx.heaps,
                        kept,
                    );
                }
                let relative = 2f32.powi(-8) + d as f32 * 2f32.powi(-23) + 2f32.powi(-20);
                queries
                    .rows()
                    .into_iter()
                    .map(|q| {
                        let q_norm = q.dot(&q).sqrt();
                        relative
                            * match score {
                                TopKScore::Cosine => q_norm,
                                TopKScore::Dot => q_norm * stats.max_norm,
                            }
                    })
                    .collect()
            }
            Candidates::I16(kernel) => {
                let packed = fused::I16Queries::new(queries);
                let step = self.corpus_block.min(fused::block_rows(d.div_ceil(2)));
                approx.heaps = fused::scan_blocks(
                    nq,
                    nc,
                    step,
                    kept,
                    self.cancel,
                    |c0, c1, heaps, parallel| {
                        let block = corpus.slice(s![c0..c1, ..]);
                        fused::scan_i16(
                            kernel,
                            &packed,
                            block,
                            c0,
                            scale_of(c0, c1),
                            heaps,
                            kept,
                            parallel,
                        );
                    },
                )?;
                // Largest |c| g over rows: 1 for cosine, the largest norm for dot products.
                let row_size = match score {
                    TopKScore::Cosine => 1.0,
                    TopKScore::Dot => f64::from(stats.max_norm),
                };
                queries
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(i, q)| {
                        let bound = packed.error_bound(i, stats.max_scale, stats.max_l1);
                        let q_norm = f64::from(q.dot(&q).sqrt());
                        // The fp32 products of the scan: a few roundings of a score at most |q| |c| g + bound.
                        (bound + 2f64.powi(-20) * (q_norm * row_size + bound)) as f32
                    })
                    .collect()
            }
        };
        let (cand_ids, cand_scores) = approx.finish();
        let mut ids = Array2::<i64>::from_elem((nq, k), -1);
        let mut scores = Array2::<f32>::from_elem((nq, k), f32::NEG_INFINITY);
        let rescore = |i: usize| -> Option<Vec<Hit>> {
            let q = queries.row(i);
            let err = errors[i];
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
                        value *= stats.inverse_norms[j];
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
            let (sub_ids, sub_scores) = self.fp32(subset.view())?;
            for (r, &i) in unproven.iter().enumerate() {
                ids.row_mut(i).assign(&sub_ids.row(r));
                scores.row_mut(i).assign(&sub_scores.row(r));
            }
        }
        record_pass(pass.name(), nq, unproven.len());
        Ok((ids, scores, unproven.len()))
    }
}

/// What a candidate pass needs to know about the corpus: inverse norms and, for the int16 bound, the maxima over
/// rows of `s_c g` and `|c|_1 g` (`g`: the row's score factor).
struct CorpusStats {
    inverse_norms: Array1<f32>,
    max_norm: f32,
    max_scale: f64,
    max_l1: f64,
    finite: bool,
}

impl CorpusStats {
    fn new(corpus: ArrayView2<f32>, score: TopKScore, levels: f32) -> Self {
        let row = |r: ArrayView1<f32>| -> (f32, f64, f64, bool) {
            // Eight lanes each (vectorised); the l1 sum's rounding is covered below.
            let (mut max, mut l1) = ([0f32; 8], [0f32; 8]);
            let values: std::borrow::Cow<[f32]> =
                r.as_slice().map_or_else(|| r.to_vec().into(), Into::into);
            let chunks = values.chunks_exact(8);
            let tail = chunks.remainder();
            for chunk in chunks {
                for ((m, s), &v) in max.iter_mut().zip(l1.iter_mut()).zip(chunk) {
                    *m = m.max(v.abs());
                    *s += v.abs();
                }
            }
            for (i, &v) in tail.iter().enumerate() {
                max[i] = max[i].max(v.abs());
                l1[i] += v.abs();
            }
            // A NaN or an infinity makes the l1 sums non-finite.
            let finite = l1.iter().all(|v| v.is_finite());
            let max = max.iter().fold(0f32, |m, &v| m.max(v));
            let l1: f64 = l1.iter().map(|&v| f64::from(v)).sum();
            // As `row_norms` computes it, so both passes scale cosine scores alike.
            let norm = r.dot(&r).sqrt().max(1e-12);
            (norm, f64::from(max), l1, finite)
        };
        let rows: Vec<(f32, f64, f64, bool)> =
            if parallel::parallel_enabled() && corpus.nrows() > 4096 {
                parallel::install(|| {
                    corpus
                        .axis_iter(ndarray::Axis(0))
                        .into_par_iter()
                        .map(row)
                        .collect()
                })
            } else {
                corpus.rows().into_iter().map(row).collect()
            };
        let mut stats = CorpusStats {
            inverse_norms: Array1::zeros(rows.len()),
            max_norm: 0.0,
            max_scale: 0.0,
            max_l1: 0.0,
            finite: true,
        };
        for (r, &(norm, max, l1, finite)) in rows.iter().enumerate() {
            let inverse = 1.0 / norm;
            stats.inverse_norms[r] = inverse;
            stats.max_norm = stats.max_norm.max(norm);
            let g = match score {
                TopKScore::Cosine => f64::from(inverse),
                TopKScore::Dot => 1.0,
            };
            stats.max_scale = stats.max_scale.max(max / f64::from(levels) * g);
            stats.max_l1 = stats.max_l1.max(l1 * g);
            stats.finite &= finite;
        }
        // The fp32 inverse norms and scales the scan uses differ from these by a few roundings, and an fp32 sum of
        // d / 8 terms per lane is within (d / 8 + 8) 2^-24 of the exact one.
        let d = corpus.ncols() as f64;
        stats.max_scale *= 1.0 + 1e-5;
        stats.max_l1 *= 1.0 + 1e-5 + (d / 8.0 + 8.0) * 2f64.powi(-23);
        stats
    }
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
        let (nq, nc, d) = (2 * PROBE + 37, 2048, 64);
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

    /// Every candidate pass this CPU runs.
    fn passes() -> Vec<Candidates> {
        let mut passes = Vec::new();
        if bf16::cpu_supported() {
            passes.push(Candidates::Bf16);
        }
        for kernel in [fused::I16Kernel::Avx2, fused::I16Kernel::AvxVnni] {
            if fused::i16_supported(kernel) {
                passes.push(Candidates::I16(kernel));
            }
        }
        passes
    }

    proptest! {
        #[test]
        fn candidates_rescored_equal_fp32(nq in 1usize..20, nc in 1usize..300, d in 1usize..40,
                                          k in 1usize..12, cosine in any::<bool>(), block in 1usize..70,
                                          seed in 0u64..1000) {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| (((i * 31 + j * 17) as u64 + seed) % 23) as f32 / 7.0 - 1.5);
            let c = Array2::from_shape_fn((nc, d), |(i, j)| (((i * 13 + j * 29) as u64 + seed * 3) % 19) as f32 / 5.0 - 1.8);
            let score = if cosine { TopKScore::Cosine } else { TopKScore::Dot };
            let mut qn = q.clone();
            if cosine {
                normalize_rows(&mut qn);
            }
            let k = k.min(nc);
            let cancel = Cancel::new();
            let (ids_b, sc_b) = topk_fp32(qn.view(), c.view(), k, score, block, false, &cancel).unwrap();
            for pass in passes() {
                let search = Search { level: simd::detected(), corpus: c.view(), k, score, corpus_block: block, cancel: &cancel };
                let (ids_a, sc_a, _) = search.rescored(pass, qn.view()).unwrap();
                for i in 0..nq {
                    for r in 0..k {
                        prop_assert!((sc_a[[i, r]] - sc_b[[i, r]]).abs() <= 1e-5, "{:?}: score {} vs {}", pass, sc_a[[i, r]], sc_b[[i, r]]);
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

    /// Scores equal within `tol`; ids equal except where two rows' scores tie within `tol`.
    fn assert_same_hits(
        a: &(Array2<i64>, Array2<f32>),
        b: &(Array2<i64>, Array2<f32>),
        tol: f32,
        what: &str,
    ) {
        assert_eq!(a.0.dim(), b.0.dim(), "{what}");
        for ((&sa, &sb), (&ia, &ib)) in a.1.iter().zip(b.1.iter()).zip(a.0.iter().zip(b.0.iter())) {
            assert!(
                sa == sb || (sa - sb).abs() <= tol * (1.0 + sb.abs()),
                "{what}: {sa} vs {sb}"
            );
            if ia != ib {
                assert!(
                    sa == sb || (sa - sb).abs() <= tol * (1.0 + sb.abs()),
                    "{what}: id {ia} vs {ib}"
                );
            }
        }
    }

    #[test]
    fn every_level_gives_the_fp32_answer() {
        // Large enough (2^26 multiply-adds) for the candidate passes, and a small one for the fp32 kernels alone.
        for (nq, nc, d) in [(64usize, 1usize << 14, 64usize), (9, 300, 37)] {
            let q = Array2::from_shape_fn((nq, d), |(i, j)| {
                ((i * 31 + j * 17) % 23) as f32 / 7.0 - 1.5
            });
            let c = Array2::from_shape_fn((nc, d), |(i, j)| {
                ((i * 13 + j * 29) % 1019) as f32 / 500.0 - 1.0
            });
            let cancel = Cancel::new();
            for score in [TopKScore::Cosine, TopKScore::Dot] {
                for exclude_self in [false, true] {
                    let c = if exclude_self { q.clone() } else { c.clone() };
                    let mut qn = q.clone();
                    if score == TopKScore::Cosine {
                        normalize_rows(&mut qn);
                    }
                    let want = topk_fp32(
                        qn.view(),
                        c.view(),
                        10.min(c.nrows()),
                        score,
                        4096,
                        exclude_self,
                        &cancel,
                    )
                    .unwrap();
                    for level in simd::supported_levels() {
                        let got = topk_search_at(
                            level,
                            q.view(),
                            c.view(),
                            10,
                            score,
                            4096,
                            exclude_self,
                            false,
                            &cancel,
                        )
                        .unwrap();
                        assert_same_hits(
                            &got,
                            &want,
                            1e-5,
                            &format!("{} {score:?} exclude_self={exclude_self}", level.name()),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_int16_pass_skips_non_finite_corpora() {
        let (nq, nc, d) = (4, 64, 8);
        let q = Array2::from_shape_fn((nq, d), |(i, j)| (i + j) as f32);
        let mut c = Array2::from_shape_fn((nc, d), |(i, j)| (i * j % 7) as f32);
        c[[5, 3]] = f32::INFINITY;
        let cancel = Cancel::new();
        for kernel in [fused::I16Kernel::Avx2, fused::I16Kernel::AvxVnni] {
            if !fused::i16_supported(kernel) {
                continue;
            }
            let search = Search {
                level: Level::Avx2,
                corpus: c.view(),
                k: 3,
                score: TopKScore::Dot,
                corpus_block: 16,
                cancel: &cancel,
            };
            let (ids, _, unproven) = search.rescored(Candidates::I16(kernel), q.view()).unwrap();
            let want = fp32_at(
                Level::Avx2,
                q.view(),
                c.view(),
                3,
                TopKScore::Dot,
                16,
                false,
                &cancel,
            )
            .unwrap();
            assert_eq!(unproven, 0);
            assert_eq!(ids, want.0);
        }
    }
}
