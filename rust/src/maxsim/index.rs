//! A candidate index for late-interaction search (PLAID-style): every document token is coded by its nearest
//! centroid; a query gathers the documents holding tokens of the centroids nearest its own tokens, ranks them by
//! MaxSim over centroids instead of tokens, and rescores the best of them exactly.
//!
//! Approximate by design (a document can be missed when none of its tokens falls in a probed centroid, or when its
//! centroid score ranks it below the candidates kept); its recall against the exact search is what `nprobe` and
//! `candidates` trade for speed. The scores returned are exact MaxSim scores.

use super::Ragged;
use crate::cancel::Cancel;
use crate::error::{check_same_size, invalid, CoreResult};
use crate::parallel;
use crate::similarity::matmul_nt_into;
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

/// Rows of points scored against the centroids at a time (bounds the score buffer).
const ASSIGN_BLOCK: usize = 4096;

/// Spherical k-means (centroids of unit length, assignment by the largest dot product) of `data`, `(n, dim)`,
/// into `k` centroids over `iterations` Lloyd steps; seeded by k-means++ on a sample of `4 k` rows picked by
/// `seed`. Rows are
/// used as they are (pass unit vectors). Returns `(k', dim)` with `k' = min(k, n)`.
pub fn kmeans(
    data: ArrayView2<f32>,
    k: usize,
    iterations: usize,
    seed: u64,
    cancel: &Cancel,
) -> CoreResult<Array2<f32>> {
    let (n, dim) = data.dim();
    if k == 0 {
        return Err(invalid("the number of centroids must be at least 1, got 0"));
    }
    if n == 0 {
        return Err(invalid("k-means needs at least one point"));
    }
    let k = k.min(n);
    let mut centroids = seed_centroids(data, k, seed, cancel)?;
    normalize_rows(&mut centroids);
    for _ in 0..iterations {
        cancel.check()?;
        let codes = assign(data, centroids.view(), cancel)?;
        let mut sums = Array2::<f32>::zeros((k, dim));
        let mut counts = vec![0usize; k];
        for (row, &code) in data.rows().into_iter().zip(&codes) {
            let c = code as usize;
            counts[c] += 1;
            let mut target = sums.row_mut(c);
            target += &row;
        }
        for (c, &count) in counts.iter().enumerate() {
            if count > 0 {
                centroids.row_mut(c).assign(&sums.row(c));
            }
            // An empty cluster keeps its centroid.
        }
        normalize_rows(&mut centroids);
    }
    Ok(centroids)
}

/// A seeded pseudo-random sequence (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// k-means++ seeds (D^2 sampling, with `1 - cos` as the distance) among a sample of `4 k` rows.
fn seed_centroids(
    data: ArrayView2<f32>,
    k: usize,
    seed: u64,
    cancel: &Cancel,
) -> CoreResult<Array2<f32>> {
    let (n, dim) = data.dim();
    let mut rng = Lcg(seed ^ 0x9E37_79B9_7F4A_7C15);
    let m = n.min(4 * k);
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..m {
        let j = i + ((rng.next_unit() * (n - i) as f64) as usize).min(n - i - 1);
        pool.swap(i, j);
    }
    let sample = &pool[..m];
    let mut centroids = Array2::<f32>::zeros((k, dim));
    let mut distance = vec![f32::INFINITY; m];
    let mut pick = sample[(rng.next_unit() * m as f64) as usize % m];
    for c in 0..k {
        if c % 64 == 0 {
            cancel.check()?;
        }
        centroids.row_mut(c).assign(&data.row(pick));
        let center = data.row(pick);
        let update = |(d, &row): (&mut f32, &usize)| {
            let dot: f32 = center
                .iter()
                .zip(data.row(row).iter())
                .map(|(a, b)| a * b)
                .sum();
            *d = d.min((1.0 - dot).max(0.0));
        };
        if parallel::parallel_enabled() && m > 4096 {
            parallel::install(|| {
                distance
                    .par_iter_mut()
                    .zip(sample.par_iter())
                    .for_each(update)
            });
        } else {
            distance.iter_mut().zip(sample.iter()).for_each(update);
        }
        let total: f64 = distance.iter().map(|&d| f64::from(d)).sum();
        if total <= 0.0 {
            pick = sample[(rng.next_unit() * m as f64) as usize % m];
            continue;
        }
        let mut target = rng.next_unit() * total;
        pick = sample[m - 1];
        for (&d, &row) in distance.iter().zip(sample) {
            target -= f64::from(d);
            if target <= 0.0 {
                pick = row;
                break;
            }
        }
    }
    Ok(centroids)
}

