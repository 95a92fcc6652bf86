//! OTLP/HTTP logs as a specification: request bodies (built with the
//! message types, hand-written OTLP/JSON, and bodies captured from the
//! OpenTelemetry exporters) → the exact event lines and answers.

use prost::Message as _;
use serde_json::{json, Value as Json};

use super::proto::*;
use super::*;
use crate::{Echo, Endpoint, ItemRefusal, TypeRules};

const APP: &str = "billing";

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events: 1_000,
    }
}

fn request(content_type: &str) -> Request<'_> {
    Request {
        endpoint: Endpoint::OtlpLogs,
        path: "/v1/logs",
        query: "",
        content_type,
        app: APP,
        recv_ms: 1_765_108_900_000,
    }
}

fn translate_with(
    content_type: &str,
    body: &[u8],
    settings: &Settings,
) -> Result<Translation, Failure> {
    let mut out = Translation::default();
    crate::decode(&request(content_type), body, settings, &mut out)?;
    Ok(out)
}

fn translate(content_type: &str, body: &[u8]) -> Result<Translation, Failure> {
    translate_with(content_type, body, &settings())
}

fn protobuf(request: &ExportLogsServiceRequest) -> Translation {
    translate(PROTOBUF, &request.encode_to_vec()).unwrap()
}

fn json_body(body: &Json) -> Translation {
    translate(JSON, body.to_string().as_bytes()).unwrap()
}

/// The event lines as text, each checked to end in `\n`.
fn lines(translation: &Translation) -> Vec<&str> {
    let text = std::str::from_utf8(&translation.ndjson).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines().collect()
}

fn events(translation: &Translation) -> Vec<Json> {
    lines(translation)
        .into_iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

fn text(s: &str) -> AnyValue {
    any(Value::String(s.into()))
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
    }
}

fn kvlist(pairs: Vec<KeyValue>) -> AnyValue {
    any(Value::Kvlist(KeyValueList { values: pairs }))
}

/// One resource, one scope, these records.
fn one_scope(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn record(body: &str) -> LogRecord {
    LogRecord {
        body: Some(text(body)),
        ..Default::default()
    }
}

/// Every field of the mapping set, as an exporter would send it.
fn full_request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", text("checkout"))],
                dropped_attributes_count: 2,
                entity_refs: vec![EntityRef {
                    schema_url: String::new(),
                    r#type: "service".into(),
                    id_keys: vec!["service.name".into()],
                    description_keys: vec![],
                }],
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "shop.orders".into(),
                    version: "1.2.0".into(),
                    attributes: vec![kv("lib", text("x"))],
                    dropped_attributes_count: 0,
                }),
                log_records: vec![LogRecord {
                    time_unix_nano: 1_765_108_800_123_456_789,
                    observed_time_unix_nano: 1_765_108_800_200_000_000,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(text("payment failed")),
                    attributes: vec![
                        kv("order.id", any(Value::Int(42))),
                        kv("retry", any(Value::Bool(true))),
                    ],
                    dropped_attributes_count: 1,
                    flags: 1,
                    trace_id: vec![
                        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33,
                        0x81, 0x3f, 0xc6, 0x0c,
                    ],
                    span_id: vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74],
                    event_name: "order.failed".into(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.29.0".into(),
        }],
    }
}

const FULL_EVENT: &str = concat!(
    r#"{"type":"order.failed","ts":1765108800123,"#,
    r#""time_unix_nano":"1765108800123456789","observed_time_unix_nano":"1765108800200000000","#,
    r#""severity_number":17,"priority":"high","severity_text":"ERROR","body":"payment failed","#,
    r#""attributes":{"order.id":42,"retry":true},"dropped_attributes_count":1,"flags":1,"#,
    r#""trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","#,
    r#""event_name":"order.failed","resource":{"service.name":"checkout"},"#,
    r#""resource_dropped_attributes_count":2,"#,
    r#""resource_entity_refs":[{"type":"service","id_keys":["service.name"]}],"#,
    r#""resource_schema_url":"https://opentelemetry.io/schemas/1.29.0","#,
    r#""scope":{"name":"shop.orders","version":"1.2.0","attributes":{"lib":"x"}},"#,
    r#""scope_schema_url":"https://opentelemetry.io/schemas/1.30.0"}"#
);

