//! Prometheus metrics (`GET /metrics`, text format 0.0.4). Each core owns
//! its counters (atomics written only by that core, so no contention); the
//! journals and the flusher expose theirs; a scrape on any core reads them
//! all. Nothing here holds secrets (no keys, no URIs).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use helios_journal::histogram::HistogramSnapshot;
use helios_journal::{IoDriver, JournalMonitor};

use crate::events::Priority;

/// Statuses counted one by one; anything else is counted as `other`.
pub const TRACKED_STATUSES: [u16; 16] = [
    200, 204, 400, 401, 403, 404, 405, 406, 408, 411, 413, 415, 429, 431, 500, 503,
];

/// Counters of one core.
#[derive(Debug, Default)]
pub struct CoreMetrics {
    responses: [AtomicU64; TRACKED_STATUSES.len() + 1],
    events_accepted: AtomicU64,
    events_rejected: AtomicU64,
    body_bytes: AtomicU64,
    /// Requests to each shipper protocol's endpoints, in
    /// `helios_shippers::Protocol::ALL` order.
    shipper_requests: [AtomicU64; helios_shippers::Protocol::ALL.len()],
    /// Events refused at the journal budget, in `Priority::ALL` order.
    budget_refused: [AtomicU64; Priority::ALL.len()],
}

