//! The report server's JSON API over a real SQLite store filled through a
//! real collector (see `support`).

mod support;

use std::collections::HashSet;

use serde_json::{json, Value};
use support::http::{self, SseStream};
use support::{corpus, corpus_range, enc, shared, Stack};

fn ids(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["_id"].as_str().unwrap().to_owned())
        .collect()
}

fn ts_of(event: &Value) -> String {
    event["ts"].as_str().unwrap().to_owned()
}

#[test]
fn types_are_listed_with_counts_most_frequent_first() {
    let body = shared().get_json(&format!("/api/types?{}", corpus_range()));
    assert_eq!(
        body["types"],
        json!([
            {"type": "signup", "count": 24},
            {"type": "login", "count": 10},
            {"type": "purchase", "count": 6},
        ])
    );
    assert_eq!(body["total"], json!(40));
}

#[test]
fn pages_are_newest_first_and_cursors_walk_every_event_once() {
    let stack = shared();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut target = format!("/api/events?{}&limit=15", corpus_range());
        if let Some(c) = &cursor {
            target.push_str(&format!("&cursor={}", enc(c)));
        }
        let body = stack.get_json(&target);
        seen.extend(body["events"].as_array().unwrap().iter().cloned());
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 40);
    let unique: HashSet<String> = ids(&Value::Array(seen.clone())).into_iter().collect();
    assert_eq!(unique.len(), 40);
    let times: Vec<String> = seen.iter().map(ts_of).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
}

#[test]
fn ascending_sort_returns_the_oldest_first() {
    let body = shared().get_json(&format!("/api/events?{}&sort=asc&limit=3", corpus_range()));
    let times: Vec<String> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(ts_of)
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert_eq!(body["events"][0]["type"], json!("signup"));
}

#[test]
fn a_text_filter_selects_the_matching_events() {
    let q = enc("type:signup plan:pro latency_ms>250 NOT country:US");
    let body = shared().get_json(&format!("/api/events?{}&q={q}", corpus_range()));
    let expected = corpus()
        .into_iter()
        .filter(|e| {
            e["type"] == "signup"
                && e["plan"] == "pro"
                && e["latency_ms"].as_i64().unwrap() > 250
                && e["country"] != "US"
        })
        .count();
    let events = body["events"].as_array().unwrap();
    assert!(expected > 0);
    assert_eq!(events.len(), expected);
    for event in events {
        assert_eq!(event["plan"], json!("pro"));
        assert_ne!(event["country"], json!("US"));
    }
}

#[test]
fn a_raw_mongodb_filter_selects_the_matching_events() {
    let filter = enc(r#"{"latency_ms": {"$gte": 500}, "user.tier": "gold"}"#);
    let body = shared().get_json(&format!("/api/events?{}&filter={filter}", corpus_range()));
    let events = body["events"].as_array().unwrap();
    let expected = corpus()
        .into_iter()
        .filter(|e| {
            e["latency_ms"].as_i64().is_some_and(|l| l >= 500) && e["user"]["tier"] == "gold"
        })
        .count();
    assert_eq!(events.len(), expected);
}

#[test]
fn the_types_parameter_restricts_the_types() {
    let body = shared().get_json(&format!(
        "/api/events?{}&types=login,purchase",
        corpus_range()
    ));
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 16);
    assert!(events.iter().all(|e| e["type"] != "signup"));
}

#[test]
fn a_bad_text_filter_is_a_400_with_the_position_of_the_problem() {
    let q = "plan:pro (country:US";
    let response = shared().get(&format!("/api/events?q={}", enc(q)));
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"], json!("bad filter"));
    let position = body["position"].as_u64().expect("a position") as usize;
    assert!(position <= q.chars().count(), "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("q: "),
        "{body}"
    );
}

#[test]
fn a_doubled_comparison_operator_is_a_400_at_the_second_one_not_an_empty_page() {
    let q = "latency_ms>>100";
    let response = shared().get(&format!("/api/events?{}&q={}", corpus_range(), enc(q)));
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"], json!("bad filter"), "{body}");
    assert_eq!(body["position"], json!(11), "the second `>`: {body}");
    let detail = body["detail"].as_str().expect("a detail");
    assert!(detail.starts_with("q: unknown operator `>>`"), "{body}");
}