/// `full_request` in OTLP/JSON, as the JS exporter writes it (int64 as
/// strings, ids in hex).
fn full_request_json() -> Json {
    json!({"resourceLogs": [{
        "resource": {
            "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}],
            "droppedAttributesCount": 2,
            "entityRefs": [{"type": "service", "idKeys": ["service.name"]}]
        },
        "scopeLogs": [{
            "scope": {"name": "shop.orders", "version": "1.2.0",
                      "attributes": [{"key": "lib", "value": {"stringValue": "x"}}]},
            "logRecords": [{
                "timeUnixNano": "1765108800123456789",
                "observedTimeUnixNano": "1765108800200000000",
                "severityNumber": 17,
                "severityText": "ERROR",
                "body": {"stringValue": "payment failed"},
                "attributes": [
                    {"key": "order.id", "value": {"intValue": "42"}},
                    {"key": "retry", "value": {"boolValue": true}}
                ],
                "droppedAttributesCount": 1,
                "flags": 1,
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "eee19b7ec3c1b174",
                "eventName": "order.failed"
            }],
            "schemaUrl": "https://opentelemetry.io/schemas/1.30.0"
        }],
        "schemaUrl": "https://opentelemetry.io/schemas/1.29.0"
    }]})
}

// ---- events ----

#[test]
fn a_protobuf_record_becomes_one_event_with_every_field_mapped() {
    let translation = protobuf(&full_request());
    assert_eq!(lines(&translation), [FULL_EVENT]);
    assert_eq!(translation.items.len(), 1);
    assert_eq!(translation.items[0].line, Ok(0));
    assert_eq!(translation.items[0].echo, Echo::None);
}

#[test]
fn an_otlp_json_body_yields_the_same_event_as_protobuf() {
    assert_eq!(lines(&json_body(&full_request_json())), [FULL_EVENT]);
}

#[test]
fn otlp_json_takes_the_protos_snake_case_names_too() {
    let body = json!({"resource_logs": [{"scope_logs": [{"log_records": [{
        "time_unix_nano": "1000000", "severity_text": "INFO",
        "body": {"string_value": "hi"}, "trace_id": "00000000000000000000000000000001"
    }]}]}]});
    assert_eq!(
        lines(&json_body(&body)),
        [concat!(
            r#"{"type":"otel.log","ts":1,"time_unix_nano":"1000000","severity_text":"INFO","#,
            r#""body":"hi","trace_id":"00000000000000000000000000000001"}"#
        )]
    );
}

