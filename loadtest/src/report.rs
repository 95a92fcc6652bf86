//! The results of a run: one [`Report`], printed as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::driver::IoDriverKind;
use crate::pacing::{Arrivals, SEND_LATENESS_TOLERANCE_US};
use crate::series::{Merger, SecondPoint};
use crate::stats::{Errors, ThreadStats};

/// Percentiles of the spectrum in the report (and the charts): dense
/// where tails live, as HdrHistogram's percentile plots are.
pub const SPECTRUM_PERCENTILES: [f64; 22] = [
    0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75,
    99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
];
/// Share of sends that waited for a busy connection above which the
/// report warns (a Poisson run always has a few: two arrivals closer than
/// one response time on one connection).
pub const BEHIND_WARN_SHARE: f64 = 0.01;
/// Longest per-second series printed in the table in full; longer runs
/// print their worst seconds (the JSON always has all of them).
pub const TABLE_SERIES_ROWS_MAX: usize = 60;
/// Worst seconds printed when the series is longer than that.
pub const TABLE_WORST_SECONDS: usize = 10;

/// The merged results of a run; serialized as is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target URL as given.
    pub url: String,
    /// `closed` (full speed) or `open` (`--rate`).
    pub mode: &'static str,
    /// Total requests/s asked for in open loop.
    pub rate_target: Option<f64>,
    /// Open loop: `constant` or `poisson`.
    pub arrivals: Option<&'static str>,
    /// The I/O driver the threads ran on: `io_uring` or `epoll`.
    pub io_driver: IoDriverKind,
    /// Why io_uring was not used when `--io-driver auto` fell back to epoll.
    pub io_driver_fallback: Option<String>,
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
    /// `--duration` in seconds (`None` for a `--requests`-only run).
    pub duration_s: Option<f64>,
    /// Wall time from start until every connection finished.
    pub elapsed_s: f64,
    /// Requests written, including those whose write failed.
    pub requests_sent: u64,
    /// Final responses received (any status).
    pub responses: u64,
    /// Responses per second of `elapsed_s`.
    pub requests_per_s: f64,
    /// Open loop with a duration: requests sent per second of `duration_s`
    /// (the rate achieved, to compare with `rate_target`).
    pub rate_achieved: Option<f64>,
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
    /// Latency in µs, corrected: from the intended send time in open loop
    /// (from the send in closed loop, where the two are the same).
    pub latency_us: Latency,
    /// Latency in µs from the actual send (uncorrected; the service time).
    pub latency_uncorrected_us: Latency,
    /// Both latencies at each of [`SPECTRUM_PERCENTILES`].
    pub spectrum: Vec<SpectrumPoint>,
    /// Open loop: how well the sends kept to their schedule.
    pub pacing: Option<Pacing>,
    /// Throughput and latency per second of the run.
    pub series: Vec<SecondPoint>,
    /// The loadgen's own CPU use.
    pub cpu: Cpu,
    /// Ids appended to `--ids-out`.
    pub ids_written: Option<u64>,
    /// The `--hdr-log` file written.
    pub hdr_log: Option<String>,
    /// What makes the run's numbers doubtful (empty when none).
    pub warnings: Vec<String>,
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

/// Latency percentiles in microseconds (all 0 when nothing was answered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Highest recorded (saturates at one hour).
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of `h` (µs).
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let p = |q: f64| h.value_at_percentile(q);
        Latency {
            p50: p(50.0),
            p75: p(75.0),
            p90: p(90.0),
            p99: p(99.0),
            p999: p(99.9),
            p9999: p(99.99),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// Both latencies at one percentile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpectrumPoint {
    /// The percentile (0 = the lowest value, 100 = the highest).
    pub percentile: f64,
    /// Corrected latency there, µs.
    pub corrected_us: u64,
    /// Uncorrected latency there, µs.
    pub uncorrected_us: u64,
}

