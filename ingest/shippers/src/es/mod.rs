//! Elasticsearch `_bulk`, as Elasticsearch 8 speaks it to its clients
//! (the official clients, Logstash, Beats, Fluent Bit, Vector, rsyslog).
//!
//! # Endpoints
//! `POST`/`PUT` `/_bulk` and `/{index}/_bulk` (the path's index is
//! percent-decoded; it is the default for action lines without `_index`),
//! and `GET`/`HEAD /`, which answers a version document claiming 8.17.0 so
//! that official clients pass their product check. Every answer carries
//! `X-Elastic-Product: Elasticsearch`. The query string (`refresh`,
//! `pipeline`, `filter_path`, …) is ignored: the answer is always whole.
//!
//! # Body
//! NDJSON action/source pairs (pairing rules in `bulk`). Content types
//! `application/json`, `application/x-ndjson` and
//! `application/vnd.elasticsearch+x-ndjson` / `+json` (any `compatible-with`),
//! or none; any other is answered as Elasticsearch does: 406
//! `{"error":"Content-Type header [..] is not supported","status":406}`.
//! `index` and `create` items become events; `update` and `delete` are
//! refused per item (400 `illegal_argument_exception`).
//!
//! # Mapping (one event per `index`/`create` item)
//! | bulk | Helios event |
//! |---|---|
//! | each source member, in order | the same member at the top level |
//! | source member named `_id`, `type`, `ts`, `ts_raw`, `recv`, `app`, `es_index` or `es_id` | kept as `source.<name>` (e.g. `source.type`) |
//! | `_index` of the action, else the path's index | `es_index` |
//! | `_id` of the action, as sent | `es_id` (absent when none) |
//! | `_id` of the action | `_id` = [`derived_id`](crate::derived_id)`(app, Elasticsearch, [index, id])`: a retried bulk is stored once; none → the collector mints one |
//! | `@timestamp`: RFC 3339 / ISO 8601 date or date-time (no zone = UTC), or integer epoch ms | `ts` (epoch ms); `@timestamp` itself stays as sent; anything else leaves `ts` out (receive time) |
//! | the `type` rule (`--es-type`, default `$es_index\|elasticsearch`) | `type` |
//! | `routing`, `pipeline`, legacy `_type`, other action parameters | ignored |
//!
//! # Answers
//! 200 `{"took","errors","items":[{"<action>":{"_index","_id","status",…}}]}`
//! in request order: 201 `created` per stored item (`_id` as sent, `null`
//! when none was sent: the collector mints ids after decoding), 400 with
//! `error.type`/`error.reason` per refused item. A request refused whole
//! gets Elasticsearch's error shape
//! `{"error":{"root_cause":[{"type","reason"}],"type","reason"},"status"}`;
//! see [`render_failure`] for each status. Backpressure is 429
//! `es_rejected_execution_exception` with `Retry-After`: the Python
//! client's transport retries 429 (and 502/503/504), and `helpers.bulk`'s
//! `max_retries` retries only 429 by default, as does Logstash.

mod bulk;
mod time;

use std::borrow::Cow;

use crate::{
    json_string, media_type_is, Answer, Echo, Failure, LineReject, Request, Settings, Translation,
    TypeRule,
};

/// The header every Elasticsearch answer carries (clients check it).
const PRODUCT_HEADER: &str = "X-Elastic-Product: Elasticsearch\r\n";
/// A 401's headers: the product, and the schemes Elasticsearch offers.
const UNAUTHORIZED_HEADERS: &str = "X-Elastic-Product: Elasticsearch\r\n\
    WWW-Authenticate: Basic realm=\"security\", charset=\"UTF-8\"\r\n\
    WWW-Authenticate: ApiKey\r\n";
/// The content types a bulk body may be declared as (or none).
const BULK_MEDIA_TYPES: [&str; 4] = [
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+x-ndjson",
    "application/vnd.elasticsearch+json",
];
const JSON: &str = "application/json";

/// The version document of `GET /`: an 8.x version, so official clients
/// (which check the major version and `X-Elastic-Product`) talk to us.
const INFO_DOCUMENT: &str = concat!(
    r#"{"name":"helios","cluster_name":"helios","cluster_uuid":"aGVsaW9zLWNvbGxlY3Rvcg","#,
    r#""version":{"number":"8.17.0","build_flavor":"default","build_type":"tar","#,
    r#""build_hash":"0000000000000000000000000000000000000000","#,
    r#""build_date":"2024-12-11T00:00:00.000000000Z","build_snapshot":false,"#,
    r#""lucene_version":"9.12.0","minimum_wire_compatibility_version":"7.17.0","#,
    r#""minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}"#
);

/// The default `type` rule: the index, else `elasticsearch`.
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse("$es_index|elasticsearch").expect("the default rule parses")
}

