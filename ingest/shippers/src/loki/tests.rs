//! Captured and hand-written push bodies, with the exact events and answers
//! they must give. The captured bodies (testdata/) were sent by the pinned
//! clients to a plain HTTP listener: winston-loki 6.1.7 (protobuf+snappy
//! and JSON) and python-logging-loki 0.3.1 (JSON).

use super::*;
use crate::{lookup_json, Endpoint, TypeRules};

// Loki's push.proto messages declared with prost's derive: an encoder
// independent of the decoder's in-place reader, for building test bodies.

#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    #[prost(bytes = "vec", tag = "1")]
    labels: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(bytes = "vec", tag = "2")]
    line: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPairAdapter {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

const MAX_DECODED_BYTES: usize = 1 << 20;

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: MAX_DECODED_BYTES,
        max_events: 1000,
    }
}

fn request(content_type: &str) -> Request<'_> {
    Request {
        endpoint: Endpoint::LokiPush,
        path: "/loki/api/v1/push",
        query: "",
        content_type,
        app: "shipper-tests",
        recv_ms: 1_765_108_900_000,
    }
}

fn decode_with(
    content_type: &str,
    body: &[u8],
    settings: &Settings,
) -> Result<Translation, Failure> {
    let mut out = Translation::default();
    crate::decode(&request(content_type), body, settings, &mut out)?;
    Ok(out)
}

/// The event lines of a body that must decode.
fn lines(content_type: &str, body: &[u8]) -> Vec<String> {
    let out = decode_with(content_type, body, &settings()).unwrap();
    assert_eq!(out.items.len(), out.lines(), "no item refused");
    split(&out)
}

fn split(out: &Translation) -> Vec<String> {
    let text = std::str::from_utf8(&out.ndjson).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines().map(str::to_owned).collect()
}

fn failure(content_type: &str, body: &[u8]) -> Failure {
    decode_with(content_type, body, &settings()).unwrap_err()
}

fn snappy(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).unwrap()
}

fn protobuf(push: &PushRequest) -> Vec<u8> {
    snappy(&prost::Message::encode_to_vec(push))
}

fn stream(labels: &str, entries: Vec<EntryAdapter>) -> StreamAdapter {
    StreamAdapter {
        labels: labels.as_bytes().to_vec(),
        entries,
    }
}