/// p50 / p99 / max of a pacing measure, in µs with sub-µs precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median, µs.
    pub p50: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// Highest, µs.
    pub max: f64,
}

impl Spread {
    /// From a histogram in ns.
    pub fn of_ns(h: &Histogram<u64>) -> Spread {
        if h.is_empty() {
            return Spread::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Spread {
            p50: us(h.value_at_percentile(50.0)),
            p99: us(h.value_at_percentile(99.0)),
            max: us(h.max()),
        }
    }
}

/// Open loop: the generator's own timing, so every run shows it paced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Pacing {
    /// How far from each request's intended time (or, when its connection
    /// was busy, from when it became free) its send was handed to the
    /// kernel, late or early: an early send counts by how early it was.
    pub send_lateness_us: Spread,
    /// Sends further than [`SEND_LATENESS_TOLERANCE_US`] by that measure.
    pub sends_late_over_tolerance: u64,
    /// Sends handed to the kernel before their intended time (pulled into
    /// a round that was sending, at most [`crate::pacing::COALESCE_NS`]
    /// early); they are in `send_lateness_us` too.
    pub sends_early: u64,
    /// The earliest of them, in µs before its intended time (0 if none).
    pub send_early_us_max: f64,
    /// How late the kernel's timer wake-ups came (made up for by waking
    /// early and spinning).
    pub timer_wake_late_us: Spread,
    /// Non-blocking polls made while spinning towards a send.
    pub spin_polls: u64,
    /// Requests whose intended time came while their connection still
    /// waited for an earlier answer (their latency includes that wait).
    pub sends_behind: u64,
    /// Requests intended before the end but never sent (expected count for
    /// Poisson arrivals).
    pub backlog: u64,
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
    /// Open-loop arrivals.
    pub arrivals: Arrivals,
    /// `--duration` in seconds.
    pub duration_s: Option<f64>,
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

/// How the run was made, beside its shape.
pub struct RunInfo {
    /// The driver the threads ran on.
    pub io_driver: IoDriverKind,
    /// Why `auto` did not get io_uring.
    pub io_driver_fallback: Option<String>,
    /// The `--hdr-log` path.
    pub hdr_log: Option<String>,
}

impl Report {
    /// Derives the report from the merged counters `stats` and the merged
    /// intervals `merger`: per-second rates over `elapsed` (wall time),
    /// status classes, both latencies, pacing and warnings. `ids_written` is
    /// `Some` only with `--ids-out`.
    pub fn new(
        shape: RunShape,
        info: RunInfo,
        stats: &ThreadStats,
        merger: &Merger,
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
        let (c, u) = (&merger.corrected_us, &merger.uncorrected_us);
        let spectrum = if c.is_empty() {
            Vec::new()
        } else {
            SPECTRUM_PERCENTILES
                .iter()
                .map(|&p| SpectrumPoint {
                    percentile: p,
                    corrected_us: c.value_at_percentile(p),
                    uncorrected_us: u.value_at_percentile(p),
                })
                .collect()
        };
        let open = shape.rate.is_some();
        let pacing = open.then(|| Pacing {
            send_lateness_us: Spread::of_ns(&stats.send_lateness_ns),
            sends_late_over_tolerance: count_above(
                &stats.send_lateness_ns,
                SEND_LATENESS_TOLERANCE_US * 1_000,
            ),
            sends_early: stats.send_early_ns.len(),
            send_early_us_max: stats.send_early_ns.max() as f64 / 1e3,
            timer_wake_late_us: Spread::of_ns(&stats.timer_wake_late_ns),
            spin_polls: stats.spin_polls,
            sends_behind: stats.sends_behind,
            backlog: stats.backlog,
        });
        let rate_achieved = match (shape.rate, shape.duration_s) {
            (Some(_), Some(d)) => Some(stats.requests_sent as f64 / d.max(1e-9)),
            _ => None,
        };
        let mut report = Report {
            url: shape.url,
            mode: if open { "open" } else { "closed" },
            rate_target: shape.rate,
            arrivals: open.then(|| shape.arrivals.name()),
            io_driver: info.io_driver,
            io_driver_fallback: info.io_driver_fallback,
            threads: shape.threads,
            connections: shape.connections,
            pipeline: shape.pipeline,
            events_per_request: shape.events_per_request,
            request_bytes: shape.request_bytes,
            duration_s: shape.duration_s,
            elapsed_s: secs,
            requests_sent: stats.requests_sent,
            responses: stats.responses,
            requests_per_s: stats.responses as f64 / secs,
            rate_achieved,
            events_acked: stats.events_acked,
            events_per_s: stats.events_acked as f64 / secs,
            bytes_sent: stats.bytes_sent,
            mb_per_s_sent: stats.bytes_sent as f64 / 1e6 / secs,
            status,
            status_classes: classes,
            errors: stats.errors,
            connects: stats.connects,
            latency_us: Latency::of(c),
            latency_uncorrected_us: Latency::of(u),
            spectrum,
            pacing,
            series: merger.series.clone(),
            cpu,
            ids_written,
            hdr_log: info.hdr_log,
            warnings: Vec::new(),
        };
        report.warnings = report.judge();
        report
    }

