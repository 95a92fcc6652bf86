//! Records N events in a loop, flushes, and prints the delivery stats.
//!
//! ```text
//! cargo run -p helios-client --example record_loop -- --url http://127.0.0.1:7070 --count 10000
//! ```
//!
//! Options: `--url URL` (default http://127.0.0.1:7070), `--count N`
//! (default 1000), `--api-key KEY`, `--app NAME`, `--gzip`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

const DEFAULT_URL: &str = "http://127.0.0.1:7070";
const DEFAULT_COUNT: u64 = 1_000;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints warn and error lines to stderr: without a logger, the documents
/// of lost events (logged through the `log` facade) would go nowhere.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}: {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

struct Args {
    url: String,
    count: u64,
    api_key: Option<String>,
    app: String,
    gzip: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: DEFAULT_URL.to_owned(),
        count: DEFAULT_COUNT,
        api_key: None,
        app: "record_loop".to_owned(),
        gzip: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--api-key" => args.api_key = Some(value()?),
            "--app" => args.app = value()?,
            "--gzip" => args.gzip = true,
            "-h" | "--help" => return Err(
                "usage: record_loop [--url URL] [--count N] [--api-key KEY] [--app NAME] [--gzip]"
                    .to_owned(),
            ),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = helios_client::Client::builder()
        .endpoint(&args.url)
        .app(&args.app)
        .gzip(args.gzip);
    if let Some(key) = &args.api_key {
        builder = builder.api_key(key);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("bad configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    for i in 0..args.count {
        client.record(
            "example.tick",
            json!({"seq": i, "message": "hello from record_loop", "even": i % 2 == 0}),
        );
    }
    let recorded_in = started.elapsed();
    let flushed = client.flush(FLUSH_TIMEOUT);
    let stats = client.stats();
    println!(
        "recorded {} events in {recorded_in:?}; flush {} after {:?}",
        args.count,
        if flushed { "completed" } else { "timed out" },
        started.elapsed()
    );
    println!(
        "sent {} rejected {} dropped {} (queue full {}) retried {} batches {}",
        stats.sent,
        stats.rejected,
        stats.dropped,
        stats.dropped_queue_full,
        stats.retried,
        stats.batches_sent
    );
    if flushed && stats.sent == args.count {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
