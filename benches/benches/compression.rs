//! gzip and zstd levels on Helios request bodies (issue 21 §3): the ratio,
//! the client's CPU (compress time per MB of NDJSON) and the collector's
//! CPU (decode time per MB, through the collector's own bounded decoders,
//! `helios_ingest::decode`), in the same run.
//!
//! Bodies, as the Rust client sends them (NDJSON, one event per line):
//!
//! - `event`: the reference event (`../shared/bench/event.json`, 300 B)
//!   alone: what a lightly loaded client sends per batch.
//! - `batch100`: the reference batch (`batch100.json`, 100 events). Its
//!   events are byte-identical, so its ratios flatter every codec.
//! - `varied1000`: 1,000 events of the reference shape whose values vary
//!   as a real batch's do (a fresh `_id` and `ts` per event, as the client
//!   stamps them; trace, span and user ids, amounts, hosts): the body whose
//!   ratio to quote.
//! - `bomb`: 32 MiB of one repeated byte (the default `max_decoded_bytes`),
//!   decode only: what the collector spends on a bomb before its 413.
//!
//! Levels: gzip 1 (the Rust client's and relay's `Compression::fast()`),
//! 6 (zlib's default, Python's `gzip` module uses 9), 9; zstd 1 (the Rust
//! client's), 3 (libzstd's default), 6, 19 (the highest whose window stays
//! within RFC 9659's 8 MiB).
//!
//! `cargo bench -p helios-benches --bench compression` (inputs from
//! `HELIOS_BENCH_INPUTS`, default `../shared/bench`). The ratios are
//! printed first (stderr); throughput is in uncompressed bytes (criterion's
//! MiB/s).

use std::io::Write;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use helios_ingest::decode::{gunzip_limited, unzstd_limited};

const SHARED_BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench");
/// The collector's default `--max-decoded-bytes`.
const MAX_DECODED_BYTES: usize = 32 << 20;
/// Events in the varied batch.
const VARIED_EVENTS: u64 = 1_000;

thread_local! {
    /// The client's reused zstd contexts, one per level.
    static ZSTD_CONTEXTS: std::cell::RefCell<std::collections::HashMap<i32, zstd::bulk::Compressor<'static>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A codec and level.
#[derive(Clone, Copy)]
enum Codec {
    Gzip(u32),
    Zstd(i32),
}

const CODECS: [Codec; 7] = [
    Codec::Gzip(1),
    Codec::Gzip(6),
    Codec::Gzip(9),
    Codec::Zstd(1),
    Codec::Zstd(3),
    Codec::Zstd(6),
    Codec::Zstd(19),
];

impl Codec {
    fn name(self) -> String {
        match self {
            Codec::Gzip(l) => format!("gzip-{l}"),
            Codec::Zstd(l) => format!("zstd-{l}"),
        }
    }

    /// Compressed as the Rust client does: a fresh flate2 gzip writer per
    /// body; zstd's bulk API with one context per level, reused.
    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Codec::Gzip(l) => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 4),
                    flate2::Compression::new(l),
                );
                e.write_all(data).expect("to a Vec");
                e.finish().expect("to a Vec")
            }
            Codec::Zstd(l) => ZSTD_CONTEXTS.with(|contexts| {
                let mut contexts = contexts.borrow_mut();
                let compressor = contexts
                    .entry(l)
                    .or_insert_with(|| zstd::bulk::Compressor::new(l).expect("zstd level"));
                compressor.compress(data).expect("zstd")
            }),
        }
    }

    /// Decoded as the collector does.
    fn decode(self, body: &[u8], out: &mut Vec<u8>) {
        match self {
            Codec::Gzip(_) => gunzip_limited(body, MAX_DECODED_BYTES, out).expect("gzip"),
            Codec::Zstd(_) => unzstd_limited(body, MAX_DECODED_BYTES, out).expect("zstd"),
        }
    }
}