    /// The warnings: pacing worse than promised, or a run that fell behind.
    fn judge(&self) -> Vec<String> {
        let mut w = Vec::new();
        let Some(p) = &self.pacing else {
            return w;
        };
        if p.send_lateness_us.p99 > SEND_LATENESS_TOLERANCE_US as f64 {
            w.push(format!(
                "pacing: send lateness p99 {} exceeds {SEND_LATENESS_TOLERANCE_US}us: the generator \
                 itself was late (CPU contention?); latency below a millisecond is not to be trusted",
                fmt_us_fine(p.send_lateness_us.p99)
            ));
        }
        let behind_share = p.sends_behind as f64 / self.requests_sent.max(1) as f64;
        if p.backlog > 0 || behind_share > BEHIND_WARN_SHARE {
            let asked = self.rate_target.unwrap_or(0.0);
            let sent = self.rate_achieved.map_or(String::new(), |r| {
                format!(", sent {r:.1} req/s ({:+.2} %)", (r / asked - 1.0) * 100.0)
            });
            w.push(format!(
                "fell behind: asked {asked:.1} req/s{sent}; {} requests never sent (backlog at the \
                 end), {} waited for their busy connection ({:.1} %): the server did not keep up, \
                 or raise --connections",
                p.backlog,
                p.sends_behind,
                behind_share * 100.0
            ));
        }
        w
    }

