//! `GET /metrics`: Prometheus text with requests by status, events, store
//! counters, journal pending bytes and commit histograms.

mod support;

use support::*;

fn scrape(c: &Collector) -> String {
    let mut conn = Conn::open(c.addr);
    conn.send_raw(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"));
    String::from_utf8(r.body).unwrap()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_requests_events_commits_and_store_writes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--cores", "1"]);
    let mut conn = Conn::open(c.addr);
    assert_eq!(
        conn.post(&[], br#"[{"type":"a"},{"type":"b"},{"no":"type"}]"#)
            .unwrap()
            .status,
        200
    );
    assert_eq!(conn.post(&[], br#"{"type":"c"}"#).unwrap().status, 200);
    assert_eq!(conn.post(&[], b"{broken").unwrap().status, 400);
    wait_for_count(&c.db_path(), 3);
    let text = scrape(&c);
    assert_eq!(value(&text, r#"helios_requests_total{status="200"}"#), 2.0);
    assert_eq!(value(&text, r#"helios_requests_total{status="400"}"#), 1.0);
    assert_eq!(value(&text, "helios_events_accepted_total"), 3.0);
    assert_eq!(value(&text, "helios_events_rejected_total"), 1.0);
    let journal = dir.path().join("journal").join("0").display().to_string();
    let commits = value(
        &text,
        &format!(r#"helios_journal_commit_latency_us_count{{journal="{journal}"}}"#),
    );
    assert!(commits >= 2.0, "{commits}");
    assert!(
        value(
            &text,
            &format!(r#"helios_journal_commit_bytes_bucket{{journal="{journal}",le="+Inf"}}"#)
        ) >= 2.0
    );
    // The flusher catches up: the store has them and the lag returns to 0.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = scrape(&c);
        if value(&text, "helios_store_inserted_total") == 3.0
            && value(
                &text,
                &format!(r#"helios_flusher_lag_records{{journal="{journal}"}}"#),
            ) == 0.0
        {
            assert_eq!(
                value(
                    &text,
                    &format!(r#"helios_journal_pending_bytes{{journal="{journal}"}}"#)
                ),
                0.0
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "flusher never caught up:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
