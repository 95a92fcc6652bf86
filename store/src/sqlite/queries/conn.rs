//! Read-only connections for queries: opened with the schema check, the
//! `regexp` function registered, and pooled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use crate::error::StoreError;

use crate::query::ir::compile_regex;

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

/// Why a pooled call failed.
#[derive(Debug)]
pub(super) enum PoolError {
    /// No connection could be opened.
    Open(StoreError),
    /// The statement failed.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for PoolError {
    fn from(error: rusqlite::Error) -> Self {
        PoolError::Sql(error)
    }
}

/// Idle connections to one file.
pub(super) struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// Opens one connection now, so a missing file or a wrong schema is
    /// reported at start-up rather than on the first query.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let first = open_query_connection(path)?;
        Ok(Self {
            path: path.to_owned(),
            idle: Mutex::new(vec![first]),
        })
    }

    /// Runs `work` on an idle (or new) connection and returns it to the
    /// pool afterwards, unless the pool is full. SQLite interrupts `work`
    /// (error `SQLITE_INTERRUPT`) once `budget` has passed.
    pub(super) fn with<T>(
        &self,
        budget: Duration,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, PoolError> {
        let reused = self.lock().pop();
        let conn = match reused {
            Some(conn) => conn,
            None => open_query_connection(&self.path).map_err(PoolError::Open)?,
        };
        let deadline = Instant::now().checked_add(budget);
        conn.progress_handler(
            PROGRESS_CHECK_OPS,
            Some(move || deadline.is_some_and(|deadline| Instant::now() >= deadline)),
        )?;
        let result = work(&conn);
        conn.progress_handler(0, None::<fn() -> bool>)?;
        let mut idle = self.lock();
        if idle.len() < SQLITE_QUERY_POOL_MAX_IDLE {
            idle.push(conn);
        }
        result.map_err(PoolError::Sql)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock cannot leave the Vec half-updated
        // (push/pop only), so a poisoned pool is still a valid pool.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
/// migrate) and registers `regexp`.
fn open_query_connection(path: &Path) -> Result<Connection, StoreError> {
    // The store's own read-only open: NO_MUTEX (the pool hands a connection
    // to one thread at a time), busy timeout, exact schema version.
    let conn = crate::sqlite::schema::open_reader(path)?;
    conn.pragma_update(None, "cache_size", -QUERY_CACHE_KIB)
        .map_err(|source| open_error(path, "setting cache_size", source))?;
    register_regexp(&conn).map_err(|source| open_error(path, "registering regexp", source))?;
    Ok(conn)
}

/// `regexp(pattern, text)`, also reachable as `text REGEXP pattern`: the
/// Rust `regex` crate with the IR's limits. The compiled pattern is cached
/// per statement (SQLite auxdata), so each row does not recompile it.
/// Non-text values never match.
fn register_regexp(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("regexp", 2, flags, |ctx| {
        let regex: Arc<Regex> = ctx.get_or_create_aux(0, |pattern| match pattern {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map_err(|error| error.to_string())
                .and_then(|source| compile_regex(source).map_err(|error| error.to_string())),
            _ => Err("regexp pattern must be text".to_owned()),
        })?;
        Ok(match ctx.get_raw(1) {
            ValueRef::Text(bytes) => {
                std::str::from_utf8(bytes).is_ok_and(|text| regex.is_match(text))
            }
            _ => false,
        })
    })
}
