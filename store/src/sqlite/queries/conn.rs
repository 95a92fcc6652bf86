//! Read-only connections for queries: opened with the schema check, the
//! `regexp` function registered, and pooled. Each connection carries a
//! [`Watch`] that its progress handler and its `regexp` function consult,
//! so a statement stops at its deadline or when the pool is cancelled even
//! while it spends its time in regular expression matches (which SQLite's
//! progress handler cannot interrupt).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::StoreError;

use crate::query::pattern::{BoundedRegex, ScanRefused};

/// Most idle read-only connections kept for reuse; more concurrent
/// requests open extra connections that are closed after use.
pub const SQLITE_QUERY_POOL_MAX_IDLE: usize = 4;

/// SQLite virtual-machine steps between two checks of a query's deadline:
/// frequent enough to stop within milliseconds, rare enough to cost
/// nothing measurable.
const PROGRESS_CHECK_OPS: i32 = 10_000;

/// Page cache per query connection, KiB (negative `cache_size` is KiB):
/// histograms and group-bys scan index and table pages repeatedly.
const QUERY_CACHE_KIB: i64 = 32 * 1024;

/// Why a statement was stopped from inside SQLite (by the progress handler
/// or the `regexp` function).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Stop {
    /// It ran past its deadline.
    #[error("the statement ran past its deadline")]
    Deadline,
    /// The pool was cancelled.
    #[error("the query was cancelled")]
    Cancelled,
    /// A regular expression was asked to scan a string too long for it.
    #[error(transparent)]
    Scan(ScanRefused),
}

/// What one connection's progress handler and `regexp` function share with
/// the pool: the running statement's deadline, the pool's cancel flag, and
/// why the statement was stopped, if it was.
#[derive(Debug)]
struct Watch {
    cancelled: Arc<AtomicBool>,
    deadline: Mutex<Option<Instant>>,
    stop: Mutex<Option<Stop>>,
}

impl Watch {
    fn new(cancelled: Arc<AtomicBool>) -> Self {
        Self {
            cancelled,
            deadline: Mutex::new(None),
            stop: Mutex::new(None),
        }
    }

    /// Arms the watch for one piece of work.
    fn start(&self, deadline: Option<Instant>) {
        *lock(&self.deadline) = deadline;
        *lock(&self.stop) = None;
    }

    /// Disarms it; returns why the work was stopped, if it was.
    fn finish(&self) -> Option<Stop> {
        *lock(&self.deadline) = None;
        lock(&self.stop).take()
    }

    /// `Err` once the work must stop (recorded for [`Self::finish`]).
    fn check(&self) -> Result<(), Stop> {
        let stop = if self.cancelled.load(Ordering::Acquire) {
            Stop::Cancelled
        } else if lock(&self.deadline).is_some_and(|deadline| Instant::now() >= deadline) {
            Stop::Deadline
        } else {
            return Ok(());
        };
        self.record(stop.clone());
        Err(stop)
    }

    /// Keeps the first reason a statement was stopped.
    fn record(&self, stop: Stop) {
        lock(&self.stop).get_or_insert(stop);
    }
}

/// Locks a mutex whose data stays valid whatever panicked while it was
/// held (plain values replaced whole, or a Vec pushed and popped).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a pooled call failed.
#[derive(Debug)]
pub(super) enum PoolError {
    /// No connection could be opened.
    Open(StoreError),
    /// The statement was stopped: deadline, cancel, or a refused scan.
    Stopped(Stop),
    /// The statement failed.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for PoolError {
    fn from(error: rusqlite::Error) -> Self {
        PoolError::Sql(error)
    }
}

/// A pooled connection and its watch.
struct QueryConnection {
    conn: Connection,
    watch: Arc<Watch>,
}

/// Idle connections to one file.
pub(super) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<QueryConnection>>,
    /// Set once by [`Pool::cancel`]; every connection's watch reads it.
    cancelled: Arc<AtomicBool>,
}

