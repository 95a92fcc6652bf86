//! What a shipper's protocol costs per event beside Helios's own JSON
//! (issue 14: "protobuf decoding should cost no more per event than JSON
//! validation does"), on the reference batch (`../shared/bench/batch100.json`,
//! 100 events of ~300 bytes), in the same run:
//!
//! - `helios_json_validate`: `POST /v1/events` with the JSON array —
//!   `helios_ingest::events::validate`, all the collector does per event
//!   before the journal.
//! - `otlp_protobuf_decode`: the same 100 events as one OTLP
//!   `ExportLogsServiceRequest` (one resource, one scope, 100 records; the
//!   event's fields as attributes, `message` as the body, ids as bytes) —
//!   `helios_shippers::decode`, protobuf to Helios event lines.
//! - `otlp_protobuf_decode_and_validate`: decode, then validate the lines
//!   as the collector does: the whole per-event cost of an OTLP request.
//! - `otlp_json_decode_and_validate`: the same request as OTLP/JSON.
//!
//! `cargo bench -p helios-benches --bench shippers` (inputs from
//! `HELIOS_BENCH_INPUTS`, default `../shared/bench`). Throughput is in
//! events (criterion prints elements/s).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use helios_ingest::events::{validate, BodyFormat, ValidateLimits, ValidateMode, Validation};
#[path = "../support/otlp_reference.rs"]
mod otlp_reference;

use helios_shippers::{Endpoint, Request, Settings, Translation, TypeRules};
use otlp_reference::{otlp_json, otlp_request};
use prost::Message as _;

const SHARED_BENCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/bench");
const CLIENT: ValidateMode = ValidateMode { relay: false };
const LIMITS: ValidateLimits = ValidateLimits {
    max_events_per_request: 10_000,
    max_json_depth: 64,
};

fn reference_batch() -> Vec<u8> {
    let dir = std::env::var("HELIOS_BENCH_INPUTS").unwrap_or_else(|_| SHARED_BENCH_DIR.into());
    std::fs::read(format!("{dir}/batch100.json")).expect("batch100.json")
}

fn otlp(c: &mut Criterion) {
    let batch = reference_batch();
    let request = otlp_request(&batch);
    let events = request.resource_logs[0].scope_logs[0].log_records.len();
    let protobuf = request.encode_to_vec();
    let settings = Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 32 << 20,
        max_events: 10_000,
    };
    let protobuf_req = Request {
        endpoint: Endpoint::OtlpLogs,
        path: "/v1/logs",
        query: "",
        content_type: "application/x-protobuf",
        app: "",
        recv_ms: 1_764_525_273_200,
    };
    let mut translation = Translation::default();
    helios_shippers::decode(&protobuf_req, &protobuf, &settings, &mut translation)
        .expect("the request decodes");
    assert_eq!(translation.lines(), events);
    // The same request as OTLP/JSON, written from the protobuf messages.
    let json = otlp_json(&request);
    let json_req = Request {
        content_type: "application/json",
        ..protobuf_req
    };
    helios_shippers::decode(&json_req, &json, &settings, &mut translation)
        .expect("the JSON request decodes");
    assert_eq!(translation.lines(), events);
    eprintln!(
        "{events} events: JSON array {} bytes, OTLP protobuf {} bytes, OTLP/JSON {} bytes, \
         translated lines {} bytes",
        batch.len(),
        protobuf.len(),
        json.len(),
        translation.ndjson.len()
    );

    let mut group = c.benchmark_group("per_event");
    group.throughput(Throughput::Elements(events as u64));
    group.measurement_time(Duration::from_secs(4));
    let mut v = Validation::default();
    group.bench_function("helios_json_validate", |b| {
        b.iter(|| {
            validate(&batch, BodyFormat::Json, &LIMITS, CLIENT, &mut v).expect("valid");
            v.accepted().len()
        })
    });
    group.bench_function("otlp_protobuf_decode", |b| {
        b.iter(|| {
            helios_shippers::decode(&protobuf_req, &protobuf, &settings, &mut translation)
                .expect("decodes");
            translation.ndjson.len()
        })
    });
    // What the collector does per OTLP request: decode, then validate the
    // translated lines as NDJSON.
    for (name, req, body) in [
        (
            "otlp_protobuf_decode_and_validate",
            &protobuf_req,
            &protobuf,
        ),
        ("otlp_json_decode_and_validate", &json_req, &json),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                helios_shippers::decode(req, body, &settings, &mut translation).expect("decodes");
                validate(
                    &translation.ndjson,
                    BodyFormat::Ndjson,
                    &LIMITS,
                    CLIENT,
                    &mut v,
                )
                .expect("valid");
                v.accepted().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, otlp);
criterion_main!(benches);
