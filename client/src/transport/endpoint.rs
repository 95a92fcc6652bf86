//! Endpoint URLs: `http(s)://host[:port][/prefix]`, parsed once when a
//! client or relay is configured, never on the request path.
//!
//! The URL is configuration text, possibly mistyped: every check works on
//! characters found by search (`split_once`, `find`), never on byte offsets
//! computed ahead, so no input can slice inside a UTF-8 character.

#[cfg(feature = "tls")]
use rustls::pki_types::ServerName;

/// Path appended to an endpoint's prefix.
pub const EVENTS_PATH: &str = "/v1/events";
const DEFAULT_HTTP_PORT: u16 = 80;
const DEFAULT_HTTPS_PORT: u16 = 443;

/// An endpoint URL that cannot be used. The messages never quote the URL
/// (callers add it where it is safe to show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The URL does not start with `http://` or `https://`.
    #[error("only http:// and https:// URLs are supported")]
    UnsupportedScheme,
    /// An `https://` URL, but the crate was built without its `tls`
    /// feature.
    #[error(
        "https:// needs helios-client built with its `tls` feature \
         (or a TLS-terminating relay or load balancer in front of the collector)"
    )]
    TlsNotBuilt,
    /// No host between `http(s)://` and the port or path.
    #[error("missing host")]
    MissingHost,
    /// The port is not a decimal number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// User info, query, fragment, spaces, control or non-ASCII characters
    /// (a host must be punycoded and a path percent-encoded: raw UTF-8 is
    /// not valid in a `Host` header or request target).
    #[error(
        "URL may not contain user info, query, fragment, spaces, control or non-ASCII characters"
    )]
    UnsupportedPart,
    /// An `https://` host that is neither a DNS name nor an IP address, so
    /// no certificate can be checked against it.
    #[error("the host is not a valid DNS name or IP address for TLS")]
    InvalidTlsName,
}

/// A parsed `http(s)://host[:port][/prefix]` URL: where to connect, and the
/// `Host` header and request target (`<prefix>/v1/events`) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL as given, for logs.
    pub(crate) url: String,
    /// `https://`.
    pub(super) tls: bool,
    /// Host name or IP literal without brackets, for resolving.
    pub(super) host: String,
    pub(super) port: u16,
    /// `Host` header value: `host[:port]` as written in the URL.
    pub(super) authority: String,
    /// The path prefix without trailing slashes (`""` for none).
    prefix: String,
    /// Request target: `<prefix>/v1/events`.
    pub(super) target: String,
    /// The name the server's certificate must hold (`https://` only).
    #[cfg(feature = "tls")]
    pub(super) server_name: Option<ServerName<'static>>,
}

impl Endpoint {
    /// Parses an endpoint URL. The scheme is case-insensitive; the port
    /// defaults to 80 (`http`) or 443 (`https`); `https://` needs the `tls`
    /// feature.
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(EndpointError::UnsupportedScheme)?;
        let tls = if scheme.eq_ignore_ascii_case("http") {
            false
        } else if scheme.eq_ignore_ascii_case("https") {
            true
        } else {
            return Err(EndpointError::UnsupportedScheme);
        };
        if tls && !cfg!(feature = "tls") {
            return Err(EndpointError::TlsNotBuilt);
        }
        if rest.bytes().any(|b| {
            !b.is_ascii() || b.is_ascii_control() || matches!(b, b' ' | b'?' | b'#' | b'@')
        }) {
            return Err(EndpointError::UnsupportedPart);
        }
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let default_port = if tls {
            DEFAULT_HTTPS_PORT
        } else {
            DEFAULT_HTTP_PORT
        };
        let (host, port) = split_host_port(authority, default_port)?;
        let prefix = prefix.trim_end_matches('/');
        Ok(Endpoint {
            url: url.to_owned(),
            tls,
            #[cfg(feature = "tls")]
            server_name: if tls {
                Some(
                    ServerName::try_from(host.to_owned())
                        .map_err(|_| EndpointError::InvalidTlsName)?,
                )
            } else {
                None
            },
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
            target: format!("{prefix}{EVENTS_PATH}"),
        })
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is an `https://` endpoint.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host name or IP address (an IPv6 literal without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The normalized form, fit for logs and status pages:
    /// `scheme://host:port/prefix` with a lowercase scheme, the port always
    /// written, the prefix without trailing slashes and without the events
    /// path. (URLs with user info are refused, so it holds no credentials.)
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let port = self.port;
        let prefix = &self.prefix;
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{port}{prefix}", self.host)
        } else {
            format!("{scheme}://{}:{port}{prefix}", self.host)
        }
    }
}