impl CoreMetrics {
    /// Counts one response.
    pub fn response(&self, status: u16) {
        let i = TRACKED_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(TRACKED_STATUSES.len());
        self.responses[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the events of an acknowledged request.
    pub fn events(&self, accepted: u64, rejected: u64) {
        self.events_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.events_rejected.fetch_add(rejected, Ordering::Relaxed);
    }

    /// Counts a request to one of a shipper protocol's endpoints.
    pub fn shipper_request(&self, protocol: helios_shippers::Protocol) {
        let i = helios_shippers::Protocol::ALL
            .iter()
            .position(|&p| p == protocol)
            .unwrap_or(0);
        self.shipper_requests[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events refused at the journal budget, per priority
    /// (`Priority::index` order), whether one by one or as a whole 503.
    pub fn budget_refused(&self, counts: [u64; Priority::ALL.len()]) {
        for (counter, n) in self.budget_refused.iter().zip(counts) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Counts request body bytes received (on the wire).
    pub fn body_bytes(&self, n: u64) {
        self.body_bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counters of the flusher.
#[derive(Debug, Default)]
pub struct FlusherMetrics {
    /// Events newly stored.
    pub inserted: AtomicU64,
    /// Events the store already had (replays).
    pub duplicates: AtomicU64,
    /// Events sent to dead letters.
    pub dead_lettered: AtomicU64,
    /// Failed store writes (each retried).
    pub store_errors: AtomicU64,
    /// Events deleted by retention.
    pub retention_deleted: AtomicU64,
    /// Times the store writer thread died (a panic in a sink) and was
    /// restarted with a freshly opened store.
    pub writer_restarts: AtomicU64,
    /// The last store write failed (cleared by the next success): `/readyz`
    /// reports the store unreachable meanwhile.
    pub store_failing: std::sync::atomic::AtomicBool,
}

/// Counters of the embedded store's compactor (`crate::compaction`).
#[derive(Debug, Default)]
pub struct CompactionMetrics {
    /// Columnar files published.
    pub files: AtomicU64,
    /// Events moved from the hot tier into them.
    pub events: AtomicU64,
    /// Compaction steps that failed (undone, retried later).
    pub errors: AtomicU64,
    /// Columnar files dropped by retention.
    pub files_dropped: AtomicU64,
}

/// How the collector does its I/O, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoSetup {
    /// The driver every core runs.
    pub driver: IoDriver,
    /// Journal commits are buffered writes + fdatasync (`--journal-buffered-io`).
    pub journal_buffered_io: bool,
    /// The journals are on a memory filesystem (`--allow-volatile-journal`).
    pub journal_volatile: bool,
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    cores: Vec<Arc<CoreMetrics>>,
    io: Mutex<Option<IoSetup>>,
    journals: Mutex<Vec<(String, JournalMonitor)>>,
    /// The flusher's counters.
    pub flusher: Arc<FlusherMetrics>,
    /// Syslog's counters (`--syslog-udp`, `--syslog-tcp`, `--relp`).
    pub syslog: Arc<crate::syslog::SyslogMetrics>,
    /// The compactor's counters (embedded store only).
    pub compaction: Arc<CompactionMetrics>,
}

impl Metrics {
    /// Metrics for `cores` cores.
    pub fn new(cores: usize) -> Arc<Metrics> {
        Arc::new(Metrics {
            cores: (0..cores)
                .map(|_| Arc::new(CoreMetrics::default()))
                .collect(),
            io: Mutex::new(None),
            journals: Mutex::new(Vec::new()),
            flusher: Arc::new(FlusherMetrics::default()),
            syslog: Arc::new(crate::syslog::SyslogMetrics::default()),
            compaction: Arc::new(CompactionMetrics::default()),
        })
    }

    /// Records the I/O set-up chosen at start.
    pub fn set_io(&self, setup: IoSetup) {
        *self.io.lock().unwrap_or_else(|p| p.into_inner()) = Some(setup);
    }

    /// Core `i`'s counters.
    pub fn core(&self, i: usize) -> Arc<CoreMetrics> {
        Arc::clone(&self.cores[i])
    }

    /// Registers (or, after a reopen, replaces) the journal named `name`.
    pub fn set_journal(&self, name: &str, monitor: JournalMonitor) {
        let mut journals = self.journals.lock().unwrap_or_else(|p| p.into_inner());
        match journals.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = monitor,
            None => journals.push((name.to_string(), monitor)),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let io = *self.io.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(io) = io {
            header(
                &mut out,
                "helios_io_driver",
                "gauge",
                "I/O driver of the cores: 1 for the one running (epoll where io_uring is refused or --io-driver epoll).",
            );
            for driver in [IoDriver::IoUring, IoDriver::Epoll] {
                let _ = writeln!(
                    out,
                    "helios_io_driver{{driver=\"{}\"}} {}",
                    driver.name(),
                    u8::from(io.driver == driver)
                );
            }
            gauge(
                &mut out,
                "helios_journal_buffered_io",
                "1 when journal commits are buffered writes + fdatasync (--journal-buffered-io) instead of O_DIRECT.",
                u64::from(io.journal_buffered_io),
            );
            gauge(
                &mut out,
                "helios_journal_volatile",
                "1 when the journals are on a memory filesystem (--allow-volatile-journal): acks do not survive a power loss.",
                u64::from(io.journal_volatile),
            );
        }
        header(
            &mut out,
            "helios_requests_total",
            "counter",
            "HTTP responses sent, by status.",
        );
        for (i, status) in TRACKED_STATUSES
            .iter()
            .map(|s| s.to_string())
            .chain(["other".to_string()])
            .enumerate()
        {
            let n: u64 = self
                .cores
                .iter()
                .map(|c| c.responses[i].load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(out, "helios_requests_total{{status=\"{status}\"}} {n}");
        }
        let sum = |f: fn(&CoreMetrics) -> &AtomicU64| -> u64 {
            self.cores
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        counter(
            &mut out,
            "helios_events_accepted_total",
            "Events acknowledged (durable in a journal).",
            sum(|c| &c.events_accepted),
        );
        counter(
            &mut out,
            "helios_events_rejected_total",
            "Events rejected one by one (listed in a 200 response).",
            sum(|c| &c.events_rejected),
        );
        header(
            &mut out,
            "helios_shipper_requests_total",
            "counter",
            "Requests to the shippers' protocol endpoints (OTLP, Elasticsearch, Splunk HEC, Loki), by protocol.",
        );
        for (i, protocol) in helios_shippers::Protocol::ALL.iter().enumerate() {
            let n: u64 = self
                .cores
                .iter()
                .map(|c| c.shipper_requests[i].load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                out,
                "helios_shipper_requests_total{{protocol=\"{}\"}} {n}",
                protocol.name()
            );
        }
        header(
            &mut out,
            "helios_events_budget_refused_total",
            "counter",
            "Events refused because the journal was too full for their priority (low from --low-priority-budget-percent, normal in the --high-priority-reserve-percent, high at the budget), by priority.",
        );
        for priority in Priority::ALL {
            let n: u64 = self
                .cores
                .iter()
                .map(|c| c.budget_refused[priority.index()].load(Ordering::Relaxed))
                .sum();
            let _ = writeln!(
                out,
                "helios_events_budget_refused_total{{priority=\"{}\"}} {n}",
                priority.name()
            );
        }
        self.syslog.render(&mut out);
        counter(
            &mut out,
            "helios_request_body_bytes_total",
            "Request body bytes received on the wire.",
            sum(|c| &c.body_bytes),
        );
        let f = &self.flusher;
        counter(
            &mut out,
            "helios_store_inserted_total",
            "Events newly written to the store.",
            f.inserted.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_store_duplicates_total",
            "Events the store already had (replays, resends).",
            f.duplicates.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_store_errors_total",
            "Failed store writes (retried).",
            f.store_errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_store_writer_restarts_total",
            "Times the store writer died and was restarted on a reopened store.",
            f.writer_restarts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_retention_deleted_total",
            "Events deleted from the store by retention (--retention-days; SQLite hot tier).",
            f.retention_deleted.load(Ordering::Relaxed),
        );
        let c = &self.compaction;
        counter(
            &mut out,
            "helios_compacted_events_total",
            "Events the embedded store moved from its SQLite hot tier into columnar files.",
            c.events.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_compacted_files_total",
            "Columnar files the embedded store's compactor published.",
            c.files.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_compaction_errors_total",
            "Compaction steps that failed (each undone and retried later).",
            c.errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_columnar_files_dropped_total",
            "Columnar files (whole time partitions) dropped by retention.",
            c.files_dropped.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "helios_dead_letters_total",
            "Events written to dead letters.",
            f.dead_lettered.load(Ordering::Relaxed),
        );
        let journals = self
            .journals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        header(
            &mut out,
            "helios_journal_pending_bytes",
            "gauge",
            "Journaled bytes not yet in the store, per journal.",
        );
        for (name, m) in &journals {
            let _ = writeln!(
                out,
                "helios_journal_pending_bytes{{journal=\"{}\"}} {}",
                label(name),
                m.unflushed_bytes()
            );
        }
        header(
            &mut out,
            "helios_flusher_lag_records",
            "gauge",
            "Journal records durable but not yet in the store, per journal.",
        );
        for (name, m) in &journals {
            let _ = writeln!(
                out,
                "helios_flusher_lag_records{{journal=\"{}\"}} {}",
                label(name),
                m.unflushed_records()
            );
        }
        header(
            &mut out,
            "helios_journal_commit_bytes",
            "histogram",
            "Bytes per group commit.",
        );
        for (name, m) in &journals {
            histogram(
                &mut out,
                "helios_journal_commit_bytes",
                name,
                &m.commit_bytes(),
            );
        }
        header(
            &mut out,
            "helios_journal_commit_latency_us",
            "histogram",
            "Microseconds from commit write to durable (O_DSYNC write or write + fdatasync).",
        );
        for (name, m) in &journals {
            histogram(
                &mut out,
                "helios_journal_commit_latency_us",
                name,
                &m.commit_latency_us(),
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, journal: &str, h: &HistogramSnapshot) {
    let j = label(journal);
    for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
        let _ = writeln!(
            out,
            "{name}_bucket{{journal=\"{j}\",le=\"{bound}\"}} {count}"
        );
    }
    let total = h.cumulative.last().copied().unwrap_or(0);
    let _ = writeln!(out, "{name}_bucket{{journal=\"{j}\",le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum{{journal=\"{j}\"}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{journal=\"{j}\"}} {total}");
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_io_setup_shows_the_running_driver_as_1_and_the_journal_weakenings() {
        let m = Metrics::new(1);
        assert!(!m.render().contains("helios_io_driver"), "unset: not shown");
        m.set_io(IoSetup {
            driver: IoDriver::Epoll,
            journal_buffered_io: true,
            journal_volatile: false,
        });
        let text = m.render();
        assert!(
            text.contains("helios_io_driver{driver=\"epoll\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("helios_io_driver{driver=\"io_uring\"} 0"),
            "{text}"
        );
        assert!(text.contains("helios_journal_buffered_io 1"), "{text}");
        assert!(text.contains("helios_journal_volatile 0"), "{text}");
    }
}
