//! MaxSim (late-interaction) scoring over ragged token matrices.
//!
//! A multi-vector embedding is a matrix of token vectors; a set of them is stored as one contiguous
//! `(total tokens, dim)` buffer plus `n + 1` row offsets, so nothing is padded to the longest item. The MaxSim
//! score of query `i` and document `j` is `sum_s w_s * max_t (q_s . d_t)` over the query's tokens `s` (weights
//! `w_s`, the query mask) and the document's tokens `t`.
//!
//! The scores are computed block by block: a GEMM of a block of query tokens against a block of document tokens
//! into a buffer that stays in the cache, reduced at once to per-(query token, document) maxima. No
//! `queries x documents x tokens x tokens` tensor exists at any point. Blocks of documents run in parallel.

use crate::cancel::Cancel;
use crate::error::{check_same_size, invalid, CoreResult};
use crate::parallel;
use crate::similarity::matmul_nt_into;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

pub mod amx;
pub mod index;

/// Which MaxSim kernel runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The fastest this CPU has: [`amx`] where supported, else fp32.
    Auto,
    /// fp32 GEMM blocks (every CPU).
    Fp32,
    /// bf16 AMX candidates rescored in fp32 (an error where the CPU lacks AMX).
    Amx,
}

impl Kernel {
    /// Parses `auto`, `fp32` or `amx`.
    pub fn parse(name: &str) -> CoreResult<Self> {
        match name {
            "auto" => Ok(Kernel::Auto),
            "fp32" => Ok(Kernel::Fp32),
            "amx" => Ok(Kernel::Amx),
            other => Err(invalid(format!(
                "kernel must be 'auto', 'fp32' or 'amx', got {other:?}"
            ))),
        }
    }
}

/// One side of a scoring call: `data` rows are the tokens of every item, item `i` owning rows
/// `offsets[i]..offsets[i + 1]`.
#[derive(Debug, Clone, Copy)]
pub struct Ragged<'a> {
    /// `(total tokens, dim)` token vectors.
    pub data: ArrayView2<'a, f32>,
    /// `n + 1` non-decreasing row offsets, from 0 to `data.nrows()`.
    pub offsets: &'a [usize],
}