/// Splits `host[:port]` or `[v6]:port`; the port must be decimal digits.
fn split_host_port(authority: &str, default_port: u16) -> Result<(&str, u16), EndpointError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(EndpointError::MissingHost)?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(EndpointError::InvalidPort),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            // A second ':' is neither a host nor a port.
            Some((_, port)) if port.contains(':') => return Err(EndpointError::InvalidPort),
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(EndpointError::MissingHost);
    }
    let port = match port {
        None => default_port,
        // `u16::from_str` also takes a leading '+', which is no port.
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            match text.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(EndpointError::InvalidPort),
            }
        }
        Some(_) => return Err(EndpointError::InvalidPort),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_with_port_and_prefix() {
        let e = Endpoint::parse("http://collector.example:7070/helios/").expect("valid");
        assert_eq!(e.host, "collector.example");
        assert_eq!(e.port, 7070);
        assert_eq!(e.authority, "collector.example:7070");
        assert_eq!(e.target, "/helios/v1/events");
        assert_eq!(e.base_url(), "http://collector.example:7070/helios");
    }

    #[test]
    fn endpoint_defaults_to_port_80_and_root() {
        let e = Endpoint::parse("HTTP://h").expect("valid");
        assert_eq!((e.port, e.target.as_str()), (80, "/v1/events"));
        assert_eq!(e.base_url(), "http://h:80");
        let e = Endpoint::parse("http://h//").expect("valid");
        assert_eq!(
            (e.target.as_str(), e.base_url().as_str()),
            ("/v1/events", "http://h:80")
        );
    }

    #[test]
    fn endpoint_accepts_ipv6_literals() {
        let e = Endpoint::parse("http://[::1]:9000").expect("valid");
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.authority, "[::1]:9000");
        assert_eq!(e.base_url(), "http://[::1]:9000");
    }

    #[test]
    fn endpoint_refuses_what_it_cannot_honour() {
        assert_eq!(Endpoint::parse("http://"), Err(EndpointError::MissingHost));
        assert_eq!(
            Endpoint::parse("ftp://h"),
            Err(EndpointError::UnsupportedScheme)
        );
        assert_eq!(
            Endpoint::parse("h:80"),
            Err(EndpointError::UnsupportedScheme)
        );
        assert_eq!(
            Endpoint::parse("http://h:0"),
            Err(EndpointError::InvalidPort)
        );
        assert_eq!(
            Endpoint::parse("http://h:99999"),
            Err(EndpointError::InvalidPort)
        );
        assert_eq!(
            Endpoint::parse("http://h:1:2"),
            Err(EndpointError::InvalidPort)
        );
        assert_eq!(
            Endpoint::parse("http://u@h"),
            Err(EndpointError::UnsupportedPart)
        );
        assert_eq!(
            Endpoint::parse("http://h/?q"),
            Err(EndpointError::UnsupportedPart)
        );
    }

    #[test]
    fn multi_byte_characters_anywhere_are_errors_not_panics() {
        // Every cut of a URL full of two-, three- and four-byte characters:
        // each prefix parses or is refused, and none panics.
        let url = "h\u{e9}tp\u{2603}://h\u{e9}\u{1f600}:7\u{e9}0/p\u{e9}";
        for (cut, _) in url.char_indices() {
            let _ = Endpoint::parse(&url[..cut]);
        }
        assert_eq!(
            Endpoint::parse("http:/\u{e9}x"),
            Err(EndpointError::UnsupportedScheme)
        );
        assert_eq!(
            Endpoint::parse("http://h\u{e9}"),
            Err(EndpointError::UnsupportedPart)
        );
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        assert_eq!(
            Endpoint::parse("https://h"),
            Err(EndpointError::TlsNotBuilt)
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_defaults_to_port_443_and_checks_the_name() {
        let e = Endpoint::parse("HTTPS://central.example/base").expect("valid");
        assert!(e.is_tls());
        assert_eq!(e.base_url(), "https://central.example:443/base");
        assert!(e.server_name.is_some());
        let e = Endpoint::parse("https://127.0.0.1:8443").expect("an IP is a TLS name");
        assert_eq!(e.port(), 8443);
        assert_eq!(
            Endpoint::parse("https://bad_name!"),
            Err(EndpointError::InvalidTlsName)
        );
    }
}
