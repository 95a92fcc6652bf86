//! Ack latency and commit rate of one journal under many concurrent
//! appenders, with `max_commits_in_flight` 1 (one commit at a time) and 2
//! (overlapping), alternated round by round, beside the raw disk: the p50
//! of single 4 KiB `O_DIRECT|O_DSYNC` writes into a pre-written file, the
//! latency the issue compares ack latency to (goal: p50 ack ≤ 2× raw).
//!
//! ```text
//! cargo run --release -p helios-benches --example commit_latency -- \
//!     [--appenders 64] [--seconds 3] [--rounds 3] [--record-bytes 300] \
//!     [--driver io_uring|epoll]
//! ```
//!
//! Each appender appends one record, awaits its ticket, and goes again (a
//! connection sending single events); the latency is append to durable.
//! Files live under `HELIOS_BENCH_DIR` (default: the system temp dir).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use helios_journal::runtime::block_on;
use helios_journal::{AlignedBuf, IoDriver, Journal, JournalConfig, RecordMeta};

/// Writes of the raw probe.
const RAW_WRITES: usize = 2000;
const RAW_WRITE_BYTES: usize = 4096;
const RAW_FILE_BYTES: usize = 16 << 20;
/// Wait after opening a journal so its spare segments are zero-filled
/// before the measurement, not during it.
const SETTLE: Duration = Duration::from_millis(1500);
/// Queue entries of the runtime.
const RUNTIME_ENTRIES: u32 = 1024;
const COMMITS_IN_FLIGHT: [usize; 2] = [1, 2];

struct Args {
    appenders: usize,
    seconds: f64,
    rounds: usize,
    record_bytes: usize,
    driver: IoDriver,
}

fn parse_args() -> Args {
    let mut a = Args {
        appenders: 64,
        seconds: 3.0,
        rounds: 3,
        record_bytes: 300,
        driver: IoDriver::IoUring,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--appenders" => a.appenders = value.parse().expect("--appenders"),
            "--seconds" => a.seconds = value.parse().expect("--seconds"),
            "--rounds" => a.rounds = value.parse().expect("--rounds"),
            "--record-bytes" => a.record_bytes = value.parse().expect("--record-bytes"),
            "--driver" => {
                a.driver = match value.as_str() {
                    "io_uring" => IoDriver::IoUring,
                    "epoll" => IoDriver::Epoll,
                    other => panic!("unknown driver {other}"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn bench_dir() -> PathBuf {
    std::env::var_os("HELIOS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// p50 of single O_DIRECT|O_DSYNC writes, µs.
fn raw_dsync_p50_us() -> u64 {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().join("raw.dat");
    std::fs::write(&path, vec![0u8; RAW_FILE_BYTES]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(&path)
        .unwrap();
    let mut buf = AlignedBuf::zeroed(RAW_WRITE_BYTES);
    buf.extend(RAW_WRITE_BYTES).fill(b'r');
    let mut lat = Vec::with_capacity(RAW_WRITES);
    for i in 0..RAW_WRITES {
        let offset = (i * RAW_WRITE_BYTES) % RAW_FILE_BYTES;
        let t = Instant::now();
        // SAFETY: buf is valid and aligned for RAW_WRITE_BYTES bytes.
        let n = unsafe {
            libc::pwrite(
                file.as_raw_fd(),
                buf.as_slice().as_ptr().cast(),
                RAW_WRITE_BYTES,
                offset as i64,
            )
        };
        assert_eq!(n, RAW_WRITE_BYTES as isize, "pwrite");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    percentile(&lat, 0.5)
}

struct Round {
    acks_per_s: f64,
    commits_per_s: f64,
    p50_us: u64,
    p99_us: u64,
}

fn journal_round(a: &Args, in_flight: usize) -> Round {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let cfg = JournalConfig {
        max_commits_in_flight: in_flight,
        commit_path: a.driver.commit_path(),
        ..JournalConfig::default()
    };
    let payload = Rc::new(vec![b'e'; a.record_bytes]);
    let seconds = a.seconds;
    let appenders = a.appenders;
    block_on(a.driver, RUNTIME_ENTRIES, async move {
        let j = Rc::new(Journal::open(dir.path(), cfg).await.unwrap());
        monoio::time::sleep(SETTLE).await;
        let before = j.stats();
        let start = Instant::now();
        let until = start + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..appenders {
            let (j, payload) = (j.clone(), payload.clone());
            tasks.push(monoio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    j.append_durable(&RecordMeta::default(), &payload)
                        .await
                        .expect("append");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let commits = j.stats().commits - before.commits;
        j.close().await.unwrap();
        lat.sort_unstable();
        Round {
            acks_per_s: lat.len() as f64 / elapsed,
            commits_per_s: commits as f64 / elapsed,
            p50_us: percentile(&lat, 0.5),
            p99_us: percentile(&lat, 0.99),
        }
    })
    .expect("runtime")
}

fn main() {
    let a = parse_args();
    println!(
        "{} appenders, {} B records, {} s per round, driver {}",
        a.appenders, a.record_bytes, a.seconds, a.driver
    );
    let mut raw = Vec::new();
    let mut results: Vec<Vec<Round>> = COMMITS_IN_FLIGHT.iter().map(|_| Vec::new()).collect();
    for round in 0..a.rounds {
        raw.push(raw_dsync_p50_us() as f64);
        // Alternate the order too, so neither setting always runs first.
        let mut order: Vec<usize> = (0..COMMITS_IN_FLIGHT.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for k in order {
            let r = journal_round(&a, COMMITS_IN_FLIGHT[k]);
            println!(
                "round {round} in_flight {}: {:.0} acks/s, {:.0} commits/s, ack p50 {} µs, p99 {} µs (raw 4 KiB O_DSYNC p50 {} µs)",
                COMMITS_IN_FLIGHT[k],
                r.acks_per_s,
                r.commits_per_s,
                r.p50_us,
                r.p99_us,
                raw[round]
            );
            results[k].push(r);
        }
    }
    let raw_p50 = median(raw);
    println!(
        "\nmedians over {} rounds (raw 4 KiB O_DSYNC p50 {raw_p50:.0} µs):",
        a.rounds
    );
    println!("| in flight | acks/s | commits/s | ack p50 µs | ack p99 µs | p50 ÷ raw p50 |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (k, rounds) in results.iter().enumerate() {
        let p50 = median(rounds.iter().map(|r| r.p50_us as f64).collect());
        println!(
            "| {} | {:.0} | {:.0} | {p50:.0} | {:.0} | {:.2}× |",
            COMMITS_IN_FLIGHT[k],
            median(rounds.iter().map(|r| r.acks_per_s).collect()),
            median(rounds.iter().map(|r| r.commits_per_s).collect()),
            median(rounds.iter().map(|r| r.p99_us as f64).collect()),
            p50 / raw_p50
        );
    }
}
