//! Query latency of the embedded store's query back end (issues 6 and 22):
//! pages, histograms, type counts, group-bys and a one-value filter over a
//! generated store of N events spread over one day, in the SQLite hot tier
//! alone or compacted into the columnar tier; p50/p99 per query, one table,
//! with the store's size on disk.
//!
//! ```text
//! cargo run --release -p helios-benches --example query_latency -- \
//!     --events 1000000 [--distribution mixed|reference] [--tiers hot|columnar] \
//!     [--dir /path/to/keep/stores] [--iterations 30] [--skip-queries] \
//!     [--max-field-columns 32] [--compact-every 5000000] [--late-rows] [--shuffled]
//! ```
//!
//! `--skip-queries` stops after building (and, for `--tiers columnar`,
//! compacting) the store and reporting its size: for timing compaction
//! alone. `--max-field-columns 0` compacts with no field columns, so every
//! query on a field times what a field that is not a column costs (use
//! its own `--dir`: a compacted store found there is reused as it is).
//! `--compact-every N` (`--tiers columnar`) generates the columnar store
//! itself, compacting after every N events written, so the hot tier never
//! holds more than about N events: for stores whose SQLite copy would not
//! fit the disk (100 M events ≈ 53 GB in the hot tier alone).
//! The hot tier's rows are written as live rows (through the `ts`
//! indexes), as a collector writes current events; `--late-rows` writes
//! them as late rows (their buckets), as it writes events of a day long
//! past. `--shuffled` writes the day's events in a fixed pseudo-random
//! order instead of in time order (issue 22's out-of-order goal).
//!
//! The store is built through `SqliteSink` (the flushers' writer) and kept
//! in `--dir` as `query-bench-<N>-<distribution>.db` (`--tiers hot`) or
//! `query-bench-<N>-<distribution>-columnar.db` (`--tiers columnar`: a copy
//! of the hot store when that one is complete, else generated, then every
//! event but one moved into Parquet files by `Compactor` with default
//! options, timed), so a rerun measures without regenerating. Every query
//! goes through `QueryBackend`, exactly as the report server calls it.
//! `benches/support/day_events.rs` describes the two distributions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use helios_store::query::{
    parse_text, GroupByRequest, HistogramRequest, Query, QueryBackend, QueryError, Selection,
    TimeRange,
};
use helios_store::sqlite::manifest::columnar_dir;
use helios_store::sqlite::{CompactOptions, Compactor, SqliteQueries, SqliteReader, SqliteSink};
use helios_store::Sink;

#[path = "../support/day_events.rs"]
mod day_events;

use day_events::{DayGenerator, Distribution, DAY_MS, DAY_START_MS, POSTED_TS_MEMBER_BYTES};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const BATCH: usize = 4_096;
/// Stop measuring one query after this long even if iterations remain.
const QUERY_BUDGET: Duration = Duration::from_secs(20);
const BYTES_PER_MB: f64 = 1_000_000.0;

/// Which tiers hold the events when the queries run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tiers {
    /// All in SQLite, as the sink wrote them.
    Hot,
    /// All but one compacted into columnar files.
    Columnar,
}

struct Args {
    events: u64,
    dir: PathBuf,
    iterations: usize,
    distribution: Distribution,
    tiers: Tiers,
    /// Stop before the queries (`--skip-queries`).
    skip_queries: bool,
    /// Most field columns per file (`--max-field-columns`; 0 times every
    /// field as one that is not a column, read from the documents).
    max_field_columns: usize,
    /// Compact after every this many events generated (`--compact-every`,
    /// columnar only).
    compact_every: Option<u64>,
    /// Write the hot tier's rows as late rows (`--late-rows`).
    late_rows: bool,
    /// Write the events out of time order (`--shuffled`).
    shuffled: bool,
}

