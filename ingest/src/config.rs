//! Collector configuration: command-line flags, each also settable through
//! a `HELIOS_*` environment variable and a TOML file (`--config`).
//! Precedence: flag > environment > file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::events::{
    PriorityBudget, DEFAULT_HIGH_PRIORITY_RESERVE_PERCENT, DEFAULT_LOW_PRIORITY_BUDGET_PERCENT,
    MAX_EVENTS_PER_REQUEST_CEILING, MAX_HIGH_PRIORITY_RESERVE_PERCENT, MAX_JSON_DEPTH_CEILING,
};
use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// Default listen address: loopback, so a fresh install exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./helios-data";
/// Default wire body limit (DESIGN §3).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// Default decoded body limit (DESIGN §3): a gzip bomb stops here.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 32 << 20;
/// Default events per request.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Default request-head limit.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// Default header count limit.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default JSON nesting limit.
pub const DEFAULT_MAX_JSON_DEPTH: usize = 64;
/// Clock drift below this is not corrected (DESIGN §3).
pub const DEFAULT_CLOCK_SKEW_THRESHOLD_MS: i64 = 1_000;
/// Default journal segment size.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// How long shutdown waits for in-flight requests and the store.
pub const DEFAULT_SHUTDOWN_DEADLINE_MS: u64 = 10_000;
/// Events per store write (at most; a store may take fewer: the SQLite
/// sink up to `SQLITE_MAX_BATCH_EVENTS`, MongoDB 2,000, a relay its own).
/// Under a backlog, larger transactions amortise SQLite's index pages:
/// draining 1 M events went 139.6 k → 176.3 k events/s in time order and
/// 21.9 k → 40.5 k out of order from 4,096 to 32,768 (BENCHMARKS.md), for
/// about 76 MB more peak memory; at low rates batches are smaller anyway.
pub const DEFAULT_FLUSH_BATCH_EVENTS: usize = 32_768;
/// Default for `--header-timeout-ms`.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Default for `--body-timeout-ms`.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 30_000;
/// Default for `--idle-timeout-ms`.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default for `--max-connections-per-core`.
pub const DEFAULT_MAX_CONNECTIONS_PER_CORE: usize = 10_000;
/// Default for `--max-pipelined-requests`.
pub const DEFAULT_MAX_PIPELINED_REQUESTS: usize = 128;
/// Default of [`Cli::max_buffered_body_bytes_per_core`]: 8 bodies of the
/// default 8 MiB limit at once per core, whatever the number of
/// connections.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES_PER_CORE: usize = 64 << 20;
/// Default for `--retention-check-ms`.
pub const DEFAULT_RETENTION_CHECK_MS: u64 = 60_000;
/// Default for `--store-partition-minutes` (the embedded store's columnar
/// partitions of `ts`).
pub const DEFAULT_STORE_PARTITION_MINUTES: u64 = 15;
/// Default for `--store-hot-minutes`.
pub const DEFAULT_STORE_HOT_MINUTES: u64 = 5;
/// Widest `--store-partition-minutes`: a week (wider partitions make
/// retention coarser and each file's `_id` check larger).
pub const MAX_STORE_PARTITION_MINUTES: u64 = 7 * 24 * 60;
/// Longest `--store-hot-minutes` and `--store-late-hold-minutes`: a week.
pub const MAX_STORE_HOT_MINUTES: u64 = 7 * 24 * 60;
/// Default for `--store-late-hold-minutes`.
pub const DEFAULT_STORE_LATE_HOLD_MINUTES: u64 = 60;
/// Default for `--store-compact-every-ms`.
pub const DEFAULT_STORE_COMPACT_EVERY_MS: u64 = 10_000;
/// Default disk budget for journaled events the store does not have yet.
pub const DEFAULT_JOURNAL_BUDGET_BYTES: u64 = 8 << 30;
/// Default app stamped on syslog events (`--syslog-app`).
pub const DEFAULT_SYSLOG_APP: &str = "syslog";
/// Default `--syslog-max-message-bytes`: the parser's suggestion (64 KiB,
/// more than a UDP datagram carries and than rsyslog sends by default).
pub const DEFAULT_SYSLOG_MAX_MESSAGE_BYTES: usize =
    helios_shippers::syslog::DEFAULT_MAX_MESSAGE_BYTES;
/// Most `--syslog-max-message-bytes` may be: RELP's DATALEN and RFC 6587's
/// octet count stop at 9 digits, and a message is held whole in memory.
pub const MAX_SYSLOG_MESSAGE_BYTES_CEILING: usize = 64 << 20;
/// Default `--syslog-udp-rcvbuf-bytes` asked of the kernel (SO_RCVBUF):
/// about 2 s of a 1 MB/s datagram flood while a commit is in flight. The
/// kernel grants at most `net.core.rmem_max` (doubled); the start-up log
/// says what it granted.
pub const DEFAULT_SYSLOG_UDP_RCVBUF_BYTES: usize = 4 << 20;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// How the flusher and the store writer give way to the collector's cores
/// (`--flusher-priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlusherPriority {
    /// Nice 10: the cores win when they compete for CPU, and the store
    /// still gets a share, so events stay fresh under load.
    #[default]
    Nice,
    /// `SCHED_IDLE`: the store runs only on CPU the cores leave idle.
    /// Acks come faster under load; under sustained load the journals
    /// absorb the difference (up to their budget) and events reach the
    /// store later.
    Idle,
}

/// `--io-driver` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoDriverArg {
    /// io_uring where the probe at start finds it usable, else epoll.
    #[default]
    Auto,
    /// io_uring or nothing: refuse to start where it is refused.
    IoUring,
    /// epoll (monoio's legacy driver; journal commits on a writer thread
    /// per journal), even where io_uring works.
    Epoll,
}

/// `--mongodb-layout` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MongoLayoutArg {
    /// A regular collection.
    Standard,
    /// A time-series collection.
    Timeseries,
}

