//! Syslog intake (`--syslog-udp`, `--syslog-tcp`, `--relp`) against the
//! real collector, with real clients: util-linux `logger` (UDP, TCP, octet
//! counting, RFC 5424 and 3164, structured data) and rsyslog run
//! unprivileged in the foreground with a config written here, forwarding
//! over `omfwd` (TCP, octet-counted and LF) and `omrelp`. Also: RELP's
//! durable acknowledgement across SIGKILLs (every message stored,
//! duplicates counted and bounded), oversized messages, TCP backpressure
//! at a full journal budget, the connection cap, and both I/O drivers.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// How long stored messages may take to show up.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// How each collector of a test is started.
#[derive(Clone, Copy, Debug)]
enum Host {
    /// As the host is (io_uring where the kernel allows it).
    Plain,
    /// io_uring refused by seccomp with EPERM: the cores run on epoll.
    IoUringRefused,
}

/// The syslog ports of a collector (kept across restarts).
#[derive(Clone, Copy)]
struct Ports {
    http: u16,
    udp: u16,
    tcp: u16,
    relp: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            http: free_port(),
            udp: free_port(),
            tcp: free_port(),
            relp: free_port(),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        format!("127.0.0.1:{port}").parse().unwrap()
    }
}

/// Starts a collector with all three syslog listeners and `extra` flags.
fn start(dir: &Path, ports: Ports, host: Host, extra: &[&str]) -> Collector {
    let udp = Ports::addr(ports.udp).to_string();
    let tcp = Ports::addr(ports.tcp).to_string();
    let relp = Ports::addr(ports.relp).to_string();
    let mut flags = vec![
        "--syslog-udp",
        udp.as_str(),
        "--syslog-tcp",
        tcp.as_str(),
        "--relp",
        relp.as_str(),
    ];
    flags.extend_from_slice(extra);
    let filters = match host {
        Host::Plain => vec![],
        Host::IoUringRefused => vec![seccomp::io_uring_refused(libc::EPERM)],
    };
    let c = Collector::start_confined(dir, ports.http, &flags, &[], &filters);
    if let Host::IoUringRefused = host {
        c.wait_for_log("io_uring refused");
    }
    c
}

/// Every stored event's document.
fn stored(db: &Path) -> Vec<serde_json::Value> {
    stored_docs(db)
}