#[test]
fn malformed_filter_json_is_a_400_with_the_position_of_the_problem() {
    let response = shared().get(&format!("/api/events?filter={}", enc(r#"{"plan": }"#)));
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["position"], json!(9));
}

#[test]
fn histogram_buckets_add_up_to_the_selection() {
    let body = shared().get_json(&format!("/api/histogram?{}&buckets=30", corpus_range()));
    let interval = body["interval_ms"].as_i64().unwrap();
    // 31 minutes in at most 30 bars: the next round width above 62 s.
    assert_eq!(interval, 120_000);
    let buckets = body["buckets"].as_array().unwrap();
    let total: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 40);
    let starts: Vec<i64> = buckets
        .iter()
        .map(|b| b["start"].as_i64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == interval),
        "dense, ordered buckets"
    );
    assert_eq!(body["series"], json!([{"label": "count"}]));
}

#[test]
fn a_split_histogram_has_one_series_per_top_value() {
    let body = shared().get_json(&format!(
        "/api/histogram?{}&types=signup&split=plan&top=2",
        corpus_range()
    ));
    let labels: Vec<&str> = body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["free", "pro", "(other)"]);
    let mut per_series = [0u64; 3];
    for bucket in body["buckets"].as_array().unwrap() {
        for (i, count) in bucket["counts"].as_array().unwrap().iter().enumerate() {
            per_series[i] += count.as_u64().unwrap();
        }
    }
    assert_eq!(per_series, [12, 6, 6]);
}