/// `helios-collector`: accepts events over HTTP, makes them durable in
/// per-core journals before acknowledging, and flushes them to the store.
#[derive(Debug, Parser)]
#[command(name = "helios-collector", version, about, long_about = None)]
pub struct Cli {
    /// Run a maintenance command instead of the collector.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// TOML file with any of the settings below (keys as the flags, with
    /// underscores: `data_dir = "/var/lib/helios"`).
    #[arg(long, env = "HELIOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, env = "HELIOS_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for journals, the embedded store and dead letters
    /// [default: ./helios-data].
    #[arg(long, env = "HELIOS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Cores (threads, each with its own io_uring or epoll runtime,
    /// listener and journal) [default: all available].
    #[arg(long, env = "HELIOS_CORES")]
    pub cores: Option<usize>,
    /// Where events are stored: sqlite://PATH, a MongoDB connection string
    /// (mongodb://… or mongodb+srv://…; write concern from its `w` and
    /// `journal` options, default majority + journaled), or http://HOST:PORT
    /// to relay them to an upstream collector
    /// [default: sqlite://<data-dir>/events.db].
    #[arg(long, env = "HELIOS_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// MongoDB database [default: helios].
    #[arg(long, env = "HELIOS_MONGODB_DATABASE")]
    pub mongodb_database: Option<String>,
    /// MongoDB collection [default: events].
    #[arg(long, env = "HELIOS_MONGODB_COLLECTION")]
    pub mongodb_collection: Option<String>,
    /// MongoDB collection layout: `standard` (one document per event, unique
    /// `_id`) or `timeseries` (timeField ts, metaField type) [default: standard].
    #[arg(long, env = "HELIOS_MONGODB_LAYOUT")]
    pub mongodb_layout: Option<MongoLayoutArg>,
    /// Log format [default: pretty].
    #[arg(long, env = "HELIOS_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Largest request body on the wire, bytes [default: 8 MiB].
    #[arg(long, env = "HELIOS_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest body after Content-Encoding decoding (gzip, zstd), bytes
    /// [default: 32 MiB].
    #[arg(long, env = "HELIOS_MAX_DECODED_BYTES")]
    pub max_decoded_bytes: Option<usize>,
    /// Most events in one request [default: 10000].
    #[arg(long, env = "HELIOS_MAX_EVENTS_PER_REQUEST")]
    pub max_events_per_request: Option<usize>,
    /// Largest request head (request line + headers), bytes [default: 16 KiB].
    #[arg(long, env = "HELIOS_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most headers in one request [default: 64, at most 128].
    #[arg(long, env = "HELIOS_MAX_HEADERS")]
    pub max_headers: Option<usize>,
    /// Deepest JSON nesting in an event [default: 64].
    #[arg(long, env = "HELIOS_MAX_JSON_DEPTH")]
    pub max_json_depth: Option<usize>,
    /// Clock drift (ms) between Helios-Sent-At and receive time above which
    /// `ts` is corrected [default: 1000].
    #[arg(long, env = "HELIOS_CLOCK_SKEW_THRESHOLD_MS")]
    pub clock_skew_threshold_ms: Option<i64>,
    /// Journal segment size, bytes, multiple of 4096 [default: 64 MiB].
    #[arg(long, env = "HELIOS_SEGMENT_SIZE_BYTES")]
    pub segment_size_bytes: Option<u64>,
    /// How long SIGTERM/SIGINT waits for in-flight requests and for the
    /// store to take what is journaled, ms [default: 10000].
    #[arg(long, env = "HELIOS_SHUTDOWN_DEADLINE_MS")]
    pub shutdown_deadline_ms: Option<u64>,
    /// Most events per store write: larger drains a backlog faster (most
    /// of all events out of time order), smaller holds less memory; the
    /// embedded store takes up to 65536 [default: 32768].
    #[arg(long, env = "HELIOS_FLUSH_BATCH_EVENTS")]
    pub flush_batch_events: Option<usize>,
    /// Bytes of journaled events not yet in the store (all cores together)
    /// past which requests get 503 + Retry-After until the store catches up
    /// [default: 8 GiB].
    #[arg(long, env = "HELIOS_JOURNAL_BUDGET_BYTES")]
    pub journal_budget_bytes: Option<u64>,
    /// Journal segments to prepare ahead (all cores together, in bytes, at
    /// most --journal-budget-bytes): zero-filled while the disk is idle and
    /// kept for reuse, so a journal filling up under overload commits into
    /// written blocks (segments it needs beyond them are only allocated,
    /// fallocate: each byte is written once either way, but a commit into
    /// allocated blocks also updates the filesystem's extents). Takes that
    /// much disk up front [default: 0, two spare segments per journal
    /// only].
    #[arg(long, env = "HELIOS_JOURNAL_PREPARE_BYTES")]
    pub journal_prepare_bytes: Option<u64>,
    /// Group commits each journal writes and syncs at once, 1 to
    /// helios_journal::MAX_COMMITS_IN_FLIGHT_LIMIT (8): with 2 a commit
    /// starts while the previous one is still in flight (the disk takes
    /// parallel flushes); acks stay in order. 1: one commit at a time
    /// [default: 2].
    #[arg(long, env = "HELIOS_JOURNAL_COMMITS_IN_FLIGHT")]
    pub journal_commits_in_flight: Option<usize>,
    /// How the flusher and the store writer give way to the cores: `nice`
    /// (nice 10, the store keeps a share of the CPU) or `idle`
    /// (SCHED_IDLE: the store runs only on CPU the cores leave; faster
    /// acks under load, events reach the store later) [default: nice].
    #[arg(long, env = "HELIOS_FLUSHER_PRIORITY", value_enum)]
    pub flusher_priority: Option<FlusherPriority>,
    /// Share of a core's journal budget, in percent, past which events with
    /// `"priority": "low"` are refused (per event, or 503 when none of a
    /// request is left); at most 100 minus --high-priority-reserve-percent
    /// [default: 80].
    #[arg(long, env = "HELIOS_LOW_PRIORITY_BUDGET_PERCENT")]
    pub low_priority_budget_percent: Option<u32>,
    /// Share of a core's journal budget, in percent, that only events with
    /// `"priority": "high"` may fill: normal (and unmarked) events are
    /// refused at the budget minus this, 0 to 99 [default: 10].
    #[arg(long, env = "HELIOS_HIGH_PRIORITY_RESERVE_PERCENT")]
    pub high_priority_reserve_percent: Option<u32>,
    /// Time a client has to send a whole request head, ms: a slow sender gets 408 (slowloris) [default: 10000].
    #[arg(long, env = "HELIOS_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Time a client has to send a whole body after its head, ms; then 408 [default: 30000].
    #[arg(long, env = "HELIOS_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// Keep-alive connections idle this long are closed, ms [default: 60000].
    #[arg(long, env = "HELIOS_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Open connections per core; past it new ones get 503 and are closed [default: 10000].
    #[arg(long, env = "HELIOS_MAX_CONNECTIONS_PER_CORE")]
    pub max_connections_per_core: Option<usize>,
    /// Requests handled from one connection's buffer before their responses are written [default: 128].
    #[arg(long, env = "HELIOS_MAX_PIPELINED_REQUESTS")]
    pub max_pipelined_requests: Option<usize>,
    /// Request-body bytes one core's connections together may hold in
    /// memory while bodies arrive; a body that would pass it gets 503 +
    /// Retry-After [default: 64 MiB].
    #[arg(long, env = "HELIOS_MAX_BUFFERED_BODY_BYTES_PER_CORE")]
    pub max_buffered_body_bytes_per_core: Option<usize>,
    /// Delete stored events received more than this many days ago
    /// (checked every --retention-check-ms) [default: keep forever].
    #[arg(long, env = "HELIOS_RETENTION_DAYS")]
    pub retention_days: Option<f64>,
    /// How often retention runs, ms [default: 60000].
    #[arg(long, env = "HELIOS_RETENTION_CHECK_MS")]
    pub retention_check_ms: Option<u64>,
    /// Embedded store (sqlite://): width of the time partitions (of `ts`)
    /// that sealed events are compacted into as columnar files, minutes
    /// [default: 15].
    #[arg(long, env = "HELIOS_STORE_PARTITION_MINUTES")]
    pub store_partition_minutes: Option<u64>,
    /// Embedded store: how long after its end a partition stays in the
    /// SQLite hot tier before it is compacted, minutes [default: 5].
    #[arg(long, env = "HELIOS_STORE_HOT_MINUTES")]
    pub store_hot_minutes: Option<u64>,
    /// Embedded store: how often the compactor looks for sealed
    /// partitions, ms [default: 10000].
    #[arg(long, env = "HELIOS_STORE_COMPACT_EVERY_MS")]
    pub store_compact_every_ms: Option<u64>,
    /// Embedded store: most events per columnar file (bounds the
    /// compactor's memory and its delete transaction) [default: 131072].
    #[arg(long, env = "HELIOS_STORE_MAX_EVENTS_PER_FILE")]
    pub store_max_events_per_file: Option<usize>,
    /// Embedded store: events that arrive late for a partition already
    /// compacted wait in the hot tier until a file's worth has gathered or
    /// the oldest has waited this long, minutes [default: 60].
    #[arg(long, env = "HELIOS_STORE_LATE_HOLD_MINUTES")]
    pub store_late_hold_minutes: Option<u64>,
    /// Embedded store: dotted field paths to keep as columns of every
    /// columnar file that holds them, however rare (fast top values and
    /// filters on them), comma-separated, e.g. `user,order.country`
    /// [default: none; fields in at least half of a type's events are
    /// columns anyway].
    #[arg(long, env = "HELIOS_STORE_COLUMN_FIELDS", value_delimiter = ',')]
    pub store_column_fields: Option<Vec<String>>,
    /// Bound on the dead-letter file, bytes [default: 1 GiB]. When full,
    /// events the store refuses are held (ingest backs up to 503) rather
    /// than dropped.
    #[arg(long, env = "HELIOS_DEAD_LETTER_MAX_BYTES")]
    pub dead_letter_max_bytes: Option<u64>,
    /// With `--store http://upstream`: the relay-role key sent to the
    /// upstream collector (never logged).
    #[arg(long, env = "HELIOS_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<String>,
    /// With `--store https://upstream`: a PEM file of CA certificates to
    /// trust besides the Mozilla roots (a private CA).
    #[arg(long, env = "HELIOS_UPSTREAM_CA_FILE")]
    pub upstream_ca_file: Option<PathBuf>,
    /// API key file: `KEY APP ROLE` per line (role `ingest` or `relay`;
    /// a key may be given as `sha256:<hex>`). With it every request to
    /// /v1/events needs `Authorization: Bearer KEY`.
    #[arg(long, env = "HELIOS_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// Accept unauthenticated events on a non-loopback address. Without it
    /// a non-loopback --listen needs --api-keys.
    #[arg(long, env = "HELIOS_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// I/O driver of every core: `auto` probes io_uring at start and runs
    /// on epoll where it is refused (seccomp, old kernel, memlock limit,
    /// kernel.io_uring_disabled); `io-uring` refuses to start without it;
    /// `epoll` always runs on epoll [default: auto].
    #[arg(long, env = "HELIOS_IO_DRIVER", value_enum)]
    pub io_driver: Option<IoDriverArg>,
    /// Journal commits as buffered writes, each fdatasynced before the ack,
    /// for a journal directory whose filesystem refuses O_DIRECT (some FUSE
    /// and network filesystems). Acks stay durable; commits go through
    /// the page cache.
    #[arg(long, env = "HELIOS_JOURNAL_BUFFERED_IO")]
    pub journal_buffered_io: bool,
    /// Accept a journal directory on tmpfs or ramfs: acks then survive a
    /// collector crash but not a power loss or reboot. Without it such a
    /// directory is refused at start.
    #[arg(long, env = "HELIOS_ALLOW_VOLATILE_JOURNAL")]
    pub allow_volatile_journal: bool,
    /// Where OTLP log records take their `type`: candidates separated by
    /// `|`, `$field` for a field of the stored event, ending in literal
    /// text (default `$event_name|$attributes.event.name|otel.log`).
    #[arg(long, env = "HELIOS_OTLP_TYPE")]
    pub otlp_type: Option<String>,
    /// Where Elasticsearch bulk documents take their `type` (same syntax;
    /// default: the index).
    #[arg(long, env = "HELIOS_ES_TYPE")]
    pub es_type: Option<String>,
    /// Where Splunk HEC events take their `type` (same syntax; default:
    /// the sourcetype).
    #[arg(long, env = "HELIOS_HEC_TYPE")]
    pub hec_type: Option<String>,
    /// Where Loki entries take their `type` (same syntax; default: the
    /// `job` label).
    #[arg(long, env = "HELIOS_LOKI_TYPE")]
    pub loki_type: Option<String>,
    /// Receive syslog over UDP (RFC 5426) on this address; no
    /// acknowledgement exists: see the README [default: off].
    #[arg(long, env = "HELIOS_SYSLOG_UDP")]
    pub syslog_udp: Option<SocketAddr>,
    /// Receive syslog over TCP (RFC 6587, octet counting or LF framing,
    /// per message) on this address [default: off].
    #[arg(long, env = "HELIOS_SYSLOG_TCP")]
    pub syslog_tcp: Option<SocketAddr>,
    /// Receive RELP (rsyslog's omrelp) on this address: each message is
    /// answered `200 OK` only once it is durable [default: off].
    #[arg(long, env = "HELIOS_RELP")]
    pub relp: Option<SocketAddr>,
    /// The app stamped on every syslog event (never taken from the
    /// message: any sender could claim any app) [default: syslog].
    #[arg(long, env = "HELIOS_SYSLOG_APP")]
    pub syslog_app: Option<String>,
    /// Where syslog events take their `type` (the shippers' rule syntax,
    /// e.g. `$app_name|syslog`) [default: syslog].
    #[arg(long, env = "HELIOS_SYSLOG_TYPE")]
    pub syslog_type: Option<String>,
    /// Largest syslog message (a UDP datagram, a TCP frame, a RELP frame's
    /// data), bytes; larger ones are counted and skipped (RELP: refused
    /// with 500) [default: 65536].
    #[arg(long, env = "HELIOS_SYSLOG_MAX_MESSAGE_BYTES")]
    pub syslog_max_message_bytes: Option<usize>,
    /// Receive buffer asked for each core's syslog UDP socket (SO_RCVBUF),
    /// bytes; the kernel caps it at net.core.rmem_max and the start-up log
    /// says what it granted [default: 4194304].
    #[arg(long, env = "HELIOS_SYSLOG_UDP_RCVBUF_BYTES")]
    pub syslog_udp_rcvbuf_bytes: Option<usize>,
}

