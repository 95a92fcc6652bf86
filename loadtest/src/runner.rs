//! A run: build the request template, split connections over threads (one
//! monoio io_uring runtime each), print progress, join, merge, report.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::body::{from_file, synthesize};
use crate::config::{BodySpec, Config, MAX_BATCH_BYTES};
use crate::conn::{self, ConnPlan, Schedule, ThreadCtx};
use crate::ids_out::{IdFile, IdSink};
use crate::object_id::{run_nonce, IdMinter};
use crate::report::{process_cpu_s, Cpu, Report, RunShape};
use crate::request::{Renderer, RequestTemplate};
use crate::stats::ThreadStats;

/// Time given to the threads to build their runtimes before the clock
/// starts, so open-loop schedules do not begin already late.
pub const STARTUP_GRACE: Duration = Duration::from_millis(20);
/// Progress line period.
pub const PROGRESS_PERIOD: Duration = Duration::from_secs(1);
/// How often the main thread checks for finished workers.
const POLL_PERIOD: Duration = Duration::from_millis(10);

/// Why a run produced no report.
#[derive(Debug)]
pub enum RunError {
    /// The inputs cannot make a run (exit 2, like a bad flag).
    Setup(String),
    /// The run could not complete (exit 1).
    Failed(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Setup(m) | RunError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

/// What each worker thread gets.
struct ThreadInput {
    index: usize,
    plans: Vec<ConnPlan>,
    fixed: Option<Vec<u8>>,
    ids: Option<IdFile>,
    progress: Arc<AtomicU64>,
}

struct ThreadOutput {
    stats: ThreadStats,
    ids_written: u64,
}

/// Runs the load `config` describes and returns the merged report: builds
/// the body and request template, opens `--ids-out`, starts one io_uring
/// runtime thread per `config.threads`, prints progress unless quiet, then
/// joins the threads and merges their stats.
pub fn run(config: Config) -> Result<Report, RunError> {
    let with_ids = config.ids_out.is_some();
    let payload = match &config.body {
        BodySpec::Synthesized {
            events_per_request,
            event_bytes,
        } => synthesize(*events_per_request, *event_bytes, config.ndjson, with_ids),
        BodySpec::File(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| RunError::Setup(format!("--body-file {}: {e}", path.display())))?;
            from_file(&bytes, config.ndjson, with_ids)
                .map_err(|e| RunError::Setup(format!("--body-file {}: {e}", path.display())))?
        }
    };
    let template = Arc::new(RequestTemplate::new(
        &config.target,
        payload,
        config.gzip,
        &config.headers,
    ));
    let fixed = (!with_ids).then(|| template.render_fixed(config.pipeline));
    let request_bytes = match &fixed {
        Some(batch) => batch.len() / config.pipeline,
        None => {
            // Ids do not change the size; gzip makes it vary slightly.
            let mut one = Vec::new();
            let mut minter = IdMinter::new(0, 0, 0);
            Renderer::new(template.clone()).render_batch(1, &mut minter, &mut one);
            one.len()
        }
    };
    if request_bytes.saturating_mul(config.pipeline) > MAX_BATCH_BYTES {
        return Err(RunError::Setup(format!(
            "--pipeline {} × {request_bytes} B per request exceeds {MAX_BATCH_BYTES} B",
            config.pipeline
        )));
    }
    let ids = match &config.ids_out {
        Some(path) => Some(
            IdFile::open(path)
                .map_err(|e| RunError::Setup(format!("--ids-out {}: {e}", path.display())))?,
        ),
        None => None,
    };

    let config = Arc::new(config);
    let start = Instant::now() + STARTUP_GRACE;
    let deadline = config.duration.map(|d| start + d);
    let run_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let nonce = run_nonce();
    let mut plans: Vec<Vec<ConnPlan>> = vec![Vec::new(); config.threads];
    for g in 0..config.connections {
        plans[g % config.threads].push(plan_for(&config, g, start));
    }
    let progress: Vec<Arc<AtomicU64>> = (0..config.threads)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();

    let (user0, sys0) = process_cpu_s();
    let mut handles = Vec::with_capacity(config.threads);
    for (index, plans) in plans.into_iter().enumerate() {
        let input = ThreadInput {
            index,
            plans,
            fixed: fixed.clone(),
            ids: ids.clone(),
            progress: progress[index].clone(),
        };
        let config = config.clone();
        let template = template.clone();
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || thread_main(input, config, template, start, deadline, run_secs, nonce))
            .map_err(|e| RunError::Failed(format!("cannot start a thread: {e}")))?;
        handles.push(handle);
    }
    if !config.quiet {
        print_progress(&handles, &progress, start);
    }
    let mut total = ThreadStats::new();
    let mut ids_written = 0;
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(out)) => {
                total.merge(&out.stats);
                ids_written += out.ids_written;
            }
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a worker thread panicked".to_string()),
        }
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    let (user1, sys1) = process_cpu_s();
    if let Some(e) = failure {
        return Err(RunError::Failed(e));
    }
    let wall = elapsed.as_secs_f64().max(1e-9);
    let cpu = Cpu {
        user_s: user1 - user0,
        sys_s: sys1 - sys0,
        percent_of_one_core: (user1 - user0 + sys1 - sys0) / wall * 100.0,
    };
    let shape = RunShape {
        url: config.url.clone(),
        rate: config.rate,
        threads: config.threads,
        connections: config.connections,
        pipeline: config.pipeline,
        events_per_request: template.events(),
        request_bytes,
    };
    Ok(Report::new(
        shape,
        &total,
        elapsed,
        cpu,
        with_ids.then_some(ids_written),
    ))
}

