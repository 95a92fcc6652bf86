//! The envelope builder: what the stored `doc` looks like.

use helios_store::{DocError, Envelope, EventDoc, ObjectId, TsRaw};
use serde_json::Value;

const ID_HEX: &str = "65f1a2b3c4d5e6f708091a2b";
/// 2026-11-30T19:21:43.123Z
const TS_MS: i64 = 1_796_066_503_123;
/// 2026-11-30T19:21:44.000Z
const RECV_MS: i64 = 1_796_066_504_000;

fn envelope(ts_raw: TsRaw<'_>) -> Envelope<'_> {
    Envelope {
        id: ID_HEX.parse().expect("valid id"),
        ts_ms: TS_MS,
        recv_ms: RECV_MS,
        app: Some("shop"),
        ts_raw,
    }
}

fn build(event_json: &str, ts_raw: TsRaw<'_>) -> EventDoc {
    EventDoc::from_event_json(event_json, &envelope(ts_raw)).expect("valid event")
}

fn parsed(doc: &EventDoc) -> Value {
    serde_json::from_str(&doc.doc).expect("doc is JSON")
}

#[test]
fn envelope_fields_come_first_with_rfc3339_millisecond_times() {
    let doc = build(r#"{"type":"signup","plan":"pro"}"#, TsRaw::None);
    assert_eq!(
        doc.doc,
        concat!(
            r#"{"_id":"65f1a2b3c4d5e6f708091a2b","type":"signup","#,
            r#""ts":"2026-11-30T19:21:43.123Z","recv":"2026-11-30T19:21:44.000Z","#,
            r#""app":"shop","plan":"pro"}"#
        )
    );
}

#[test]
fn columns_match_the_envelope() {
    let doc = build(r#"{"type":"signup","host":"web-1"}"#, TsRaw::None);
    assert_eq!(doc.id, ID_HEX.parse::<ObjectId>().unwrap());
    assert_eq!(doc.event_type, "signup");
    assert_eq!(doc.ts_ms, TS_MS);
    assert_eq!(doc.recv_ms, RECV_MS);
    assert_eq!(doc.app.as_deref(), Some("shop"));
    assert_eq!(doc.host.as_deref(), Some("web-1"));
}

#[test]
fn big_integers_and_long_decimals_survive_byte_exact() {
    let doc = build(
        r#"{"type":"t","big":12345678901234567890123,"dec":1.000000000000000000001,"exp":1E400,"neg":-0.0}"#,
        TsRaw::None,
    );
    assert!(
        doc.doc.contains(r#""big":12345678901234567890123"#),
        "{}",
        doc.doc
    );
    assert!(
        doc.doc.contains(r#""dec":1.000000000000000000001"#),
        "{}",
        doc.doc
    );
    assert!(doc.doc.contains(r#""exp":1E400"#), "{}", doc.doc);
    assert!(doc.doc.contains(r#""neg":-0.0"#), "{}", doc.doc);
}

#[test]
fn nested_values_and_string_escapes_are_copied_verbatim() {
    let nested = r#"{"a":[1,2.50,{"b":"\u00e9\n"}],"c":null}"#;
    let doc = build(&format!(r#"{{"type":"t","nested":{nested}}}"#), TsRaw::None);
    assert!(
        doc.doc.contains(&format!(r#""nested":{nested}"#)),
        "{}",
        doc.doc
    );
}

#[test]
fn other_members_keep_their_original_order() {
    let doc = build(r#"{"z":1,"type":"t","a":2,"m":3}"#, TsRaw::None);
    assert!(
        doc.doc.ends_with(r#""app":"shop","z":1,"a":2,"m":3}"#),
        "{}",
        doc.doc
    );
}

#[test]
fn client_envelope_members_are_replaced_by_the_collectors_values() {
    let doc = build(
        r#"{"type":"t","_id":"000000000000000000000000","recv":"1999-01-01T00:00:00Z","ts":5,"app":"other","ts_raw":"forged"}"#,
        TsRaw::None,
    );
    let value = parsed(&doc);
    assert_eq!(value["_id"], ID_HEX);
    assert_eq!(value["recv"], "2026-11-30T19:21:44.000Z");
    assert_eq!(value["ts"], "2026-11-30T19:21:43.123Z");
    assert_eq!(value["app"], "shop");
    assert!(value.get("ts_raw").is_none(), "{}", doc.doc);
    for name in ["_id", "recv", "ts", "app", "type"] {
        assert_eq!(
            doc.doc.matches(&format!("\"{name}\":")).count(),
            1,
            "{name} appears once in {}",
            doc.doc
        );
    }
}

#[test]
fn no_app_means_no_app_member() {
    let mut envelope = envelope(TsRaw::None);
    envelope.app = None;
    let doc = EventDoc::from_event_json(r#"{"type":"t","app":"claimed"}"#, &envelope).unwrap();
    assert_eq!(doc.app, None);
    assert!(parsed(&doc).get("app").is_none(), "{}", doc.doc);
}

#[test]
fn corrected_ts_keeps_the_clients_ts_verbatim_as_ts_raw() {
    let doc = build(
        r#"{"type":"t","ts":"2026-11-30T19:21:40.5+01:00"}"#,
        TsRaw::FromEventTs,
    );
    let value = parsed(&doc);
    assert_eq!(value["ts_raw"], "2026-11-30T19:21:40.5+01:00");
    assert_eq!(value["ts"], "2026-11-30T19:21:43.123Z");

    let epoch = build(r#"{"type":"t","ts":1796066500000}"#, TsRaw::FromEventTs);
    assert!(
        epoch.doc.contains(r#""ts_raw":1796066500000"#),
        "{}",
        epoch.doc
    );
}

#[test]
fn ts_raw_from_event_ts_needs_a_ts_member() {
    let error = EventDoc::from_event_json(r#"{"type":"t"}"#, &envelope(TsRaw::FromEventTs))
        .expect_err("no ts to copy");
    assert!(matches!(error, DocError::MissingTsForTsRaw), "{error}");
}

#[test]
fn relayed_ts_raw_is_kept_verbatim_when_asked() {
    let doc = build(
        r#"{"type":"t","ts":"2026-11-30T19:21:43.123Z","ts_raw":"2026-11-30T20:21:40Z"}"#,
        TsRaw::KeepEventTsRaw,
    );
    assert_eq!(parsed(&doc)["ts_raw"], "2026-11-30T20:21:40Z");

    let without = build(r#"{"type":"t"}"#, TsRaw::KeepEventTsRaw);
    assert!(parsed(&without).get("ts_raw").is_none());
}

#[test]
fn given_ts_raw_json_is_stored_verbatim_and_must_be_json() {
    let doc = build(r#"{"type":"t"}"#, TsRaw::Json("1796066500000.0"));
    assert!(
        doc.doc.contains(r#""ts_raw":1796066500000.0"#),
        "{}",
        doc.doc
    );

    let error = EventDoc::from_event_json(r#"{"type":"t"}"#, &envelope(TsRaw::Json("not json")))
        .expect_err("invalid ts_raw");
    assert!(matches!(error, DocError::InvalidTsRaw { .. }), "{error}");
}

#[test]
fn host_column_is_set_only_from_a_string_host() {
    assert_eq!(
        build(r#"{"type":"t","host":"db-2"}"#, TsRaw::None)
            .host
            .as_deref(),
        Some("db-2")
    );
    assert_eq!(build(r#"{"type":"t","host":42}"#, TsRaw::None).host, None);
    assert_eq!(build(r#"{"type":"t"}"#, TsRaw::None).host, None);
}

#[test]
fn a_repeated_member_name_keeps_only_the_last_value() {
    let doc = build(r#"{"type":"a","k":1,"type":"b","k":2}"#, TsRaw::None);
    assert_eq!(doc.event_type, "b");
    assert_eq!(doc.doc.matches("\"k\":").count(), 1, "{}", doc.doc);
    assert_eq!(parsed(&doc)["k"], 2);
}

#[test]
fn a_repeated_member_name_keeps_only_the_last_value_in_a_wide_event_too() {
    // Past 32 members the duplicates are found another way (a hash set
    // instead of pairwise comparison): the same rule must hold.
    let mut members: Vec<String> = (0..40).map(|i| format!("\"m{i}\":{i}")).collect();
    members.push("\"m3\":\"last\"".into());
    members.push("\"type\":\"wide\"".into());
    members.push("\"m39\":true".into());
    let event = format!("{{{}}}", members.join(","));
    let doc = build(&event, TsRaw::None);
    let value = parsed(&doc);
    assert_eq!(value["m3"], "last");
    assert_eq!(value["m39"], true);
    assert_eq!(value["m0"], 0);
    assert_eq!(doc.doc.matches("\"m3\":").count(), 1, "{}", doc.doc);
    assert_eq!(
        value.as_object().map(|o| o.len()),
        Some(4 + 40 + 1),
        "{}",
        doc.doc
    );
}

#[test]
fn an_event_without_a_string_type_is_refused() {
    let missing = EventDoc::from_event_json(r#"{"name":"x"}"#, &envelope(TsRaw::None));
    assert!(matches!(missing, Err(DocError::MissingType)), "{missing:?}");
    for bad in [r#"{"type":""}"#, r#"{"type":7}"#, r#"{"type":null}"#] {
        let result = EventDoc::from_event_json(bad, &envelope(TsRaw::None));
        assert!(
            matches!(result, Err(DocError::InvalidType { .. })),
            "{bad}: {result:?}"
        );
    }
}

#[test]
fn text_that_is_not_one_json_object_is_refused() {
    for bad in ["[]", "1", "\"x\"", "{", r#"{"type":"t"} {}"#, ""] {
        let result = EventDoc::from_event_json(bad, &envelope(TsRaw::None));
        assert!(
            matches!(result, Err(DocError::NotAnObject { .. })),
            "{bad:?}: {result:?}"
        );
    }
}

#[test]
fn times_outside_rfc3339_years_are_refused_not_misformatted() {
    let mut envelope = envelope(TsRaw::None);
    envelope.ts_ms = i64::MAX;
    let result = EventDoc::from_event_json(r#"{"type":"t"}"#, &envelope);
    assert!(
        matches!(result, Err(DocError::TimeOutOfRange { field: "ts", .. })),
        "{result:?}"
    );
}
