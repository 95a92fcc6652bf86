//! The HEC decoder under arbitrary input: any bytes, on either endpoint
//! and with any query, and mutations of valid bodies never panic it, and
//! whatever it accepts is Helios events the collector's validation would
//! read (one JSON object per line, a non-empty string `type`, an integer
//! `ts` if any, never `recv`, `app` or `ts_raw`). Generated envelopes come
//! back member for member.

use helios_shippers::{decode, Endpoint, Failure, Request, Settings, Translation, TypeRules};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Bodies as the clients send them, for mutation.
const SEEDS: &[&str] = &[
    r#"{"event": "user logged in", "host": "web-1", "index": "main", "source": "app.py", "sourcetype": "text", "time": 1433188255.5009}{"event": "second", "host": "web-1", "index": null, "sourcetype": "text", "time": 1433188256}"#,
    r#"{"time":"1765108800.123","event":{"message":{"msg":"hi","n":[1,2.5,null]},"severity":"info"}}"#,
    "{\"event\": {\n  \"a\": \"x\\ny\"\n}, \"fields\": {\"region\": \"eu\", \"tags\": [\"a\"]}}\n{\"event\":\"two\",\"time\":\"1.5e9\"}\r\n",
    "first raw line\r\nsecond \"line\"\n\n\u{e9}t\u{e9}\n",
];

fn settings(max_events: usize) -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events,
    }
}

fn request(endpoint: Endpoint, query: &str) -> Request<'_> {
    Request {
        endpoint,
        path: "/services/collector",
        query,
        content_type: "application/json",
        app: "fuzz",
        recv_ms: 1_765_108_800_000,
    }
}

/// Decodes `body`; on success checks every line and returns the events.
fn decode_checked(
    endpoint: Endpoint,
    query: &str,
    body: &[u8],
    max_events: usize,
) -> Result<Vec<Map<String, Value>>, Failure> {
    let settings = settings(max_events);
    let mut out = Translation::default();
    decode(&request(endpoint, query), body, &settings, &mut out)?;
    let text = std::str::from_utf8(&out.ndjson).expect("the translation is UTF-8");
    assert!(text.ends_with('\n'), "the last line ends in a newline");
    let mut events = Vec::new();
    for line in text.split_terminator('\n') {
        assert!(!line.trim().is_empty(), "no empty line");
        let value: Value = serde_json::from_str(line).expect("each line is JSON");
        let Value::Object(event) = value else {
            panic!("each line is an object: {line}");
        };
        match event.get("type") {
            Some(Value::String(kind)) => assert!(!kind.is_empty(), "{line}"),
            other => panic!("type must be a non-empty string, got {other:?}: {line}"),
        }
        if let Some(ts) = event.get("ts") {
            assert!(ts.is_i64(), "ts is an integer: {line}");
        }
        for forbidden in ["recv", "app", "ts_raw", "_id"] {
            assert!(!event.contains_key(forbidden), "{forbidden} in {line}");
        }
        events.push(event);
    }
    assert!(!events.is_empty(), "success means at least one event");
    assert!(events.len() <= max_events);
    assert_eq!(out.items.len(), events.len(), "one item per line");
    assert!(out
        .items
        .iter()
        .enumerate()
        .all(|(k, item)| item.line == Ok(k as u32)));
    Ok(events)
}

/// Some mutations of a seed: flipped, inserted and removed bytes, a cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0_u8..4), 1..8),
    )
        .prop_map(|(seed, edits)| {
            let mut body = seed.as_bytes().to_vec();
            for (at, byte, kind) in edits {
                if body.is_empty() {
                    body.push(byte);
                    continue;
                }
                let at = at.index(body.len());
                match kind {
                    0 => body[at] = byte,
                    1 => body.insert(at, byte),
                    2 => {
                        body.remove(at);
                    }
                    _ => body.truncate(at),
                }
            }
            body
        })
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Eighths: serde_json's default (not round-trip exact) float
        // parser reads them back exactly, so values compare equal.
        (-1_000_000_i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z.]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An envelope whose `event` is not blank, with any metadata.