/// Waits until at least `n` events are stored; returns them all.
fn wait_for_stored(db: &Path, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let docs = stored(db);
        if docs.len() >= n {
            return docs;
        }
        assert!(
            start.elapsed() < ARRIVAL_TIMEOUT,
            "only {} of {n} events stored",
            docs.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stored events by their `message`; fails on a message stored twice.
fn by_message(docs: &[serde_json::Value]) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    for doc in docs {
        let message = doc["message"].as_str().expect("a message").to_owned();
        assert!(
            out.insert(message.clone(), doc.clone()).is_none(),
            "{message:?} stored twice"
        );
    }
    out
}

/// The value of one metric line (`name{labels}`), 0 when absent.
fn metric(c: &Collector, series: &str) -> u64 {
    c.metrics()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Like [`metric`], `None` when the scrape is refused (503 at the
/// connection cap) or fails.
fn try_metric(addr: SocketAddr, series: &str) -> Option<u64> {
    let mut conn = Conn::try_open(addr).ok()?;
    conn.send_raw(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .ok()?;
    let r = conn.read_response().ok()?;
    (r.status == 200).then_some(())?;
    let text = String::from_utf8(r.body).ok()?;
    Some(
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0),
    )
}

fn messages_total(c: &Collector, transport: &str, outcome: &str) -> u64 {
    metric(
        c,
        &format!("helios_syslog_messages_total{{transport=\"{transport}\",outcome=\"{outcome}\"}}"),
    )
}

/// Runs util-linux `logger` with `args`; it must succeed.
fn logger(args: &[&str]) {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("run logger");
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `logger` is installed; a printed skip otherwise.
fn have_logger(test: &str) -> bool {
    let ok = Command::new("logger").arg("--version").output().is_ok();
    if !ok {
        skip::skip(
            test,
            "util-linux logger not installed (apt-get install bsdutils)",
        );
    }
    ok
}

#[test]
fn logger_over_udp_tcp_and_octet_counting_arrives_with_every_field() {
    logger_fields(Host::Plain, "logger_over_udp_tcp_and_octet_counting");
}

#[test]
fn logger_over_udp_tcp_and_octet_counting_arrives_on_epoll_where_io_uring_is_refused() {
    logger_fields(Host::IoUringRefused, "logger_on_epoll");
}

fn logger_fields(host: Host, test: &str) {
    if !have_logger(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let c = start(
        dir.path(),
        ports,
        host,
        &["--syslog-app", "hosts", "--syslog-type", "$app_name|syslog"],
    );
    let udp = ports.udp.to_string();
    let tcp = ports.tcp.to_string();
    let server = ["-n", "127.0.0.1"];
    let sd = [
        "--sd-id",
        "zoo@32473",
        "--sd-param",
        r#"tiger="hungry \"very\"""#,
        "--sd-param",
        r#"tiger="again""#,
    ];
    let args: Vec<Vec<&str>> = vec![
        [
            &server[..],
            &[
                "-P",
                &udp,
                "--udp",
                "--rfc5424",
                "-t",
                "udp5424",
                "-p",
                "local3.warning",
                "--msgid",
                "M1",
            ],
            &sd[..],
            &["udp 5424 message"],
        ]
        .concat(),
        [
            &server[..],
            &[
                "-P",
                &udp,
                "--udp",
                "--rfc3164",
                "-t",
                "udp3164",
                "-p",
                "mail.err",
                "udp 3164 message",
            ],
        ]
        .concat(),
        [
            &server[..],
            &[
                "-P",
                &tcp,
                "--tcp",
                "--rfc5424",
                "-t",
                "tcp5424",
                "-p",
                "daemon.debug",
                "--id=4242",
            ],
            &sd[..],
            &["tcp 5424 message"],
        ]
        .concat(),
        [
            &server[..],
            &[
                "-P",
                &tcp,
                "--tcp",
                "--octet-count",
                "--rfc5424",
                "-t",
                "octet",
                "-p",
                "auth.crit",
                "octet counted\nwith a line break",
            ],
        ]
        .concat(),
        [
            &server[..],
            &[
                "-P",
                &tcp,
                "--tcp",
                "--rfc3164",
                "-t",
                "tcp3164",
                "-p",
                "local7.info",
                "tcp 3164 message",
            ],
        ]
        .concat(),
    ];
    let before_ms = chrono_free_now_ms();
    for a in &args {
        logger(a);
    }
    let after_ms = chrono_free_now_ms();
    let docs = by_message(&wait_for_stored(&c.db_path(), args.len()));
    assert_eq!(docs.len(), args.len(), "{docs:#?}");
    let check = |message: &str, format: &str, facility: &str, severity: &str, app_name: &str| {
        let doc = docs
            .get(message)
            .unwrap_or_else(|| panic!("{message:?} not stored: {docs:#?}"));
        assert_eq!(doc["format"], format, "{doc}");
        assert_eq!(doc["facility"], facility, "{doc}");
        assert_eq!(doc["severity"], severity, "{doc}");
        assert_eq!(doc["app_name"], app_name, "{doc}");
        assert_eq!(doc["type"], app_name, "--syslog-type $app_name: {doc}");
        assert_eq!(
            doc["app"], "hosts",
            "--syslog-app, never the message's: {doc}"
        );
        // logger stamps its own time: ts is that time (to the ms; RFC 3164
        // to the second, in the collector's zone by the year rule).
        let ts = doc["ts"].as_str().unwrap();
        let ts_ms = parse_rfc3339_ms(ts);
        assert!(
            ts_ms >= before_ms - 1_000 && ts_ms <= after_ms + 1_000,
            "ts {ts} outside the send window: {doc}"
        );
        doc.clone()
    };
    let udp5424 = check(
        "udp 5424 message",
        "rfc5424",
        "local3",
        "warning",
        "udp5424",
    );
    assert_eq!(udp5424["msgid"], "M1");
    assert_eq!(
        udp5424["structured_data"]["zoo@32473"]["tiger"],
        serde_json::json!(["hungry \"very\"", "again"]),
        "a repeated name is an array, escapes removed: {udp5424}"
    );
    assert!(
        udp5424["structured_data"]["timeQuality"].is_object(),
        "{udp5424}"
    );
    check("udp 3164 message", "rfc3164", "mail", "err", "udp3164");
    let tcp5424 = check("tcp 5424 message", "rfc5424", "daemon", "debug", "tcp5424");
    assert_eq!(tcp5424["procid"], "4242");
    assert_eq!(tcp5424["priority"], "low", "debug maps to low: {tcp5424}");
    assert_eq!(tcp5424["structured_data"]["zoo@32473"]["tiger"][1], "again");
    let octet = check(
        "octet counted\nwith a line break",
        "rfc5424",
        "auth",
        "crit",
        "octet",
    );
    assert_eq!(octet["priority"], "high");
    let tcp3164 = check("tcp 3164 message", "rfc3164", "local7", "info", "tcp3164");
    assert!(tcp3164["hostname"].is_string(), "{tcp3164}");
    assert_eq!(messages_total(&c, "udp", "accepted"), 2);
    assert_eq!(messages_total(&c, "tcp", "accepted"), 3);
}

/// Now, epoch ms.
fn chrono_free_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (the collector's `ts`) to epoch ms.
fn parse_rfc3339_ms(ts: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 { ts[r].parse().unwrap() };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss, ms) = (n(11..13), n(14..16), n(17..19), n(20..23));
    assert!(ts.ends_with('Z'), "{ts}");
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

/// An rsyslogd run unprivileged in the foreground with a config of ours.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    /// Starts rsyslogd with `body` (after a `global` work directory line);
    /// `None` (a printed skip) where rsyslog or its RELP module is missing.
    fn start(test: &str, body: &str, wait_for: &[u16]) -> Option<Rsyslog> {
        if Command::new("rsyslogd").arg("-v").output().is_err() {
            skip::skip(
                test,
                "rsyslogd not installed (apt-get install rsyslog rsyslog-relp)",
            );
            return None;
        }
        if !module_installed("omrelp.so") {
            skip::skip(
                test,
                "rsyslog's omrelp module not installed (apt-get install rsyslog-relp)",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("rsyslog.conf");
        let text = format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\n{body}",
            dir.path().display()
        );
        std::fs::write(&conf, text).unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rsyslogd");
        let mut r = Rsyslog { child, dir };
        let start = Instant::now();
        for &port in wait_for {
            while TcpStream::connect(Ports::addr(port)).is_err() {
                if let Ok(Some(status)) = r.child.try_wait() {
                    panic!("rsyslogd exited at start ({status}); config:\n{body}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "rsyslogd did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = &r.dir;
        Some(r)
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an rsyslog module file exists in the usual module directories.
fn module_installed(file: &str) -> bool {
    let dirs = [
        "/usr/lib/x86_64-linux-gnu/rsyslog",
        "/usr/lib/aarch64-linux-gnu/rsyslog",
        "/usr/lib/rsyslog",
        "/usr/lib64/rsyslog",
    ];
    dirs.iter().any(|d| PathBuf::from(d).join(file).exists())
}

/// Sends `lines` (each ending in LF) to rsyslog's imtcp on `port`.
fn feed(port: u16, lines: &str) {
    let mut s = TcpStream::connect(Ports::addr(port)).unwrap();
    s.write_all(lines.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    // Wait for rsyslog to close its side, so everything was read.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// The RFC 5424 message number `n` fed to rsyslog, and what it must become.
fn rfc5424_line(tag: &str, n: usize) -> String {
    format!(
        "<165>1 2026-03-04T05:06:07.891+02:00 host-{n} app-{tag} {n} ID{n} [exampleSDID@32473 iut=\"3\" eventSource=\"App \\\"x\\\"\"] {tag} message {n} ünïcode\n"
    )
}

#[test]
fn rsyslog_forwards_over_omrelp_and_omfwd_exactly_as_sent() {
    rsyslog_forwarding(Host::Plain, "rsyslog_forwards_over_omrelp_and_omfwd");
}

#[test]
fn rsyslog_forwards_over_omrelp_and_omfwd_on_epoll_where_io_uring_is_refused() {
    rsyslog_forwarding(Host::IoUringRefused, "rsyslog_forwards_on_epoll");
}

fn rsyslog_forwarding(host: Host, test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let c = start(dir.path(), ports, host, &[]);
    let inputs = [free_port(), free_port(), free_port()];
    let body = format!(
        r#"module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="{relp_in}" ruleset="relp")
input(type="imtcp" port="{octet_in}" ruleset="octet")
input(type="imtcp" port="{lf_in}" ruleset="lf")
ruleset(name="relp") {{
  action(type="omrelp" target="127.0.0.1" port="{relp}" template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="octet") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="lf") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" template="RSYSLOG_ForwardFormat")
}}
"#,
        relp_in = inputs[0],
        octet_in = inputs[1],
        lf_in = inputs[2],
        relp = ports.relp,
        tcp = ports.tcp,
    );
    let Some(_rsyslog) = Rsyslog::start(test, &body, &inputs) else {
        return;
    };
    const N: usize = 200;
    let tags = ["relp", "octet", "lf"];
    for (tag, port) in tags.iter().zip(inputs) {
        let lines: String = (0..N).map(|n| rfc5424_line(tag, n)).collect();
        feed(port, &lines);
    }
    let docs = by_message(&wait_for_stored(&c.db_path(), 3 * N));
    // 2026-03-04T05:06:07.891+02:00
    let ts_ms = parse_rfc3339_ms("2026-03-04T03:06:07.891Z");
    for tag in tags {
        for n in 0..N {
            let message = format!("{tag} message {n} ünïcode");
            let doc = docs
                .get(&message)
                .unwrap_or_else(|| panic!("{message:?} not stored"));
            let format = if tag == "lf" { "rfc3164" } else { "rfc5424" };
            assert_eq!(doc["format"], format, "{doc}");
            assert_eq!(
                parse_rfc3339_ms(doc["ts"].as_str().unwrap()),
                ts_ms,
                "{doc}"
            );
            assert_eq!(doc["facility"], "local4", "{doc}");
            assert_eq!(doc["severity"], "notice", "{doc}");
            assert_eq!(doc["hostname"], format!("host-{n}"), "{doc}");
            assert_eq!(doc["app_name"], format!("app-{tag}"), "{doc}");
            assert_eq!(doc["procid"], n.to_string(), "{doc}");
            assert_eq!(doc["type"], "syslog");
            assert_eq!(doc["app"], "syslog");
            if format == "rfc5424" {
                assert_eq!(doc["msgid"], format!("ID{n}"), "{doc}");
                assert_eq!(
                    doc["structured_data"]["exampleSDID@32473"],
                    serde_json::json!({"iut": "3", "eventSource": "App \"x\""}),
                    "{doc}"
                );
            }
        }
    }
    assert_eq!(docs.len(), 3 * N, "nothing else stored");
    assert_eq!(messages_total(&c, "relp", "accepted"), N as u64);
    assert_eq!(messages_total(&c, "tcp", "accepted"), 2 * N as u64);
}

/// Kill cycles of the RELP test and the messages forwarded.
const RELP_KILLS: usize = 2;
const RELP_MESSAGES: usize = 100_000;
/// omrelp's window: frames sent and not yet answered (set in the config).
const RELP_WINDOW: usize = 128;

#[test]
fn rsyslog_relp_stores_every_message_across_sigkills_with_duplicates_only_from_the_window() {
    let test = "rsyslog_relp_across_sigkills";
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let mut c = start(dir.path(), ports, Host::Plain, &[]);
    let input = free_port();
    let body = format!(
        r#"module(load="imtcp")
module(load="omrelp")
main_queue(queue.size="300000")
input(type="imtcp" port="{input}" ruleset="relp")
ruleset(name="relp") {{
  action(type="omrelp" target="127.0.0.1" port="{relp}" windowSize="{RELP_WINDOW}"
         template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.size="300000"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
"#,
        relp = ports.relp,
    );
    let Some(_rsyslog) = Rsyslog::start(test, &body, &[input]) else {
        return;
    };
    let lines: String = (0..RELP_MESSAGES)
        .map(|n| format!("<14>1 - h a - - - kill {n}\n"))
        .collect();
    let feeder = std::thread::spawn(move || feed(input, &lines));
    let count = |db: &Path| -> usize {
        helios_store::sqlite::SqliteReader::open(db)
            .and_then(|store| store.count())
            .map_or(0, |n| n as usize)
    };
    for kill in 1..=RELP_KILLS {
        // Kill mid-stream: once a share of the messages is stored.
        let at = RELP_MESSAGES * kill / (RELP_KILLS + 1);
        let start_wait = Instant::now();
        while count(&c.db_path()) < at {
            assert!(
                start_wait.elapsed() < Duration::from_secs(120),
                "stuck below {at}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        c.kill_in_place();
        c = start(dir.path(), ports, Host::Plain, &[]);
    }
    feeder.join().unwrap();
    // Every message, at least once.
    let db = c.db_path();
    let deadline = Instant::now() + Duration::from_secs(180);
    let (distinct, total) = loop {
        let docs = stored(&db);
        let messages: std::collections::HashSet<String> =
            docs.iter().map(|doc| doc["message"].to_string()).collect();
        let (distinct, total) = (messages.len(), docs.len());
        if distinct >= RELP_MESSAGES || Instant::now() > deadline {
            break (distinct, total);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let duplicates = total - distinct;
    eprintln!(
        "RELP across {RELP_KILLS} SIGKILLs: {distinct} of {RELP_MESSAGES} messages stored, {duplicates} duplicates (bound {})",
        RELP_KILLS * RELP_WINDOW
    );
    assert_eq!(
        distinct, RELP_MESSAGES,
        "a message acknowledged by RELP was lost"
    );
    let strays = stored(&db)
        .iter()
        .filter(|doc| {
            !doc["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("kill "))
        })
        .count();
    assert_eq!(strays, 0, "only the messages sent are stored");
    assert!(
        duplicates <= RELP_KILLS * RELP_WINDOW,
        "{duplicates} duplicates: more than the frames in flight at the kills"
    );
}

/// A raw RELP client for the refusal tests.
struct RelpClient(TcpStream);

impl RelpClient {
    fn open(port: u16) -> RelpClient {
        let s = TcpStream::connect(Ports::addr(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut client = RelpClient(s);
        client.frame(
            1,
            "open",
            b"relp_version=0\nrelp_software=test\ncommands=syslog",
        );
        let answer = client.read_until(b"commands=syslog\n");
        assert!(answer.starts_with("1 rsp "), "{answer}");
        client
    }

    fn frame(&mut self, txnr: u32, command: &str, data: &[u8]) {
        let mut f = format!("{txnr} {command} {}", data.len()).into_bytes();
        if !data.is_empty() {
            f.push(b' ');
            f.extend_from_slice(data);
        }
        f.push(b'\n');
        self.0.write_all(&f).unwrap();
    }

    /// Reads until the answer so far ends with `end` (or the peer closes).
    fn read_until(&mut self, end: &[u8]) -> String {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(end) {
            match self.0.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => got.push(byte[0]),
                Err(e) => panic!(
                    "reading a RELP answer: {e}; so far {:?}",
                    String::from_utf8_lossy(&got)
                ),
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }
}

#[test]
fn oversized_messages_are_counted_and_skipped_and_relp_refuses_them_with_500() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let c = start(
        dir.path(),
        ports,
        Host::Plain,
        &["--syslog-max-message-bytes", "1000"],
    );
    let big = format!("<13>1 - - - - - - {}", "x".repeat(2000));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(big.as_bytes(), Ports::addr(ports.udp)).unwrap();
    udp.send_to(b"<13>1 - - - - - - udp ok", Ports::addr(ports.udp))
        .unwrap();

    let mut tcp = TcpStream::connect(Ports::addr(ports.tcp)).unwrap();
    let stream = format!(
        "{} {big}<13>1 - - - - - - tcp ok\n{big}\n<13>1 - - - - - - tcp ok 2\n",
        big.len()
    );
    tcp.write_all(stream.as_bytes()).unwrap();

    let mut relp = RelpClient::open(ports.relp);
    relp.frame(2, "syslog", b"<13>1 - - - - - - relp ok");
    assert_eq!(relp.read_until(b"\n"), "2 rsp 6 200 OK\n");
    relp.frame(3, "syslog", big.as_bytes());
    let last = relp.read_until(b"0 serverclose 0\n");
    assert!(
        last.starts_with("3 rsp ") && last.contains(" 500 "),
        "{last}"
    );
    assert!(last.ends_with("0 serverclose 0\n"), "{last}");
    let mut rest = Vec::new();
    assert_eq!(
        relp.0.read_to_end(&mut rest).unwrap(),
        0,
        "closed after serverclose"
    );

    let docs = by_message(&wait_for_stored(&c.db_path(), 4));
    let mut messages: Vec<&String> = docs.keys().collect();
    messages.sort();
    assert_eq!(messages, ["relp ok", "tcp ok", "tcp ok 2", "udp ok"]);
    assert_eq!(messages_total(&c, "udp", "too_big"), 1);
    assert_eq!(
        messages_total(&c, "tcp", "too_big"),
        2,
        "octet-counted and LF"
    );
    assert_eq!(messages_total(&c, "relp", "too_big"), 1);
    // The connection went on after both.
    tcp.write_all(b"<13>1 - - - - - - tcp still open\n")
        .unwrap();
    wait_for_stored(&c.db_path(), 5);
}

#[test]
fn a_full_journal_budget_stops_tcp_reading_drops_udp_counted_and_loses_nothing_on_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let c = start(
        dir.path(),
        ports,
        Host::Plain,
        &["--cores", "1", "--journal-budget-bytes", "65536"],
    );
    // The store exists, then stalls: hold its write lock.
    let mut tcp = TcpStream::connect(Ports::addr(ports.tcp)).unwrap();
    tcp.write_all(b"<13>1 - - - - - - first\n").unwrap();
    wait_for_stored(&c.db_path(), 1);
    let blocker = rusqlite::Connection::open(c.db_path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    const N: usize = 3000;
    let writer = std::thread::spawn(move || {
        for n in 0..N {
            let line = format!("<13>1 - - - - - - bp {n} {}\n", "p".repeat(200));
            tcp.write_all(line.as_bytes()).unwrap();
        }
        tcp
    });
    let waits = "helios_syslog_backpressure_waits_total{transport=\"tcp\"}";
    let start_wait = Instant::now();
    while metric(&c, waits) == 0 {
        assert!(
            start_wait.elapsed() < Duration::from_secs(30),
            "the budget was never reached"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reading stopped: nothing more is accepted while the store stalls.
    let accepted = messages_total(&c, "tcp", "accepted");
    assert!(accepted < N as u64, "{accepted}");
    // UDP cannot wait: its datagrams are dropped and counted.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..10 {
        udp.send_to(
            format!("<13>1 - - - - - - udp {n}").as_bytes(),
            Ports::addr(ports.udp),
        )
        .unwrap();
    }
    let start_wait = Instant::now();
    while messages_total(&c, "udp", "dropped") < 10 {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "udp drops not counted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        messages_total(&c, "tcp", "accepted"),
        accepted,
        "still reading"
    );

    // The store comes back: reading resumes and every message is stored once.
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let _tcp = writer.join().unwrap();
    let docs = by_message(&wait_for_stored(&c.db_path(), N + 1));
    assert_eq!(docs.len(), N + 1);
    assert!((0..N).all(|n| docs.keys().any(|m| m.starts_with(&format!("bp {n} ")))));
    assert_eq!(messages_total(&c, "tcp", "accepted"), N as u64 + 1);
}

#[test]
fn syslog_connections_count_against_the_per_core_connection_cap() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let c = start(
        dir.path(),
        ports,
        Host::Plain,
        &["--cores", "1", "--max-connections-per-core", "2"],
    );
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(Ports::addr(ports.tcp)).unwrap())
        .collect();
    // Once both are accepted and counted, a third connection is closed at
    // once. Until then it may be accepted: drop it and try again (a fixed
    // sleep was not enough on a loaded machine).
    let start_wait = Instant::now();
    loop {
        let mut third = TcpStream::connect(Ports::addr(ports.relp)).unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 16];
        if let Ok(0) = third.read(&mut buf) {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "a connection past the cap was never closed"
        );
    }
    drop(held);
    let refused = "helios_syslog_connections_refused_total{transport=\"relp\"}";
    let start_wait = Instant::now();
    loop {
        // /metrics itself needs a connection under the cap: retry.
        if try_metric(c.addr, refused).is_some_and(|n| n >= 1) {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "refusal not counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_syslog_listener_beyond_loopback_needs_allow_anonymous_even_with_api_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "k0123456789abcdef app ingest\n").unwrap();
    let relp = format!("0.0.0.0:{}", free_port());
    let (status, log) = start_refused(
        &dir.path().join("data"),
        &["--relp", &relp, "--api-keys", keys.to_str().unwrap()],
        &[],
    );
    assert!(!status.success());
    assert!(
        log.contains("--relp") && log.contains("--allow-anonymous"),
        "{log}"
    );
}
