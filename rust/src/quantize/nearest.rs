//! The best-`k` selection of the Hamming search: hits at small integer distances, kept with a histogram bar.

/// Keeps the best `k` of one query's hits as `(distance, index)`. Rows arrive in increasing index order, so a
/// newcomer enters only with a distance strictly below `bar`: the smallest distance `D` such that `k` kept hits lie
/// at `D` or nearer (a later row at `D` loses the tie to them). Distances are small integers, so a histogram of the
/// kept hits moves `bar` down exactly as hits arrive (amortised O(1) per hit): the bar is never stale, which keeps
/// the number of hits near `k (1 + ln(n / k))` even for a large `k`. Hits are appended to a buffer that is cut back
/// to the best `k` only when it fills.
pub(super) struct Nearest {
    hits: Vec<(u32, usize)>,
    /// Kept hits per distance; `hist.len()` is one past the largest possible distance.
    hist: Vec<u32>,
    pub(super) bar: u32,
    /// Kept hits with a distance below `bar`; always `< k` once `bar` has left its initial value.
    below: usize,
    k: usize,
}

impl Nearest {
    /// `max_distance`: the largest distance a row can have (the code width in bits).
    pub(super) fn new(k: usize, max_distance: u32) -> Self {
        Nearest {
            hits: Vec::with_capacity(Self::capacity(k)),
            hist: vec![0; max_distance as usize + 1],
            bar: max_distance + 1,
            below: 0,
            k,
        }
    }

    fn capacity(k: usize) -> usize {
        (4 * k).max(k + 64)
    }

    /// Offers row `index` at distance `d` (callers may skip rows with `d >= bar`).
    #[inline(always)]
    pub(super) fn offer(&mut self, d: u32, index: usize) {
        if d >= self.bar {
            return;
        }
        self.hits.push((d, index));
        self.hist[d as usize] += 1;
        self.below += 1;
        while self.below >= self.k {
            self.bar -= 1;
            self.below -= self.hist[self.bar as usize] as usize;
        }
        if self.hits.len() >= Self::capacity(self.k) {
            self.prune();
        }
    }

    /// Drops the hits that can no longer be among the best `k`: those beyond `bar`, and those at `bar` past the first
    /// `k - below` (a later index loses a tie). `hist[bar]` may then overcount, which is harmless: `bar` only moves
    /// down, and the histogram is only read below it.
    fn prune(&mut self) {
        let (bar, mut at_bar) = (self.bar, self.k.saturating_sub(self.below));
        self.hits.retain(|&(d, _)| {
            d < bar
                || (d == bar && at_bar > 0 && {
                    at_bar -= 1;
                    true
                })
        });
    }

    /// The best `k` hits, nearest first (ties by the lower index).
    pub(super) fn into_sorted(mut self) -> Vec<(u32, usize)> {
        self.prune();
        self.hits.sort_unstable();
        self.hits.truncate(self.k);
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_nearest_k_and_the_lower_index_on_ties() {
        let mut best = Nearest::new(3, 8);
        for (index, d) in [5u32, 2, 7, 2, 0, 2, 8, 1].into_iter().enumerate() {
            best.offer(d, index);
        }
        assert_eq!(best.into_sorted(), vec![(0, 4), (1, 7), (2, 1)]);
    }

    #[test]
    fn pruning_keeps_the_first_rows_among_many_ties() {
        // Far more ties than the buffer holds: the kept hits are the first rows at the smallest distance.
        let mut best = Nearest::new(5, 4);
        for index in 0..1000 {
            best.offer((index % 3) as u32 + 1, index);
        }
        assert_eq!(
            best.into_sorted(),
            vec![(1, 0), (1, 3), (1, 6), (1, 9), (1, 12)]
        );
    }
}