#[test]
fn group_by_returns_the_top_values_with_counts() {
    let body = shared().get_json(&format!(
        "/api/groups?{}&types=signup&field=plan&top=2",
        corpus_range()
    ));
    assert_eq!(body["field"], json!("plan"));
    let groups: Vec<(Value, u64)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["value"].clone(), g["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(groups, [(json!("free"), 12), (json!("pro"), 6)]);
    // The 6 "team" signups are beyond the top 2.
    assert_eq!(body["other_count"], json!(6));
    assert_eq!(body["total"], json!(24));
}

#[test]
fn a_missing_field_is_a_group_of_its_own() {
    let body = shared().get_json(&format!("/api/groups?{}&field=plan&top=1", corpus_range()));
    let first = &body["groups"][0];
    assert_eq!(first["key"], json!({"kind": "missing"}));
    assert_eq!(first["label"], json!("(missing)"));
    assert_eq!(first["count"], json!(16));
}

#[test]
fn field_names_include_nested_paths() {
    let body = shared().get_json(&format!("/api/fields?{}", corpus_range()));
    let names: HashSet<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for expected in [
        "plan",
        "latency_ms",
        "user.name",
        "user.tier",
        "tags",
        "amount",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn value_suggestions_follow_a_prefix() {
    let body = shared().get_json(&format!(
        "/api/values?{}&field=plan&prefix=f",
        corpus_range()
    ));
    let values: Vec<&Value> = body["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["value"])
        .collect();
    assert_eq!(values, [&json!("free")]);
}

#[test]
fn one_event_is_fetched_by_id() {
    let stack = shared();
    let page = stack.get_json(&format!("/api/events?{}&limit=1", corpus_range()));
    let first = &page["events"][0];
    let id = first["_id"].as_str().unwrap();
    let body = stack.get_json(&format!("/api/events/{id}"));
    assert_eq!(&body["event"], first);
}

#[test]
fn an_unknown_id_is_404_and_a_malformed_one_400() {
    let stack = shared();
    let missing = stack.get("/api/events/000000000000000000000000");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], json!("not found"));
    assert_eq!(stack.get("/api/events/nope").status, 400);
}

#[test]
fn bad_parameters_are_400s_that_name_the_parameter() {
    let stack = shared();
    for (target, name) in [
        ("/api/events?limit=0", "limit"),
        ("/api/events?limit=100000", "limit"),
        ("/api/events?from=10&to=5", "from"),
        ("/api/events?from=yesterday", "from"),
        ("/api/events?cursor=garbage", "cursor"),
        ("/api/events?sort=sideways", "sort"),
        ("/api/groups", "field"),
        ("/api/groups?field=a..b", "field"),
        (
            "/api/histogram?from=0&to=86400000&interval_ms=1",
            "interval",
        ),
        ("/api/export?format=xml", "format"),
    ] {
        let response = stack.get(target);
        assert_eq!(response.status, 400, "{target}: {}", response.text());
        let detail = response.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(name), "{target}: {detail}");
    }
}

#[test]
fn ndjson_export_streams_every_selected_event() {
    let response = shared().get(&format!(
        "/api/export?format=ndjson&{}&types=signup",
        corpus_range()
    ));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/x-ndjson")
    );
    assert!(response
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment")));
    let lines: Vec<Value> = response
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    assert!(lines.iter().all(|e| e["type"] == "signup"));
}

#[test]
fn csv_export_has_a_header_quoted_cells_and_defused_formulas() {
    let response = shared().get(&format!(
        "/api/export?format=csv&{}&types=purchase&fields=type,amount,note&sort=asc",
        corpus_range()
    ));
    assert_eq!(response.status, 200);
    let text = response.text();
    let mut lines = text.split("\r\n");
    assert_eq!(lines.next(), Some("type,amount,note"));
    assert_eq!(
        lines.next(),
        Some("purchase,9.5,\"a \"\"quoted\"\", comma\"")
    );
    assert_eq!(lines.next(), Some("purchase,19.0,'=SUM(A1:A9)"));
}

#[test]
fn the_live_tail_delivers_events_stored_after_it_started_in_order() {
    let stack = Stack::start();
    stack.ingest(&[json!({"type": "before"})], 1);
    let mut tail = SseStream::open(stack.report, "/api/tail?types=after", &[]).unwrap();
    let events: Vec<Value> = (0..3).map(|i| json!({"type": "after", "n": i})).collect();
    stack.ingest(&events[..1], 2);
    stack.ingest(&[json!({"type": "ignored"})], 3);
    stack.ingest(&events[1..], 5);
    let received: Vec<Value> = (0..3)
        .map(|_| {
            let event = tail.next_event().expect("an event");
            assert_eq!(event.event, "event");
            serde_json::from_str(&event.data).unwrap()
        })
        .collect();
    let ns: Vec<&Value> = received.iter().map(|e| &e["n"]).collect();
    assert_eq!(ns, [&json!(0), &json!(1), &json!(2)]);
}

#[test]
fn the_live_tail_resumes_after_the_last_event_id() {
    let stack = Stack::start();
    let mut tail = SseStream::open(stack.report, "/api/tail", &[]).unwrap();
    stack.ingest(&[json!({"type": "one"})], 1);
    let first = tail.next_event().unwrap();
    let id = first
        .id
        .expect("the last event of a poll carries the position");
    drop(tail);
    stack.ingest(&[json!({"type": "two"})], 2);
    let mut resumed =
        SseStream::open(stack.report, "/api/tail", &[("Last-Event-ID", &id)]).unwrap();
    let next: Value = serde_json::from_str(&resumed.next_event().unwrap().data).unwrap();
    assert_eq!(next["type"], json!("two"));
}

#[test]
fn a_live_tail_behind_by_many_pages_catches_up_without_waiting_between_them() {
    let stack = Stack::start();
    let mut tail = SseStream::open(stack.report, "/api/tail", &[]).unwrap();
    stack.ingest(&[json!({"type": "mark"})], 1);
    let id = tail.next_event().unwrap().id.expect("a position");
    drop(tail);
    // A backlog of many full polls (500 events each) behind that position.
    const BACKLOG: u64 = 5_000;
    let events: Vec<Value> = (0..BACKLOG)
        .map(|n| json!({"type": "backlog", "n": n}))
        .collect();
    stack.ingest(&events, BACKLOG + 1);
    let polls = BACKLOG as u32 / 500;
    let started = std::time::Instant::now();
    let mut resumed =
        SseStream::open(stack.report, "/api/tail", &[("Last-Event-ID", &id)]).unwrap();
    for n in 0..BACKLOG {
        let event: Value = serde_json::from_str(&resumed.next_event().unwrap().data).unwrap();
        assert_eq!(event["n"], json!(n));
    }
    let elapsed = started.elapsed();
    // Sleeping between full polls would take at least (polls - 1) poll
    // intervals; catching up takes well under half of that.
    let sleeping = helios_report::api::TAIL_POLL_INTERVAL * (polls - 1);
    assert!(
        elapsed < sleeping / 2,
        "{BACKLOG} events took {elapsed:?}; sleeping between polls takes {sleeping:?}"
    );
}

#[test]
fn a_store_file_that_does_not_exist_yet_is_a_503_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("later.db").display());
    let server = support::ReportOnly::start(&store);
    let response = http::get(server.addr, "/api/types");
    assert_eq!(response.status, 503);
    assert_eq!(response.json()["error"], json!("no store yet"));
}