fn normalize_rows(x: &mut Array2<f32>) {
    for mut row in x.rows_mut() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
}

/// The centroid with the largest dot product for every row of `data` (ties: the lower centroid).
pub fn assign(
    data: ArrayView2<f32>,
    centroids: ArrayView2<f32>,
    cancel: &Cancel,
) -> CoreResult<Vec<u32>> {
    check_same_size(
        "points and centroids must have the same dimension",
        data.ncols(),
        centroids.ncols(),
    )?;
    if centroids.nrows() == 0 {
        return Err(invalid("assigning points needs at least one centroid"));
    }
    if centroids.nrows() > u32::MAX as usize {
        return Err(invalid("too many centroids"));
    }
    let n = data.nrows();
    let starts: Vec<usize> = (0..n).step_by(ASSIGN_BLOCK).collect();
    let work = |&start: &usize| -> CoreResult<Vec<u32>> {
        cancel.check()?;
        let end = (start + ASSIGN_BLOCK).min(n);
        let mut scores = Array2::<f32>::zeros((end - start, centroids.nrows()));
        matmul_nt_into(
            data.slice(s![start..end, ..]),
            centroids,
            scores.view_mut(),
            1,
        );
        Ok(scores
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0usize;
                for (c, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect())
    };
    let parts: Vec<CoreResult<Vec<u32>>> = if parallel::parallel_enabled() && starts.len() > 1 {
        parallel::install(|| starts.par_iter().map(work).collect())
    } else {
        starts.iter().map(work).collect()
    };
    let mut codes = Vec::with_capacity(n);
    for part in parts {
        codes.extend(part?);
    }
    Ok(codes)
}

/// The documents holding each centroid, `(doc ids, offsets)`: centroid `c`'s documents are
/// `ids[offsets[c]..offsets[c + 1]]`, ascending, each once.
pub fn inverted_lists(
    codes: &[u32],
    doc_offsets: &[usize],
    n_centroids: usize,
) -> CoreResult<(Vec<u32>, Vec<usize>)> {
    if doc_offsets.is_empty() || doc_offsets[doc_offsets.len() - 1] != codes.len() {
        return Err(invalid(
            "document offsets must end at the number of token codes",
        ));
    }
    if doc_offsets[0] != 0 || doc_offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(invalid(
            "document offsets must start at 0 and never decrease",
        ));
    }
    // Centroid ids are u32 codes; more lists than codes could name cannot be filled, and are refused before the
    // per-list allocation.
    if n_centroids > u32::MAX as usize || n_centroids > codes.len().max(1).saturating_mul(1 << 16) {
        return Err(invalid(format!(
            "n_centroids must be at most 65,536 per token code and 2^32 - 1, got {n_centroids} for {} codes",
            codes.len()
        )));
    }
    if let Some(&bad) = codes.iter().find(|&&c| c as usize >= n_centroids) {
        return Err(invalid(format!(
            "token code {bad} is not a centroid (there are {n_centroids})"
        )));
    }
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); n_centroids];
    for d in 0..doc_offsets.len() - 1 {
        for &c in &codes[doc_offsets[d]..doc_offsets[d + 1]] {
            let list = &mut lists[c as usize];
            if list.last() != Some(&(d as u32)) {
                list.push(d as u32);
            }
        }
    }
    let mut offsets = Vec::with_capacity(n_centroids + 1);
    offsets.push(0);
    let mut ids = Vec::new();
    for list in lists {
        ids.extend(list);
        offsets.push(ids.len());
    }
    Ok((ids, offsets))
}

/// The index a search reads: centroids, each document token's centroid (aligned with `documents`) and the
/// inverted lists of [`inverted_lists`].
#[derive(Debug, Clone, Copy)]
pub struct CandidateIndex<'a> {
    /// `(n_centroids, dim)` centroids.
    pub centroids: ArrayView2<'a, f32>,
    /// One centroid per document token row.
    pub codes: &'a [u32],
    /// Documents per centroid (see [`inverted_lists`]).
    pub list_ids: &'a [u32],
    /// Offsets into `list_ids`, `n_centroids + 1`.
    pub list_offsets: &'a [usize],
}

