//! Property tests of the OTLP/HTTP logs decoder: no bytes panic it (as
//! protobuf or as JSON, random or mutated from valid bodies); every event
//! line it writes is one the collector can take (a JSON object without
//! duplicate member names, a non-empty string `type`, no `recv`/`app`/
//! `ts_raw`, an integer `ts`, an `_id` only as 24 hex digits); items and
//! lines stay paired; every answer decodes in its protocol's shape; and a
//! random request yields the same events whether it is sent as protobuf or
//! as OTLP/JSON.
//!
//! The protobuf bodies are built with messages declared here with prost's
//! derive (the crate's own are private): an independent reading of the
//! upstream field numbers, so a numbering slip on either side shows.

use std::fmt;

use helios_shippers::otlp::proto::ExportLogsServiceRequest as CrateRequest;
use helios_shippers::{
    decode, render_failure, render_success, Endpoint, LineReject, Request, Settings, Translation,
    TypeRules,
};
use proptest::prelude::*;
use prost::Message as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};

const MAX_EVENTS: usize = 64;
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events: MAX_EVENTS,
    }
}

fn request(content_type: &str) -> Request<'_> {
    Request {
        endpoint: Endpoint::OtlpLogs,
        path: "/v1/logs",
        query: "",
        content_type,
        app: "fuzz",
        recv_ms: 1_765_106_100_000,
    }
}

/// Decodes, checks every invariant of the translation and of both answers,
/// and returns the translation when the request was accepted.
fn decode_checked(content_type: &str, body: &[u8]) -> Option<Translation> {
    let req = request(content_type);
    let mut out = Translation::default();
    let mut answer = Vec::new();
    match decode(&req, body, &settings(), &mut out) {
        Err(failure) => {
            let rendered = render_failure(&req, &failure, &mut answer);
            assert!(rendered.status >= 400, "{failure:?}");
            check_status(content_type, &answer);
            None
        }
        Ok(()) => {
            check_translation(&out);
            // The collector may refuse any line; refuse every other one.
            let rejected: Vec<LineReject<'_>> = (0..out.lines() as u32)
                .step_by(2)
                .map(|line| LineReject {
                    line,
                    error: "refused by the test",
                })
                .collect();
            let rendered = render_success(&req, &out, &rejected, 1, &mut answer);
            assert_eq!(rendered.status, 200);
            check_response(content_type, &answer, rejected.len());
            Some(out)
        }
    }
}

fn check_status(content_type: &str, body: &[u8]) {
    if content_type == PROTOBUF {
        let status = Status::decode(body).expect("a protobuf google.rpc.Status");
        assert!(status.code > 0 && !status.message.is_empty());
    } else {
        let value: Value = serde_json::from_slice(body).expect("a JSON google.rpc.Status");
        assert!(value["code"].as_i64().is_some_and(|c| c > 0), "{value}");
        assert!(value["message"].is_string(), "{value}");
    }
}

fn check_response(content_type: &str, body: &[u8], rejected: usize) {
    let (count, message) = if content_type == PROTOBUF {
        let response = ExportLogsServiceResponse::decode(body).expect("protobuf response");
        match response.partial_success {
            Some(p) => (p.rejected_log_records, p.error_message),
            None => (0, String::new()),
        }
    } else {
        let value: Value = serde_json::from_slice(body).expect("JSON response");
        match value.get("partialSuccess") {
            Some(p) => (
                p["rejectedLogRecords"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .expect("rejectedLogRecords as an int64 string"),
                p["errorMessage"].as_str().unwrap_or_default().to_owned(),
            ),
            None => {
                assert_eq!(value, json!({}));
                (0, String::new())
            }
        }
    };
    assert_eq!(count, rejected as i64);
    assert_eq!(message.is_empty(), rejected == 0, "{message}");
}

fn check_translation(out: &Translation) {
    let text = std::str::from_utf8(&out.ndjson).expect("event lines are UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), out.lines());
    assert_eq!(out.items.len(), lines.len(), "one item per record");
    for (i, item) in out.items.iter().enumerate() {
        assert_eq!(item.line, Ok(i as u32));
    }
    for line in lines {
        assert!(!line.is_empty());
        // Nesting is bounded by prost's limit (100), under serde_json's.
        let unique: UniqueMembers = serde_json::from_str(line).expect("no duplicate members");
        assert!(unique.0, "not an object: {line}");
        let event: Value = serde_json::from_str(line).expect("a JSON object");
        assert!(
            event["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{line}"
        );
        for reserved in ["recv", "app", "ts_raw"] {
            assert!(event.get(reserved).is_none(), "{reserved} in {line}");
        }
        if let Some(ts) = event.get("ts") {
            assert!(ts.is_i64(), "{line}");
        }
        if let Some(id) = event.get("_id") {
            let id = id.as_str().unwrap_or_default();
            assert!(
                id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{line}"
            );
        }
    }
}

/// Deserializes any JSON, failing on a repeated member name; holds whether
/// the top level was an object.
struct UniqueMembers(bool);

impl<'de> serde::Deserialize<'de> for UniqueMembers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = UniqueMembers;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMembers, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate member {key:?}")));
            }
            map.next_value::<UniqueMembers>()?;
        }
        Ok(UniqueMembers(true))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueMembers, A::Error> {
        while seq.next_element::<UniqueMembers>()?.is_some() {}
        Ok(UniqueMembers(false))
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
    fn visit_unit<E>(self) -> Result<UniqueMembers, E> {
        Ok(UniqueMembers(false))
    }
}

// ---- a model of requests, written both ways ----

#[derive(Debug, Clone)]
enum Any {
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Any>),
    Map(Vec<(String, Any)>),
}

