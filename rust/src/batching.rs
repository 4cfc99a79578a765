//! Token-length-aware batch planning.
//!
//! Rows are sorted by token count, longest first (ties keep input order), then cut into batches of at most
//! `batch_size` rows and, optionally, at most `max_tokens` padded tokens (rows x longest row). Sorting keeps
//! padding small; the plan carries the permutation that puts results back into input order.

use crate::error::{invalid, CoreResult};
use std::ops::Range;

/// Batches over a length-sorted order of the input rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Input row indices, longest first.
    pub order: Vec<usize>,
    /// Consecutive ranges into `order`, one per batch.
    pub batches: Vec<Range<usize>>,
}

impl BatchPlan {
    /// For each input row, its position in `order` (the inverse permutation).
    pub fn inverse(&self) -> Vec<usize> {
        let mut inv = vec![0; self.order.len()];
        for (pos, &row) in self.order.iter().enumerate() {
            inv[row] = pos;
        }
        inv
    }
}

/// Plans batches for rows of the given token `lengths`.
///
/// `batch_size` must be >= 1; `max_tokens`, when given, caps `rows * longest_row` per batch (a single row longer
/// than the budget still gets a batch of its own).
pub fn plan_batches(
    lengths: &[usize],
    batch_size: usize,
    max_tokens: Option<usize>,
) -> CoreResult<BatchPlan> {
    if batch_size == 0 {
        return Err(invalid("batch_size must be >= 1, got 0"));
    }
    if max_tokens == Some(0) {
        return Err(invalid("max_tokens must be >= 1, got 0"));
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Stable sort: equal lengths keep input order, so plans are deterministic.
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let longest = lengths[order[start]].max(1);
        let mut end = start + 1;
        while end < order.len() && end - start < batch_size {
            if let Some(budget) = max_tokens {
                if (end - start + 1).saturating_mul(longest) > budget {
                    break;
                }
            }
            end += 1;
        }
        batches.push(start..end);
        start = end;
    }
    Ok(BatchPlan { order, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sorts_longest_first_and_cuts() {
        let plan = plan_batches(&[3, 9, 1, 9, 5], 2, None).unwrap();
        assert_eq!(plan.order, vec![1, 3, 4, 0, 2]);
        assert_eq!(plan.batches, vec![0..2, 2..4, 4..5]);
        let inv = plan.inverse();
        for (row, &pos) in inv.iter().enumerate() {
            assert_eq!(plan.order[pos], row);
        }
    }

    #[test]
    fn token_budget_limits_rows() {
        let plan = plan_batches(&[10, 10, 10, 2, 2], 100, Some(20)).unwrap();
        assert_eq!(plan.batches, vec![0..2, 2..4, 4..5]);
    }

    #[test]
    fn oversized_row_gets_its_own_batch() {
        let plan = plan_batches(&[50, 1], 8, Some(10)).unwrap();
        assert_eq!(plan.batches, vec![0..1, 1..2]);
    }

    #[test]
    fn empty_input_and_bad_arguments() {
        assert!(plan_batches(&[], 4, None).unwrap().batches.is_empty());
        assert!(plan_batches(&[1], 0, None).is_err());
        assert!(plan_batches(&[1], 1, Some(0)).is_err());
    }

    proptest! {
        #[test]
        fn plan_covers_every_row_once(lengths in proptest::collection::vec(0usize..300, 0..200),
                                      batch_size in 1usize..40, budget in proptest::option::of(1usize..2000)) {
            let plan = plan_batches(&lengths, batch_size, budget).unwrap();
            let mut seen = vec![false; lengths.len()];
            let mut expected_start = 0;
            for b in &plan.batches {
                prop_assert_eq!(b.start, expected_start);
                prop_assert!(b.end > b.start && b.end - b.start <= batch_size);
                if let Some(t) = budget {
                    let longest = lengths[plan.order[b.start]].max(1);
                    prop_assert!(b.end - b.start == 1 || (b.end - b.start) * longest <= t);
                }
                expected_start = b.end;
            }
            prop_assert_eq!(expected_start, lengths.len());
            for &r in &plan.order { prop_assert!(!seen[r]); seen[r] = true; }
            for w in plan.order.windows(2) { prop_assert!(lengths[w[0]] >= lengths[w[1]]); }
        }
    }
}