fn envelope() -> impl Strategy<Value = Map<String, Value>> {
    (
        json_value().prop_filter("event must not be blank", |v| {
            !v.is_null() && v != &json!("")
        }),
        prop::option::of(prop_oneof![
            (0_i64..253_402_300_799).prop_map(Value::from),
            (0_u64..253_402_300_799_999).prop_map(|ms| json!(format!(
                "{}.{:03}",
                ms / 1000,
                ms % 1000
            ))),
        ]),
        prop::option::of(any::<String>()),
        prop::option::of(any::<String>()),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{1,5}",
            json_value(),
            0..3,
        )),
    )
        .prop_map(|(event, time, host, sourcetype, fields)| {
            let mut envelope = Map::new();
            envelope.insert("event".into(), event);
            if let Some(time) = time {
                envelope.insert("time".into(), time);
            }
            if let Some(host) = host {
                envelope.insert("host".into(), Value::String(host));
            }
            if let Some(sourcetype) = sourcetype {
                envelope.insert("sourcetype".into(), Value::String(sourcetype));
            }
            if let Some(fields) = fields {
                envelope.insert("fields".into(), Value::Object(fields.into_iter().collect()));
            }
            envelope
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_either_endpoint(
        body in prop::collection::vec(any::<u8>(), 0..512),
        query in "[a-z=&%+0-9.]{0,40}",
        max_events in 1_usize..8,
    ) {
        let _ = decode_checked(Endpoint::HecEvent, &query, &body, max_events);
        let _ = decode_checked(Endpoint::HecRaw, &query, &body, max_events);
    }

    #[test]
    fn mutated_client_bodies_never_panic(body in mutated(), query in "[a-z=&%+0-9.]{0,40}") {
        let _ = decode_checked(Endpoint::HecEvent, "", &body, 100);
        let _ = decode_checked(Endpoint::HecRaw, &query, &body, 100);
    }

    #[test]
    fn generated_envelopes_come_back_member_for_member(
        envelopes in prop::collection::vec(envelope(), 1..6),
        pretty in any::<bool>(),
        separator in prop::sample::select(vec!["", "\n", " \r\n\t"]),
    ) {
        let body = envelopes
            .iter()
            .map(|e| if pretty {
                serde_json::to_string_pretty(e).unwrap()
            } else {
                serde_json::to_string(e).unwrap()
            })
            .collect::<Vec<_>>()
            .join(separator);
        let events = decode_checked(Endpoint::HecEvent, "", body.as_bytes(), 100)
            .unwrap_or_else(|failure| panic!("{failure:?} for {body}"));
        prop_assert_eq!(events.len(), envelopes.len());
        for (event, envelope) in events.iter().zip(&envelopes) {
            for (name, value) in envelope {
                prop_assert_eq!(event.get(name), Some(value), "{}", name);
            }
            let kind = match envelope.get("sourcetype") {
                Some(Value::String(s)) if !s.is_empty() => s.as_str(),
                _ => "httpevent",
            };
            prop_assert_eq!(&event["type"], kind);
            prop_assert_eq!(event.contains_key("ts"), envelope.contains_key("time"));
        }
    }

    #[test]
    fn raw_lines_come_back_one_event_each(
        lines in prop::collection::vec("[^\r\n]{1,20}", 1..8),
        crlf in any::<bool>(),
    ) {
        let body = lines.join(if crlf { "\r\n" } else { "\n" });
        let events = decode_checked(Endpoint::HecRaw, "host=h", body.as_bytes(), 100).unwrap();
        let got: Vec<&Value> = events.iter().map(|e| &e["event"]).collect();
        let want: Vec<Value> = lines.iter().map(|l| json!(l)).collect();
        prop_assert_eq!(got, want.iter().collect::<Vec<_>>());
    }
}
