//! Starting and stopping a whole collector: check what the host allows
//! (the I/O driver, the journal filesystem), recover every journal
//! directory, open the store, start one thread per core and the flusher,
//! and on shutdown drain in order (cores first, then the flusher).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use helios_journal::runtime::probe_io_uring;
use helios_journal::{DiskCheck, FaultPlan, IoDriver, Journal, JournalConfig, JournalError};

use crate::auth::ApiKeys;
use crate::config::{Config, IoDriverArg};
use crate::deadletter::DeadLetters;

/// Dead letters live in `DATA/dead-letter/`.
pub const DEAD_LETTER_DIR: &str = "dead-letter";
use crate::events::{load_or_create_node_id, IdMinter};
use crate::flusher::{self, Feed, FlusherControl};
use crate::metrics::{IoSetup, Metrics};
use crate::server::{self, Core, JournalReopen};
use crate::shutdown::Shutdown;
use crate::syslog;

/// Entries of each core's io_uring submission queue (on epoll: the size
/// of a core's event buffer).
const IO_URING_ENTRIES: u32 = 1024;

/// Runs a collector until `shutdown` fires, then drains and returns.
pub fn run(cfg: Config, shutdown: Arc<Shutdown>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let journal_root = cfg.journal_root();
    std::fs::create_dir_all(&journal_root)
        .with_context(|| format!("creating {}", journal_root.display()))?;
    // What the host refuses is found before anything is opened or started.
    let disk = check_journal_disk(&journal_root, &cfg)?;
    let driver = choose_io_driver(cfg.io_driver, cfg.cores)?;
    let sink = cfg.open_sink().with_context(|| "opening the store")?;
    tracing::info!(store = %sink.describe(), "store open");
    let journal_dirs = journal_dirs(&journal_root, cfg.cores)?;
    let metrics = Metrics::new(cfg.cores);
    metrics.set_io(IoSetup {
        driver,
        journal_buffered_io: disk.buffered,
        journal_volatile: disk.volatile,
    });
    let api_keys = match &cfg.api_keys {
        Some(path) => Some(Arc::new(ApiKeys::load(path).map_err(anyhow::Error::msg)?)),
        None => None,
    };

    let (started_tx, started_rx) = mpsc::channel::<anyhow::Result<Vec<Feed>>>();
    // Journals reopened after a failure reach the flusher through this.
    let (reopened_tx, reopened_rx) = mpsc::channel::<Feed>();
    let mut cores = Vec::new();
    for core in 0..cfg.cores {
        // Core k owns journal k and drains journals left by a run with more
        // cores (those with index ≡ k mod cores), without writing to them.
        let extra: Vec<PathBuf> = journal_dirs
            .iter()
            .filter(|(i, _)| *i >= cfg.cores && *i % cfg.cores == core)
            .map(|(_, p)| p.clone())
            .collect();
        let own = journal_root.join(core.to_string());
        let cfg = cfg.clone();
        let shutdown = Arc::clone(&shutdown);
        let started = started_tx.clone();
        let reopened = reopened_tx.clone();
        let metrics = Arc::clone(&metrics);
        let api_keys = api_keys.clone();
        let handle = std::thread::Builder::new()
            .name(format!("helios-core-{core}"))
            .spawn(move || {
                run_core(CoreStart {
                    core,
                    driver,
                    cfg,
                    own,
                    extra,
                    shutdown,
                    started,
                    reopened,
                    metrics,
                    api_keys,
                })
            })
            .context("spawning a core thread")?;
        cores.push(handle);
    }
    drop(started_tx);
    drop(reopened_tx);

    let mut feeds = Vec::new();
    let mut startup_error = None;
    for _ in 0..cfg.cores {
        match started_rx.recv() {
            Ok(Ok(mut f)) => feeds.append(&mut f),
            Ok(Err(e)) => startup_error = Some(e),
            Err(_) => startup_error = Some(anyhow::anyhow!("a core thread died during startup")),
        }
    }
    let control = FlusherControl::new();
    let flusher = if startup_error.is_none() {
        let dead = DeadLetters::new(
            &cfg.data_dir.join(DEAD_LETTER_DIR),
            cfg.dead_letter_max_bytes,
        );
        let control = Arc::clone(&control);
        let batch = cfg.flush_batch_events;
        let flusher_priority = cfg.flusher_priority;
        let flusher_metrics = Arc::clone(&metrics.flusher);
        let reopen_cfg = cfg.clone();
        let reopen_sink: flusher::SinkOpener = Box::new(move || reopen_cfg.open_sink());
        let retention = cfg.retention_days.map(|days| flusher::Retention {
            keep_ms: (days * 86_400_000.0) as i64,
            every: Duration::from_millis(cfg.retention_check_ms),
        });
        Some(
            std::thread::Builder::new()
                .name("helios-flusher".into())
                .spawn(move || {
                    flusher::lower_priority(flusher_priority);
                    flusher::run(
                        feeds,
                        sink,
                        flusher::Setup {
                            reopened: reopened_rx,
                            dead,
                            batch_events: batch,
                            control,
                            metrics: flusher_metrics,
                            retention,
                            priority: flusher_priority,
                            reopen_sink,
                        },
                    )
                })
                .context("spawning the flusher")?,
        )
    } else {
        shutdown.trigger();
        None
    };
    let compactor = match (startup_error.is_none(), cfg.sqlite_path()) {
        (true, Some(db_path)) => Some(
            crate::compaction::spawn(
                crate::compaction::Setup {
                    db_path,
                    options: cfg.compact_options(),
                    every: Duration::from_millis(cfg.store_compact_every_ms),
                    retention_keep_ms: cfg.retention_days.map(|days| (days * 86_400_000.0) as i64),
                    priority: cfg.flusher_priority,
                    metrics: Arc::clone(&metrics.compaction),
                },
                Arc::clone(&shutdown),
            )
            .context("spawning the compactor")?,
        ),
        _ => None,
    };
    if startup_error.is_none() {
        tracing::info!(listen = %cfg.listen, cores = cfg.cores, data_dir = %cfg.data_dir.display(), "helios-collector listening");
    }
    for c in cores {
        if c.join().is_err() {
            tracing::error!("a core thread panicked");
        }
    }
    if let Some(e) = startup_error {
        return Err(e);
    }
    control.drain_until(Instant::now() + Duration::from_millis(cfg.shutdown_deadline_ms));
    if let Some(f) = flusher {
        let stats = f
            .join()
            .map_err(|_| anyhow::anyhow!("flusher thread panicked"))?;
        tracing::info!(?stats, "collector stopped");
    }
    if let Some(compactor) = compactor {
        if compactor.join().is_err() {
            tracing::error!("the compactor thread panicked");
        }
    }
    Ok(())
}