#[test]
fn otlp_json_ignores_unknown_members_and_null_means_unset() {
    let body = json!({"resourceLogs": [{"resource": null, "futureField": {"a": [1]},
        "scopeLogs": [{"scope": null, "logRecords": [{"body": {"stringValue": "x"},
            "attributes": null, "severityText": null, "observedTimeUnixNano": null,
            "somethingNew": 7}]}]}]});
    assert_eq!(
        lines(&json_body(&body)),
        [r#"{"type":"otel.log","body":"x"}"#]
    );
}

#[test]
fn protobuf_skips_unknown_fields() {
    let mut body = one_scope(vec![], vec![record("x")]).encode_to_vec();
    // Field 15 (unknown), wire type 2, 3 bytes: appended at the top level.
    body.extend_from_slice(&[15 << 3 | 2, 3, b'a', b'b', b'c']);
    let translation = translate(PROTOBUF, &body).unwrap();
    assert_eq!(lines(&translation), [r#"{"type":"otel.log","body":"x"}"#]);
}

#[test]
fn ts_is_the_event_time_else_the_observed_time_else_absent() {
    let both = LogRecord {
        time_unix_nano: 2_000_000,
        observed_time_unix_nano: 3_000_000,
        ..Default::default()
    };
    let observed_only = LogRecord {
        observed_time_unix_nano: 3_999_999,
        ..Default::default()
    };
    let neither = LogRecord::default();
    let translation = protobuf(&one_scope(vec![], vec![both, observed_only, neither]));
    let events = events(&translation);
    assert_eq!(events[0]["ts"], 2);
    assert_eq!(events[1]["ts"], 3);
    assert_eq!(events[1]["observed_time_unix_nano"], "3999999");
    assert!(events[1].get("time_unix_nano").is_none());
    assert_eq!(lines(&translation)[2], r#"{"type":"otel.log"}"#);
}

#[test]
fn nanosecond_times_past_2_pow_53_are_kept_exactly() {
    let record = LogRecord {
        time_unix_nano: u64::MAX,
        ..Default::default()
    };
    let translation = protobuf(&one_scope(vec![], vec![record]));
    assert_eq!(
        lines(&translation),
        [r#"{"type":"otel.log","ts":18446744073709,"time_unix_nano":"18446744073709551615"}"#]
    );
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1765108800999999999"}]}]}]});
    assert_eq!(events(&json_body(&body))[0]["ts"], 1_765_108_800_999_i64);
}

#[test]
fn any_values_map_to_json_values() {
    let body = kvlist(vec![
        kv("s", text("é\"\n")),
        kv("t", any(Value::Bool(false))),
        kv("max", any(Value::Int(i64::MAX))),
        kv("min", any(Value::Int(i64::MIN))),
        kv("d", any(Value::Double(0.5))),
        kv("whole", any(Value::Double(3.0))),
        kv("nan", any(Value::Double(f64::NAN))),
        kv("inf", any(Value::Double(f64::INFINITY))),
        kv("-inf", any(Value::Double(f64::NEG_INFINITY))),
        kv("bytes", any(Value::Bytes(vec![0xfb, 0xff]))),
        kv(
            "array",
            any(Value::Array(ArrayValue {
                values: vec![text("a"), any(Value::Int(1)), AnyValue::default()],
            })),
        ),
        kv("map", kvlist(vec![kv("inner", kvlist(vec![]))])),
        kv("empty", AnyValue::default()),
        KeyValue {
            key: "absent".into(),
            value: None,
        },
        kv("profiling", any(Value::StringIndex(3))),
    ]);
    let translation = protobuf(&one_scope(
        vec![],
        vec![LogRecord {
            body: Some(body),
            ..Default::default()
        }],
    ));
    assert_eq!(
        lines(&translation),
        [concat!(
            r#"{"type":"otel.log","body":{"s":"é\"\n","t":false,"#,
            r#""max":9223372036854775807,"min":-9223372036854775808,"d":0.5,"whole":3.0,"#,
            r#""nan":"NaN","inf":"Infinity","-inf":"-Infinity","bytes":"+/8=","#,
            r#""array":["a",1,null],"map":{"inner":{}},"empty":null,"absent":null,"#,
            r#""profiling":null}}"#
        )]
    );
}

#[test]
fn otlp_json_values_map_like_protobuf_values() {
    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"kvlistValue":
    {"values": [
        {"key": "i", "value": {"intValue": "-9223372036854775808"}},
        {"key": "n", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": "NaN"}},
        {"key": "b", "value": {"bytesValue": "-_8"}},
        {"key": "a", "value": {"arrayValue": {"values": [{"doubleValue": 1.5}, {}]}}}
    ]}}}]}]}]});
    assert_eq!(
        lines(&json_body(&body)),
        [concat!(
            r#"{"type":"otel.log","body":{"i":-9223372036854775808,"n":7,"d":"NaN","#,
            r#""b":"+/8=","a":[1.5,null]}}"#
        )]
    );
}

