//! Relay chain with real processes: load → relay collector (journals, acks)
//! → central collector (SQLite). The relay forwards `_id`, `ts`, `recv`,
//! `app` unchanged with a relay-role key; SIGKILLs of either side lose and
//! duplicate nothing.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const KEYS: &str = "k-relay edge relay\nk-app billing ingest\n";

struct Chain {
    _dir: tempfile::TempDir,
    central: Collector,
    relay: Collector,
    keys: String,
}

impl Chain {
    fn start() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(&keys, KEYS).unwrap();
        let keys = keys.to_str().unwrap().to_string();
        let central = Collector::start(&dir.path().join("central"), &["--api-keys", &keys]);
        let relay = Self::start_relay(dir.path(), central.addr.port(), free_port());
        Chain {
            _dir: dir,
            central,
            relay,
            keys,
        }
    }

    fn start_relay(dir: &std::path::Path, central_port: u16, port: u16) -> Collector {
        let upstream = format!("http://127.0.0.1:{central_port}");
        Collector::start_on(
            &dir.join("relay"),
            port,
            &["--store", &upstream, "--upstream-api-key", "k-relay"],
        )
    }
}

#[test]
fn a_relay_forwards_events_with_their_ids_times_and_app() {
    let chain = Chain::start();
    let id = client_id(1);
    let body = format!(
        r#"{{"_id":"{id}","type":"relayed","app":"shop","ts":"2026-11-30T12:00:00.000Z"}}"#
    );
    let r = Conn::open(chain.relay.addr)
        .post(&[], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&chain.central.db_path(), 1);
    let doc = store.get(oid(&id)).unwrap().unwrap();
    assert_eq!(doc.event_type, "relayed");
    assert_eq!(
        doc.app.as_deref(),
        Some("shop"),
        "the relay's events keep their app"
    );
    let v: serde_json::Value = serde_json::from_str(&doc.doc).unwrap();
    assert_eq!(v["ts"], "2026-11-30T12:00:00.000Z");
    assert!(v["recv"].is_string());
    let _ = &chain.keys;
}

#[test]
fn sigkills_of_the_relay_and_of_the_central_collector_lose_and_duplicate_nothing() {
    let mut chain = Chain::start();
    let dir = chain._dir.path().to_path_buf();
    let (relay_port, central_port) = (chain.relay.addr.port(), chain.central.addr.port());
    let log = LoadLog::default();
    for cycle in 0..6 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = [1u64, 10]
            .into_iter()
            .map(|n| {
                let (stop, log, addr) = (stop.clone(), log.clone(), chain.relay.addr);
                std::thread::spawn(move || load_worker(addr, n, stop, log))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        if cycle % 2 == 0 {
            chain.relay.kill_in_place();
            chain.relay = Chain::start_relay(&dir, central_port, relay_port);
        } else {
            chain.central.kill_in_place();
            chain.central = Collector::start_on(
                &dir.join("central"),
                central_port,
                &["--api-keys", &chain.keys],
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 500, "only {} acked", acked.len());
    // Everything the relay acked reaches the central store exactly once
    // (events the relay journaled but could not ack may arrive too).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let store = helios_store::sqlite::SqliteReader::open(chain.central.db_path()).unwrap();
        let stored = stored_ids(&store);
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 {
            assert_eq!(store.count().unwrap() as usize, stored.len());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} relay-acked events never reached the central store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_upstream_outage_fills_the_relays_budget_then_503s_and_drains_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, KEYS).unwrap();
    let keys = keys.to_str().unwrap().to_string();
    // The central collector is down from the start: its port is reserved
    // but nothing listens.
    let central_port = free_port();
    let upstream = format!("http://127.0.0.1:{central_port}");
    let relay = Collector::start(
        &dir.path().join("relay"),
        &[
            "--store",
            &upstream,
            "--upstream-api-key",
            "k-relay",
            "--cores",
            "1",
            "--journal-budget-bytes",
            "262144",
        ],
    );
    let (acked, refused) = post_until_budget_503(relay.addr, 0);

    // The central collector comes back: the backlog drains, exactly once.
    let central = Collector::start_on(
        &dir.path().join("central"),
        central_port,
        &["--api-keys", &keys],
    );
    assert_exactly_acked(&central.db_path(), &acked, &refused);
    assert_eq!(relay.stop().code(), Some(0));
    assert_eq!(central.stop().code(), Some(0));
}

/// A TLS-terminating proxy in front of a plain collector, as a load
/// balancer would be (DESIGN §9): one rustls server connection per client,
/// requests forwarded one at a time over a plain connection.
fn tls_proxy(target: std::net::SocketAddr) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, client);
                let Ok(mut upstream) = std::net::TcpStream::connect(target) else {
                    return;
                };
                while let Some(request) = read_http_message(&mut tls, true) {
                    if upstream.write_all(&request).is_err() {
                        return;
                    }
                    let Some(response) = read_http_message(&mut upstream, false) else {
                        return;
                    };
                    if tls.write_all(&response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One whole HTTP/1.1 message (head + Content-Length body) from `from`.
fn read_http_message(from: &mut impl std::io::Read, request: bool) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let parsed = if request {
            httparse::Request::new(&mut headers).parse(&buf)
        } else {
            httparse::Response::new(&mut headers).parse(&buf)
        };
        if let Ok(httparse::Status::Complete(head)) = parsed {
            let len: usize = headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| {
                    std::str::from_utf8(h.value)
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap()
                })
                .unwrap_or(0);
            if buf.len() >= head + len {
                return Some(buf);
            }
        }
        let n = from.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_relay_forwards_over_https_to_a_tls_terminating_balancer() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, KEYS).unwrap();
    let central = Collector::start(
        &dir.path().join("central"),
        &["--api-keys", keys.to_str().unwrap()],
    );
    let proxy_port = tls_proxy(central.addr);
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/ca.pem");
    let upstream = format!("https://127.0.0.1:{proxy_port}");
    let relay = Collector::start(
        &dir.path().join("relay"),
        &[
            "--store",
            &upstream,
            "--upstream-api-key",
            "k-relay",
            "--upstream-ca-file",
            ca.to_str().unwrap(),
        ],
    );
    let ids: Vec<String> = (0..200).map(client_id).collect();
    let events: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"_id":"{id}","type":"tls","app":"shop"}}"#))
        .collect();
    let r = Conn::open(relay.addr)
        .post(&[], format!("[{}]", events.join(",")).as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    assert_exactly_acked(&central.db_path(), &ids, &[]);
    assert_eq!(relay.stop().code(), Some(0));
}