/// Decides the cores' I/O driver and logs the one line that says which
/// and why. `auto` probes io_uring the way the cores will use it (one ring
/// per core, a no-op through `io_uring_enter`, the opcodes in use) and runs
/// on epoll where that is refused; `io-uring` refuses to start instead.
pub fn choose_io_driver(arg: IoDriverArg, cores: usize) -> anyhow::Result<IoDriver> {
    match arg {
        IoDriverArg::Epoll => {
            tracing::info!(driver = "epoll", "io driver: epoll (--io-driver epoll)");
            Ok(IoDriver::Epoll)
        }
        IoDriverArg::IoUring => match probe_io_uring(IO_URING_ENTRIES, cores) {
            Ok(()) => {
                tracing::info!(
                    driver = "io_uring",
                    "io driver: io_uring (--io-driver io-uring)"
                );
                Ok(IoDriver::IoUring)
            }
            Err(refused) => anyhow::bail!(
                "--io-driver io-uring, but this host refuses io_uring ({refused}); \
                 use --io-driver auto (or epoll) to run on epoll"
            ),
        },
        IoDriverArg::Auto => match probe_io_uring(IO_URING_ENTRIES, cores) {
            Ok(()) => {
                tracing::info!(driver = "io_uring", "io driver: io_uring");
                Ok(IoDriver::IoUring)
            }
            Err(refused) => {
                tracing::warn!(
                    driver = "epoll",
                    "io driver: epoll (io_uring refused: {refused})"
                );
                Ok(IoDriver::Epoll)
            }
        },
    }
}

