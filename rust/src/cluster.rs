//! Community detection over embeddings: groups of rows whose cosine similarity to a centre reaches a threshold.
//!
//! Same definition as the reference: every row whose neighbourhood (rows at cosine >= threshold, itself
//! included) has at least `min_size` members is a candidate centre; candidates are taken largest first (ties
//! in row order), and a candidate keeps only members no earlier community took, if enough remain.

use crate::error::{invalid, CoreResult};
use crate::parallel;
use crate::pooling::normalize_rows;
use crate::similarity::matmul_nt;
use ndarray::{s, ArrayView2, Axis};
use rayon::prelude::*;

/// Scores held at once: 2^25 float32 (128 MiB), whatever `row_block` asks for.
const SCORE_BUDGET: usize = 1 << 25;

/// Communities, largest first; each lists its centre first, then members by decreasing similarity.
pub fn community_detection(
    embeddings: ArrayView2<f32>,
    threshold: f32,
    min_size: usize,
    row_block: usize,
) -> CoreResult<Vec<Vec<usize>>> {
    if min_size == 0 {
        return Err(invalid("min_community_size must be >= 1, got 0"));
    }
    if row_block == 0 {
        return Err(invalid("batch_size must be >= 1, got 0"));
    }
    if threshold.is_nan() {
        return Err(invalid("threshold must be a number, got NaN"));
    }
    let n = embeddings.nrows();
    if n == 0 || n < min_size {
        return Ok(Vec::new());
    }
    let mut unit = embeddings.to_owned();
    normalize_rows(&mut unit);
    let mut candidates: Vec<(usize, Vec<usize>)> = Vec::new();
    let block = row_block.min((SCORE_BUDGET / n).max(1));
    for start in (0..n).step_by(block) {
        let rows = unit.slice(s![start..(start + block).min(n), ..]);
        let scores = matmul_nt(rows, unit.view())?;
        let found = |(i, row): (usize, ndarray::ArrayView1<f32>)| -> Option<(usize, Vec<usize>)> {
            let mut members: Vec<(f32, usize)> = row
                .iter()
                .enumerate()
                .filter(|(_, &v)| v >= threshold)
                .map(|(j, &v)| (v, j))
                .collect();
            if members.len() < min_size {
                return None;
            }
            members.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            Some((start + i, members.into_iter().map(|(_, j)| j).collect()))
        };
        let block_found: Vec<Option<(usize, Vec<usize>)>> = if parallel::parallel_enabled() {
            parallel::install(|| {
                scores
                    .axis_iter(Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .map(found)
                    .collect()
            })
        } else {
            scores.axis_iter(Axis(0)).enumerate().map(found).collect()
        };
        candidates.extend(block_found.into_iter().flatten());
    }
    // Largest first; the sort is stable, so equal sizes keep row order.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.1.len()));
    let mut used = vec![false; n];
    let mut communities: Vec<Vec<usize>> = Vec::new();
    for (center, members) in candidates {
        if used[center] {
            continue;
        }
        let free: Vec<usize> = members.into_iter().filter(|&j| !used[j]).collect();
        if free.len() < min_size {
            continue;
        }
        let mut community = Vec::with_capacity(free.len());
        community.push(center);
        community.extend(free.into_iter().filter(|&j| j != center));
        for &j in &community {
            used[j] = true;
        }
        communities.push(community);
    }
    communities.sort_by_key(|c| std::cmp::Reverse(c.len()));
    Ok(communities)
}

/// Paraphrase-mining pairs from per-row neighbour lists (`ids[r, t]`, `-1` for none, and their scores): each
/// unordered pair `(lo, hi)` once, with the score of its first sighting in row-major order, best first (equal
/// scores in `(lo, hi)` order), at most `max_pairs`. Returns `(scores, lo, hi)`.
pub fn mine_pairs(
    ids: ArrayView2<i64>,
    scores: ArrayView2<f32>,
    max_pairs: usize,
) -> CoreResult<(Vec<f32>, Vec<i64>, Vec<i64>)> {
    if ids.dim() != scores.dim() {
        return Err(invalid(format!(
            "ids and scores must have the same shape, got {:?} and {:?}",
            ids.dim(),
            scores.dim()
        )));
    }
    // Keys are lo * width + hi, so they order pairs by (lo, hi).
    let max_id = ids.iter().copied().max().unwrap_or(-1);
    let width = (ids.nrows() as u64).max(max_id.max(0) as u64 + 1);
    if width.checked_mul(width).is_none() {
        return Err(invalid(format!(
            "ids must be below 2^32 (row indices), got {max_id}"
        )));
    }
    // (pair key, sighting order, score)
    let mut seen: Vec<(u64, u64, f32)> = Vec::with_capacity(ids.len());
    for (r, (id_row, score_row)) in ids.rows().into_iter().zip(scores.rows()).enumerate() {
        for (t, (&c, &v)) in id_row.iter().zip(score_row).enumerate() {
            if c < 0 {
                continue;
            }
            let (lo, hi) = (c.min(r as i64) as u64, c.max(r as i64) as u64);
            seen.push((lo * width + hi, (r * id_row.len() + t) as u64, v));
        }
    }
    seen.sort_unstable_by_key(|&(key, order, _)| (key, order));
    seen.dedup_by_key(|entry| entry.0);
    seen.sort_unstable_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    seen.truncate(max_pairs);
    let mut out_scores = Vec::with_capacity(seen.len());
    let mut lo = Vec::with_capacity(seen.len());
    let mut hi = Vec::with_capacity(seen.len());
    for (key, _, v) in seen {
        out_scores.push(v);
        lo.push((key / width) as i64);
        hi.push((key % width) as i64);
    }
    Ok((out_scores, lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn finds_two_clusters_and_drops_noise() {
        // Rows 0-3 point one way, rows 4-6 another, row 7 elsewhere.
        let mut x = Array2::<f32>::zeros((8, 3));
        for i in 0..4 {
            x[[i, 0]] = 1.0;
            x[[i, 1]] = 0.01 * i as f32;
        }
        for i in 4..7 {
            x[[i, 1]] = 1.0;
            x[[i, 2]] = 0.01 * i as f32;
        }
        x[[7, 2]] = 1.0;
        let c = community_detection(x.view(), 0.9, 3, 2).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].len(), 4);
        assert_eq!(c[1].len(), 3);
        let mut all: Vec<usize> = c.concat();
        all.sort();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 5, 6]);
        assert!(community_detection(x.view(), 0.9, 9, 2).unwrap().is_empty());
    }

    #[test]
    fn bad_arguments() {
        let x = Array2::<f32>::ones((3, 2));
        assert!(community_detection(x.view(), 0.5, 0, 4).is_err());
        assert!(community_detection(x.view(), 0.5, 1, 0).is_err());
        assert!(community_detection(x.view(), f32::NAN, 1, 4).is_err());
    }

    #[test]
    fn members_are_disjoint_and_start_with_their_centre() {
        let x = Array2::from_shape_fn((60, 4), |(i, j)| {
            ((i % 5) * 3 + j) as f32 + 0.001 * i as f32
        });
        let c = community_detection(x.view(), 0.999, 2, 7).unwrap();
        let mut seen = std::collections::HashSet::new();
        for community in &c {
            assert!(community.len() >= 2);
            for &j in community {
                assert!(seen.insert(j), "row {j} in two communities");
            }
        }
    }

    #[test]
    fn mine_pairs_dedups_and_orders() {
        use ndarray::array;
        let ids = array![[1i64, 2], [0, 2], [1, -1]];
        let scores = array![[0.9f32, 0.5], [0.9, 0.7], [0.7, 0.0]];
        let (v, lo, hi) = mine_pairs(ids.view(), scores.view(), 10).unwrap();
        assert_eq!(v, vec![0.9, 0.7, 0.5]);
        assert_eq!(lo, vec![0, 1, 0]);
        assert_eq!(hi, vec![1, 2, 2]);
        let (v, _, _) = mine_pairs(ids.view(), scores.view(), 2).unwrap();
        assert_eq!(v.len(), 2);
        // First sighting wins when the two sides disagree; equal scores come in (lo, hi) order.
        let ids = array![[1i64], [0], [0]];
        let scores = array![[0.4f32], [0.6], [0.4]];
        let (v, lo, hi) = mine_pairs(ids.view(), scores.view(), 10).unwrap();
        assert_eq!((v, lo, hi), (vec![0.4, 0.4], vec![0, 0], vec![1, 2]));
        assert!(mine_pairs(ids.view(), array![[0.1f32, 0.2]].view(), 1).is_err());
    }
}
