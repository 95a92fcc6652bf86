//! The collector on hosts that refuse what its fast path needs (issue 23,
//! DESIGN §10): io_uring refused by seccomp the ways container runtimes
//! and old kernels refuse it, `--io-driver` forcing either driver, a
//! filesystem that refuses O_DIRECT, and a journal on tmpfs. Whatever the
//! host, the collector either acks only durable events or refuses to start
//! with one line saying why and which flag changes it.

mod support;

use std::path::Path;
use std::time::Duration;

use helios_journal::disk::Filesystem;
use support::*;

/// Posts `n` events with fresh client ids on one connection; all must be
/// acked. Returns their ids.
fn post_events(c: &Collector, first: u64, n: u64) -> Vec<String> {
    let mut conn = Conn::open(c.addr);
    let ids: Vec<String> = (first..first + n).map(client_id).collect();
    for id in &ids {
        let body = format!(r#"{{"_id":"{id}","type":"host"}}"#);
        let r = conn.post(&[], body.as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    ids
}

/// The one log line of a refused start (the `helios-collector failed`
/// error), asserting there is exactly one.
fn the_error_line(log: &str) -> &str {
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("\"ERROR\"")).collect();
    assert_eq!(errors.len(), 1, "one error line, got:\n{log}");
    assert!(errors[0].contains("helios-collector failed"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    eprintln!("refused start: {}", errors[0]);
    errors[0]
}

fn driver_metric(c: &Collector, driver: &str) -> bool {
    c.metrics()
        .contains(&format!("helios_io_driver{{driver=\"{driver}\"}} 1"))
}

#[test]
fn with_io_uring_allowed_auto_runs_on_io_uring_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let log = c.wait_for_log("io driver: io_uring");
    assert!(!log.contains("io driver: epoll"), "{log}");
    assert!(driver_metric(&c, "io_uring"));
    assert!(c.metrics().contains("helios_io_driver{driver=\"epoll\"} 0"));
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn with_io_uring_refused_as_enosys_the_collector_runs_on_epoll_and_stores_what_it_acks() {
    let dir = tempfile::tempdir().unwrap();
    // An old or stripped kernel: no io_uring at all.
    let refused = [seccomp::io_uring_refused(libc::ENOSYS)];
    let c = Collector::start_confined(dir.path(), free_port(), &[], &[], &refused);
    c.wait_for_log("io driver: epoll (io_uring refused: ENOSYS)");
    assert!(driver_metric(&c, "epoll"));
    let acked = post_events(&c, 0, 40);
    assert_exactly_acked(&c.db_path(), &acked, &[]);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn forcing_io_uring_where_it_is_refused_exits_1_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let (status, log) = start_refused(
        dir.path(),
        &["--io-driver", "io-uring"],
        &[seccomp::io_uring_refused(libc::EPERM)],
    );
    assert_eq!(status.code(), Some(1), "{log}");
    let line = the_error_line(&log);
    assert!(line.contains("--io-driver io-uring"), "{line}");
    assert!(line.contains("refuses io_uring (EPERM)"), "{line}");
    assert!(line.contains("--io-driver auto"), "{line}");
}

#[test]
fn forcing_epoll_where_io_uring_works_runs_every_connection_path_on_epoll() {
    let dir = tempfile::tempdir().unwrap();
    // Through the environment, as a unit file or container would set it.
    let c = Collector::start_with_env(
        dir.path(),
        free_port(),
        &["--idle-timeout-ms", "400", "--header-timeout-ms", "300"],
        &[("HELIOS_IO_DRIVER", "epoll")],
    );
    c.wait_for_log("io driver: epoll (--io-driver epoll)");
    assert!(driver_metric(&c, "epoll"));
    let mut acked = post_events(&c, 0, 20);

    // Keep-alive: a connection waits idle (readiness, no buffer held),
    // then serves again; pipelined requests are answered in order.
    let mut conn = Conn::open(c.addr);
    std::thread::sleep(Duration::from_millis(150));
    let ids: Vec<String> = (100..103).map(client_id).collect();
    let mut pipelined = Vec::new();
    for id in &ids {
        pipelined.extend(post_bytes(
            &[],
            format!(r#"{{"_id":"{id}","type":"pipelined"}}"#).as_bytes(),
        ));
    }
    conn.send_raw(&pipelined).unwrap();
    for _ in &ids {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
    acked.extend(ids);
    // Idle past --idle-timeout-ms: the collector closes it.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        conn.is_closed(),
        "an idle connection is closed on epoll too"
    );

    // A head that never completes gets 408 after --header-timeout-ms.
    let mut slow = Conn::open(c.addr);
    slow.send_raw(b"POST /v1/events HTTP/1.1\r\nHost: t")
        .unwrap();
    assert_eq!(slow.read_response().unwrap().status, 408);

    assert_exactly_acked(&c.db_path(), &acked, &[]);
    assert_eq!(c.stop().code(), Some(0));
}

/// The start-up refusal for a journal directory whose filesystem refuses
/// O_DIRECT names the directory, the filesystem and the flag.
fn assert_o_direct_refusal(log: &str, journal_root: &Path) {
    let line = the_error_line(log);
    assert!(
        line.contains(&journal_root.display().to_string()),
        "the directory: {line}"
    );
    let fs = Filesystem::of(journal_root).unwrap().name();
    assert!(line.contains(&fs), "the filesystem {fs}: {line}");
    assert!(line.contains("O_DIRECT"), "{line}");
    assert!(line.contains("--journal-buffered-io"), "the flag: {line}");
}

#[test]
fn a_filesystem_refusing_o_direct_stops_the_collector_unless_buffered_io_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // What some FUSE and network filesystems answer to an O_DIRECT open.
    let no_direct = seccomp::o_direct_open_refused(libc::EINVAL);
    let (status, log) = start_refused(&data, &[], std::slice::from_ref(&no_direct));
    assert_eq!(status.code(), Some(1), "{log}");
    assert_o_direct_refusal(&log, &data.join("journal"));
    assert!(log.contains("EINVAL at open"), "{log}");
    // A filesystem that takes the O_DIRECT open but refuses the write.
    let (status, log) = start_refused(&data, &[], &[seccomp::pwrite_refused(libc::EINVAL)]);
    assert_eq!(status.code(), Some(1), "{log}");
    assert_o_direct_refusal(&log, &data.join("journal"));
    assert!(log.contains("EINVAL at first write"), "{log}");

    // With the flag: a warning, a metric, and the same ack rule.
    let port = free_port();
    let flag = ["--journal-buffered-io"];
    let c = Collector::start_confined(&data, port, &flag, &[], std::slice::from_ref(&no_direct));
    c.wait_for_log("buffered writes + fdatasync (--journal-buffered-io)");
    assert!(c.metrics().contains("helios_journal_buffered_io 1"));
    let mut acked = post_events(&c, 0, 30);
    c.kill();

    // Also on epoll (io_uring refused too): buffered commits on the
    // writer thread; what was acked before the kill is still there.
    // A fresh port: a SIGKILLed io_uring process releases its listening
    // socket only when the kernel tears its ring down, a moment after the
    // exit, and until then SO_REUSEPORT hashes some connections to it.
    let both = [no_direct, seccomp::io_uring_refused(libc::EPERM)];
    let c = Collector::start_confined(&data, free_port(), &flag, &[], &both);
    c.wait_for_log("io driver: epoll (io_uring refused: EPERM)");
    acked.extend(post_events(&c, 1000, 30));
    assert_exactly_acked(&c.db_path(), &acked, &[]);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_journal_on_tmpfs_is_refused_unless_acks_from_memory_are_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let Some(_mounted) = mount_tmpfs(&mnt, "64m", "io_driver::a_journal_on_tmpfs") else {
        return;
    };
    let data = mnt.join("data");
    let (status, log) = start_refused(&data, &[], &[]);
    assert_eq!(status.code(), Some(1), "{log}");
    let line = the_error_line(&log);
    assert!(
        line.contains(&data.join("journal").display().to_string()),
        "the directory: {line}"
    );
    assert!(line.contains("tmpfs"), "the filesystem: {line}");
    assert!(
        line.contains("--allow-volatile-journal"),
        "the flag: {line}"
    );

    // tmpfs refuses O_DIRECT before Linux 6.6: buffered I/O works on both.
    let flags = [ALLOW_VOLATILE_JOURNAL, "--journal-buffered-io"];
    let c = Collector::start_confined(&data, free_port(), &flags, &[], &[]);
    c.wait_for_log("(--allow-volatile-journal)");
    assert!(c.metrics().contains("helios_journal_volatile 1"));
    let acked = post_events(&c, 0, 20);
    assert_exactly_acked(&c.db_path(), &acked, &[]);
    assert_eq!(c.stop().code(), Some(0));
}

/// Sends one request at a time on one connection, pausing after each answer
/// for a time swept across the collector's hot-read window (10 ms): a read
/// posted right after an answer is cancelled when the window ends, and a
/// request arriving as it is cancelled must still be read and answered.
fn pauses_around_the_hot_read_window(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--io-driver", driver]);
    let mut conn = Conn::open(c.addr);
    let mut acked = Vec::new();
    for n in 0..60u64 {
        let id = client_id(1_000 + n);
        let body = format!(r#"{{"_id":"{id}","type":"paced"}}"#);
        let r = conn.post(&[], body.as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        acked.push(id);
        // 0 to 14.75 ms in 250 µs steps: before, at and after the window.
        std::thread::sleep(Duration::from_micros(250 * n));
    }
    assert_exactly_acked(&c.db_path(), &acked, &[]);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn requests_sent_as_the_hot_read_window_ends_are_answered_on_io_uring() {
    pauses_around_the_hot_read_window("io-uring");
}

#[test]
fn requests_sent_as_the_hot_read_window_ends_are_answered_on_epoll() {
    pauses_around_the_hot_read_window("epoll");
}
