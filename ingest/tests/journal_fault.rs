//! A journal write fails in a running collector: that request gets 503,
//! the core answers 503 while it reopens the journal from disk, then acks
//! resume; every acked event is stored exactly once, no refused one is.
//! On io_uring, and on epoll (the write fails on the writer thread).

#[cfg(not(feature = "fault-injection"))]
#[path = "../../store/tests/support/skip.rs"]
mod skip;
#[cfg(feature = "fault-injection")]
mod support;

#[cfg(feature = "fault-injection")]
use support::*;

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_failed_journal_write_gets_503_then_the_journal_reopens_and_nothing_acked_is_lost() {
    skip::skip(
        "journal_fault",
        "the collector was built without its test hooks; run with \
         --features helios-ingest/fault-injection (bash .ci/test does)",
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_failed_journal_write_gets_503_then_the_journal_reopens_and_nothing_acked_is_lost() {
    fail_the_20th_write(&[]);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_failed_journal_write_on_epoll_gets_503_then_the_journal_reopens_and_nothing_acked_is_lost() {
    fail_the_20th_write(&["--io-driver", "epoll"]);
}

#[cfg(feature = "fault-injection")]
fn fail_the_20th_write(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--cores", "1"];
    args.extend_from_slice(extra);
    let c = Collector::start_with_env(
        dir.path(),
        free_port(),
        &args,
        &[("HELIOS_FAULT_INJECT_WRITE", "20")],
    );
    let mut conn = Conn::open(c.addr);
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut statuses = Vec::new();
    for n in 0..400u64 {
        let id = client_id(n);
        let body = format!(r#"{{"_id":"{id}","type":"fault","n":{n}}}"#);
        let r = conn.post(&[], body.as_bytes()).unwrap();
        match r.status {
            200 => acked.push(id),
            503 => {
                assert_eq!(r.header("Retry-After"), Some("1"));
                refused.push(id);
            }
            other => panic!("unexpected status {other}"),
        }
        statuses.push(r.status);
        if !refused.is_empty() && statuses.len() > 300 {
            break;
        }
        if !refused.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    let first_503 = statuses
        .iter()
        .position(|&s| s == 503)
        .expect("the injected failure answered 503");
    assert_eq!(first_503, 19, "the 20th commit failed");
    assert_eq!(statuses.last(), Some(&200), "acks resumed after the reopen");
    assert_exactly_acked(&c.db_path(), &acked, &refused);
    assert_eq!(c.stop().code(), Some(0));
}
