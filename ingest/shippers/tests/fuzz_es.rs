//! Property tests of the Elasticsearch `_bulk` decoder: no bytes panic it,
//! every event line it writes is one the collector can take (a JSON object
//! with a non-empty string `type`, no `recv`/`app`/`ts_raw`, an `_id` only
//! as 24 hex digits), items and lines stay paired, and a valid body keeps
//! every source member.

use helios_shippers::{
    decode, render_failure, render_success, Echo, Endpoint, LineReject, Request, Settings,
    Translation, TypeRules,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

const MAX_EVENTS: usize = 64;

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events: MAX_EVENTS,
    }
}

fn request<'a>(path: &'a str, content_type: &'a str) -> Request<'a> {
    Request {
        endpoint: Endpoint::EsBulk,
        path,
        query: "",
        content_type,
        app: "fuzz",
        recv_ms: 1_765_106_100_000,
    }
}

/// Decodes, checks every invariant of a translation and of both answers,
/// and returns the translation when the request was accepted.
fn decode_checked(path: &str, content_type: &str, body: &[u8]) -> Option<Translation> {
    let req = request(path, content_type);
    let mut out = Translation::default();
    let mut answer = Vec::new();
    match decode(&req, body, &settings(), &mut out) {
        Err(failure) => {
            let rendered = render_failure(&req, &failure, &mut answer);
            assert!(rendered.status >= 400, "{failure:?}");
            let value: Value = serde_json::from_slice(&answer).expect("failure body is JSON");
            assert_eq!(value["status"], Value::from(rendered.status));
            None
        }
        Ok(()) => {
            check_translation(&out);
            // The collector may refuse any line; refuse every other one.
            let events: Vec<u32> = out
                .items
                .iter()
                .filter_map(|i| i.line.clone().ok())
                .collect();
            let rejected: Vec<LineReject<'_>> = events
                .iter()
                .step_by(2)
                .map(|&line| LineReject {
                    line,
                    error: "refused",
                })
                .collect();
            let rendered = render_success(&req, &out, &rejected, 1, &mut answer);
            assert_eq!(rendered.status, 200);
            let value: Value = serde_json::from_slice(&answer).expect("success body is JSON");
            let items = value["items"].as_array().expect("items");
            assert_eq!(items.len(), out.items.len());
            let failed = items
                .iter()
                .filter(|item| {
                    let inner = item.as_object().unwrap().values().next().unwrap();
                    inner["status"] != 201
                })
                .count();
            let refused = out.items.iter().filter(|i| i.line.is_err()).count();
            assert_eq!(failed, refused + rejected.len());
            assert_eq!(value["errors"], Value::from(failed > 0));
            Some(out)
        }
    }
}

fn check_translation(out: &Translation) {
    assert!(!out.items.is_empty(), "an accepted request has items");
    assert!(out.items.len() <= MAX_EVENTS);
    let text = std::str::from_utf8(&out.ndjson).expect("event lines are UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'));
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let numbered: Vec<u32> = out
        .items
        .iter()
        .filter_map(|i| i.line.clone().ok())
        .collect();
    let expected: Vec<u32> = (0..u32::try_from(lines.len()).unwrap()).collect();
    assert_eq!(numbered, expected, "items number the lines in order");
    for line in lines {
        assert!(!line.is_empty());
        let event: Value = serde_json::from_str(line).expect("each line is JSON");
        let event = event.as_object().expect("each line is an object");
        let kind = event["type"].as_str().expect("type is a string");
        assert!(!kind.is_empty());
        for forbidden in ["recv", "app", "ts_raw"] {
            assert!(!event.contains_key(forbidden), "{forbidden} in {line}");
        }
        if let Some(id) = event.get("_id") {
            let id = id.as_str().expect("_id is a string");
            assert_eq!(id.len(), 24);
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        if let Some(ts) = event.get("ts") {
            assert!(ts.is_i64(), "ts is integer epoch ms: {line}");
        }
        assert!(event["es_index"].as_str().is_some_and(|s| !s.is_empty()));
    }
    for item in &out.items {
        assert!(matches!(item.echo, Echo::Es { .. }));
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~é\\n\"\\\\]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z@._]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z@._]{1,10}",
        prop::sample::select(vec![
            "@timestamp",
            "type",
            "ts",
            "_id",
            "recv",
            "app",
            "ts_raw",
            "es_index",
            "es_id",
        ])
        .prop_map(str::to_owned),
    ]
}

fn timestamp() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..4_000_000_000_000).prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
            .prop_map(Value::from),
    ]
}

fn source() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::btree_map(member_name(), json_value(), 0..6),
        prop::option::of(timestamp()),
    )
        .prop_map(|(members, ts)| {
            let mut source: Map<String, Value> = members.into_iter().collect();
            if let Some(ts) = ts {
                source.insert("@timestamp".into(), ts);
            }
            source
        })
}

