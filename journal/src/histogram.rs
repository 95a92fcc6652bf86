//! A lock-free histogram with power-of-two bucket bounds, for commit sizes
//! and commit latencies. Written by one committer, read by any thread.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets: `le 2^MIN_SHIFT`, `le 2^(MIN_SHIFT+1)`, …, then `+Inf`.
pub const BUCKETS: usize = 16;

/// A histogram of `u64` observations.
#[derive(Debug)]
pub struct Log2Histogram {
    min_shift: u32,
    counts: [AtomicU64; BUCKETS + 1],
    sum: AtomicU64,
}

/// A point-in-time copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the finite buckets.
    pub bounds: Vec<u64>,
    /// Cumulative counts per bound, then the total (the `+Inf` bucket).
    pub cumulative: Vec<u64>,
    /// Sum of all observations.
    pub sum: u64,
}

impl Log2Histogram {
    /// Buckets from `2^min_shift` up.
    pub fn new(min_shift: u32) -> Log2Histogram {
        Log2Histogram {
            min_shift,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: u64) {
        let bits = 64 - value.saturating_sub(1).leading_zeros();
        let index = (bits.saturating_sub(self.min_shift) as usize).min(BUCKETS);
        self.counts[index].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// A copy with cumulative counts (Prometheus style).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut cumulative = Vec::with_capacity(BUCKETS + 1);
        for c in &self.counts {
            running += c.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        HistogramSnapshot {
            bounds: (0..BUCKETS)
                .map(|i| 1u64 << (self.min_shift as usize + i))
                .collect(),
            cumulative,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_smallest_bucket_that_holds_them() {
        let h = Log2Histogram::new(4);
        for v in [0, 1, 16, 17, 32, 33, 1 << 40] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.bounds[0], 16);
        assert_eq!(s.cumulative[0], 3, "0, 1, 16 are ≤ 16");
        assert_eq!(s.cumulative[1], 5, "17, 32 are ≤ 32");
        assert_eq!(s.cumulative[2], 6, "33 is ≤ 64");
        assert_eq!(*s.cumulative.last().unwrap(), 7, "+Inf holds all");
    }
}
