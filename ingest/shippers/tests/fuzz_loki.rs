//! Property tests of the Loki push decoder: arbitrary and mutated bodies
//! never panic it, every translation it makes is valid Helios NDJSON, and
//! generated pushes (JSON and snappy protobuf) come back exactly: labels,
//! lines, metadata and nanosecond times.

use helios_shippers::{decode, Endpoint, Failure, Request, Settings, Translation, TypeRules};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events: 10_000,
    }
}

fn run(content_type: &str, body: &[u8]) -> Result<Translation, Failure> {
    let req = Request {
        endpoint: Endpoint::LokiPush,
        path: "/loki/api/v1/push",
        query: "",
        content_type,
        app: "fuzz",
        recv_ms: 0,
    };
    let mut out = Translation::default();
    decode(&req, body, &settings(), &mut out).map(|()| out)
}

/// What the collector's validation relies on: one JSON object per line,
/// each with a non-empty string `type`, an integer `ts` if any, and none
/// of the fields a client may not send.
fn check_translation(out: &Translation) -> Vec<Map<String, Value>> {
    let text = std::str::from_utf8(&out.ndjson).expect("NDJSON is UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "lines end in \\n");
    let events: Vec<Map<String, Value>> = text
        .split_terminator('\n')
        .map(|line| {
            assert!(!line.is_empty(), "no empty lines");
            match serde_json::from_str::<Value>(line).expect("each line is JSON") {
                Value::Object(event) => event,
                other => panic!("not an object: {other}"),
            }
        })
        .collect();
    assert_eq!(events.len(), out.lines());
    for (number, item) in out
        .items
        .iter()
        .filter_map(|i| i.line.as_ref().ok())
        .enumerate()
    {
        assert_eq!(*item as usize, number, "lines are numbered in order from 0");
    }
    for event in &events {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .expect("string type");
        assert!(!kind.is_empty());
        for forbidden in ["recv", "app", "ts_raw", "_id"] {
            assert!(!event.contains_key(forbidden), "{forbidden} in {event:?}");
        }
        if let Some(ts) = event.get("ts") {
            assert!(ts.is_i64(), "ts is integer ms: {ts}");
            let ns = event["ts_ns"].as_str().expect("ts_ns with ts");
            let ms = if ns.len() > 6 {
                &ns[..ns.len() - 6]
            } else {
                "0"
            };
            assert_eq!(ts.to_string(), ms, "ts is ts_ns truncated to ms");
        }
    }
    events
}

// ---- A hand-rolled protobuf writer, so the test does not share the
// decoder's message definitions (field numbers from Loki's push.proto). ----

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn field_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    varint(out, u64::from(tag << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn field_varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    varint(out, u64::from(tag << 3));
    varint(out, value);
}

/// A label value quoted as Go's `strconv.Quote` would (enough of it).
fn go_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Debug, Clone)]
struct GenEntry {
    ns: u64,
    line: String,
    metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct GenStream {
    labels: Vec<(String, String)>,
    entries: Vec<GenEntry>,
}

fn protobuf_body(streams: &[GenStream]) -> Vec<u8> {
    let mut push = Vec::new();
    for stream in streams {
        let selector: Vec<String> = stream
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={}", go_quote(v)))
            .collect();
        let mut s = Vec::new();
        field_bytes(&mut s, 1, format!("{{{}}}", selector.join(", ")).as_bytes());
        for entry in &stream.entries {
            let mut e = Vec::new();
            let mut ts = Vec::new();
            field_varint(&mut ts, 1, entry.ns / 1_000_000_000);
            field_varint(&mut ts, 2, entry.ns % 1_000_000_000);
            field_bytes(&mut e, 1, &ts);
            field_bytes(&mut e, 2, entry.line.as_bytes());
            for (name, value) in &entry.metadata {
                let mut pair = Vec::new();
                field_bytes(&mut pair, 1, name.as_bytes());
                field_bytes(&mut pair, 2, value.as_bytes());
                field_bytes(&mut e, 3, &pair);
            }
            field_bytes(&mut s, 2, &e);
        }
        field_varint(&mut s, 3, 12345); // hash: skipped
        field_bytes(&mut push, 1, &s);
    }
    snap::raw::Encoder::new()
        .compress_vec(&push)
        .expect("snappy compresses")
}

fn json_body(streams: &[GenStream]) -> Vec<u8> {
    let streams: Vec<Value> = streams
        .iter()
        .map(|stream| {
            let labels: Map<String, Value> = stream
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let values: Vec<Value> = stream
                .entries
                .iter()
                .map(|entry| {
                    let mut value = vec![json!(entry.ns.to_string()), json!(entry.line)];
                    if !entry.metadata.is_empty() {
                        let metadata: Map<String, Value> = entry
                            .metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), json!(v)))
                            .collect();
                        value.push(Value::Object(metadata));
                    }
                    Value::Array(value)
                })
                .collect();
            json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&json!({ "streams": streams })).expect("serializes")
}

