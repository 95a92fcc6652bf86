//! [`ReportServer`]: bind, then serve until a shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::AppState;
use crate::backend::Backend;
use crate::config::ReportConfig;
use crate::routes;

/// How long in-flight requests (an export, say) may run after shutdown
/// starts before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long store queries running when shutdown starts may still finish;
/// then the store is cancelled ([`crate::Backend::cancel`]) and they end
/// within moments with a 503, whatever they were doing (a slow regular
/// expression included). Shorter than [`SHUTDOWN_GRACE`], so their
/// answers still go out before the server stops.
pub const QUERY_SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A bound report server, not yet serving.
pub struct ReportServer {
    listener: TcpListener,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving: {0}")]
    Serve(#[from] std::io::Error),
}

impl ReportServer {
    /// Binds `cfg.listen` for `backend`. Must run inside a tokio runtime.
    pub async fn bind(cfg: &ReportConfig, backend: Backend) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = AppState::new(Arc::new(backend), cfg, shutdown_rx);
        Ok(Self {
            listener,
            state,
            shutdown_tx,
        })
    }

    /// The bound address (the real port when asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends live
    /// tails and exports, cancels store queries still running after
    /// [`QUERY_SHUTDOWN_GRACE`], and waits up to [`SHUTDOWN_GRACE`] for
    /// requests in flight. When it returns, no query is left running on
    /// the blocking pool (beyond one bounded step), so dropping the runtime
    /// does not wait on one.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let backend = Arc::clone(&self.state.backend);
        let cancel_queries = Arc::clone(&backend);
        let app = routes::router(self.state);
        let shutdown_tx = self.shutdown_tx;
        let mut stopping = shutdown_tx.subscribe();
        let signal = async move {
            shutdown.await;
            tracing::info!("report server stopping");
            // Long-lived responses watch this and end, so the graceful
            // shutdown below is not held open by them.
            let _ = shutdown_tx.send(true);
        };
        let serve = axum::serve(self.listener, app).with_graceful_shutdown(signal);
        let deadline = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
            tokio::time::sleep(QUERY_SHUTDOWN_GRACE).await;
            cancel_queries.cancel();
            tokio::time::sleep(SHUTDOWN_GRACE.saturating_sub(QUERY_SHUTDOWN_GRACE)).await;
        };
        let result = tokio::select! {
            result = serve => result.map_err(ServerError::Serve),
            () = deadline => {
                tracing::warn!("requests still running after the shutdown grace; stopping anyway");
                Ok(())
            }
        };
        // Also when every connection closed before the grace ended: a query
        // whose client went away runs on, detached, until cancelled.
        backend.cancel();
        result
    }
}
