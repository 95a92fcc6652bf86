//! Endpoint URLs as a careless or hostile configuration writes them: every
//! one is a `BuildError::Endpoint`, never a panic.

use helios_client::{BuildError, Client, EndpointError};

/// Builds a client for `url` and returns why it was refused.
fn refusal(url: &str) -> EndpointError {
    match Client::builder().endpoint(url).build() {
        Err(BuildError::Endpoint { source, .. }) => source,
        Err(other) => panic!("{url:?}: refused for another reason: {other}"),
        Ok(_) => panic!("{url:?}: accepted"),
    }
}

#[test]
fn a_multi_byte_character_where_the_scheme_ends_is_an_error_not_a_panic() {
    // Byte 7 falls inside the two-byte 'é': slicing the scheme by bytes
    // panicked here.
    for url in [
        "http:/\u{e9}x",
        "htt\u{e9}://x",
        "http:/\u{e9}",
        "\u{e9}\u{e9}\u{e9}\u{e9}",
    ] {
        assert!(
            matches!(refusal(url), EndpointError::UnsupportedScheme),
            "{url:?}"
        );
    }
}

#[test]
fn non_ascii_hosts_and_paths_are_refused_rather_than_sent_as_raw_bytes() {
    // A Host header or request target with raw UTF-8 is not HTTP/1.1; the
    // URL must be punycoded / percent-encoded by whoever writes it.
    for url in [
        "http://h\u{e9}te:7070",
        "http://h:7070/pr\u{e9}fix",
        "http://[::1\u{e9}]:7070",
        "http://h:70\u{e9}",
    ] {
        assert!(
            matches!(refusal(url), EndpointError::UnsupportedPart),
            "{url:?}"
        );
    }
}

#[test]
fn malformed_authorities_are_errors() {
    for (url, expected) in [
        ("http://[::1", EndpointError::MissingHost),
        ("http://[::1]x", EndpointError::InvalidPort),
        ("http://h:", EndpointError::InvalidPort),
        ("http://h:+80", EndpointError::InvalidPort),
        ("http://:80", EndpointError::MissingHost),
        ("http://[]:80", EndpointError::MissingHost),
    ] {
        assert_eq!(refusal(url), expected, "{url:?}");
    }
}
