//! Child process for the journal crash test: appends from several tasks in
//! a loop, printing `ack SEQ PAYLOAD` only after each record is durable, and
//! checkpoints now and then so segments get recycled. Runs until killed.
//! It first chooses its driver the way the collector does (`auto`: probe
//! io_uring, epoll where it is refused) and prints `driver NAME`.
//!
//! With `prepared` it also keeps `PREPARED_SEGMENTS` segments prepared
//! ahead and pauses every writer for `PAUSE` in every `PAUSE_EVERY`, so
//! the preallocator zero-fills them in those idle moments and kills land
//! during those fills and the relaps of recycled segments too.
//!
//! usage: journal_crash_child DIR CYCLE [auto|io_uring|epoll] [prepared]

use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use helios_journal::runtime::{block_on, probe_io_uring};
use helios_journal::{IoDriver, Journal, JournalConfig, RecordMeta};

/// Small segments so a few hundred milliseconds of load rolls over and
/// recycles several times.
const SEGMENT_BYTES: u64 = 256 * 1024;
const WRITER_TASKS: u64 = 4;
const CHECKPOINT_EVERY_ACKS: u64 = 300;
/// The checkpoint trails the durable mark, as a store's would.
const CHECKPOINT_LAG_RECORDS: u64 = 100;
/// Segments prepared beyond the spares in `prepared` mode.
const PREPARED_SEGMENTS: usize = 6;
/// In `prepared` mode writers pause this long (longer than the
/// preallocator's idle threshold, 50 ms) …
const PAUSE: Duration = Duration::from_millis(80);
/// … at the start of every this long.
const PAUSE_EVERY: Duration = Duration::from_millis(200);
/// Queue entries of the child's runtime.
const RUNTIME_ENTRIES: u32 = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(cycle)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: journal_crash_child DIR CYCLE [auto|io_uring|epoll]");
        std::process::exit(2);
    };
    let dir = dir.clone();
    let cycle = cycle.clone();
    let driver = match args.get(3).map(String::as_str) {
        None | Some("auto") => match probe_io_uring(RUNTIME_ENTRIES, 1) {
            Ok(()) => IoDriver::IoUring,
            Err(_) => IoDriver::Epoll,
        },
        Some("io_uring") => IoDriver::IoUring,
        Some("epoll") => IoDriver::Epoll,
        Some(other) => {
            eprintln!("unknown driver {other}");
            std::process::exit(2);
        }
    };
    let prepared = args.get(4).map(String::as_str) == Some("prepared");
    println!("driver {driver}");
    let ran = block_on(driver, RUNTIME_ENTRIES, async move {
        let cfg = JournalConfig {
            segment_size_bytes: SEGMENT_BYTES,
            group_target_bytes: 32 * 1024,
            commit_path: driver.commit_path(),
            prepared_segments: if prepared { PREPARED_SEGMENTS } else { 0 },
            ..JournalConfig::default()
        };
        let journal = match Journal::open(&dir, cfg).await {
            Ok(j) => Rc::new(j),
            Err(e) => {
                println!("open-error {e}");
                std::process::exit(3);
            }
        };
        let mut tasks = Vec::new();
        let start = Instant::now();
        let pauses = prepared.then_some(start);
        for task in 0..WRITER_TASKS {
            let j = Rc::clone(&journal);
            let cycle = cycle.clone();
            tasks.push(monoio::spawn(async move {
                write_loop(&j, &cycle, task, pauses).await
            }));
        }
        let j = Rc::clone(&journal);
        tasks.push(monoio::spawn(async move { checkpoint_loop(&j).await }));
        for t in tasks {
            t.await;
        }
    });
    if let Err(e) = ran {
        println!("runtime-error {e}");
        std::process::exit(7);
    }
}

async fn write_loop(j: &Journal, cycle: &str, task: u64, pauses: Option<Instant>) {
    for n in 0u64.. {
        // Every writer pauses in the same windows (one clock), so the
        // journal really is idle in them.
        if let Some(start) = pauses {
            let into = start.elapsed().as_millis() % PAUSE_EVERY.as_millis();
            if into < PAUSE.as_millis() {
                let left = PAUSE.as_millis() - into;
                monoio::time::sleep(Duration::from_millis(left as u64)).await;
            }
        }
        let payload = format!("c{cycle}-t{task}-n{n}-{}", "p".repeat((n % 300) as usize));
        let meta = RecordMeta {
            recv_ms: n as i64,
            event_count: 1,
            app: "crash",
            ..RecordMeta::default()
        };
        match j.append_durable(&meta, payload.as_bytes()).await {
            Ok(seq) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "ack {seq} {payload}");
                let _ = out.flush();
            }
            Err(e) if e.is_transient() => {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await
            }
            Err(e) => {
                println!("append-error {e}");
                std::process::exit(4);
            }
        }
    }
}

async fn checkpoint_loop(j: &Journal) {
    let checkpointer = j.checkpointer();
    let mut reader = j.reader(checkpointer.current().seq);
    loop {
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        let durable = j.durable_seq();
        let target = durable.saturating_sub(CHECKPOINT_LAG_RECORDS);
        if target < reader.next_seq() + CHECKPOINT_EVERY_ACKS {
            continue;
        }
        let want = (target - reader.next_seq() + 1) as usize;
        let records = match reader.read_batch(want) {
            Ok(r) => r,
            Err(e) => {
                println!("read-error {e}");
                std::process::exit(5);
            }
        };
        if let Some(last) = records.last() {
            if let Err(e) = checkpointer.advance(last.checkpoint) {
                println!("checkpoint-error {e}");
                std::process::exit(6);
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "cp {}", last.seq);
            let _ = out.flush();
        }
    }
}