/// Candidate search: per query, the documents with a token in one of the `nprobe` centroids nearest each query
/// token are ranked by their centroid MaxSim (each document token replaced by its centroid); the best `candidates`
/// are rescored with exact MaxSim and the top `k` returned as `(ids, scores)`, `(queries, k)`, best first (ids `-1`
/// and scores `-inf` past the candidates found).
#[allow(clippy::too_many_arguments)]
pub fn candidate_search(
    queries: Ragged,
    documents: Ragged,
    index: CandidateIndex,
    k: usize,
    nprobe: usize,
    candidates: usize,
    cancel: &Cancel,
) -> CoreResult<(Array2<i64>, Array2<f32>)> {
    let dim = documents.data.ncols();
    check_same_size(
        "query and document token vectors must have the same dimension",
        queries.data.ncols(),
        dim,
    )?;
    check_same_size(
        "centroids and document token vectors must have the same dimension",
        index.centroids.ncols(),
        dim,
    )?;
    check_same_size(
        "the index must hold one centroid code per document token row",
        index.codes.len(),
        documents.data.nrows(),
    )?;
    let n_centroids = index.centroids.nrows();
    check_same_size(
        "the inverted lists must have one offset per centroid plus one",
        index.list_offsets.len(),
        n_centroids + 1,
    )?;
    if index.list_offsets.windows(2).any(|w| w[1] < w[0])
        || index.list_offsets[n_centroids] != index.list_ids.len()
    {
        return Err(invalid(
            "the inverted-list offsets must rise to the number of list entries",
        ));
    }
    if index
        .list_ids
        .iter()
        .any(|&d| d as usize >= documents.len())
    {
        return Err(invalid(
            "an inverted list names a document the index does not hold",
        ));
    }
    if index.codes.iter().any(|&c| c as usize >= n_centroids) {
        return Err(invalid("a token code is not a centroid of the index"));
    }
    if k == 0 || nprobe == 0 || candidates == 0 {
        return Err(invalid(format!(
            "k, nprobe and candidates must be at least 1, got {k}, {nprobe} and {candidates}"
        )));
    }
    let nprobe = nprobe.min(n_centroids);
    let nq = queries.len();
    let q_rows = queries.data.as_standard_layout().into_owned();
    let d_rows = documents.data.as_standard_layout();
    let search_one = |i: usize| -> CoreResult<(Vec<i64>, Vec<f32>)> {
        if i.is_multiple_of(16) {
            cancel.check()?;
        }
        let tokens = queries.tokens(i);
        let mut ids = vec![-1i64; k];
        let mut best = vec![f32::NEG_INFINITY; k];
        if tokens.is_empty() || documents.is_empty() || n_centroids == 0 {
            return Ok((ids, best));
        }
        let q = q_rows.slice(s![tokens.clone(), ..]);
        let nt = q.nrows();
        let mut centroid_scores = Array2::<f32>::zeros((nt, n_centroids));
        matmul_nt_into(q, index.centroids, centroid_scores.view_mut(), 1);
        // Probe: the nprobe best centroids of each query token; gather their documents (each once).
        let mut seen = vec![false; documents.len()];
        let mut pool: Vec<u32> = Vec::new();
        let mut order: Vec<u32> = (0..n_centroids as u32).collect();
        for row in centroid_scores.rows() {
            order.select_nth_unstable_by(nprobe - 1, |&a, &b| {
                row[b as usize].total_cmp(&row[a as usize])
            });
            for &c in &order[..nprobe] {
                let c = c as usize;
                for &d in &index.list_ids[index.list_offsets[c]..index.list_offsets[c + 1]] {
                    if !seen[d as usize] {
                        seen[d as usize] = true;
                        pool.push(d);
                    }
                }
            }
        }
        // Rank the pool by centroid MaxSim.
        let mut approx: Vec<(f32, u32)> = pool
            .iter()
            .map(|&d| {
                let codes = &index.codes[documents.tokens(d as usize)];
                let score: f32 = centroid_scores
                    .rows()
                    .into_iter()
                    .map(|row| {
                        codes
                            .iter()
                            .fold(f32::NEG_INFINITY, |m, &c| m.max(row[c as usize]))
                    })
                    .sum();
                (score, d)
            })
            .collect();
        let keep = candidates.min(approx.len());
        if keep == 0 {
            return Ok((ids, best));
        }
        if keep < approx.len() {
            approx.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            approx.truncate(keep);
        }
        // Exact MaxSim of the kept documents: one GEMM of the query tokens against all their tokens.
        let total: usize = approx
            .iter()
            .map(|&(_, d)| documents.tokens(d as usize).len())
            .sum();
        let mut gathered = Array2::<f32>::zeros((total, dim));
        let mut row = 0;
        for &(_, d) in &approx {
            let t = documents.tokens(d as usize);
            gathered
                .slice_mut(s![row..row + t.len(), ..])
                .assign(&d_rows.slice(s![t.clone(), ..]));
            row += t.len();
        }
        let mut scores = Array2::<f32>::zeros((nt, total));
        matmul_nt_into(q, gathered.view(), scores.view_mut(), 1);
        let mut exact: Vec<(f32, u32)> = Vec::with_capacity(approx.len());
        let mut from = 0;
        for &(_, d) in &approx {
            let len = documents.tokens(d as usize).len();
            let score: f32 = if len == 0 {
                f32::NEG_INFINITY
            } else {
                scores
                    .rows()
                    .into_iter()
                    .map(|r| {
                        r.slice(s![from..from + len])
                            .iter()
                            .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
                    })
                    .sum()
            };
            exact.push((score, d));
            from += len;
        }
        exact.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, &(score, d)) in exact.iter().take(k).enumerate() {
            ids[rank] = i64::from(d);
            best[rank] = score;
        }
        Ok((ids, best))
    };
    let rows: Vec<CoreResult<(Vec<i64>, Vec<f32>)>> = if parallel::parallel_enabled() && nq > 1 {
        parallel::install(|| (0..nq).into_par_iter().map(search_one).collect())
    } else {
        (0..nq).map(search_one).collect()
    };
    let mut ids = Array2::<i64>::from_elem((nq, k), -1);
    let mut scores = Array2::<f32>::from_elem((nq, k), f32::NEG_INFINITY);
    for (i, row) in rows.into_iter().enumerate() {
        let (row_ids, row_scores) = row?;
        for r in 0..k {
            ids[[i, r]] = row_ids[r];
            scores[[i, r]] = row_scores[r];
        }
    }
    Ok((ids, scores))
}

