//! Per-thread counters and histograms; merged after the threads join.
//!
//! Each worker thread owns one [`ThreadStats`] (run totals: counters and
//! the pacing histograms) and one [`Interval`] (the latency of the current
//! second), which it hands to the main thread at every one-second boundary
//! and starts afresh; the main thread merges the intervals into the run's
//! histograms, the per-second series and the `--hdr-log`. Nothing is shared
//! between threads on the hot path.

use hdrhistogram::Histogram;

/// Highest latency the histograms hold (1 hour, in µs); larger values saturate.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Highest pacing value held (1 hour, in ns); larger values saturate.
pub const PACING_MAX_NS: u64 = 3_600_000_000_000;
/// Histogram precision: 3 significant digits.
pub const LATENCY_SIGFIG: u8 = 3;
/// Status codes counted exactly: 100..=599; anything else counts as 0.
pub const STATUS_CODES: usize = 600;

/// An empty latency histogram (µs, 1 µs to [`LATENCY_MAX_US`]).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// An empty pacing histogram (ns, 1 ns to [`PACING_MAX_NS`]).
pub fn pacing_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, PACING_MAX_NS, LATENCY_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Failures, each counted once where it happens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Errors {
    /// Failed connect attempts (refused, unreachable, timed out).
    pub connect: u64,
    /// Failed writes (requests not sent in full).
    pub write: u64,
    /// Failed reads (e.g. connection reset).
    pub read: u64,
    /// Requests whose response did not come within `--timeout`.
    pub timeout: u64,
    /// Connections the server closed (`Connection: close` or EOF).
    pub closed: u64,
    /// Responses that were not valid HTTP.
    pub parse: u64,
}

impl Errors {
    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.write += o.write;
        self.read += o.read;
        self.timeout += o.timeout;
        self.closed += o.closed;
        self.parse += o.parse;
    }
}

/// One thread's run totals; [`ThreadStats::merge`] combines them.
#[derive(Debug, Clone)]
pub struct ThreadStats {
    /// Requests written (or attempted on a failed write).
    pub requests_sent: u64,
    /// Final responses received.
    pub responses: u64,
    /// Request bytes sent by completed writes.
    pub bytes_sent: u64,
    /// Events in 2xx responses, minus listed rejects when they are parsed.
    pub events_acked: u64,
    /// Count per exact status code (index = code).
    pub status: Vec<u64>,
    /// Failures by kind.
    pub errors: Errors,
    /// Connections opened (the first ones included).
    pub connects: u64,
    /// Open loop: how far from each request's intended time (or, when its
    /// connection was busy then, from when it became free) its send was
    /// handed to the kernel, in ns, late or early: the generator's own
    /// pacing error.
    pub send_lateness_ns: Histogram<u64>,
    /// Open loop: the sends of `send_lateness_ns` that went early (pulled
    /// into a round that was sending anyway), by how much, in ns.
    pub send_early_ns: Histogram<u64>,
    /// Open loop: how late each timer wake-up came after the time asked,
    /// in ns (what the early wake-up and the spin make up for).
    pub timer_wake_late_ns: Histogram<u64>,
    /// Open loop: requests whose intended time passed while their
    /// connection was still waiting for an earlier answer (or connecting).
    pub sends_behind: u64,
    /// Open loop: requests intended before the end that were never sent.
    pub backlog: u64,
    /// Polls made while spinning towards a send.
    pub spin_polls: u64,
}

impl ThreadStats {
    /// Zeroed counters and empty histograms.
    pub fn new() -> ThreadStats {
        ThreadStats {
            requests_sent: 0,
            responses: 0,
            bytes_sent: 0,
            events_acked: 0,
            status: vec![0; STATUS_CODES],
            errors: Errors::default(),
            connects: 0,
            send_lateness_ns: pacing_histogram(),
            send_early_ns: pacing_histogram(),
            timer_wake_late_ns: pacing_histogram(),
            sends_behind: 0,
            backlog: 0,
            spin_polls: 0,
        }
    }

    /// Counts one final response's `status` (a code of 600 or above is
    /// counted under 0).
    pub fn record_status(&mut self, status: u16) {
        self.responses += 1;
        let index = usize::from(status);
        self.status[if index < STATUS_CODES { index } else { 0 }] += 1;
    }

