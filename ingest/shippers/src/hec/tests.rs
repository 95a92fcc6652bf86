//! HEC bodies as the clients send them → the exact Helios lines, and every
//! answer's status, headers and body.

use super::query::RawMetadata;
use super::seconds::{seconds_to_ms, MAX_MS, MIN_MS};
use super::*;
use crate::TypeRules;

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 32 << 20,
        max_events: 10_000,
    }
}

fn request(endpoint: Endpoint, query: &'static str) -> Request<'static> {
    Request {
        endpoint,
        path: match endpoint {
            Endpoint::HecRaw => "/services/collector/raw",
            Endpoint::HecHealth => "/services/collector/health",
            _ => "/services/collector/event",
        },
        query,
        content_type: "application/json",
        app: "billing",
        recv_ms: 1_765_108_800_000,
    }
}

fn decode_with(
    endpoint: Endpoint,
    query: &'static str,
    body: &str,
    settings: &Settings,
) -> Result<Vec<String>, Failure> {
    let mut out = Translation::default();
    decode(
        &request(endpoint, query),
        body.as_bytes(),
        settings,
        &mut out,
    )?;
    let text = String::from_utf8(out.ndjson).unwrap();
    assert!(text.ends_with('\n'), "every line ends in a newline");
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let expected_items: Vec<Result<u32, crate::ItemRefusal>> = (0..lines.len())
        .map(|line| Ok(u32::try_from(line).unwrap()))
        .collect();
    let items: Vec<_> = out.items.iter().map(|item| item.line.clone()).collect();
    assert_eq!(items, expected_items, "one item per line, in order");
    Ok(lines)
}

fn events(body: &str) -> Result<Vec<String>, Failure> {
    decode_with(Endpoint::HecEvent, "", body, &settings())
}

fn raw(query: &'static str, body: &str) -> Result<Vec<String>, Failure> {
    decode_with(Endpoint::HecRaw, query, body, &settings())
}

fn failure_answer(failure: &Failure) -> (Answer, String) {
    failure_answer_at(Endpoint::HecEvent, failure)
}

fn failure_answer_at(endpoint: Endpoint, failure: &Failure) -> (Answer, String) {
    let mut out = Vec::new();
    let answer = render_failure(&request(endpoint, ""), failure, &mut out);
    (answer, String::from_utf8(out).unwrap())
}

fn with_type_rule(rule: &str) -> Settings {
    let mut settings = settings();
    settings.types.hec = TypeRule::parse(rule).unwrap();
    settings
}

// ---- event bodies ----

#[test]
fn splunk_handler_bodies_concatenated_without_whitespace_become_one_line_each() {
    // What splunk-handler posts: json.dumps(sort_keys=True) per record,
    // joined with nothing.
    let body = concat!(
        r#"{"event": "user logged in", "host": "web-1", "index": "main", "source": "app.py", "sourcetype": "text", "time": 1433188255.5009}"#,
        r#"{"event": "second", "host": "web-1", "index": null, "source": "app.py", "sourcetype": "text", "time": 1433188256}"#,
    );
    assert_eq!(
        events(body).unwrap(),
        [
            r#"{"type":"text","ts":1433188255500,"time":1433188255.5009,"event":"user logged in","host":"web-1","source":"app.py","sourcetype":"text","index":"main"}"#,
            r#"{"type":"text","ts":1433188256000,"time":1433188256,"event":"second","host":"web-1","source":"app.py","sourcetype":"text"}"#,
        ]
    );
}

#[test]
fn splunk_logging_bodies_with_an_object_event_and_a_string_time_keep_both_as_sent() {
    // What splunk-logging (Node) posts: time as a string with 3 decimals,
    // event as {message, severity}.
    let body =
        r#"{"time":"1765108800.123","event":{"message":{"msg":"hi","n":1},"severity":"info"}}"#;
    assert_eq!(
        events(body).unwrap(),
        [
            r#"{"type":"httpevent","ts":1765108800123,"time":"1765108800.123","event":{"message":{"msg":"hi","n":1},"severity":"info"}}"#
        ]
    );
}

#[test]
fn envelopes_separated_by_newlines_and_pretty_printed_become_single_lines() {
    let body =
        "{\"event\": {\n  \"a\": \"x\\ny\",\n  \"b\": [1,\r\n 2]\n}}\n\n  {\"event\":\"two\"}\r\n";
    assert_eq!(
        events(body).unwrap(),
        [
            r#"{"type":"httpevent","event":{  "a": "x\ny",  "b": [1, 2]}}"#,
            r#"{"type":"httpevent","event":"two"}"#,
        ]
    );
}

#[test]
fn an_event_may_be_any_json_value_and_is_kept_as_sent() {
    let body = r#"{"event":42}{"event":[1,"a"]}{"event":true}{"event":{}}{"event":"\u00e9\"q\""}"#;
    assert_eq!(
        events(body).unwrap(),
        [
            r#"{"type":"httpevent","event":42}"#,
            r#"{"type":"httpevent","event":[1,"a"]}"#,
            r#"{"type":"httpevent","event":true}"#,
            r#"{"type":"httpevent","event":{}}"#,
            r#"{"type":"httpevent","event":"\u00e9\"q\""}"#,
        ]
    );
}

#[test]
fn fields_are_kept_as_an_object_and_null_metadata_is_absent() {
    let body = r#"{"event":"e","fields":{"region":"eu","tags":["a","b"],"n":{"deep":1}},"host":null,"source":null,"sourcetype":null,"index":null,"time":null}"#;
    assert_eq!(
        events(body).unwrap(),
        [
            r#"{"type":"httpevent","event":"e","fields":{"region":"eu","tags":["a","b"],"n":{"deep":1}}}"#
        ]
    );
    assert_eq!(
        events(r#"{"event":"e","fields":null}"#).unwrap(),
        [r#"{"type":"httpevent","event":"e"}"#]
    );
}

#[test]
fn members_that_are_not_hec_are_dropped() {
    assert_eq!(
        events(r#"{"event":"e","recv":5,"app":"other","_id":"0123456789abcdef01234567","ts":1}"#)
            .unwrap(),
        [r#"{"type":"httpevent","event":"e"}"#]
    );
}

#[test]
fn metadata_of_other_json_types_is_kept_as_sent() {
    assert_eq!(
        events(r#"{"event":"e","host":7,"sourcetype":"a\"b"}"#).unwrap(),
        [r#"{"type":"a\"b","event":"e","host":7,"sourcetype":"a\"b"}"#]
    );
}

#[test]
fn time_converts_exactly_from_its_digits_in_every_json_form() {
    let ts = |time: &str| -> String {
        let body = format!(r#"{{"event":"e","time":{time}}}"#);
        let line = events(&body).unwrap().remove(0);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        value["ts"].to_string()
    };
    assert_eq!(ts("1433188255.5009"), "1433188255500");
    assert_eq!(ts("\"1433188255.5009\""), "1433188255500");
    assert_eq!(ts("1433188255"), "1433188255000");
    assert_eq!(ts("1.4331882555009E9"), "1433188255500");
    assert_eq!(ts("1433188255999.9e-3"), "1433188255999");
    assert_eq!(ts("0.0009"), "0");
    assert_eq!(ts("0"), "0");
    // A float would make this ...254999.
    assert_eq!(ts("1433188255.0"), "1433188255000");
    assert_eq!(ts("1765108800.123456789"), "1765108800123");
}

#[test]
fn seconds_to_ms_floors_and_refuses_what_is_not_a_time() {
    assert_eq!(seconds_to_ms("-1.5"), Some(-1500));
    assert_eq!(seconds_to_ms("-0.0001"), Some(-1));
    assert_eq!(seconds_to_ms("-0"), Some(0));
    assert_eq!(seconds_to_ms("00012.3456"), Some(12_345));
    assert_eq!(seconds_to_ms("1e3"), Some(1_000_000));
    assert_eq!(seconds_to_ms("1E+3"), Some(1_000_000));
    assert_eq!(seconds_to_ms("1e-999999"), Some(0));
    assert_eq!(seconds_to_ms("-1e-999999"), Some(-1));
    assert_eq!(seconds_to_ms("253402300799.999"), Some(MAX_MS));
    assert_eq!(seconds_to_ms("-62135596800"), Some(MIN_MS));
    for bad in [
        "",
        "-",
        "abc",
        "1.",
        ".5",
        "1e",
        "1e1234567",
        "1,5",
        " 1",
        "1 ",
        "+1",
        "0x10",
        "253402300800",
        "-62135596800.001",
        "1e999999",
        &"9".repeat(400),
    ] {
        assert_eq!(seconds_to_ms(bad), None, "{bad:?}");
    }
    assert_eq!(
        seconds_to_ms(&format!("1.{}", "0".repeat(5000))),
        Some(1000)
    );
}

#[test]
fn an_envelope_without_time_has_no_ts() {
    assert_eq!(
        events(r#"{"event":"e","host":"h"}"#).unwrap(),
        [r#"{"type":"httpevent","event":"e","host":"h"}"#]
    );
}

#[test]
fn a_time_that_is_not_epoch_seconds_refuses_the_request_naming_the_event() {
    for time in [r#""soon""#, "true", "{}", "[1]", r#""""#, "1e20"] {
        let body = format!(r#"{{"event":"ok"}}{{"event":"e","time":{time}}}"#);
        let failure = events(&body).unwrap_err();
        assert!(
            matches!(failure, Failure::Malformed(_)),
            "{time}: {failure:?}"
        );
        let (answer, body) = failure_answer(&failure);
        assert_eq!(answer.status, 400);
        assert_eq!(
            body, r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#,
            "{time}"
        );
    }
}

#[test]
fn fields_that_are_not_an_object_refuse_the_request() {
    let failure = events(r#"{"event":"e","fields":["a"]}"#).unwrap_err();
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(
        body,
        r#"{"text":"Invalid data format","code":6,"invalid-event-number":0}"#
    );
}

#[test]
fn a_missing_event_is_code_12_naming_the_envelope() {
    let failure = events(r#"{"event":"a"} {"event":"b"} {"host":"h"} {"event":"c"}"#).unwrap_err();
    assert_eq!(failure, Failure::EventRequired { index: 2 });
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(
        body,
        r#"{"text":"Event field is required","code":12,"invalid-event-number":2}"#
    );
}

#[test]
fn an_empty_or_null_event_is_code_13() {
    assert_eq!(
        events(r#"{"event":""}"#).unwrap_err(),
        Failure::EventBlank { index: 0 }
    );
    let failure = events(r#"{"event":"x"}{"event":null}"#).unwrap_err();
    assert_eq!(failure, Failure::EventBlank { index: 1 });
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(
        body,
        r#"{"text":"Event field cannot be blank","code":13,"invalid-event-number":1}"#
    );
}

#[test]
fn an_empty_body_is_code_5() {
    for body in ["", " \r\n\t "] {
        let failure = events(body).unwrap_err();
        assert_eq!(failure, Failure::NoData);
        let (answer, text) = failure_answer(&failure);
        assert_eq!(
            (answer.status, text.as_str()),
            (400, r#"{"text":"No data","code":5}"#)
        );
    }
}

#[test]
fn a_body_that_is_not_envelopes_is_code_6_naming_the_first_bad_one() {
    let cases = [
        ("not json", 0),
        (r#"{"event":"a"}{"event":"b"} trailing"#, 2),
        (r#"[{"event":"a"}]"#, 0),
        (r#""just a string""#, 0),
        (r#"{"event":"a"},{"event":"b"}"#, 1),
        (r#"{"event":"a""#, 0),
        (r#"{"event":"a","event":"b"}"#, 0),
        (r#"{"event":"a"}{"event":"b","host":"x","host":"y"}"#, 1),
    ];
    for (body, number) in cases {
        let failure = events(body).unwrap_err();
        assert!(
            matches!(failure, Failure::Malformed(_)),
            "{body}: {failure:?}"
        );
        let (answer, text) = failure_answer(&failure);
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(
            text,
            format!(r#"{{"text":"Invalid data format","code":6,"invalid-event-number":{number}}}"#),
            "{body}"
        );
    }
}

#[test]
fn a_body_that_is_not_utf8_is_code_6_without_an_event_number() {
    let mut out = Translation::default();
    let failure = decode(
        &request(Endpoint::HecEvent, ""),
        b"{\"event\":\"\xff\"}",
        &settings(),
        &mut out,
    )
    .unwrap_err();
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(body, r#"{"text":"Invalid data format","code":6}"#);
}

#[test]
fn more_events_than_max_events_is_413() {
    let mut settings = settings();
    settings.max_events = 2;
    let body = r#"{"event":"a"}{"event":"b"}"#;
    assert_eq!(
        decode_with(Endpoint::HecEvent, "", body, &settings)
            .unwrap()
            .len(),
        2
    );
    let failure = decode_with(
        Endpoint::HecEvent,
        "",
        r#"{"event":"a"}{"event":"b"}{"event":"c"}"#,
        &settings,
    )
    .unwrap_err();
    assert_eq!(failure, Failure::TooManyEvents);
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 413);
    assert_eq!(body, r#"{"text":"Content too large","code":6}"#);
}

#[test]
fn a_translation_past_max_decoded_bytes_is_413() {
    let mut settings = settings();
    settings.max_decoded_bytes = 64;
    let failure = decode_with(
        Endpoint::HecRaw,
        "sourcetype=a-rather-long-sourcetype-name",
        "a\nb\nc\n",
        &settings,
    )
    .unwrap_err();
    assert!(matches!(failure, Failure::TooLarge(_)), "{failure:?}");
    assert_eq!(failure_answer(&failure).0.status, 413);
}

// ---- type rules ----

#[test]
fn the_default_type_is_the_sourcetype_else_httpevent() {
    assert_eq!(default_type_rule().as_str(), "$sourcetype|httpevent");
    assert_eq!(
        events(r#"{"event":"a","sourcetype":"access_combined"}{"event":"b","sourcetype":""}"#)
            .unwrap(),
        [
            r#"{"type":"access_combined","event":"a","sourcetype":"access_combined"}"#,
            r#"{"type":"httpevent","event":"b","sourcetype":""}"#,
        ]
    );
}

#[test]
fn an_escaped_sourcetype_gives_its_unescaped_text_as_type() {
    assert_eq!(
        events(r#"{"event":"a","sourcetype":"caf\u00e9"}"#).unwrap(),
        [r#"{"type":"café","event":"a","sourcetype":"caf\u00e9"}"#]
    );
}

#[test]
fn a_type_rule_may_read_inside_fields_and_event() {
    let settings = with_type_rule("$fields.service.name|$event.kind|$host|hec");
    let body = concat!(
        r#"{"event":"a","fields":{"service.name":"checkout"}}"#,
        r#"{"event":{"kind":"audit"},"fields":{}}"#,
        r#"{"event":"c","host":"web-1"}"#,
        r#"{"event":"d"}"#,
    );
    let types: Vec<String> = decode_with(Endpoint::HecEvent, "", body, &settings)
        .unwrap()
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types, ["checkout", "audit", "web-1", "hec"]);
}

#[test]
fn a_type_rule_may_read_the_time_and_ts() {
    let settings = with_type_rule("$time|none");
    let lines = decode_with(
        Endpoint::HecEvent,
        "",
        r#"{"event":"a","time":"12.5"}"#,
        &settings,
    )
    .unwrap();
    assert!(
        lines[0].starts_with(r#"{"type":"12.5","ts":12500"#),
        "{}",
        lines[0]
    );
    let settings = with_type_rule("$ts|none");
    let lines = decode_with(
        Endpoint::HecEvent,
        "",
        r#"{"event":"a","time":12.5}"#,
        &settings,
    )
    .unwrap();
    assert!(lines[0].starts_with(r#"{"type":"12500","#), "{}", lines[0]);
}

// ---- raw bodies ----

#[test]
fn raw_lines_become_events_with_the_query_metadata() {
    assert_eq!(
        raw(
            "channel=00872DC6-AC83-4EDE-8AFE-8413C3825C4C&sourcetype=nginx%3Aaccess&host=web+1&source=%2Fvar%2Flog%2Fa.log&index=main&time=1433188255.5009",
            "first line\r\n\nsecond \"quoted\" line\n\r\nthird",
        )
        .unwrap(),
        [
            r#"{"type":"nginx:access","ts":1433188255500,"time":"1433188255.5009","event":"first line","host":"web 1","source":"/var/log/a.log","sourcetype":"nginx:access","index":"main"}"#,
            r#"{"type":"nginx:access","ts":1433188255500,"time":"1433188255.5009","event":"second \"quoted\" line","host":"web 1","source":"/var/log/a.log","sourcetype":"nginx:access","index":"main"}"#,
            r#"{"type":"nginx:access","ts":1433188255500,"time":"1433188255.5009","event":"third","host":"web 1","source":"/var/log/a.log","sourcetype":"nginx:access","index":"main"}"#,
        ]
    );
}

#[test]
fn raw_lines_without_a_query_carry_only_type_and_event() {
    assert_eq!(
        raw("", "{\"looks\":\"like json\"}\n").unwrap(),
        [r#"{"type":"httpevent","event":"{\"looks\":\"like json\"}"}"#]
    );
}

#[test]
fn raw_bytes_that_are_not_utf8_become_replacement_characters() {
    let mut out = Translation::default();
    decode(
        &request(Endpoint::HecRaw, ""),
        b"caf\xe9\n",
        &settings(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out.ndjson).unwrap(),
        "{\"type\":\"httpevent\",\"event\":\"caf\u{fffd}\"}\n"
    );
}

#[test]
fn a_raw_body_with_only_empty_lines_is_code_5() {
    assert_eq!(raw("", "").unwrap_err(), Failure::NoData);
    assert_eq!(raw("", "\n\r\n\n").unwrap_err(), Failure::NoData);
}

#[test]
fn a_raw_time_that_is_not_epoch_seconds_is_code_6() {
    let failure = raw("time=yesterday", "a\n").unwrap_err();
    let (answer, body) = failure_answer_at(Endpoint::HecRaw, &failure);
    assert_eq!(answer.status, 400);
    assert_eq!(body, r#"{"text":"Invalid data format","code":6}"#);
}

#[test]
fn query_parameters_are_percent_decoded_first_one_wins_and_empty_is_absent() {
    assert_eq!(
        RawMetadata::parse(
            "host=a%20b&host=second&source=&sourcetype=x%2&index=%E2%82%AC&time=+1&&junk"
        ),
        RawMetadata {
            host: Some("a b".into()),
            source: None,
            sourcetype: Some("x%2".into()),
            index: Some("€".into()),
            time: Some(" 1".into()),
        }
    );
    assert_eq!(
        RawMetadata::parse("%68ost=h&index=%FF"),
        RawMetadata {
            host: Some("h".into()),
            index: Some("\u{fffd}".into()),
            ..RawMetadata::default()
        }
    );
}

// ---- answers ----

#[test]
fn success_is_200_code_0() {
    let mut out = Translation::default();
    let req = request(Endpoint::HecEvent, "");
    decode(&req, br#"{"event":"a"}"#, &settings(), &mut out).unwrap();
    let mut body = Vec::new();
    let answer = render_success(&req, &out, &[], &mut body);
    assert_eq!(
        answer,
        Answer {
            status: 200,
            content_type: "application/json",
            headers: "",
            retry_after: false
        }
    );
    assert_eq!(body, br#"{"text":"Success","code":0}"#);
}

#[test]
fn lines_refused_by_validation_answer_code_6_naming_the_first() {
    let mut out = Translation::default();
    let req = request(Endpoint::HecEvent, "");
    decode(
        &req,
        br#"{"event":"a"}{"event":"b"}{"event":"c"}{"event":"d"}"#,
        &settings(),
        &mut out,
    )
    .unwrap();
    let rejected = [
        LineReject {
            line: 1,
            error: "too deep",
        },
        LineReject {
            line: 3,
            error: "duplicate member",
        },
    ];
    let mut body = Vec::new();
    let answer = render_success(&req, &out, &rejected, &mut body);
    assert_eq!((answer.status, answer.retry_after), (400, false));
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"text":"Invalid data format","code":6,"invalid-event-number":1}"#
    );
}

#[test]
fn every_failure_has_splunks_status_and_body() {
    let cases: [(Failure, u16, &str); 13] = [
        (
            Failure::MissingKey,
            401,
            r#"{"text":"Token is required","code":2}"#,
        ),
        (
            Failure::UnknownKey,
            403,
            r#"{"text":"Invalid token","code":4}"#,
        ),
        (
            Failure::Forbidden("key role read".into()),
            403,
            r#"{"text":"Invalid token","code":4}"#,
        ),
        (Failure::NoData, 400, r#"{"text":"No data","code":5}"#),
        (
            Failure::Malformed("from the collector".into()),
            400,
            r#"{"text":"Invalid data format","code":6}"#,
        ),
        (
            Failure::BadEncoding("gzip: invalid header".into()),
            400,
            r#"{"text":"Invalid data format","code":6}"#,
        ),
        (
            Failure::TooLarge("body over 8 MiB".into()),
            413,
            r#"{"text":"Content too large","code":6}"#,
        ),
        (
            Failure::UnsupportedMediaType("text/xml".into()),
            415,
            r#"{"text":"Unsupported media type","code":6}"#,
        ),
        (
            Failure::Busy("journal budget".into()),
            503,
            r#"{"text":"Server is busy","code":9}"#,
        ),
        (
            Failure::NotFound,
            404,
            r#"{"text":"The requested URL was not found on this server.","code":404}"#,
        ),
        (
            Failure::MethodNotAllowed,
            405,
            r#"{"text":"Method not allowed","code":405}"#,
        ),
        (
            Failure::Internal("bug".into()),
            500,
            r#"{"text":"Internal server error","code":8}"#,
        ),
        (
            Failure::EventRequired { index: 0 },
            400,
            r#"{"text":"Event field is required","code":12,"invalid-event-number":0}"#,
        ),
    ];
    for (failure, status, expected) in cases {
        let (answer, body) = failure_answer(&failure);
        assert_eq!(answer.status, status, "{failure:?}");
        assert_eq!(body, expected, "{failure:?}");
        assert_eq!(answer.content_type, "application/json");
        assert_eq!(answer.retry_after, status == 503, "{failure:?}");
        assert_eq!(answer.headers, "", "{failure:?}");
    }
}

#[test]
fn health_is_code_17_when_ready_and_503_code_18_when_not() {
    let mut body = Vec::new();
    let answer = render_health(true, &mut body);
    assert_eq!((answer.status, answer.retry_after), (200, false));
    assert_eq!(body, br#"{"text":"HEC is healthy","code":17}"#);
    body.clear();
    let answer = render_health(false, &mut body);
    assert_eq!(answer.status, 503);
    assert_eq!(
        body,
        br#"{"text":"HEC is unhealthy, queues are full","code":18}"#
    );
}

#[test]
fn the_crate_dispatch_routes_hec_paths_here() {
    let req = request(Endpoint::HecRaw, "sourcetype=s");
    let mut out = Translation::default();
    crate::decode(&req, b"line\n", &settings(), &mut out).unwrap();
    assert_eq!(
        out.ndjson,
        b"{\"type\":\"s\",\"event\":\"line\",\"sourcetype\":\"s\"}\n"
    );
    let mut body = Vec::new();
    let answer = crate::render_probe(&request(Endpoint::HecHealth, ""), true, &mut body);
    assert_eq!(answer.status, 200);
    assert_eq!(body, br#"{"text":"HEC is healthy","code":17}"#);
}
