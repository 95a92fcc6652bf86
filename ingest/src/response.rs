//! Writing HTTP responses and the JSON bodies of DESIGN §3 into a reusable
//! output buffer (no allocation per response in steady state).

use std::io::Write;

/// Seconds a 503 asks the client to wait before retrying.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Reason phrase for the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Content type of JSON bodies.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of the Prometheus text exposition.
pub const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4";

/// Appends a complete response with a JSON body.
pub fn write_response(out: &mut Vec<u8>, status: u16, body: &[u8], keep_alive: bool, http10: bool) {
    let head = ResponseHead {
        keep_alive,
        http10,
        ..ResponseHead::new(status)
    };
    write_response_with(out, &head, body);
}

/// Everything about a response but its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// Whether the connection stays open after it.
    pub keep_alive: bool,
    /// The request was HTTP/1.0 (keep-alive must then be spelled out).
    pub http10: bool,
    /// The methods a 405 names in `Allow`.
    pub allow: Option<&'static str>,
    /// Answering `HEAD`: the head says what a `GET` would send
    /// (`Content-Length` included) but no body follows (RFC 9110 §9.3.2).
    pub omit_body: bool,
    /// Send `Retry-After` (every 503 of Helios's own API; a shipper's
    /// protocol says for itself, e.g. Elasticsearch's 429).
    pub retry_after: bool,
    /// Extra header lines, each ending in `\r\n` (`X-Elastic-Product`).
    pub extra_headers: &'static str,
}

impl ResponseHead {
    /// A JSON response with `status`, keep-alive, HTTP/1.1, with a body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            content_type: CONTENT_TYPE_JSON,
            keep_alive: true,
            http10: false,
            allow: None,
            omit_body: false,
            retry_after: status == 503,
            extra_headers: "",
        }
    }
}

/// Appends a complete response: `head`, then `body` unless the head says
/// to omit it.
pub fn write_response_with(out: &mut Vec<u8>, head: &ResponseHead, body: &[u8]) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", head.status, reason(head.status));
    // A 204 has neither body nor Content-Length (RFC 9110 §8.6, §15.3.5).
    let no_content = head.status == 204;
    debug_assert!(!no_content || body.is_empty(), "a 204 carries no body");
    if !no_content {
        let _ = write!(
            out,
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            head.content_type,
            body.len()
        );
    }
    out.extend_from_slice(head.extra_headers.as_bytes());
    if head.retry_after {
        let _ = write!(out, "Retry-After: {RETRY_AFTER_SECS}\r\n");
    }
    if let Some(methods) = head.allow {
        debug_assert_eq!(head.status, 405, "Allow goes with 405");
        let _ = write!(out, "Allow: {methods}\r\n");
    }
    if !head.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if head.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head.omit_body && !no_content {
        out.extend_from_slice(body);
    }
}

/// Appends `{"error": error, "detail": detail}`.
pub fn error_body(out: &mut Vec<u8>, error: &str, detail: &str) {
    out.extend_from_slice(b"{\"error\":");
    json_string(out, error);
    out.extend_from_slice(b",\"detail\":");
    json_string(out, detail);
    out.push(b'}');
}

/// The short error name for a status.
pub fn error_name(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "too_large",
        415 => "unsupported_encoding",
        431 => "headers_too_large",
        503 => "unavailable",
        _ => "error",
    }
}

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_valid_json_whatever_the_detail() {
        let mut out = Vec::new();
        error_body(
            &mut out,
            "bad_request",
            "quote \" backslash \\ newline \n ctl \u{1}",
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["detail"], "quote \" backslash \\ newline \n ctl \u{1}");
    }

    #[test]
    fn a_503_carries_retry_after() {
        let mut out = Vec::new();
        write_response(&mut out, 503, b"{}", true, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Retry-After: 1\r\n"), "{text}");
    }
}
