//! [`Backend`]: the store the report server reads, opened from a store URI
//! (the collector's forms), and the one place blocking query calls leave
//! the async runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use helios_store::query::{QueryBackend, QueryError, SqliteQueries};
use helios_store::StoreUri;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Most queries running at once on the blocking pool; more wait their turn
/// (each holds a read connection and a thread while it runs).
pub const MAX_CONCURRENT_QUERIES: usize = 16;

/// How to reach the store, decided from the URI at startup.
enum Opener {
    /// The embedded store: a file the collector may not have created yet.
    Sqlite(PathBuf),
}

/// The query back end behind the API, opened lazily: a report server may
/// start before its collector has created the SQLite file, and then shows
/// an empty state until the file appears.
pub struct Backend {
    opener: Opener,
    open: Mutex<Option<Arc<dyn QueryBackend>>>,
    permits: Arc<Semaphore>,
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
    /// Prepares the back end a store URI names. Opening happens on first
    /// use (and is retried until it succeeds).
    pub fn from_uri(uri: &str) -> Result<Self, BackendError> {
        let opener = match StoreUri::parse(uri)? {
            StoreUri::Sqlite(path) => Opener::Sqlite(path),
            // TODO(issue 6): open `MongoQueries` once it implements
            // `QueryBackend`.
            StoreUri::MongoDb(_) => {
                return Err(BackendError::NotQueryable(
                    "the report server cannot query MongoDB yet".to_owned(),
                ))
            }
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
        })
    }

    /// A back end over an already open query back end (tests, embedding).
    pub fn from_backend(backend: Arc<dyn QueryBackend>) -> Self {
        Self {
            opener: Opener::Sqlite(PathBuf::new()),
            open: Mutex::new(Some(backend)),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_QUERIES)),
        }
    }

    /// The open back end, opening it now if needed. Blocking.
    fn get(&self) -> Result<Arc<dyn QueryBackend>, ApiError> {
        let mut slot = self.open.lock().unwrap_or_else(|p| p.into_inner());
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
                        .map_err(|error| ApiError::Store(format!("opening the store: {error}")))?,
                )
            }
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
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ApiError::Busy("the server is shutting down".to_owned()))?;
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
