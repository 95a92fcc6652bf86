//! Query latency of the SQLite query back end (issue 6): a typed time-range
//! page, a field filter, a histogram and a group-by, over a generated store
//! of N events spread over one day; p50/p99 per query, one table.
//!
//! ```text
//! cargo run --release -p helios-benches --example query_latency -- \
//!     --events 1000000 [--dir /path/to/keep/stores] [--iterations 30]
//! ```
//!
//! The store is built through `SqliteSink` (the flushers' writer) and kept
//! in `--dir` as `query-bench-<N>.db`, so a rerun measures without
//! regenerating. Every query goes through `QueryBackend`, exactly as the
//! report server calls it (one statement per request, pooled connection).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use helios_store::query::{
    parse_text, GroupByRequest, HistogramRequest, Query, QueryBackend, Selection, TimeRange,
};
use helios_store::sqlite::SqliteQueries;
use helios_store::sqlite::{SqliteReader, SqliteSink};
use helios_store::{Envelope, EventDoc, ObjectId, Sink, TsRaw};

/// 2026-11-30T00:00:00.000Z: the generated day starts here.
const DAY_START_MS: i64 = 1_796_000_000_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const BATCH: usize = 4_096;
/// Stop measuring one query after this long even if iterations remain.
const QUERY_BUDGET: Duration = Duration::from_secs(20);

const TYPES: [&str; 8] = [
    "page_view",
    "page_view",
    "page_view",
    "click",
    "click",
    "signup",
    "login",
    "payment",
];
const PLANS: [&str; 3] = ["free", "pro", "team"];
const COUNTRIES: [&str; 12] = [
    "US", "US", "US", "FR", "DE", "GB", "JP", "BR", "IN", "CA", "ES", "IT",
];

struct Args {
    events: u64,
    dir: PathBuf,
    iterations: usize,
}

fn args() -> Args {
    let mut parsed = Args {
        events: 1_000_000,
        dir: std::env::temp_dir(),
        iterations: 30,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let value = raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => parsed.events = value.parse().expect("--events N"),
            "--dir" => parsed.dir = PathBuf::from(value),
            "--iterations" => parsed.iterations = value.parse().expect("--iterations N"),
            other => panic!("unknown flag {other}"),
        }
    }
    parsed
}

/// A small deterministic generator (xorshift64*), so stores are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn event(n: u64, events: u64, rng: &mut Rng) -> EventDoc {
    // Time order with jitter, so ids and ts correlate like real ingest.
    let ts_ms = DAY_START_MS + (n as i64 * DAY_MS) / events as i64 + rng.below(1_000) as i64;
    let event_type = rng.pick(&TYPES);
    let text = format!(
        r#"{{"type":"{event_type}","plan":"{plan}","country":"{country}","latency_ms":{latency},"host":"web-{host}","user":{{"id":{user},"name":"user-{user}"}},"tags":["{tag}","t{t2}"],"message":"request {n} served"}}"#,
        plan = rng.pick(&PLANS),
        country = rng.pick(&COUNTRIES),
        latency = rng.below(2_000),
        host = rng.below(50),
        user = rng.below(100_000),
        tag = rng.pick(&["a", "b", "c"]),
        t2 = rng.below(10),
    );
    let id = ObjectId::from_parts(
        (ts_ms / 1000) as u32,
        [1, 2, 3, 4, 5],
        (n & 0x00FF_FFFF) as u32,
    )
    .expect("counter masked to 24 bits");
    let envelope = Envelope {
        id,
        ts_ms,
        recv_ms: ts_ms + 3,
        app: Some("bench"),
        ts_raw: TsRaw::None,
    };
    EventDoc::from_event_json(&text, &envelope).expect("generated event is valid")
}

