//! The embedded store's compactor thread: moves sealed time partitions of
//! the SQLite hot tier into columnar files, and drops columnar partitions
//! past retention (`helios_store::sqlite::Compactor` does the work and
//! owns its crash safety; this only schedules it).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helios_store::sqlite::{CompactOptions, Compactor};

use crate::config::FlusherPriority;
use crate::metrics::CompactionMetrics;
use crate::shutdown::Shutdown;

/// Most files one pass publishes before it checks for shutdown and sleeps:
/// a backlog (an upgraded store, a long outage) drains over several passes
/// instead of holding the thread for its whole length.
const MAX_FILES_PER_PASS: usize = 16;

/// How often a sleeping compactor looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// What the compactor thread runs with.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The database file.
    pub db_path: PathBuf,
    /// Partition width, hot time, file size.
    pub options: CompactOptions,
    /// Pause between passes.
    pub every: Duration,
    /// Retention (`--retention-days`), ms: partitions that ended longer ago
    /// are dropped whole.
    pub retention_keep_ms: Option<i64>,
    /// The store's share of the CPU (`--flusher-priority`): compaction is
    /// store work and gives way to the cores like the flusher.
    pub priority: FlusherPriority,
    /// Where the compactor counts what it did.
    pub metrics: Arc<CompactionMetrics>,
}

/// Starts the compactor thread; it stops soon after `shutdown` is set
/// (a step in progress finishes first: each step is one atomic publish).
pub fn spawn(
    setup: Setup,
    shutdown: Arc<Shutdown>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("helios-compactor".into())
        .spawn(move || {
            crate::flusher::lower_priority(setup.priority);
            run(&setup, &shutdown)
        })
}

fn run(setup: &Setup, shutdown: &Shutdown) {
    let mut compactor: Option<Compactor> = None;
    // The first pass waits one period too: a start replays the journals
    // into the hot tier first, and a collector that only lives briefly
    // (a test, a one-off import) is not compacting at once.
    sleep_unless_shutdown(setup.every, shutdown);
    while !shutdown.is_set() {
        if compactor.is_none() {
            match Compactor::open(&setup.db_path, setup.options.clone()) {
                Ok(opened) => compactor = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "cannot open the store for compaction; will retry")
                }
            }
        }
        let mut backlog = false;
        if let Some(active) = compactor.as_mut() {
            let now_ms = now_ms();
            match active.compact_sealed(now_ms, MAX_FILES_PER_PASS) {
                Ok(outcome) if outcome.files_written > 0 => {
                    let metrics = &setup.metrics;
                    metrics
                        .files
                        .fetch_add(outcome.files_written, Ordering::Relaxed);
                    metrics
                        .events
                        .fetch_add(outcome.rows_moved, Ordering::Relaxed);
                    backlog = outcome.files_written as usize == MAX_FILES_PER_PASS;
                    tracing::info!(
                        files = outcome.files_written,
                        events = outcome.rows_moved,
                        "compacted sealed partitions into columnar files"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    setup.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "compaction failed; will retry");
                    // Reopen: the connection may be what failed.
                    compactor = None;
                }
            }
            if let (Some(active), Some(keep_ms)) = (compactor.as_mut(), setup.retention_keep_ms) {
                match active.drop_partitions_before(now_ms.saturating_sub(keep_ms)) {
                    Ok(outcome) => {
                        setup
                            .metrics
                            .files_dropped
                            .fetch_add(outcome.files_removed, Ordering::Relaxed);
                    }
                    Err(error) => tracing::warn!(%error, "columnar retention failed; will retry"),
                }
            }
        }
        if !backlog {
            sleep_unless_shutdown(setup.every, shutdown);
        }
    }
}

fn sleep_unless_shutdown(pause: Duration, shutdown: &Shutdown) {
    let until = Instant::now() + pause;
    while !shutdown.is_set() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(SHUTDOWN_POLL));
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