/// Connection `g`'s share: an exact slice of `--requests`, and in open loop
/// its timetable (rate / connections each, starts staggered by 1/rate).
fn plan_for(config: &Config, g: usize, start: Instant) -> ConnPlan {
    let c = config.connections as u64;
    let quota = config
        .requests
        .map(|n| n / c + u64::from((g as u64) < n % c));
    let schedule = config.rate.map(|rate| Schedule {
        first: monoio::time::Instant::from_std(start + Duration::from_secs_f64(g as f64 / rate)),
        interval: Duration::from_secs_f64(config.connections as f64 / rate),
    });
    ConnPlan { quota, schedule }
}

fn thread_main(
    input: ThreadInput,
    config: Arc<Config>,
    template: Arc<RequestTemplate>,
    start: Instant,
    deadline: Option<Instant>,
    run_secs: u32,
    nonce: u32,
) -> Result<ThreadOutput, String> {
    // Each connection has at most one operation in flight, plus its timer.
    let entries = (input.plans.len() * 2)
        .next_power_of_two()
        .clamp(256, 32_768) as u32;
    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(entries)
        .enable_timer()
        .build()
        .map_err(|e| format!("cannot start an io_uring runtime: {e}"))?;
    let ctx = Rc::new(ThreadCtx {
        request_bytes: input
            .fixed
            .as_ref()
            .map_or(0, |f| f.len() / config.pipeline),
        fixed: input.fixed.map(Rc::new),
        config,
        template,
        deadline: deadline.map(monoio::time::Instant::from_std),
        stats: RefCell::new(ThreadStats::new()),
        progress: input.progress,
        minter: RefCell::new(IdMinter::new(run_secs, nonce, input.index as u8)),
        ids: input.ids.map(|f| RefCell::new(IdSink::new(f))),
    });
    let plans = input.plans;
    let task_ctx = ctx.clone();
    runtime.block_on(async move {
        monoio::time::sleep_until(monoio::time::Instant::from_std(start)).await;
        let tasks: Vec<_> = plans
            .into_iter()
            .map(|plan| monoio::spawn(conn::run(task_ctx.clone(), plan)))
            .collect();
        for t in tasks {
            t.await;
        }
    });
    let ctx = Rc::try_unwrap(ctx).map_err(|_| "connection tasks outlived the run".to_string())?;
    let ids_written = match ctx.ids {
        Some(sink) => sink
            .into_inner()
            .finish()
            .map_err(|e| format!("--ids-out: write failed, the file is incomplete: {e}"))?,
        None => 0,
    };
    Ok(ThreadOutput {
        stats: ctx.stats.into_inner(),
        ids_written,
    })
}

/// Once a second on stderr: responses per second so far, until all workers
/// finish.
fn print_progress<T>(
    handles: &[std::thread::JoinHandle<T>],
    progress: &[Arc<AtomicU64>],
    start: Instant,
) {
    let mut next = start + PROGRESS_PERIOD;
    let mut last = 0u64;
    let mut last_at = start;
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(POLL_PERIOD);
        let now = Instant::now();
        if now < next {
            continue;
        }
        let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
        let rate = (total - last) as f64 / now.saturating_duration_since(last_at).as_secs_f64();
        let _ = writeln!(
            std::io::stderr(),
            "[{:>4.0}s] {rate:>12.0} req/s  ({total} answered)",
            now.saturating_duration_since(start).as_secs_f64()
        );
        last = total;
        last_at = now;
        next += PROGRESS_PERIOD;
    }
}
