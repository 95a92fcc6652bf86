//! Hot paths of the collector besides validation, on the reference load:
//! HTTP request-head parsing (one request, and a buffer of 16 pipelined
//! ones), id minting, record encoding (payload framing + journal record
//! with CRC32C), record → documents at flush time, SQLite batch inserts, and
//! the MongoDB sink's JSON → BSON conversion (against a `serde_json::Value`
//! parse of the same documents as the yardstick).
//!
//! `cargo bench -p helios-benches --bench ingest` (inputs from
//! `HELIOS_BENCH_INPUTS`, default `../shared/bench`)

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use helios_ingest::events::{
    encode_payload, record_to_docs, validate, BodyFormat, IdMinter, ValidateLimits, ValidateMode,
    Validation,
};
use helios_ingest::http::{parse_head, HttpLimits};
use helios_journal::format::{
    encode_record, padded_record_bytes, RecordKind, RecordMeta, FLAG_COMMIT_START,
};
use helios_journal::{Checkpoint, Record};
use helios_store::mongo::event_to_bson;
use helios_store::sqlite::SqliteSink;
use helios_store::{EventDoc, ObjectId, Sink};

const SHARED_BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench");
const PIPELINE_DEPTH: usize = 16;
const SQLITE_BATCH_EVENTS: usize = 1000;
const LIMITS: HttpLimits = HttpLimits {
    max_header_bytes: 16 << 10,
    max_headers: 64,
    max_body_bytes: 8 << 20,
};

