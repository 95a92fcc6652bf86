//! Bulk bodies as clients send them → the exact Helios lines and answers.

use serde_json::{json, Value};

use super::*;
use crate::{derived_id, Endpoint, ItemRefusal, Protocol, TypeRules};

const APP: &str = "shop";

fn settings() -> Settings {
    Settings {
        types: TypeRules::default(),
        max_decoded_bytes: 1 << 20,
        max_events: 100,
    }
}

fn request<'a>(path: &'a str, content_type: &'a str) -> Request<'a> {
    Request {
        endpoint: Endpoint::EsBulk,
        path,
        query: "",
        content_type,
        app: APP,
        recv_ms: 1_765_106_100_000,
    }
}

fn decode_with(req: &Request<'_>, body: &str, settings: &Settings) -> Result<Translation, Failure> {
    let mut out = Translation::default();
    decode(req, body.as_bytes(), settings, &mut out).map(|()| out)
}

fn decode_ok(path: &str, body: &str) -> Translation {
    decode_with(&request(path, "application/x-ndjson"), body, &settings()).unwrap()
}

fn decode_err(path: &str, body: &str) -> Failure {
    decode_with(&request(path, "application/x-ndjson"), body, &settings()).unwrap_err()
}

/// The event lines as text, each checked to end in `\n`.
fn lines(translation: &Translation) -> Vec<String> {
    let text = std::str::from_utf8(&translation.ndjson).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines().map(str::to_owned).collect()
}

fn id(index: &str, id: &str) -> String {
    derived_id(APP, Protocol::Elasticsearch, &[index, id])
}

fn refusal_of(item: &crate::Item) -> &ItemRefusal {
    item.line.as_ref().unwrap_err()
}

fn failure_answer(failure: &Failure) -> (Answer, Value) {
    let mut out = Vec::new();
    let answer = render_failure(&request("/_bulk", ""), failure, &mut out);
    (answer, serde_json::from_slice(&out).unwrap())
}

