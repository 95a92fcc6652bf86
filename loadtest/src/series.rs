//! The main thread's side of the per-second intervals: merge the workers'
//! parts of each second once every worker has sent it (or finished), add
//! it to the run's histograms, append it to the per-second series, print
//! the progress line and write it to the `--hdr-log`.
//!
//! The `--hdr-log` is an HdrHistogram interval log (the format of Java
//! HdrHistogram's `HistogramLogWriter`, read by `HistogramLogProcessor` and
//! HdrHistogram's plotting tools), written with the `hdrhistogram` crate's
//! own writer: one line per second, V2-deflate histograms in base64. Values
//! are microseconds; each second has the corrected histogram (untagged,
//! what the tools show by default) and the uncorrected one
//! (`Tag=uncorrected`). `HistogramLogProcessor -outputValueUnitRatio 1000`
//! prints milliseconds.

use std::collections::BTreeMap;
use std::io::{self, Write};

use hdrhistogram::serialization::interval_log::{IntervalLogWriter, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::{latency_histogram, Interval};
use crate::worker::INTERVAL_NS;

/// Tag of the uncorrected histograms in the `--hdr-log`.
pub const UNCORRECTED_TAG: &str = "uncorrected";
/// Divisor of the log's `Interval_Max` column: µs values, shown in ms.
pub const HDR_LOG_MAX_DIVISOR: f64 = 1_000.0;

/// One second of the run, as the series in the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SecondPoint {
    /// Seconds from the start to the interval's start.
    pub t_s: u64,
    /// Its length in seconds (the last one is usually shorter).
    pub length_s: f64,
    /// Responses in it.
    pub responses: u64,
    /// Responses per second over it.
    pub requests_per_s: f64,
    /// Requests sent per second over it.
    pub sent_per_s: f64,
    /// Corrected latency percentiles in it, µs (0 when nothing was answered).
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Highest, µs.
    pub max_us: u64,
}

impl SecondPoint {
    /// The point of a merged interval.
    pub fn of(iv: &Interval) -> SecondPoint {
        let length_s = (iv.length_ns as f64 / 1e9).max(1e-9);
        let h = &iv.corrected_us;
        let q = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        SecondPoint {
            t_s: iv.index * (INTERVAL_NS / 1_000_000_000),
            length_s,
            responses: iv.responses,
            requests_per_s: iv.responses as f64 / length_s,
            sent_per_s: iv.sent as f64 / length_s,
            p50_us: q(0.5),
            p99_us: q(0.99),
            max_us: if h.is_empty() { 0 } else { h.max() },
        }
    }
}

/// Merges the workers' intervals in order (see the module docs).
pub struct Merger {
    reported: Vec<Option<u64>>,
    finished: Vec<bool>,
    pending: BTreeMap<u64, Box<Interval>>,
    /// The run's corrected latency, µs.
    pub corrected_us: Histogram<u64>,
    /// The run's uncorrected latency, µs.
    pub uncorrected_us: Histogram<u64>,
    /// One point per finished interval, in order.
    pub series: Vec<SecondPoint>,
}

impl Merger {
    /// A merger for `threads` workers.
    pub fn new(threads: usize) -> Merger {
        Merger {
            reported: vec![None; threads],
            finished: vec![false; threads],
            pending: BTreeMap::new(),
            corrected_us: latency_histogram(),
            uncorrected_us: latency_histogram(),
            series: Vec::new(),
        }
    }

    /// Takes worker `thread`'s part of an interval; returns the parts no
    /// longer needed (cleared, for the workers to reuse).
    pub fn add(&mut self, thread: usize, iv: Box<Interval>) -> Option<Box<Interval>> {
        self.reported[thread] = Some(iv.index);
        match self.pending.get_mut(&iv.index) {
            Some(base) => {
                base.merge(&iv);
                let mut spare = iv;
                spare.reset(0);
                Some(spare)
            }
            None => {
                self.pending.insert(iv.index, iv);
                None
            }
        }
    }

    /// Worker `thread` will send nothing more.
    pub fn finish(&mut self, thread: usize) {
        self.finished[thread] = true;
    }

    /// Whether every worker has finished.
    pub fn all_finished(&self) -> bool {
        self.finished.iter().all(|&f| f)
    }

    /// The next interval every worker has reported or finished past, merged;
    /// `None` while one is still to come. The caller hands it to
    /// [`Merger::absorb`] after using it.
    pub fn next_complete(&mut self) -> Option<Box<Interval>> {
        let (&index, _) = self.pending.iter().next()?;
        let complete = self
            .reported
            .iter()
            .zip(&self.finished)
            .all(|(r, &f)| f || r.is_some_and(|r| r >= index));
        if !complete {
            return None;
        }
        self.pending.remove(&index)
    }

