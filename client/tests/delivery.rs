//! What reaches a collector, and how: exactly-once arrival, resends after
//! a lost response, per-attempt headers, Retry-After, failover.

mod support;

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use serde_json::json;
use support::{quick_client, record_marked, FakeServer, Reply};

const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn events_recorded_from_many_threads_arrive_exactly_once() {
    const THREADS: usize = 8;
    const EVENTS_PER_THREAD: usize = 500;
    let server = FakeServer::accepting();
    let client = quick_client(&server.url())
        .max_batch_events(100)
        .build()
        .expect("client");
    let recorded: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = client.clone();
                scope.spawn(move || {
                    let (events, _) =
                        record_marked(&client, "many", &format!("t{t}"), EVENTS_PER_THREAD);
                    events
                        .into_iter()
                        .map(|(id, _)| id.to_hex())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert!(client.flush(FLUSH_TIMEOUT), "flush timed out");
    let seen = server.ids();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event arrived twice");
    assert_eq!(unique, recorded.iter().collect::<HashSet<_>>());
    let stats = client.stats();
    assert_eq!(stats.recorded, (THREADS * EVENTS_PER_THREAD) as u64);
    assert_eq!(stats.sent, stats.recorded);
    assert_eq!((stats.dropped, stats.rejected, stats.retried), (0, 0, 0));
}

#[test]
fn a_lost_response_is_resent_with_byte_identical_events_and_dedups_to_the_recorded_set() {
    // The server "stores" the first batch, then closes without answering.
    let server = FakeServer::start(|n, _| if n == 0 { Reply::Close } else { Reply::Accept });
    let client = quick_client(&server.url()).build().expect("client");
    let (recorded, _) = record_marked(&client, "resend", "resend", 50);
    assert!(client.flush(FLUSH_TIMEOUT));

    let requests = server.requests();
    assert!(
        requests.len() >= 2,
        "no resend: {} requests",
        requests.len()
    );
    assert_eq!(requests[1].raw_body, requests[0].raw_body, "resend differs");
    let first_batch: HashSet<String> = requests[0].ids().into_iter().collect();
    let seen = server.ids();
    let mut counts = std::collections::HashMap::new();
    for id in &seen {
        *counts.entry(id.clone()).or_insert(0) += 1;
    }
    for (id, count) in &counts {
        let expected = if first_batch.contains(id) { 2 } else { 1 };
        assert_eq!(*count, expected, "id {id} seen {count} times");
    }
    let recorded: HashSet<String> = recorded.iter().map(|(id, _)| id.to_hex()).collect();
    assert_eq!(counts.keys().cloned().collect::<HashSet<_>>(), recorded);
    assert_eq!(client.stats().sent, 50);
    assert_eq!(client.stats().retried, 1);
}

#[test]
fn helios_sent_at_is_sent_fresh_on_every_attempt() {
    let server = FakeServer::start(|n, _| if n < 2 { Reply::Close } else { Reply::Accept });
    let client = quick_client(&server.url()).build().expect("client");
    client.record("sent-at", json!({"k": 1}));
    assert!(client.flush(FLUSH_TIMEOUT));
    let stamps: Vec<u64> = server
        .requests()
        .iter()
        .map(|r| {
            r.header("helios-sent-at")
                .expect("Helios-Sent-At on every attempt")
                .parse()
                .expect("epoch ms")
        })
        .collect();
    assert_eq!(stamps.len(), 3);
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "not fresh: {stamps:?}"
    );
}

#[test]
fn retry_after_on_503_delays_the_next_attempt() {
    let server = FakeServer::start(|n, _| {
        if n == 0 {
            let headers = vec![("Retry-After".to_owned(), "1".to_owned())];
            Reply::Status(
                503,
                headers,
                r#"{"error":"busy","detail":"journal budget"}"#.to_owned(),
            )
        } else {
            Reply::Accept
        }
    });
    let client = quick_client(&server.url()).build().expect("client");
    client.record("retry-after", json!({}));
    assert!(client.flush(FLUSH_TIMEOUT));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(
        gap >= Duration::from_secs(1),
        "second attempt after only {gap:?}"
    );
    assert_eq!(client.stats().sent, 1);
}

#[test]
fn requests_carry_the_api_key_ndjson_type_and_event_envelope() {
    let server = FakeServer::accepting();
    let client = quick_client(&server.url())
        .api_key("k-123")
        .build()
        .expect("client");
    let id = client.record("envelope", json!({"user": "ann"}));
    assert!(client.flush(FLUSH_TIMEOUT));
    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer k-123"));
    assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
    let event = &request.events[0];
    assert_eq!(event["_id"], json!(id.to_hex()));
    assert_eq!(event["type"], json!("envelope"));
    assert_eq!(event["host"], json!("test-host"));
    assert_eq!(event["app"], json!("test-app"));
    assert_eq!(event["user"], json!("ann"));
    let ts = event["ts"].as_str().expect("ts is a string");
    assert_eq!(ts.len(), "2024-02-29T12:34:56.789Z".len());
    assert!(ts.ends_with('Z'));
}

#[test]
fn gzip_bodies_decode_to_the_same_events() {
    let server = FakeServer::accepting();
    let client = quick_client(&server.url())
        .gzip(true)
        .build()
        .expect("client");
    let (recorded, _) = record_marked(&client, "gzip", "gzip", 20);
    assert!(client.flush(FLUSH_TIMEOUT));
    let requests = server.requests();
    assert!(requests
        .iter()
        .all(|r| r.header("content-encoding") == Some("gzip")));
    let seen: HashSet<String> = server.ids().into_iter().collect();
    assert_eq!(seen, recorded.iter().map(|(id, _)| id.to_hex()).collect());
}

#[test]
fn chunked_responses_are_understood_and_the_connection_is_kept_alive() {
    let server = FakeServer::start(|_, _| Reply::AcceptChunked);
    let client = quick_client(&server.url()).build().expect("client");
    for round in 0..3 {
        client.record("chunked", json!({"round": round}));
        assert!(client.flush(FLUSH_TIMEOUT));
    }
    let stats = client.stats();
    assert_eq!((stats.sent, stats.retried, stats.batches_sent), (3, 0, 3));
    assert_eq!(server.connections(), 1, "keep-alive connection not reused");
}

#[test]
fn a_failed_endpoint_fails_over_to_the_next() {
    let server = FakeServer::accepting();
    let client = quick_client(&support::unreachable_url())
        .endpoint(server.url())
        .build()
        .expect("client");
    let (recorded, _) = record_marked(&client, "failover", "failover", 10);
    assert!(client.flush(FLUSH_TIMEOUT));
    assert_eq!(server.ids().len(), recorded.len());
    assert_eq!(client.stats().sent, 10);
}

#[test]
fn batches_respect_the_event_count_limit() {
    let server = FakeServer::accepting();
    let client = quick_client(&server.url())
        .max_batch_events(7)
        .max_batch_delay(Duration::from_secs(5))
        .build()
        .expect("client");
    record_marked(&client, "batching", "batching", 21);
    assert!(client.flush(FLUSH_TIMEOUT));
    let sizes: Vec<usize> = server.requests().iter().map(|r| r.events.len()).collect();
    assert!(sizes.iter().all(|n| *n <= 7), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 21);
}

#[test]
fn dropping_the_last_handle_delivers_what_is_queued() {
    let server = FakeServer::accepting();
    let client = quick_client(&server.url())
        .max_batch_delay(Duration::from_secs(5))
        .build()
        .expect("client");
    let (recorded, _) = record_marked(&client, "drop", "drop", 30);
    drop(client);
    assert_eq!(server.ids().len(), recorded.len());
}
