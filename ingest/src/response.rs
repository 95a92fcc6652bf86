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
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
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
    write_response_typed(out, status, CONTENT_TYPE_JSON, body, keep_alive, http10);
}

/// Appends a complete response with a body of the given content type.
pub fn write_response_typed(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    http10: bool,
) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if status == 503 {
        let _ = write!(out, "Retry-After: {RETRY_AFTER_SECS}\r\n");
    }
    if status == 405 {
        out.extend_from_slice(b"Allow: POST\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
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
