//! The events module's contract (DESIGN §3): validation, payload framing,
//! id minting, the flush-side decoding and the clock-skew rule.

// The payload API takes a slice of accepted ranges; a one-range slice is
// exactly what these tests mean, not a mistaken `(0..n).collect()`.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;

use helios_ingest::events::{
    clock_offset_ms, decode_payload, encode_payload, load_or_create_node_id, minted_id,
    record_to_docs, validate, BodyError, BodyFormat, EventDecodeError, EventError, IdMinter,
    PayloadError, RecordDecodeError, Reject, ValidateLimits, ValidateMode, Validation,
    NODE_ID_FILE, PAYLOAD_FLAG_RELAYED,
};
use helios_journal::{Checkpoint, Record, RecordIds};
use helios_store::{format_rfc3339_utc_ms, EventDoc, ObjectId, COUNTER_MAX};
use serde_json::Value;

const CLIENT: ValidateMode = ValidateMode { relay: false };
const RELAY: ValidateMode = ValidateMode { relay: true };
const ID_A: &str = "65f1c0de0000000000000001";
const ID_B: &str = "65f1c0de0000000000000002";
/// 2026-11-30T19:21:43.123Z
const RECV_MS: i64 = 1_796_066_503_123;
const NODE: [u8; 5] = [1, 2, 3, 4, 5];

/// Deterministic xorshift for the garbage tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn run(
    body: &str,
    format: BodyFormat,
    mode: ValidateMode,
) -> Result<(Vec<String>, Vec<Reject>), BodyError> {
    run_with(body, format, mode, &ValidateLimits::default())
}

fn run_with(
    body: &str,
    format: BodyFormat,
    mode: ValidateMode,
    limits: &ValidateLimits,
) -> Result<(Vec<String>, Vec<Reject>), BodyError> {
    let mut out = Validation::new();
    validate(body.as_bytes(), format, limits, mode, &mut out)?;
    let accepted = out
        .accepted()
        .iter()
        .map(|range| body[range.clone()].to_owned())
        .collect();
    Ok((accepted, out.rejected().to_vec()))
}

fn json(body: &str) -> (Vec<String>, Vec<Reject>) {
    run(body, BodyFormat::Json, CLIENT).expect("body is acceptable")
}

fn ndjson(body: &str) -> (Vec<String>, Vec<Reject>) {
    run(body, BodyFormat::Ndjson, CLIENT).expect("body is acceptable")
}

/// The error of the single event `event`, sent as one JSON object.
fn single_reject(event: &str, mode: ValidateMode) -> Option<EventError> {
    let (accepted, rejected) = run(event, BodyFormat::Json, mode).expect("body is JSON");
    match (accepted.len(), rejected.as_slice()) {
        (1, []) => None,
        (0, [reject]) => Some(reject.error),
        other => panic!("one event expected, got {other:?}"),
    }
}

fn reject(index: usize, error: EventError) -> Reject {
    Reject { index, error }
}

fn is_malformed(result: Result<(Vec<String>, Vec<Reject>), BodyError>) -> bool {
    matches!(result, Err(BodyError::Malformed(_)))
}

// ---- validation: forms ----

