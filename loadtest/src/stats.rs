//! Per-thread counters and latency histogram; merged after the threads join.
//!
//! Each runtime thread owns one [`ThreadStats`] (no atomics, no sharing on
//! the hot path); the only cross-thread value during the run is the progress
//! counter, which its thread alone writes.

use hdrhistogram::Histogram;

/// Highest latency the histogram holds (1 hour); larger values saturate.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Histogram precision: 3 significant digits.
pub const LATENCY_SIGFIG: u8 = 3;
/// Status codes counted exactly: 100..=599; anything else counts as 0.
pub const STATUS_CODES: usize = 600;

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

/// One thread's counters and latency histogram; [`ThreadStats::merge`]
/// combines them after the run.
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
    /// Response latency in µs, 1 to [`LATENCY_MAX_US`] at [`LATENCY_SIGFIG`]
    /// significant digits.
    pub latency_us: Histogram<u64>,
}

impl ThreadStats {
    /// Zeroed counters and an empty histogram.
    pub fn new() -> ThreadStats {
        ThreadStats {
            requests_sent: 0,
            responses: 0,
            bytes_sent: 0,
            events_acked: 0,
            status: vec![0; STATUS_CODES],
            errors: Errors::default(),
            connects: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGFIG)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Counts one final response: `status` (a code of 600 or above is counted
    /// under 0) and `latency_us` (µs, raised to at least 1; values above
    /// [`LATENCY_MAX_US`] saturate).
    pub fn record_response(&mut self, status: u16, latency_us: u64) {
        self.responses += 1;
        let index = usize::from(status);
        self.status[if index < STATUS_CODES { index } else { 0 }] += 1;
        self.latency_us.saturating_record(latency_us.max(1));
    }

    /// Adds `o`'s counters and histogram into `self`.
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
        self.latency_us
            .add(&o.latency_us)
            .expect("histograms with the same bounds always add");
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_counts_and_histograms() {
        let mut a = ThreadStats::new();
        let mut b = ThreadStats::new();
        a.record_response(200, 100);
        b.record_response(200, 300);
        b.record_response(503, 0);
        b.record_response(999, 5);
        b.errors.connect = 2;
        a.merge(&b);
        assert_eq!(a.responses, 4);
        assert_eq!((a.status[200], a.status[503], a.status[0]), (2, 1, 1));
        assert_eq!(a.errors.connect, 2);
        assert_eq!(a.latency_us.len(), 4);
        assert_eq!(a.latency_us.min(), 1);
        assert!(a.latency_us.max() >= 300);
    }
}
