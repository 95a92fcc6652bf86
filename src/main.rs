//! `helios`: the whole local stack in one process. The collector (with the
//! embedded SQLite store in `./helios-data`) runs on its own threads, the
//! report server and UI on a tokio runtime; both print their URLs, and
//! Ctrl-C (or SIGTERM) stops both cleanly.
//!
//! Run it with `cargo run --release`. For production, run
//! `helios-collector` and `helios-report` separately (README).
//!
//! `helios export` writes every event of an embedded store as NDJSON to
//! stdout, whichever tier holds it (the SQLite hot tier or the columnar
//! files), oldest first: the one way to read everything back.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use helios_ingest::config::{Cli as CollectorCli, Config as CollectorConfig};
use helios_ingest::shutdown::{block_termination_signals, spawn_signal_thread, Shutdown};
use helios_report::{Backend, ReportConfig, ReportServer};

/// The SQLite file the collector creates in its data directory.
const STORE_FILE: &str = "events.db";
/// How long to wait for the collector to listen and create the store before
/// starting the report server anyway (it shows an empty state until the
/// file exists).
const COLLECTOR_WAIT: Duration = Duration::from_secs(30);
/// Poll period while waiting for the collector.
const COLLECTOR_POLL: Duration = Duration::from_millis(20);

/// `helios`: collector + embedded store + report UI, one command.
#[derive(Debug, Parser)]
#[command(name = "helios", version, about, long_about = None)]
struct Cli {
    /// What to run instead of the stack.
    #[command(subcommand)]
    command: Option<Command>,
    /// Journals, the SQLite store and dead letters.
    #[arg(long, default_value = "./helios-data")]
    data_dir: PathBuf,
    /// Collector address (events are POSTed to /v1/events here).
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Report server and UI address.
    #[arg(long, default_value = helios_report::config::DEFAULT_LISTEN)]
    report_listen: SocketAddr,
    /// Collector cores [default: all available].
    #[arg(long)]
    cores: Option<usize>,
}

/// `helios` subcommands.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write every stored event of the embedded store as NDJSON to stdout,
    /// oldest first (both tiers; the store may be in use by a running
    /// collector).
    Export {
        /// The store: `sqlite://PATH` [default: the `--data-dir` store].
        #[arg(long)]
        store: Option<String>,
    },
}