    /// Adds a complete interval to the run's histograms and the series;
    /// returns it cleared.
    pub fn absorb(&mut self, mut iv: Box<Interval>) -> Box<Interval> {
        self.corrected_us
            .add(&iv.corrected_us)
            .expect("histograms with the same bounds always add");
        self.uncorrected_us
            .add(&iv.uncorrected_us)
            .expect("histograms with the same bounds always add");
        self.series.push(SecondPoint::of(&iv));
        iv.reset(0);
        iv
    }
}

/// Writes one interval (corrected untagged, uncorrected tagged) to an
/// interval log.
pub fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    iv: &Interval,
) -> io::Result<()> {
    let start = std::time::Duration::from_nanos(iv.index * INTERVAL_NS);
    let length = std::time::Duration::from_nanos(iv.length_ns);
    let tag = Tag::new(UNCORRECTED_TAG).expect("a tag without spaces or commas");
    log.write_histogram(&iv.corrected_us, start, length, None)
        .map_err(|e| io::Error::other(e.to_string()))?;
    log.write_histogram(&iv.uncorrected_us, start, length, Some(tag))
        .map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{
        IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
    };
    use hdrhistogram::serialization::Deserializer;

    fn part(index: u64, latencies: &[u64]) -> Box<Interval> {
        let mut iv = Interval::new(index);
        iv.length_ns = INTERVAL_NS;
        for &l in latencies {
            iv.record(l, l / 2);
            iv.sent += 1;
        }
        Box::new(iv)
    }

    #[test]
    fn an_interval_completes_when_every_worker_sent_it_or_finished() {
        let mut m = Merger::new(2);
        assert!(m.add(0, part(0, &[100, 200])).is_none());
        assert!(
            m.next_complete().is_none(),
            "worker 1 has not sent second 0"
        );
        let spare = m
            .add(1, part(0, &[300]))
            .expect("the merged part comes back");
        assert!(spare.corrected_us.is_empty());
        let iv = m.next_complete().expect("second 0 is complete");
        assert_eq!((iv.index, iv.responses, iv.sent), (0, 3, 3));
        m.absorb(iv);
        // Worker 0 ends after second 0; worker 1 goes on alone.
        m.finish(0);
        m.add(1, part(1, &[1_000]));
        let iv = m.next_complete().expect("second 1 needs only worker 1");
        m.absorb(iv);
        assert_eq!(m.series.len(), 2);
        assert_eq!(m.series[0].responses, 3);
        assert_eq!(m.series[0].requests_per_s, 3.0);
        assert_eq!(m.series[1].t_s, 1);
        assert!((995..=1_001).contains(&m.series[1].p99_us));
        assert_eq!(m.corrected_us.len(), 4);
        assert_eq!(
            m.uncorrected_us.max(),
            m.uncorrected_us.highest_equivalent(500)
        );
    }

    #[test]
    fn a_point_of_a_short_last_second_is_per_second() {
        let mut iv = part(4, &[10; 50]);
        iv.length_ns = INTERVAL_NS / 4;
        let p = SecondPoint::of(&iv);
        assert_eq!((p.t_s, p.responses), (4, 50));
        assert_eq!(p.requests_per_s, 200.0);
        assert_eq!((p.p50_us, p.p99_us, p.max_us), (10, 10, 10));
        let empty = SecondPoint::of(&Interval::new(0));
        assert_eq!((empty.p99_us, empty.requests_per_s), (0, 0.0));
    }

    #[test]
    fn the_hdr_log_reads_back_as_two_histograms_per_second() {
        let mut buf = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        {
            let mut log = IntervalLogWriterBuilder::new()
                .with_max_value_divisor(HDR_LOG_MAX_DIVISOR)
                .begin_log_with(&mut buf, &mut ser)
                .unwrap();
            write_interval(&mut log, &part(0, &[100, 2_000])).unwrap();
            write_interval(&mut log, &part(1, &[300])).unwrap();
        }
        let mut hists = Vec::new();
        for entry in IntervalLogIterator::new(&buf) {
            if let LogEntry::Interval(h) = entry.unwrap() {
                hists.push(h);
            }
        }
        assert_eq!(hists.len(), 4);
        assert_eq!(hists[0].tag(), None);
        assert_eq!(hists[1].tag().map(|t| t.as_str()), Some(UNCORRECTED_TAG));
        assert_eq!(hists[2].start_timestamp().as_secs(), 1);
        assert_eq!(hists[0].duration().as_secs(), 1);
        assert!(
            (hists[0].max() - 2.0).abs() < 0.01,
            "max in ms: {}",
            hists[0].max()
        );
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut base64_decode(hists[0].encoded_histogram()).as_slice())
            .unwrap();
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded.max(), decoded.highest_equivalent(2_000));
    }

    /// Standard base64 (the log's encoding), decoded without a dependency.
    fn base64_decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= u32::from(value(c)) << (18 - 6 * i);
            }
            out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
        }
        out
    }
}
