//! Response headers every answer carries, and the bearer-token check
//! (DESIGN §10).
//!
//! The UI's static files are public (they hold no event data); everything
//! under `/api/` needs the token when one is configured. Browsers cannot
//! put an `Authorization` header on an `EventSource` or a download link, so
//! the UI trades the token once (`POST /api/login`) for an HttpOnly,
//! SameSite=Strict cookie that carries the same token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The Content-Security-Policy on every response: only our own script,
/// style and images; no inline code, no framing, no foreign connections.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";
/// Name of the cookie the UI's login sets.
pub const TOKEN_COOKIE: &str = "helios_report_token";

/// Adds the security headers to every response, whatever produced it
/// (handlers, 404s, errors).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if is_api {
        // Event data must not linger in shared or disk caches.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The configured token, if any; shared by the auth middleware and login.
#[derive(Clone)]
pub struct Auth {
    token: Option<Arc<[u8]>>,
}

impl Auth {
    /// Auth that requires `token` when it is `Some`.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: token.map(|t| Arc::from(t.as_bytes())),
        }
    }

    /// Whether a token is required at all.
    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `offered` is the configured token (constant time in the
    /// offered bytes, so timing leaks no prefix of the secret).
    pub fn accepts(&self, offered: &[u8]) -> bool {
        match &self.token {
            None => true,
            Some(token) => constant_time_eq(token, offered),
        }
    }

    fn request_is_authorized(&self, headers: &HeaderMap) -> bool {
        if !self.required() {
            return true;
        }
        bearer(headers).is_some_and(|t| self.accepts(t))
            || cookie(headers, TOKEN_COOKIE).is_some_and(|t| self.accepts(t))
    }
}

/// Refuses `/api/` requests without the token (401), except the login
/// itself. Static UI files pass: they carry no data.
pub async fn require_token(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = path.starts_with("/api/") && path != crate::routes::LOGIN_PATH;
    if guarded && !auth.request_is_authorized(request.headers()) {
        let mut response = ApiError::Unauthorized.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"helios-report\""),
        );
        return response;
    }
    next.run(request).await
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme_len = "Bearer ".len();
    if value.len() < scheme_len || !value[..scheme_len].eq_ignore_ascii_case(b"Bearer ") {
        return None;
    }
    Some(value[scheme_len..].trim_ascii())
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let (key, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
            (key == name.as_bytes()).then_some(&value[1..])
        })
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(expected: &[u8], offered: &[u8]) -> bool {
    // Walk all of `offered` whatever the outcome; fold every difference
    // (including the length) into one accumulator checked at the end.
    let mut diff = u8::from(expected.len() != offered.len());
    for (i, &b) in offered.iter().enumerate() {
        let e = expected
            .get(i % expected.len().max(1))
            .copied()
            .unwrap_or(0);
        diff |= e ^ b;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tokens_match_and_others_do_not() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret!"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b""));
    }

    #[test]
    fn the_token_is_read_from_bearer_or_cookie() {
        let auth = Auth::new(Some("s3"));
        let mut headers = HeaderMap::new();
        assert!(!auth.request_is_authorized(&headers));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer s3"));
        assert!(auth.request_is_authorized(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; helios_report_token=s3"),
        );
        assert!(auth.request_is_authorized(&headers));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("helios_report_token=nope"),
        );
        assert!(!auth.request_is_authorized(&headers));
    }
}
