//! What a run prints besides the totals: the pacing of an open-loop run,
//! both latencies across the spectrum, the per-second series, the
//! `--hdr-log`, and how far behind a run fell.
mod common;
use common::*;
use std::time::Duration;

#[test]
fn open_loop_reports_pacing_spectrum_and_series() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let run = loadgen(&[
        "--url",
        &url,
        "--rate",
        "400",
        "--duration",
        "2s",
        "-c",
        "4",
        "-t",
        "2",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["arrivals"], "constant");
    assert_eq!(
        report["requests_sent"], 800,
        "constant arrivals send exactly rate × duration"
    );
    assert_eq!(report["rate_achieved"], 400.0);
    // The run ends with its last answer, not a drain timeout later.
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!((2.0..2.5).contains(&elapsed), "elapsed {elapsed}");
    let pacing = &report["pacing"];
    for field in ["p50", "p99", "max"] {
        assert!(pacing["send_lateness_us"][field].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(pacing["backlog"], 0);
    let spectrum = report["spectrum"].as_array().unwrap();
    assert_eq!(spectrum.first().unwrap()["percentile"], 0.0);
    assert_eq!(spectrum.last().unwrap()["percentile"], 100.0);
    assert_eq!(
        spectrum.last().unwrap()["corrected_us"],
        report["latency_us"]["max"]
    );
    for p in spectrum {
        // From the intended time is never shorter than from the send.
        assert!(
            p["corrected_us"].as_u64() >= p["uncorrected_us"].as_u64(),
            "{p}"
        );
    }
    for field in ["p50", "p75", "p90", "p99", "p999", "p9999", "max", "mean"] {
        assert!(
            report["latency_uncorrected_us"][field].is_number(),
            "{field}"
        );
    }
    let series = report["series"].as_array().unwrap();
    assert!((2..=3).contains(&series.len()), "{series:?}");
    assert_eq!(series[0]["t_s"], 0);
    let answered: u64 = series
        .iter()
        .map(|p| p["responses"].as_u64().unwrap())
        .sum();
    assert_eq!(answered, 800, "every response is in exactly one second");
    // The table (stderr with --json) shows the same.
    assert!(run.stderr.contains("send lateness p50"), "{}", run.stderr);
    assert!(run.stderr.contains("uncorrected"));
    assert!(run.stderr.contains("per second"));
}

#[test]
fn poisson_arrivals_are_reproducible_with_a_seed() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let sent = |seed: &str| {
        loadgen_json(&[
            "--url",
            &url,
            "--rate",
            "300",
            "--duration",
            "1s",
            "-c",
            "3",
            "--arrivals",
            "poisson",
            "--seed",
            seed,
        ])["requests_sent"]
            .as_u64()
            .unwrap()
    };
    let a = sent("11");
    assert_eq!(a, sent("11"), "the same seed draws the same arrivals");
    // 300 expected; a Poisson count's standard deviation is √300 ≈ 17.
    assert!((200..=400).contains(&a), "{a}");
}

#[test]
fn hdr_log_has_a_corrected_and_an_uncorrected_histogram_per_second() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.hlog");
    let report = loadgen_json(&[
        "--url",
        &url,
        "--rate",
        "100",
        "--duration",
        "2s",
        "-c",
        "2",
        "--hdr-log",
        path.to_str().unwrap(),
    ]);
    assert_eq!(report["hdr_log"], path.to_str().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("#[StartTime: "), "{text}");
    assert!(text.contains("#[BaseTime: "));
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let series = report["series"].as_array().unwrap().len();
    assert_eq!(lines.len(), 2 * series, "{text}");
    assert!(lines[0].starts_with("0.000,1.000,"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("Tag=uncorrected,0.000,1.000,"),
        "{}",
        lines[1]
    );
    // The histogram field is base64 of a compressed V2 histogram.
    let encoded = lines[0].rsplit(',').next().unwrap();
    assert!(encoded.starts_with("HISTF"), "{encoded}");
}

#[test]
fn a_server_too_slow_for_the_rate_is_reported_as_behind() {
    // 20 ms per request, 200 req/s asked on one connection: 50 req/s at most.
    let server = TestServer::start(Opts::default(), |_| Reply {
        delay: Duration::from_millis(20),
        ..Reply::status(200)
    });
    let url = server.url();
    let run = loadgen(&[
        "--url",
        &url,
        "--rate",
        "200",
        "--duration",
        "1s",
        "-c",
        "1",
        "--json",
        "--quiet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let sent = report["requests_sent"].as_u64().unwrap();
    let backlog = report["pacing"]["backlog"].as_u64().unwrap();
    assert!(sent < 80, "sent {sent}");
    assert_eq!(sent + backlog, 200, "what was not sent is the backlog");
    assert!(report["rate_achieved"].as_f64().unwrap() < 80.0);
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("fell behind: asked 200.0 req/s")),
        "{warnings:?}"
    );
    assert!(
        run.stderr.contains("warning: fell behind"),
        "{}",
        run.stderr
    );
}