/// Translates a request body (see [`crate::decode`]).
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    if !req.content_type.trim().is_empty() && !media_type_is(req.content_type, &BULK_MEDIA_TYPES) {
        return Err(Failure::UnsupportedMediaType(req.content_type.to_owned()));
    }
    let raw_index = path_index(req.path)
        .ok_or_else(|| Failure::Internal(format!("{} is not a bulk path", req.path)))?;
    let index = percent_decode(raw_index).ok_or_else(|| {
        Failure::Malformed(format!(
            "invalid index name [{raw_index}]: not percent-encoded UTF-8"
        ))
    })?;
    bulk::decode(req, &index, body, settings, out)
}

/// The answer to a journaled request (see [`crate::render_success`]):
/// every item in request order; an item whose line the collector refused
/// is a 400 `mapper_parsing_exception` with the collector's reason.
pub fn render_success(
    _req: &Request<'_>,
    translation: &Translation,
    rejected: &[LineReject<'_>],
    took_ms: u64,
    out: &mut Vec<u8>,
) -> Answer {
    let mut rejected = rejected.iter().peekable();
    let mut errors = false;
    let mut items = Vec::with_capacity(translation.items.len() * 160);
    for (position, item) in translation.items.iter().enumerate() {
        if position > 0 {
            items.push(b',');
        }
        let (action, index, id) = match &item.echo {
            Echo::Es { action, index, id } => (action.as_str(), index.as_str(), id.as_str()),
            Echo::None => ("index", "", ""),
        };
        let refusal = match &item.line {
            Err(refusal) => Some((
                refusal.status,
                refusal.kind,
                Cow::Borrowed(&*refusal.reason),
            )),
            Ok(line) => {
                while rejected.next_if(|r| r.line < *line).is_some() {}
                rejected.next_if(|r| r.line == *line).map(|r| {
                    let reason = format!("failed to parse: {}", r.error);
                    (400, bulk::MAPPER_PARSING, Cow::Owned(reason))
                })
            }
        };
        errors |= refusal.is_some();
        write_item(&mut items, action, index, id, refusal);
    }
    out.extend_from_slice(b"{\"took\":");
    out.extend_from_slice(took_ms.to_string().as_bytes());
    out.extend_from_slice(if errors {
        b",\"errors\":true,\"items\":["
    } else {
        b",\"errors\":false,\"items\":["
    });
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    answer(200, JSON, PRODUCT_HEADER, false)
}

/// One entry of `items`: created (201), or refused with its error.
fn write_item(
    out: &mut Vec<u8>,
    action: &str,
    index: &str,
    id: &str,
    refusal: Option<(u16, &str, Cow<'_, str>)>,
) {
    out.push(b'{');
    json_string(out, action);
    out.extend_from_slice(b":{\"_index\":");
    json_or_null(out, index);
    out.extend_from_slice(b",\"_id\":");
    json_or_null(out, id);
    match refusal {
        None => out.extend_from_slice(
            b",\"_version\":1,\"result\":\"created\",\
              \"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\
              \"_seq_no\":0,\"_primary_term\":1,\"status\":201}}",
        ),
        Some((status, kind, reason)) => {
            out.extend_from_slice(b",\"status\":");
            out.extend_from_slice(status.to_string().as_bytes());
            out.extend_from_slice(b",\"error\":{\"type\":");
            json_string(out, kind);
            out.extend_from_slice(b",\"reason\":");
            json_string(out, &reason);
            out.extend_from_slice(b"}}}");
        }
    }
}

fn json_or_null(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json_string(out, text);
    }
}

/// The answer to a refused request (see [`crate::render_failure`]), in
/// Elasticsearch's error shape:
///
/// | failure | status | `error.type` |
/// |---|---|---|
/// | no key / unknown key | 401 (+ `WWW-Authenticate: Basic`, `ApiKey`) | `security_exception` |
/// | forbidden | 403 | `security_exception` |
/// | malformed action line | 400 | `illegal_argument_exception` or `x_content_parse_exception` |
/// | empty body, action without source | 400 | `action_request_validation_exception` |
/// | damaged or unknown `Content-Encoding` | 400 | `parse_exception` |
/// | too large, too many items | 413 | `content_too_long_exception` |
/// | unsupported `Content-Type` | 406 | Elasticsearch's own `{"error":"Content-Type header [..] is not supported","status":406}` |
/// | busy | 429 + `Retry-After` | `es_rejected_execution_exception` |
/// | not found / method | 404 / 405 | `resource_not_found_exception` / `method_not_allowed_exception` |
/// | internal | 500 | `exception` |
pub fn render_failure(req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    let path = req.path;
    let (status, kind, reason): (u16, &str, Cow<'_, str>) = match failure {
        Failure::MissingKey => (
            401,
            "security_exception",
            format!("missing authentication credentials for REST request [{path}]").into(),
        ),
        Failure::UnknownKey => (
            401,
            "security_exception",
            format!("unable to authenticate with provided credentials for REST request [{path}]")
                .into(),
        ),
        Failure::Forbidden(why) => (
            403,
            "security_exception",
            format!("action [indices:data/write/bulk] is unauthorized: {why}").into(),
        ),
        Failure::Malformed(reason) => (400, malformed_kind(reason), strip_kind(reason)),
        Failure::NoData => (
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;".into(),
        ),
        Failure::EventRequired { .. } | Failure::EventBlank { .. } => (
            400,
            "illegal_argument_exception",
            failure.to_string().into(),
        ),
        Failure::TooLarge(_) | Failure::TooManyEvents => (
            413,
            "content_too_long_exception",
            failure.to_string().into(),
        ),
        Failure::UnsupportedMediaType(content_type) => {
            // Elasticsearch answers this one with a plain string error.
            out.extend_from_slice(b"{\"error\":");
            json_string(
                out,
                &format!("Content-Type header [{content_type}] is not supported"),
            );
            out.extend_from_slice(b",\"status\":406}");
            return answer(406, JSON, PRODUCT_HEADER, false);
        }
        Failure::BadEncoding(why) => (
            400,
            "parse_exception",
            format!("request body is not what its Content-Encoding says: {why}").into(),
        ),
        Failure::Busy(why) => (
            429,
            "es_rejected_execution_exception",
            format!("rejected execution of bulk request: {why}").into(),
        ),
        Failure::NotFound => (
            404,
            "resource_not_found_exception",
            format!("no handler found for uri [{path}]").into(),
        ),
        Failure::MethodNotAllowed => (
            405,
            "method_not_allowed_exception",
            format!(
                "Incorrect HTTP method for uri [{path}], allowed: [{}]",
                req.endpoint.allow()
            )
            .into(),
        ),
        Failure::Internal(why) => (500, "exception", why.as_str().into()),
    };
    write_error(out, status, kind, &reason);
    let headers = if status == 401 {
        UNAUTHORIZED_HEADERS
    } else {
        PRODUCT_HEADER
    };
    answer(status, JSON, headers, matches!(failure, Failure::Busy(_)))
}

/// The error type of a malformed request, from the reason `decode` wrote.
fn malformed_kind(reason: &str) -> &'static str {
    if reason.starts_with(bulk::UNPARSEABLE_ACTION_PREFIX) {
        "x_content_parse_exception"
    } else if reason.starts_with(bulk::VALIDATION_PREFIX) {
        "action_request_validation_exception"
    } else {
        "illegal_argument_exception"
    }
}