fn main() -> ExitCode {
    // Before any thread exists, so every thread (the collector's cores, the
    // tokio workers) inherits the mask and only the signal thread sees
    // SIGINT/SIGTERM.
    if let Err(e) = block_termination_signals() {
        eprintln!("helios: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Some(Command::Export { store }) = &cli.command {
        let store = store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", store_path(&cli.data_dir).display()));
        return match export(&store) {
            Ok(events) => {
                eprintln!("helios: exported {events} events");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("helios export: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let (collector_cfg, report_cfg) = match configs(&cli) {
        Ok(cfgs) => cfgs,
        Err(e) => {
            eprintln!("helios: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    // The report server keeps columnar files open; the collector's
    // connections want descriptors too.
    if let Err(error) = helios_report::limits::raise_open_file_limit() {
        tracing::warn!(%error, "cannot raise the open-file limit");
    }
    match run(collector_cfg, report_cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("helios: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Both servers' configurations, built through their own command lines so
/// every default and check (and every `HELIOS_*` variable) stays theirs.
fn configs(cli: &Cli) -> anyhow::Result<(CollectorConfig, ReportConfig)> {
    let mut args: Vec<String> = vec![
        "helios-collector".into(),
        "--data-dir".into(),
        cli.data_dir.display().to_string(),
        "--listen".into(),
        cli.listen.to_string(),
    ];
    if let Some(cores) = cli.cores {
        args.extend(["--cores".into(), cores.to_string()]);
    }
    let collector = CollectorConfig::resolve(CollectorCli::try_parse_from(args)?)?;
    let store = format!("sqlite://{}", store_path(&collector.data_dir).display());
    let report = ReportConfig::resolve(helios_report::Cli::try_parse_from([
        "helios-report",
        "--listen",
        &cli.report_listen.to_string(),
        "--store",
        &store,
    ])?)?;
    Ok((collector, report))
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

fn run(collector_cfg: CollectorConfig, report_cfg: ReportConfig) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    spawn_signal_thread(Arc::clone(&shutdown)).context("starting the signal thread")?;
    let store = store_path(&collector_cfg.data_dir);
    let collector_addr = collector_cfg.listen;
    let collector = spawn_collector(collector_cfg, Arc::clone(&shutdown))?;
    wait_for_collector(collector_addr, &store, &collector);

    let report = serve_report(&report_cfg, collector_addr, Arc::clone(&shutdown));
    if report.is_err() {
        // The collector must not outlive a failed report server.
        shutdown.trigger();
    }
    let collected = collector
        .join()
        .map_err(|_| anyhow::anyhow!("the collector thread panicked"))?;
    report?;
    collected.context("collector")?;
    println!("helios: stopped");
    Ok(())
}

/// Runs the collector on its own thread; when it returns (shutdown, or a
/// startup failure) it triggers the shutdown so the report server stops too.
fn spawn_collector(
    cfg: CollectorConfig,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    std::thread::Builder::new()
        .name("helios-collector".into())
        .spawn(move || {
            let result = helios_ingest::collector::run(cfg, Arc::clone(&shutdown));
            shutdown.trigger();
            result
        })
        .context("spawning the collector thread")
}

/// Waits (bounded) until the collector accepts connections and has created
/// the store file, so the URLs printed next work at once; gives up early if
/// the collector already quit.
fn wait_for_collector(addr: SocketAddr, store: &Path, collector: &JoinHandle<anyhow::Result<()>>) {
    let deadline = Instant::now() + COLLECTOR_WAIT;
    let ready = || store.exists() && TcpStream::connect(addr).is_ok();
    while !collector.is_finished() && Instant::now() < deadline && !ready() {
        std::thread::sleep(COLLECTOR_POLL);
    }
}

/// Serves the report server until the shutdown flag is set.
fn serve_report(
    cfg: &ReportConfig,
    collector_addr: SocketAddr,
    shutdown: Arc<Shutdown>,
) -> anyhow::Result<()> {
    let backend = Backend::from_config(cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("helios-report")
        .build()
        .context("starting the report server's runtime")?;
    runtime.block_on(async {
        let server = ReportServer::bind(cfg, backend).await?;
        let report_addr = server.local_addr()?;
        println!("helios: collector  http://{collector_addr}/v1/events  (POST events here)");
        println!("helios: report UI  http://{report_addr}/");
        println!("helios: Ctrl-C stops both");
        // `Shutdown::wait` is runtime-agnostic: the signal thread wakes it.
        server.serve(async move { shutdown.wait().await }).await?;
        Ok(())
    })
}

/// Writes every event of the SQLite store `uri` to stdout as NDJSON, in
/// `(ts, _id)` order, page by page (each page one short read over both
/// tiers); returns how many.
fn export(uri: &str) -> anyhow::Result<u64> {
    use helios_store::query::{
        Query, QueryBackend, Selection, SortOrder, TimeRange, MAX_PAGE_LIMIT,
    };
    use std::io::Write;

    let helios_store::StoreUri::Sqlite(path) = helios_store::StoreUri::parse(uri)? else {
        anyhow::bail!("export reads the embedded store: give --store sqlite://PATH");
    };
    let backend = helios_store::sqlite::SqliteQueries::open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.sort = SortOrder::Asc;
    query.limit = MAX_PAGE_LIMIT;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut events = 0_u64;
    loop {
        let page = backend.query(&query).context("reading events")?;
        for hit in &page.events {
            writeln!(out, "{}", hit.document()).context("writing to stdout")?;
            events += 1;
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(events)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a file, a pipe or journald gets
        // plain text (issue 23).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
