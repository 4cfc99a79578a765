//! Duplicate-free batches: the pass of `NoDuplicatesBatchSampler` over interned values.
//!
//! A row's values (one per compared column) are interned once into dense ids ([`Interner`]); every epoch then
//! walks a shuffled row order ([`no_duplicates_pass`]). A row joins the current batch unless one of its values is
//! already in it; rows that clash wait, in their order, at the front of the queue for the next batch. A batch is
//! closed when it reaches `batch_size` rows or the queue runs out; with `drop_last`, a short batch is dropped.
//!
//! "Already in the batch" is a per-value stamp (the batch number that last took the value), so the test costs one
//! load per value instead of a hash-set probe, and nothing is cleared between batches.

use crate::error::{invalid, CoreResult};
use std::collections::{HashMap, VecDeque};

/// Maps values to dense ids `0..len()`, in order of first appearance.
#[derive(Debug, Default)]
pub struct Interner<K: std::hash::Hash + Eq> {
    ids: HashMap<K, u32>,
}

impl<K: std::hash::Hash + Eq> Interner<K> {
    /// An empty interner.
    pub fn new() -> Self {
        Self {
            ids: HashMap::new(),
        }
    }

    /// The number of distinct values seen.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no value was interned yet.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Interner<String> {
    /// The id of `value`, allocating the next one on first sight (no allocation for a value seen before).
    pub fn id_of_str(&mut self, value: &str) -> CoreResult<u32> {
        if let Some(&id) = self.ids.get(value) {
            return Ok(id);
        }
        let id = next_id(self.ids.len())?;
        self.ids.insert(value.to_owned(), id);
        Ok(id)
    }
}

impl Interner<u64> {
    /// The id of a hashed value.
    pub fn id_of_u64(&mut self, value: u64) -> CoreResult<u32> {
        let len = self.ids.len();
        match self.ids.entry(value) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => Ok(*e.insert(next_id(len)?)),
        }
    }
}

fn next_id(len: usize) -> CoreResult<u32> {
    u32::try_from(len).map_err(|_| invalid("more than 2^32 distinct values to compare"))
}