impl Pool {
    /// Opens one connection now, so a missing file or a wrong schema is
    /// reported at start-up rather than on the first query.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let first = open_query_connection(path, &cancelled)?;
        Ok(Self {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
            cancelled,
        })
    }

    /// The flag [`Pool::cancel`] sets, for work outside SQLite (the
    /// columnar tier's scans) to stop with the pool's statements.
    pub(super) fn cancelled(&self) -> &AtomicBool {
        &self.cancelled
    }

    /// Stops the statements running now (at their next progress check or
    /// `regexp` call) and refuses later work.
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Runs `work` on an idle (or new) connection and returns it to the
    /// pool afterwards, unless the pool is full. `work` is stopped
    /// ([`PoolError::Stopped`]) once `budget` has passed or the pool is
    /// cancelled, also between two `regexp` matches.
    pub(super) fn with<T>(
        &self,
        budget: Duration,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, PoolError> {
        if self.cancelled.load(Ordering::Acquire) {
            return Err(PoolError::Stopped(Stop::Cancelled));
        }
        let reused = lock(&self.idle).pop();
        let connection = match reused {
            Some(connection) => connection,
            None => open_query_connection(&self.path, &self.cancelled).map_err(PoolError::Open)?,
        };
        connection.watch.start(Instant::now().checked_add(budget));
        let result = work(&connection.conn);
        let stop = connection.watch.finish();
        let interrupted = matches!(
            &result,
            Err(error) if error.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        let mut idle = lock(&self.idle);
        if idle.len() < SQLITE_QUERY_POOL_MAX_IDLE {
            idle.push(connection);
        }
        drop(idle);
        result.map_err(|error| match stop {
            Some(stop) => PoolError::Stopped(stop),
            // Only our progress handler interrupts, and it records why;
            // this keeps an unrecorded interrupt a timeout all the same.
            None if interrupted => PoolError::Stopped(Stop::Deadline),
            None => PoolError::Sql(error),
        })
    }
}

fn open_error(path: &Path, context: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        context,
        source: Box::new(source),
    }
}

/// Opens `path` read-only, checks the schema version (readers never
/// migrate), and installs the watch: the progress handler and `regexp`.
fn open_query_connection(
    path: &Path,
    cancelled: &Arc<AtomicBool>,
) -> Result<QueryConnection, StoreError> {
    // The store's own read-only open: NO_MUTEX (the pool hands a connection
    // to one thread at a time), busy timeout, exact schema version.
    let conn = crate::sqlite::schema::open_reader(path)?;
    conn.pragma_update(None, "cache_size", -QUERY_CACHE_KIB)
        .map_err(|source| open_error(path, "setting cache_size", source))?;
    let watch = Arc::new(Watch::new(Arc::clone(cancelled)));
    let progress = Arc::clone(&watch);
    // Installed once: with no statement running the watch has no deadline
    // and never interrupts.
    conn.progress_handler(PROGRESS_CHECK_OPS, Some(move || progress.check().is_err()))
        .map_err(|source| open_error(path, "installing the progress handler", source))?;
    register_regexp(&conn, Arc::clone(&watch))
        .map_err(|source| open_error(path, "registering regexp", source))?;
    Ok(QueryConnection { conn, watch })
}

/// `regexp(pattern, text)`, also reachable as `text REGEXP pattern`: the
/// Rust `regex` crate with the IR's limits. The compiled pattern is cached
/// per statement (SQLite auxdata), so each row does not recompile it.
/// Non-text values never match.
///
/// Each call first checks the watch (deadline, cancel), and refuses a text
/// longer than the pattern may scan: one match cannot be interrupted, so
/// its work is bounded before it starts (`query::pattern`). Either way the
/// call fails, which fails the statement, and the watch records why.
fn register_regexp(conn: &Connection, watch: Arc<Watch>) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("regexp", 2, flags, move |ctx| {
        watch
            .check()
            .map_err(|stop| rusqlite::Error::UserFunctionError(Box::new(stop)))?;
        let regex: Arc<BoundedRegex> = ctx.get_or_create_aux(0, |pattern| match pattern {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map_err(|error| error.to_string())
                .and_then(|source| BoundedRegex::new(source).map_err(|error| error.to_string())),
            _ => Err("regexp pattern must be text".to_owned()),
        })?;
        let ValueRef::Text(bytes) = ctx.get_raw(1) else {
            return Ok(false);
        };
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(false);
        };
        regex.is_match_bounded(text).map_err(|refused| {
            watch.record(Stop::Scan(refused.clone()));
            rusqlite::Error::UserFunctionError(Box::new(refused))
        })
    })
}
