//! Command-line flags and their validation into a [`Config`].
//!
//! Everything the run needs is checked here, before any thread starts: a bad
//! flag is a precise error and exit code 2, never a failure halfway through a
//! run.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::driver::IoDriverChoice;
use crate::pacing::Arrivals;

/// Most connections one run may open (file descriptors, ring entries).
pub const MAX_CONNECTIONS: usize = 65_536;
/// Most runtime threads; the thread index is one byte of each minted `_id`.
pub const MAX_THREADS: usize = 256;
/// Deepest pipeline: requests written back-to-back in one write.
pub const MAX_PIPELINE: usize = 4_096;
/// Most events in one synthesized request.
pub const MAX_EVENTS_PER_REQUEST: usize = 1_000_000;
/// Largest synthesized event.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest body (file or synthesized), before compression.
pub const MAX_BODY_BYTES: usize = 256 << 20;
/// Largest pipelined batch (depth × request size) kept pre-rendered.
pub const MAX_BATCH_BYTES: usize = 512 << 20;
/// Highest total open-loop rate (requests/s).
pub const MAX_RATE: f64 = 1.0e8;
/// Run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Raw command-line flags; [`Config::from_args`] validates them.
#[derive(Parser, Debug)]
#[command(
    name = "helios-loadgen",
    version,
    about = "HTTP POST load generator: closed or open loop (coordinated-omission corrected), \
             pipelining, HdrHistogram latency, JSON results"
)]
pub struct Args {
    /// Target, plain HTTP: http://host[:port][/path]
    #[arg(long)]
    pub url: String,
    /// Concurrent connections, spread over the threads.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Threads, each with its own io_uring runtime [default: all cores].
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Run length (e.g. 10s, 500ms, 2m) [default: 10s unless --requests].
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Total requests to send, spread exactly over the connections.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Requests written back-to-back per write on a connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Events in each synthesized request [default: 1].
    #[arg(long, conflicts_with = "body_file")]
    pub events_per_request: Option<usize>,
    /// Approximate size of each synthesized JSON event [default: 300].
    #[arg(long, conflicts_with = "body_file")]
    pub event_bytes: Option<usize>,
    /// Send this file as the body (verbatim unless --ids-out adds `_id`s).
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// The --body-file is not Helios JSON (e.g. an OTLP protobuf or a
    /// bulk body): send it as is, unread, and count this many events per
    /// request for events/s. Set its Content-Type with -H.
    #[arg(long, requires = "body_file", conflicts_with_all = ["ndjson", "ids_out"])]
    pub body_events: Option<usize>,
    /// Content-Type application/x-ndjson, one event per line.
    #[arg(long)]
    pub ndjson: bool,
    /// Gzip the body (Content-Encoding: gzip).
    #[arg(long)]
    pub gzip: bool,
    /// Extra request header 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Open loop at this total rate (requests/s), latency measured from each
    /// request's intended send time; otherwise closed loop at full speed.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open-loop arrivals on each connection: constant (evenly spaced) or
    /// poisson (exponential gaps, each connection independent).
    #[arg(long, value_parser = parse_arrivals, value_name = "constant|poisson")]
    pub arrivals: Option<Arrivals>,
    /// Seed of the Poisson arrivals, to repeat a run exactly [default: random].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write an HdrHistogram interval log (one corrected and one uncorrected
    /// histogram per second, µs) to FILE.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// I/O under the threads: io_uring where it works, else epoll (auto), or
    /// one of them forced. Also read from `HELIOS_IO_DRIVER`, as the
    /// collector reads it, so one variable sets both sides of a run.
    #[arg(long, env = "HELIOS_IO_DRIVER", value_parser = parse_io_driver, default_value = "auto", value_name = "auto|io-uring|epoll")]
    pub io_driver: IoDriverChoice,
    /// Per-request response timeout, and connect timeout.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// Verification: mint a unique `_id` per event; append the ids of acked
    /// events (2xx, not in `rejected`) to FILE, one per line.
    #[arg(long, value_name = "FILE")]
    pub ids_out: Option<PathBuf>,
    /// Print the results as one JSON object on stdout (table on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Where the requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `host[:port]` as given, for the Host header.
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path: String,
    /// Resolved once, before the run.
    pub addr: SocketAddr,
}

