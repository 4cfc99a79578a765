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
}