#[derive(Debug, Clone)]
struct BulkItem {
    action: &'static str,
    index: Option<String>,
    id: Option<String>,
    source: Map<String, Value>,
}

fn bulk_item() -> impl Strategy<Value = BulkItem> {
    (
        prop::sample::select(vec!["index", "create", "update", "delete"]),
        prop::option::of("[a-z0-9-]{1,8}"),
        prop::option::of("[ -~]{1,10}"),
        source(),
    )
        .prop_map(|(action, index, id, source)| BulkItem {
            action,
            index,
            id,
            source,
        })
}

fn body_of(items: &[BulkItem]) -> Vec<u8> {
    let mut body = Vec::new();
    for item in items {
        let mut params = Map::new();
        if let Some(index) = &item.index {
            params.insert("_index".into(), Value::from(index.as_str()));
        }
        if let Some(id) = &item.id {
            params.insert("_id".into(), Value::from(id.as_str()));
        }
        let mut action = Map::new();
        action.insert(item.action.into(), Value::Object(params));
        serde_json::to_writer(&mut body, &action).unwrap();
        body.push(b'\n');
        if item.action != "delete" {
            serde_json::to_writer(&mut body, &item.source).unwrap();
            body.push(b'\n');
        }
    }
    body
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        Just(b'\n'),
        Just(b'{'),
        Just(b'}'),
        Just(b'"'),
        Just(b'\\'),
        Just(b':'),
        Just(b','),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), byte).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(body: &mut Vec<u8>, mutation: &Mutation) {
    if body.is_empty() {
        return;
    }
    match *mutation {
        Mutation::Flip(at, b) => {
            let at = at % body.len();
            body[at] = b;
        }
        Mutation::Insert(at, b) => body.insert(at % (body.len() + 1), b),
        Mutation::Remove(at) => {
            body.remove(at % body.len());
        }
        Mutation::Truncate(at) => body.truncate(at % body.len()),
    }
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/_bulk".to_owned()),
        "/[a-z%0-9A-F-]{1,10}/_bulk".prop_map(|s| s),
    ]
}

fn content_type() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "application/x-ndjson",
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        "text/plain",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_lines_are_valid_events(
        body in prop::collection::vec(any::<u8>(), 0..512),
        path in path(),
        content_type in content_type(),
    ) {
        decode_checked(&path, content_type, &body);
    }

    #[test]
    fn arbitrary_line_soup_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("{\"index\":{}}".to_owned()),
                Just("{\"create\":{\"_index\":\"x\",\"_id\":\"1\"}}".to_owned()),
                Just("{\"delete\":{}}".to_owned()),
                Just("{\"update\":{\"_id\":\"u\"}}".to_owned()),
                Just(String::new()),
                "[ -~]{0,20}",
                json_value().prop_map(|v| v.to_string()),
            ],
            0..24,
        ),
        path in path(),
    ) {
        decode_checked(&path, "", lines.join("\n").as_bytes());
    }

    #[test]
    fn mutated_valid_bodies_never_panic_and_stay_consistent(
        items in prop::collection::vec(bulk_item(), 1..12),
        mutations in prop::collection::vec(mutation(), 1..6),
        path in path(),
    ) {
        let mut body = body_of(&items);
        for m in &mutations {
            mutate(&mut body, m);
        }
        decode_checked(&path, "application/x-ndjson", &body);
    }

    #[test]
    fn a_valid_body_keeps_every_item_and_every_source_member(
        items in prop::collection::vec(bulk_item(), 1..12),
    ) {
        let body = body_of(&items);
        let out = decode_checked("/fallback/_bulk", "", &body).expect("a valid body is accepted");
        prop_assert_eq!(out.items.len(), items.len());
        let text = std::str::from_utf8(&out.ndjson).unwrap();
        let mut events = text.lines().map(|l| serde_json::from_str::<Map<String, Value>>(l).unwrap());
        for (item, translated) in items.iter().zip(&out.items) {
            let stored = matches!(item.action, "index" | "create")
                && item.id.as_deref() != Some("");
            prop_assert_eq!(translated.line.is_ok(), stored, "{:?}", item);
            if !stored {
                continue;
            }
            let event = events.next().unwrap();
            let index = item.index.as_deref().unwrap_or("fallback");
            prop_assert_eq!(event["es_index"].as_str(), Some(index));
            prop_assert_eq!(event["type"].as_str(), Some(index));
            prop_assert_eq!(event.get("es_id").and_then(Value::as_str), item.id.as_deref());
            prop_assert_eq!(event.contains_key("_id"), item.id.is_some());
            for (name, value) in &item.source {
                let reserved = ["_id", "type", "ts", "ts_raw", "recv", "app", "es_index", "es_id"];
                let key = if reserved.contains(&name.as_str()) {
                    format!("source.{name}")
                } else {
                    name.clone()
                };
                prop_assert_eq!(event.get(&key), Some(value), "{}", key);
            }
        }
        prop_assert!(events.next().is_none());
    }
}