/// What each request carries.
#[derive(Debug, Clone)]
pub enum BodySpec {
    /// Generated events (`--events-per-request`, `--event-bytes`).
    Synthesized {
        /// Events per request: 1 is a single JSON object, more an array or NDJSON lines.
        events_per_request: usize,
        /// Target size of each event, in bytes (padded up to it; never below the
        /// fixed fields).
        event_bytes: usize,
    },
    /// The contents of `--body-file`, read once before the run.
    File(PathBuf),
    /// `--body-file` with `--body-events`: sent unread, counted as `events`.
    Opaque {
        /// The file.
        path: PathBuf,
        /// Events each request carries.
        events: usize,
    },
}

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `--url` as given, for the report.
    pub url: String,
    /// `url` parsed, with its address resolved.
    pub target: Target,
    /// Total concurrent connections, 1..=[`MAX_CONNECTIONS`].
    pub connections: usize,
    /// Runtime threads, 1..=[`MAX_THREADS`] and never more than `connections`.
    pub threads: usize,
    /// `None` only when `requests` is set.
    pub duration: Option<Duration>,
    /// Total requests over all connections; `None` runs for `duration`.
    pub requests: Option<u64>,
    /// Requests written back-to-back per write, 1..=[`MAX_PIPELINE`].
    pub pipeline: usize,
    /// Synthesized events or a body file.
    pub body: BodySpec,
    /// Send the body as NDJSON (one event per line).
    pub ndjson: bool,
    /// Gzip each body (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Validated `Name: value` lines, without CRLF.
    pub headers: Vec<String>,
    /// Total open-loop rate in requests per second; `None` is closed loop at
    /// full speed.
    pub rate: Option<f64>,
    /// Open-loop arrivals (constant unless `--arrivals poisson`).
    pub arrivals: Arrivals,
    /// Seed of the Poisson arrivals (given or drawn at random).
    pub seed: u64,
    /// `--hdr-log` file.
    pub hdr_log: Option<PathBuf>,
    /// `--io-driver`.
    pub io_driver: IoDriverChoice,
    /// Connect timeout, and the time a written batch has for all its responses.
    pub timeout: Duration,
    /// File to append acked events' ids to; also makes every event carry a
    /// unique `_id`.
    pub ids_out: Option<PathBuf>,
    /// Print the report as JSON on stdout (the table goes to stderr).
    pub json: bool,
    /// Suppress the once-a-second progress lines on stderr.
    pub quiet: bool,
}

/// A bad flag: the message names the flag and what is wrong with it.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

impl Config {
    /// Validates `args` and resolves the target address. The duration defaults
    /// to [`DEFAULT_DURATION`] when neither `--duration` nor `--requests` is
    /// given; the thread count defaults to the available cores.
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let target = parse_url(&args.url)?;
        if args.connections == 0 || args.connections > MAX_CONNECTIONS {
            return err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = args.threads.unwrap_or(cores);
        if threads == 0 || threads > MAX_THREADS {
            return err(format!("--threads must be 1..={MAX_THREADS}"));
        }
        // A thread without a connection would only cost a ring.
        let threads = threads.min(args.connections);
        if args.pipeline == 0 || args.pipeline > MAX_PIPELINE {
            return err(format!("--pipeline must be 1..={MAX_PIPELINE}"));
        }
        if args.requests == Some(0) {
            return err("--requests must be at least 1");
        }
        if args.duration == Some(Duration::ZERO) {
            return err("--duration must be positive");
        }
        let duration = match (args.duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        };
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return err(format!("--rate must be > 0 and <= {MAX_RATE}"));
            }
        }
        if args.arrivals.is_some() && args.rate.is_none() {
            return err("--arrivals needs --rate (closed loop has no arrivals)");
        }
        let arrivals = args.arrivals.unwrap_or(Arrivals::Constant);
        if args.seed.is_some() && arrivals != Arrivals::Poisson {
            return err("--seed only applies to --arrivals poisson");
        }
        let seed = args.seed.unwrap_or_else(random_seed);
        if args.timeout.is_zero() {
            return err("--timeout must be positive");
        }
        let body = match args.body_file {
            Some(path) => match args.body_events {
                Some(0) => return err("--body-events must be at least 1"),
                Some(events) => BodySpec::Opaque { path, events },
                None => BodySpec::File(path),
            },
            None => {
                let events_per_request = args.events_per_request.unwrap_or(1);
                let event_bytes = args.event_bytes.unwrap_or(300);
                if events_per_request == 0 || events_per_request > MAX_EVENTS_PER_REQUEST {
                    return err(format!(
                        "--events-per-request must be 1..={MAX_EVENTS_PER_REQUEST}"
                    ));
                }
                if event_bytes > MAX_EVENT_BYTES {
                    return err(format!("--event-bytes must be <= {MAX_EVENT_BYTES}"));
                }
                if events_per_request.saturating_mul(event_bytes.max(64)) > MAX_BODY_BYTES {
                    return err(format!(
                        "synthesized body would exceed {MAX_BODY_BYTES} bytes"
                    ));
                }
                BodySpec::Synthesized {
                    events_per_request,
                    event_bytes,
                }
            }
        };
        let headers = args
            .headers
            .iter()
            .map(|h| validate_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            url: args.url,
            target,
            connections: args.connections,
            threads,
            duration,
            requests: args.requests,
            pipeline: args.pipeline,
            body,
            ndjson: args.ndjson,
            gzip: args.gzip,
            headers,
            rate: args.rate,
            arrivals,
            seed,
            hdr_log: args.hdr_log,
            io_driver: args.io_driver,
            timeout: args.timeout,
            ids_out: args.ids_out,
            json: args.json,
            quiet: args.quiet,
        })
    }
}