fn input(name: &str) -> Vec<u8> {
    let dir = std::env::var("HELIOS_BENCH_INPUTS").unwrap_or_else(|_| SHARED_BENCH_DIR.into());
    std::fs::read(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"))
}

/// The JSON array `batch100.json` as NDJSON.
fn ndjson(array: &[u8]) -> Vec<u8> {
    let events: Vec<serde_json::Value> = serde_json::from_slice(array).expect("a JSON array");
    let mut out = Vec::new();
    for event in events {
        serde_json::to_writer(&mut out, &event).expect("to a Vec");
        out.push(b'\n');
    }
    out
}

/// `VARIED_EVENTS` events of the reference event's shape, values varied
/// deterministically (xorshift), as NDJSON.
fn varied(reference: &[u8]) -> Vec<u8> {
    let template: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(reference).expect("a JSON object");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let base_ms = 1_796_060_073_123u64; // 2026-11-30T17:54:33.123Z
    let mut out = Vec::new();
    for i in 0..VARIED_EVENTS {
        let mut e = template.clone();
        let ms = base_ms + i * 7 + next() % 5;
        let (secs, milli) = (ms / 1000, ms % 1000);
        e.insert(
            "_id".into(),
            format!("6931a1b9{:016x}", 0x1234_5678_0000_0000 + i).into(),
        );
        e.insert(
            "ts".into(),
            format!(
                "2026-11-30T{:02}:{:02}:{:02}.{milli:03}Z",
                (secs / 3600) % 24,
                (secs / 60) % 60,
                secs % 60
            )
            .into(),
        );
        e.insert(
            "host".into(),
            format!("web-{:02}.prod.internal", next() % 12).into(),
        );
        e.insert(
            "trace_id".into(),
            format!("{:016x}{:016x}", next(), next()).into(),
        );
        e.insert("span_id".into(), format!("{:016x}", next()).into());
        e.insert(
            "user_id".into(),
            format!("u-{:08}", next() % 100_000_000).into(),
        );
        e.insert(
            "amount".into(),
            serde_json::Number::from_f64((next() % 100_000) as f64 / 100.0)
                .expect("finite")
                .into(),
        );
        e.insert("items".into(), (1 + next() % 9).into());
        serde_json::to_writer(&mut out, &e).expect("to a Vec");
        out.push(b'\n');
    }
    out
}

fn compression(c: &mut Criterion) {
    let event = input("event.json");
    let mut event_line = event.trim_ascii_end().to_vec();
    event_line.push(b'\n');
    let bodies = [
        ("event", event_line),
        ("batch100", ndjson(&input("batch100.json"))),
        ("varied1000", varied(&event)),
    ];
    eprintln!("body        codec     raw B   compressed B   ratio");
    for (name, body) in &bodies {
        for codec in CODECS {
            let z = codec.compress(body);
            eprintln!(
                "{name:<11} {:<8} {:>7} {:>14} {:>7.2}",
                codec.name(),
                body.len(),
                z.len(),
                body.len() as f64 / z.len() as f64
            );
        }
    }

    let mut group = c.benchmark_group("compress");
    for (name, body) in &bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        for codec in CODECS {
            group.bench_with_input(BenchmarkId::new(codec.name(), name), body, |b, body| {
                b.iter(|| codec.compress(body))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("decode");
    let mut out = Vec::with_capacity(MAX_DECODED_BYTES);
    for (name, body) in &bodies {
        group.throughput(Throughput::Bytes(body.len() as u64));
        for codec in CODECS {
            let z = codec.compress(body);
            group.bench_with_input(BenchmarkId::new(codec.name(), name), &z, |b, z| {
                b.iter(|| codec.decode(z, &mut out))
            });
        }
    }
    // The bomb: the decoders stop at the limit (the last chunk past it
    // decoded), so this is the collector's cost of a 413.
    let bomb = vec![b' '; MAX_DECODED_BYTES + (1 << 20)];
    group.throughput(Throughput::Bytes(MAX_DECODED_BYTES as u64));
    for codec in [Codec::Gzip(9), Codec::Zstd(19)] {
        let z = codec.compress(&bomb);
        eprintln!(
            "bomb        {:<8} {:>7} {:>14} {:>7.0}",
            codec.name(),
            bomb.len(),
            z.len(),
            bomb.len() as f64 / z.len() as f64
        );
        group.bench_with_input(BenchmarkId::new(codec.name(), "bomb"), &z, |b, z| {
            b.iter(|| {
                let r = match codec {
                    Codec::Gzip(_) => gunzip_limited(z, MAX_DECODED_BYTES, &mut out).is_err(),
                    Codec::Zstd(_) => unzstd_limited(z, MAX_DECODED_BYTES, &mut out).is_err(),
                };
                assert!(r, "a bomb is refused");
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = compression
}
criterion_main!(benches);