    /// The report as one line of JSON (the `--json` output).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let mode = match (self.rate_target, self.arrivals) {
            (Some(r), Some(a)) => {
                format!("open loop at {r} req/s, {a} arrivals (latency from intended send time)")
            }
            _ => "closed loop".to_string(),
        };
        let _ = writeln!(t, "helios-loadgen  {}", self.url);
        let _ = writeln!(
            t,
            "  {:<13}{mode}; {} threads, {} connections, pipeline {}, {} events/request, {} B/request",
            "run", self.threads, self.connections, self.pipeline, self.events_per_request, self.request_bytes
        );
        let io = match &self.io_driver_fallback {
            Some(why) => format!("{} (io_uring refused: {why})", self.io_driver),
            None => self.io_driver.to_string(),
        };
        let _ = writeln!(t, "  {:<13}{io}", "io");
        let _ = writeln!(t, "  {:<13}{:.2} s", "elapsed", self.elapsed_s);
        let _ = writeln!(
            t,
            "  {:<13}{:>14.1} req/s   ({} sent, {} answered)",
            "requests", self.requests_per_s, self.requests_sent, self.responses
        );
        if let (Some(asked), Some(sent), Some(p)) =
            (self.rate_target, self.rate_achieved, &self.pacing)
        {
            let _ = writeln!(
                t,
                "  {:<13}asked {asked:.1} req/s, sent {sent:.1} req/s ({:+.2} %); backlog {} at the end, \
                 {} sent behind a busy connection",
                "rate",
                (sent / asked - 1.0) * 100.0,
                p.backlog,
                p.sends_behind
            );
        }
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
        if let Some(p) = &self.pacing {
            let s = &p.send_lateness_us;
            let w = &p.timer_wake_late_us;
            let _ = writeln!(
                t,
                "  {:<13}send lateness p50 {}  p99 {}  max {}  ({} over {SEND_LATENESS_TOLERANCE_US}us, \
                 {} early by at most {}; timer wake-ups late p50 {} p99 {}, {} spin polls)",
                "pacing",
                fmt_us_fine(s.p50),
                fmt_us_fine(s.p99),
                fmt_us_fine(s.max),
                p.sends_late_over_tolerance,
                p.sends_early,
                fmt_us_fine(p.send_early_us_max),
                fmt_us_fine(w.p50),
                fmt_us_fine(w.p99),
                p.spin_polls
            );
        }
        self.latency_table(&mut t);
        self.series_table(&mut t);
        let _ = writeln!(
            t,
            "  {:<13}{:.0}% of one core (user {:.2} s, sys {:.2} s)",
            "loadgen cpu", self.cpu.percent_of_one_core, self.cpu.user_s, self.cpu.sys_s
        );
        if let Some(n) = self.ids_written {
            let _ = writeln!(t, "  {:<13}{n} acked ids written", "ids");
        }
        if let Some(path) = &self.hdr_log {
            let _ = writeln!(t, "  {:<13}{path}", "hdr log");
        }
        for w in &self.warnings {
            let _ = writeln!(t, "  warning: {w}");
        }
        t
    }

    fn latency_table(&self, t: &mut String) {
        let (c, u) = (&self.latency_us, &self.latency_uncorrected_us);
        let corrected = if self.mode == "open" {
            "corrected"
        } else {
            "from send"
        };
        let _ = writeln!(
            t,
            "  {:<13}{:>12} {:>12}",
            "latency", corrected, "uncorrected"
        );
        let rows: [(&str, f64, f64); 8] = [
            ("p50", c.p50 as f64, u.p50 as f64),
            ("p75", c.p75 as f64, u.p75 as f64),
            ("p90", c.p90 as f64, u.p90 as f64),
            ("p99", c.p99 as f64, u.p99 as f64),
            ("p99.9", c.p999 as f64, u.p999 as f64),
            ("p99.99", c.p9999 as f64, u.p9999 as f64),
            ("max", c.max as f64, u.max as f64),
            ("mean", c.mean, u.mean),
        ];
        for (name, a, b) in rows {
            let _ = writeln!(t, "    {:<11}{:>12} {:>12}", name, fmt_us(a), fmt_us(b));
        }
    }

    fn series_table(&self, t: &mut String) {
        if self.series.is_empty() {
            return;
        }
        let mut rows: Vec<&SecondPoint> = self.series.iter().collect();
        let title = if rows.len() > TABLE_SERIES_ROWS_MAX {
            rows.sort_by_key(|p| std::cmp::Reverse(p.p99_us));
            rows.truncate(TABLE_WORST_SECONDS);
            rows.sort_by_key(|p| p.t_s);
            format!(
                "per second   the {TABLE_WORST_SECONDS} seconds of highest p99 of {} (all in --json)",
                self.series.len()
            )
        } else {
            "per second".to_string()
        };
        let _ = writeln!(t, "  {title}");
        let _ = writeln!(
            t,
            "    {:>6} {:>12} {:>12} {:>10} {:>10}",
            "t", "req/s", "sent/s", "p50", "p99"
        );
        for p in rows {
            let _ = writeln!(
                t,
                "    {:>5}s {:>12.0} {:>12.0} {:>10} {:>10}",
                p.t_s,
                p.requests_per_s,
                p.sent_per_s,
                fmt_us(p.p50_us as f64),
                fmt_us(p.p99_us as f64)
            );
        }
    }
}