/// Checks the journal directory's filesystem against `--journal-buffered-io`
/// and `--allow-volatile-journal`: a refusal is one line naming the
/// directory, the filesystem and the flag; an allowed weakening is a
/// warning (and a metric).
fn check_journal_disk(journal_root: &Path, cfg: &Config) -> anyhow::Result<DiskCheck> {
    let disk = helios_journal::disk::check_dir(
        journal_root,
        cfg.journal_buffered_io,
        cfg.allow_volatile_journal,
    )
    .map_err(explain_journal_error)?;
    if disk.volatile {
        tracing::warn!(
            journal = %journal_root.display(),
            filesystem = %disk.filesystem,
            "journal on {} (--allow-volatile-journal): acks survive a collector crash, not a power loss or reboot",
            disk.filesystem
        );
    }
    if disk.buffered {
        tracing::warn!(
            journal = %journal_root.display(),
            filesystem = %disk.filesystem,
            "journal commits are buffered writes + fdatasync (--journal-buffered-io), not O_DIRECT"
        );
    }
    Ok(disk)
}

/// A journal refusal the operator can act on, said with the flag that
/// changes it; other journal errors unchanged.
fn explain_journal_error(e: JournalError) -> anyhow::Error {
    match e {
        JournalError::Volatile { dir, filesystem } => anyhow::anyhow!(
            "journal directory {} is on {filesystem}, a memory filesystem: acks would not survive \
             a power loss or reboot; put --data-dir on a disk, or pass --allow-volatile-journal \
             to accept acks from memory",
            dir.display()
        ),
        JournalError::DirectIoRefused {
            dir,
            filesystem,
            stage,
            ..
        } => anyhow::anyhow!(
            "journal directory {} is on {filesystem}, which refuses O_DIRECT (EINVAL at {stage}); \
             pass --journal-buffered-io to commit with buffered writes + fdatasync before each ack",
            dir.display()
        ),
        other => other.into(),
    }
}

/// Name of the lock file in the data directory.
pub const DATA_DIR_LOCK_FILE: &str = "lock";

/// Takes an exclusive `flock` on `DATA/lock` for the life of the returned
/// file. Two collectors on one data directory would write the same journals;
/// and SO_REUSEPORT would let the second one bind the same port silently.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let path = dir.join(DATA_DIR_LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            anyhow::bail!(
                "data directory {} is in use by another helios-collector",
                dir.display()
            );
        }
        return Err(err).with_context(|| format!("locking {}", path.display()));
    }
    Ok(file)
}

/// Journal directories present (numeric names) plus one per core.
fn journal_dirs(root: &Path, cores: usize) -> anyhow::Result<Vec<(usize, PathBuf)>> {
    let mut found: BTreeSet<usize> = (0..cores).collect();
    for entry in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let entry = entry?;
        if let Some(i) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<usize>().ok())
        {
            found.insert(i);
        }
    }
    Ok(found
        .into_iter()
        .map(|i| (i, root.join(i.to_string())))
        .collect())
}

/// Test hook, compiled in only with the `fault-injection` feature (the
/// test command enables it; release builds never read it):
/// `HELIOS_FAULT_INJECT_WRITE=N` makes the Nth commit write of core 0's
/// journal fail (as a dying disk would), to test failure handling in a
/// running collector.
#[cfg(feature = "fault-injection")]
pub const FAULT_INJECT_WRITE_ENV: &str = "HELIOS_FAULT_INJECT_WRITE";

fn journal_config(cfg: &Config, core: usize, driver: IoDriver) -> JournalConfig {
    JournalConfig {
        segment_size_bytes: cfg.segment_size_bytes,
        prepared_segments: cfg.journal_prepared_segments_per_core(),
        max_commits_in_flight: cfg.journal_commits_in_flight,
        commit_path: driver.commit_path(),
        buffered_io: cfg.journal_buffered_io,
        allow_volatile: cfg.allow_volatile_journal,
        fault_plan: injected_faults(core),
        ..JournalConfig::default()
    }
}

#[cfg(not(feature = "fault-injection"))]
fn injected_faults(_core: usize) -> Option<Arc<FaultPlan>> {
    None
}

#[cfg(feature = "fault-injection")]
fn injected_faults(core: usize) -> Option<Arc<FaultPlan>> {
    match std::env::var(FAULT_INJECT_WRITE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(n) if core == 0 => {
            tracing::warn!(
                nth_write = n,
                "fault injection enabled on core 0's journal (test hook)"
            );
            let plan = Arc::new(FaultPlan::new());
            plan.fail_nth_write(n);
            Some(plan)
        }
        _ => None,
    }
}

/// What one core thread starts from.
struct CoreStart {
    core: usize,
    driver: IoDriver,
    cfg: Config,
    own: PathBuf,
    extra: Vec<PathBuf>,
    shutdown: Arc<Shutdown>,
    started: mpsc::Sender<anyhow::Result<Vec<Feed>>>,
    reopened: mpsc::Sender<Feed>,
    metrics: Arc<Metrics>,
    api_keys: Option<Arc<ApiKeys>>,
}