/// Maintenance commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Inspect or re-submit the events the store refused.
    DeadLetter {
        /// What to do.
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

/// `dead-letter` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum DeadLetterAction {
    /// Print each dead letter: reason, `_id`, `type`.
    List,
    /// Write each dead letter to the store again; those stored leave the
    /// file. Refuses to run while a collector uses the data directory.
    Replay,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    cores: Option<usize>,
    store: Option<String>,
    mongodb_database: Option<String>,
    mongodb_collection: Option<String>,
    mongodb_layout: Option<MongoLayoutArg>,
    log_format: Option<LogFormat>,
    max_body_bytes: Option<usize>,
    max_decoded_bytes: Option<usize>,
    max_events_per_request: Option<usize>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_json_depth: Option<usize>,
    clock_skew_threshold_ms: Option<i64>,
    segment_size_bytes: Option<u64>,
    shutdown_deadline_ms: Option<u64>,
    flush_batch_events: Option<usize>,
    journal_budget_bytes: Option<u64>,
    journal_prepare_bytes: Option<u64>,
    journal_commits_in_flight: Option<usize>,
    flusher_priority: Option<FlusherPriority>,
    low_priority_budget_percent: Option<u32>,
    high_priority_reserve_percent: Option<u32>,
    retention_days: Option<f64>,
    retention_check_ms: Option<u64>,
    store_partition_minutes: Option<u64>,
    store_hot_minutes: Option<u64>,
    store_compact_every_ms: Option<u64>,
    store_max_events_per_file: Option<usize>,
    store_late_hold_minutes: Option<u64>,
    store_column_fields: Option<Vec<String>>,
    dead_letter_max_bytes: Option<u64>,
    upstream_api_key: Option<String>,
    upstream_ca_file: Option<PathBuf>,
    api_keys: Option<PathBuf>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_connections_per_core: Option<usize>,
    max_pipelined_requests: Option<usize>,
    max_buffered_body_bytes_per_core: Option<usize>,
    allow_anonymous: Option<bool>,
    io_driver: Option<IoDriverArg>,
    journal_buffered_io: Option<bool>,
    allow_volatile_journal: Option<bool>,
    otlp_type: Option<String>,
    es_type: Option<String>,
    hec_type: Option<String>,
    loki_type: Option<String>,
    syslog_udp: Option<SocketAddr>,
    syslog_tcp: Option<SocketAddr>,
    relp: Option<SocketAddr>,
    syslog_app: Option<String>,
    syslog_type: Option<String>,
    syslog_max_message_bytes: Option<usize>,
    syslog_udp_rcvbuf_bytes: Option<usize>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// See [`Cli::listen`].
    pub listen: SocketAddr,
    /// See [`Cli::data_dir`].
    pub data_dir: PathBuf,
    /// See [`Cli::cores`].
    pub cores: usize,
    /// See [`Cli::store`]. May hold credentials: never log it.
    pub store: String,
    /// MongoDB database, collection and layout (see [`Cli::mongodb_database`]).
    pub mongodb: helios_store::mongo::MongoOptions,
    /// See [`Cli::log_format`].
    pub log_format: LogFormat,
    /// See [`Cli::max_body_bytes`].
    pub max_body_bytes: usize,
    /// See [`Cli::max_decoded_bytes`].
    pub max_decoded_bytes: usize,
    /// See [`Cli::max_events_per_request`].
    pub max_events_per_request: usize,
    /// See [`Cli::max_header_bytes`].
    pub max_header_bytes: usize,
    /// See [`Cli::max_headers`].
    pub max_headers: usize,
    /// See [`Cli::max_json_depth`].
    pub max_json_depth: usize,
    /// See [`Cli::clock_skew_threshold_ms`].
    pub clock_skew_threshold_ms: i64,
    /// See [`Cli::segment_size_bytes`].
    pub segment_size_bytes: u64,
    /// See [`Cli::shutdown_deadline_ms`].
    pub shutdown_deadline_ms: u64,
    /// See [`Cli::flush_batch_events`].
    pub flush_batch_events: usize,
    /// See [`Cli::journal_budget_bytes`].
    pub journal_budget_bytes: u64,
    /// See [`Cli::journal_prepare_bytes`].
    pub journal_prepare_bytes: u64,
    /// See [`Cli::journal_commits_in_flight`].
    pub journal_commits_in_flight: usize,
    /// See [`Cli::flusher_priority`].
    pub flusher_priority: FlusherPriority,
    /// See [`Cli::low_priority_budget_percent`].
    pub low_priority_budget_percent: u32,
    /// See [`Cli::high_priority_reserve_percent`].
    pub high_priority_reserve_percent: u32,
    /// See [`Cli::header_timeout_ms`].
    pub header_timeout_ms: u64,
    /// See [`Cli::body_timeout_ms`].
    pub body_timeout_ms: u64,
    /// See [`Cli::idle_timeout_ms`].
    pub idle_timeout_ms: u64,
    /// See [`Cli::max_connections_per_core`].
    pub max_connections_per_core: usize,
    /// See [`Cli::max_pipelined_requests`].
    pub max_pipelined_requests: usize,
    /// See [`Cli::max_buffered_body_bytes_per_core`].
    pub max_buffered_body_bytes_per_core: usize,
    /// See [`Cli::retention_days`].
    pub retention_days: Option<f64>,
    /// See [`Cli::retention_check_ms`].
    pub retention_check_ms: u64,
    /// See [`Cli::store_partition_minutes`].
    pub store_partition_minutes: u64,
    /// See [`Cli::store_hot_minutes`].
    pub store_hot_minutes: u64,
    /// See [`Cli::store_compact_every_ms`].
    pub store_compact_every_ms: u64,
    /// See [`Cli::store_max_events_per_file`].
    pub store_max_events_per_file: usize,
    /// See [`Cli::store_late_hold_minutes`].
    pub store_late_hold_minutes: u64,
    /// See [`Cli::store_column_fields`].
    pub store_column_fields: Vec<String>,
    /// See [`Cli::dead_letter_max_bytes`].
    pub dead_letter_max_bytes: u64,
    /// See [`Cli::upstream_api_key`].
    pub upstream_api_key: Option<String>,
    /// See [`Cli::upstream_ca_file`].
    pub upstream_ca_file: Option<PathBuf>,
    /// See [`Cli::api_keys`].
    pub api_keys: Option<PathBuf>,
    /// See [`Cli::allow_anonymous`].
    pub allow_anonymous: bool,
    /// See [`Cli::io_driver`].
    pub io_driver: IoDriverArg,
    /// See [`Cli::journal_buffered_io`].
    pub journal_buffered_io: bool,
    /// See [`Cli::allow_volatile_journal`].
    pub allow_volatile_journal: bool,
    /// The shippers' `type` rules ([`Cli::otlp_type`] and its siblings,
    /// [`Cli::syslog_type`]).
    pub shipper_types: helios_shippers::TypeRules,
    /// The syslog listeners and their settings.
    pub syslog: SyslogConfig,
}