fn success_answer(translation: &Translation, rejected: &[LineReject<'_>]) -> (Answer, Value) {
    let mut out = Vec::new();
    let answer = render_success(&request("/_bulk", ""), translation, rejected, 7, &mut out);
    (answer, serde_json::from_slice(&out).unwrap())
}

// ---- decoding -------------------------------------------------------------

#[test]
fn an_index_item_becomes_one_event_with_the_source_members_in_order() {
    let t = decode_ok(
        "/_bulk",
        "{\"index\":{\"_index\":\"logs\"}}\n{\"msg\":\"hi\",\"n\":1,\"a\":{\"b\":[1,2]}}\n",
    );
    assert_eq!(
        lines(&t),
        [r#"{"type":"logs","es_index":"logs","msg":"hi","n":1,"a":{"b":[1,2]}}"#]
    );
    assert_eq!(t.items.len(), 1);
    assert_eq!(t.items[0].line, Ok(0));
    assert_eq!(
        t.items[0].echo,
        Echo::Es {
            action: "index".into(),
            index: "logs".into(),
            id: String::new()
        }
    );
}

#[test]
fn an_item_with_an_id_gets_a_derived_helios_id_and_keeps_the_id_as_es_id() {
    let t = decode_ok(
        "/_bulk",
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"a-1\"}}\n{\"msg\":\"hi\"}\n",
    );
    let expected = format!(
        r#"{{"_id":"{}","type":"logs","es_index":"logs","es_id":"a-1","msg":"hi"}}"#,
        id("logs", "a-1")
    );
    assert_eq!(lines(&t), [expected]);
}

#[test]
fn derived_ids_repeat_for_a_retried_bulk_and_differ_per_app_index_and_id() {
    let body = "{\"index\":{\"_index\":\"logs\",\"_id\":\"7\"}}\n{}\n";
    assert_eq!(
        lines(&decode_ok("/_bulk", body)),
        lines(&decode_ok("/_bulk", body))
    );
    let mut other_app = request("/_bulk", "");
    other_app.app = "web";
    let other = decode_with(&other_app, body, &settings()).unwrap();
    assert_ne!(lines(&other), lines(&decode_ok("/_bulk", body)));
    assert_ne!(id("logs", "7"), id("logs", "8"));
    assert_ne!(id("logs", "7"), id("logs2", "7"));
}

#[test]
fn a_numeric_id_is_taken_as_its_text() {
    let t = decode_ok("/_bulk", "{\"index\":{\"_index\":\"l\",\"_id\":42}}\n{}\n");
    assert_eq!(
        lines(&t),
        [format!(
            r#"{{"_id":"{}","type":"l","es_index":"l","es_id":"42"}}"#,
            id("l", "42")
        )]
    );
}

#[test]
fn the_path_index_is_the_default_and_an_action_index_overrides_it() {
    let t = decode_ok(
        "/app-logs/_bulk",
        "{\"index\":{}}\n{\"m\":1}\n{\"index\":{\"_index\":\"other\"}}\n{\"m\":2}\n",
    );
    assert_eq!(
        lines(&t),
        [
            r#"{"type":"app-logs","es_index":"app-logs","m":1}"#,
            r#"{"type":"other","es_index":"other","m":2}"#
        ]
    );
}

#[test]
fn the_path_index_is_percent_decoded() {
    let t = decode_ok("/logs%2D%C3%A9/_bulk", "{\"index\":{}}\n{}\n");
    assert_eq!(lines(&t), [r#"{"type":"logs-é","es_index":"logs-é"}"#]);
}

#[test]
fn a_path_index_with_a_bad_percent_sequence_refuses_the_request() {
    for path in [
        "/logs%2/_bulk",
        "/logs%zz/_bulk",
        "/logs%ff/_bulk",
        "/l%+1/_bulk",
    ] {
        let failure = decode_err(path, "{\"index\":{}}\n{}\n");
        assert!(
            matches!(failure, Failure::Malformed(_)),
            "{path}: {failure:?}"
        );
    }
}

#[test]
fn paths_name_an_index_only_in_the_bulk_shapes() {
    assert_eq!(path_index("/_bulk"), Some(""));
    assert_eq!(path_index("/logs/_bulk"), Some("logs"));
    assert_eq!(path_index("/logs%2A/_bulk"), Some("logs%2A"));
    assert_eq!(path_index("//_bulk"), None);
    assert_eq!(path_index("/a/b/_bulk"), None);
    assert_eq!(path_index("/_bulk/"), None);
    assert_eq!(path_index("_bulk"), None);
    assert_eq!(path_index("/logs/_bulkx"), None);
}

#[test]
fn an_rfc3339_timestamp_sets_ts_in_epoch_ms_and_stays_as_sent() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"@timestamp\":\"2025-12-07T12:15:00.123+01:00\",\"m\":1}\n",
    );
    assert_eq!(
        lines(&t),
        [
            r#"{"type":"l","ts":1765106100123,"es_index":"l","@timestamp":"2025-12-07T12:15:00.123+01:00","m":1}"#
        ]
    );
}

#[test]
fn a_timestamp_without_zone_is_utc_and_an_integer_is_epoch_ms() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"@timestamp\":\"2025-12-07T11:15:00\"}\n\
         {\"index\":{}}\n{\"@timestamp\":1765106100123}\n",
    );
    let ts: Vec<Value> = lines(&t)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["ts"].clone())
        .collect();
    assert_eq!(
        ts,
        [json!(1_765_106_100_000_i64), json!(1_765_106_100_123_i64)]
    );
}

#[test]
fn an_unparseable_timestamp_leaves_ts_out_and_is_kept_verbatim() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"@timestamp\":\"last tuesday\"}\n\
         {\"index\":{}}\n{\"@timestamp\":1.5}\n",
    );
    assert_eq!(
        lines(&t),
        [
            r#"{"type":"l","es_index":"l","@timestamp":"last tuesday"}"#,
            r#"{"type":"l","es_index":"l","@timestamp":1.5}"#
        ]
    );
}

#[test]
fn source_members_with_reserved_names_are_kept_with_a_source_prefix() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"_id\":1,\"type\":\"t\",\"ts\":2,\"ts_raw\":3,\"recv\":4,\"app\":\"x\",\
         \"es_index\":5,\"es_id\":6,\"typed\":7}\n",
    );
    assert_eq!(
        lines(&t),
        [concat!(
            r#"{"type":"l","es_index":"l","source._id":1,"source.type":"t","source.ts":2,"#,
            r#""source.ts_raw":3,"source.recv":4,"source.app":"x","source.es_index":5,"#,
            r#""source.es_id":6,"typed":7}"#
        )]
    );
}