#[derive(Debug, Clone)]
struct Record {
    time: u64,
    observed: u64,
    severity: i32,
    severity_text: String,
    body: Option<Any>,
    attributes: Vec<(String, Any)>,
    flags: u32,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    event_name: String,
}

#[derive(Debug, Clone)]
struct Scope {
    name: String,
    version: String,
    attributes: Vec<(String, Any)>,
    records: Vec<Record>,
}

#[derive(Debug, Clone)]
struct ResourceModel {
    attributes: Vec<(String, Any)>,
    schema_url: String,
    scopes: Vec<Scope>,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("a.b".to_owned()),
        Just("event.name".to_owned()),
        Just("log.record.uid".to_owned()),
        Just("service.name".to_owned()),
        Just("recv".to_owned()),
        "[a-z\"\\\\é\u{0}]{0,4}",
    ]
}

fn any_value() -> impl Strategy<Value = Any> {
    let leaf = prop_oneof![
        Just(Any::Empty),
        ".{0,8}".prop_map(Any::Str),
        any::<bool>().prop_map(Any::Bool),
        any::<i64>().prop_map(Any::Int),
        // Eighths are exact in binary and in decimal text, so a JSON body
        // round-trips them bit for bit; plus the non-finite ones.
        prop_oneof![
            (-1_000_000i32..1_000_000).prop_map(|n| f64::from(n) / 8.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
        ]
        .prop_map(Any::Double),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Any::Bytes),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Any::Array),
            proptest::collection::vec((key(), inner), 0..4).prop_map(Any::Map),
        ]
    })
}

fn pairs() -> impl Strategy<Value = Vec<(String, Any)>> {
    proptest::collection::vec((key(), any_value()), 0..4)
}

fn nanos() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        any::<u64>(),
        1_700_000_000_000_000_000u64..1_800_000_000_000_000_000
    ]
}

fn log_record() -> impl Strategy<Value = Record> {
    (
        (nanos(), nanos(), 0i32..30, "[A-Z]{0,5}"),
        (proptest::option::of(any_value()), pairs(), any::<u32>()),
        (
            prop_oneof![Just(vec![]), proptest::collection::vec(any::<u8>(), 16)],
            prop_oneof![Just(vec![]), proptest::collection::vec(any::<u8>(), 8)],
            "[a-z.]{0,6}",
        ),
    )
        .prop_map(
            |(
                (time, observed, severity, severity_text),
                (body, attributes, flags),
                (trace_id, span_id, event_name),
            )| Record {
                time,
                observed,
                severity,
                severity_text,
                body,
                attributes,
                flags,
                trace_id,
                span_id,
                event_name,
            },
        )
}

fn model() -> impl Strategy<Value = Vec<ResourceModel>> {
    let scope = (
        "[a-z.]{0,5}",
        "[0-9.]{0,3}",
        pairs(),
        proptest::collection::vec(log_record(), 0..4),
    )
        .prop_map(|(name, version, attributes, records)| Scope {
            name,
            version,
            attributes,
            records,
        });
    let resource = (
        pairs(),
        "[a-z:/.]{0,6}",
        proptest::collection::vec(scope, 0..3),
    )
        .prop_map(|(attributes, schema_url, scopes)| ResourceModel {
            attributes,
            schema_url,
            scopes,
        });
    proptest::collection::vec(resource, 0..3)
}