/// Syslog intake settings ([`Cli::syslog_udp`] and its siblings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// See [`Cli::syslog_udp`].
    pub udp: Option<SocketAddr>,
    /// See [`Cli::syslog_tcp`].
    pub tcp: Option<SocketAddr>,
    /// See [`Cli::relp`].
    pub relp: Option<SocketAddr>,
    /// See [`Cli::syslog_app`].
    pub app: String,
    /// See [`Cli::syslog_max_message_bytes`].
    pub max_message_bytes: usize,
    /// See [`Cli::syslog_udp_rcvbuf_bytes`].
    pub udp_rcvbuf_bytes: usize,
}

/// Hard ceiling on `max_headers` (the parser's stack array).
pub const MAX_HEADERS_CEILING: usize = 128;

impl Config {
    /// Resolves flags/environment over the optional file over defaults.
    pub fn resolve(mut cli: Cli) -> anyhow::Result<Config> {
        cli.command = None;
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = cli
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = cli
            .store
            .or(file.store)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("events.db").display()));
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cfg = Config {
            listen: match cli.listen.or(file.listen) {
                Some(a) => a,
                None => DEFAULT_LISTEN.parse()?,
            },
            cores: cli.cores.or(file.cores).unwrap_or(available),
            store,
            log_format: cli
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Pretty),
            max_body_bytes: cli
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_decoded_bytes: cli
                .max_decoded_bytes
                .or(file.max_decoded_bytes)
                .unwrap_or(DEFAULT_MAX_DECODED_BYTES),
            max_events_per_request: cli
                .max_events_per_request
                .or(file.max_events_per_request)
                .unwrap_or(DEFAULT_MAX_EVENTS_PER_REQUEST),
            max_header_bytes: cli
                .max_header_bytes
                .or(file.max_header_bytes)
                .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            max_headers: cli
                .max_headers
                .or(file.max_headers)
                .unwrap_or(DEFAULT_MAX_HEADERS),
            max_json_depth: cli
                .max_json_depth
                .or(file.max_json_depth)
                .unwrap_or(DEFAULT_MAX_JSON_DEPTH),
            clock_skew_threshold_ms: cli
                .clock_skew_threshold_ms
                .or(file.clock_skew_threshold_ms)
                .unwrap_or(DEFAULT_CLOCK_SKEW_THRESHOLD_MS),
            segment_size_bytes: cli
                .segment_size_bytes
                .or(file.segment_size_bytes)
                .unwrap_or(DEFAULT_SEGMENT_SIZE_BYTES),
            shutdown_deadline_ms: cli
                .shutdown_deadline_ms
                .or(file.shutdown_deadline_ms)
                .unwrap_or(DEFAULT_SHUTDOWN_DEADLINE_MS),
            flush_batch_events: cli
                .flush_batch_events
                .or(file.flush_batch_events)
                .unwrap_or(DEFAULT_FLUSH_BATCH_EVENTS),
            journal_budget_bytes: cli
                .journal_budget_bytes
                .or(file.journal_budget_bytes)
                .unwrap_or(DEFAULT_JOURNAL_BUDGET_BYTES),
            journal_prepare_bytes: cli
                .journal_prepare_bytes
                .or(file.journal_prepare_bytes)
                .unwrap_or(0),
            journal_commits_in_flight: cli
                .journal_commits_in_flight
                .or(file.journal_commits_in_flight)
                .unwrap_or(helios_journal::DEFAULT_MAX_COMMITS_IN_FLIGHT),
            flusher_priority: cli
                .flusher_priority
                .or(file.flusher_priority)
                .unwrap_or_default(),
            low_priority_budget_percent: cli
                .low_priority_budget_percent
                .or(file.low_priority_budget_percent)
                .unwrap_or(DEFAULT_LOW_PRIORITY_BUDGET_PERCENT),
            high_priority_reserve_percent: cli
                .high_priority_reserve_percent
                .or(file.high_priority_reserve_percent)
                .unwrap_or(DEFAULT_HIGH_PRIORITY_RESERVE_PERCENT),
            header_timeout_ms: cli
                .header_timeout_ms
                .or(file.header_timeout_ms)
                .unwrap_or(DEFAULT_HEADER_TIMEOUT_MS),
            body_timeout_ms: cli
                .body_timeout_ms
                .or(file.body_timeout_ms)
                .unwrap_or(DEFAULT_BODY_TIMEOUT_MS),
            idle_timeout_ms: cli
                .idle_timeout_ms
                .or(file.idle_timeout_ms)
                .unwrap_or(DEFAULT_IDLE_TIMEOUT_MS),
            max_connections_per_core: cli
                .max_connections_per_core
                .or(file.max_connections_per_core)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_CORE),
            max_pipelined_requests: cli
                .max_pipelined_requests
                .or(file.max_pipelined_requests)
                .unwrap_or(DEFAULT_MAX_PIPELINED_REQUESTS),
            max_buffered_body_bytes_per_core: cli
                .max_buffered_body_bytes_per_core
                .or(file.max_buffered_body_bytes_per_core)
                .unwrap_or(DEFAULT_MAX_BUFFERED_BODY_BYTES_PER_CORE),
            mongodb: helios_store::mongo::MongoOptions {
                database: cli
                    .mongodb_database
                    .or(file.mongodb_database)
                    .unwrap_or_else(|| helios_store::mongo::DEFAULT_DATABASE.to_owned()),
                collection: cli
                    .mongodb_collection
                    .or(file.mongodb_collection)
                    .unwrap_or_else(|| helios_store::mongo::DEFAULT_COLLECTION.to_owned()),
                layout: match cli.mongodb_layout.or(file.mongodb_layout) {
                    Some(MongoLayoutArg::Timeseries) => {
                        helios_store::mongo::MongoLayout::TimeSeries
                    }
                    Some(MongoLayoutArg::Standard) | None => {
                        helios_store::mongo::MongoLayout::Standard
                    }
                },
                retention_days: cli.retention_days.or(file.retention_days),
            },
            retention_days: cli.retention_days.or(file.retention_days),
            retention_check_ms: cli
                .retention_check_ms
                .or(file.retention_check_ms)
                .unwrap_or(DEFAULT_RETENTION_CHECK_MS),
            store_partition_minutes: cli
                .store_partition_minutes
                .or(file.store_partition_minutes)
                .unwrap_or(DEFAULT_STORE_PARTITION_MINUTES),
            store_hot_minutes: cli
                .store_hot_minutes
                .or(file.store_hot_minutes)
                .unwrap_or(DEFAULT_STORE_HOT_MINUTES),
            store_compact_every_ms: cli
                .store_compact_every_ms
                .or(file.store_compact_every_ms)
                .unwrap_or(DEFAULT_STORE_COMPACT_EVERY_MS),
            store_max_events_per_file: cli
                .store_max_events_per_file
                .or(file.store_max_events_per_file)
                .unwrap_or(helios_store::sqlite::DEFAULT_MAX_ROWS_PER_FILE),
            store_late_hold_minutes: cli
                .store_late_hold_minutes
                .or(file.store_late_hold_minutes)
                .unwrap_or(DEFAULT_STORE_LATE_HOLD_MINUTES),
            store_column_fields: cli
                .store_column_fields
                .or(file.store_column_fields)
                .unwrap_or_default()
                .into_iter()
                .map(|field| field.trim().to_owned())
                .filter(|field| !field.is_empty())
                .collect(),
            dead_letter_max_bytes: cli
                .dead_letter_max_bytes
                .or(file.dead_letter_max_bytes)
                .unwrap_or(crate::deadletter::DEFAULT_DEAD_LETTER_MAX_BYTES),
            upstream_api_key: cli.upstream_api_key.or(file.upstream_api_key),
            upstream_ca_file: cli.upstream_ca_file.or(file.upstream_ca_file),
            api_keys: cli.api_keys.or(file.api_keys),
            allow_anonymous: cli.allow_anonymous || file.allow_anonymous.unwrap_or(false),
            io_driver: cli.io_driver.or(file.io_driver).unwrap_or_default(),
            journal_buffered_io: cli.journal_buffered_io
                || file.journal_buffered_io.unwrap_or(false),
            allow_volatile_journal: cli.allow_volatile_journal
                || file.allow_volatile_journal.unwrap_or(false),
            shipper_types: shipper_types(
                [
                    cli.otlp_type,
                    cli.es_type,
                    cli.hec_type,
                    cli.loki_type,
                    cli.syslog_type,
                ],
                [
                    file.otlp_type,
                    file.es_type,
                    file.hec_type,
                    file.loki_type,
                    file.syslog_type,
                ],
            )?,
            syslog: SyslogConfig {
                udp: cli.syslog_udp.or(file.syslog_udp),
                tcp: cli.syslog_tcp.or(file.syslog_tcp),
                relp: cli.relp.or(file.relp),
                app: cli
                    .syslog_app
                    .or(file.syslog_app)
                    .unwrap_or_else(|| DEFAULT_SYSLOG_APP.to_owned()),
                max_message_bytes: cli
                    .syslog_max_message_bytes
                    .or(file.syslog_max_message_bytes)
                    .unwrap_or(DEFAULT_SYSLOG_MAX_MESSAGE_BYTES),
                udp_rcvbuf_bytes: cli
                    .syslog_udp_rcvbuf_bytes
                    .or(file.syslog_udp_rcvbuf_bytes)
                    .unwrap_or(DEFAULT_SYSLOG_UDP_RCVBUF_BYTES),
            },
            data_dir,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The embedded store's database file when `--store` is `sqlite://`
    /// (the columnar tier's compactor runs beside the flusher then).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match helios_store::StoreUri::parse(&self.store) {
            Ok(helios_store::StoreUri::Sqlite(path)) => Some(path),
            _ => None,
        }
    }

    /// How the compactor cuts the embedded store's partitions.
    pub fn compact_options(&self) -> helios_store::sqlite::CompactOptions {
        const MINUTE_MS: i64 = 60_000;
        helios_store::sqlite::CompactOptions {
            partition_ms: i64::try_from(self.store_partition_minutes)
                .unwrap_or(i64::MAX)
                .saturating_mul(MINUTE_MS),
            hot_ms: i64::try_from(self.store_hot_minutes)
                .unwrap_or(i64::MAX)
                .saturating_mul(MINUTE_MS),
            max_rows_per_file: self.store_max_events_per_file,
            late_hold_ms: i64::try_from(self.store_late_hold_minutes)
                .unwrap_or(i64::MAX)
                .saturating_mul(MINUTE_MS),
            write: helios_store::columnar::WriteOptions {
                pinned_fields: self.store_column_fields.clone(),
                ..helios_store::columnar::WriteOptions::default()
            },
        }
    }

    /// The store options the flusher's sink is opened with.
    pub fn sink_options(&self) -> helios_store::SinkOptions {
        let compact = self.compact_options();
        helios_store::SinkOptions {
            mongo: self.mongodb.clone(),
            // An event older than this belongs to a partition the compactor
            // has sealed already: written as a late row.
            sqlite_late_after_ms: Some(compact.partition_ms.saturating_add(compact.hot_ms)),
        }
    }

    /// Opens the sink `--store` names: a store back end, or (for an
    /// `http(s)://` upstream) the relay.
    pub fn open_sink(
        &self,
    ) -> Result<Box<dyn helios_store::Sink + Send>, helios_store::StoreError> {
        match helios_store::StoreUri::parse(&self.store)? {
            helios_store::StoreUri::Http(url) => Ok(Box::new(crate::relay::RelaySink::open(
                &url,
                self.upstream_api_key.clone(),
                self.upstream_ca_file.as_deref(),
            )?)),
            _ => helios_store::open_sink_with(&self.store, &self.sink_options()),
        }
    }

    /// What the shippers' decoders need from the configuration.
    pub fn shipper_settings(&self) -> helios_shippers::Settings {
        helios_shippers::Settings {
            types: self.shipper_types.clone(),
            max_decoded_bytes: self.max_decoded_bytes,
            max_events: self.max_events_per_request,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.cores >= 1, "--cores must be at least 1");
        anyhow::ensure!(
            (1..=MAX_STORE_PARTITION_MINUTES).contains(&self.store_partition_minutes),
            "--store-partition-minutes must be 1..={MAX_STORE_PARTITION_MINUTES}"
        );
        for (flag, minutes) in [
            ("--store-hot-minutes", self.store_hot_minutes),
            ("--store-late-hold-minutes", self.store_late_hold_minutes),
        ] {
            anyhow::ensure!(
                minutes <= MAX_STORE_HOT_MINUTES,
                "{flag} must be 0..={MAX_STORE_HOT_MINUTES}"
            );
        }
        anyhow::ensure!(
            self.store_max_events_per_file >= 1,
            "--store-max-events-per-file must be at least 1"
        );
        anyhow::ensure!(
            self.store_column_fields.len() <= helios_store::columnar::MAX_FIELD_COLUMNS,
            "--store-column-fields names {} fields; a file has at most {} field columns",
            self.store_column_fields.len(),
            helios_store::columnar::MAX_FIELD_COLUMNS
        );
        for field in &self.store_column_fields {
            helios_store::query::FieldPath::parse(field)
                .map_err(|error| anyhow::anyhow!("--store-column-fields: `{field}`: {error}"))?;
            let first = field.split('.').next().unwrap_or_default();
            anyhow::ensure!(
                !helios_store::ENVELOPE_FIELDS.contains(&first),
                "--store-column-fields: `{field}` is (inside) the envelope member `{first}`, \
                 which has a column of its own"
            );
        }
        // Secure by default (DESIGN §3): nothing unauthenticated is exposed
        // beyond this machine unless asked for in so many words.
        anyhow::ensure!(
            is_loopback(self.listen.ip()) || self.api_keys.is_some() || self.allow_anonymous,
            "refusing to accept unauthenticated events on {}: give --api-keys, or --allow-anonymous to do so deliberately",
            self.listen
        );
        self.validate_syslog()?;
        anyhow::ensure!(
            (1..=MAX_HEADERS_CEILING).contains(&self.max_headers),
            "--max-headers must be 1..={MAX_HEADERS_CEILING}"
        );
        anyhow::ensure!(
            self.max_body_bytes >= 1,
            "--max-body-bytes must be positive"
        );
        anyhow::ensure!(
            self.max_decoded_bytes >= self.max_body_bytes,
            "--max-decoded-bytes must be at least --max-body-bytes"
        );
        // The validator's ceiling is below the ids one record can mint.
        debug_assert!(MAX_EVENTS_PER_REQUEST_CEILING <= crate::events::COUNTER_SPACE as usize);
        anyhow::ensure!(
            (1..=MAX_EVENTS_PER_REQUEST_CEILING).contains(&self.max_events_per_request),
            "--max-events-per-request must be 1..={MAX_EVENTS_PER_REQUEST_CEILING}"
        );
        anyhow::ensure!(
            (1..=MAX_JSON_DEPTH_CEILING).contains(&self.max_json_depth),
            "--max-json-depth must be 1..={MAX_JSON_DEPTH_CEILING} (the store's JSON reader nests no deeper)"
        );
        anyhow::ensure!(
            self.max_pipelined_requests >= 1,
            "--max-pipelined-requests must be at least 1 (it also bounds a connection's read buffer)"
        );
        anyhow::ensure!(
            self.max_buffered_body_bytes_per_core >= self.max_body_bytes,
            "--max-buffered-body-bytes-per-core must hold at least one --max-body-bytes body ({} bytes)",
            self.max_body_bytes
        );
        anyhow::ensure!(
            self.max_connections_per_core >= 1,
            "--max-connections-per-core must be at least 1"
        );
        for (flag, ms) in [
            ("--header-timeout-ms", self.header_timeout_ms),
            ("--body-timeout-ms", self.body_timeout_ms),
            ("--idle-timeout-ms", self.idle_timeout_ms),
            ("--retention-check-ms", self.retention_check_ms),
            ("--store-compact-every-ms", self.store_compact_every_ms),
        ] {
            anyhow::ensure!(ms >= 1, "{flag} must be at least 1");
        }
        anyhow::ensure!(
            self.journal_budget_bytes >= self.cores as u64,
            "--journal-budget-bytes must leave every core at least one byte (0 would refuse every event)"
        );
        anyhow::ensure!(
            self.journal_prepare_bytes <= self.journal_budget_bytes,
            "--journal-prepare-bytes must be at most --journal-budget-bytes (segments past the budget would never be used)"
        );
        anyhow::ensure!(
            (1..=helios_journal::MAX_COMMITS_IN_FLIGHT_LIMIT)
                .contains(&self.journal_commits_in_flight),
            "--journal-commits-in-flight must be 1 to {}",
            helios_journal::MAX_COMMITS_IN_FLIGHT_LIMIT
        );
        anyhow::ensure!(
            self.high_priority_reserve_percent <= MAX_HIGH_PRIORITY_RESERVE_PERCENT,
            "--high-priority-reserve-percent must be 0 to {MAX_HIGH_PRIORITY_RESERVE_PERCENT} \
             ({} would refuse every normal-priority event)",
            self.high_priority_reserve_percent
        );
        let normal_percent = 100 - self.high_priority_reserve_percent;
        anyhow::ensure!(
            (1..=normal_percent).contains(&self.low_priority_budget_percent),
            "--low-priority-budget-percent must be 1 to {normal_percent} (100 minus \
             --high-priority-reserve-percent): low-priority events are refused before normal ones"
        );
        anyhow::ensure!(
            self.dead_letter_max_bytes >= 1,
            "--dead-letter-max-bytes must be positive (0 would hold every refused event forever)"
        );
        if let Some(days) = self.retention_days {
            anyhow::ensure!(
                days.is_finite() && days > 0.0,
                "--retention-days must be a positive number of days ({days} would delete every event); \
                 leave it unset to keep events forever"
            );
        }
        anyhow::ensure!(
            self.flush_batch_events >= 1,
            "--flush-batch-events must be positive"
        );
        anyhow::ensure!(
            self.clock_skew_threshold_ms >= 0,
            "--clock-skew-threshold-ms must not be negative"
        );
        Ok(())
    }

    /// Syslog's rules: a listener beyond loopback needs `--allow-anonymous`
    /// (syslog carries no key, so `--api-keys` cannot stand in), the TCP
    /// listeners may not share an address (SO_REUSEPORT would let them
    /// split each other's connections), and the limits are in range.
    fn validate_syslog(&self) -> anyhow::Result<()> {
        let s = &self.syslog;
        for (flag, addr) in [
            ("--syslog-udp", s.udp),
            ("--syslog-tcp", s.tcp),
            ("--relp", s.relp),
        ] {
            if let Some(addr) = addr {
                anyhow::ensure!(
                    is_loopback(addr.ip()) || self.allow_anonymous,
                    "refusing to accept syslog on {addr} ({flag}): syslog carries no API key, \
                     so a non-loopback address needs --allow-anonymous"
                );
            }
        }
        let tcp = [
            ("--listen", Some(self.listen)),
            ("--syslog-tcp", s.tcp),
            ("--relp", s.relp),
        ];
        for (i, (flag_a, a)) in tcp.iter().enumerate() {
            for (flag_b, b) in &tcp[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    anyhow::ensure!(
                        a != b,
                        "{flag_a} and {flag_b} both name {a}: give each its own port"
                    );
                }
            }
        }
        anyhow::ensure!(!s.app.is_empty(), "--syslog-app must not be empty");
        anyhow::ensure!(
            (1..=MAX_SYSLOG_MESSAGE_BYTES_CEILING).contains(&s.max_message_bytes),
            "--syslog-max-message-bytes must be 1..={MAX_SYSLOG_MESSAGE_BYTES_CEILING}"
        );
        anyhow::ensure!(
            s.udp_rcvbuf_bytes >= 1 && i32::try_from(s.udp_rcvbuf_bytes).is_ok(),
            "--syslog-udp-rcvbuf-bytes must be 1..={}",
            i32::MAX
        );
        Ok(())
    }

    /// Segments each core's journal prepares beyond its spares: its share
    /// of --journal-prepare-bytes, in whole segments.
    pub fn journal_prepared_segments_per_core(&self) -> usize {
        let share = self.journal_prepare_bytes / self.cores as u64;
        share.div_ceil(self.segment_size_bytes.max(1)) as usize
    }

    /// The budget of one core's journal (the total split evenly).
    pub fn journal_budget_per_core(&self) -> u64 {
        (self.journal_budget_bytes / self.cores as u64).max(1)
    }

    /// Where each priority is refused in one core's journal.
    pub fn priority_budget_per_core(&self) -> PriorityBudget {
        PriorityBudget::new(
            self.journal_budget_per_core(),
            self.low_priority_budget_percent,
            self.high_priority_reserve_percent,
        )
    }

    /// `DATA/journal`.
    pub fn journal_root(&self) -> PathBuf {
        self.data_dir.join("journal")
    }
}

