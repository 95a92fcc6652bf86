//! The reference events (`../shared/bench/batch100.json`) as the OTLP
//! request an OpenTelemetry SDK would send for them: one resource, one
//! scope, one record per event (the event's fields as attributes,
//! `message` as the body, trace and span ids as bytes). Shared by the
//! `shippers` bench and the `otlp_body` example (which writes the body
//! `loadtest/protocols.sh` posts).

use helios_shippers::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value as AnyKind,
};

/// A string `AnyValue`.
pub fn string(s: &str) -> Option<AnyValue> {
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
pub fn otlp_request(batch: &[u8]) -> ExportLogsServiceRequest {
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

/// The OTLP/JSON form of `request` (the mapping's lowerCamelCase names,
/// hex ids, int64 as strings), as the JavaScript exporter writes it.
pub fn otlp_json(request: &ExportLogsServiceRequest) -> Vec<u8> {
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