/// Builds the store unless a complete one is already there.
fn ensure_store(args: &Args) -> PathBuf {
    let path = args.dir.join(format!("query-bench-{}.db", args.events));
    if path.exists() {
        if let Ok(count) = SqliteReader::open(&path).and_then(|r| r.count()) {
            if count == args.events {
                eprintln!("reusing {} ({count} events)", path.display());
                return path;
            }
        }
        std::fs::remove_file(&path).expect("remove incomplete store");
    }
    eprintln!("generating {} events into {}", args.events, path.display());
    let started = Instant::now();
    let mut sink = SqliteSink::open(&path).expect("open store");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..args.events {
        batch.push(event(n, args.events, &mut rng));
        if batch.len() == BATCH {
            sink.write_batch(&batch).expect("write batch");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        sink.write_batch(&batch).expect("write batch");
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "generated in {secs:.1} s ({:.0} events/s)",
        args.events as f64 / secs
    );
    path
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn measure(iterations: usize, mut run: impl FnMut() -> u64) -> (Duration, Duration, u64, usize) {
    let warm = run();
    let mut times = Vec::with_capacity(iterations);
    let budget = Instant::now();
    for _ in 0..iterations {
        let started = Instant::now();
        let rows = run();
        times.push(started.elapsed());
        assert_eq!(rows, warm, "a query's result changed between runs");
        if budget.elapsed() > QUERY_BUDGET {
            break;
        }
    }
    times.sort();
    (
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        warm,
        times.len(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn main() {
    let args = args();
    let path = ensure_store(&args);
    let queries = SqliteQueries::open(&path).expect("open queries");
    let last_hour = TimeRange::new(DAY_START_MS + DAY_MS - HOUR_MS, DAY_START_MS + DAY_MS);
    let whole_day = TimeRange::new(DAY_START_MS, DAY_START_MS + DAY_MS + 1_000);
    let field_filter = parse_text("plan:pro latency_ms>1500 country:US").expect("filter");

    type Run<'a> = Box<dyn FnMut() -> u64 + 'a>;
    let page = |range: TimeRange, types: Vec<String>, filter| {
        let query = Query {
            limit: 100,
            ..Query::new(Selection {
                range,
                types,
                filter,
            })
        };
        let queries = &queries;
        Box::new(move || queries.query(&query).expect("query").events.len() as u64) as Run<'_>
    };
    let histogram = |range: TimeRange, bucket_ms| {
        let request = HistogramRequest {
            select: Selection::range(range),
            bucket_ms,
            split_by: None,
        };
        let queries = &queries;
        Box::new(move || {
            let h = queries.histogram(&request).expect("histogram");
            h.buckets.iter().map(|b| b.count).sum()
        }) as Run<'_>
    };
    let group_by = |range: TimeRange| {
        let request = GroupByRequest {
            select: Selection::range(range),
            path: "country".parse().expect("path"),
            top_n: 10,
        };
        let queries = &queries;
        Box::new(move || queries.group_by(&request).expect("group by").total) as Run<'_>
    };

    let cases: Vec<(&str, &str, Run<'_>)> = vec![
        (
            "typed time-range page (type=signup, 100 newest)",
            "last hour",
            page(last_hour, vec!["signup".into()], None),
        ),
        (
            "typed time-range page (type=signup, 100 newest)",
            "whole day",
            page(whole_day, vec!["signup".into()], None),
        ),
        (
            "field filter `plan:pro latency_ms>1500 country:US` (100 newest)",
            "last hour",
            page(last_hour, Vec::new(), Some(field_filter.clone())),
        ),
        (
            "field filter `plan:pro latency_ms>1500 country:US` (100 newest)",
            "whole day",
            page(whole_day, Vec::new(), Some(field_filter.clone())),
        ),
        (
            "histogram (1 min buckets)",
            "last hour",
            histogram(last_hour, 60_000),
        ),
        (
            "histogram (5 min buckets)",
            "whole day",
            histogram(whole_day, 300_000),
        ),
        ("group-by country top 10", "last hour", group_by(last_hour)),
        ("group-by country top 10", "whole day", group_by(whole_day)),
    ];

    println!(
        "\nSQLite query latency, {} events over one day ({})\n",
        args.events,
        path.display()
    );
    println!("| query | window | p50 ms | p99 ms | runs | result |\n|---|---|---:|---:|---:|---:|");
    for (name, window, mut run) in cases {
        let (p50, p99, rows, runs) = measure(args.iterations, &mut run);
        println!(
            "| {name} | {window} | {:.2} | {:.2} | {runs} | {rows} |",
            ms(p50),
            ms(p99)
        );
    }
}