#[test]
fn an_unreachable_mongodb_is_a_prompt_500_not_a_hang() {
    let server = support::ReportOnly::start(
        "mongodb://127.0.0.1:1/?directConnection=true&serverSelectionTimeoutMS=300",
    );
    let started = std::time::Instant::now();
    let response = http::get(server.addr, "/api/types");
    assert_eq!(response.status, 500, "{}", response.text());
    assert_eq!(response.json()["error"], json!("store error"));
    assert!(
        !response.text().contains("127.0.0.1:1"),
        "no store details leak"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_store_file_created_later_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.db");
    let server = support::ReportOnly::start(&format!("sqlite://{}", path.display()));
    assert_eq!(http::get(server.addr, "/api/types").status, 503);
    drop(helios_store::sqlite::SqliteSink::open(&path).unwrap());
    let response = http::get(server.addr, "/api/types");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["types"], json!([]));
}

#[test]
fn live_tails_past_the_limit_get_503() {
    let stack = Stack::start();
    let tails: Vec<SseStream> = (0..helios_report::api::MAX_TAIL_CLIENTS)
        .map(|_| SseStream::open(stack.report, "/api/tail", &[]).unwrap())
        .collect();
    let refused = match SseStream::open(stack.report, "/api/tail", &[]) {
        Ok(_) => panic!("a tail past the limit was accepted"),
        Err(response) => response,
    };
    assert_eq!(refused.status, 503);
    assert!(refused.json()["detail"]
        .as_str()
        .unwrap()
        .contains("live tails"));
    drop(tails);
    // Closed tails give their places back (hyper notices the closed
    // connection and drops the stream, and with it the permit).
    support::wait_until("a tail place is free again", || {
        SseStream::open(stack.report, "/api/tail", &[]).is_ok()
    });
}

#[test]
fn an_export_whose_client_never_reads_gives_its_slot_back_after_the_idle_timeout() {
    use std::io::Write;
    let stack = Stack::start_configured(&[], |cfg| {
        cfg.export_idle_timeout = std::time::Duration::from_secs(2);
    });
    // Far more than the socket buffers and the export channel hold, so a
    // client that reads nothing stalls the export.
    const EVENTS: u64 = 400;
    let padding = "x".repeat(64 * 1024);
    let events: Vec<Value> = (0..EVENTS)
        .map(|n| json!({"type": "big", "n": n, "pad": padding}))
        .collect();
    // Requests stay well under the test collector's journal record limit.
    let mut stored = 0;
    for batch in events.chunks(32) {
        stored += batch.len() as u64;
        stack.ingest(batch, stored);
    }
    let export = "/api/export?format=ndjson&from=0";
    let stalled: Vec<std::net::TcpStream> = (0..helios_report::api::MAX_CONCURRENT_EXPORTS)
        .map(|_| {
            let mut socket = connect_with_small_receive_buffer(stack.report);
            write!(
                socket,
                "GET {export} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                stack.report
            )
            .unwrap();
            // The answer has begun (so this export holds a slot), and
            // nothing is read: peek leaves it in the socket.
            socket
                .set_read_timeout(Some(support::STORE_TIMEOUT))
                .unwrap();
            let mut head = [0u8; 12];
            let n = socket.peek(&mut head).unwrap();
            assert_eq!(&head[..n], b"HTTP/1.1 200");
            socket
        })
        .collect();
    // Every slot is taken by a client that reads nothing...
    assert_eq!(stack.get(export).status, 503);
    // ...and the slots come back once the idle timeout passes, while those
    // clients are still connected.
    support::wait_until("an export slot is free again", || {
        let response = stack.get("/api/export?format=ndjson&from=0&limit=1");
        response.status == 200 && response.text().lines().count() == 1
    });
    drop(stalled);
}

/// A client socket whose receive buffer stays tiny (set before connecting,
/// so the kernel does not grow it): what the server sends piles up on its
/// side instead of in this socket.
fn connect_with_small_receive_buffer(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("the test servers listen on IPv4 loopback")
    };
    // SAFETY: plain socket(2), setsockopt(2) and connect(2) on a descriptor
    // this function owns; it is handed to TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 4096;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        std::net::TcpStream::from_raw_fd(fd)
    }
}