// The messages, declared independently of the crate's.

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    scope_logs: Vec<ScopeLogs>,
    #[prost(string, tag = "3")]
    schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Resource {
    #[prost(message, repeated, tag = "1")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    log_records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InstrumentationScope {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    version: String,
    #[prost(message, repeated, tag = "3")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LogRecord {
    #[prost(fixed64, tag = "1")]
    time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    observed_time_unix_nano: u64,
    #[prost(int32, tag = "2")]
    severity_number: i32,
    #[prost(string, tag = "3")]
    severity_text: String,
    #[prost(message, optional, tag = "5")]
    body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    attributes: Vec<KeyValue>,
    #[prost(fixed32, tag = "8")]
    flags: u32,
    #[prost(bytes = "vec", tag = "9")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    span_id: Vec<u8>,
    #[prost(string, tag = "12")]
    event_name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AnyValue {
    #[prost(oneof = "AnyCase", tags = "1, 2, 3, 4, 5, 6, 7")]
    value: Option<AnyCase>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum AnyCase {
    #[prost(string, tag = "1")]
    Str(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    #[prost(message, tag = "6")]
    Map(KeyValueList),
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    values: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<ExportLogsPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ExportLogsPartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_log_records: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn any_proto(value: &Any) -> AnyValue {
    let case = match value {
        Any::Empty => None,
        Any::Str(s) => Some(AnyCase::Str(s.clone())),
        Any::Bool(b) => Some(AnyCase::Bool(*b)),
        Any::Int(n) => Some(AnyCase::Int(*n)),
        Any::Double(x) => Some(AnyCase::Double(*x)),
        Any::Bytes(b) => Some(AnyCase::Bytes(b.clone())),
        Any::Array(values) => Some(AnyCase::Array(ArrayValue {
            values: values.iter().map(any_proto).collect(),
        })),
        Any::Map(pairs) => Some(AnyCase::Map(KeyValueList {
            values: pairs_proto(pairs),
        })),
    };
    AnyValue { value: case }
}

fn pairs_proto(pairs: &[(String, Any)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(any_proto(value)),
        })
        .collect()
}

fn to_protobuf(model: &[ResourceModel]) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: model
            .iter()
            .map(|r| ResourceLogs {
                resource: Some(Resource {
                    attributes: pairs_proto(&r.attributes),
                }),
                schema_url: r.schema_url.clone(),
                scope_logs: r
                    .scopes
                    .iter()
                    .map(|s| ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: s.name.clone(),
                            version: s.version.clone(),
                            attributes: pairs_proto(&s.attributes),
                        }),
                        log_records: s
                            .records
                            .iter()
                            .map(|l| LogRecord {
                                time_unix_nano: l.time,
                                observed_time_unix_nano: l.observed,
                                severity_number: l.severity,
                                severity_text: l.severity_text.clone(),
                                body: l.body.as_ref().map(any_proto),
                                attributes: pairs_proto(&l.attributes),
                                flags: l.flags,
                                trace_id: l.trace_id.clone(),
                                span_id: l.span_id.clone(),
                                event_name: l.event_name.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
    .encode_to_vec()
}

fn hex(bytes: &[u8]) -> String {
    // Upper case: OTLP/JSON ids are case-insensitive.
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    // Unpadded: the decoder takes both.
    out
}

fn any_json(value: &Any) -> Value {
    match value {
        Any::Empty => json!({}),
        Any::Str(s) => json!({"stringValue": s}),
        Any::Bool(b) => json!({"boolValue": b}),
        Any::Int(n) => json!({"intValue": n.to_string()}),
        Any::Double(x) if x.is_nan() => json!({"doubleValue": "NaN"}),
        Any::Double(x) if x.is_infinite() => {
            json!({"doubleValue": if *x > 0.0 { "Infinity" } else { "-Infinity" }})
        }
        Any::Double(x) => json!({"doubleValue": x}),
        Any::Bytes(b) => json!({"bytesValue": base64(b)}),
        Any::Array(values) => {
            json!({"arrayValue": {"values": values.iter().map(any_json).collect::<Vec<_>>()}})
        }
        Any::Map(pairs) => json!({"kvlistValue": {"values": pairs_json(pairs)}}),
    }
}

fn pairs_json(pairs: &[(String, Any)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(key, value)| json!({"key": key, "value": any_json(value)}))
        .collect()
}

fn to_json(model: &[ResourceModel]) -> Vec<u8> {
    let resource_logs: Vec<Value> = model
        .iter()
        .map(|r| {
            let scopes: Vec<Value> = r
                .scopes
                .iter()
                .map(|s| {
                    let records: Vec<Value> = s
                        .records
                        .iter()
                        .map(|l| {
                            let mut record = json!({
                                // int64 both ways: a string and a number.
                                "timeUnixNano": l.time.to_string(),
                                "observedTimeUnixNano": l.observed,
                                "severityNumber": l.severity,
                                "severityText": l.severity_text,
                                "attributes": pairs_json(&l.attributes),
                                "flags": l.flags,
                                "traceId": hex(&l.trace_id),
                                "spanId": hex(&l.span_id),
                                "eventName": l.event_name,
                            });
                            if let Some(body) = &l.body {
                                record["body"] = any_json(body);
                            }
                            record
                        })
                        .collect();
                    json!({
                        "scope": {"name": s.name, "version": s.version,
                                  "attributes": pairs_json(&s.attributes)},
                        "logRecords": records,
                    })
                })
                .collect();
            json!({
                "resource": {"attributes": pairs_json(&r.attributes)},
                "scopeLogs": scopes,
                "schemaUrl": r.schema_url,
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs })
        .to_string()
        .into_bytes()
}

fn record_count(model: &[ResourceModel]) -> usize {
    model
        .iter()
        .flat_map(|r| &r.scopes)
        .map(|s| s.records.len())
        .sum()
}

/// A byte-level mutation of a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutate(body: &mut Vec<u8>, mutations: &[Mutation]) {
    for mutation in mutations {
        let len = body.len();
        match *mutation {
            Mutation::Flip(at, bits) if len > 0 => body[at % len] ^= bits,
            Mutation::Insert(at, byte) => body.insert(at % (len + 1), byte),
            Mutation::Remove(at) if len > 0 => {
                body.remove(at % len);
            }
            Mutation::Truncate(at) => body.truncate(at % (len + 1)),
            _ => {}
        }
    }
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(
        prop_oneof![
            (any::<usize>(), 1u8..).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
            any::<usize>().prop_map(Mutation::Remove),
            any::<usize>().prop_map(Mutation::Truncate),
        ],
        1..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_either_decoder(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        decode_checked(PROTOBUF, &body);
        decode_checked(JSON, &body);
        decode_checked("text/plain", &body);
    }

    #[test]
    fn a_random_request_is_the_same_events_as_protobuf_and_as_json(model in model()) {
        let from_protobuf = decode_checked(PROTOBUF, &to_protobuf(&model));
        let from_json = decode_checked(JSON, &to_json(&model));
        let count = record_count(&model);
        if count > MAX_EVENTS {
            prop_assert!(from_protobuf.is_none() && from_json.is_none());
        } else {
            let (from_protobuf, from_json) = (from_protobuf.unwrap(), from_json.unwrap());
            prop_assert_eq!(from_protobuf.items.len(), count);
            prop_assert_eq!(
                String::from_utf8_lossy(&from_protobuf.ndjson),
                String::from_utf8_lossy(&from_json.ndjson)
            );
        }
    }

    #[test]
    fn mutated_protobuf_bodies_never_panic(model in model(), mutations in mutations()) {
        let mut body = to_protobuf(&model);
        mutate(&mut body, &mutations);
        decode_checked(PROTOBUF, &body);
    }

    #[test]
    fn mutated_protobuf_bodies_decode_as_prost_reads_them(
        model in model(),
        mutations in mutations(),
        twice in any::<bool>(),
    ) {
        // The in-place decoder against prost's reading of the same bytes:
        // refused exactly when prost refuses, else the events of prost's
        // messages re-encoded (merged fields resolved, unknown ones gone).
        let mut body = to_protobuf(&model);
        mutate(&mut body, &mutations);
        if twice {
            // Two requests back to back are one with both's resource_logs.
            body.extend_from_slice(&body.clone());
        }
        let direct = decode_checked(PROTOBUF, &body);
        match CrateRequest::decode(&body[..]) {
            Err(_) => prop_assert!(direct.is_none()),
            Ok(request) => {
                let canonical = decode_checked(PROTOBUF, &request.encode_to_vec());
                prop_assert_eq!(
                    direct.map(|t| String::from_utf8_lossy(&t.ndjson).into_owned()),
                    canonical.map(|t| String::from_utf8_lossy(&t.ndjson).into_owned())
                );
            }
        }
    }

    #[test]
    fn mutated_json_bodies_never_panic(model in model(), mutations in mutations()) {
        let mut body = to_json(&model);
        mutate(&mut body, &mutations);
        decode_checked(JSON, &body);
    }
}
