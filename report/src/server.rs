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
    /// tails and exports, and waits up to [`SHUTDOWN_GRACE`] for requests in
    /// flight.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
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
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = serve => result.map_err(ServerError::Serve),
            () = deadline => {
                tracing::warn!("requests still running after the shutdown grace; stopping anyway");
                Ok(())
            }
        }
    }
}
