//! Response headers every answer carries, the `Host` check, and the
//! bearer-token check (DESIGN §10).
//!
//! Every request must name this server in its `Host` header by an IP
//! literal, `localhost`, or a name given with `--allowed-host`; anything
//! else is 403. Without that, a hostile page could point its own DNS name
//! at 127.0.0.1 (DNS rebinding) and read an anonymous API same-origin.
//!
//! The UI's static files are public (they hold no event data); everything
//! under `/api/` needs the token when one is configured. Browsers cannot
//! put an `Authorization` header on an `EventSource` or a download link, so
//! the UI trades the token once (`POST /api/login`) for an HttpOnly,
//! SameSite=Strict cookie that carries the same token.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Host names a request may give in its `Host` header besides IP
/// literals and `localhost`.
#[derive(Clone, Debug)]
pub struct AllowedHosts {
    /// Lowercase names, without ports.
    names: Arc<[String]>,
}

impl AllowedHosts {
    /// The names a server listening on `listen` answers to: IP literals
    /// (which covers the listen address itself, always an IP here),
    /// `localhost`, and `extra` (lowercase, as `ReportConfig` keeps them).
    pub fn new(listen: SocketAddr, extra: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned(), listen.ip().to_string()];
        names.extend(extra.iter().map(|n| n.to_ascii_lowercase()));
        Self {
            names: names.into(),
        }
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]:port`)
    /// names this server. A malformed value is not.
    pub fn allows(&self, host: &str) -> bool {
        match parse_host(host) {
            Some(Host::Ip) => true,
            Some(Host::Name(name)) => self.names.iter().any(|n| n.eq_ignore_ascii_case(name)),
            None => false,
        }
    }
}

/// The host part of a `Host` header value.
#[derive(Debug, PartialEq, Eq)]
enum Host<'a> {
    /// An IPv4 or (bracketed) IPv6 literal.
    Ip,
    /// A name (not an IP literal), as given.
    Name(&'a str),
}

/// Splits `host[:port]`; `None` when it is not a well-formed value.
fn parse_host(value: &str) -> Option<Host<'_>> {
    if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<Ipv6Addr>().ok()?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok.then_some(Host::Ip);
    }
    let (name, port_ok) = match value.split_once(':') {
        Some((name, port)) => (name, is_port(port)),
        None => (value, true),
    };
    if name.is_empty() || !port_ok {
        return None;
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Some(Host::Ip);
    }
    Some(Host::Name(name))
}

/// Whether `text` is a port number (digits only, at most 65535).
fn is_port(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u16>().is_ok()
}

/// Refuses (403) every request whose `Host` does not name this server
/// (DNS rebinding). Runs before the token check and on the UI's files too:
/// it is cheap, and harmless where a token is required anyway.
pub async fn require_known_host(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    // HTTP/2 carries the host in the URI's authority instead.
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => request.uri().authority().map(|a| a.as_str()),
    };
    if !host.is_some_and(|h| hosts.allows(h)) {
        return ApiError::Forbidden(
            "this server answers only to requests that name it by an IP address, `localhost` \
             or a name given with --allowed-host (HELIOS_REPORT_ALLOWED_HOSTS); this Host is \
             not one of them"
                .to_owned(),
        )
        .into_response();
    }
    next.run(request).await
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
    fn host_values_are_split_into_ip_literals_and_names() {
        assert_eq!(parse_host("127.0.0.1:7071"), Some(Host::Ip));
        assert_eq!(parse_host("10.1.2.3"), Some(Host::Ip));
        assert_eq!(parse_host("[::1]:7071"), Some(Host::Ip));
        assert_eq!(parse_host("[::1]"), Some(Host::Ip));
        assert_eq!(parse_host("localhost:1"), Some(Host::Name("localhost")));
        assert_eq!(parse_host("evil.example"), Some(Host::Name("evil.example")));
        for bad in [
            "", ":80", "h:", "h:x", "h:70000", "h:1:2", "[::1", "[::1]x", "[h]:1", "::1",
        ] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_ip_literals_localhost_and_allowed_names_are_allowed() {
        let listen: SocketAddr = "127.0.0.1:7071".parse().unwrap();
        let hosts = AllowedHosts::new(listen, &["helios.internal".to_owned()]);
        for ok in [
            "127.0.0.1:7071",
            "[::1]:7071",
            "localhost:7071",
            "LOCALHOST",
            "helios.internal:7071",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example:7071",
            "localhost.evil.example",
            "helios.internal.evil",
            "",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
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
