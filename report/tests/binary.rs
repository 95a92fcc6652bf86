//! The `helios-report` binary as a service manager runs it: settings from
//! `--config FILE` (under flags and environment), and logs on a pipe (as
//! journald or a log file gets them) without ANSI colour codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawns the binary with piped stdout/stderr and no inherited
/// `HELIOS_REPORT_*` settings, plus `env`.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios-report"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("HELIOS_REPORT_") {
            cmd.env_remove(key);
        }
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.spawn().unwrap()
}

/// The address from the `helios-report: http://ADDR/` line on stdout.
fn announced_addr(child: &mut Child) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("helios-report: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap()
}

/// `GET path` with `Connection: close`; the whole answer.
fn get(addr: SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to {addr}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_read_timeout(Some(START_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// SIGTERM, then everything the child wrote on stderr and its exit status.
fn stop(mut child: Child) -> (String, std::process::ExitStatus) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    (logs, child.wait().unwrap())
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("report.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_config_file_sets_what_no_flag_gives() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = dir.path().join("events.db");
    let config = write_config(
        &dir,
        &format!(
            "listen = \"127.0.0.1:{port}\"\nstore = \"sqlite://{}\"\n",
            db.display()
        ),
    );
    let mut child = spawn(&["--config", &config], &[]);
    let addr = announced_addr(&mut child);
    assert_eq!(addr.port(), port);
    let answer = get(addr, "/api/status");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (logs, status) = stop(child);
    assert!(status.success(), "{status} {logs}");
}

#[test]
fn a_flag_and_the_environment_beat_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file_port = free_port();
    let env_port = free_port();
    let config = write_config(&dir, &format!("listen = \"127.0.0.1:{file_port}\"\n"));
    let env_listen = format!("127.0.0.1:{env_port}");
    let mut child = spawn(
        &["--config", &config],
        &[("HELIOS_REPORT_LISTEN", env_listen.as_str())],
    );
    assert_eq!(announced_addr(&mut child).port(), env_port);
    stop(child);

    let flag_port = free_port();
    let flag_listen = format!("127.0.0.1:{flag_port}");
    let mut child = spawn(
        &["--config", &config, "--listen", &flag_listen],
        &[("HELIOS_REPORT_LISTEN", env_listen.as_str())],
    );
    assert_eq!(announced_addr(&mut child).port(), flag_port);
    stop(child);
}

#[test]
fn a_bad_config_file_is_refused_at_start_naming_it_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, "listen = \"127.0.0.1:1\"\nstroe = \"x\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args(["--config", &config])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&config) && err.contains("stroe"), "{err}");
}

#[test]
fn a_non_loopback_listen_from_the_file_still_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, "listen = \"0.0.0.0:1\"\n");
    let out = Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args(["--config", &config])
        .env_remove("HELIOS_REPORT_TOKEN")
        .env_remove("HELIOS_REPORT_ALLOW_ANONYMOUS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token"), "{err}");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let store = format!("sqlite://{}", db.display());
    let mut child = spawn(&["--listen", "127.0.0.1:0", "--store", &store], &[]);
    let addr = announced_addr(&mut child);
    // A request that logs nothing special; the start-up line is enough,
    // the request only proves the server was up while we looked.
    assert!(get(addr, "/api/status").starts_with("HTTP/1.1 200"));
    let (logs, status) = stop(child);
    assert!(status.success(), "{status} {logs}");
    assert!(logs.contains("listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escapes in piped logs: {logs:?}"
    );
}
