//! Cost of `record()` on the caller's thread (DESIGN.md §7: it must return
//! at once; target p99 well under 5 µs).
//!
//! A loopback sink answers 200 to every request so the queue drains. Each
//! timed stretch records at most `TIMED_CHUNK_EVENTS` events and the client
//! is flushed outside the timing, so the figures are for a queue with room
//! (the drop path when it is full is cheaper still). Before criterion runs,
//! `record_latency_percentiles` times single calls to report p50/p99/p99.9.
//!
//! Run: `cargo bench -p helios-client --bench record`

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use helios_client::Client;
use serde::Serialize;
use serde_json::json;

/// Events recorded between two flushes inside one timed stretch.
const TIMED_CHUNK_EVENTS: u64 = 50_000;
/// Single-call samples for the percentile report.
const PERCENTILE_SAMPLES: usize = 200_000;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// The sink reads and answers requests until the bench process ends.
const SINK_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

#[derive(Serialize)]
struct Checkout<'a> {
    user: &'a str,
    order: u64,
    total_cents: u64,
    items: [&'a str; 3],
}

fn sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream));
        }
    });
    url
}

/// Answers each request with 200 and the count of its NDJSON lines.
fn serve(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = request.parse(&buf) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            if buf.len() >= head_len + length {
                let lines = buf[head_len..head_len + length]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                buf.drain(..head_len + length);
                let body = format!("{{\"accepted\":{lines},\"rejected\":[]}}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
        }
        if buf.len() > SINK_MAX_REQUEST_BYTES {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn client(url: &str) -> Client {
    Client::builder()
        .endpoint(url)
        .app("bench")
        .queue_capacity_events(2 * TIMED_CHUNK_EVENTS as usize)
        .queue_capacity_bytes(256 * 1024 * 1024)
        .build()
        .expect("client")
}

/// Times `iters` calls of `record`, flushing (untimed) every chunk.
fn timed(client: &Client, iters: u64, mut record: impl FnMut(u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(TIMED_CHUNK_EVENTS);
        let started = Instant::now();
        for i in done..done + n {
            record(i);
        }
        total += started.elapsed();
        client.flush(FLUSH_TIMEOUT);
        done += n;
    }
    total
}

fn record_benches(c: &mut Criterion) {
    let url = sink();
    let client = client(&url);
    c.bench_function("record/json_map_4_fields", |b| {
        b.iter_custom(|iters| {
            timed(&client, iters, |i| {
                black_box(client.record(
                    "checkout",
                    json!({"user": "ann", "order": i, "total_cents": 1999, "ok": true}),
                ));
            })
        })
    });
    c.bench_function("record_serialize/struct_4_fields", |b| {
        b.iter_custom(|iters| {
            timed(&client, iters, |i| {
                let event = Checkout {
                    user: "ann",
                    order: i,
                    total_cents: 1999,
                    items: ["a", "b", "c"],
                };
                black_box(client.record_serialize("checkout", &event));
            })
        })
    });
    let stats = client.stats();
    assert_eq!(stats.dropped, 0, "bench queue overflowed: {stats:?}");
}

/// Times single record() calls and prints percentiles (criterion reports
/// means per sample, not tail latency).
fn record_latency_percentiles() {
    let url = sink();
    let client = client(&url);
    let mut samples_ns = Vec::with_capacity(PERCENTILE_SAMPLES);
    for chunk_start in (0..PERCENTILE_SAMPLES).step_by(TIMED_CHUNK_EVENTS as usize) {
        let chunk_end = (chunk_start + TIMED_CHUNK_EVENTS as usize).min(PERCENTILE_SAMPLES);
        for i in chunk_start..chunk_end {
            let fields = json!({"user": "ann", "order": i, "total_cents": 1999, "ok": true});
            let started = Instant::now();
            black_box(client.record("checkout", fields));
            samples_ns.push(started.elapsed().as_nanos() as u64);
        }
        client.flush(FLUSH_TIMEOUT);
    }
    samples_ns.sort_unstable();
    let at = |q: f64| samples_ns[((samples_ns.len() - 1) as f64 * q) as usize];
    println!(
        "record() single-call latency over {} calls (json map, fields built outside the timing): \
         p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, max {} ns; dropped {}",
        samples_ns.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(0.999),
        samples_ns[samples_ns.len() - 1],
        client.stats().dropped
    );
}

criterion_group!(benches, record_benches);

fn main() {
    record_latency_percentiles();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