// ---- Hostile and extreme queries (issue 13, items 5 and 6) ----

/// Accepted by every regex limit, yet each match over a run of `a`s costs
/// positions (993) × bytes once the lazy DFA gives up.
const COSTLY_PATTERN: &str = "(?:a{1,31}){1,32}c";

/// A stack whose store holds `events` runs of 3,000 `a`s (`s`), which
/// [`COSTLY_PATTERN`] scans slowly and never matches.
fn hostile_stack(events: u64, tweak: impl FnOnce(&mut helios_report::ReportConfig)) -> Stack {
    let stack = Stack::start_configured(&[], tweak);
    let value = "a".repeat(3_000);
    let batch: Vec<Value> = (0..events)
        .map(|n| json!({"type": "hostile", "n": n, "s": value}))
        .collect();
    stack.ingest(&batch, events);
    stack
}

fn costly_query() -> String {
    format!(
        "/api/events?from=0&q={}",
        enc(&format!("s:/{COSTLY_PATTERN}/"))
    )
}

#[test]
fn a_costly_regex_query_answers_503_at_its_time_budget_not_minutes_later() {
    let budget = std::time::Duration::from_secs(1);
    let stack = hostile_stack(60, |cfg| cfg.query_timeout = budget);
    let started = std::time::Instant::now();
    let response = stack.get(&costly_query());
    let took = started.elapsed();
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.json()["detail"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{}",
        response.text()
    );
    assert!(
        took < budget + std::time::Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn a_nested_counted_repetition_is_a_400_in_both_filter_languages() {
    let nested = "(?:a{1,100}){1,100}c";
    for target in [
        format!("/api/events?q={}", enc(&format!("s:/{nested}/"))),
        format!(
            "/api/events?filter={}",
            enc(&json!({"s": {"$regex": nested}}).to_string())
        ),
    ] {
        let response = shared().get(&target);
        assert_eq!(response.status, 400, "{target}: {}", response.text());
        let detail = response.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("multiply to 10000"), "{detail}");
    }
}

#[test]
fn the_report_server_stops_within_seconds_while_a_costly_query_runs() {
    // The default 30 s budget: only the shutdown can stop this query soon.
    let stack = hostile_stack(200, |_| {});
    let server = support::ReportOnly::start(&format!("sqlite://{}", stack.db_path().display()));
    let addr = server.addr;
    let client = std::thread::spawn(move || http::get(addr, &costly_query()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    drop(server);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "stopped after {took:?}"
    );
    let response = client.join().unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.text().contains("shutting down"),
        "{}",
        response.text()
    );
}

#[test]
fn the_report_binary_exits_within_seconds_of_sigterm_while_a_costly_query_runs() {
    use std::io::BufRead;
    let stack = hostile_stack(200, |_| {});
    let store = format!("sqlite://{}", stack.db_path().display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_helios-report"))
        .args(["--listen", "127.0.0.1:0", "--store", &store])
        .env_remove("HELIOS_REPORT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("helios-report: http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();
    let client = std::thread::spawn(move || http::get(addr, &costly_query()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    // SAFETY: kill(2) on the child this test spawned and still owns.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running 20 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "exited after {took:?}"
    );
    assert_eq!(client.join().unwrap().status, 503);
}

#[test]
fn the_largest_in_list_the_node_limit_allows_is_answered() {
    // The document, the field and `$in` are three nodes; each value one.
    let values: Vec<Value> = (0..helios_store::query::MAX_MONGO_FILTER_NODES - 3)
        .map(|i| json!(i))
        .collect();
    for (operator, expected) in [("$in", 24), ("$nin", 16)] {
        let filter = json!({"latency_ms": {operator: values}}).to_string();
        let page = shared().get_json(&format!(
            "/api/events?{}&limit=1000&filter={}",
            corpus_range(),
            enc(&filter)
        ));
        assert_eq!(
            page["events"].as_array().unwrap().len(),
            expected,
            "{operator}"
        );
    }
}

#[test]
fn or_and_nesting_at_the_filters_limits_is_answered() {
    let branches: Vec<Value> = (0..(helios_store::query::MAX_MONGO_FILTER_NODES - 1) / 2)
        .map(|i| json!({"latency_ms": 100 + 20 * i}))
        .collect();
    let wide = json!({"$or": branches}).to_string();
    let page = shared().get_json(&format!(
        "/api/events?{}&limit=1000&filter={}",
        corpus_range(),
        enc(&wide)
    ));
    assert_eq!(page["events"].as_array().unwrap().len(), 24);
    // Fourteen `$and`/`$or` levels: the deepest the depth limit allows.
    let mut deep = json!({"plan": {"$in": ["pro", "team"]}});
    for level in 0..14 {
        deep = if level % 2 == 0 {
            json!({"$and": [deep, {"type": "signup"}]})
        } else {
            json!({"$or": [deep, {"plan": "nope"}]})
        };
    }
    let page = shared().get_json(&format!(
        "/api/events?{}&limit=1000&filter={}",
        corpus_range(),
        enc(&deep.to_string())
    ));
    assert_eq!(page["events"].as_array().unwrap().len(), 12);
}

// ---- HTTP details of the report server (issue 13, item 9) ----

#[test]
fn an_unknown_path_is_a_404_that_says_not_found_not_no_such_event() {
    for target in ["/nope", "/api/nope", "/api/events/abc/def", "/api/events/"] {
        let response = shared().get(target);
        assert_eq!(response.status, 404, "{target}");
        let body = response.json();
        assert_eq!(body["error"], json!("not found"), "{target}");
        assert_eq!(
            body["detail"],
            json!("no such page or API endpoint"),
            "{target}"
        );
    }
    let unknown_event = shared().get("/api/events/0123456789abcdef01234567");
    assert_eq!(unknown_event.status, 404);
    assert_eq!(unknown_event.json()["detail"], json!("no such event"));
}

#[test]
fn a_wrong_method_is_a_405_with_the_paths_allow_header_and_a_json_reason() {
    let report = shared().report;
    for (method, target, allow) in [
        ("POST", "/api/events", "GET,HEAD"),
        ("DELETE", "/", "GET,HEAD"),
        ("PUT", "/app.js", "GET,HEAD"),
        ("GET", "/api/login", "POST"),
        ("HEAD", "/api/login", "POST"),
    ] {
        let response = http::request(report, method, target, &[], b"");
        assert_eq!(response.status, 405, "{method} {target}");
        assert_eq!(response.header("allow"), Some(allow), "{method} {target}");
        if method != "HEAD" {
            assert_eq!(
                response.json()["error"],
                json!("method not allowed"),
                "{method} {target}"
            );
        }
    }
}

#[test]
fn head_responses_carry_no_body_so_keep_alive_stays_in_step() {
    use std::io::{Read, Write};
    let report = shared().report;
    for target in [
        "/api/types",
        "/",
        "/nope",
        "/api/login",
        "/api/events?from=x",
    ] {
        let mut socket = std::net::TcpStream::connect(report).unwrap();
        socket
            .set_read_timeout(Some(support::STORE_TIMEOUT))
            .unwrap();
        write!(
            socket,
            "HEAD {target} HTTP/1.1\r\nHost: {report}\r\n\r\n\
             GET /api/status HTTP/1.1\r\nHost: {report}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        socket.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let first_end = text.find("\r\n\r\n").expect("a first response head") + 4;
        assert!(
            text[first_end..].starts_with("HTTP/1.1 200"),
            "HEAD {target}: the next response must follow the head at once:\n{text}"
        );
    }
}

#[test]
fn tail_positions_outside_the_valid_range_are_400s() {
    for after in [
        "-1",
        "-99999999999",
        "99999999999999999999",
        "r01",
        "rx",
        "r-1",
    ] {
        let response = shared().get(&format!("/api/tail?after={}", enc(after)));
        assert_eq!(response.status, 400, "after={after}: {}", response.text());
        assert_eq!(
            response.json()["error"],
            json!("bad request"),
            "after={after}"
        );
    }
}

// ---- CSV export columns (issue 13, item 10) ----

#[test]
fn csv_columns_come_from_the_exported_events_and_keep_dotted_keys() {
    let stack = Stack::start();
    let base = support::corpus_base_ms();
    let events = vec![
        json!({"type": "order", "ts": base, "a.b": 1, "cart": {"items": 2}, "n": 1}),
        json!({"type": "order", "ts": base + 1, "a.b": 3, "cart": {"items": 4}, "n": 2}),
        json!({"type": "visit", "ts": base + 2, "page": "/home", "n": 3}),
    ];
    stack.ingest(&events, 3);
    let range = format!("from={}&to={}", base - 1, base + 10);
    for selection in [
        "types=order",
        "q=cart.items%3E0",
        "filter=%7B%22type%22%3A%22order%22%7D",
    ] {
        let response = stack.get(&format!(
            "/api/export?format=csv&sort=asc&{range}&{selection}"
        ));
        assert_eq!(response.status, 200, "{selection}: {}", response.text());
        let text = response.text();
        let mut lines = text.split("\r\n");
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(
            &header[..4],
            &["_id", "ts", "type", "app"],
            "{selection}: {text}"
        );
        assert!(header.contains(&"a.b"), "{selection}: {text}");
        assert!(header.contains(&"cart.items"), "{selection}: {text}");
        assert!(
            !header.contains(&"page"),
            "a column of an event not exported ({selection}): {text}"
        );
        let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first[column("a.b")], "1", "{selection}: {text}");
        assert_eq!(first[column("cart.items")], "2", "{selection}: {text}");
    }
}

#[test]
fn an_export_whose_selection_cannot_run_gets_its_status_not_a_broken_download() {
    let target = format!(
        "/api/export?format=ndjson&from=0&filter={}",
        enc(&json!({"plan": {"$regex": "(?:a{1,31}){1,32}c"}}).to_string())
    );
    // Runs (the corpus' values are short): the regex limits refuse only
    // values longer than the pattern may scan.
    assert_eq!(shared().get(&target).status, 200);
    let stack = hostile_stack(1, |_| {});
    let long = "a".repeat(100_000);
    stack.ingest(&[json!({"type": "hostile", "s": long})], 2);
    let response = stack.get(&format!(
        "/api/export?format=csv&from=0&q={}",
        enc(&format!("s:/{COSTLY_PATTERN}/"))
    ));
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(response.json()["detail"]
        .as_str()
        .unwrap()
        .contains("may scan strings of up to"));
}

#[test]
fn numbers_read_back_exactly_as_they_were_acknowledged() {
    let stack = Stack::start();
    // Raw text: a serde_json Value would already round these.
    let id = "65f1a2b3c4d5e6f708091a2b";
    let event = format!(
        r#"[{{"_id":"{id}","type":"exact","big":18446744073709551617,"neg_zero":-0,"long":0.1000000000000000055511151231257827,"small":-9223372036854775809}}]"#
    );
    let response = http::post_json(stack.collector, "/v1/events", &event);
    assert_eq!(response.status, 200, "{}", response.text());
    stack.wait_stored(1);
    for target in [
        "/api/events".to_owned(),
        format!("/api/events/{id}"),
        "/api/export?format=ndjson".to_owned(),
    ] {
        let text = stack.get(&target).text();
        for literal in [
            r#""big":18446744073709551617"#,
            r#""neg_zero":-0"#,
            r#""long":0.1000000000000000055511151231257827"#,
            r#""small":-9223372036854775809"#,
        ] {
            assert!(
                text.contains(literal),
                "{target}: {literal} missing from {text}"
            );
        }
    }
}

/// `from=..&to=..` covering [`support::columnar_store`]'s events.
fn columnar_range() -> String {
    let base = support::corpus_base_ms();
    let minutes = i64::from(support::COLUMNAR_STORE_EVENTS) + 1;
    format!("from={}&to={}", base - 60_000, base + minutes * 60_000)
}

#[test]
fn top_values_and_field_names_say_which_fields_are_columns_of_the_columnar_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::columnar_store(dir.path());
    let server = support::ReportOnly::start(&format!("sqlite://{}", store.display()));
    let range = columnar_range();
    let groups =
        |field: &str| http::get(server.addr, &format!("/api/groups?{range}&field={field}")).json();

    let coupon = groups("coupon");
    assert_eq!(coupon["column"], json!(false), "{coupon}");
    assert_eq!(coupon["total"], json!(support::COLUMNAR_STORE_EVENTS));
    assert_eq!(groups("plan")["column"], json!(true));

    let fields = http::get(server.addr, &format!("/api/fields?{range}")).json();
    let column_of = |name: &str| {
        fields["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == json!(name))
            .map(|f| f["column"].clone())
    };
    assert_eq!(column_of("coupon"), Some(json!(false)), "{fields}");
    assert_eq!(column_of("plan"), Some(json!(true)), "{fields}");
}