/// Headers the loadgen computes itself; a user value would contradict the
/// body actually sent.
const RESERVED_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "content-encoding"];

fn validate_header(line: &str) -> Result<String, ConfigError> {
    let Some((name, value)) = line.split_once(':') else {
        return err(format!("--header {line:?}: expected 'Name: value'"));
    };
    let name = name.trim();
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token_char) {
        return err(format!("--header {line:?}: invalid header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return err(format!("--header {line:?}: value holds CR, LF or NUL"));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r))
    {
        return err(format!("--header {line:?}: {name} is set by the loadgen"));
    }
    Ok(format!("{name}: {}", value.trim()))
}

/// `http://host[:port][/path]`, resolved once to the first address.
pub fn parse_url(url: &str) -> Result<Target, ConfigError> {
    let Some(rest) = url.strip_prefix("http://") else {
        return err(format!("--url {url:?}: only plain http:// is supported"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return err(format!("--url {url:?}: expected http://host[:port][/path]"));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return err(format!("--url {url:?}: path holds spaces or control bytes"));
    }
    let with_port = if has_port(authority) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| ConfigError(format!("--url {url:?}: cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| ConfigError(format!("--url {url:?}: no address")))?;
    Ok(Target {
        authority: authority.to_string(),
        path: path.to_string(),
        addr,
    })
}

fn has_port(authority: &str) -> bool {
    match authority.rfind(':') {
        // `[::1]` has colons but no port; `[::1]:80` has one after the `]`.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    }
}

/// `constant` or `poisson`.
pub fn parse_arrivals(text: &str) -> Result<Arrivals, String> {
    match text {
        "constant" => Ok(Arrivals::Constant),
        "poisson" => Ok(Arrivals::Poisson),
        _ => Err(format!("{text:?}: expected constant or poisson")),
    }
}

/// `auto`, `io-uring` or `epoll` (the collector's `--io-driver` values).
pub fn parse_io_driver(text: &str) -> Result<IoDriverChoice, String> {
    match text {
        "auto" => Ok(IoDriverChoice::Auto),
        "io-uring" | "io_uring" => Ok(IoDriverChoice::IoUring),
        "epoll" => Ok(IoDriverChoice::Epoll),
        _ => Err(format!("{text:?}: expected auto, io-uring or epoll")),
    }
}

/// A seed for Poisson arrivals when none is given: the run nonce's random
/// bits and the clock.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (u64::from(crate::object_id::run_nonce()) << 32) ^ nanos
}

/// `10s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 10s, 500ms, 2m"))?;
    let unit_s = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    let seconds = value * unit_s;
    if !seconds.is_finite() || !(0.0..=1.0e7).contains(&seconds) {
        return Err(format!("{text:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn urls_split_into_authority_and_path() {
        let t = parse_url("http://127.0.0.1:8080/v1/events?x=1").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/v1/events?x=1");
        assert_eq!(t.addr.port(), 8080);
        let t = parse_url("http://127.0.0.1").unwrap();
        assert_eq!((t.path.as_str(), t.addr.port()), ("/", 80));
        let t = parse_url("http://[::1]:9000/x").unwrap();
        assert_eq!(t.addr.port(), 9000);
        assert!(parse_url("https://127.0.0.1/").is_err());
        assert!(parse_url("http:///x").is_err());
    }

    fn args(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["helios-loadgen", "--url", "http://127.0.0.1:9/"];
        argv.extend_from_slice(extra);
        Config::from_args(Args::try_parse_from(argv).map_err(|e| ConfigError(e.to_string()))?)
    }

    #[test]
    fn arrivals_seed_and_driver_flags() {
        let c = args(&["--rate", "100"]).unwrap();
        assert_eq!(c.arrivals, Arrivals::Constant);
        assert_eq!(c.io_driver, IoDriverChoice::Auto);
        let c = args(&["--rate", "100", "--arrivals", "poisson", "--seed", "7"]).unwrap();
        assert_eq!((c.arrivals, c.seed), (Arrivals::Poisson, 7));
        let c = args(&["--io-driver", "epoll"]).unwrap();
        assert_eq!(c.io_driver, IoDriverChoice::Epoll);
        assert!(
            args(&["--arrivals", "poisson"]).is_err(),
            "arrivals need a rate"
        );
        assert!(
            args(&["--rate", "100", "--seed", "7"]).is_err(),
            "seed needs poisson"
        );
        assert!(args(&["--rate", "100", "--arrivals", "bursty"]).is_err());
        assert!(args(&["--io-driver", "kqueue"]).is_err());
    }

    #[test]
    fn headers_are_validated() {
        assert_eq!(
            validate_header("Authorization:  Bearer k ").unwrap(),
            "Authorization: Bearer k"
        );
        assert!(validate_header("NoColon").is_err());
        assert!(validate_header("Bad Name: x").is_err());
        assert!(validate_header("X: a\r\nInjected: 1").is_err());
        assert!(validate_header("content-length: 5").is_err());
    }
}