#[test]
fn single_object_is_accepted() {
    let (accepted, rejected) = json(r#" {"type":"a"} "#);
    assert_eq!(accepted, [r#"{"type":"a"}"#]);
    assert!(rejected.is_empty());
}

#[test]
fn array_of_objects_is_accepted() {
    let (accepted, rejected) = json("[{\"type\":\"a\"},\n {\"type\":\"b\",\"n\":[1,{\"x\":2}]} ]");
    assert_eq!(
        accepted,
        [r#"{"type":"a"}"#, r#"{"type":"b","n":[1,{"x":2}]}"#]
    );
    assert!(rejected.is_empty());
}

#[test]
fn empty_array_accepts_nothing() {
    assert_eq!(json(" [ ] "), (vec![], vec![]));
}

#[test]
fn ndjson_lines_are_accepted_with_crlf_and_no_final_newline() {
    let (accepted, rejected) = ndjson("{\"type\":\"a\"}\r\n{\"type\":\"b\"}");
    assert_eq!(accepted, [r#"{"type":"a"}"#, r#"{"type":"b"}"#]);
    assert!(rejected.is_empty());
}

#[test]
fn mixed_array_lists_bad_events_by_index() {
    let body = r#"[{"type":"ok"},{"ts":1},7,{"type":""},{"type":"ok2"},[]]"#;
    let (accepted, rejected) = json(body);
    assert_eq!(accepted, [r#"{"type":"ok"}"#, r#"{"type":"ok2"}"#]);
    assert_eq!(
        rejected,
        [
            reject(1, EventError::MissingType),
            reject(2, EventError::NotAnObject),
            reject(3, EventError::InvalidType),
            reject(5, EventError::NotAnObject),
        ]
    );
}

#[test]
fn mixed_ndjson_numbers_non_blank_lines_and_rejects_non_json_lines() {
    let body = "\n{\"type\":\"a\"}\n   \nnot json\n\r\n{\"type\":1}\n\"str\"\n{\"type\":\"b\"} {}\n{\"type\":\"c\"}\n\n";
    let (accepted, rejected) = ndjson(body);
    assert_eq!(accepted, [r#"{"type":"a"}"#, r#"{"type":"c"}"#]);
    assert_eq!(
        rejected,
        [
            reject(1, EventError::InvalidJson),
            reject(2, EventError::InvalidType),
            reject(3, EventError::NotAnObject),
            reject(4, EventError::InvalidJson),
        ]
    );
}

#[test]
fn ndjson_line_with_a_syntax_error_inside_an_object_is_a_per_event_reject() {
    let (accepted, rejected) = ndjson("{\"type\":\"a\",}\n{\"type\":\"b\"}\n{\"type\":\"c\"\n");
    assert_eq!(accepted, [r#"{"type":"b"}"#]);
    assert_eq!(
        rejected,
        [
            reject(0, EventError::InvalidJson),
            reject(2, EventError::InvalidJson)
        ]
    );
}

#[test]
fn empty_ndjson_body_accepts_nothing() {
    assert_eq!(ndjson(" \n\n"), (vec![], vec![]));
}

#[test]
fn buffers_are_cleared_between_requests() {
    let mut out = Validation::new();
    let limits = ValidateLimits::default();
    let first = br#"[{"type":"a"},1]"#;
    validate(first, BodyFormat::Json, &limits, CLIENT, &mut out).expect("valid");
    assert_eq!((out.accepted().len(), out.rejected().len()), (1, 1));
    let second = br#"{"type":"b"}"#;
    validate(second, BodyFormat::Json, &limits, CLIENT, &mut out).expect("valid");
    assert_eq!(out.accepted(), [0..second.len()]);
    assert!(out.rejected().is_empty());
    assert_eq!(out.event_count(), 1);
}

// ---- validation: event rules ----

#[test]
fn type_is_required() {
    assert_eq!(
        single_reject(r#"{"ts":1}"#, CLIENT),
        Some(EventError::MissingType)
    );
}

#[test]
fn type_must_be_a_non_empty_string() {
    for event in [
        r#"{"type":""}"#,
        r#"{"type":1}"#,
        r#"{"type":null}"#,
        r#"{"type":["a"]}"#,
        r#"{"type":{"a":1}}"#,
    ] {
        assert_eq!(
            single_reject(event, CLIENT),
            Some(EventError::InvalidType),
            "{event}"
        );
    }
    assert_eq!(single_reject(r#"{"type":"\u0041"}"#, CLIENT), None);
}

#[test]
fn ts_accepts_rfc3339_text_and_integer_epoch_ms() {
    for event in [
        r#"{"type":"a","ts":"2026-11-30T17:54:33.123Z"}"#,
        r#"{"type":"a","ts":"2026-11-30T18:54:33+01:00"}"#,
        r#"{"type":"a","ts":1796066503123}"#,
        r#"{"type":"a","ts":0}"#,
        r#"{"type":"a","ts":-1000}"#,
        r#"{"type":"a","ts":253402300799999}"#,
    ] {
        assert_eq!(single_reject(event, CLIENT), None, "{event}");
    }
}

#[test]
fn ts_rejects_other_types_floats_and_out_of_range_values() {
    for event in [
        r#"{"type":"a","ts":1.5}"#,
        r#"{"type":"a","ts":1e3}"#,
        r#"{"type":"a","ts":253402300800000}"#,
        r#"{"type":"a","ts":-62167219200001}"#,
        r#"{"type":"a","ts":99999999999999999999999}"#,
        r#"{"type":"a","ts":"yesterday"}"#,
        r#"{"type":"a","ts":"2026-02-30T00:00:00Z"}"#,
        r#"{"type":"a","ts":"2026-11-30T17:54:33"}"#,
        r#"{"type":"a","ts":true}"#,
        r#"{"type":"a","ts":null}"#,
        r#"{"type":"a","ts":[1]}"#,
        r#"{"type":"a","ts":{"ms":1}}"#,
    ] {
        assert_eq!(
            single_reject(event, CLIENT),
            Some(EventError::InvalidTs),
            "{event}"
        );
    }
}

#[test]
fn id_must_be_24_hex_digits() {
    let good = format!(r#"{{"type":"a","_id":"{ID_A}"}}"#);
    assert_eq!(single_reject(&good, CLIENT), None);
    assert_eq!(
        single_reject(r#"{"type":"a","_id":"65F1C0DE0000000000000001"}"#, CLIENT),
        None
    );
    for event in [
        r#"{"type":"a","_id":"65f1c0de000000000000000"}"#,
        r#"{"type":"a","_id":"65f1c0de00000000000000012"}"#,
        r#"{"type":"a","_id":"65f1c0de00000000000000zz"}"#,
        r#"{"type":"a","_id":12}"#,
        r#"{"type":"a","_id":{"$oid":"65f1c0de0000000000000001"}}"#,
    ] {
        assert_eq!(
            single_reject(event, CLIENT),
            Some(EventError::InvalidId),
            "{event}"
        );
    }
}

#[test]
fn recv_from_a_client_is_rejected() {
    assert_eq!(
        single_reject(r#"{"type":"a","recv":"2026-11-30T17:54:33Z"}"#, CLIENT),
        Some(EventError::RecvNotAllowed)
    );
}

#[test]
fn recv_app_and_ts_raw_from_a_relay_are_allowed() {
    let event = format!(
        r#"{{"type":"a","_id":"{ID_A}","recv":"2026-11-30T17:54:33Z","app":"shop","ts":1,"ts_raw":"x"}}"#
    );
    assert_eq!(single_reject(&event, RELAY), None);
    let bad_recv = format!(r#"{{"type":"a","_id":"{ID_A}","recv":"soon"}}"#);
    assert_eq!(
        single_reject(&bad_recv, RELAY),
        Some(EventError::InvalidRecv)
    );
}

#[test]
fn relayed_event_without_id_is_rejected() {
    assert_eq!(
        single_reject(r#"{"type":"a"}"#, RELAY),
        Some(EventError::RelayWithoutId)
    );
}

#[test]
fn app_must_be_a_string() {
    assert_eq!(single_reject(r#"{"type":"a","app":"shop"}"#, CLIENT), None);
    assert_eq!(
        single_reject(r#"{"type":"a","app":7}"#, CLIENT),
        Some(EventError::InvalidApp)
    );
}

#[test]
fn duplicate_member_names_are_rejected_even_when_spelled_with_escapes() {
    for event in [
        r#"{"type":"a","type":"b"}"#,
        r#"{"type":"a","x":1,"x":2}"#,
        r#"{"type":"a","t\u0073":1,"ts":2}"#,
    ] {
        assert_eq!(
            single_reject(event, CLIENT),
            Some(EventError::DuplicateName),
            "{event}"
        );
    }
    // Nested objects are the event's own data, stored verbatim.
    assert_eq!(
        single_reject(r#"{"type":"a","x":{"y":1},"z":{"y":2}}"#, CLIENT),
        None
    );
}

#[test]
fn mint_count_counts_accepted_events_without_id() {
    let body =
        format!(r#"[{{"type":"a"}},{{"type":"b","_id":"{ID_A}"}},{{"type":"c"}},{{"type":""}}]"#);
    let mut out = Validation::new();
    validate(
        body.as_bytes(),
        BodyFormat::Json,
        &ValidateLimits::default(),
        CLIENT,
        &mut out,
    )
    .expect("valid");
    assert_eq!(out.mint_count(), 2);
    assert_eq!(out.event_count(), 4);
}

// ---- validation: body-level errors and limits ----

#[test]
fn body_that_is_not_json_is_malformed() {
    for body in [
        "",
        "   ",
        "hello",
        "{\"type\":\"a\"",
        "[{\"type\":\"a\"}",
        "[{\"type\":\"a\"},]",
        "[{\"type\":\"a\"} {\"type\":\"b\"}]",
        "{\"type\":\"a\"} x",
        "[{\"type\":\"a\"}] []",
        "[{\"type\":\"a\",}]",
        "[{\"type\":\"a\"},{\"type\":tru}]",
        "[1,2,nul]",
        "\u{feff}{\"type\":\"a\"}",
    ] {
        assert!(
            is_malformed(run(body, BodyFormat::Json, CLIENT)),
            "{body:?}"
        );
    }
}

#[test]
fn scalar_top_level_is_malformed() {
    for body in ["1", "\"event\"", "null", "true"] {
        assert!(is_malformed(run(body, BodyFormat::Json, CLIENT)), "{body}");
    }
}

#[test]
fn more_events_than_the_limit_is_too_many() {
    let limits = ValidateLimits {
        max_events_per_request: 2,
        ..ValidateLimits::default()
    };
    let two = r#"[{"type":"a"},{"type":"b"}]"#;
    assert!(run_with(two, BodyFormat::Json, CLIENT, &limits).is_ok());
    // Rejected events count too: the limit bounds work, not acceptances.
    let three = r#"[{"type":"a"},1,{"type":"b"}]"#;
    assert_eq!(
        run_with(three, BodyFormat::Json, CLIENT, &limits),
        Err(BodyError::TooManyEvents { limit: 2 })
    );
    let lines = "{\"type\":\"a\"}\n\n{\"type\":\"b\"}\nxx\n";
    assert_eq!(
        run_with(lines, BodyFormat::Ndjson, CLIENT, &limits),
        Err(BodyError::TooManyEvents { limit: 2 })
    );
}

fn nested(depth: usize) -> String {
    // An event whose nesting is exactly `depth` (the event object is 1).
    format!(
        r#"{{"type":"a","x":{}1{}}}"#,
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

#[test]
fn nesting_at_the_limit_is_accepted_and_deeper_is_a_per_event_reject() {
    let limits = ValidateLimits {
        max_json_depth: 4,
        ..ValidateLimits::default()
    };
    let body = format!("[{},{},{}]", nested(4), nested(5), nested(1));
    let (accepted, rejected) = run_with(&body, BodyFormat::Json, CLIENT, &limits).expect("JSON");
    assert_eq!(accepted, [nested(4), nested(1)]);
    assert_eq!(rejected, [reject(1, EventError::TooDeep)]);

    let lines = format!("{}\n{}\n", nested(5), nested(4));
    let (accepted, rejected) =
        run_with(&lines, BodyFormat::Ndjson, CLIENT, &limits).expect("NDJSON");
    assert_eq!(accepted, [nested(4)]);
    assert_eq!(rejected, [reject(0, EventError::TooDeep)]);
}

#[test]
fn extreme_nesting_is_rejected_without_exhausting_the_stack() {
    let deep = format!(
        r#"{{"type":"a","x":{}{}}}"#,
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    assert_eq!(single_reject(&deep, CLIENT), Some(EventError::TooDeep));
}

#[test]
fn depth_limits_above_the_ceiling_are_clamped_to_what_serde_json_parses() {
    let limits = ValidateLimits {
        max_json_depth: usize::MAX,
        ..ValidateLimits::default()
    };
    let at_ceiling = nested(helios_ingest::events::MAX_JSON_DEPTH_CEILING);
    let (accepted, _) = run_with(&at_ceiling, BodyFormat::Json, CLIENT, &limits).expect("JSON");
    assert_eq!(accepted.len(), 1);
    let above = nested(helios_ingest::events::MAX_JSON_DEPTH_CEILING + 1);
    let (_, rejected) = run_with(&above, BodyFormat::Json, CLIENT, &limits).expect("JSON");
    assert_eq!(rejected, [reject(0, EventError::TooDeep)]);
}

#[test]
fn accepted_bytes_are_verbatim() {
    let event = r#"{"type":"caf\u00e9 \"q\"","big":123456789012345678901234567890,"f":1.000000000000000000001,"s":"\ud83d\ude00 é","nested":{"a":[ 1 , 2 ]}}"#;
    let body = format!("[ {event} ,\n{event}]");
    let (accepted, rejected) = json(&body);
    assert_eq!(accepted, [event, event]);
    assert!(rejected.is_empty());
    let (accepted, _) = ndjson(&format!("  {event}\t\r\n"));
    assert_eq!(accepted, [event]);
}

#[test]
fn invalid_utf8_inside_an_event_is_not_json() {
    let mut body = br#"[{"type":"a","s":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(br#""}]"#);
    let mut out = Validation::new();
    let result = validate(
        &body,
        BodyFormat::Json,
        &ValidateLimits::default(),
        CLIENT,
        &mut out,
    );
    assert!(matches!(result, Err(BodyError::Malformed(_))));

    let mut lines = body[1..body.len() - 1].to_vec();
    lines.extend_from_slice(b"\n{\"type\":\"b\"}\n");
    validate(
        &lines,
        BodyFormat::Ndjson,
        &ValidateLimits::default(),
        CLIENT,
        &mut out,
    )
    .expect("NDJSON rejects per line");
    assert_eq!(out.rejected(), [reject(0, EventError::InvalidJson)]);
    assert_eq!(out.accepted().len(), 1);
}

#[test]
fn garbage_and_truncated_bodies_never_panic_and_account_for_every_event() {
    let event = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/bench/event.json"
    ))
    .unwrap_or_else(|_| {
        r#"{"type":"t","ts":"2026-11-30T17:54:33.123Z","a":[1,{"b":"\""}]}"#.into()
    });
    let array = format!("[{event},{event},{event}]");
    let lines = format!("{event}\n{event}\n{event}\n");
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    let mut out = Validation::new();
    let limits = ValidateLimits::default();
    for (seed, format) in [(&array, BodyFormat::Json), (&lines, BodyFormat::Ndjson)] {
        let mut bodies: Vec<Vec<u8>> = (0..seed.len())
            .map(|cut| seed.as_bytes()[..cut].to_vec())
            .collect();
        for _ in 0..5_000 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % bytes.len() as u64) as usize;
                let alphabet = b"{}[]\",:\\\n x1";
                bytes[at] = alphabet[(rng.next() % alphabet.len() as u64) as usize];
            }
            bodies.push(bytes);
        }
        for body in bodies {
            if validate(&body, format, &limits, CLIENT, &mut out).is_ok() {
                assert_eq!(
                    out.accepted().len() + out.rejected().len(),
                    out.event_count()
                );
                for range in out.accepted() {
                    let accepted = &body[range.clone()];
                    assert!(serde_json::from_slice::<Value>(accepted)
                        .is_ok_and(|value| value.is_object()));
                }
            }
        }
    }
}

// ---- payload framing ----

fn encode(flags: u8, body: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_payload(flags, body, ranges, &mut out).expect("ranges inside the body");
    out
}

#[test]
fn payload_round_trips_flags_and_verbatim_events() {
    let body = br#"[{"type":"a"}, {"type":"b\n"}]"#;
    let ranges = [1..13, 15..body.len() - 1];
    let payload = encode(PAYLOAD_FLAG_RELAYED, body, &ranges);
    assert_eq!(payload[0], PAYLOAD_FLAG_RELAYED);
    assert_eq!(&payload[1..5], &12u32.to_le_bytes());
    let events = decode_payload(&payload).expect("valid payload");
    assert!(events.relayed());
    assert_eq!(events.len(), 2);
    let decoded: Vec<&[u8]> = events.collect();
    assert_eq!(decoded, [&body[1..13], &body[15..body.len() - 1]]);
    assert_eq!(payload.len(), helios_ingest::events::payload_len(&ranges));
}

#[test]
fn payload_appends_to_a_reused_buffer() {
    let mut out = b"keep".to_vec();
    encode_payload(0, b"{}", &[0..2], &mut out).expect("valid");
    assert_eq!(&out[..4], b"keep");
    assert_eq!(decode_payload(&out[4..]).expect("valid").count(), 1);
}

#[test]
fn payload_encode_refuses_ranges_outside_the_body_and_leaves_the_buffer() {
    let mut out = b"keep".to_vec();
    let result = encode_payload(0, b"{}", &[0..2, 1..9], &mut out);
    assert!(matches!(result, Err(PayloadError::RangeOutOfBody { .. })));
    assert_eq!(out, b"keep");
    assert!(matches!(
        encode_payload(0x80, b"{}", &[0..2], &mut out),
        Err(PayloadError::UnknownFlags { flags: 0x80 })
    ));
}

#[test]
fn payload_decode_rejects_broken_framing() {
    assert_eq!(decode_payload(&[]).err(), Some(PayloadError::Empty));
    assert_eq!(
        decode_payload(&[0x02]).err(),
        Some(PayloadError::UnknownFlags { flags: 0x02 })
    );
    assert_eq!(
        decode_payload(&[0, 1, 0]).err(),
        Some(PayloadError::Truncated { offset: 1 })
    );
    assert_eq!(
        decode_payload(&[0, 3, 0, 0, 0, b'{', b'}']).err(),
        Some(PayloadError::Truncated { offset: 1 })
    );
    assert_eq!(
        decode_payload(&[0, 0, 0, 0, 0]).err(),
        Some(PayloadError::EmptyEvent { offset: 1 })
    );
    assert_eq!(decode_payload(&[0]).map(|events| events.len()), Ok(0));
}

#[test]
fn payload_decode_of_every_truncation_fails_or_yields_whole_events() {
    let body = br#"{"type":"a"}{"type":"bb"}{"type":"ccc"}"#;
    let payload = encode(0, body, &[0..12, 12..25, 25..body.len()]);
    let boundaries = [1, 17, 34, payload.len()];
    for cut in 0..=payload.len() {
        match decode_payload(&payload[..cut]) {
            Ok(events) => {
                let whole = boundaries
                    .iter()
                    .position(|&end| end == cut)
                    .unwrap_or_else(|| panic!("cut {cut} decoded"));
                assert_eq!(events.len(), whole);
            }
            Err(error) => assert!(!boundaries.contains(&cut), "{cut}: {error}"),
        }
    }
}

#[test]
fn payload_decode_never_panics_on_garbage() {
    let mut rng = XorShift(0xFEED_FACE_0000_0001);
    for _ in 0..50_000 {
        let len = (rng.next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = bytes.first_mut() {
            *first &= 1;
        }
        if let Ok(events) = decode_payload(&bytes) {
            let expected = events.len();
            let total: usize = events.clone().map(|event| event.len() + 4).sum();
            assert_eq!(events.count(), expected);
            assert_eq!(total + 1, bytes.len());
        }
    }
}

// ---- id minting ----

#[test]
fn reserve_returns_the_base_and_advances_the_counter() {
    let mut minter = IdMinter::resume(NODE, None);
    let base = minter.reserve(RECV_MS, 3);
    let id = ObjectId::from_bytes(base);
    assert_eq!(id.timestamp_secs(), (RECV_MS / 1000) as u32);
    assert_eq!(id.node_id(), NODE);
    assert_eq!(id.counter(), 0);
    assert_eq!(
        ObjectId::from_bytes(minter.reserve(RECV_MS, 1)).counter(),
        3
    );
}

#[test]
fn minted_ids_are_deterministic_and_distinct_within_and_across_records() {
    let mut minter = IdMinter::resume(NODE, None);
    let first = minter.reserve(RECV_MS, 3);
    let second = minter.reserve(RECV_MS, 2);
    let ids: Vec<ObjectId> = (0..3)
        .map(|k| minted_id(first, k))
        .chain((0..2).map(|k| minted_id(second, k)))
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5);
    assert_eq!(minted_id(first, 2), ids[2]);
    assert_eq!(minted_id(first, 0), ObjectId::from_bytes(first));
    assert_eq!(minted_id(second, 0).counter(), 3);
}

#[test]
fn a_legacy_record_whose_counter_wrapped_replays_with_the_same_ids() {
    // Collectors before unique-forever minting let a record's counter wrap.
    let base = ObjectId::from_parts(1_000, NODE, COUNTER_MAX - 1)
        .unwrap()
        .bytes();
    assert_eq!(minted_id(base, 0).counter(), COUNTER_MAX - 1);
    assert_eq!(minted_id(base, 1).counter(), COUNTER_MAX);
    assert_eq!(minted_id(base, 2).counter(), 0);
    assert_eq!(minted_id(base, 2).node_id(), NODE);
}

#[test]
fn node_id_is_persisted_and_stable_across_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = load_or_create_node_id(dir.path()).expect("created");
    let second = load_or_create_node_id(dir.path()).expect("read back");
    assert_eq!(first, second);
    let text = std::fs::read_to_string(dir.path().join(NODE_ID_FILE)).expect("file");
    let hex: String = first.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(text, format!("{hex}\n"));
    let other = tempfile::tempdir().expect("temp dir");
    assert_ne!(
        load_or_create_node_id(other.path()).expect("created"),
        first,
        "40 random bits repeated"
    );
}

#[test]
fn damaged_node_id_file_is_an_error_not_a_new_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(NODE_ID_FILE), "zz\n").expect("write");
    let error = load_or_create_node_id(dir.path()).expect_err("damaged");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

// ---- flush side ----

fn record(payload: Vec<u8>, event_count: u32, clock_offset_ms: i64, app: &str) -> Record {
    // As if the journal's previous record had minted counters 0..100 in
    // this same second: this record's ids continue at 100.
    let previous = RecordIds {
        id_base: ObjectId::from_parts((RECV_MS / 1000) as u32, NODE, 0)
            .unwrap()
            .bytes(),
        event_count: 100,
    };
    let mut minter = IdMinter::resume(NODE, Some(previous));
    Record {
        seq: 7,
        checkpoint: Checkpoint {
            seq: 7,
            lap: 1,
            end_offset: 4096,
            ..Checkpoint::default()
        },
        recv_ms: RECV_MS,
        clock_offset_ms,
        id_base: minter.reserve(RECV_MS, event_count),
        event_count,
        app: app.to_owned(),
        payload,
    }
}

/// Validates `body` as the server would, journals it as a record, decodes
/// the record.
fn through_journal(
    body: &str,
    mode: ValidateMode,
    clock_offset_ms: i64,
    app: &str,
) -> (Record, Vec<EventDoc>) {
    let mut out = Validation::new();
    validate(
        body.as_bytes(),
        BodyFormat::Json,
        &ValidateLimits::default(),
        mode,
        &mut out,
    )
    .expect("valid body");
    assert!(out.rejected().is_empty(), "{:?}", out.rejected());
    let flags = if mode.relay { PAYLOAD_FLAG_RELAYED } else { 0 };
    let payload = encode(flags, body.as_bytes(), out.accepted());
    let record = record(payload, out.accepted().len() as u32, clock_offset_ms, app);
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    record_to_docs(&record, &mut docs, &mut failures).expect("record decodes");
    assert!(failures.is_empty(), "{failures:?}");
    (record, docs)
}

fn doc_json(doc: &EventDoc) -> Value {
    serde_json::from_str(&doc.doc).expect("stored doc is JSON")
}

fn rfc3339(ms: i64) -> String {
    format_rfc3339_utc_ms(ms).expect("in range")
}

#[test]
fn client_id_is_kept_and_minted_ids_follow_the_base() {
    let body = format!(r#"[{{"type":"a"}},{{"type":"b","_id":"{ID_A}"}},{{"type":"c"}}]"#);
    let (record, docs) = through_journal(&body, CLIENT, 0, "");
    assert_eq!(docs[0].id, minted_id(record.id_base, 0));
    assert_eq!(docs[1].id.to_hex(), ID_A);
    assert_eq!(docs[2].id, minted_id(record.id_base, 1));
    assert_eq!(doc_json(&docs[2])["_id"], docs[2].id.to_hex());
    assert_eq!(docs[0].id.counter(), 100);
}

#[test]
fn clock_offset_corrects_ts_and_keeps_the_sent_value_as_ts_raw() {
    let body = r#"[{"type":"a","ts":"2026-11-30T19:21:40.000Z"},{"type":"b","ts":1796066500000}]"#;
    let (_, docs) = through_journal(body, CLIENT, 5_000, "");
    assert_eq!(docs[0].ts_ms, 1_796_066_505_000);
    assert_eq!(docs[1].ts_ms, 1_796_066_505_000);
    let first = doc_json(&docs[0]);
    assert_eq!(first["ts"], "2026-11-30T19:21:45.000Z");
    assert_eq!(first["ts_raw"], "2026-11-30T19:21:40.000Z");
    assert_eq!(doc_json(&docs[1])["ts_raw"], 1_796_066_500_000i64);
    assert_eq!(docs[0].recv_ms, RECV_MS);
}

#[test]
fn without_offset_ts_is_kept_and_no_ts_raw_is_stored() {
    let (_, docs) = through_journal(
        r#"{"type":"a","ts":"2026-11-30T19:21:40+01:00","ts_raw":"forged"}"#,
        CLIENT,
        0,
        "",
    );
    assert_eq!(docs[0].ts_ms, 1_796_062_900_000);
    assert!(doc_json(&docs[0]).get("ts_raw").is_none());
}

#[test]
fn event_without_ts_gets_the_receive_time_and_no_correction() {
    let (_, docs) = through_journal(r#"{"type":"a"}"#, CLIENT, 5_000, "");
    assert_eq!(docs[0].ts_ms, RECV_MS);
    let doc = doc_json(&docs[0]);
    assert_eq!(doc["ts"], rfc3339(RECV_MS));
    assert_eq!(doc["recv"], rfc3339(RECV_MS));
    assert!(doc.get("ts_raw").is_none());
}

#[test]
fn record_app_overrides_the_event_app_and_empty_keeps_it() {
    let body = r#"{"type":"a","app":"claimed"}"#;
    let (_, docs) = through_journal(body, CLIENT, 0, "from-key");
    assert_eq!(docs[0].app.as_deref(), Some("from-key"));
    assert_eq!(doc_json(&docs[0])["app"], "from-key");
    let (_, docs) = through_journal(body, CLIENT, 0, "");
    assert_eq!(docs[0].app.as_deref(), Some("claimed"));
    let (_, docs) = through_journal(r#"{"type":"a"}"#, CLIENT, 0, "");
    assert_eq!(docs[0].app, None);
}

#[test]
fn relayed_events_keep_their_recv_ts_ts_raw_and_app() {
    let body = format!(
        r#"{{"type":"a","_id":"{ID_B}","ts":"2026-11-30T10:00:05.000Z","ts_raw":"2026-11-30T10:00:00.000Z","recv":1796032800000,"app":"edge-app"}}"#
    );
    let (_, docs) = through_journal(&body, RELAY, 0, "relay-key-app");
    let doc = &docs[0];
    assert_eq!(doc.id.to_hex(), ID_B);
    assert_eq!(doc.recv_ms, 1_796_032_800_000);
    assert_eq!(doc.ts_ms, 1_796_032_805_000);
    assert_eq!(doc.app.as_deref(), Some("edge-app"));
    let value = doc_json(doc);
    assert_eq!(value["ts_raw"], "2026-11-30T10:00:00.000Z");
    assert_eq!(value["recv"], "2026-11-30T10:00:00.000Z");
}

#[test]
fn replaying_a_record_gives_identical_docs() {
    let body = format!(
        r#"[{{"type":"a","ts":5}},{{"type":"b","_id":"{ID_A}"}},{{"type":"c","x":[1,2]}}]"#
    );
    let (record, docs) = through_journal(&body, CLIENT, 2_000, "app");
    let mut again = Vec::new();
    let mut failures = Vec::new();
    record_to_docs(&record, &mut again, &mut failures).expect("decodes");
    assert_eq!(again, docs);
}

#[test]
fn one_undecodable_event_does_not_lose_the_others() {
    let body = br#"{"type":"a"}{"type":}{"type":"c"}"#;
    let payload = encode(0, body, &[0..12, 12..21, 21..body.len()]);
    let record = record(payload, 3, 0, "");
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    record_to_docs(&record, &mut docs, &mut failures).expect("framing is fine");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].event_type, "a");
    assert_eq!(docs[1].event_type, "c");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].index, 1);
    assert!(matches!(failures[0].error, EventDecodeError::NotJson(_)));
}

#[test]
fn broken_payload_or_count_mismatch_fails_the_whole_record() {
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    let broken = record(vec![0, 9, 0, 0, 0, b'{'], 1, 0, "");
    assert!(matches!(
        record_to_docs(&broken, &mut docs, &mut failures),
        Err(RecordDecodeError::Payload(PayloadError::Truncated { .. }))
    ));
    let miscounted = record(encode(0, b"{\"type\":\"a\"}", &[0..12]), 2, 0, "");
    assert_eq!(
        record_to_docs(&miscounted, &mut docs, &mut failures),
        Err(RecordDecodeError::CountMismatch {
            header: 2,
            payload: 1
        })
    );
    assert!(docs.is_empty() && failures.is_empty());
}

#[test]
fn correction_that_leaves_the_rfc3339_years_is_clamped_not_lost() {
    let (_, docs) = through_journal(r#"{"type":"a","ts":253402300799000}"#, CLIENT, 10_000, "");
    assert_eq!(docs[0].ts_ms, helios_store::RFC3339_MAX_MS);
}

// ---- clock skew ----

#[test]
fn clock_offset_is_zero_without_a_usable_header() {
    assert_eq!(clock_offset_ms(RECV_MS, None, 1_000), 0);
    assert_eq!(clock_offset_ms(RECV_MS, Some(b"yesterday"), 1_000), 0);
    assert_eq!(clock_offset_ms(RECV_MS, Some(b""), 1_000), 0);
    assert_eq!(clock_offset_ms(RECV_MS, Some(b"-5"), 1_000), 0);
    assert_eq!(clock_offset_ms(RECV_MS, Some(&[0xff, 0x31]), 1_000), 0);
}

#[test]
fn clock_offset_is_zero_within_the_threshold_inclusive() {
    let sent = (RECV_MS - 1_000).to_string();
    assert_eq!(clock_offset_ms(RECV_MS, Some(sent.as_bytes()), 1_000), 0);
    let sent = (RECV_MS + 1_000).to_string();
    assert_eq!(clock_offset_ms(RECV_MS, Some(sent.as_bytes()), 1_000), 0);
}

#[test]
fn clock_offset_beyond_the_threshold_is_recv_minus_sent() {
    let behind = (RECV_MS - 1_001).to_string();
    assert_eq!(
        clock_offset_ms(RECV_MS, Some(behind.as_bytes()), 1_000),
        1_001
    );
    let ahead = rfc3339(RECV_MS + 60_000);
    assert_eq!(
        clock_offset_ms(RECV_MS, Some(format!(" {ahead} ").as_bytes()), 1_000),
        -60_000
    );
}

// ---- values every reader can give back ----

#[test]
fn a_lone_surrogate_escape_anywhere_in_an_event_rejects_that_event_alone() {
    for value in [
        r#""\ud800""#,
        r#""a\udc00b""#,
        r#"["x", {"deep": "\ud83d"}]"#,
        r#""\ud83d\u0041""#,
    ] {
        let body = format!(r#"[{{"type":"ok"}},{{"type":"t","v":{value}}}]"#);
        let (accepted, rejected) = json(&body);
        assert_eq!(accepted.len(), 1, "{value}");
        assert_eq!(
            rejected,
            [reject(1, EventError::UnreadableValue)],
            "{value}"
        );
    }
}

#[test]
fn a_paired_surrogate_escape_is_a_character_and_accepted() {
    assert_eq!(
        single_reject(r#"{"type":"t","v":"\ud83d\ude00"}"#, CLIENT),
        None
    );
}

#[test]
fn a_number_beyond_f64_rejects_that_event_alone() {
    for value in [
        "1e400",
        "-1e400",
        "[1, 2e309]",
        &format!("1{}", "0".repeat(400)),
    ] {
        let body = format!("{{\"type\":\"t\",\"v\":{value}}}\n{{\"type\":\"ok\"}}\n");
        let (accepted, rejected) = ndjson(&body);
        assert_eq!(accepted.len(), 1, "{value}");
        assert_eq!(
            rejected,
            [reject(0, EventError::UnreadableValue)],
            "{value}"
        );
    }
}

#[test]
fn big_integers_and_tiny_numbers_within_f64_are_accepted() {
    for value in [
        "18446744073709551617",
        "-0",
        "1e-400",
        "1.7976931348623157e308",
    ] {
        let event = format!(r#"{{"type":"t","v":{value}}}"#);
        assert_eq!(single_reject(&event, CLIENT), None, "{value}");
    }
}

#[test]
fn an_unreadable_type_is_rejected_too() {
    assert_eq!(
        single_reject(r#"{"type":["\udfff"]}"#, CLIENT),
        Some(EventError::UnreadableValue)
    );
}