fn entry(seconds: i64, nanos: i32, line: &str, metadata: &[(&str, &str)]) -> EntryAdapter {
    EntryAdapter {
        timestamp: Some(Timestamp { seconds, nanos }),
        line: line.as_bytes().to_vec(),
        structured_metadata: metadata
            .iter()
            .map(|(name, value)| LabelPairAdapter {
                name: name.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn malformed_message(failure: Failure) -> String {
    match failure {
        Failure::Malformed(message) => message,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

// ---- JSON bodies ----

#[test]
fn json_entries_become_one_event_each_with_labels_metadata_and_exact_times() {
    let body = br#"{"streams":[
        {"stream":{"job":"api","env":"prod"},
         "values":[["1765108800123456789","GET /health 200"],
                   ["1765108800123999999","slow \"query\"\n",{"trace_id":"0af7651916cd43dd","user":"u1"}]]},
        {"stream":{"service_name":"billing"},"values":[["1765108801000000000","invoice sent"]]}]}"#;
    assert_eq!(
        lines(JSON, body),
        [
            r#"{"type":"api","ts":1765108800123,"ts_ns":"1765108800123456789","line":"GET /health 200","labels":{"job":"api","env":"prod"}}"#,
            r#"{"type":"api","ts":1765108800123,"ts_ns":"1765108800123999999","line":"slow \"query\"\n","labels":{"job":"api","env":"prod"},"metadata":{"trace_id":"0af7651916cd43dd","user":"u1"}}"#,
            r#"{"type":"billing","ts":1765108801000,"ts_ns":"1765108801000000000","line":"invoice sent","labels":{"service_name":"billing"}}"#,
        ]
    );
}

#[test]
fn json_items_number_the_lines_in_request_order() {
    let body = br#"{"streams":[{"stream":{"a":"1"},"values":[["1","x"],["2","y"]]},{"stream":{"a":"2"},"values":[["3","z"]]}]}"#;
    let out = decode_with(JSON, body, &settings()).unwrap();
    let numbers: Vec<u32> = out.items.iter().map(|i| i.line.clone().unwrap()).collect();
    assert_eq!(numbers, [0, 1, 2]);
}

#[test]
fn json_times_may_be_integers_and_lose_their_leading_zeros() {
    let body = br#"{"streams":[{"stream":{"job":"a"},"values":[[1765108800123456789,"n"],["0001000000","z"],["0","e"]]}]}"#;
    assert_eq!(
        lines(JSON, body),
        [
            r#"{"type":"a","ts":1765108800123,"ts_ns":"1765108800123456789","line":"n","labels":{"job":"a"}}"#,
            r#"{"type":"a","ts":1,"ts_ns":"1000000","line":"z","labels":{"job":"a"}}"#,
            r#"{"type":"a","ts":0,"ts_ns":"0","line":"e","labels":{"job":"a"}}"#,
        ]
    );
}

#[test]
fn json_label_and_metadata_numbers_and_booleans_are_kept_as_their_text() {
    let body = br#"{"streams":[{"stream":{"job":"a","shard":3,"canary":true},"values":[["5","x",{"status":500,"ratio":0.25}]]}]}"#;
    assert_eq!(
        lines(JSON, body),
        [
            r#"{"type":"a","ts":0,"ts_ns":"5","line":"x","labels":{"job":"a","shard":"3","canary":"true"},"metadata":{"status":"500","ratio":"0.25"}}"#
        ]
    );
}

#[test]
fn json_unknown_members_are_ignored_as_loki_does() {
    let body =
        br#"{"format":"loki","streams":[{"stream":{"job":"a"},"values":[["5","x"]],"hash":1}]}"#;
    assert_eq!(lines(JSON, body).len(), 1);
}

#[test]
fn a_push_without_entries_translates_to_nothing() {
    for body in [
        &br#"{"streams":[]}"#[..],
        br#"{}"#,
        br#"{"streams":[{"stream":{"job":"a"},"values":[]}]}"#,
    ] {
        let out = decode_with(JSON, body, &settings()).unwrap();
        assert!(out.items.is_empty() && out.ndjson.is_empty());
    }
    let out = decode_with(PROTOBUF, &protobuf(&PushRequest::default()), &settings()).unwrap();
    assert!(out.items.is_empty());
}

#[test]
fn an_empty_body_is_no_data() {
    assert_eq!(failure(JSON, b""), Failure::NoData);
    assert_eq!(failure(PROTOBUF, b""), Failure::NoData);
}

#[test]
fn malformed_json_is_refused_whole_with_serdes_position() {
    for (body, expected) in [
        (
            &b"{\"streams\":[{"[..],
            "loghttp.PushRequest: EOF while parsing",
        ),
        (
            b"not json",
            "loghttp.PushRequest: expected ident at line 1 column 2",
        ),
        (
            br#"{"streams":{}}"#,
            "invalid type: map, expected a sequence",
        ),
        (
            br#"{"streams":[],"streams":[]}"#,
            "duplicate field `streams`",
        ),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1"]]}]}"#,
            "invalid length 1",
        ),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x",{},"y"]]}]}"#,
            "invalid length 4",
        ),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1",7]]}]}"#,
            "expected a string",
        ),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x",{"k":{"n":1}}]]}]}"#,
            "expected a string value",
        ),
        (
            br#"{"streams":[{"stream":{"job":null},"values":[]}]}"#,
            "expected a string value",
        ),
        (
            br#"{"streams":[{"stream":{"job":"a"},"values":["1","x"]}]}"#,
            "expected an entry",
        ),
    ] {
        let message = malformed_message(failure(JSON, body));
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[test]
fn json_times_that_are_not_nanosecond_counts_are_refused_whole() {
    for time in [
        r#""""#,
        r#""abc""#,
        r#""-1""#,
        r#""1.5""#,
        r#"" 1""#,
        r#""\u0031""#,
        "-1",
        "1.5",
        "1e18",
        "null",
        // Milliseconds past i64::MAX.
        r#""99999999999999999999999999""#,
    ] {
        let body = format!(r#"{{"streams":[{{"stream":{{"job":"a"}},"values":[[{time},"x"]]}}]}}"#);
        let message = malformed_message(failure(JSON, body.as_bytes()));
        assert!(
            message.contains("expected a timestamp in nanoseconds"),
            "{time}: {message:?}"
        );
    }
}

#[test]
fn a_stream_without_labels_is_refused_as_loki_does() {
    for body in [
        &br#"{"streams":[{"stream":{},"values":[["1","x"]]}]}"#[..],
        br#"{"streams":[{"values":[["1","x"]]}]}"#,
    ] {
        assert_eq!(
            malformed_message(failure(JSON, body)),
            "error at least one label pair is required per stream"
        );
    }
}

#[test]
fn a_name_given_twice_is_refused_because_an_event_may_not_repeat_a_member() {
    let body = br#"{"streams":[{"stream":{"job":"a","job":"b"},"values":[["1","x"]]}]}"#;
    assert!(malformed_message(failure(JSON, body)).contains("duplicate label name \"job\""));
    let body = br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x",{"k":"1","k":"2"}]]}]}"#;
    assert!(
        malformed_message(failure(JSON, body)).contains("duplicate structured metadata name \"k\"")
    );
}

#[test]
fn escapes_in_json_text_come_out_as_valid_json() {
    let body = "{\"streams\":[{\"stream\":{\"job\":\"a\\\"b\"},\"values\":[[\"1\",\"tab\\there \\u00e9 \\ud83d\\ude00\"]]}]}";
    let lines = lines(JSON, body.as_bytes());
    let event: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(event["line"], "tab\there é 😀");
    assert_eq!(event["labels"]["job"], "a\"b");
    assert_eq!(event["type"], "a\"b");
}

#[test]
fn content_type_parameters_and_case_do_not_matter() {
    let body = br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x"]]}]}"#;
    assert_eq!(lines("Application/JSON; charset=utf-8", body).len(), 1);
}

// ---- Protobuf bodies ----

#[test]
fn protobuf_entries_translate_like_json_ones() {
    let push = PushRequest {
        streams: vec![stream(
            r#"{job="api", env="prod"}"#,
            vec![
                entry(1_765_108_800, 123_456_789, "GET /health 200", &[]),
                entry(
                    1_765_108_800,
                    123_999_999,
                    "slow",
                    &[("trace_id", "0af7"), ("user", "u1")],
                ),
            ],
        )],
    };
    assert_eq!(
        lines(PROTOBUF, &protobuf(&push)),
        [
            r#"{"type":"api","ts":1765108800123,"ts_ns":"1765108800123456789","line":"GET /health 200","labels":{"job":"api","env":"prod"}}"#,
            r#"{"type":"api","ts":1765108800123,"ts_ns":"1765108800123999999","line":"slow","labels":{"job":"api","env":"prod"},"metadata":{"trace_id":"0af7","user":"u1"}}"#,
        ]
    );
}

#[test]
fn a_body_without_content_type_is_read_as_protobuf_as_loki_does() {
    let push = PushRequest {
        streams: vec![stream(r#"{job="a"}"#, vec![entry(1, 0, "x", &[])])],
    };
    assert_eq!(
        lines("", &protobuf(&push)),
        [r#"{"type":"a","ts":1000,"ts_ns":"1000000000","line":"x","labels":{"job":"a"}}"#]
    );
}

#[test]
fn selector_escapes_are_decoded_into_label_values() {
    let push = PushRequest {
        streams: vec![stream(
            r#"{job="say \"hi\"", path="C:\\logs"}"#,
            vec![entry(1, 0, "x", &[])],
        )],
    };
    let lines = lines(PROTOBUF, &protobuf(&push));
    let event: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(event["labels"]["job"], "say \"hi\"");
    assert_eq!(event["labels"]["path"], "C:\\logs");
}

#[test]
fn a_protobuf_entry_without_timestamp_gets_no_ts_so_the_collector_stamps_receive_time() {
    let mut untimed = entry(0, 0, "x", &[]);
    untimed.timestamp = None;
    let push = PushRequest {
        streams: vec![stream(r#"{job="a"}"#, vec![untimed])],
    };
    assert_eq!(
        lines(PROTOBUF, &protobuf(&push)),
        [r#"{"type":"a","line":"x","labels":{"job":"a"}}"#]
    );
}

#[test]
fn a_protobuf_entry_with_an_unstorable_time_is_refused_alone() {
    let push = PushRequest {
        streams: vec![stream(
            r#"{job="a"}"#,
            vec![
                entry(-1, 0, "before 1970", &[]),
                entry(5, 0, "kept", &[]),
                entry(5, 1_000_000_000, "bad nanos", &[]),
                entry(i64::MAX, 0, "far future", &[]),
            ],
        )],
    };
    let out = decode_with(PROTOBUF, &protobuf(&push), &settings()).unwrap();
    assert_eq!(
        split(&out),
        [r#"{"type":"a","ts":5000,"ts_ns":"5000000000","line":"kept","labels":{"job":"a"}}"#]
    );
    let reasons: Vec<String> = out
        .items
        .iter()
        .map(|item| match &item.line {
            Ok(line) => format!("line {line}"),
            Err(refusal) => format!("{} {}: {}", refusal.status, refusal.kind, refusal.reason),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "400 invalid_timestamp: entry timestamp -1s is before 1970",
            "line 0",
            "400 invalid_timestamp: entry timestamp has nanos 1000000000 outside 0..999999999",
            "400 invalid_timestamp: entry timestamp 9223372036854775807000000000ns is out of range",
        ]
    );
}

#[test]
fn invalid_utf8_in_protobuf_text_becomes_replacement_characters() {
    let mut bad = entry(1, 0, "", &[]);
    bad.line = b"caf\xe9".to_vec();
    let push = PushRequest {
        streams: vec![stream(r#"{job="a"}"#, vec![bad])],
    };
    let lines = lines(PROTOBUF, &protobuf(&push));
    let event: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(event["line"], "caf\u{fffd}");
}

#[test]
fn a_protobuf_body_that_is_not_snappy_is_a_bad_encoding() {
    let push = PushRequest {
        streams: vec![stream(r#"{job="a"}"#, vec![entry(1, 0, "x", &[])])],
    };
    let raw = prost::Message::encode_to_vec(&push);
    assert!(matches!(failure(PROTOBUF, &raw), Failure::BadEncoding(m) if m.contains("not snappy")));
    // A JSON body labelled protobuf is not snappy either.
    assert!(matches!(
        failure(PROTOBUF, br#"{"streams":[]}"#),
        Failure::BadEncoding(_) | Failure::Malformed(_)
    ));
}

#[test]
fn snappy_that_is_not_a_push_request_is_malformed() {
    let message = malformed_message(failure(PROTOBUF, &snappy(b"\xff\xff\xff\xff")));
    assert!(message.starts_with("logproto.PushRequest: "), "{message}");
}

#[test]
fn a_selector_that_does_not_parse_is_refused_whole() {
    let push = PushRequest {
        streams: vec![stream(r#"{job=api}"#, vec![entry(1, 0, "x", &[])])],
    };
    assert_eq!(
        malformed_message(failure(PROTOBUF, &protobuf(&push))),
        "error parsing labels \"{job=api}\": unexpected 'a' at offset 5, expected a quoted label value"
    );
    let push = PushRequest {
        streams: vec![stream("{}", vec![entry(1, 0, "x", &[])])],
    };
    assert_eq!(
        malformed_message(failure(PROTOBUF, &protobuf(&push))),
        "error at least one label pair is required per stream"
    );
}

#[test]
fn a_snappy_body_past_max_decoded_bytes_is_too_large_before_it_is_inflated() {
    let push = PushRequest {
        streams: vec![stream(
            r#"{job="a"}"#,
            vec![entry(1, 0, &"x".repeat(MAX_DECODED_BYTES), &[])],
        )],
    };
    let body = protobuf(&push);
    assert!(body.len() < MAX_DECODED_BYTES / 10, "it compresses well");
    assert!(
        matches!(failure(PROTOBUF, &body), Failure::TooLarge(m) if m.contains("over the limit of 1048576"))
    );
    // A snappy header that claims 4 GiB is refused without allocating it.
    let claims_4_gib = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(matches!(
        failure(PROTOBUF, &claims_4_gib),
        Failure::TooLarge(_)
    ));
}

#[test]
fn more_entries_than_max_events_stop_the_decoder() {
    let settings = Settings {
        max_events: 2,
        ..settings()
    };
    let body = br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x"],["2","y"],["3","z"]]}]}"#;
    assert_eq!(
        decode_with(JSON, body, &settings).unwrap_err(),
        Failure::TooManyEvents
    );
    let two = br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x"],["2","y"]]}]}"#;
    assert_eq!(decode_with(JSON, two, &settings).unwrap().lines(), 2);
}

#[test]
fn other_content_types_are_unsupported() {
    for content_type in ["text/plain", "application/x-ndjson", "application/protobuf"] {
        assert!(matches!(
            failure(content_type, b"{}"),
            Failure::UnsupportedMediaType(_)
        ));
    }
}

// ---- Captured bodies of the pinned clients ----

#[test]
fn captured_winston_loki_protobuf_body() {
    let body = include_bytes!("testdata/winston-loki-6.1.7.snappy-protobuf");
    assert_eq!(
        lines(PROTOBUF, body),
        [
            r#"{"type":"checkout","ts":1765108800123,"ts_ns":"1765108800123000000","line":"order 1 \"placed\" {\"order_id\":42,\"level\":\"info\"}","labels":{"level":"info","job":"checkout","env":"prod"}}"#,
            r#"{"type":"checkout","ts":1765108801456,"ts_ns":"1765108801456000000","line":"line\nwith é {\"level\":\"warn\"}","labels":{"level":"warn","job":"checkout","env":"prod"}}"#,
        ]
    );
}

#[test]
fn captured_winston_loki_json_body() {
    let body = include_bytes!("testdata/winston-loki-6.1.7.json");
    assert_eq!(
        lines(JSON, body),
        [
            r#"{"type":"checkout","ts":1765108800123,"ts_ns":"1765108800123000000","line":"order 1 \"placed\" {\"order_id\":42,\"level\":\"info\"}","labels":{"level":"info","job":"checkout","env":"prod"},"metadata":{"order_id":"42","level":"info"}}"#,
            r#"{"type":"checkout","ts":1765108801456,"ts_ns":"1765108801456000000","line":"line\nwith é {\"level\":\"warn\"}","labels":{"level":"warn","job":"checkout","env":"prod"},"metadata":{"level":"warn"}}"#,
        ]
    );
}

#[test]
fn captured_python_logging_loki_body() {
    let body = include_bytes!("testdata/python-logging-loki-0.3.1.json");
    assert_eq!(
        lines(JSON, body),
        [
            r#"{"type":"billing","ts":1796642492699,"ts_ns":"1796642492699630848","line":"invoice 7 \"sent\"","labels":{"job":"billing","env.name":"prod","severity":"info","logger":"billing.worker","tenant_id":"t1"}}"#
        ]
    );
}

// ---- The type rule ----

#[test]
fn the_default_type_is_job_then_service_name_then_loki() {
    let body = br#"{"streams":[
        {"stream":{"service_name":"svc","job":"j"},"values":[["1","x"]]},
        {"stream":{"service_name":"svc","job":""},"values":[["1","x"]]},
        {"stream":{"env":"prod"},"values":[["1","x"]]}]}"#;
    let types: Vec<String> = lines(JSON, body)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["j", "svc", "loki"]);
}

#[test]
fn rule_fields_resolve_as_lookup_json_does_on_the_written_event() {
    let rules = [
        "$metadata.kind|fallback",
        "$labels.a.b|fallback",
        "$line|fallback",
        "$ts_ns|fallback",
        "$labels|$metadata|$ts|fallback",
        "$labels.missing|$metadata.missing|fallback",
    ];
    let body = br#"{"streams":[{"stream":{"a.b":"dotted","job":"j"},"values":[["1765108800123456789","the line",{"kind":"audit"}],["7",""]]}]}"#;
    for rule in rules {
        let mut settings = settings();
        settings.types.loki = TypeRule::parse(rule).unwrap();
        let out = decode_with(JSON, body, &settings).unwrap();
        for line in split(&out) {
            let mut event: serde_json::Value = serde_json::from_str(&line).unwrap();
            let written = event["type"].as_str().unwrap().to_owned();
            event.as_object_mut().unwrap().remove("type");
            let expected = settings.types.loki.resolve(|p| lookup_json(&event, p));
            assert_eq!(written, expected, "rule {rule} on {line}");
        }
    }
}

// ---- Answers ----

fn success(translation: &Translation, rejected: &[LineReject<'_>]) -> (Answer, String) {
    let mut out = Vec::new();
    let answer = render_success(&request(JSON), translation, rejected, &mut out);
    (answer, String::from_utf8(out).unwrap())
}

fn three_entries() -> Translation {
    let body = br#"{"streams":[{"stream":{"job":"a"},"values":[["1","x"],["2","y"],["3","z"]]}]}"#;
    decode_with(JSON, body, &settings()).unwrap()
}

#[test]
fn everything_stored_is_204_without_a_body() {
    let (answer, body) = success(&three_entries(), &[]);
    assert_eq!(answer.status, 204);
    assert!(!answer.retry_after);
    assert_eq!(body, "");
    let (answer, _) = success(&Translation::default(), &[]);
    assert_eq!(answer.status, 204);
}

#[test]
fn entries_refused_by_validation_make_a_400_that_names_them() {
    let rejected = [LineReject {
        line: 1,
        error: "ts is not RFC 3339 or epoch ms",
    }];
    let (answer, body) = success(&three_entries(), &rejected);
    assert_eq!((answer.status, answer.content_type), (400, TEXT));
    assert_eq!(
        body,
        "entry 1 ignored, reason: 'ts is not RFC 3339 or epoch ms'\n\
         total ignored: 1 out of 3; the other entries were stored\n"
    );
}

#[test]
fn entries_refused_by_the_decoder_are_named_by_their_position_in_the_request() {
    let mut untimed = entry(0, 0, "x", &[]);
    untimed.timestamp = None;
    let push = PushRequest {
        streams: vec![stream(
            r#"{job="a"}"#,
            vec![untimed, entry(-5, 0, "old", &[]), entry(1, 0, "ok", &[])],
        )],
    };
    let translation = decode_with(PROTOBUF, &protobuf(&push), &settings()).unwrap();
    // Line 1 is the third entry (the second was refused by the decoder).
    let rejected = [LineReject {
        line: 1,
        error: "too big",
    }];
    let (answer, body) = success(&translation, &rejected);
    assert_eq!(answer.status, 400);
    assert_eq!(
        body,
        "entry 1 ignored, reason: 'entry timestamp -5s is before 1970'\n\
         entry 2 ignored, reason: 'too big'\n\
         total ignored: 2 out of 3; the other entries were stored\n"
    );
}

#[test]
fn a_large_refusal_lists_the_first_entries_and_counts_the_rest() {
    let values: Vec<String> = (0..50).map(|i| format!(r#"["{i}","x"]"#)).collect();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"job":"a"}},"values":[{}]}}]}}"#,
        values.join(",")
    );
    let translation = decode_with(JSON, body.as_bytes(), &settings()).unwrap();
    let rejected: Vec<LineReject<'_>> = (0..50)
        .map(|line| LineReject { line, error: "no" })
        .collect();
    let (answer, body) = success(&translation, &rejected);
    assert_eq!(answer.status, 400);
    assert_eq!(body.lines().count(), MAX_LISTED_REFUSALS + 2);
    assert!(body.ends_with(
        "... and 30 more\ntotal ignored: 50 out of 50; the other entries were stored\n"
    ));
}

#[test]
fn each_failure_has_lokis_status_and_a_text_line() {
    let cases = [
        (Failure::MissingKey, 401, "unauthorized: no credentials\n"),
        (
            Failure::UnknownKey,
            401,
            "unauthorized: unknown credentials\n",
        ),
        (
            Failure::Forbidden("relay only".into()),
            403,
            "forbidden: relay only\n",
        ),
        (
            Failure::Malformed("error parsing labels".into()),
            400,
            "error parsing labels\n",
        ),
        (Failure::NoData, 400, "no data: empty request body\n"),
        (
            Failure::EventRequired { index: 0 },
            400,
            "event field is required (event 0)\n",
        ),
        (
            Failure::EventBlank { index: 0 },
            400,
            "event field cannot be blank (event 0)\n",
        ),
        (
            Failure::TooLarge("body over 8 MiB".into()),
            413,
            "too large: body over 8 MiB\n",
        ),
        (
            Failure::TooManyEvents,
            413,
            "more events than max_events_per_request\n",
        ),
        (
            Failure::UnsupportedMediaType("text/plain".into()),
            415,
            "unsupported media type: text/plain\n",
        ),
        (
            Failure::BadEncoding("gzip: invalid header".into()),
            400,
            "unsupported or damaged content encoding: gzip: invalid header\n",
        ),
        (
            Failure::Busy("journal budget reached".into()),
            503,
            "busy: journal budget reached\n",
        ),
        (Failure::NotFound, 404, "404 page not found\n"),
        (Failure::MethodNotAllowed, 405, "method not allowed\n"),
        (
            Failure::Internal("oops".into()),
            500,
            "internal error: oops\n",
        ),
    ];
    for (failure, status, text) in cases {
        let mut out = Vec::new();
        let answer = render_failure(&request(JSON), &failure, &mut out);
        assert_eq!(answer.status, status, "{failure:?}");
        assert_eq!(answer.content_type, "text/plain; charset=utf-8");
        assert_eq!(answer.headers, "");
        assert_eq!(answer.retry_after, status == 503, "{failure:?}");
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }
}