#[test]
fn member_names_are_written_back_with_their_escapes() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"a\\\"b\":1,\"\\u00e9\\n\":\"\\u0000\"}\n",
    );
    let event: Value = serde_json::from_str(&lines(&t)[0]).unwrap();
    assert_eq!(event["a\"b"], json!(1));
    assert_eq!(event["é\n"], json!("\u{0}"));
}

#[test]
fn duplicate_source_members_are_kept_for_the_collector_to_refuse() {
    let t = decode_ok("/l/_bulk", "{\"index\":{}}\n{\"m\":1,\"m\":2}\n");
    assert_eq!(lines(&t), [r#"{"type":"l","es_index":"l","m":1,"m":2}"#]);
}

#[test]
fn the_type_rule_reads_source_members_by_their_output_names() {
    let mut settings = settings();
    settings.types.elasticsearch =
        TypeRule::parse("$event.dataset|$source.type|$es_index|elasticsearch").unwrap();
    let req = request("/_bulk", "");
    let body = "{\"index\":{\"_index\":\"i\"}}\n{\"event\":{\"dataset\":\"nginx.access\"}}\n\
                {\"index\":{\"_index\":\"i\"}}\n{\"event.dataset\":\"flat\",\"event\":{\"dataset\":\"nested\"}}\n\
                {\"index\":{\"_index\":\"i\"}}\n{\"type\":\"from-source\"}\n\
                {\"index\":{\"_index\":\"i\"}}\n{\"event\":{\"dataset\":\"\"}}\n\
                {\"index\":{}}\n{}\n";
    let t = decode_with(&req, body, &settings).unwrap();
    let types: Vec<String> = t
        .items
        .iter()
        .filter(|i| i.line.is_ok())
        .zip(lines(&t))
        .map(|(_, l)| {
            serde_json::from_str::<Value>(&l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(types, ["nginx.access", "flat", "from-source", "i"]);
    assert_eq!(
        refusal_of(&t.items[4]).kind,
        "action_request_validation_exception"
    );
}

#[test]
fn the_default_type_is_the_index() {
    assert_eq!(default_type_rule().as_str(), "$es_index|elasticsearch");
}

#[test]
fn update_and_delete_are_refused_per_item_and_keep_the_pairing() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"delete\":{\"_id\":\"1\"}}\n\
         {\"update\":{\"_id\":\"2\"}}\n{\"doc\":{\"index\":{}}}\n\
         {\"index\":{}}\n{\"m\":3}\n",
    );
    assert_eq!(lines(&t), [r#"{"type":"l","es_index":"l","m":3}"#]);
    assert_eq!(t.items.len(), 3);
    for item in &t.items[..2] {
        let refusal = refusal_of(item);
        assert_eq!(refusal.status, 400);
        assert_eq!(refusal.kind, "illegal_argument_exception");
        assert_eq!(
            refusal.reason,
            "Helios stores events; update/delete are not supported"
        );
    }
    assert_eq!(
        t.items[0].echo,
        Echo::Es {
            action: "delete".into(),
            index: "l".into(),
            id: "1".into()
        }
    );
    assert_eq!(t.items[2].line, Ok(0));
}

#[test]
fn an_item_without_any_index_is_refused_alone() {
    let t = decode_ok(
        "/_bulk",
        "{\"index\":{}}\n{\"m\":1}\n{\"index\":{\"_index\":\"l\"}}\n{}\n",
    );
    let refusal = refusal_of(&t.items[0]);
    assert_eq!(
        (refusal.status, refusal.kind, refusal.reason.as_str()),
        (
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;"
        )
    );
    assert_eq!(t.items[1].line, Ok(0));
    assert_eq!(lines(&t).len(), 1);
}

#[test]
fn an_empty_or_too_long_id_is_refused_alone() {
    let long = "x".repeat(513);
    let body = format!(
        "{{\"index\":{{\"_id\":\"\"}}}}\n{{}}\n{{\"index\":{{\"_id\":\"{long}\"}}}}\n{{}}\n\
         {{\"index\":{{\"_id\":\"{}\"}}}}\n{{}}\n",
        &long[..512]
    );
    let t = decode_ok("/l/_bulk", &body);
    assert_eq!(
        refusal_of(&t.items[0]).kind,
        "action_request_validation_exception"
    );
    assert!(refusal_of(&t.items[1]).reason.contains("too long"));
    assert_eq!(t.items[2].line, Ok(0));
}

#[test]
fn a_source_that_is_not_a_json_object_is_refused_alone_as_mapper_parsing() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n[1,2]\n{\"index\":{}}\n\"text\"\n{\"index\":{}}\n{\"m\":\n\
         {\"index\":{}}\n\n{\"index\":{}}\n{\"ok\":true}\n{\"index\":{}}\n{} trailing\n",
    );
    assert_eq!(t.items.len(), 6);
    for position in [0, 1, 2, 3, 5] {
        let refusal = refusal_of(&t.items[position]);
        assert_eq!(
            (refusal.status, refusal.kind),
            (400, "mapper_parsing_exception")
        );
    }
    assert_eq!(
        refusal_of(&t.items[3]).reason,
        "failed to parse, document is empty"
    );
    assert_eq!(t.items[4].line, Ok(0));
    assert_eq!(lines(&t), [r#"{"type":"l","es_index":"l","ok":true}"#]);
}

#[test]
fn a_source_that_is_not_utf8_is_refused_alone() {
    let mut out = Translation::default();
    let body = b"{\"index\":{}}\n{\"m\":\"\xff\"}\n{\"index\":{}}\n{}\n";
    decode(&request("/l/_bulk", ""), body, &settings(), &mut out).unwrap();
    assert_eq!(refusal_of(&out.items[0]).kind, "mapper_parsing_exception");
    assert_eq!(out.items[1].line, Ok(0));
}

#[test]
fn blank_lines_between_pairs_crlf_and_a_missing_final_newline_are_accepted() {
    let t = decode_ok(
        "/l/_bulk",
        "\n{\"index\":{}}\r\n{\"m\":1}\r\n\n  \n{\"create\":{}}\n{\"m\":2}",
    );
    assert_eq!(
        lines(&t),
        [
            r#"{"type":"l","es_index":"l","m":1}"#,
            r#"{"type":"l","es_index":"l","m":2}"#
        ]
    );
}

#[test]
fn routing_pipeline_and_legacy_type_are_accepted_and_ignored() {
    let t = decode_ok(
        "/_bulk",
        "{\"index\":{\"_index\":\"l\",\"_type\":\"_doc\",\"routing\":\"r\",\"pipeline\":\"p\",\
         \"dynamic_templates\":{\"a\":\"b\"}}}\n{\"m\":1}\n",
    );
    assert_eq!(lines(&t), [r#"{"type":"l","es_index":"l","m":1}"#]);
}

#[test]
fn an_action_line_that_is_not_json_refuses_the_request_as_x_content_parse() {
    let failure = decode_err("/l/_bulk", "{\"index\":{}}\n{}\nnot json\n{}\n");
    let Failure::Malformed(reason) = &failure else {
        panic!("{failure:?}")
    };
    assert!(reason.contains("[3]"), "{reason}");
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(body["error"]["type"], "x_content_parse_exception");
    assert!(body["error"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("[3] action/metadata line is not JSON"));
}

#[test]
fn a_malformed_action_line_refuses_the_request_as_elasticsearch_does() {
    for (line, reason) in [
        (
            "{\"upsert\":{}}",
            "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
        ),
        ("[1]", "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"),
        ("{}", "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"),
        (
            "{\"index\":{},\"create\":{}}",
            "Malformed action/metadata line [1], expected END_OBJECT but found [FIELD_NAME]",
        ),
        ("{\"index\":5}", "Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_NUMBER]"),
        (
            "{\"index\":{\"_id\":{}}}",
            "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_OBJECT]",
        ),
    ] {
        let failure = decode_err("/l/_bulk", &format!("{line}\n{{}}\n"));
        assert_eq!(failure, Failure::Malformed(reason.into()), "{line}");
        let (answer, body) = failure_answer(&failure);
        assert_eq!(answer.status, 400);
        assert_eq!(body["error"]["type"], "illegal_argument_exception");
        assert_eq!(body["error"]["reason"], reason);
    }
}

#[test]
fn an_action_without_its_source_line_refuses_the_request() {
    let failure = decode_err("/l/_bulk", "{\"index\":{}}\n{}\n{\"index\":{}}\n");
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 400);
    assert_eq!(body["error"]["type"], "action_request_validation_exception");
}

#[test]
fn a_delete_needs_no_source_line_even_last() {
    let t = decode_ok("/l/_bulk", "{\"delete\":{\"_id\":\"1\"}}");
    assert_eq!(t.items.len(), 1);
    assert!(t.ndjson.is_empty());
}

#[test]
fn an_empty_body_is_refused_as_no_requests_added() {
    for body in ["", "\n", "\n\r\n  \n"] {
        assert_eq!(decode_err("/l/_bulk", body), Failure::NoData, "{body:?}");
    }
    let (answer, body) = failure_answer(&Failure::NoData);
    assert_eq!(answer.status, 400);
    assert_eq!(
        body,
        json!({"error": {"root_cause": [{"type": "action_request_validation_exception",
            "reason": "Validation Failed: 1: no requests added;"}],
            "type": "action_request_validation_exception",
            "reason": "Validation Failed: 1: no requests added;"}, "status": 400})
    );
}

#[test]
fn more_items_than_max_events_refuse_the_request() {
    let mut settings = settings();
    settings.max_events = 2;
    let body = "{\"index\":{}}\n{}\n{\"delete\":{}}\n{\"index\":{}}\n{}\n";
    let failure = decode_with(&request("/l/_bulk", ""), body, &settings).unwrap_err();
    assert_eq!(failure, Failure::TooManyEvents);
    settings.max_events = 3;
    assert!(decode_with(&request("/l/_bulk", ""), body, &settings).is_ok());
}

#[test]
fn the_bulk_content_types_and_none_are_accepted() {
    for content_type in [
        "",
        "application/json",
        "application/x-ndjson",
        "application/json; charset=UTF-8",
        "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
        "application/vnd.elasticsearch+json;compatible-with=7",
    ] {
        let req = request("/l/_bulk", content_type);
        assert!(
            decode_with(&req, "{\"index\":{}}\n{}\n", &settings()).is_ok(),
            "{content_type}"
        );
    }
}

#[test]
fn another_content_type_is_refused_with_elasticsearchs_406() {
    let req = request("/l/_bulk", "text/plain");
    let failure = decode_with(&req, "{\"index\":{}}\n{}\n", &settings()).unwrap_err();
    assert_eq!(failure, Failure::UnsupportedMediaType("text/plain".into()));
    let (answer, body) = failure_answer(&failure);
    assert_eq!(answer.status, 406);
    assert_eq!(answer.headers, "X-Elastic-Product: Elasticsearch\r\n");
    assert_eq!(
        body,
        json!({"error": "Content-Type header [text/plain] is not supported", "status": 406})
    );
}

// ---- answers --------------------------------------------------------------

#[test]
fn a_fully_stored_bulk_answers_every_item_created_in_order() {
    let t = decode_ok(
        "/_bulk",
        "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n{\"create\":{\"_index\":\"b\"}}\n{}\n",
    );
    let (answer, body) = success_answer(&t, &[]);
    assert_eq!(
        answer,
        Answer {
            status: 200,
            content_type: "application/json",
            headers: "X-Elastic-Product: Elasticsearch\r\n",
            retry_after: false
        }
    );
    let shards = json!({"total": 1, "successful": 1, "failed": 0});
    assert_eq!(
        body,
        json!({"took": 7, "errors": false, "items": [
            {"index": {"_index": "a", "_id": "1", "_version": 1, "result": "created",
                "_shards": shards, "_seq_no": 0, "_primary_term": 1, "status": 201}},
            {"create": {"_index": "b", "_id": null, "_version": 1, "result": "created",
                "_shards": shards, "_seq_no": 0, "_primary_term": 1, "status": 201}}
        ]})
    );
}

#[test]
fn refused_items_and_lines_the_collector_refused_answer_400_in_place() {
    let t = decode_ok(
        "/l/_bulk",
        "{\"index\":{}}\n{\"m\":1}\n{\"delete\":{\"_id\":\"d\"}}\n{\"index\":{}}\n{\"m\":1,\"m\":2}\n\
         {\"index\":{}}\n[]\n{\"index\":{}}\n{\"m\":3}\n",
    );
    assert_eq!(lines(&t).len(), 3);
    let rejected = [LineReject {
        line: 1,
        error: "duplicate member m",
    }];
    let (answer, body) = success_answer(&t, &rejected);
    assert_eq!(answer.status, 200);
    assert_eq!(body["errors"], json!(true));
    let statuses: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item.as_object().unwrap().values().next().unwrap()["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            &json!(201),
            &json!(400),
            &json!(400),
            &json!(400),
            &json!(201)
        ]
    );
    assert_eq!(
        body["items"][1],
        json!({"delete": {"_index": "l", "_id": "d", "status": 400, "error": {
            "type": "illegal_argument_exception",
            "reason": "Helios stores events; update/delete are not supported"}}})
    );
    assert_eq!(
        body["items"][2]["index"]["error"],
        json!({"type": "mapper_parsing_exception", "reason": "failed to parse: duplicate member m"})
    );
    assert_eq!(
        body["items"][3]["index"]["error"]["type"],
        "mapper_parsing_exception"
    );
}

#[test]
fn a_bulk_whose_items_all_fail_still_answers_200_with_errors() {
    let t = decode_ok("/_bulk", "{\"index\":{}}\n{}\n");
    let (answer, body) = success_answer(&t, &[]);
    assert_eq!(answer.status, 200);
    assert_eq!(body["errors"], json!(true));
    assert_eq!(body["items"][0]["index"]["_index"], Value::Null);
}

#[test]
fn every_failure_answers_in_elasticsearchs_error_shape() {
    let cases: [(Failure, u16, &str); 13] = [
        (Failure::MissingKey, 401, "security_exception"),
        (Failure::UnknownKey, 401, "security_exception"),
        (
            Failure::Forbidden("relay role".into()),
            403,
            "security_exception",
        ),
        (
            Failure::Malformed("bad".into()),
            400,
            "illegal_argument_exception",
        ),
        (Failure::NoData, 400, "action_request_validation_exception"),
        (
            Failure::EventRequired { index: 0 },
            400,
            "illegal_argument_exception",
        ),
        (
            Failure::TooLarge("body over 8 MiB".into()),
            413,
            "content_too_long_exception",
        ),
        (Failure::TooManyEvents, 413, "content_too_long_exception"),
        (
            Failure::BadEncoding("gzip: invalid header".into()),
            400,
            "parse_exception",
        ),
        (
            Failure::Busy("journal budget".into()),
            429,
            "es_rejected_execution_exception",
        ),
        (Failure::NotFound, 404, "resource_not_found_exception"),
        (
            Failure::MethodNotAllowed,
            405,
            "method_not_allowed_exception",
        ),
        (Failure::Internal("oops".into()), 500, "exception"),
    ];
    for (failure, status, kind) in cases {
        let (answer, body) = failure_answer(&failure);
        assert_eq!(answer.status, status, "{failure:?}");
        assert_eq!(answer.content_type, "application/json");
        assert!(answer
            .headers
            .starts_with("X-Elastic-Product: Elasticsearch\r\n"));
        assert_eq!(answer.retry_after, matches!(failure, Failure::Busy(_)));
        let reason = body["error"]["reason"].as_str().unwrap();
        assert!(!reason.is_empty());
        assert_eq!(
            body,
            json!({"error": {"root_cause": [{"type": kind, "reason": reason}],
                "type": kind, "reason": reason}, "status": status}),
            "{failure:?}"
        );
    }
}

#[test]
fn a_401_offers_basic_and_api_key_authentication() {
    let (answer, body) = failure_answer(&Failure::MissingKey);
    assert_eq!(
        answer.headers,
        "X-Elastic-Product: Elasticsearch\r\n\
         WWW-Authenticate: Basic realm=\"security\", charset=\"UTF-8\"\r\n\
         WWW-Authenticate: ApiKey\r\n"
    );
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/_bulk]"
    );
}

#[test]
fn backpressure_is_a_429_with_retry_after() {
    let (answer, _) = failure_answer(&Failure::Busy("journal budget reached".into()));
    assert_eq!((answer.status, answer.retry_after), (429, true));
}

#[test]
fn the_info_document_claims_elasticsearch_8() {
    let mut out = Vec::new();
    let answer = render_info(&mut out);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers, "X-Elastic-Product: Elasticsearch\r\n");
    let info: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(info["version"]["number"], "8.17.0");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
    assert!(info["cluster_uuid"].is_string());
}