fn run_core(start: CoreStart) {
    let CoreStart {
        core,
        driver,
        cfg,
        own,
        extra,
        shutdown,
        started,
        reopened,
        metrics,
        api_keys,
    } = start;
    let on_build_error = started.clone();
    // The same code on either driver: monoio's sockets, timers and tasks
    // follow the runtime they run on; the journal's commits follow
    // `JournalConfig::commit_path`.
    let ran = helios_journal::runtime::block_on(driver, IO_URING_ENTRIES, async move {
        let opened = open_core(
            core,
            driver,
            &cfg,
            &own,
            &extra,
            (reopened, metrics, api_keys),
        )
        .await;
        let (core_state, extra_journals, feeds) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        let listener = match server::bind(cfg.listen) {
            Ok(l) => l,
            Err(e) => {
                let _ = started.send(Err(anyhow::anyhow!(
                    "core {core}: cannot listen on {}: {e}",
                    cfg.listen
                )));
                return;
            }
        };
        let syslog_listeners = match syslog::bind(&cfg.syslog, core) {
            Ok(l) => l,
            Err(e) => {
                let _ = started.send(Err(e));
                return;
            }
        };
        syslog::spawn(&core_state, syslog_listeners, &shutdown);
        let _ = started.send(Ok(feeds));
        server::run(core_state, listener, shutdown).await;
        for j in extra_journals {
            let _ = j.close().await;
        }
    });
    if let Err(e) = ran {
        let _ = on_build_error.send(Err(anyhow::anyhow!(
            "core {core}: cannot start an {driver} runtime: {e}"
        )));
    }
}

async fn open_core(
    core: usize,
    driver: IoDriver,
    cfg: &Config,
    own: &Path,
    extra: &[PathBuf],
    (reopened, metrics, api_keys): (mpsc::Sender<Feed>, Arc<Metrics>, Option<Arc<ApiKeys>>),
) -> anyhow::Result<(Rc<Core>, Vec<Journal>, Vec<Feed>)> {
    let mut feeds = Vec::new();
    let journal_cfg = journal_config(cfg, core, driver);
    let journal = open_journal(own, journal_cfg.clone(), &mut feeds, &metrics).await?;
    let node_id =
        load_or_create_node_id(own).with_context(|| format!("node id in {}", own.display()))?;
    // Continue past every id this journal ever minted (DESIGN §3: a replay
    // keeps its ids, and a new event never reuses one).
    let minter = IdMinter::resume(node_id, journal.recovery_report().last_record_ids);
    let mut extra_journals = Vec::new();
    for dir in extra {
        extra_journals.push(
            open_journal(
                dir,
                journal_config(cfg, usize::MAX, driver),
                &mut feeds,
                &metrics,
            )
            .await?,
        );
    }
    tracing::debug!(core, journals = feeds.len(), "core ready");
    Ok((
        Core::new(
            core,
            cfg.clone(),
            journal,
            JournalReopen {
                dir: own.to_path_buf(),
                cfg: journal_cfg,
                feeds: reopened,
            },
            minter,
            metrics,
            api_keys,
        ),
        extra_journals,
        feeds,
    ))
}

async fn open_journal(
    dir: &Path,
    journal_cfg: JournalConfig,
    feeds: &mut Vec<Feed>,
    metrics: &Metrics,
) -> anyhow::Result<Journal> {
    let journal = match Journal::open(dir, journal_cfg).await {
        Ok(j) => j,
        Err(e @ (JournalError::Volatile { .. } | JournalError::DirectIoRefused { .. })) => {
            return Err(explain_journal_error(e))
        }
        Err(e) => return Err(e).with_context(|| format!("opening journal {}", dir.display())),
    };
    let report = journal.recovery_report();
    if report.torn_commits > 0 || report.last_seq > report.checkpoint_seq {
        tracing::info!(journal = %dir.display(), torn = report.torn_commits, pending = report.last_seq - report.checkpoint_seq, "journal recovered");
    }
    let checkpointer = journal.checkpointer();
    metrics.set_journal(&dir.display().to_string(), journal.monitor());
    feeds.push(Feed {
        name: dir.display().to_string(),
        reader: journal.reader(checkpointer.current().seq),
        checkpointer,
    });
    Ok(journal)
}