fn read(file: &str) -> Vec<u8> {
    let dir = std::env::var("HELIOS_BENCH_INPUTS").unwrap_or_else(|_| SHARED_BENCH_DIR.into());
    std::fs::read(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
}

/// The request wrk sends with `post.lua` for `body`.
fn request(body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:7070\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn http(c: &mut Criterion) {
    let event = read("event.json");
    let one = request(&event);
    let pipelined: Vec<u8> = (0..PIPELINE_DEPTH).flat_map(|_| one.clone()).collect();
    let mut g = c.benchmark_group("http_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_request_head", |b| {
        b.iter(|| parse_head(&one, &LIMITS).unwrap().unwrap().head_len)
    });
    g.throughput(Throughput::Elements(PIPELINE_DEPTH as u64));
    g.bench_function("pipelined_16_heads_and_bodies", |b| {
        b.iter(|| {
            let mut at = 0;
            while at < pipelined.len() {
                let h = parse_head(&pipelined[at..], &LIMITS).unwrap().unwrap();
                let helios_ingest::http::Framing::Length(n) = h.framing else {
                    unreachable!()
                };
                at += h.head_len + n;
            }
            at
        })
    });
    g.finish();
}

/// The reference batch and its validation.
fn validated_batch() -> (Vec<u8>, Validation) {
    let batch = read("batch100.json");
    let mut v = Validation::new();
    validate(
        &batch,
        BodyFormat::Json,
        &ValidateLimits::default(),
        ValidateMode { relay: false },
        &mut v,
    )
    .unwrap();
    (batch, v)
}

fn encoding(c: &mut Criterion) {
    let (batch, v) = validated_batch();
    let mut minter = IdMinter::resume([1, 2, 3, 4, 5], None);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("id_mint_reserve", |b| {
        b.iter(|| minter.reserve(1_764_000_000_000, 100))
    });
    // Built here, not only inside the bench below: the later benches read
    // it, and a filtered run skips that bench.
    let mut payload = Vec::new();
    encode_payload(0, &batch, v.accepted(), &mut payload).unwrap();
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("encode_payload_batch100", |b| {
        b.iter(|| {
            payload.clear();
            encode_payload(0, &batch, v.accepted(), &mut payload).unwrap();
            payload.len()
        })
    });
    let meta = RecordMeta {
        recv_ms: 1_764_000_000_000,
        clock_offset_ms: 0,
        id_base: minter.reserve(1_764_000_000_000, 100),
        event_count: 100,
        app: "",
    };
    let mut out = vec![0u8; padded_record_bytes(0, payload.len())];
    g.bench_function("encode_journal_record_batch100", |b| {
        b.iter(|| {
            encode_record(
                &mut out,
                RecordKind::Events,
                FLAG_COMMIT_START,
                1,
                1,
                &meta,
                &payload,
            )
        })
    });
    let record = Record {
        seq: 1,
        checkpoint: Checkpoint::default(),
        recv_ms: meta.recv_ms,
        clock_offset_ms: 0,
        id_base: meta.id_base,
        event_count: 100,
        app: String::new(),
        payload: payload.clone(),
    };
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    g.throughput(Throughput::Elements(100));
    g.bench_function("record_to_docs_batch100", |b| {
        b.iter(|| {
            docs.clear();
            record_to_docs(&record, &mut docs, &mut failures).unwrap();
            docs.len()
        })
    });
    g.finish();
}

fn sqlite(c: &mut Criterion) {
    // Ten reference batches; their ids are replaced per iteration below.
    let template: Vec<EventDoc> = (0..SQLITE_BATCH_EVENTS / 100)
        .flat_map(|_| reference_docs())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = SqliteSink::open(dir.path().join("bench.db")).unwrap();
    let mut counter = 0u32;
    let mut g = c.benchmark_group("sqlite");
    g.measurement_time(Duration::from_secs(8));
    g.sample_size(20);
    g.throughput(Throughput::Elements(SQLITE_BATCH_EVENTS as u64));
    g.bench_function("insert_batch_1000_reference_events", |b| {
        b.iter_batched(
            || {
                // Fresh ids so every row is a real insert.
                let mut docs = template.clone();
                for d in &mut docs {
                    counter = counter.wrapping_add(1) & 0x00ff_ffff;
                    d.id = ObjectId::from_parts(
                        1_764_000_000 + (counter >> 20),
                        [7, 7, 7, 7, 7],
                        counter,
                    )
                    .unwrap();
                }
                docs
            },
            |docs| sink.write_batch(&docs).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The reference batch as the flusher holds it: 100 documents.
fn reference_docs() -> Vec<EventDoc> {
    let (batch, v) = validated_batch();
    let mut payload = Vec::new();
    encode_payload(0, &batch, v.accepted(), &mut payload).unwrap();
    let mut minter = IdMinter::resume([9, 9, 9, 9, 9], None);
    let record = Record {
        seq: 1,
        checkpoint: Checkpoint::default(),
        recv_ms: 1_764_000_000_000,
        clock_offset_ms: 0,
        id_base: minter.reserve(1_764_000_000_000, 100),
        event_count: 100,
        app: String::new(),
        payload,
    };
    let mut docs = Vec::new();
    record_to_docs(&record, &mut docs, &mut Vec::new()).unwrap();
    docs
}

fn bson(c: &mut Criterion) {
    let docs = reference_docs();
    let bytes: usize = docs.iter().map(|d| d.doc.len()).sum();
    let mut g = c.benchmark_group("bson");
    g.throughput(Throughput::Elements(docs.len() as u64));
    g.bench_function("json_to_bson_batch100", |b| {
        b.iter(|| {
            docs.iter()
                .map(|d| event_to_bson(d).unwrap().as_bytes().len())
                .sum::<usize>()
        })
    });
    g.bench_function("serde_json_value_parse_batch100", |b| {
        b.iter(|| {
            docs.iter()
                .map(|d| {
                    let v: serde_json::Value = serde_json::from_str(&d.doc).unwrap();
                    v.as_object().map_or(0, |o| o.len())
                })
                .sum::<usize>()
        })
    });
    g.finish();
    eprintln!("bson: {} documents, {bytes} JSON bytes", docs.len());
}

criterion_group!(benches, http, encoding, sqlite, bson);
criterion_main!(benches);
