//! DESIGN §10 for the report server: secure-by-default binds, the token,
//! the operator allow-list, and the headers that keep untrusted event
//! content inert in the browser.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::http;
use support::{enc, shared, Stack};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[test]
fn code_running_mongodb_operators_are_refused_with_400() {
    let stack = shared();
    for filter in [
        r#"{"$where": "sleep(1000) || true"}"#,
        r#"{"$expr": {"$function": {"body": "function() { return true }", "args": [], "lang": "js"}}}"#,
        r#"{"$expr": {"$accumulator": {}}}"#,
        r#"{"plan": {"$where": "1"}}"#,
        r#"{"$and": [{"plan": "pro"}, {"$where": "1"}]}"#,
    ] {
        let response = stack.get(&format!("/api/events?filter={}", enc(filter)));
        assert_eq!(response.status, 400, "{filter}: {}", response.text());
        let body = response.json();
        assert_eq!(body["error"], json!("bad filter"), "{filter}");
        assert!(body["location"].is_string(), "{filter}: {body}");
    }
}

#[test]
fn refused_operators_are_refused_on_every_endpoint_that_takes_a_filter() {
    let stack = shared();
    let filter = enc(r#"{"$where": "1"}"#);
    for endpoint in [
        "/api/events",
        "/api/histogram",
        "/api/groups?field=plan&x=",
        "/api/values?field=plan&x=",
        "/api/export?x=",
        "/api/tail",
    ] {
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        let response = stack.get(&format!("{endpoint}{sep}filter={filter}"));
        assert_eq!(response.status, 400, "{endpoint}: {}", response.text());
    }
}

#[test]
fn every_response_carries_the_strict_csp_and_nosniff() {
    let stack = Stack::start_with(&["--token", "t0ken-t0ken-t0ken-t0ken"]);
    for (target, status) in [
        ("/", 200),
        ("/app.js", 200),
        ("/app.css", 200),
        ("/favicon.svg", 200),
        ("/no-such-page", 404),
        ("/api/types", 401),
    ] {
        let response = http::get(stack.report, target);
        assert_eq!(response.status, status, "{target}");
        assert_eq!(
            response.header("content-security-policy"),
            Some(CSP),
            "{target}"
        );
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
        assert_eq!(response.header("x-frame-options"), Some("DENY"), "{target}");
    }
    let api = http::get_with(
        stack.report,
        "/api/types",
        &[("Authorization", "Bearer t0ken-t0ken-t0ken-t0ken")],
    );
    assert_eq!(api.status, 200);
    assert_eq!(api.header("content-security-policy"), Some(CSP));
    assert_eq!(api.header("cache-control"), Some("no-store"));
}

#[test]
fn with_a_token_the_api_needs_it_and_the_ui_files_do_not() {
    let stack = Stack::start_with(&["--token", "s3cret-token-0123"]);
    let none = http::get(stack.report, "/api/types");
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], json!("unauthorized"));
    assert!(none.header("www-authenticate").is_some());
    let wrong = http::get_with(
        stack.report,
        "/api/types",
        &[("Authorization", "Bearer s3cret-token-012N")],
    );
    assert_eq!(wrong.status, 401);
    let right = http::get_with(
        stack.report,
        "/api/types",
        &[("Authorization", "Bearer s3cret-token-0123")],
    );
    assert_eq!(right.status, 200, "{}", right.text());
    // Live tail and export need it too (they are what a browser opens
    // without headers).
    assert_eq!(http::get(stack.report, "/api/tail").status, 401);
    assert_eq!(http::get(stack.report, "/api/export").status, 401);
    assert_eq!(http::get(stack.report, "/").status, 200);
}

