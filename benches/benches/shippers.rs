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
use helios_shippers::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value as AnyKind,
};
use helios_shippers::{Endpoint, Request, Settings, Translation, TypeRules};
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

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(AnyKind::String(s.to_owned())),
    })
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The reference events as one OTLP request: what an OpenTelemetry SDK
/// would send for them.
fn otlp_request(batch: &[u8]) -> ExportLogsServiceRequest {
    let events: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(batch).expect("batch100.json is an array of objects");
    let records = events
        .iter()
        .map(|event| {
            let mut attributes = vec![KeyValue {
                key: "event.name".into(),
                value: string(event["type"].as_str().unwrap_or("")),
            }];
            for (key, value) in event {
                let value = match (key.as_str(), value) {
                    ("type" | "ts" | "message" | "trace_id" | "span_id" | "level", _) => continue,
                    (_, serde_json::Value::String(s)) => AnyKind::String(s.clone()),
                    (_, serde_json::Value::Number(n)) if n.is_i64() => {
                        AnyKind::Int(n.as_i64().unwrap_or(0))
                    }
                    (_, serde_json::Value::Number(n)) => AnyKind::Double(n.as_f64().unwrap_or(0.0)),
                    _ => continue,
                };
                attributes.push(KeyValue {
                    key: key.clone(),
                    value: Some(AnyValue { value: Some(value) }),
                });
            }
            let text = |k: &str| event.get(k).and_then(|v| v.as_str()).unwrap_or("");
            LogRecord {
                time_unix_nano: 1_764_525_273_123_000_000,
                observed_time_unix_nano: 1_764_525_273_124_000_000,
                severity_number: 9,
                severity_text: text("level").to_uppercase(),
                body: string(text("message")),
                attributes,
                trace_id: hex_bytes(text("trace_id")),
                span_id: hex_bytes(text("span_id")),
                flags: 1,
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string("checkout-api"),
                }],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "checkout".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
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
    group.bench_function("otlp_protobuf_decode_and_validate", |b| {
        b.iter(|| {
            helios_shippers::decode(&protobuf_req, &protobuf, &settings, &mut translation)
                .expect("decodes");
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
    group.bench_function("otlp_json_decode_and_validate", |b| {
        b.iter(|| {
            helios_shippers::decode(&json_req, &json, &settings, &mut translation)
                .expect("decodes");
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
    group.finish();
}

/// The OTLP/JSON form of `request` (the mapping's lowerCamelCase names,
/// hex ids, int64 as strings), as the JavaScript exporter writes it.
fn otlp_json(request: &ExportLogsServiceRequest) -> Vec<u8> {
    use serde_json::{json, Value};
    fn any(v: &Option<AnyValue>) -> Value {
        match v.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyKind::String(s)) => json!({ "stringValue": s }),
            Some(AnyKind::Int(i)) => json!({ "intValue": i.to_string() }),
            Some(AnyKind::Double(d)) => json!({ "doubleValue": d }),
            Some(AnyKind::Bool(b)) => json!({ "boolValue": b }),
            _ => json!({}),
        }
    }
    fn kvs(list: &[KeyValue]) -> Value {
        list.iter()
            .map(|kv| json!({ "key": kv.key, "value": any(&kv.value) }))
            .collect()
    }
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
    let rl = &request.resource_logs[0];
    let sl = &rl.scope_logs[0];
    let records: Vec<Value> = sl
        .log_records
        .iter()
        .map(|r| {
            json!({
                "timeUnixNano": r.time_unix_nano.to_string(),
                "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
                "severityNumber": r.severity_number,
                "severityText": r.severity_text,
                "body": any(&r.body),
                "attributes": kvs(&r.attributes),
                "traceId": hex(&r.trace_id),
                "spanId": hex(&r.span_id),
                "flags": r.flags,
            })
        })
        .collect();
    let resource = rl.resource.as_ref().map(|r| kvs(&r.attributes));
    let scope = sl.scope.as_ref().map(|s| s.name.clone());
    serde_json::to_vec(&json!({
        "resourceLogs": [{
            "resource": { "attributes": resource },
            "scopeLogs": [{ "scope": { "name": scope }, "logRecords": records }],
        }]
    }))
    .expect("JSON")
}

criterion_group!(benches, otlp);
criterion_main!(benches);
