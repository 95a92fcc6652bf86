//! [`Backend`]: the store the report server reads, opened from a store URI
//! (the collector's forms), and the one place blocking query calls leave
//! the async runtime.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helios_store::mongo::MongoQueries;
use helios_store::query::{QueryBackend, QueryError};
use helios_store::sqlite::SqliteQueries;
use helios_store::StoreUri;
use tokio::sync::Semaphore;

use crate::config::ReportConfig;
use crate::error::ApiError;

/// Most queries running at once on the blocking pool; more wait their turn
/// (each holds a read connection and a thread while it runs).
pub const MAX_CONCURRENT_QUERIES: usize = 16;
/// How long a query waits for one of those places before it gets a 503:
/// bounds the queue of waiting requests as well as the running ones.
pub const QUERY_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How to reach the store, decided from the URI at startup.
enum Opener {
    /// The embedded store: a file the collector may not have created yet.
    Sqlite(PathBuf),
    /// A MongoDB deployment (the URI may hold credentials: never logged).
    MongoDb {
        uri: String,
        database: String,
        collection: String,
    },
}

/// The query back end behind the API, opened lazily: a report server may
/// start before its collector has created the SQLite file, and then shows
/// an empty state until the file appears.
pub struct Backend {
    opener: Opener,
    open: Mutex<Option<Arc<dyn QueryBackend>>>,
    permits: Arc<Semaphore>,
    /// Time budget of each statement.
    query_timeout: Duration,
    /// Set by [`Backend::cancel`]: nothing opens or runs any more.
    cancelled: AtomicBool,
}

/// Why a store URI cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The URI does not parse, or names a store this build cannot read.
    #[error("store URI: {0}")]
    Uri(#[from] helios_store::StoreError),
    /// The URI is a valid store for the collector, but not one to query.
    #[error("{0}")]
    NotQueryable(String),
}

impl Backend {
    /// Prepares the back end the configured store URI names. Opening
    /// happens on first use (and is retried until it succeeds).
    pub fn from_config(cfg: &ReportConfig) -> Result<Self, BackendError> {
        let opener = match StoreUri::parse(&cfg.store)? {
            StoreUri::Sqlite(path) => Opener::Sqlite(path),
            StoreUri::MongoDb(uri) => Opener::MongoDb {
                uri,
                database: cfg.mongodb_namespace.0.clone(),
                collection: cfg.mongodb_namespace.1.clone(),
            },
            StoreUri::Http(_) => {
                return Err(BackendError::NotQueryable(
                    "an http:// store is an upstream collector (relay mode); point the \
                     report server at the store that collector writes"
                        .to_owned(),
                ))
            }
        };
        Ok(Self {
            opener,
            open: Mutex::new(None),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_QUERIES)),
            query_timeout: cfg.query_timeout,
            cancelled: AtomicBool::new(false),
        })
    }

    /// Cancels the store for good (server shutdown): queries running now end
    /// within moments with a 503, later ones get it at once, so no
    /// blocking thread outlives the server by more than that.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(backend) = slot.as_ref() {
            backend.cancel();
        }
    }

    fn shutting_down() -> ApiError {
        ApiError::Busy("the server is shutting down".to_owned())
    }

    /// The open back end, opening it now if needed. Blocking; runs on the
    /// runtime's blocking pool (MongoDB's client needs the runtime).
    fn get(&self) -> Result<Arc<dyn QueryBackend>, ApiError> {
        let mut slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock `cancel` takes: a backend opened now is
        // either seen by `cancel` or never opened.
        if self.cancelled.load(Ordering::Acquire) {
            return Err(Self::shutting_down());
        }
        if let Some(backend) = slot.as_ref() {
            return Ok(Arc::clone(backend));
        }
        let backend: Arc<dyn QueryBackend> = match &self.opener {
            Opener::Sqlite(path) => {
                if !path.exists() {
                    return Err(ApiError::NotReady(
                        "no events stored yet: the store file does not exist (is the \
                         collector running?)"
                            .to_owned(),
                    ));
                }
                Arc::new(
                    SqliteQueries::open(path)
                        .map_err(|error| ApiError::Store(format!("opening the store: {error}")))?
                        .with_query_timeout(self.query_timeout),
                )
            }
            Opener::MongoDb {
                uri,
                database,
                collection,
            } => Arc::new(
                open_mongodb(uri, database, collection)?.with_query_timeout(self.query_timeout),
            ),
        };
        tracing::info!(store = %backend.describe(), "store open for queries");
        *slot = Some(Arc::clone(&backend));
        Ok(backend)
    }

    /// Runs `work` against the store on the blocking pool, at most
    /// [`MAX_CONCURRENT_QUERIES`] at a time.
    pub async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn QueryBackend) -> Result<T, QueryError> + Send + 'static,
    {
        let permit =
            tokio::time::timeout(QUERY_QUEUE_WAIT, Arc::clone(&self.permits).acquire_owned())
                .await
                .map_err(|_| {
                    ApiError::Busy(format!(
                        "{MAX_CONCURRENT_QUERIES} queries are running and this one waited {} s; \
                     try again shortly",
                        QUERY_QUEUE_WAIT.as_secs()
                    ))
                })?
                .map_err(|_| Self::shutting_down())?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let backend = this.get()?;
            work(backend.as_ref()).map_err(ApiError::from)
        })
        .await
        .map_err(|error| ApiError::Store(format!("query task failed: {error}")))?
    }

    /// The open back end for a long-running blocking job (an export) that
    /// manages its own pacing. Blocking.
    pub fn open_blocking(&self) -> Result<Arc<dyn QueryBackend>, ApiError> {
        self.get()
    }
}

/// Builds the MongoDB client (no server contact yet: the driver connects on
/// the first query). Called on a blocking-pool thread of the server's
/// runtime, whose handle the queries then use.
fn open_mongodb(uri: &str, database: &str, collection: &str) -> Result<MongoQueries, ApiError> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| ApiError::Store("MongoDB needs the server's runtime".to_owned()))?;
    MongoQueries::open(uri, database, collection, handle)
        .map_err(|error| ApiError::Store(format!("mongodb: {error}")))
}
