//! A run: build the request template, pick the I/O driver, split the
//! connections over the worker threads, collect their per-second
//! intervals (progress lines, `--hdr-log`), join, merge, report.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::body::{from_file, opaque, synthesize};
use crate::clock::now_ns;
use crate::config::{BodySpec, Config, MAX_BATCH_BYTES};
use crate::conn::{Conn, ConnPlan, Ctx, SockAddr};
use crate::driver::{self, Driver, IoDriverKind};
use crate::ids_out::{IdFile, IdSink};
use crate::object_id::{run_nonce, IdMinter};
use crate::pacing::{Schedule, NS_PER_S};
use crate::report::{process_cpu_s, Cpu, Report, RunInfo, RunShape};
use crate::request::{Renderer, RequestTemplate};
use crate::series::{self, Merger, HDR_LOG_MAX_DIVISOR};
use crate::stats::{Interval, ThreadStats};
use crate::worker::{Worker, WorkerMsg, WorkerOutput};

/// Time the threads get to build their drivers and connect before the
/// clock starts, so open-loop schedules do not begin already late.
pub const STARTUP_GRACE: Duration = Duration::from_millis(100);
/// How often the main thread looks for finished workers while waiting for
/// their intervals.
const POLL_PERIOD: Duration = Duration::from_millis(100);

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
    ids: Option<IdFile>,
    msgs: Sender<WorkerMsg>,
    recycled: Receiver<Box<Interval>>,
}

/// What the whole run shares, read-only.
struct RunInputs {
    config: Arc<Config>,
    template: Arc<RequestTemplate>,
    fixed: Option<Arc<Vec<u8>>>,
    request_bytes: usize,
    driver: IoDriverKind,
    start_ns: u64,
    deadline_ns: Option<u64>,
    run_secs: u32,
    nonce: u32,
}

/// Runs the load `config` describes and returns the merged report: builds
/// the body and request template, opens `--ids-out` and `--hdr-log`, picks
/// the I/O driver (saying so on stderr when io_uring is refused), starts one
/// worker thread per `config.threads`, prints a progress line per second
/// unless quiet, then joins the threads and merges their stats.
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
        BodySpec::Opaque { path, events } => {
            let bytes = std::fs::read(path)
                .map_err(|e| RunError::Setup(format!("--body-file {}: {e}", path.display())))?;
            opaque(bytes, *events)
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
    let hdr_file = match &config.hdr_log {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| {
            RunError::Setup(format!("--hdr-log {}: {e}", path.display()))
        })?)),
        None => None,
    };
    let (driver, fallback) = driver::resolve(config.io_driver).map_err(RunError::Failed)?;
    if let Some(why) = &fallback {
        eprintln!("helios-loadgen: io_uring refused ({why}); running on epoll");
    }

    let config = Arc::new(config);
    let start_wall = SystemTime::now() + STARTUP_GRACE;
    let start_ns = now_ns() + STARTUP_GRACE.as_nanos() as u64;
    let inputs = Arc::new(RunInputs {
        template: template.clone(),
        fixed: fixed.map(Arc::new),
        request_bytes,
        driver,
        start_ns,
        deadline_ns: config
            .duration
            .map(|d| start_ns.saturating_add(d.as_nanos() as u64)),
        run_secs: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32),
        nonce: run_nonce(),
        config: config.clone(),
    });
    let mut plans: Vec<Vec<ConnPlan>> = vec![Vec::new(); config.threads];
    for g in 0..config.connections {
        plans[g % config.threads].push(plan_for(&config, g, start_ns));
    }

    let (msg_tx, msg_rx) = mpsc::channel();
    let mut recycle = Vec::with_capacity(config.threads);
    let (user0, sys0) = process_cpu_s();
    let mut handles = Vec::with_capacity(config.threads);
    for (index, plans) in plans.into_iter().enumerate() {
        let (recycle_tx, recycle_rx) = mpsc::channel();
        recycle.push(recycle_tx);
        let input = ThreadInput {
            index,
            plans,
            ids: ids.clone(),
            msgs: msg_tx.clone(),
            recycled: recycle_rx,
        };
        let inputs = inputs.clone();
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{index}"))
            .spawn(move || thread_main(input, &inputs))
            .map_err(|e| RunError::Failed(format!("cannot start a thread: {e}")))?;
        handles.push(handle);
    }
    drop(msg_tx);

    let mut merger = Merger::new(config.threads);
    let collected = collect(
        &msg_rx,
        &handles,
        &recycle,
        &mut merger,
        hdr_file,
        start_wall,
        config.quiet,
    );
    let mut total = ThreadStats::new();
    let mut ids_written = 0;
    let mut failure = collected.err();
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
    let elapsed_ns = now_ns().saturating_sub(start_ns);
    let (user1, sys1) = process_cpu_s();
    if let Some(e) = failure {
        return Err(RunError::Failed(e));
    }
    let wall = (elapsed_ns as f64 / 1e9).max(1e-9);
    let cpu = Cpu {
        user_s: user1 - user0,
        sys_s: sys1 - sys0,
        percent_of_one_core: (user1 - user0 + sys1 - sys0) / wall * 100.0,
    };
    let shape = RunShape {
        url: config.url.clone(),
        rate: config.rate,
        arrivals: config.arrivals,
        duration_s: config.duration.map(|d| d.as_secs_f64()),
        threads: config.threads,
        connections: config.connections,
        pipeline: config.pipeline,
        events_per_request: template.events(),
        request_bytes,
    };
    let info = RunInfo {
        io_driver: driver,
        io_driver_fallback: fallback,
        hdr_log: config.hdr_log.as_ref().map(|p| p.display().to_string()),
    };
    Ok(Report::new(
        shape,
        info,
        &total,
        &merger,
        Duration::from_nanos(elapsed_ns),
        cpu,
        with_ids.then_some(ids_written),
    ))
}