/// Loopback, counting IPv4-mapped IPv6 (`::ffff:127.0.0.1`), which
/// `IpAddr::is_loopback` does not.
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
}

/// The shippers' `type` rules: each flag over its file key over the
/// protocol's default, in the order OTLP, Elasticsearch, HEC, Loki, syslog.
fn shipper_types(
    flags: [Option<String>; 5],
    file: [Option<String>; 5],
) -> anyhow::Result<helios_shippers::TypeRules> {
    let mut rules = helios_shippers::TypeRules::default();
    let slots = [
        (&mut rules.otlp, "--otlp-type"),
        (&mut rules.elasticsearch, "--es-type"),
        (&mut rules.hec, "--hec-type"),
        (&mut rules.loki, "--loki-type"),
        (&mut rules.syslog, "--syslog-type"),
    ];
    for (((slot, flag), given), in_file) in slots.into_iter().zip(flags).zip(file) {
        if let Some(text) = given.or(in_file) {
            *slot = helios_shippers::TypeRule::parse(&text)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["helios-collector"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    /// The start-up error for `args`, which must be refused.
    fn refused(args: &[&str]) -> String {
        match Config::resolve(cli(args)) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn values_that_destroy_data_or_hang_are_refused_at_start_naming_the_flag() {
        let too_many = (MAX_EVENTS_PER_REQUEST_CEILING + 1).to_string();
        let too_deep = (MAX_JSON_DEPTH_CEILING + 1).to_string();
        for (args, flag) in [
            (vec!["--retention-days", "0"], "--retention-days"),
            (vec!["--retention-days=-1"], "--retention-days"),
            (vec!["--retention-days", "NaN"], "--retention-days"),
            (
                vec!["--max-pipelined-requests", "0"],
                "--max-pipelined-requests",
            ),
            (vec!["--max-json-depth", "100000"], "--max-json-depth"),
            (
                vec!["--max-json-depth", too_deep.as_str()],
                "--max-json-depth",
            ),
            (vec!["--max-json-depth", "0"], "--max-json-depth"),
            (
                vec!["--max-events-per-request", too_many.as_str()],
                "--max-events-per-request",
            ),
            (
                vec!["--max-connections-per-core", "0"],
                "--max-connections-per-core",
            ),
            (vec!["--idle-timeout-ms", "0"], "--idle-timeout-ms"),
            (vec!["--header-timeout-ms", "0"], "--header-timeout-ms"),
            (
                vec!["--journal-budget-bytes", "0"],
                "--journal-budget-bytes",
            ),
            (
                vec![
                    "--journal-budget-bytes",
                    "1000000",
                    "--journal-prepare-bytes",
                    "1000001",
                ],
                "--journal-prepare-bytes",
            ),
            (
                vec!["--journal-commits-in-flight", "0"],
                "--journal-commits-in-flight",
            ),
            (
                vec!["--journal-commits-in-flight", "9"],
                "--journal-commits-in-flight",
            ),
            (
                vec!["--dead-letter-max-bytes", "0"],
                "--dead-letter-max-bytes",
            ),
            (vec!["--retention-check-ms", "0"], "--retention-check-ms"),
            (
                vec!["--high-priority-reserve-percent", "100"],
                "--high-priority-reserve-percent",
            ),
            (
                vec!["--low-priority-budget-percent", "0"],
                "--low-priority-budget-percent",
            ),
            (
                vec!["--low-priority-budget-percent", "101"],
                "--low-priority-budget-percent",
            ),
            (
                // Low would be refused after normal.
                vec![
                    "--low-priority-budget-percent",
                    "95",
                    "--high-priority-reserve-percent",
                    "10",
                ],
                "--low-priority-budget-percent",
            ),
        ] {
            let message = refused(&args);
            assert!(message.contains(flag), "{args:?}: {message}");
        }
    }

    #[test]
    fn the_largest_allowed_values_are_accepted() {
        let events = MAX_EVENTS_PER_REQUEST_CEILING.to_string();
        let depth = MAX_JSON_DEPTH_CEILING.to_string();
        let c = Config::resolve(cli(&[
            "--max-events-per-request",
            &events,
            "--max-json-depth",
            &depth,
            "--retention-days",
            "0.5",
        ]))
        .unwrap();
        assert_eq!(c.max_json_depth, MAX_JSON_DEPTH_CEILING);
    }

    #[test]
    fn an_ipv4_mapped_loopback_address_is_loopback() {
        assert!(Config::resolve(cli(&["--listen", "[::ffff:127.0.0.1]:7070"])).is_ok());
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
        let message = refused(&["--listen", "[::ffff:10.0.0.1]:7070"]);
        assert!(message.contains("--api-keys"), "{message}");
    }

    #[test]
    fn defaults_are_loopback_and_sqlite_in_the_data_dir() {
        let c = Config::resolve(cli(&["--data-dir", "/tmp/d"])).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.store, "sqlite:///tmp/d/events.db");
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "cores = 3\nmax_body_bytes = 1000\nmax_decoded_bytes = 5000\n",
        )
        .unwrap();
        let c =
            Config::resolve(cli(&["--config", path.to_str().unwrap(), "--cores", "2"])).unwrap();
        assert_eq!(c.cores, 2);
        assert_eq!(c.max_body_bytes, 1000);
    }

    #[test]
    fn the_io_driver_and_journal_durability_flags_come_from_flag_env_or_file() {
        let c = Config::resolve(cli(&[])).unwrap();
        assert_eq!(c.io_driver, IoDriverArg::Auto);
        assert!(!c.journal_buffered_io && !c.allow_volatile_journal);
        let c = Config::resolve(cli(&[
            "--io-driver",
            "io-uring",
            "--journal-buffered-io",
            "--allow-volatile-journal",
        ]))
        .unwrap();
        assert_eq!(c.io_driver, IoDriverArg::IoUring);
        assert!(c.journal_buffered_io && c.allow_volatile_journal);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "io_driver = \"epoll\"\njournal_buffered_io = true\nallow_volatile_journal = true\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(c.io_driver, IoDriverArg::Epoll);
        assert!(c.journal_buffered_io && c.allow_volatile_journal);
        let c = Config::resolve(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--io-driver",
            "auto",
        ]))
        .unwrap();
        assert_eq!(
            c.io_driver,
            IoDriverArg::Auto,
            "the flag wins over the file"
        );
        assert!(Cli::try_parse_from(["helios-collector", "--io-driver", "kqueue"]).is_err());
    }

    #[test]
    fn journal_commits_in_flight_come_from_flag_or_file_with_a_default_of_two() {
        let c = Config::resolve(cli(&[])).unwrap();
        assert_eq!(
            c.journal_commits_in_flight,
            helios_journal::DEFAULT_MAX_COMMITS_IN_FLIGHT
        );
        let c = Config::resolve(cli(&["--journal-commits-in-flight", "1"])).unwrap();
        assert_eq!(c.journal_commits_in_flight, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helios.toml");
        std::fs::write(&path, "journal_commits_in_flight = 4\n").unwrap();
        let file = path.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", file])).unwrap();
        assert_eq!(c.journal_commits_in_flight, 4);
        let c =
            Config::resolve(cli(&["--config", file, "--journal-commits-in-flight", "3"])).unwrap();
        assert_eq!(
            c.journal_commits_in_flight, 3,
            "the flag wins over the file"
        );
    }

    #[test]
    fn flusher_priority_comes_from_flag_env_name_or_file_with_nice_by_default() {
        assert_eq!(
            Config::resolve(cli(&[])).unwrap().flusher_priority,
            FlusherPriority::Nice
        );
        let c = Config::resolve(cli(&["--flusher-priority", "idle"])).unwrap();
        assert_eq!(c.flusher_priority, FlusherPriority::Idle);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helios.toml");
        std::fs::write(&path, "flusher_priority = \"idle\"\n").unwrap();
        let file = path.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", file])).unwrap();
        assert_eq!(c.flusher_priority, FlusherPriority::Idle);
        let c = Config::resolve(cli(&["--config", file, "--flusher-priority", "nice"])).unwrap();
        assert_eq!(c.flusher_priority, FlusherPriority::Nice, "the flag wins");
        assert!(Cli::try_parse_from(["helios-collector", "--flusher-priority", "rt"]).is_err());
    }

    #[test]
    fn pinned_column_fields_come_from_the_flag_or_the_file_and_reach_the_compactor() {
        let c = Config::resolve(cli(&["--store-column-fields", "user, order.country"])).unwrap();
        assert_eq!(
            c.compact_options().write.pinned_fields,
            ["user", "order.country"]
        );
        assert!(Config::resolve(cli(&[]))
            .unwrap()
            .compact_options()
            .write
            .pinned_fields
            .is_empty());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helios.toml");
        std::fs::write(&path, "store_column_fields = [\"user\"]\n").unwrap();
        let c = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(c.store_column_fields, ["user"]);
    }

    #[test]
    fn pinned_column_fields_that_cannot_be_columns_are_refused_at_start() {
        for (fields, says) in [
            ("a..b", "`a..b`"),
            ("type", "envelope member `type`"),
            ("ts.x", "envelope member `ts`"),
        ] {
            let error = refused(&["--store-column-fields", fields]);
            assert!(error.contains(says), "{fields}: {error}");
        }
        let many: Vec<String> = (0..=helios_store::columnar::MAX_FIELD_COLUMNS)
            .map(|n| format!("f{n}"))
            .collect();
        let error = refused(&["--store-column-fields", &many.join(",")]);
        assert!(error.contains("at most"), "{error}");
    }

    #[test]
    fn prepared_segments_are_each_cores_share_in_whole_segments() {
        let c = Config::resolve(cli(&["--cores", "2"])).unwrap();
        assert_eq!(c.journal_prepared_segments_per_core(), 0);
        let c = Config::resolve(cli(&[
            "--cores",
            "2",
            "--segment-size-bytes",
            "1048576",
            "--journal-prepare-bytes",
            "5242880",
        ]))
        .unwrap();
        // 2.5 MiB a core: three 1 MiB segments.
        assert_eq!(c.journal_prepared_segments_per_core(), 3);
    }

    #[test]
    fn priority_percents_come_from_flag_or_file_and_set_the_per_core_thresholds() {
        let c = Config::resolve(cli(&["--journal-budget-bytes", "2000", "--cores", "2"])).unwrap();
        let b = c.priority_budget_per_core();
        assert_eq!(b.limit_bytes(crate::events::Priority::Low), 800);
        assert_eq!(b.limit_bytes(crate::events::Priority::Normal), 900);
        assert_eq!(b.limit_bytes(crate::events::Priority::High), 1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "low_priority_budget_percent = 50\nhigh_priority_reserve_percent = 25\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(
            (
                c.low_priority_budget_percent,
                c.high_priority_reserve_percent
            ),
            (50, 25)
        );
        let c = Config::resolve(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--low-priority-budget-percent",
            "75",
        ]))
        .unwrap();
        assert_eq!(c.low_priority_budget_percent, 75, "the flag wins");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "corez = 3\n").unwrap();
        let err = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("corez"), "{err}");
    }

    #[test]
    fn syslog_is_off_by_default_and_set_from_flags_or_the_file() {
        let c = Config::resolve(cli(&[])).unwrap();
        assert_eq!(
            c.syslog,
            SyslogConfig {
                udp: None,
                tcp: None,
                relp: None,
                app: DEFAULT_SYSLOG_APP.into(),
                max_message_bytes: DEFAULT_SYSLOG_MAX_MESSAGE_BYTES,
                udp_rcvbuf_bytes: DEFAULT_SYSLOG_UDP_RCVBUF_BYTES,
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "syslog_udp = \"127.0.0.1:5514\"\nsyslog_tcp = \"127.0.0.1:5514\"\n\
             relp = \"127.0.0.1:2514\"\nsyslog_app = \"network\"\n\
             syslog_type = \"$app_name|syslog\"\nsyslog_max_message_bytes = 8192\n\
             syslog_udp_rcvbuf_bytes = 1048576\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", file, "--syslog-app", "edge"])).unwrap();
        let at = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert_eq!(c.syslog.udp, at("127.0.0.1:5514"));
        assert_eq!(
            c.syslog.tcp,
            at("127.0.0.1:5514"),
            "UDP and TCP may share a port"
        );
        assert_eq!(c.syslog.relp, at("127.0.0.1:2514"));
        assert_eq!(c.syslog.app, "edge", "the flag beats the file");
        assert_eq!(c.syslog.max_message_bytes, 8192);
        assert_eq!(c.syslog.udp_rcvbuf_bytes, 1 << 20);
        assert_eq!(
            c.shipper_types.syslog,
            helios_shippers::TypeRule::parse("$app_name|syslog").unwrap()
        );
        let err = refused(&["--config", file, "--syslog-type", "$app_name"]);
        assert!(err.contains("--syslog-type"), "{err}");
    }

    #[test]
    fn syslog_listeners_beyond_loopback_need_allow_anonymous_whatever_the_keys() {
        let keys = ["--api-keys", "/etc/helios/keys"];
        for flag in ["--syslog-udp", "--syslog-tcp", "--relp"] {
            let err = refused(&[&keys[..], &[flag, "0.0.0.0:5514"]].concat());
            assert!(
                err.contains(flag) && err.contains("--allow-anonymous"),
                "{err}"
            );
            let c = Config::resolve(cli(&[flag, "0.0.0.0:5514", "--allow-anonymous"])).unwrap();
            assert!(c.allow_anonymous);
        }
    }

    #[test]
    fn syslog_limits_and_shared_tcp_addresses_are_refused_naming_the_flag() {
        let ceiling = (MAX_SYSLOG_MESSAGE_BYTES_CEILING + 1).to_string();
        for (args, needle) in [
            (vec!["--syslog-tcp", "127.0.0.1:7070"], "--syslog-tcp"),
            (vec!["--relp", "127.0.0.1:7070"], "--relp"),
            (
                vec!["--relp", "127.0.0.1:2514", "--syslog-tcp", "127.0.0.1:2514"],
                "--relp",
            ),
            (vec!["--syslog-app", ""], "--syslog-app"),
            (
                vec!["--syslog-max-message-bytes", "0"],
                "--syslog-max-message-bytes",
            ),
            (
                vec!["--syslog-max-message-bytes", &ceiling],
                "--syslog-max-message-bytes",
            ),
            (
                vec!["--syslog-udp-rcvbuf-bytes", "0"],
                "--syslog-udp-rcvbuf-bytes",
            ),
            (
                vec!["--syslog-udp-rcvbuf-bytes", "4294967296"],
                "--syslog-udp-rcvbuf-bytes",
            ),
        ] {
            let err = refused(&args);
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_non_loopback_bind_needs_allow_anonymous() {
        let err = Config::resolve(cli(&["--listen", "0.0.0.0:7070"])).unwrap_err();
        assert!(err.to_string().contains("--allow-anonymous"), "{err}");
        let c = Config::resolve(cli(&["--listen", "0.0.0.0:7070", "--allow-anonymous"])).unwrap();
        assert!(c.allow_anonymous);
        let c = Config::resolve(cli(&[
            "--listen",
            "0.0.0.0:7070",
            "--api-keys",
            "/etc/helios/keys",
        ]))
        .unwrap();
        assert!(c.api_keys.is_some());
    }

    #[test]
    fn inconsistent_limits_are_rejected() {
        let err = Config::resolve(cli(&[
            "--max-body-bytes",
            "100",
            "--max-decoded-bytes",
            "10",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("max-decoded-bytes"));
    }
}