    /// Adds `o`'s counters and histograms into `self`.
    pub fn merge(&mut self, o: &ThreadStats) {
        self.requests_sent += o.requests_sent;
        self.responses += o.responses;
        self.bytes_sent += o.bytes_sent;
        self.events_acked += o.events_acked;
        for (a, b) in self.status.iter_mut().zip(&o.status) {
            *a += b;
        }
        self.errors.add(&o.errors);
        self.connects += o.connects;
        self.send_lateness_ns
            .add(&o.send_lateness_ns)
            .expect("histograms with the same bounds always add");
        self.send_early_ns
            .add(&o.send_early_ns)
            .expect("histograms with the same bounds always add");
        self.timer_wake_late_ns
            .add(&o.timer_wake_late_ns)
            .expect("histograms with the same bounds always add");
        self.sends_behind += o.sends_behind;
        self.backlog += o.backlog;
        self.spin_polls += o.spin_polls;
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self::new()
    }
}

/// The latency of one interval (normally one second) of one thread, or of
/// all threads once merged.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Interval number from the run's start (0 = the first second).
    pub index: u64,
    /// Its length in ns (the last one is usually shorter).
    pub length_ns: u64,
    /// Responses in this interval.
    pub responses: u64,
    /// Requests handed to the kernel in this interval.
    pub sent: u64,
    /// Latency in µs from the intended send time (open loop) or the send
    /// (closed loop): the corrected latency.
    pub corrected_us: Histogram<u64>,
    /// Latency in µs from the actual send: the service time as the
    /// server saw it, uncorrected for coordinated omission.
    pub uncorrected_us: Histogram<u64>,
}

impl Interval {
    /// An empty interval `index`.
    pub fn new(index: u64) -> Interval {
        Interval {
            index,
            length_ns: 0,
            responses: 0,
            sent: 0,
            corrected_us: latency_histogram(),
            uncorrected_us: latency_histogram(),
        }
    }

    /// Records one response's two latencies, in µs (raised to at least 1;
    /// values above [`LATENCY_MAX_US`] saturate).
    pub fn record(&mut self, corrected_us: u64, uncorrected_us: u64) {
        self.responses += 1;
        self.corrected_us.saturating_record(corrected_us.max(1));
        self.uncorrected_us.saturating_record(uncorrected_us.max(1));
    }

    /// Adds another thread's part of the same interval.
    pub fn merge(&mut self, o: &Interval) {
        self.length_ns = self.length_ns.max(o.length_ns);
        self.responses += o.responses;
        self.sent += o.sent;
        self.corrected_us
            .add(&o.corrected_us)
            .expect("histograms with the same bounds always add");
        self.uncorrected_us
            .add(&o.uncorrected_us)
            .expect("histograms with the same bounds always add");
    }

    /// Empties it for interval `index`, keeping the allocations (clearing
    /// the histograms is a few hundred KB of writes: the main thread does
    /// it before handing an interval back, see [`Interval::relabel`]).
    pub fn reset(&mut self, index: u64) {
        self.corrected_us.reset();
        self.uncorrected_us.reset();
        self.relabel(index);
    }

    /// Makes an already emptied interval interval `index` (no histogram
    /// work: cheap enough for a worker's hot path).
    pub fn relabel(&mut self, index: u64) {
        debug_assert!(self.corrected_us.is_empty() && self.uncorrected_us.is_empty());
        self.index = index;
        self.length_ns = 0;
        self.responses = 0;
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counts_and_histograms() {
        let mut a = ThreadStats::new();
        let mut b = ThreadStats::new();
        a.record_status(200);
        b.record_status(200);
        b.record_status(503);
        b.record_status(999);
        b.errors.connect = 2;
        b.send_lateness_ns.record(3_000).unwrap();
        b.send_early_ns.record(2_000).unwrap();
        b.backlog = 4;
        a.merge(&b);
        assert_eq!(a.responses, 4);
        assert_eq!((a.status[200], a.status[503], a.status[0]), (2, 1, 1));
        assert_eq!(a.errors.connect, 2);
        assert_eq!(a.send_lateness_ns.len(), 1);
        assert_eq!(a.send_early_ns.len(), 1);
        assert_eq!(a.backlog, 4);
    }

    #[test]
    fn intervals_merge_and_reset() {
        let mut a = Interval::new(3);
        let mut b = Interval::new(3);
        a.record(100, 90);
        b.record(300, 50);
        b.record(0, 0);
        b.length_ns = 1_000_000_000;
        a.merge(&b);
        assert_eq!(a.responses, 3);
        assert_eq!(a.length_ns, 1_000_000_000);
        assert_eq!(a.corrected_us.len(), 3);
        assert_eq!(a.corrected_us.min(), 1);
        assert!(a.corrected_us.max() >= 300);
        assert!(a.uncorrected_us.max() < 100);
        a.reset(4);
        assert_eq!((a.index, a.responses, a.corrected_us.len()), (4, 0, 0));
    }
}