/// Connection `g`'s share: an exact slice of `--requests`, and in open loop
/// its timetable (rate / connections each).
fn plan_for(config: &Config, g: usize, start_ns: u64) -> ConnPlan {
    let c = config.connections as u64;
    let quota = config
        .requests
        .map(|n| n / c + u64::from((g as u64) < n % c));
    let schedule = config.rate.map(|rate| {
        Schedule::new(
            config.arrivals,
            start_ns,
            g,
            config.connections,
            rate,
            config.seed,
        )
    });
    ConnPlan { quota, schedule }
}

fn thread_main(input: ThreadInput, inputs: &RunInputs) -> Result<WorkerOutput, String> {
    let msgs = input.msgs.clone();
    let index = input.index;
    let out = run_worker(input, inputs);
    // Always, so the main thread never waits for a worker that failed.
    let _ = msgs.send(WorkerMsg::Finished { thread: index });
    out
}

fn run_worker(input: ThreadInput, inputs: &RunInputs) -> Result<WorkerOutput, String> {
    let config = &inputs.config;
    let conns_here = input.plans.len();
    let driver = Driver::new(inputs.driver, conns_here)
        .map_err(|e| format!("cannot start the {} driver: {e}", inputs.driver))?;
    let ctx = Ctx {
        config: config.clone(),
        template: inputs.template.clone(),
        fixed: inputs.fixed.clone(),
        request_bytes: inputs.request_bytes,
        addr: Box::new(SockAddr::new(config.target.addr)),
        start_ns: inputs.start_ns,
        deadline_ns: inputs.deadline_ns,
        timeout_ns: config.timeout.as_nanos() as u64,
        driver,
        stats: ThreadStats::new(),
        interval: Interval::new(0),
        minter: IdMinter::new(inputs.run_secs, inputs.nonce, input.index as u8),
        ids: input.ids.map(IdSink::new),
        just_sent: Vec::with_capacity(conns_here),
        new_timers: Vec::with_capacity(conns_here),
    };
    let conns: Vec<Conn> = input
        .plans
        .into_iter()
        .enumerate()
        .map(|(token, plan)| Conn::new(token as u32, plan, &inputs.template, config.pipeline))
        .collect();
    // This thread's paced sends are rate × its share of the connections.
    let mean_gap_ns = config
        .rate
        .map(|rate| NS_PER_S as f64 / (rate * conns_here as f64 / config.connections as f64));
    Worker::new(
        input.index,
        ctx,
        conns,
        mean_gap_ns,
        input.msgs,
        input.recycled,
    )
    .run()
}

/// Receives the workers' intervals until every worker has finished: merges
/// them, prints a progress line per second, writes the `--hdr-log`, and
/// hands cleared intervals back for reuse.
fn collect(
    rx: &Receiver<WorkerMsg>,
    handles: &[std::thread::JoinHandle<Result<WorkerOutput, String>>],
    recycle: &[Sender<Box<Interval>>],
    merger: &mut Merger,
    hdr_file: Option<BufWriter<File>>,
    start_wall: SystemTime,
    quiet: bool,
) -> Result<(), String> {
    let mut hdr_file = hdr_file;
    let mut serializer = V2DeflateSerializer::new();
    let mut log = match &mut hdr_file {
        Some(file) => Some(
            IntervalLogWriterBuilder::new()
                .add_comment("helios-loadgen: latency in microseconds; untagged = corrected (from the intended send time), Tag=uncorrected = from the actual send")
                .with_start_time(start_wall)
                .with_base_time(start_wall)
                .with_max_value_divisor(HDR_LOG_MAX_DIVISOR)
                .begin_log_with(file, &mut serializer)
                .map_err(|e| format!("--hdr-log: {e}"))?,
        ),
        None => None,
    };
    let mut log_error = None;
    let mut answered = 0u64;
    let mut next_recycle = 0usize;
    let mut give_back = |iv: Box<Interval>| {
        // Round robin: every worker produces one interval a second.
        let _ = recycle[next_recycle % recycle.len()].send(iv);
        next_recycle += 1;
    };
    loop {
        match rx.recv_timeout(POLL_PERIOD) {
            Ok(WorkerMsg::Interval { thread, interval }) => {
                if let Some(spare) = merger.add(thread, interval) {
                    give_back(spare);
                }
            }
            Ok(WorkerMsg::Finished { thread }) => merger.finish(thread),
            Err(RecvTimeoutError::Timeout) => {
                if handles.iter().all(|h| h.is_finished()) && rx.try_recv().is_err() {
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while let Some(iv) = merger.next_complete() {
            if let (Some(log), None) = (&mut log, &log_error) {
                if let Err(e) = series::write_interval(log, &iv) {
                    log_error = Some(format!("--hdr-log: write failed: {e}"));
                }
            }
            let iv = merger.absorb(iv);
            give_back(iv);
            let p = merger.series.last().copied().expect("just absorbed");
            answered += p.responses;
            if !quiet {
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>4}s] {:>10.0} req/s  p99 {:>8}  ({answered} answered)",
                    p.t_s + 1,
                    p.requests_per_s,
                    crate::report::fmt_us(p.p99_us as f64)
                );
            }
        }
        // Every complete interval was taken just above: once all workers
        // finished, nothing is pending.
        if merger.all_finished() {
            break;
        }
    }
    drop(log);
    if let Some(mut file) = hdr_file {
        if let Err(e) = file.flush() {
            log_error.get_or_insert(format!("--hdr-log: write failed: {e}"));
        }
    }
    match log_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
