//! The JSON API (README "Report server API" documents every endpoint).
//! Handlers turn parameters into the query layer's requests
//! ([`crate::params`]), run them on the blocking pool
//! ([`crate::backend::Backend::run`]) and shape the answers for the UI.

mod export;
mod read;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{watch, Semaphore};

use crate::backend::Backend;
use crate::config::ReportConfig;
use crate::security::{AllowedHosts, Auth};

pub use export::{MAX_CONCURRENT_EXPORTS, MAX_CSV_COLUMNS};
pub use tail::{ResumePositions, MAX_RESUME_POSITIONS, MAX_TAIL_CLIENTS, TAIL_POLL_INTERVAL};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub backend: Arc<Backend>,
    /// The token check (login sets the cookie only for the right token).
    pub auth: Auth,
    /// Whether the login cookie carries `Secure` (behind a TLS proxy).
    pub secure_cookie: bool,
    /// The names a request's `Host` may give (DNS rebinding guard).
    pub hosts: AllowedHosts,
    /// Live-tail connections allowed at once.
    pub tail_clients: Arc<Semaphore>,
    /// Tail positions too long for an SSE id, kept for resuming.
    pub tail_positions: Arc<tail::ResumePositions>,
    /// Exports allowed at once.
    pub exports: Arc<Semaphore>,
    /// How long an export waits on a client that takes nothing.
    pub export_idle_timeout: Duration,
    /// Flips to `true` when the server starts shutting down: live tails and
    /// exports end so the graceful shutdown is not held open by them.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// State over `backend` for `cfg`, with the configured limits.
    pub fn new(backend: Arc<Backend>, cfg: &ReportConfig, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            backend,
            auth: Auth::new(cfg.token.as_deref()),
            secure_cookie: cfg.secure_cookie,
            hosts: AllowedHosts::new(cfg.listen, &cfg.allowed_hosts),
            tail_clients: Arc::new(Semaphore::new(MAX_TAIL_CLIENTS)),
            tail_positions: Arc::new(tail::ResumePositions::default()),
            exports: Arc::new(Semaphore::new(MAX_CONCURRENT_EXPORTS)),
            export_idle_timeout: cfg.export_idle_timeout,
            shutdown,
        }
    }
}

/// Every `/api/` route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/status", get(read::status))
        .route(crate::routes::LOGIN_PATH, post(read::login))
        .route("/api/types", get(read::types))
        .route("/api/events", get(read::events))
        .route("/api/events/{id}", get(read::event))
        .route("/api/histogram", get(read::histogram))
        .route("/api/groups", get(read::groups))
        .route("/api/fields", get(read::fields))
        .route("/api/values", get(read::values))
        .route("/api/export", get(export::export))
        .route("/api/tail", get(tail::tail))
        .with_state(state)
}
