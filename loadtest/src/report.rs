//! The results of a run: one [`Report`], printed as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::stats::{Errors, ThreadStats};

/// The merged results of a run; serialized as is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target URL as given.
    pub url: String,
    /// `closed` (full speed) or `open` (`--rate`).
    pub mode: &'static str,
    /// Total requests/s asked for in open loop.
    pub rate_target: Option<f64>,
    /// Runtime threads used.
    pub threads: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests per write (pipeline depth).
    pub pipeline: usize,
    /// Events in each request body.
    pub events_per_request: usize,
    /// Size of one request on the wire (head + body as sent).
    pub request_bytes: usize,
    /// Wall time from start until every connection finished.
    pub elapsed_s: f64,
    /// Requests written, including those whose write failed.
    pub requests_sent: u64,
    /// Final responses received (any status).
    pub responses: u64,
    /// Responses per second of `elapsed_s`.
    pub requests_per_s: f64,
    /// Events in 2xx responses (minus listed rejects with `--ids-out`).
    pub events_acked: u64,
    /// Acked events per second of `elapsed_s`.
    pub events_per_s: f64,
    /// Request bytes sent by completed writes.
    pub bytes_sent: u64,
    /// Megabytes (10^6) per second written.
    pub mb_per_s_sent: f64,
    /// Responses by exact status code.
    pub status: BTreeMap<u16, u64>,
    /// Responses by status class.
    pub status_classes: StatusClasses,
    /// Failures by kind.
    pub errors: Errors,
    /// Connections opened (initial ones included).
    pub connects: u64,
    /// Latency percentiles, in microseconds.
    pub latency_us: Latency,
    /// The loadgen's own CPU use.
    pub cpu: Cpu,
    /// Ids appended to `--ids-out`.
    pub ids_written: Option<u64>,
}

/// Response counts by status class (JSON keys `1xx`..`5xx`, `other`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StatusClasses {
    /// 1xx responses; interim ones are not counted, so normally 0.
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// 2xx (success) responses.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// 3xx (redirection) responses.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// 4xx (client error) responses.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// 5xx (server error) responses.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
    /// Responses with a status code outside 100..=599.
    pub other: u64,
}

/// Microseconds; from the write (closed loop) or the intended send time
/// (open loop) to the end of the response.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median, in µs.
    pub p50: u64,
    /// 90th percentile, in µs.
    pub p90: u64,
    /// 99th percentile, in µs.
    pub p99: u64,
    /// 99.9th percentile, in µs.
    pub p999: u64,
    /// Highest recorded latency, in µs (saturates at one hour).
    pub max: u64,
    /// Arithmetic mean, in µs.
    pub mean: f64,
}

/// The loadgen's own CPU use over the run (getrusage, whole process).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Cpu {
    /// User-mode CPU time, in seconds.
    pub user_s: f64,
    /// Kernel-mode CPU time, in seconds.
    pub sys_s: f64,
    /// (user + sys) / wall × 100: 200 means two cores busy.
    pub percent_of_one_core: f64,
}

/// What the run was, for the report header.
pub struct RunShape {
    /// The target URL as given.
    pub url: String,
    /// Open-loop rate in requests per second; `None` in closed loop.
    pub rate: Option<f64>,
    /// Runtime threads used.
    pub threads: usize,
    /// Concurrent connections.
    pub connections: usize,
    /// Requests per write (pipeline depth).
    pub pipeline: usize,
    /// Events in each request body.
    pub events_per_request: usize,
    /// Size of one request on the wire, in bytes.
    pub request_bytes: usize,
}