/// One shuffled pass: the batches (row indices) of `order`, none of which repeats a value.
///
/// `ids` is row-major, `values_per_row` ids per row, each `< num_values`; `order` lists rows (each at most once).
pub fn no_duplicates_pass(
    ids: &[u32],
    values_per_row: usize,
    num_values: usize,
    order: &[usize],
    batch_size: usize,
    drop_last: bool,
) -> CoreResult<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(invalid("batch_size must be >= 1, got 0"));
    }
    if values_per_row == 0 {
        return Err(invalid("no column to compare: values_per_row is 0"));
    }
    if !ids.len().is_multiple_of(values_per_row) {
        return Err(invalid(format!(
            "ids has {} entries, not a multiple of values_per_row={values_per_row}",
            ids.len()
        )));
    }
    let num_rows = ids.len() / values_per_row;
    if let Some(&row) = order.iter().find(|&&r| r >= num_rows) {
        return Err(invalid(format!(
            "order holds row {row}, but there are {num_rows} rows"
        )));
    }
    if let Some(&id) = ids.iter().find(|&&v| v as usize >= num_values) {
        return Err(invalid(format!(
            "value id {id} is not below num_values={num_values}"
        )));
    }
    // stamp[v] == batch number that holds value v; 0 means none (batch numbers start at 1).
    let mut stamp = vec![0u32; num_values];
    let mut waiting: VecDeque<usize> = order.iter().copied().collect();
    let mut batches = Vec::with_capacity(order.len() / batch_size + 1);
    let mut skipped: Vec<usize> = Vec::new();
    let mut number: u32 = 0;
    while !waiting.is_empty() {
        number = number.wrapping_add(1);
        if number == 0 {
            stamp.iter_mut().for_each(|s| *s = 0);
            number = 1;
        }
        let mut batch = Vec::with_capacity(batch_size.min(order.len()));
        skipped.clear();
        while let Some(row) = waiting.pop_front() {
            let values = &ids[row * values_per_row..(row + 1) * values_per_row];
            if values.iter().any(|&v| stamp[v as usize] == number) {
                skipped.push(row);
                continue;
            }
            batch.push(row);
            if batch.len() == batch_size {
                break;
            }
            for &v in values {
                stamp[v as usize] = number;
            }
        }
        for &row in skipped.iter().rev() {
            waiting.push_front(row);
        }
        if batch.len() == batch_size || !drop_last {
            batches.push(batch);
        }
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sampler as the Python code states it: sets of values, a deque, skipped rows back to the front.
    fn reference_pass(
        rows: &[Vec<&str>],
        order: &[usize],
        batch_size: usize,
        drop_last: bool,
    ) -> Vec<Vec<usize>> {
        let mut waiting: VecDeque<usize> = order.iter().copied().collect();
        let mut out = Vec::new();
        while !waiting.is_empty() {
            let mut batch = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut skipped = Vec::new();
            while let Some(row) = waiting.pop_front() {
                if rows[row].iter().any(|v| seen.contains(v)) {
                    skipped.push(row);
                    continue;
                }
                batch.push(row);
                if batch.len() == batch_size {
                    break;
                }
                seen.extend(rows[row].iter().copied());
            }
            for &r in skipped.iter().rev() {
                waiting.push_front(r);
            }
            if batch.len() == batch_size || !drop_last {
                out.push(batch);
            }
        }
        out
    }

    fn interned(rows: &[Vec<&str>]) -> (Vec<u32>, usize) {
        let mut interner = Interner::<String>::new();
        let ids = rows
            .iter()
            .flatten()
            .map(|v| interner.id_of_str(v).unwrap())
            .collect();
        (ids, interner.len())
    }

    #[test]
    fn matches_the_set_based_pass_on_heavy_duplicates() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let rows: Vec<Vec<&str>> = (0..200)
            .map(|i| vec![names[i % 7], names[(i * 3 + 1) % 5]])
            .collect();
        let mut order: Vec<usize> = (0..200).collect();
        // A fixed shuffle (LCG) so the test needs no random crate.
        let mut state = 12345u64;
        for i in (1..order.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (state >> 33) as usize % (i + 1));
        }
        let (ids, n) = interned(&rows);
        for batch_size in [1, 2, 3, 4, 8] {
            for drop_last in [false, true] {
                let ours = no_duplicates_pass(&ids, 2, n, &order, batch_size, drop_last).unwrap();
                assert_eq!(ours, reference_pass(&rows, &order, batch_size, drop_last));
            }
        }
    }

    #[test]
    fn no_batch_repeats_a_value_and_every_row_appears_once_without_drop_last() {
        let rows: Vec<Vec<&str>> = (0..50).map(|i| vec![["x", "y", "z"][i % 3], "w"]).collect();
        let (ids, n) = interned(&rows);
        let order: Vec<usize> = (0..50).collect();
        let batches = no_duplicates_pass(&ids, 2, n, &order, 4, false).unwrap();
        // "w" is in every row: every batch holds one row.
        assert!(batches.iter().all(|b| b.len() == 1));
        let mut all: Vec<usize> = batches.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, order);
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        assert!(no_duplicates_pass(&[0, 1], 2, 2, &[0], 0, false).is_err());
        assert!(no_duplicates_pass(&[0, 1], 0, 2, &[0], 1, false).is_err());
        assert!(no_duplicates_pass(&[0, 1, 2], 2, 3, &[0], 1, false).is_err());
        assert!(no_duplicates_pass(&[0, 1], 2, 2, &[1], 1, false).is_err());
        assert!(no_duplicates_pass(&[0, 5], 2, 2, &[0], 1, false).is_err());
    }

    #[test]
    fn interning_is_by_value() {
        let mut s = Interner::<String>::new();
        assert_eq!(s.id_of_str("a").unwrap(), 0);
        assert_eq!(s.id_of_str("b").unwrap(), 1);
        assert_eq!(s.id_of_str("a").unwrap(), 0);
        let mut h = Interner::<u64>::new();
        assert_eq!(h.id_of_u64(99).unwrap(), 0);
        assert_eq!(h.id_of_u64(7).unwrap(), 1);
        assert_eq!(h.id_of_u64(99).unwrap(), 0);
        assert_eq!(h.len(), 2);
    }
}