/// Distinct names (a map's keys must be) in a generated order.
fn names(pattern: &'static str, max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(pattern, 0..max).prop_flat_map(|set| {
        let names: Vec<String> = set.into_iter().collect();
        Just(names).prop_shuffle()
    })
}

/// Text that is often made of what needs escaping somewhere (JSON, Go
/// quoting, the selector's own punctuation), else anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![r#"[a-z "\\\n\t\x01\x7fé😀`{}=,]{0,12}"#, any::<String>(),]
}

fn pairs(pattern: &'static str, max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    names(pattern, max).prop_flat_map(|names| {
        let n = names.len();
        (Just(names), prop::collection::vec(text(), n))
            .prop_map(|(names, values)| names.into_iter().zip(values).collect())
    })
}

fn streams() -> impl Strategy<Value = Vec<GenStream>> {
    let entry = (any::<u64>(), text(), pairs("[a-z_][a-z0-9_.]{0,8}", 3))
        .prop_map(|(ns, line, metadata)| GenEntry { ns, line, metadata });
    let stream = (
        pairs("[A-Za-z_][A-Za-z0-9_]{0,8}", 4)
            .prop_filter("a stream has labels", |l| !l.is_empty()),
        prop::collection::vec(entry, 0..5),
    )
        .prop_map(|(labels, entries)| GenStream { labels, entries });
    prop::collection::vec(stream, 0..4)
}

/// The events a generated push must give, in order.
fn expected(streams: &[GenStream]) -> Vec<Value> {
    let mut events = Vec::new();
    for stream in streams {
        let labels: Map<String, Value> = stream
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let kind = ["job", "service_name"]
            .iter()
            .find_map(|name| {
                labels
                    .get(*name)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or("loki")
            .to_owned();
        for entry in &stream.entries {
            let mut event = json!({
                "type": kind,
                "ts": entry.ns / 1_000_000,
                "ts_ns": entry.ns.to_string(),
                "line": entry.line,
                "labels": labels,
            });
            if !entry.metadata.is_empty() {
                let metadata: Map<String, Value> = entry
                    .metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                event["metadata"] = Value::Object(metadata);
            }
            events.push(event);
        }
    }
    events
}

fn mutate(body: &mut Vec<u8>, edits: &[(usize, u8, u8)]) {
    for &(at, byte, op) in edits {
        if body.is_empty() {
            body.push(byte);
            continue;
        }
        let at = at % body.len();
        match op % 3 {
            0 => body[at] = byte,
            1 => body.insert(at, byte),
            _ => {
                body.remove(at);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512),
                                   content_type in prop::sample::select(vec![JSON, PROTOBUF, ""])) {
        if let Ok(out) = run(content_type, &body) {
            check_translation(&out);
        }
    }

    #[test]
    fn arbitrary_bytes_under_snappy_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let compressed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        if let Ok(out) = run(PROTOBUF, &compressed) {
            check_translation(&out);
        }
    }

    #[test]
    fn generated_json_pushes_come_back_exactly(streams in streams()) {
        let out = run(JSON, &json_body(&streams)).expect("a valid push decodes");
        let events: Vec<Value> = check_translation(&out).into_iter().map(Value::Object).collect();
        prop_assert_eq!(events, expected(&streams));
    }

    #[test]
    fn generated_protobuf_pushes_come_back_exactly(streams in streams()) {
        let out = run(PROTOBUF, &protobuf_body(&streams)).expect("a valid push decodes");
        let events: Vec<Value> = check_translation(&out).into_iter().map(Value::Object).collect();
        prop_assert_eq!(events, expected(&streams));
    }

    #[test]
    fn mutated_json_pushes_never_panic(streams in streams(),
                                       edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)) {
        let mut body = json_body(&streams);
        mutate(&mut body, &edits);
        if let Ok(out) = run(JSON, &body) {
            check_translation(&out);
        }
    }

    #[test]
    fn mutated_protobuf_pushes_never_panic(streams in streams(),
                                           edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
                                           before_snappy in any::<bool>()) {
        let mut body = protobuf_body(&streams);
        if before_snappy {
            // Damage the message, then compress it properly: exercises the
            // protobuf and selector parsers rather than snappy's checks.
            let mut raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            mutate(&mut raw, &edits);
            body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        } else {
            mutate(&mut body, &edits);
        }
        if let Ok(out) = run(PROTOBUF, &body) {
            check_translation(&out);
        }
    }
}