impl Report {
    /// Derives the report from the merged `stats`: per-second rates over
    /// `elapsed` (wall time), status classes, and latency percentiles (all 0
    /// when nothing was answered). `ids_written` is `Some` only with `--ids-out`.
    pub fn new(
        shape: RunShape,
        stats: &ThreadStats,
        elapsed: Duration,
        cpu: Cpu,
        ids_written: Option<u64>,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut status = BTreeMap::new();
        let mut classes = StatusClasses::default();
        for (code, &count) in stats.status.iter().enumerate() {
            if count == 0 {
                continue;
            }
            status.insert(code as u16, count);
            let class = match code / 100 {
                1 => &mut classes.c1xx,
                2 => &mut classes.c2xx,
                3 => &mut classes.c3xx,
                4 => &mut classes.c4xx,
                5 => &mut classes.c5xx,
                _ => &mut classes.other,
            };
            *class += count;
        }
        let h = &stats.latency_us;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            }
        };
        Report {
            url: shape.url,
            mode: if shape.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            rate_target: shape.rate,
            threads: shape.threads,
            connections: shape.connections,
            pipeline: shape.pipeline,
            events_per_request: shape.events_per_request,
            request_bytes: shape.request_bytes,
            elapsed_s: secs,
            requests_sent: stats.requests_sent,
            responses: stats.responses,
            requests_per_s: stats.responses as f64 / secs,
            events_acked: stats.events_acked,
            events_per_s: stats.events_acked as f64 / secs,
            bytes_sent: stats.bytes_sent,
            mb_per_s_sent: stats.bytes_sent as f64 / 1e6 / secs,
            status,
            status_classes: classes,
            errors: stats.errors,
            connects: stats.connects,
            latency_us: latency,
            cpu,
            ids_written,
        }
    }

    /// The report as one line of JSON (the `--json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let mode = match self.rate_target {
            Some(r) => format!("open loop at {r} req/s (latency from intended send time)"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(t, "helios-loadgen  {}", self.url);
        let _ = writeln!(
            t,
            "  {:<13}{mode}; {} threads, {} connections, pipeline {}, {} events/request, {} B/request",
            "run", self.threads, self.connections, self.pipeline, self.events_per_request, self.request_bytes
        );
        let _ = writeln!(t, "  {:<13}{:.2} s", "elapsed", self.elapsed_s);
        let _ = writeln!(
            t,
            "  {:<13}{:>14.1} req/s   ({} sent, {} answered)",
            "requests", self.requests_per_s, self.requests_sent, self.responses
        );
        let _ = writeln!(
            t,
            "  {:<13}{:>14.1} events/s ({} acked)",
            "events", self.events_per_s, self.events_acked
        );
        let _ = writeln!(
            t,
            "  {:<13}{:>14.2} MB/s     ({} bytes)",
            "sent", self.mb_per_s_sent, self.bytes_sent
        );
        let codes: Vec<String> = self
            .status
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let c = &self.status_classes;
        let _ = writeln!(
            t,
            "  {:<13}{}   (2xx {}, 4xx {}, 5xx {}, other {})",
            "status",
            if codes.is_empty() {
                "-".to_string()
            } else {
                codes.join(", ")
            },
            c.c2xx,
            c.c4xx,
            c.c5xx,
            c.c1xx + c.c3xx + c.other
        );
        let e = &self.errors;
        let _ = writeln!(
            t,
            "  {:<13}connect {}, write {}, read {}, timeout {}, closed {}, parse {}   ({} connects)",
            "errors", e.connect, e.write, e.read, e.timeout, e.closed, e.parse, self.connects
        );
        let l = &self.latency_us;
        let _ = writeln!(
            t,
            "  {:<13}p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            "latency",
            fmt_us(l.p50 as f64),
            fmt_us(l.p90 as f64),
            fmt_us(l.p99 as f64),
            fmt_us(l.p999 as f64),
            fmt_us(l.max as f64),
            fmt_us(l.mean)
        );
        let _ = writeln!(
            t,
            "  {:<13}{:.0}% of one core (user {:.2} s, sys {:.2} s)",
            "loadgen cpu", self.cpu.percent_of_one_core, self.cpu.user_s, self.cpu.sys_s
        );
        if let Some(n) = self.ids_written {
            let _ = writeln!(t, "  {:<13}{n} acked ids written", "ids");
        }
        t
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// User and system CPU seconds of the whole process so far.
pub fn process_cpu_s() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_derives_rates_classes_and_percentiles() {
        let mut s = ThreadStats::new();
        for i in 1..=1000 {
            s.record_response(if i % 10 == 0 { 503 } else { 200 }, i);
        }
        s.requests_sent = 1000;
        s.bytes_sent = 2_000_000;
        s.events_acked = 900;
        let shape = RunShape {
            url: "http://x/".into(),
            rate: None,
            threads: 1,
            connections: 1,
            pipeline: 1,
            events_per_request: 1,
            request_bytes: 2000,
        };
        let r = Report::new(shape, &s, Duration::from_secs(2), Cpu::default(), None);
        assert_eq!(r.requests_per_s, 500.0);
        assert_eq!(r.events_per_s, 450.0);
        assert_eq!(r.mb_per_s_sent, 1.0);
        assert_eq!((r.status[&200], r.status[&503]), (900, 100));
        assert_eq!((r.status_classes.c2xx, r.status_classes.c5xx), (900, 100));
        assert!((499..=501).contains(&r.latency_us.p50));
        assert!((998..=1001).contains(&r.latency_us.p999));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"]["503"], 100);
        assert_eq!(v["status_classes"]["2xx"], 900);
        assert!(r.to_table().contains("p99.9"));
    }
}
