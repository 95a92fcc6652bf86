//! Histogram bucket arithmetic: validating the request, counting events
//! into dense buckets, and building the result. Back-end neutral.

use std::collections::HashMap;

use super::api::{Bucket, GroupKey, Histogram, HistogramRequest, MAX_HISTOGRAM_BUCKETS};
use super::error::QueryError;

/// Widest bucket accepted, ms (about 100 years): keeps the bucket
/// arithmetic `((ts % w) + w) % w` far from `i64` overflow.
pub const MAX_BUCKET_MS: i64 = 100 * 366 * 24 * 3_600 * 1_000;

/// The dense bucket layout of one request.
#[derive(Debug)]
pub(crate) struct Plan {
    bucket_ms: i64,
    first_ms: i64,
    count: usize,
}

/// Counts being gathered for a [`Plan`]: totals per bucket and, with a
/// split, per (bucket, series) where the last series slot is `Other`.
#[derive(Debug)]
pub(crate) struct Counts {
    totals: Vec<u64>,
    split: Vec<u64>,
    /// Series slots per bucket (top values + Other), 0 without a split.
    width: usize,
}

impl Plan {
    /// Checks the bucket width and the number of buckets the range needs.
    pub(crate) fn new(request: &HistogramRequest) -> Result<Self, QueryError> {
        let bucket_ms = request.bucket_ms;
        if !(1..=MAX_BUCKET_MS).contains(&bucket_ms) {
            return Err(QueryError::Invalid(format!(
                "bucket_ms must be 1..={MAX_BUCKET_MS}, got {bucket_ms}"
            )));
        }
        let range = request.select.range;
        if range.from_ms >= range.to_ms {
            return Ok(Self {
                bucket_ms,
                first_ms: range.from_ms,
                count: 0,
            });
        }
        // i128: the range may span all of i64.
        let width = i128::from(bucket_ms);
        let first = i128::from(range.from_ms).div_euclid(width) * width;
        let last = (i128::from(range.to_ms) - 1).div_euclid(width) * width;
        let count = (last - first) / width + 1;
        if count > MAX_HISTOGRAM_BUCKETS as i128 {
            return Err(QueryError::Invalid(format!(
                "the range needs {count} buckets of {bucket_ms} ms, the limit is \
                 {MAX_HISTOGRAM_BUCKETS}; widen the buckets or narrow the range"
            )));
        }
        Ok(Self {
            bucket_ms,
            first_ms: i64::try_from(first).map_err(|_| {
                QueryError::Invalid("the range starts before the first bucket".to_owned())
            })?,
            count: usize::try_from(count).unwrap_or(0),
        })
    }

    /// How many buckets the range needs.
    pub(crate) fn bucket_count(&self) -> usize {
        self.count
    }

    /// Empty counts for `series_len` split series (0: no split).
    pub(crate) fn counts(&self, series_len: usize) -> Counts {
        let width = if series_len == 0 { 0 } else { series_len + 1 };
        Counts {
            totals: vec![0; self.count],
            split: vec![0; self.count * width],
            width,
        }
    }

    /// Adds `n` events at time `ts_ms` (any time inside the bucket, e.g. its
    /// start) to `series` (`None` = Other). Times outside the plan are
    /// ignored (the selection's range already excludes them).
    pub(crate) fn add(&self, counts: &mut Counts, ts_ms: i64, series: Option<usize>, n: u64) {
        let offset = i128::from(ts_ms) - i128::from(self.first_ms);
        let Ok(index) = usize::try_from(offset.div_euclid(i128::from(self.bucket_ms))) else {
            return;
        };
        let Some(total) = counts.totals.get_mut(index) else {
            return;
        };
        *total += n;
        if counts.width > 0 {
            let slot = series
                .filter(|s| *s + 1 < counts.width)
                .unwrap_or(counts.width - 1);
            counts.split[index * counts.width + slot] += n;
        }
    }

    /// The histogram from gathered counts. `Other` is appended to the series
    /// only when some event fell there.
    pub(crate) fn finish(&self, mut series: Vec<GroupKey>, counts: Counts) -> Histogram {
        let width = counts.width;
        let any_other =
            width > 0 && (0..self.count).any(|bucket| counts.split[bucket * width + width - 1] > 0);
        let kept = if any_other {
            width
        } else {
            width.saturating_sub(1)
        };
        if any_other {
            series.push(GroupKey::Other);
        }
        let buckets = counts
            .totals
            .iter()
            .enumerate()
            .map(|(i, total)| Bucket {
                start_ms: self.first_ms + self.bucket_ms * i as i64,
                count: *total,
                split_counts: counts.split[i * width..i * width + kept].to_vec(),
            })
            .collect();
        Histogram {
            bucket_ms: self.bucket_ms,
            series,
            buckets,
        }
    }

    /// The histogram from sparse `(start_ms, key, count)` rows (a back end
    /// that groups on the server). A key outside `series` counts as Other.
    pub(crate) fn assemble(
        &self,
        series: Vec<GroupKey>,
        rows: Vec<(i64, Option<GroupKey>, u64)>,
    ) -> Histogram {
        let index: HashMap<String, usize> = series
            .iter()
            .enumerate()
            .map(|(i, key)| (key_text(key), i))
            .collect();
        let mut counts = self.counts(series.len());
        for (start_ms, key, n) in rows {
            let slot = key
                .as_ref()
                .and_then(|key| index.get(&key_text(key)).copied());
            self.add(&mut counts, start_ms, slot, n);
        }
        self.finish(series, counts)
    }
}

/// A hashable identity for a group key (its JSON text).
fn key_text(key: &GroupKey) -> String {
    match key {
        GroupKey::Value(value) => format!("v{value}"),
        GroupKey::Missing => "m".to_owned(),
        GroupKey::Other => "o".to_owned(),
    }
}
