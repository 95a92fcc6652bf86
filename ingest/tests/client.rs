//! The client crate against a real collector process: many threads,
//! a collector killed and restarted mid-stream, responses lost after the
//! commit — every recorded event is stored exactly once.
//! (The client crate depends on no server crate; this test lives here,
//! beside the collector binary it starts.)

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helios_client::Client;
use support::*;

fn client_for(addr: SocketAddr) -> Client {
    Client::builder()
        .endpoint(format!("http://{addr}"))
        .max_batch_delay(Duration::from_millis(5))
        .backoff(Duration::from_millis(10), Duration::from_millis(300))
        .max_attempts(1000)
        .max_retry_time(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(5))
        // Big enough to hold everything recorded while the collector is
        // down: this test is about delivery, not the queue-full policy.
        .queue_capacity_events(1_000_000)
        .queue_capacity_bytes(512 << 20)
        .build()
        .expect("client")
}

fn assert_stored_exactly(db: &std::path::Path, recorded: &[String]) {
    let store = wait_for_count(db, recorded.len() as u64);
    let stored = stored_ids(&store);
    let want: HashSet<String> = recorded.iter().cloned().collect();
    assert_eq!(want.len(), recorded.len(), "client minted a duplicate id");
    assert_eq!(stored, want);
}

#[test]
fn events_recorded_from_many_threads_are_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let client = client_for(c.addr);
    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (client, ids) = (client.clone(), ids.clone());
            std::thread::spawn(move || {
                for i in 0..500 {
                    let id = client.record("thread", serde_json::json!({"t": t, "i": i}));
                    ids.lock().unwrap().push(id.to_string());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(client.flush(Duration::from_secs(30)));
    assert_eq!(client.stats().dropped, 0);
    assert_stored_exactly(&c.db_path(), &ids.lock().unwrap());
}

#[test]
fn a_collector_killed_and_restarted_mid_stream_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Collector::start(dir.path(), &[]);
    let port = c.addr.port();
    let client = client_for(c.addr);
    let done = Arc::new(AtomicBool::new(false));
    let recorder = {
        let (client, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            let mut i = 0u64;
            while !done.load(Ordering::SeqCst) {
                ids.push(
                    client
                        .record("restart", serde_json::json!({"i": i}))
                        .to_string(),
                );
                i += 1;
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            ids
        })
    };
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        c.kill();
        std::thread::sleep(Duration::from_millis(100));
        c = Collector::start_on(dir.path(), port, &[]);
    }
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::SeqCst);
    let ids = recorder.join().unwrap();
    assert!(
        client.flush(Duration::from_secs(60)),
        "client could not deliver"
    );
    let stats = client.stats();
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert!(
        stats.retried > 0,
        "the kills should have forced retries: {stats:?}"
    );
    assert_stored_exactly(&c.db_path(), &ids);
}

/// A TCP proxy that cuts the connection instead of forwarding the first
/// `drop_responses` responses: the collector has committed (and stored)
/// the batch, but the client never hears so and sends it again.
fn lossy_proxy(upstream: SocketAddr, drop_responses: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let budget = Arc::new(AtomicUsize::new(drop_responses));
    let dropped = Arc::new(AtomicUsize::new(0));
    let dropped_out = dropped.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().take(1000) {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (budget, dropped) = (budget.clone(), dropped.clone());
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let (mut s_read, mut c_write) = (server, client);
                let mut buf = [0u8; 65536];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let cut = budget
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                        .is_ok();
                    if cut {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        let _ = c_write.shutdown(Shutdown::Both);
                        let _ = s_read.shutdown(Shutdown::Both);
                        break;
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, dropped_out)
}

#[test]
fn responses_lost_after_the_commit_do_not_duplicate_events() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let (proxy, dropped) = lossy_proxy(c.addr, 5);
    let client = client_for(proxy);
    let mut ids = Vec::new();
    for i in 0..2000 {
        ids.push(
            client
                .record("lossy", serde_json::json!({"i": i}))
                .to_string(),
        );
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(client.flush(Duration::from_secs(60)));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        5,
        "the proxy cut five responses"
    );
    assert_eq!(client.stats().dropped, 0);
    assert_stored_exactly(&c.db_path(), &ids);
}