#[cfg(test)]
mod tests {
    use super::super::{maxsim_topk, Kernel};
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn kmeans_finds_separated_clusters_and_assign_agrees() {
        // Four well separated directions with noise.
        let dim = 8;
        let mut rows = Vec::new();
        for i in 0..400 {
            let mut v = vec![0f32; dim];
            v[i % 4] = 1.0;
            for (x, n) in v.iter_mut().zip(values(dim, i as u64)) {
                *x += 0.05 * n;
            }
            rows.extend(v);
        }
        let data = Array2::from_shape_vec((400, dim), rows).unwrap();
        let cancel = Cancel::new();
        let centroids = kmeans(data.view(), 4, 10, 3, &cancel).unwrap();
        let codes = assign(data.view(), centroids.view(), &cancel).unwrap();
        for i in 0..400 {
            assert_eq!(codes[i], codes[i % 4], "point {i}");
        }
        let distinct: std::collections::HashSet<u32> = codes.iter().copied().collect();
        assert_eq!(distinct.len(), 4);
        assert!(kmeans(data.view(), 0, 1, 0, &cancel).is_err());
    }

    #[test]
    fn full_probe_equals_the_exact_search() {
        // Probing every centroid and keeping every document as a candidate is the exact search.
        let dim = 16;
        let lens: Vec<usize> = (0..60).map(|j| 1 + (j * 5) % 9).collect();
        let mut offsets = vec![0];
        for &n in &lens {
            offsets.push(offsets[offsets.len() - 1] + n);
        }
        let total = offsets[offsets.len() - 1];
        let docs = Array2::from_shape_vec((total, dim), values(total * dim, 7)).unwrap();
        let q = Array2::from_shape_vec((10, dim), values(10 * dim, 8)).unwrap();
        let q_off = vec![0, 4, 10];
        let cancel = Cancel::new();
        let centroids = kmeans(docs.view(), 8, 4, 1, &cancel).unwrap();
        let codes = assign(docs.view(), centroids.view(), &cancel).unwrap();
        let (list_ids, list_offsets) = inverted_lists(&codes, &offsets, centroids.nrows()).unwrap();
        let index = CandidateIndex {
            centroids: centroids.view(),
            codes: &codes,
            list_ids: &list_ids,
            list_offsets: &list_offsets,
        };
        let qr = Ragged::new(q.view(), &q_off, "q").unwrap();
        let dr = Ragged::new(docs.view(), &offsets, "d").unwrap();
        let (ids, scores) = candidate_search(qr, dr, index, 5, 8, 60, &cancel).unwrap();
        let (want_ids, want_scores) =
            maxsim_topk(qr, dr, None, 5, -1e9, &cancel, Kernel::Fp32).unwrap();
        assert_eq!(ids, want_ids);
        for (a, b) in scores.iter().zip(want_scores.iter()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()));
        }
        assert!(candidate_search(qr, dr, index, 0, 8, 60, &cancel).is_err());
        let bad = CandidateIndex {
            codes: &codes[1..],
            ..index
        };
        assert!(candidate_search(qr, dr, bad, 5, 8, 60, &cancel).is_err());
    }
}