#[test]
fn an_empty_or_profiling_only_body_is_left_out() {
    let records = vec![
        LogRecord {
            body: Some(AnyValue::default()),
            ..Default::default()
        },
        LogRecord {
            body: Some(any(Value::StringIndex(1))),
            ..Default::default()
        },
    ];
    let translation = protobuf(&one_scope(vec![], records));
    assert_eq!(
        lines(&translation),
        [r#"{"type":"otel.log"}"#, r#"{"type":"otel.log"}"#]
    );
}

#[test]
fn a_repeated_key_keeps_its_last_value_in_small_and_large_maps() {
    let small = vec![kv("a", text("1")), kv("b", text("2")), kv("a", text("3"))];
    let mut large: Vec<KeyValue> = (0..40)
        .map(|i| kv(&format!("k{}", i % 20), any(Value::Int(i))))
        .collect();
    large.push(kv("k0", text("last")));
    let records = vec![
        LogRecord {
            attributes: small,
            ..Default::default()
        },
        LogRecord {
            body: Some(kvlist(large)),
            ..Default::default()
        },
    ];
    let translation = protobuf(&one_scope(vec![], records));
    assert_eq!(
        lines(&translation)[0],
        r#"{"type":"otel.log","attributes":{"b":"2","a":"3"}}"#
    );
    let body = &events(&translation)[1]["body"];
    let members = body.as_object().unwrap();
    assert_eq!(members.len(), 20);
    assert_eq!(body["k0"], "last");
    assert_eq!(body["k1"], 21);
    assert_eq!(body["k19"], 39);
    // No duplicate member names in the text either.
    assert_eq!(lines(&translation)[1].matches("\"k0\"").count(), 1);
}

#[test]
fn records_are_numbered_in_request_order_across_resources_and_scopes() {
    let mut request = one_scope(vec![], vec![record("a"), record("b")]);
    request.resource_logs[0].scope_logs.push(ScopeLogs {
        log_records: vec![record("c")],
        ..Default::default()
    });
    request.resource_logs.push(
        one_scope(vec![kv("host.name", text("h2"))], vec![record("d")]).resource_logs[0].clone(),
    );
    let translation = protobuf(&request);
    let bodies: Vec<Json> = events(&translation)
        .iter()
        .map(|e| e["body"].clone())
        .collect();
    assert_eq!(bodies, ["a", "b", "c", "d"]);
    let lines: Vec<_> = translation.items.iter().map(|i| i.line.clone()).collect();
    assert_eq!(lines, [Ok(0), Ok(1), Ok(2), Ok(3)]);
    assert_eq!(
        events(&translation)[3]["resource"],
        json!({"host.name": "h2"})
    );
    assert!(events(&translation)[0].get("resource").is_none());
}

#[test]
fn an_empty_scope_and_an_empty_resource_are_left_out() {
    let mut request = one_scope(vec![], vec![record("x")]);
    request.resource_logs[0].scope_logs[0].scope = Some(InstrumentationScope::default());
    assert_eq!(
        lines(&protobuf(&request)),
        [r#"{"type":"otel.log","body":"x"}"#]
    );
}

// ---- type ----

#[test]
fn the_default_type_is_the_event_name_then_the_event_name_attribute_then_otel_log() {
    let named = LogRecord {
        event_name: "user.login".into(),
        attributes: vec![kv("event.name", text("ignored"))],
        ..Default::default()
    };
    let attribute = LogRecord {
        attributes: vec![kv("event.name", text("browser.click"))],
        ..Default::default()
    };
    let translation = protobuf(&one_scope(vec![], vec![named, attribute, record("plain")]));
    let types: Vec<Json> = events(&translation)
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(types, ["user.login", "browser.click", "otel.log"]);
}

fn typed(rule: &str, request: &ExportLogsServiceRequest) -> Vec<Json> {
    let mut settings = settings();
    settings.types.otlp = TypeRule::parse(rule).unwrap();
    let translation = translate_with(PROTOBUF, &request.encode_to_vec(), &settings).unwrap();
    events(&translation)
        .iter()
        .map(|e| e["type"].clone())
        .collect()
}

#[test]
fn a_type_rule_resolves_resource_scope_and_record_fields() {
    let request = full_request();
    assert_eq!(typed("$resource.service.name|x", &request), ["checkout"]);
    assert_eq!(typed("$scope.name|x", &request), ["shop.orders"]);
    assert_eq!(typed("$scope.attributes.lib|x", &request), ["x"]);
    assert_eq!(typed("$severity_text|x", &request), ["ERROR"]);
    assert_eq!(typed("$severity_number|x", &request), ["17"]);
    assert_eq!(typed("$attributes.order.id|x", &request), ["42"]);
    assert_eq!(typed("$attributes.retry|x", &request), ["true"]);
    assert_eq!(typed("$body|x", &request), ["payment failed"]);
    assert_eq!(typed("$span_id|x", &request), ["eee19b7ec3c1b174"]);
    assert_eq!(
        typed("$resource_schema_url|x", &request),
        ["https://opentelemetry.io/schemas/1.29.0"]
    );
    assert_eq!(
        typed("$attributes.nothing|$scope.nothing|fallback", &request),
        ["fallback"]
    );
}

#[test]
fn a_type_rule_matches_dotted_keys_greedily_and_enters_kvlists() {
    let record = LogRecord {
        body: Some(kvlist(vec![kv("kind", text("audit"))])),
        attributes: vec![
            kv("http", kvlist(vec![kv("route", text("/nested"))])),
            kv("http.route", text("/dotted")),
            kv("a", kvlist(vec![kv("b.c", text("mixed"))])),
            kv("list", any(Value::Array(ArrayValue::default()))),
            kv("ratio", any(Value::Double(2.0))),
        ],
        ..Default::default()
    };
    let request = one_scope(vec![], vec![record]);
    assert_eq!(typed("$attributes.http.route|x", &request), ["/dotted"]);
    assert_eq!(typed("$attributes.a.b.c|x", &request), ["mixed"]);
    assert_eq!(typed("$body.kind|x", &request), ["audit"]);
    assert_eq!(typed("$attributes.list|x", &request), ["x"]);
    assert_eq!(typed("$attributes.ratio|x", &request), ["2.0"]);
    assert_eq!(typed("$attributes|x", &request), ["x"]);
}

// ---- ids ----

#[test]
fn a_log_record_uid_becomes_a_deterministic_id_scoped_by_app() {
    let request = one_scope(
        vec![],
        vec![LogRecord {
            attributes: vec![kv("log.record.uid", text("01JF8Z4Q3V7T1J3K5M7N9P1R3S"))],
            ..Default::default()
        }],
    );
    let event = &events(&protobuf(&request))[0];
    let expected = crate::derived_id(APP, crate::Protocol::Otlp, &["01JF8Z4Q3V7T1J3K5M7N9P1R3S"]);
    assert_eq!(event["_id"], expected.as_str());
    assert_eq!(
        event["attributes"]["log.record.uid"],
        "01JF8Z4Q3V7T1J3K5M7N9P1R3S"
    );
    // The same record from another app gets another id.
    let mut other = Translation::default();
    let req = Request {
        app: "web",
        ..request_for_protobuf()
    };
    crate::decode(&req, &request.encode_to_vec(), &settings(), &mut other).unwrap();
    assert_ne!(events(&other)[0]["_id"], event["_id"]);
}

fn request_for_protobuf() -> Request<'static> {
    request(PROTOBUF)
}

#[test]
fn a_record_without_uid_gets_no_id_from_the_decoder() {
    let request = one_scope(
        vec![],
        vec![LogRecord {
            attributes: vec![kv("log.record.uid", text(""))],
            ..Default::default()
        }],
    );
    assert!(events(&protobuf(&request))[0].get("_id").is_none());
    assert!(events(&protobuf(&full_request()))[0].get("_id").is_none());
}

// ---- refusals ----

#[test]
fn an_empty_request_is_a_success_without_events() {
    for (content_type, body) in [
        (PROTOBUF, &b""[..]),
        (JSON, b"{}"),
        (JSON, b"{\"resourceLogs\":[]}"),
    ] {
        let translation = translate(content_type, body).unwrap();
        assert!(translation.ndjson.is_empty());
        assert!(translation.items.is_empty());
    }
}

#[test]
fn a_body_that_is_not_protobuf_is_malformed() {
    // Field 1 (resource_logs), length 10, then 2 bytes.
    let failure = translate(PROTOBUF, &[0x0a, 10, 1, 2]).unwrap_err();
    assert!(
        matches!(&failure, Failure::Malformed(m) if m.contains("ExportLogsServiceRequest")),
        "{failure:?}"
    );
}

#[test]
fn a_protobuf_string_that_is_not_utf8_is_malformed() {
    let mut request = one_scope(vec![], vec![record("MARK")]);
    request.resource_logs[0].schema_url = "x".into();
    let mut body = request.encode_to_vec();
    let at = body.windows(4).position(|w| w == b"MARK").unwrap();
    body[at] = 0xff;
    assert!(matches!(
        translate(PROTOBUF, &body),
        Err(Failure::Malformed(_))
    ));
}

#[test]
fn a_body_that_is_not_otlp_json_is_malformed() {
    for bad in [
        &b""[..],
        b"[]",
        b"{\"resourceLogs\":{}}",
        b"{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"traceId\":\"zz\"}]}]}]}",
        b"{\"resourceLogs\":[]} trailing",
        b"{\"resourceLogs\":[],\"resource_logs\":[]}",
    ] {
        assert!(
            matches!(translate(JSON, bad), Err(Failure::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn nesting_past_the_decoders_limits_is_malformed_not_a_crash() {
    let mut value = text("deep");
    for _ in 0..200 {
        value = any(Value::Array(ArrayValue {
            values: vec![value],
        }));
    }
    let request = one_scope(
        vec![],
        vec![LogRecord {
            body: Some(value),
            ..Default::default()
        }],
    );
    assert!(matches!(
        translate(PROTOBUF, &request.encode_to_vec()),
        Err(Failure::Malformed(_))
    ));
    let mut json_value = String::from("{\"stringValue\":\"deep\"}");
    for _ in 0..200 {
        json_value = format!("{{\"arrayValue\":{{\"values\":[{json_value}]}}}}");
    }
    let body = format!(
        "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{{\"body\":{json_value}}}]}}]}}]}}"
    );
    assert!(matches!(
        translate(JSON, body.as_bytes()),
        Err(Failure::Malformed(_))
    ));
}

#[test]
fn a_content_type_other_than_protobuf_or_json_is_unsupported() {
    for content_type in [
        "",
        "text/plain",
        "application/x-ndjson",
        "application/protobuf",
    ] {
        assert!(
            matches!(
                translate(content_type, b"{}"),
                Err(Failure::UnsupportedMediaType(_))
            ),
            "{content_type}"
        );
    }
    assert!(translate("Application/JSON; charset=utf-8", b"{}").is_ok());
}

#[test]
fn more_records_than_max_events_is_refused_whole() {
    let request = one_scope(vec![], vec![record("a"), record("b"), record("c")]);
    let mut settings = settings();
    settings.max_events = 2;
    assert_eq!(
        translate_with(PROTOBUF, &request.encode_to_vec(), &settings).unwrap_err(),
        Failure::TooManyEvents
    );
    settings.max_events = 3;
    assert!(translate_with(PROTOBUF, &request.encode_to_vec(), &settings).is_ok());
}

#[test]
fn a_resource_copied_into_many_records_cannot_grow_past_max_decoded_bytes() {
    let big = "r".repeat(10_000);
    let request = one_scope(
        vec![kv("big", text(&big))],
        (0..100).map(|_| LogRecord::default()).collect(),
    );
    let body = request.encode_to_vec();
    assert!(body.len() < 11_000);
    let mut settings = settings();
    settings.max_decoded_bytes = 500_000;
    assert!(matches!(
        translate_with(PROTOBUF, &body, &settings),
        Err(Failure::TooLarge(m)) if m.contains("max_decoded_bytes")
    ));
    settings.max_decoded_bytes = 2_000_000;
    assert!(translate_with(PROTOBUF, &body, &settings).is_ok());
}

// ---- answers ----

fn success(
    content_type: &str,
    translation: &Translation,
    rejected: &[LineReject<'_>],
) -> (Answer, Vec<u8>) {
    let mut out = Vec::new();
    let answer = crate::render_success(&request(content_type), translation, rejected, 3, &mut out);
    (answer, out)
}

#[test]
fn success_is_an_empty_protobuf_response_for_a_protobuf_request() {
    let translation = protobuf(&full_request());
    let (answer, body) = success(PROTOBUF, &translation, &[]);
    assert_eq!(
        answer,
        Answer {
            status: 200,
            content_type: "application/x-protobuf",
            headers: "",
            retry_after: false
        }
    );
    assert!(body.is_empty());
}

#[test]
fn success_is_an_empty_json_object_for_a_json_request() {
    let translation = json_body(&full_request_json());
    let (answer, body) = success("application/json; charset=utf-8", &translation, &[]);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(body, b"{}");
}

#[test]
fn refused_lines_are_a_partial_success_naming_the_records() {
    let translation = protobuf(&one_scope(
        vec![],
        vec![record("a"), record("b"), record("c")],
    ));
    let rejected = [
        LineReject {
            line: 0,
            error: "nested deeper than max_json_depth",
        },
        LineReject {
            line: 2,
            error: "ts out of range",
        },
    ];
    let (answer, body) = success(JSON, &translation, &rejected);
    assert_eq!(answer.status, 200);
    assert_eq!(
        serde_json::from_slice::<Json>(&body).unwrap(),
        json!({"partialSuccess": {
            "rejectedLogRecords": "2",
            "errorMessage": "2 of 3 log records rejected: record 0: nested deeper than \
                             max_json_depth; record 2: ts out of range"
        }})
    );
    let (answer, body) = success(PROTOBUF, &translation, &rejected);
    assert_eq!(answer.content_type, PROTOBUF);
    let response = ExportLogsServiceResponse::decode(&body[..]).unwrap();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_log_records, 2);
    assert!(partial
        .error_message
        .starts_with("2 of 3 log records rejected: record 0: "));
}

#[test]
fn records_refused_by_the_decoder_count_and_are_named_in_order() {
    let mut translation = protobuf(&one_scope(vec![], vec![record("a"), record("b")]));
    // A refused item between the two lines (as a decoder may produce).
    translation.items.insert(
        1,
        Item {
            line: Err(ItemRefusal {
                status: 400,
                kind: "invalid",
                reason: "refused by the decoder".into(),
            }),
            echo: Echo::None,
        },
    );
    let rejected = [LineReject {
        line: 1,
        error: "bad line",
    }];
    let (_, body) = success(JSON, &translation, &rejected);
    let answer: Json = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedLogRecords"], "2");
    assert_eq!(
        answer["partialSuccess"]["errorMessage"],
        "2 of 3 log records rejected: record 1: refused by the decoder; record 2: bad line"
    );
}

#[test]
fn a_partial_success_names_the_first_few_records_and_counts_the_rest() {
    let translation = protobuf(&one_scope(vec![], (0..10).map(|_| record("x")).collect()));
    let long = "é".repeat(300);
    let rejected: Vec<LineReject<'_>> = (0..10)
        .map(|line| LineReject { line, error: &long })
        .collect();
    let (_, body) = success(JSON, &translation, &rejected);
    let answer: Json = serde_json::from_slice(&body).unwrap();
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert_eq!(message.matches("record ").count(), REASONS_REPORTED_MAX);
    assert!(message.ends_with("; and 5 more"), "{message}");
    assert!(message.len() < REASONS_REPORTED_MAX * (REASON_BYTES_MAX + 20) + 100);
}

fn failure(content_type: &str, failure: &Failure) -> (Answer, Vec<u8>) {
    let mut out = Vec::new();
    let answer = crate::render_failure(&request(content_type), failure, &mut out);
    (answer, out)
}

#[test]
fn every_failure_is_a_status_message_with_its_http_status_and_grpc_code() {
    let cases = [
        (Failure::MissingKey, 401, 16),
        (Failure::UnknownKey, 401, 16),
        (Failure::Forbidden("relay key".into()), 403, 7),
        (Failure::Malformed("bad".into()), 400, 3),
        (Failure::NoData, 400, 3),
        (Failure::EventRequired { index: 0 }, 400, 3),
        (Failure::EventBlank { index: 0 }, 400, 3),
        (Failure::TooLarge("body".into()), 413, 8),
        (Failure::TooManyEvents, 413, 8),
        (Failure::UnsupportedMediaType("text/plain".into()), 415, 12),
        (Failure::BadEncoding("not gzip".into()), 415, 3),
        (Failure::Busy("journal full".into()), 503, 14),
        (Failure::NotFound, 404, 5),
        (Failure::MethodNotAllowed, 405, 12),
        (Failure::Internal("defect".into()), 500, 13),
    ];
    for (refusal, status, code) in cases {
        let (answer, body) = failure(JSON, &refusal);
        assert_eq!(answer.status, status, "{refusal:?}");
        assert_eq!(answer.content_type, JSON);
        assert_eq!(answer.headers, "");
        assert_eq!(answer.retry_after, status == 503, "{refusal:?}");
        assert_eq!(
            serde_json::from_slice::<Json>(&body).unwrap(),
            json!({"code": code, "message": refusal.to_string()})
        );
        let (answer, body) = failure(PROTOBUF, &refusal);
        assert_eq!(answer.status, status);
        assert_eq!(answer.content_type, PROTOBUF);
        let decoded = Status::decode(&body[..]).unwrap();
        assert_eq!(decoded.code, code);
        assert_eq!(decoded.message, refusal.to_string());
    }
}

#[test]
fn a_failure_to_a_content_type_that_cannot_be_told_is_answered_in_json() {
    let (answer, body) = failure(
        "text/plain",
        &Failure::UnsupportedMediaType("\"text/plain\"".into()),
    );
    assert_eq!(answer.status, 415);
    assert_eq!(answer.content_type, JSON);
    assert_eq!(serde_json::from_slice::<Json>(&body).unwrap()["code"], 12);
}

#[test]
fn a_long_failure_message_is_cut_at_a_character_boundary() {
    let (_, body) = failure(JSON, &Failure::Malformed("é".repeat(2_000)));
    let message = serde_json::from_slice::<Json>(&body).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.len() <= STATUS_MESSAGE_BYTES_MAX);
    assert!(message.starts_with("malformed request: é"));
}

// ---- bodies captured from the exporters (testdata/) ----

/// `ExportLogsServiceRequest` from the OpenTelemetry Python SDK 1.45.2's
/// OTLP/HTTP exporter (gzip removed): a record in a span with attributes,
/// and an event with a map body holding bytes and a `log.record.uid`.
const PYTHON_SDK_BODY: &[u8] = include_bytes!("testdata/python_sdk_1.45.2.binpb");
/// The same from the JS exporter 0.223.1 (OTLP/JSON, gzip removed).
const JS_EXPORTER_BODY: &[u8] = include_bytes!("testdata/js_exporter_0.223.1.json");

#[test]
fn a_captured_python_sdk_body_translates_to_these_events() {
    let translation = translate(PROTOBUF, PYTHON_SDK_BODY).unwrap();
    let id = crate::derived_id(APP, crate::Protocol::Otlp, &["uid-1"]);
    assert_eq!(
        lines(&translation),
        [
            concat!(
                r#"{"type":"otel.log","ts":1765108800123,"time_unix_nano":"1765108800123456789","#,
                r#""observed_time_unix_nano":"1765108800200000000","severity_number":13,"#,
                r#""priority":"normal","severity_text":"WARN","body":"order 7 placed","#,
                r#""attributes":{"order_id":7,"amount":10.5,"tags":["a","b"]},"flags":1,"#,
                r#""trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","#,
                r#""resource":{"service.name":"checkout","telemetry.sdk.language":"python"},"#,
                r#""scope":{"name":"shop.orders","version":"1.4.0"}}"#
            )
            .to_owned(),
            format!(
                concat!(
                    r#"{{"type":"payment.refunded","ts":1765108801000,"_id":"{}","#,
                    r#""observed_time_unix_nano":"1765108801000000000","severity_number":17,"#,
                    r#""priority":"high","severity_text":"ERROR","body":{{"kind":"refund","raw":"AP8="}},"#,
                    r#""attributes":{{"log.record.uid":"uid-1"}},"event_name":"payment.refunded","#,
                    r#""resource":{{"service.name":"checkout","telemetry.sdk.language":"python"}},"#,
                    r#""scope":{{"name":"shop.orders","version":"1.4.0"}}}}"#
                ),
                id
            ),
        ]
    );
}

#[test]
fn a_captured_js_exporter_body_translates_to_these_events() {
    let translation = translate(JSON, JS_EXPORTER_BODY).unwrap();
    let event = |i: u32, observed: &str, severity: (u32, &str), event_name: &str| {
        format!(
            concat!(
                r#"{{"type":"{type}","ts":176510880{i}123,"time_unix_nano":"176510880{i}123456789","#,
                r#""observed_time_unix_nano":"{observed}","severity_number":{n},"#,
                r#""priority":"normal","severity_text":"{text}","body":"js record {i} capture","#,
                r#""attributes":{{"run":"capture","i":{i},"http.route":"/orders","ratio":0.25,"#,
                r#""tags":["a","b"]}},"flags":1,"#,
                r#""trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","#,
                r#"{event_name}"resource":{{"service.name":"js-shop","deployment.environment":"test"}},"#,
                r#""scope":{{"name":"helios.js","version":"2.0.0"}}}}"#
            ),
            type = if event_name.is_empty() { "otel.log" } else { event_name },
            i = i,
            observed = observed,
            n = severity.0,
            text = severity.1,
            event_name = if event_name.is_empty() {
                String::new()
            } else {
                format!(r#""event_name":"{event_name}","#)
            },
        )
    };
    assert_eq!(
        lines(&translation),
        [
            event(0, "1796643074447000000", (9, "INFO"), "js.first"),
            event(1, "1796643074448000000", (13, "WARN"), ""),
        ]
    );
}

#[test]
fn severity_numbers_map_to_priorities_by_the_syslog_rule() {
    use super::event::priority;
    let names: Vec<Option<&str>> = (0..=25).map(priority).collect();
    assert_eq!(names[0], None, "unspecified: no priority member");
    assert!(names[1..=4].iter().all(|p| *p == Some("low")), "TRACE");
    assert!(
        names[5..=16].iter().all(|p| *p == Some("normal")),
        "DEBUG..WARN"
    );
    assert!(
        names[17..=24].iter().all(|p| *p == Some("high")),
        "ERROR, FATAL"
    );
    assert_eq!(names[25], None);
    assert_eq!(priority(-1), None);
    assert_eq!(priority(i32::MAX), None);
}