#[test]
fn login_trades_the_right_token_for_an_httponly_cookie_that_authorizes() {
    let stack = Stack::start_with(&["--token", "s3cret-token-0123"]);
    let wrong = http::post_json(stack.report, "/api/login", r#"{"token": "guess"}"#);
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let right = http::post_json(
        stack.report,
        "/api/login",
        r#"{"token": "s3cret-token-0123"}"#,
    );
    assert_eq!(right.status, 204);
    let cookie = right.header("set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = http::get_with(stack.report, "/api/types", &[("Cookie", pair)]);
    assert_eq!(with_cookie.status, 200);
}

#[test]
fn a_request_naming_a_foreign_host_is_refused_with_403() {
    // DNS rebinding: a hostile page whose name resolves to 127.0.0.1 would
    // otherwise read the API same-origin. Its requests carry its own name.
    let stack = shared();
    for target in ["/api/events", "/", "/api/status", "/app.js"] {
        let response = http::get_with(stack.report, target, &[("Host", "evil.example:7071")]);
        assert_eq!(response.status, 403, "{target}: {}", response.text());
        assert_eq!(response.json()["error"], json!("forbidden"), "{target}");
        assert_eq!(
            response.header("content-security-policy"),
            Some(CSP),
            "{target}"
        );
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
    }
}

#[test]
fn a_foreign_host_is_refused_even_with_the_right_token() {
    let stack = Stack::start_with(&["--token", "s3cret-token-0123456789"]);
    let response = http::get_with(
        stack.report,
        "/api/types",
        &[
            ("Host", "evil.example"),
            ("Authorization", "Bearer s3cret-token-0123456789"),
        ],
    );
    assert_eq!(response.status, 403, "{}", response.text());
}

#[test]
fn requests_naming_the_server_by_ip_literal_or_localhost_are_served() {
    let stack = shared();
    let port = stack.report.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
    ] {
        for target in ["/api/events", "/"] {
            let response = http::get_with(stack.report, target, &[("Host", &host)]);
            assert_eq!(response.status, 200, "{host} {target}: {}", response.text());
        }
    }
}

#[test]
fn an_empty_or_malformed_host_is_refused() {
    let stack = shared();
    for host in [
        "",
        "localhost:http",
        "localhost:7071:1",
        "[::1",
        "localhost.evil.example",
    ] {
        let response = http::get_with(stack.report, "/api/status", &[("Host", host)]);
        assert_eq!(response.status, 403, "{host:?}: {}", response.text());
    }
}

#[test]
fn an_allowed_host_flag_admits_its_name_and_no_other() {
    let stack = Stack::start_with(&["--allowed-host", "helios.internal"]);
    let port = stack.report.port();
    let named = http::get_with(
        stack.report,
        "/api/status",
        &[("Host", &format!("helios.internal:{port}"))],
    );
    assert_eq!(named.status, 200, "{}", named.text());
    let upper = http::get_with(stack.report, "/", &[("Host", "HELIOS.internal")]);
    assert_eq!(upper.status, 200, "host names compare case-insensitively");
    let other = http::get_with(stack.report, "/api/status", &[("Host", "evil.example")]);
    assert_eq!(other.status, 403);
}

#[test]
fn the_allowed_hosts_variable_takes_a_comma_separated_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("e.db").display());
    let (mut child, addr) = spawn_report(
        &["--listen", "127.0.0.1:0", "--store", &store],
        &[("HELIOS_REPORT_ALLOWED_HOSTS", "a.example, b.example")],
    );
    let answers: Vec<u16> = ["a.example", "b.example", "c.example"]
        .iter()
        .map(|host| http::get_with(addr, "/api/status", &[("Host", host)]).status)
        .collect();
    stop(&mut child);
    assert_eq!(answers, [200, 200, 403]);
}

#[test]
fn with_secure_cookie_set_the_login_cookie_is_secure() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("e.db").display());
    let token = "behind-a-tls-balancer";
    let (mut child, addr) = spawn_report(
        &["--listen", "127.0.0.1:0", "--store", &store],
        &[
            ("HELIOS_REPORT_TOKEN", token),
            ("HELIOS_REPORT_SECURE_COOKIE", "true"),
        ],
    );
    let login = http::post_json(addr, "/api/login", &format!(r#"{{"token": "{token}"}}"#));
    stop(&mut child);
    assert_eq!(login.status, 204, "{}", login.text());
    let cookie = login.header("set-cookie").unwrap();
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
}

#[test]
fn a_token_shorter_than_16_characters_refuses_to_start() {
    let output = run_report(&["--token", "only-15-chars!!"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--token must be at least 16 characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("only-15-chars"),
        "the token is not echoed: {stderr}"
    );
}

#[test]
fn a_non_loopback_bind_without_a_token_refuses_to_start() {
    let output = run_report(&["--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--token") && stderr.contains("--allow-anonymous"),
        "{stderr}"
    );
}

#[test]
fn a_non_loopback_bind_with_allow_anonymous_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("e.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--allow-anonymous",
            "--store",
            &store,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.starts_with("helios-report: http://0.0.0.0:"), "{line}");
    stop(&mut child);
}

#[test]
fn the_page_has_no_inline_script_style_or_handlers() {
    let stack = shared();
    let page = stack.get("/").text();
    let lower = page.to_ascii_lowercase();
    assert_eq!(lower.matches("<script").count(), 1, "one external script");
    assert!(lower.contains("<script src=\"/app.js\" defer></script>"));
    assert!(!lower.contains("<style"), "no inline style element");
    assert!(!lower.contains(" style="), "no style attributes");
    assert!(!has_inline_handler(&lower), "no inline event handlers");
    assert!(!lower.contains("javascript:"));
}

#[test]
fn the_script_never_parses_markup_from_strings() {
    let script = shared().get("/app.js").text();
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
    ] {
        assert!(!script.contains(sink), "app.js uses {sink}");
    }
}

/// Whether some tag has an `on…=` attribute.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        name_len > 0 && rest[name_len..].trim_start().starts_with('=')
    })
}

/// Starts the `helios-report` binary; returns it and the address it printed.
fn spawn_report(args: &[&str], envs: &[(&str, &str)]) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("helios-report: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// SIGTERM, then waits (up to 30 s) for a clean exit.
fn stop(child: &mut std::process::Child) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

fn run_report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
