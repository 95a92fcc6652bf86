//! Every way an event can fail to arrive: record() stays fast, nothing
//! panics, and each undelivered document is logged whole.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    assert_each_logged, assert_none_logged, capture_logs, quick_client, record_marked,
    unreachable_url, FakeServer, Reply, RECORD_1000_MAX,
};

const EVENTS: usize = 1_000;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn an_unreachable_endpoint_logs_every_event_once_retries_are_exhausted() {
    capture_logs();
    let client = quick_client(&unreachable_url()).build().expect("client");
    let (recorded, took) = record_marked(&client, "lost", "unreachable", EVENTS);
    assert!(took < RECORD_1000_MAX, "1,000 record() calls took {took:?}");
    assert!(client.flush(FLUSH_TIMEOUT));
    assert_each_logged(&recorded, "retries exhausted after 3 attempts");
    let stats = client.stats();
    assert_eq!((stats.dropped, stats.sent), (EVENTS as u64, 0));
}

#[test]
fn an_endpoint_answering_garbage_logs_every_event() {
    capture_logs();
    let server =
        FakeServer::start(|_, _| Reply::Garbage(b"\x16\x03\x01 not http at all\r\n\r\n".to_vec()));
    let client = quick_client(&server.url()).build().expect("client");
    let (recorded, took) = record_marked(&client, "lost", "garbage", EVENTS);
    assert!(took < RECORD_1000_MAX, "1,000 record() calls took {took:?}");
    assert!(client.flush(FLUSH_TIMEOUT));
    assert_each_logged(&recorded, "malformed response");
    assert_eq!(client.stats().dropped, EVENTS as u64);
}

#[test]
fn a_stalled_endpoint_logs_every_event_after_read_timeouts() {
    capture_logs();
    let server = FakeServer::start(|_, _| Reply::Stall);
    let client = quick_client(&server.url())
        .max_batch_events(EVENTS)
        .max_batch_delay(Duration::from_millis(50))
        .max_attempts(2)
        .read_timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let (recorded, took) = record_marked(&client, "lost", "stalled", EVENTS);
    assert!(took < RECORD_1000_MAX, "1,000 record() calls took {took:?}");
    assert!(client.flush(FLUSH_TIMEOUT));
    assert_each_logged(&recorded, "timed out waiting for the server");
    assert_eq!(client.stats().dropped, EVENTS as u64);
}

#[test]
fn a_503_with_retry_after_then_200_delivers_everything_and_logs_nothing() {
    capture_logs();
    let server = FakeServer::start(|n, _| {
        if n == 0 {
            let headers = vec![("Retry-After".to_owned(), "1".to_owned())];
            Reply::Status(
                503,
                headers,
                r#"{"error":"unavailable","detail":"disk full"}"#.to_owned(),
            )
        } else {
            Reply::Accept
        }
    });
    let client = quick_client(&server.url())
        .max_batch_events(EVENTS)
        .build()
        .expect("client");
    let (recorded, took) = record_marked(&client, "kept", "after-503", EVENTS);
    assert!(took < RECORD_1000_MAX, "1,000 record() calls took {took:?}");
    assert!(client.flush(FLUSH_TIMEOUT));
    let stats = client.stats();
    assert_eq!(
        (stats.sent, stats.dropped, stats.rejected),
        (EVENTS as u64, 0, 0)
    );
    assert!(stats.retried >= 1);
    assert_none_logged(&recorded);
}

#[test]
fn events_rejected_by_index_are_each_logged_with_the_servers_reason() {
    capture_logs();
    // Reject every event whose seq is a multiple of 10.
    let server = FakeServer::start(|_, request| {
        let rejected = request
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["seq"].as_u64().is_some_and(|s| s % 10 == 0))
            .map(|(i, _)| (i, "ts: not a timestamp".to_owned()))
            .collect();
        Reply::Reject(rejected)
    });
    let client = quick_client(&server.url()).build().expect("client");
    let (recorded, took) = record_marked(&client, "partly", "by-index", EVENTS);
    assert!(took < RECORD_1000_MAX, "1,000 record() calls took {took:?}");
    assert!(client.flush(FLUSH_TIMEOUT));
    let (rejected, kept): (Vec<_>, Vec<_>) = recorded
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 10 == 0);
    let rejected: Vec<_> = rejected.into_iter().map(|(_, e)| e).collect();
    let kept: Vec<_> = kept.into_iter().map(|(_, e)| e).collect();
    assert_each_logged(&rejected, "rejected by server: ts: not a timestamp");
    assert_none_logged(&kept);
    let stats = client.stats();
    assert_eq!((stats.rejected, stats.sent, stats.retried), (100, 900, 0));
}

#[test]
fn a_whole_batch_4xx_is_not_retried_and_every_document_is_logged() {
    capture_logs();
    let server = FakeServer::start(|_, _| {
        Reply::Status(
            401,
            vec![],
            r#"{"error":"unauthorized","detail":"unknown key"}"#.to_owned(),
        )
    });
    // Exactly one batch of 50: it goes when full, not on a timer.
    let client = quick_client(&server.url())
        .max_batch_events(50)
        .max_batch_delay(Duration::from_secs(30))
        .build()
        .expect("client");
    let (recorded, _) = record_marked(&client, "denied", "whole-4xx", 50);
    assert!(client.flush(FLUSH_TIMEOUT));
    assert_each_logged(&recorded, "HTTP 401 unauthorized: unknown key");
    assert_eq!(server.requests().len(), 1, "a 401 was retried");
    let stats = client.stats();
    assert_eq!((stats.rejected, stats.retried), (50, 0));
}

