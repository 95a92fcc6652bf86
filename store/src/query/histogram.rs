//! Histogram bucket arithmetic: validating the request and turning sparse
//! per-bucket counts into the dense result. Back-end neutral.

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

    /// Dense buckets from sparse `(start_ms, key, count)` rows. `series` are
    /// the split's top values; a key outside them counts as `Other`, which
    /// is appended to the series when any event fell there.
    pub(crate) fn assemble(
        &self,
        mut series: Vec<GroupKey>,
        rows: Vec<(i64, Option<GroupKey>, u64)>,
    ) -> Histogram {
        let split = !series.is_empty();
        let other = series.len();
        let mut buckets: Vec<Bucket> = (0..self.count)
            .map(|i| Bucket {
                start_ms: self.first_ms + self.bucket_ms * i as i64,
                count: 0,
                split_counts: if split {
                    vec![0; other + 1]
                } else {
                    Vec::new()
                },
            })
            .collect();
        let index: HashMap<String, usize> = series
            .iter()
            .enumerate()
            .map(|(i, key)| (key_text(key), i))
            .collect();
        for (start_ms, key, n) in rows {
            let Some(bucket) = usize::try_from((start_ms - self.first_ms) / self.bucket_ms)
                .ok()
                .and_then(|i| buckets.get_mut(i))
            else {
                continue;
            };
            bucket.count += n;
            if split {
                let at = key
                    .as_ref()
                    .and_then(|key| index.get(&key_text(key)))
                    .copied()
                    .unwrap_or(other);
                bucket.split_counts[at] += n;
            }
        }
        if split {
            let any_other = buckets.iter().any(|bucket| bucket.split_counts[other] > 0);
            if any_other {
                series.push(GroupKey::Other);
            } else {
                for bucket in &mut buckets {
                    bucket.split_counts.pop();
                }
            }
        }
        Histogram {
            bucket_ms: self.bucket_ms,
            series,
            buckets,
        }
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