fn args() -> Args {
    let mut parsed = Args {
        events: 1_000_000,
        dir: std::env::temp_dir(),
        iterations: 30,
        distribution: Distribution::Mixed,
        tiers: Tiers::Hot,
        skip_queries: false,
        max_field_columns: helios_store::columnar::MAX_FIELD_COLUMNS,
        compact_every: None,
        late_rows: false,
        shuffled: false,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let switch = match flag.as_str() {
            "--skip-queries" => Some(&mut parsed.skip_queries),
            "--late-rows" => Some(&mut parsed.late_rows),
            "--shuffled" => Some(&mut parsed.shuffled),
            _ => None,
        };
        if let Some(switch) = switch {
            *switch = true;
            continue;
        }
        let value = raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => parsed.events = value.parse().expect("--events N"),
            "--dir" => parsed.dir = PathBuf::from(value),
            "--iterations" => parsed.iterations = value.parse().expect("--iterations N"),
            "--compact-every" => {
                parsed.compact_every = Some(value.parse().expect("--compact-every N"))
            }
            "--max-field-columns" => {
                parsed.max_field_columns = value.parse().expect("--max-field-columns N")
            }
            "--distribution" => {
                parsed.distribution =
                    Distribution::parse(&value).expect("--distribution mixed|reference")
            }
            "--tiers" => {
                parsed.tiers = match value.as_str() {
                    "hot" => Tiers::Hot,
                    "columnar" => Tiers::Columnar,
                    _ => panic!("--tiers hot|columnar"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(parsed.events > 0, "--events must be positive");
    assert!(parsed.iterations > 0, "--iterations must be positive");
    assert!(
        parsed.compact_every.is_none_or(|n| n > 0),
        "--compact-every must be positive"
    );
    assert!(
        parsed.compact_every.is_none() || parsed.tiers == Tiers::Columnar,
        "--compact-every needs --tiers columnar"
    );
    parsed
}

fn store_path(args: &Args, tiers: Tiers) -> PathBuf {
    let late = if args.late_rows { "-late" } else { "" };
    let shuffled = if args.shuffled { "-shuffled" } else { "" };
    let suffix = match tiers {
        Tiers::Hot => "",
        Tiers::Columnar => "-columnar",
    };
    args.dir.join(format!(
        "query-bench-{}-{}{late}{shuffled}{suffix}.db",
        args.events,
        args.distribution.name()
    ))
}

/// `path` with `suffix` appended to its file name (`-wal`, `-shm`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `path` holds exactly `events` events (in either tier).
fn is_complete(path: &Path, events: u64) -> bool {
    path.exists() && SqliteReader::open(path).and_then(|r| r.count()).ok() == Some(events)
}

fn remove_store(path: &Path) {
    for file in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", file.display()),
        }
    }
    let cold = columnar_dir(path);
    if cold.exists() {
        std::fs::remove_dir_all(&cold).expect("remove columnar dir");
    }
}

/// The store for `args`, holding all its events: reused when complete,
/// else copied from the complete hot store (columnar only) or generated.
fn ensure_store(args: &Args) -> PathBuf {
    let path = store_path(args, args.tiers);
    if is_complete(&path, args.events) {
        eprintln!("reusing {} ({} events)", path.display(), args.events);
        return path;
    }
    remove_store(&path);
    let hot = store_path(args, Tiers::Hot);
    if args.tiers == Tiers::Columnar
        && args.compact_every.is_none()
        && is_complete(&hot, args.events)
    {
        copy_store(&hot, &path);
    } else {
        generate(args, &path);
    }
    path
}

/// Copies a closed store (its file and WAL; SQLite rebuilds `-shm`).
fn copy_store(from: &Path, to: &Path) {
    let started = Instant::now();
    std::fs::copy(from, to).expect("copy store");
    let wal = sibling(from, "-wal");
    if wal.exists() {
        std::fs::copy(&wal, sibling(to, "-wal")).expect("copy WAL");
    }
    eprintln!(
        "copied {} to {} in {:.1} s",
        from.display(),
        to.display(),
        started.elapsed().as_secs_f64()
    );
}

/// `--compact-every`: the compactor run while generating, and its totals.
struct Compacting {
    every: u64,
    compactor: Compactor,
    spent: Duration,
    moved: u64,
}

fn generate(args: &Args, path: &Path) {
    eprintln!(
        "generating {} {} events into {}",
        args.events,
        args.distribution.name(),
        path.display()
    );
    let started = Instant::now();
    let late_after_ms = if args.late_rows { 0 } else { i64::MAX };
    let mut sink = SqliteSink::open(path)
        .expect("open store")
        .with_late_after_ms(late_after_ms);
    let mut generator = DayGenerator::new(args.distribution, args.events);
    let order = Order::new(args.events, args.shuffled);
    let mut batch = Vec::with_capacity(BATCH);
    let mut text_bytes = 0u64;
    let mut compacting = args.compact_every.map(|every| Compacting {
        every,
        compactor: compactor(path, args.max_field_columns),
        spent: Duration::ZERO,
        moved: 0,
    });
    for n in 0..args.events {
        batch.push(generator.event(order.nth(n)));
        text_bytes += generator.last_text_len() as u64;
        if batch.len() == BATCH {
            sink.write_batch(&batch).expect("write batch");
            batch.clear();
        }
        if let Some(c) = compacting.as_mut() {
            if (n + 1) % c.every == 0 {
                if !batch.is_empty() {
                    sink.write_batch(&batch).expect("write batch");
                    batch.clear();
                }
                let step = Instant::now();
                let outcome = c
                    .compactor
                    .compact_before(i64::MAX, usize::MAX)
                    .expect("compact");
                c.spent += step.elapsed();
                c.moved += outcome.rows_moved;
                eprintln!(
                    "{} events written, {} compacted ({:.0} events/s compacting)",
                    n + 1,
                    c.moved,
                    c.moved as f64 / c.spent.as_secs_f64()
                );
            }
        }
    }
    if !batch.is_empty() {
        sink.write_batch(&batch).expect("write batch");
    }
    drop(sink);
    if let Some(c) = compacting {
        println!(
            "compaction while generating: {} events in {:.1} s ({:.0} events/s)",
            c.moved,
            c.spent.as_secs_f64(),
            c.moved as f64 / c.spent.as_secs_f64()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let posted_bytes = text_bytes as f64 / args.events as f64 + POSTED_TS_MEMBER_BYTES as f64;
    eprintln!(
        "generated in {secs:.1} s ({:.0} events/s); {posted_bytes:.0} bytes per event as posted \
         (raw NDJSON {:.0} MB per million)",
        args.events as f64 / secs,
        (posted_bytes + 1.0) * 1e6 / BYTES_PER_MB,
    );
}

/// Which of the day's events is written `n`th: in time order, or a fixed
/// pseudo-random permutation (`n × stride mod events`, `stride` coprime to
/// `events`), which scatters consecutive writes over the whole day.
struct Order {
    events: u64,
    stride: u64,
}

impl Order {
    /// A large odd stride: far apart in time for neighbours in the order.
    const SHUFFLE_STRIDE: u64 = 1_000_003;

    fn new(events: u64, shuffled: bool) -> Self {
        if !shuffled {
            return Self { events, stride: 1 };
        }
        let mut stride = Self::SHUFFLE_STRIDE % events;
        while gcd(stride, events) != 1 {
            stride += 1;
        }
        Self { events, stride }
    }

    fn nth(&self, n: u64) -> u64 {
        ((u128::from(n) * u128::from(self.stride)) % u128::from(self.events)) as u64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Moves every event but one into columnar files (a no-op on a store
/// already compacted), timed.
fn compact(path: &Path, max_field_columns: usize) {
    let started = Instant::now();
    let mut compactor = compactor(path, max_field_columns);
    let outcome = compactor
        .compact_before(i64::MAX, usize::MAX)
        .expect("compact");
    drop(compactor);
    let secs = started.elapsed().as_secs_f64();
    if outcome.rows_moved == 0 {
        eprintln!("already compacted");
        return;
    }
    println!(
        "compaction: {} events into {} files in {secs:.1} s ({:.0} events/s)",
        outcome.rows_moved,
        outcome.files_written,
        outcome.rows_moved as f64 / secs
    );
}

/// A compactor with default options but `max_field_columns`.
fn compactor(path: &Path, max_field_columns: usize) -> Compactor {
    let options = CompactOptions {
        write: helios_store::columnar::WriteOptions {
            max_field_columns,
            ..helios_store::columnar::WriteOptions::default()
        },
        ..CompactOptions::default()
    };
    Compactor::open(path, options).expect("open compactor")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Bytes and number of the files under `dir` (partition directories
/// hold the columnar files).
fn tree_len(dir: &Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for entry in entries {
        let path = entry.expect("read columnar dir").path();
        let (bytes, files) = if path.is_dir() {
            tree_len(&path)
        } else {
            (file_len(&path), 1)
        };
        total = (total.0 + bytes, total.1 + files);
    }
    total
}

/// Free pages of the SQLite file, as its header states them (bytes 16..18
/// page size, 36..40 freelist count, big-endian): space the hot tier holds
/// but does not use. Current only once the WAL is checkpointed.
fn sqlite_free_bytes(path: &Path) -> u64 {
    use std::io::Read;
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header));
    if read.is_err() {
        return 0;
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    let free_pages = u32::from_be_bytes([header[36], header[37], header[38], header[39]]);
    page_size * u64::from(free_pages)
}

fn report_disk(path: &Path, events: u64) {
    let db = file_len(path);
    let wal = file_len(&sibling(path, "-wal"));
    let free = sqlite_free_bytes(path);
    let (cold, files) = tree_len(&columnar_dir(path));
    let mb = |bytes: u64| bytes as f64 / BYTES_PER_MB;
    let per_million = |bytes: u64| mb(bytes) * 1e6 / events as f64;
    println!(
        "disk: .db {:.1} MB (of which free pages {:.1} MB{}) + -wal {:.1} MB + .columnar/ {:.1} MB \
         ({files} files) = {:.1} MB: {:.1} MB per million events (hot {:.1}, columnar {:.1}; \
         without the free pages {:.1})",
        mb(db),
        mb(free),
        if wal > 0 { ", header before the WAL" } else { "" },
        mb(wal),
        mb(cold),
        mb(db + wal + cold),
        per_million(db + wal + cold),
        per_million(db + wal),
        per_million(cold),
        per_million(db + wal + cold - free.min(db)),
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

struct Measured {
    p50: Duration,
    p99: Duration,
    result: u64,
    runs: usize,
}

/// One warm-up run, then up to `iterations` timed runs within
/// [`QUERY_BUDGET`]; the first error ends the measurement.
fn measure(
    iterations: usize,
    mut run: impl FnMut() -> Result<u64, QueryError>,
) -> Result<Measured, QueryError> {
    let warm = run()?;
    let mut times = Vec::with_capacity(iterations);
    let budget = Instant::now();
    for _ in 0..iterations {
        let started = Instant::now();
        let result = run()?;
        times.push(started.elapsed());
        assert_eq!(result, warm, "a query's result changed between runs");
        if budget.elapsed() > QUERY_BUDGET {
            break;
        }
    }
    times.sort();
    Ok(Measured {
        p50: percentile(&times, 0.5),
        p99: percentile(&times, 0.99),
        result: warm,
        runs: times.len(),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

type Run<'a> = Box<dyn FnMut() -> Result<u64, QueryError> + 'a>;

/// The queries, each over `range`; the result column is the events
/// returned (pages) or counted (everything else).
fn cases<'a>(
    backend: &'a dyn QueryBackend,
    distribution: Distribution,
    range: TimeRange,
) -> Vec<(String, Run<'a>)> {
    let probes = distribution.probes();
    let field_filter = parse_text(probes.field_filter).expect("field filter");
    let user_text = format!("{}:{}", probes.user_path, probes.one_user);
    let one_user = parse_text(&user_text).expect("user filter");
    let user_path = probes.user_path.parse().expect("user path");
    let selection = |types: Vec<String>, filter| Selection {
        range,
        types,
        filter,
    };
    vec![
        (
            format!("typed page (type={}, 100 newest)", probes.page_type),
            page(backend, selection(vec![probes.page_type.into()], None)),
        ),
        (
            format!("field filter `{}` (100 newest)", probes.field_filter),
            page(backend, selection(Vec::new(), Some(field_filter))),
        ),
        (
            "histogram (1 min buckets)".into(),
            histogram(backend, selection(Vec::new(), None)),
        ),
        (
            "types (counts by type)".into(),
            Box::new(move || Ok(backend.types(range)?.iter().map(|t| t.count).sum())),
        ),
        (
            "group-by `country` top 10".into(),
            group_by(
                backend,
                selection(Vec::new(), None),
                "country".parse().expect("path"),
            ),
        ),
        (
            format!("group-by `{}` top 10", probes.user_path),
            group_by(backend, selection(Vec::new(), None), user_path),
        ),
        (
            // A value per event: past one pass's distinct values over a
            // whole day of a million events and more.
            "group-by `trace` top 10 (reference: a value per event)".into(),
            group_by(
                backend,
                selection(Vec::new(), None),
                "trace".parse().expect("path"),
            ),
        ),
        (
            format!("filter `{user_text}` (100 newest)"),
            page(backend, selection(Vec::new(), Some(one_user.clone()))),
        ),
        (
            format!("filter `{user_text}`: histogram (1 min)"),
            histogram(backend, selection(Vec::new(), Some(one_user))),
        ),
    ]
}

fn page(backend: &dyn QueryBackend, select: Selection) -> Run<'_> {
    let query = Query {
        limit: 100,
        ..Query::new(select)
    };
    Box::new(move || Ok(backend.query(&query)?.events.len() as u64))
}

fn histogram(backend: &dyn QueryBackend, select: Selection) -> Run<'_> {
    let request = HistogramRequest {
        select,
        bucket_ms: MINUTE_MS,
        split_by: None,
    };
    Box::new(move || {
        let histogram = backend.histogram(&request)?;
        Ok(histogram.buckets.iter().map(|b| b.count).sum())
    })
}

fn group_by(
    backend: &dyn QueryBackend,
    select: Selection,
    path: helios_store::query::FieldPath,
) -> Run<'_> {
    let request = GroupByRequest {
        select,
        path,
        top_n: 10,
    };
    Box::new(move || Ok(backend.group_by(&request)?.total))
}

fn main() {
    let args = args();
    let path = ensure_store(&args);
    if args.tiers == Tiers::Columnar {
        compact(&path, args.max_field_columns);
    }
    report_disk(&path, args.events);
    if args.skip_queries {
        return;
    }
    let queries = SqliteQueries::open(&path).expect("open queries");
    let last_hour = TimeRange::new(DAY_START_MS + DAY_MS - HOUR_MS, DAY_START_MS + DAY_MS);
    let whole_day = TimeRange::new(DAY_START_MS, DAY_START_MS + DAY_MS + 1_000);

    println!(
        "\nQuery latency, {} {} events over one day, {} ({})\n",
        args.events,
        args.distribution.name(),
        match args.tiers {
            Tiers::Hot => "hot tier (SQLite)",
            Tiers::Columnar => "columnar tier",
        },
        path.display()
    );
    println!("| query | window | p50 ms | p99 ms | runs | result |\n|---|---|---:|---:|---:|---:|");
    for (window, range) in [("last hour", last_hour), ("whole day", whole_day)] {
        for (name, mut run) in cases(&queries, args.distribution, range) {
            match measure(args.iterations, &mut run) {
                Ok(m) => println!(
                    "| {name} | {window} | {:.2} | {:.2} | {} | {} |",
                    ms(m.p50),
                    ms(m.p99),
                    m.runs,
                    m.result
                ),
                Err(error) => println!("| {name} | {window} | error: {error} | | | |"),
            }
        }
    }
}