#[test]
fn a_relay_refuses_an_https_upstream_it_cannot_verify() {
    let dir = tempfile::tempdir().unwrap();
    let central = Collector::start(&dir.path().join("central"), &[]);
    let proxy_port = tls_proxy(central.addr);
    // No --upstream-ca-file: the test CA is not among the Mozilla roots.
    let upstream = format!("https://127.0.0.1:{proxy_port}");
    let relay = Collector::start(&dir.path().join("relay"), &["--store", &upstream]);
    let id = client_id(1);
    let body = format!(r#"{{"_id":"{id}","type":"tls"}}"#);
    assert_eq!(
        Conn::open(relay.addr)
            .post(&[], body.as_bytes())
            .unwrap()
            .status,
        200,
        "the relay journals and acks regardless"
    );
    // Nothing reaches the central store, and the relay reports the store
    // as failing.
    std::thread::sleep(Duration::from_millis(1500));
    let mut probe = Conn::open(relay.addr);
    probe
        .send_raw(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let metrics = String::from_utf8(probe.read_response().unwrap().body).unwrap();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("helios_store_errors_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(errors > 0, "certificate failures count as store errors");
    assert!(
        !central.db_path().exists()
            || helios_store::sqlite::SqliteReader::open(central.db_path())
                .unwrap()
                .count()
                .unwrap()
                == 0
    );
}

#[test]
fn an_event_the_upstream_rejects_becomes_a_dead_letter_on_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    // The central tier is stricter than the relay: it rejects deep events.
    let central = Collector::start(&dir.path().join("central"), &["--max-json-depth", "3"]);
    let relay = Collector::start(
        &dir.path().join("relay"),
        &["--store", &format!("http://{}", central.addr)],
    );
    let ids: Vec<String> = (0..3).map(client_id).collect();
    let body = format!(
        r#"[{{"_id":"{}","type":"ok"}},{{"_id":"{}","type":"deep","a":{{"b":{{"c":{{"d":1}}}}}}}},{{"_id":"{}","type":"ok"}}]"#,
        ids[0], ids[1], ids[2]
    );
    assert_eq!(
        Conn::open(relay.addr)
            .post(&[], body.as_bytes())
            .unwrap()
            .status,
        200
    );
    assert_exactly_acked(
        &central.db_path(),
        &[ids[0].clone(), ids[2].clone()],
        &[ids[1].clone()],
    );
    let letters = wait_for_dead_letters(&dir.path().join("relay"));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.as_ref().unwrap()["_id"], ids[1].as_str());
    assert!(
        letters[0].reason.contains("upstream rejected"),
        "{}",
        letters[0].reason
    );
    assert_eq!(relay.stop().code(), Some(0));
}

// ---------------------------------------------------------------------------
// A hostile or broken upstream, against the sink itself (no relay process):
// whatever it answers, `write_batch` returns an error the flusher can act on,
// and never panics.

/// How long a scripted upstream keeps a connection open after answering, so
/// a sink that waits for a body it was promised is seen waiting.
const SCRIPTED_LINGER: Duration = Duration::from_secs(20);
/// Longest a refusal may take: well under the relay's 10 s read timeout, so
/// a sink that waited for the promised body fails the test.
const PROMPT_REFUSAL: Duration = Duration::from_secs(5);

/// What a scripted upstream saw: each request's head, as text.
type SeenHeads = Arc<std::sync::Mutex<Vec<String>>>;

/// A fake upstream on 127.0.0.1 that reads each request whole and answers
/// it with `answer` (raw bytes), then keeps the connection open (up to
/// [`SCRIPTED_LINGER`]) without another word. Serves at most 16
/// connections; the thread ends with the test process.
fn scripted_upstream(answer: Vec<u8>) -> (std::net::SocketAddr, SeenHeads) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: SeenHeads = Arc::default();
    let heads = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().take(16) {
            let Ok(mut client) = client else { continue };
            let (answer, heads) = (answer.clone(), heads.clone());
            std::thread::spawn(move || {
                let _ = client.set_read_timeout(Some(SCRIPTED_LINGER));
                // One answer per request, for as long as the sink sends.
                while let Some(request) = read_http_message(&mut client, true) {
                    let head_end = request
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .unwrap_or(request.len());
                    heads
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&request[..head_end]).into_owned());
                    if client.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A batch of `n` events as the flusher would hand it to the sink.
fn relay_batch(n: u64) -> Vec<helios_store::EventDoc> {
    (0..n)
        .map(|i| {
            let id = client_id(i);
            helios_store::EventDoc {
                id: oid(&id),
                event_type: "hostile".to_owned(),
                ts_ms: 1_700_000_000_000,
                recv_ms: 1_700_000_000_000,
                app: None,
                host: None,
                doc: format!(r#"{{"_id":"{id}","type":"hostile"}}"#),
            }
        })
        .collect()
}

/// `write_batch` of a 2-event batch against an upstream answering `answer`,
/// and how long it took.
fn write_against(
    answer: &[u8],
) -> (
    Result<helios_store::WriteOutcome, helios_store::SinkError>,
    Duration,
) {
    use helios_store::Sink;
    let (addr, _) = scripted_upstream(answer.to_vec());
    let mut sink =
        helios_ingest::relay::RelaySink::open(&format!("http://{addr}"), None, None).unwrap();
    let started = std::time::Instant::now();
    let outcome = sink.write_batch(&relay_batch(2));
    (outcome, started.elapsed())
}

/// Asserts that `answer` makes `write_batch` fail as transient, promptly.
fn assert_transient(answer: &[u8]) {
    let shown = String::from_utf8_lossy(&answer[..answer.len().min(120)]).into_owned();
    let (outcome, took) = write_against(answer);
    assert!(
        matches!(outcome, Err(helios_store::SinkError::Transient { .. })),
        "{shown:?}: {outcome:?}"
    );
    assert!(took < PROMPT_REFUSAL, "{shown:?}: took {took:?}");
}

#[test]
fn a_content_length_past_the_address_space_is_transient_not_a_panic() {
    for length in [
        "18446744073709551615",
        "18446744073709551600",
        "9223372036854775808",
    ] {
        assert_transient(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n{{}}").as_bytes(),
        );
    }
}

#[test]
fn garbage_content_lengths_are_transient_whatever_the_status() {
    // A response whose framing cannot be read says nothing trustworthy:
    // not even its status is a verdict on the batch.
    for length in [
        "abc",
        "-1",
        "+5",
        "5 5",
        "0x10",
        "",
        "99999999999999999999999",
    ] {
        for status in ["200 OK", "400 Bad Request"] {
            assert_transient(
                format!("HTTP/1.1 {status}\r\nContent-Length: {length}\r\n\r\nhello").as_bytes(),
            );
        }
    }
    assert_transient(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nhi",
    );
}

#[test]
fn an_answer_larger_than_the_response_cap_is_transient_at_once() {
    let over_cap = 2 << 20;
    // Promised but never sent: refused from the head, without waiting.
    assert_transient(format!("HTTP/1.1 200 OK\r\nContent-Length: {over_cap}\r\n\r\n{{").as_bytes());
    // Sent in full, by each framing.
    let big = vec![b' '; over_cap];
    let mut framed = format!("HTTP/1.1 200 OK\r\nContent-Length: {over_cap}\r\n\r\n").into_bytes();
    framed.extend_from_slice(&big);
    assert_transient(&framed);
    let mut chunked =
        format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{over_cap:x}\r\n")
            .into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_transient(&chunked);
}

#[test]
fn a_chunked_answer_from_the_upstream_is_understood() {
    let (outcome, _) = write_against(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          e\r\n{\"accepted\":2,\r\nf\r\n\"rejected\":[]}\n\r\n0\r\n\r\n",
    );
    assert_eq!(
        outcome.unwrap(),
        helios_store::WriteOutcome {
            inserted: 2,
            duplicates: 0
        }
    );
    let (outcome, _) = write_against(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
          33\r\n{\"accepted\":1,\"rejected\":[{\"index\":1,\"error\":\"x\"}]}\r\n0\r\n\r\n",
    );
    match outcome {
        Err(helios_store::SinkError::Refused { stored, refused }) => {
            assert_eq!(stored.inserted, 1);
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].index, 1);
            assert_eq!(refused[0].reason, "upstream rejected it: x");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_interim_response_before_the_answer_is_skipped() {
    let (outcome, _) = write_against(
        b"HTTP/1.1 100 Continue\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n{\"accepted\":2,\"rejected\":[]}",
    );
    assert_eq!(outcome.unwrap().inserted, 2);
}

#[test]
fn relayed_requests_carry_the_relay_mark_and_key_but_no_sent_at() {
    use helios_store::Sink;
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n{\"accepted\":2,\"rejected\":[]}";
    let (addr, seen) = scripted_upstream(answer.to_vec());
    let mut sink = helios_ingest::relay::RelaySink::open(
        &format!("http://{addr}/prefix/"),
        Some("k-relay".to_owned()),
        None,
    )
    .unwrap();
    sink.ping().unwrap();
    for _ in 0..2 {
        assert_eq!(sink.write_batch(&relay_batch(2)).unwrap().inserted, 2);
    }
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(
            head.starts_with("POST /prefix/v1/events HTTP/1.1\r\n"),
            "{head}"
        );
        for line in [
            "\r\nhelios-relay: 1",
            "\r\nauthorization: bearer k-relay",
            "\r\ncontent-encoding: gzip",
            "\r\ncontent-type: application/x-ndjson",
        ] {
            assert!(lower.contains(line), "{line:?} missing from {head}");
        }
        // DESIGN §3: a relay forwards stored times; a send time would make
        // the upstream correct them for skew again.
        assert!(!lower.contains("helios-sent-at"), "{head}");
    }
}

#[test]
fn statuses_map_to_retry_classes() {
    for status in [408, 429, 500, 502, 503] {
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        assert_transient(answer.as_bytes());
    }
    for status in [400, 401, 403, 404, 413] {
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 4\r\n\r\nnope");
        let (outcome, _) = write_against(answer.as_bytes());
        match outcome {
            Err(helios_store::SinkError::Permanent { source, .. }) => {
                assert!(
                    source.to_string().contains(&format!("{status}")),
                    "{source}"
                );
                assert!(source.to_string().contains("nope"), "{source}");
            }
            other => panic!("{status}: {other:?}"),
        }
    }
    // An index outside the batch is the upstream's mistake: retry.
    assert_transient(
        b"HTTP/1.1 200 OK\r\nContent-Length: 51\r\n\r\n{\"accepted\":1,\"rejected\":[{\"index\":7,\"error\":\"x\"}]}",
    );
}