#[test]
fn a_full_queue_drops_the_new_event_counts_it_and_logs_it_keeping_the_last_tenth_for_high_priority()
{
    capture_logs();
    const QUEUE_EVENTS: usize = 10;
    // Low and normal events may fill 90% of the queue; the rest is high's.
    const NORMAL_EVENTS: usize = 9;
    const HIGH_EVENTS: usize = 3;
    const BATCH_EVENTS: usize = 5;
    let server = FakeServer::start(|_, _| Reply::Stall);
    let client = quick_client(&server.url())
        .queue_capacity_events(QUEUE_EVENTS)
        .max_batch_events(BATCH_EVENTS)
        // The first batch goes when full, so exactly BATCH_EVENTS are in flight.
        .max_batch_delay(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Fill the pipeline: one batch in flight (stalled), then the queue.
    let (in_flight, _) = record_marked(&client, "overflow", "overflow-first", BATCH_EVENTS);
    assert!(server.wait_for_requests(1, Duration::from_secs(5)));
    let (rest, took) = record_marked(&client, "overflow", "overflow", 100);
    assert!(took < RECORD_1000_MAX);
    let stats = client.stats();
    assert_eq!(stats.dropped_queue_full, (100 - NORMAL_EVENTS) as u64);
    assert_eq!(client.queued_events(), NORMAL_EVENTS);
    // The NEW events were dropped: the first ones keep their place.
    assert_each_logged(&rest[NORMAL_EVENTS..], "queue 90% full");
    assert_none_logged(&rest[..NORMAL_EVENTS]);
    // High-priority events still get the last tenth, then the queue is full.
    let high: Vec<(helios_client::ObjectId, String)> = (0..HIGH_EVENTS)
        .map(|i| {
            let marker = format!("overflow-high-{i}");
            let fields = json!({"marker": marker, helios_client::PRIORITY_FIELD: "high"});
            (client.record("overflow", fields), marker)
        })
        .collect();
    let room = QUEUE_EVENTS - NORMAL_EVENTS;
    assert_eq!(client.queued_events(), QUEUE_EVENTS);
    assert_none_logged(&high[..room]);
    assert_each_logged(&high[room..], "queue full, new event dropped");
    let dropped_full = (100 - NORMAL_EVENTS + HIGH_EVENTS - room) as u64;
    assert_eq!(client.stats().dropped_queue_full, dropped_full);
    // Shutdown cannot deliver the rest either: they are logged too.
    assert!(!client.shutdown(Duration::from_millis(200)));
    assert_each_logged(&in_flight, "shutdown deadline passed");
    assert_each_logged(&rest[..NORMAL_EVENTS], "shutdown deadline passed");
    assert_each_logged(&high[..room], "shutdown deadline passed");
    assert_eq!(
        client.stats().dropped,
        (BATCH_EVENTS + 100 + HIGH_EVENTS) as u64
    );
}

#[test]
fn an_oversized_document_is_logged_truncated_with_its_size() {
    capture_logs();
    let client = quick_client(&unreachable_url())
        .max_event_bytes(1_000)
        .max_logged_document_bytes(200)
        .build()
        .expect("client");
    let id = client.record(
        "big",
        json!({"marker": "oversized", "blob": "x".repeat(5_000)}),
    );
    let lines = support::logged_by_id()
        .remove(&id.to_hex())
        .expect("logged");
    assert!(
        lines[0].contains("event larger than max_event_bytes=1000"),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("TRUNCATED to its first 200 bytes"),
        "{lines:?}"
    );
    assert!(lines[0].len() < 600);
    assert_eq!(client.stats().dropped, 1);
}

#[test]
fn invalid_events_are_logged_and_counted_not_sent() {
    capture_logs();
    let server = FakeServer::accepting();
    let client = quick_client(&server.url()).build().expect("client");
    let not_object = client.record("t", json!([1, 2]));
    let empty_type = client.record("", json!({}));
    let fails = client.record_serialize("t", &std::collections::HashMap::from([((1, 2), 3)]));
    assert!(client.flush(FLUSH_TIMEOUT));
    let by_id = support::logged_by_id();
    for id in [not_object, empty_type, fails] {
        assert!(
            by_id[&id.to_hex()][0].contains("invalid event"),
            "{:?}",
            by_id[&id.to_hex()]
        );
    }
    assert_eq!(client.stats().dropped, 3);
    assert!(server.requests().is_empty());
}

#[test]
fn record_after_shutdown_logs_the_event() {
    capture_logs();
    let server = FakeServer::accepting();
    let client = quick_client(&server.url()).build().expect("client");
    assert!(client.shutdown(Duration::from_secs(2)));
    let (late, _) = record_marked(&client, "late", "after-shutdown", 3);
    assert_each_logged(&late, "recorded after client shutdown");
}

#[test]
fn a_panicking_serialize_impl_does_not_reach_the_app() {
    struct Explodes;
    impl serde::Serialize for Explodes {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            panic!("boom from a Serialize impl");
        }
    }
    let server = FakeServer::accepting();
    let client = quick_client(&server.url()).build().expect("client");
    client.record_serialize("t", &Explodes);
    client.record("after", json!({}));
    assert!(client.flush(FLUSH_TIMEOUT));
    let stats = client.stats();
    assert_eq!((stats.dropped, stats.sent), (1, 1));
}