/// The reason without the error-type marker `decode` put in front.
fn strip_kind(reason: &str) -> Cow<'_, str> {
    Cow::Borrowed(
        reason
            .strip_prefix(bulk::UNPARSEABLE_ACTION_PREFIX)
            .unwrap_or(reason),
    )
}

/// `{"error":{"root_cause":[{"type","reason"}],"type","reason"},"status"}`.
fn write_error(out: &mut Vec<u8>, status: u16, kind: &str, reason: &str) {
    let mut cause = Vec::with_capacity(reason.len() + 48);
    cause.extend_from_slice(b"\"type\":");
    json_string(&mut cause, kind);
    cause.extend_from_slice(b",\"reason\":");
    json_string(&mut cause, reason);
    out.extend_from_slice(b"{\"error\":{\"root_cause\":[{");
    out.extend_from_slice(&cause);
    out.extend_from_slice(b"}],");
    out.extend_from_slice(&cause);
    out.extend_from_slice(b"},\"status\":");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b'}');
}

fn answer(status: u16, content_type: &'static str, headers: &'static str, retry: bool) -> Answer {
    Answer {
        status,
        content_type,
        headers,
        retry_after: retry,
    }
}

/// The index a bulk path names, percent-encoded as sent: `Some("")` for
/// `/_bulk`, `Some(index)` for `/{index}/_bulk`, `None` for any other path.
pub fn path_index(path: &str) -> Option<&str> {
    let rest = path.strip_suffix("/_bulk")?;
    if rest.is_empty() {
        return Some("");
    }
    let index = rest.strip_prefix('/')?;
    (!index.is_empty() && !index.contains('/')).then_some(index)
}

/// `%XX` sequences decoded; `None` for a bad sequence or bytes that are
/// not UTF-8.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

/// `GET /`: the version document.
pub fn render_info(out: &mut Vec<u8>) -> Answer {
    out.extend_from_slice(INFO_DOCUMENT.as_bytes());
    answer(200, JSON, PRODUCT_HEADER, false)
}

#[cfg(test)]
mod tests;