impl<'a> Ragged<'a> {
    /// Checks the offsets against the buffer; `what` names the side in errors.
    pub fn new(data: ArrayView2<'a, f32>, offsets: &'a [usize], what: &str) -> CoreResult<Self> {
        if offsets.is_empty() || offsets[0] != 0 {
            return Err(invalid(format!(
                "{what} offsets must start at 0 (n + 1 values for n items), got {:?}",
                offsets.first()
            )));
        }
        if offsets.windows(2).any(|w| w[1] < w[0]) {
            return Err(invalid(format!("{what} offsets must not decrease")));
        }
        let last = offsets[offsets.len() - 1];
        if last != data.nrows() {
            return Err(invalid(format!(
                "{what} offsets must end at the number of token rows ({}), got {last}",
                data.nrows()
            )));
        }
        Ok(Ragged { data, offsets })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tokens(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }
}

/// Query tokens per GEMM block (the rows of the score buffer).
const QUERY_BLOCK_TOKENS: usize = 256;
/// Document tokens per GEMM block (the columns of the score buffer): 256 x 2048 fp32 scores are 2 MB.
const DOC_BLOCK_TOKENS: usize = 2048;

/// Consecutive items grouped so that each group holds at most `budget` tokens (or one larger item).
fn blocks(side: &Ragged, budget: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < side.len() {
        let mut end = start + 1;
        while end < side.len() && side.offsets[end + 1] - side.offsets[start] <= budget {
            end += 1;
        }
        out.push((start, end));
        start = end;
    }
    out
}

fn check_weights(queries: &Ragged, weights: Option<&[f32]>) -> CoreResult<()> {
    if let Some(w) = weights {
        check_same_size(
            "query token weights must have one value per query token row",
            queries.data.nrows(),
            w.len(),
        )?;
    }
    Ok(())
}

/// The `(queries, documents)` MaxSim score matrix. A document without tokens scores `empty_score` against every
/// query; a query without tokens scores 0 against every non-empty document. `weights` (one per query token row,
/// default 1) multiply each token's maximum. `cancel` is checked between blocks. Runs the fastest kernel.
pub fn maxsim(
    queries: Ragged,
    documents: Ragged,
    weights: Option<&[f32]>,
    empty_score: f32,
    cancel: &Cancel,
) -> CoreResult<Array2<f32>> {
    maxsim_with(
        queries,
        documents,
        weights,
        empty_score,
        cancel,
        Kernel::Auto,
    )
}

/// [`maxsim`] with the kernel chosen: every kernel gives the fp32 scores (up to fp32 summation order).
pub fn maxsim_with(
    queries: Ragged,
    documents: Ragged,
    weights: Option<&[f32]>,
    empty_score: f32,
    cancel: &Cancel,
    kernel: Kernel,
) -> CoreResult<Array2<f32>> {
    check_same_size(
        "query and document token vectors must have the same dimension",
        queries.data.ncols(),
        documents.data.ncols(),
    )?;
    check_weights(&queries, weights)?;
    let use_amx = match kernel {
        Kernel::Fp32 => false,
        Kernel::Amx => true,
        Kernel::Auto => amx::supported(),
    };
    if use_amx {
        if let Some(scores) = amx::maxsim(queries, documents, weights, empty_score, cancel)? {
            return Ok(scores);
        }
    }
    let (nq, nd) = (queries.len(), documents.len());
    let mut scores = Array2::<f32>::zeros((nq, nd));
    if nq == 0 || nd == 0 {
        return Ok(scores);
    }
    let query_blocks = blocks(&queries, QUERY_BLOCK_TOKENS);
    let doc_blocks = blocks(&documents, DOC_BLOCK_TOKENS);
    // One column block of the result per document block, computed independently.
    let score_block = |&(d0, d1): &(usize, usize)| -> CoreResult<Array2<f32>> {
        let mut out = Array2::<f32>::zeros((nq, d1 - d0));
        let doc_rows = documents.offsets[d0]..documents.offsets[d1];
        let doc_data = documents.data.slice(s![doc_rows.clone(), ..]);
        let mut buffer: Vec<f32> = Vec::new();
        for &(q0, q1) in &query_blocks {
            cancel.check()?;
            let query_rows = queries.offsets[q0]..queries.offsets[q1];
            let (rows, cols) = (query_rows.len(), doc_rows.len());
            if rows == 0 || cols == 0 {
                continue;
            }
            buffer.resize(rows * cols, 0.0);
            let mut block = ndarray::ArrayViewMut2::from_shape((rows, cols), &mut buffer[..])
                .map_err(|e| invalid(format!("score buffer: {e}")))?;
            matmul_nt_into(
                queries.data.slice(s![query_rows.clone(), ..]),
                doc_data,
                block.view_mut(),
                1,
            );
            for i in q0..q1 {
                for (row, r) in queries.tokens(i).enumerate() {
                    let local = queries.tokens(i).start - query_rows.start + row;
                    let w = weights.map_or(1.0, |w| w[r]);
                    let line = block.row(local);
                    let line = line.as_slice().unwrap_or(&[]);
                    for j in d0..d1 {
                        let t = documents.tokens(j);
                        if t.is_empty() {
                            continue;
                        }
                        let from = t.start - doc_rows.start;
                        let best = line[from..from + t.len()]
                            .iter()
                            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                        out[[i, j - d0]] += w * best;
                    }
                }
            }
        }
        for j in d0..d1 {
            if documents.tokens(j).is_empty() {
                out.column_mut(j - d0).fill(empty_score);
            }
        }
        Ok(out)
    };
    let parts: Vec<CoreResult<Array2<f32>>> =
        if parallel::parallel_enabled() && doc_blocks.len() > 1 {
            parallel::install(|| doc_blocks.par_iter().map(score_block).collect())
        } else {
            doc_blocks.iter().map(score_block).collect()
        };
    for (part, &(d0, d1)) in parts.into_iter().zip(&doc_blocks) {
        scores.slice_mut(s![.., d0..d1]).assign(&part?);
    }
    Ok(scores)
}

/// The `k` best documents per query by MaxSim, best first: `(ids, scores)`, `(queries, k)`, ids `-1` and scores
/// `-inf` where there are fewer than `k` documents; ties go to the lower index. Exact (the scores of [`maxsim`]);
/// memory stays at one block of documents per thread plus `queries x k` hits. On the AMX kernel, a document whose
/// bf16 upper bound cannot reach a query's current `k`-th score is never rescored in fp32.
pub fn maxsim_topk(
    queries: Ragged,
    documents: Ragged,
    weights: Option<&[f32]>,
    k: usize,
    empty_score: f32,
    cancel: &Cancel,
    kernel: Kernel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    use crate::topk::hits::TopKState;

    check_same_size(
        "query and document token vectors must have the same dimension",
        queries.data.ncols(),
        documents.data.ncols(),
    )?;
    check_weights(&queries, weights)?;
    if k == 0 {
        return Err(invalid("k must be at least 1, got 0"));
    }
    let nq = queries.len();
    let use_amx = match kernel {
        Kernel::Fp32 => false,
        Kernel::Amx => true,
        Kernel::Auto => amx::supported(),
    };
    let prepared = if use_amx && nq > 0 && !documents.is_empty() {
        amx::Prepared::new(queries, documents, weights, empty_score)?
    } else {
        None
    };
    if let Some(prepared) = prepared {
        let blocks = prepared.doc_blocks();
        let fold = |(mut scratch, mut state): (amx::Scratch, TopKState),
                    &(d0, d1): &(usize, usize)| {
            let bars = state.bars();
            let part = prepared.block(&mut scratch, (d0, d1), Some(&bars), cancel)?;
            state.push_block(part.view(), 0, d0, None, false)?;
            Ok((scratch, state))
        };
        let start = || (amx::Scratch::default(), TopKState::new(nq, k));
        let state = if parallel::parallel_enabled() && blocks.len() > 1 {
            parallel::install(|| {
                blocks
                    .par_iter()
                    .try_fold(start, fold)
                    .map(|r: CoreResult<(amx::Scratch, TopKState)>| r.map(|(_, state)| state))
                    .try_reduce(
                        || TopKState::new(nq, k),
                        |mut a, b| {
                            a.merge(b);
                            Ok(a)
                        },
                    )
            })?
        } else {
            let mut acc = start();
            for block in &blocks {
                acc = fold(acc, block)?;
            }
            acc.1
        };
        return Ok(state.finish());
    }
    // fp32: score a slice of documents at a time (the scoring itself runs in parallel) and keep the best.
    let mut state = TopKState::new(nq, k);
    for (d0, d1) in blocks(&documents, 64 * DOC_BLOCK_TOKENS) {
        let rows = documents.offsets[d0]..documents.offsets[d1];
        let offsets: Vec<usize> = documents.offsets[d0..=d1]
            .iter()
            .map(|o| o - rows.start)
            .collect();
        let part_docs = Ragged::new(documents.data.slice(s![rows, ..]), &offsets, "document")?;
        let part = maxsim_with(
            queries,
            part_docs,
            weights,
            empty_score,
            cancel,
            Kernel::Fp32,
        )?;
        state.push_block(part.view(), 0, d0, None, false)?;
    }
    Ok(state.finish())
}

/// MaxSim of query `i` with document `i` for every `i` (same rules as [`maxsim`]).
pub fn maxsim_pairwise(
    queries: Ragged,
    documents: Ragged,
    weights: Option<&[f32]>,
    empty_score: f32,
    cancel: &Cancel,
) -> CoreResult<Vec<f32>> {
    check_same_size(
        "query and document token vectors must have the same dimension",
        queries.data.ncols(),
        documents.data.ncols(),
    )?;
    check_same_size(
        "queries and documents must hold the same number of items to score as pairs",
        queries.len(),
        documents.len(),
    )?;
    check_weights(&queries, weights)?;
    let score_pair = |i: usize| -> CoreResult<f32> {
        if i.is_multiple_of(64) {
            cancel.check()?;
        }
        let (qt, dt) = (queries.tokens(i), documents.tokens(i));
        if dt.is_empty() {
            return Ok(empty_score);
        }
        if qt.is_empty() {
            return Ok(0.0);
        }
        let mut block = Array2::<f32>::zeros((qt.len(), dt.len()));
        matmul_nt_into(
            queries.data.slice(s![qt.clone(), ..]),
            documents.data.slice(s![dt, ..]),
            block.view_mut(),
            1,
        );
        let mut total = 0f32;
        for (row, r) in qt.enumerate() {
            let best = block
                .row(row)
                .iter()
                .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            total += weights.map_or(1.0, |w| w[r]) * best;
        }
        Ok(total)
    };
    let n = queries.len();
    let scores: Vec<CoreResult<f32>> = if parallel::parallel_enabled() && n > 1 {
        parallel::install(|| (0..n).into_par_iter().map(score_pair).collect())
    } else {
        (0..n).map(score_pair).collect()
    };
    scores.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(q: &[Vec<Vec<f32>>], d: &[Vec<Vec<f32>>], empty: f32) -> Vec<Vec<f32>> {
        q.iter()
            .map(|qi| {
                d.iter()
                    .map(|dj| {
                        if dj.is_empty() {
                            return empty;
                        }
                        qi.iter()
                            .map(|qs| {
                                dj.iter()
                                    .map(|dt| qs.iter().zip(dt).map(|(a, b)| a * b).sum::<f32>())
                                    .fold(f32::NEG_INFINITY, f32::max)
                            })
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }

    fn flatten(items: &[Vec<Vec<f32>>], dim: usize) -> (Array2<f32>, Vec<usize>) {
        let mut offsets = vec![0];
        let mut rows = Vec::new();
        for item in items {
            for tok in item {
                rows.extend_from_slice(tok);
            }
            offsets.push(offsets.last().unwrap() + item.len());
        }
        let n = offsets[offsets.len() - 1];
        (Array2::from_shape_vec((n, dim), rows).unwrap(), offsets)
    }

    fn items(lengths: &[usize], dim: usize, seed: usize) -> Vec<Vec<Vec<f32>>> {
        lengths
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                (0..len)
                    .map(|t| {
                        (0..dim)
                            .map(|k| (((i * 7 + t * 13 + k * 5 + seed) % 17) as f32 - 8.0) / 8.0)
                            .collect()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn bad_offsets_are_errors() {
        let x = Array2::<f32>::zeros((3, 2));
        assert!(Ragged::new(x.view(), &[], "a").is_err());
        assert!(Ragged::new(x.view(), &[1, 3], "a").is_err());
        assert!(Ragged::new(x.view(), &[0, 2, 1, 3], "a").is_err());
        assert!(Ragged::new(x.view(), &[0, 2], "a").is_err());
        let ok = Ragged::new(x.view(), &[0, 3], "a").unwrap();
        let y = Array2::<f32>::zeros((3, 4));
        let other = Ragged::new(y.view(), &[0, 3], "b").unwrap();
        assert!(maxsim(ok, other, None, -1e9, &Cancel::new()).is_err());
        assert!(maxsim(ok, ok, Some(&[1.0]), -1e9, &Cancel::new()).is_err());
        assert!(maxsim_pairwise(
            ok,
            Ragged::new(x.view(), &[0, 1, 3], "b").unwrap(),
            None,
            0.0,
            &Cancel::new()
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn equals_the_naive_sums(q_lens in proptest::collection::vec(0usize..7, 0..6),
                                 d_lens in proptest::collection::vec(0usize..300, 0..12),
                                 dim in 1usize..9, seed in 0usize..50) {
            let q = items(&q_lens, dim, seed);
            let d = items(&d_lens, dim, seed + 3);
            let (qd, qo) = flatten(&q, dim);
            let (dd, doff) = flatten(&d, dim);
            let qr = Ragged::new(qd.view(), &qo, "q").unwrap();
            let dr = Ragged::new(dd.view(), &doff, "d").unwrap();
            let got = maxsim(qr, dr, None, -1e9, &Cancel::new()).unwrap();
            let want = naive(&q, &d, -1e9);
            for i in 0..q.len() {
                for j in 0..d.len() {
                    prop_assert!((got[[i, j]] - want[i][j]).abs() <= 1e-4 * (1.0 + want[i][j].abs()));
                }
            }
            if q.len() == d.len() {
                let pairs = maxsim_pairwise(qr, dr, None, -1e9, &Cancel::new()).unwrap();
                for i in 0..q.len() {
                    prop_assert!((pairs[i] - want[i][i]).abs() <= 1e-4 * (1.0 + want[i][i].abs()));
                }
            }
        }
    }

    #[test]
    fn weights_scale_each_query_token() {
        let q = items(&[3], 4, 1);
        let d = items(&[5, 0], 4, 2);
        let (qd, qo) = flatten(&q, 4);
        let (dd, doff) = flatten(&d, 4);
        let qr = Ragged::new(qd.view(), &qo, "q").unwrap();
        let dr = Ragged::new(dd.view(), &doff, "d").unwrap();
        let plain = maxsim(qr, dr, None, -7.0, &Cancel::new()).unwrap();
        let half = maxsim(qr, dr, Some(&[0.5, 0.5, 0.5]), -7.0, &Cancel::new()).unwrap();
        assert!((half[[0, 0]] - plain[[0, 0]] * 0.5).abs() < 1e-6);
        assert_eq!(half[[0, 1]], -7.0);
        let none = maxsim(qr, dr, Some(&[0.0, 0.0, 0.0]), -7.0, &Cancel::new()).unwrap();
        assert_eq!(none[[0, 0]], 0.0);
    }
}