/// Values of `h` above `above`.
fn count_above(h: &Histogram<u64>, above: u64) -> u64 {
    if h.is_empty() || h.max() <= above {
        return 0;
    }
    h.count_between(above + 1, h.max())
}

/// Microseconds for people: `812us`, `1.27ms`, `2.10s`.
pub fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

/// As [`fmt_us`], with a decimal below 100 µs (pacing is about single µs).
pub fn fmt_us_fine(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}us")
    } else {
        fmt_us(us)
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
    use crate::stats::Interval;

    fn shape(rate: Option<f64>) -> RunShape {
        RunShape {
            url: "http://x/".into(),
            rate,
            arrivals: Arrivals::Constant,
            duration_s: Some(2.0),
            threads: 1,
            connections: 1,
            pipeline: 1,
            events_per_request: 1,
            request_bytes: 2000,
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            io_driver: IoDriverKind::IoUring,
            io_driver_fallback: None,
            hdr_log: None,
        }
    }

    /// 1..=1000 µs corrected, half that uncorrected, in one interval.
    fn merged() -> Merger {
        let mut m = Merger::new(1);
        let mut iv = Interval::new(0);
        iv.length_ns = 1_000_000_000;
        for i in 1..=1000 {
            iv.record(i, i / 2);
        }
        m.add(0, Box::new(iv));
        m.finish(0);
        let iv = m.next_complete().unwrap();
        m.absorb(iv);
        m
    }

    #[test]
    fn report_derives_rates_classes_and_percentiles() {
        let mut s = ThreadStats::new();
        for i in 1..=1000 {
            s.record_status(if i % 10 == 0 { 503 } else { 200 });
        }
        s.requests_sent = 1000;
        s.bytes_sent = 2_000_000;
        s.events_acked = 900;
        let m = merged();
        let r = Report::new(
            shape(None),
            info(),
            &s,
            &m,
            Duration::from_secs(2),
            Cpu::default(),
            None,
        );
        assert_eq!(r.requests_per_s, 500.0);
        assert_eq!(r.events_per_s, 450.0);
        assert_eq!(r.mb_per_s_sent, 1.0);
        assert_eq!((r.status[&200], r.status[&503]), (900, 100));
        assert_eq!((r.status_classes.c2xx, r.status_classes.c5xx), (900, 100));
        assert!((499..=501).contains(&r.latency_us.p50));
        assert!((749..=751).contains(&r.latency_us.p75));
        assert!((998..=1001).contains(&r.latency_us.p999));
        assert!((999..=1001).contains(&r.latency_us.p9999));
        assert!((249..=251).contains(&r.latency_uncorrected_us.p50));
        assert!(r.pacing.is_none() && r.warnings.is_empty() && r.rate_achieved.is_none());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"]["503"], 100);
        assert_eq!(v["status_classes"]["2xx"], 900);
        assert_eq!(v["io_driver"], "io_uring");
        let table = r.to_table();
        assert!(
            table.contains("p99.9") && table.contains("uncorrected"),
            "{table}"
        );
    }

    #[test]
    fn the_spectrum_runs_from_min_to_max_both_ways() {
        let r = Report::new(
            shape(None),
            info(),
            &ThreadStats::new(),
            &merged(),
            Duration::from_secs(1),
            Cpu::default(),
            None,
        );
        assert_eq!(r.spectrum.len(), SPECTRUM_PERCENTILES.len());
        let first = r.spectrum[0];
        let last = r.spectrum[r.spectrum.len() - 1];
        assert_eq!((first.percentile, first.corrected_us), (0.0, 1));
        assert_eq!(last.percentile, 100.0);
        assert_eq!(last.corrected_us, r.latency_us.max);
        assert_eq!(last.uncorrected_us, r.latency_uncorrected_us.max);
        // Monotone, and the corrected one never below the uncorrected one here.
        for w in r.spectrum.windows(2) {
            assert!(w[0].corrected_us <= w[1].corrected_us);
            assert!(w[0].uncorrected_us <= w[1].uncorrected_us);
        }
        assert!(r
            .spectrum
            .iter()
            .all(|p| p.corrected_us >= p.uncorrected_us));
    }

    #[test]
    fn open_loop_reports_pacing_and_warns_when_late_or_behind() {
        let mut s = ThreadStats::new();
        s.requests_sent = 4000;
        for i in 0..1000u64 {
            s.send_lateness_ns.record(1_000 + i).unwrap();
        }
        let r = Report::new(
            shape(Some(2000.0)),
            info(),
            &s,
            &merged(),
            Duration::from_secs(2),
            Cpu::default(),
            None,
        );
        let p = r.pacing.unwrap();
        assert!((p.send_lateness_us.p50 - 1.5).abs() < 0.01, "{p:?}");
        assert_eq!(p.sends_late_over_tolerance, 0);
        assert_eq!(r.rate_achieved, Some(2000.0));
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(r.to_table().contains("send lateness p50 1.5us"));
        assert!(r
            .to_table()
            .contains("(0 over 20us, 0 early by at most 0.0us;"));

        // Early sends are in the lateness by their distance, and counted.
        let mut e = ThreadStats::new();
        e.requests_sent = 4000;
        for i in 0..1000u64 {
            e.send_lateness_ns.record(1_000 + i).unwrap();
        }
        for _ in 0..30 {
            e.send_lateness_ns.record(12_000).unwrap();
            e.send_early_ns.record(12_000).unwrap();
        }
        let r = Report::new(
            shape(Some(2000.0)),
            info(),
            &e,
            &merged(),
            Duration::from_secs(2),
            Cpu::default(),
            None,
        );
        let p = r.pacing.unwrap();
        assert_eq!(p.sends_early, 30);
        assert!((p.send_early_us_max - 12.0).abs() < 0.01, "{p:?}");
        assert!((p.send_lateness_us.p99 - 12.0).abs() < 0.01, "{p:?}");
        assert!(r.to_table().contains("30 early by at most 12.0us"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["pacing"]["sends_early"], 30);

        // Late sends and a backlog: two warnings, in the JSON too.
        for _ in 0..100 {
            s.send_lateness_ns.record(150_000).unwrap();
        }
        s.backlog = 500;
        s.requests_sent = 3500;
        let r = Report::new(
            shape(Some(2000.0)),
            info(),
            &s,
            &merged(),
            Duration::from_secs(2),
            Cpu::default(),
            None,
        );
        assert_eq!(r.pacing.unwrap().sends_late_over_tolerance, 100);
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("pacing"));
        assert!(r.warnings[1].contains("asked 2000.0 req/s, sent 1750.0 req/s (-12.50 %)"));
        assert!(r.warnings[1].contains("500 requests never sent"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["pacing"]["backlog"], 500);
        assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn long_series_print_their_worst_seconds() {
        let mut m = Merger::new(1);
        for i in 0..100u64 {
            let mut iv = Interval::new(i);
            iv.length_ns = 1_000_000_000;
            iv.record(if i == 42 { 90_000 } else { 100 + i }, 10);
            m.add(0, Box::new(iv));
            let iv = m.next_complete().unwrap();
            m.absorb(iv);
        }
        let r = Report::new(
            shape(None),
            info(),
            &ThreadStats::new(),
            &m,
            Duration::from_secs(100),
            Cpu::default(),
            None,
        );
        assert_eq!(r.series.len(), 100);
        let table = r.to_table();
        assert!(
            table.contains("the 10 seconds of highest p99 of 100"),
            "{table}"
        );
        assert!(table.contains("   42s"), "{table}");
        assert!(!table.contains("    3s"), "{table}");
    }
}
