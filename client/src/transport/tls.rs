//! `https://` for the transport (feature `tls`): rustls with the ring
//! provider (TLS 1.2 and 1.3), trusting Mozilla's roots (webpki-roots) plus
//! an optional PEM file of private CAs. These are the TLS crates the
//! MongoDB driver already builds, so a collector gains no new code; apps
//! that leave the feature off build none of it.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::conn::{is_retryable_wait, IoBudget};
use super::endpoint::Endpoint;
use super::{DeadlineFn, HttpError};

/// A TLS connection over a blocking TCP socket.
pub(super) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Most TLS records processed by one idle check (session tickets, a key
/// update); a server that keeps sending is not idle.
const MAX_IDLE_TLS_READS: usize = 8;

/// Which servers an `https://` connection trusts: Mozilla's roots plus any
/// extra CA certificates. Cheap to clone (shared).
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

/// A TLS configuration that could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The extra CA file could not be read, or holds something that is not
    /// a usable certificate.
    #[error("{}: {reason}", path.display())]
    CaFile {
        /// The file as given.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The extra CA file holds no PEM certificate at all (a key, or the
    /// wrong file).
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file as given.
        path: PathBuf,
    },
    /// rustls refused the settings.
    #[error("TLS setup: {0}")]
    Setup(String),
}

impl TlsConfig {
    /// Trusts Mozilla's roots plus every PEM certificate in
    /// `extra_ca_pem_file` (a private CA), when given.
    pub fn new(extra_ca_pem_file: Option<&Path>) -> Result<Self, TlsConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_ca_pem_file {
            add_pem_file(&mut roots, path)?;
        }
        // An explicit provider: no process-wide default has to be installed.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            client: Arc::new(client),
        })
    }
}

/// Adds every certificate of a PEM file; at least one must be there.
fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), TlsConfigError> {
    let ca_file = |reason: String| TlsConfigError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_file(e.to_string()))?;
    let mut added = 0usize;
    for cert in certs {
        let cert = cert.map_err(|e| ca_file(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_file(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsConfigError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Runs the whole handshake on `socket`, each step within `idle` and the
/// shutdown deadline. A certificate the roots do not vouch for fails here
/// as [`HttpError::Tls`] with rustls' reason ("invalid peer certificate:
/// UnknownIssuer").
pub(super) fn handshake(
    socket: TcpStream,
    config: &TlsConfig,
    endpoint: &Endpoint,
    idle: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<TlsStream, HttpError> {
    let failed = |source: io::Error| HttpError::Tls {
        host: endpoint.host.clone(),
        source,
    };
    let server_name = endpoint
        .server_name
        .clone()
        .ok_or_else(|| failed(io::Error::other("not an https:// endpoint")))?;
    let conn = rustls::ClientConnection::new(Arc::clone(&config.client), server_name)
        .map_err(|e| failed(io::Error::other(e)))?;
    let mut stream = rustls::StreamOwned::new(conn, socket);
    let mut budget = IoBudget::new(idle, deadline);
    // Each pass moves handshake bytes or uses up a slice of the budget.
    while stream.conn.is_handshaking() {
        let slice = budget.next_slice()?;
        stream
            .sock
            .set_read_timeout(Some(slice))
            .and_then(|()| stream.sock.set_write_timeout(Some(slice)))
            .map_err(failed)?;
        match stream.conn.complete_io(&mut stream.sock) {
            Ok((0, 0)) => {}
            Ok(_) => budget.progressed(),
            Err(e) if is_retryable_wait(&e) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(stream)
}

/// Whether an idle TLS connection (its socket non-blocking) is still worth
/// reusing. A TLS 1.3 server sends session tickets after the handshake;
/// they wait on an idle socket and mean nothing, so unlike plain TCP, bytes
/// waiting are not enough to give up: they are read and processed (at most
/// [`MAX_IDLE_TLS_READS`] times), and the connection is kept only if they
/// held no application data and no close.
pub(super) fn idle_and_open(
    stream: &mut TlsStream,
    nothing_to_read: fn(&TcpStream) -> bool,
) -> bool {
    for _ in 0..MAX_IDLE_TLS_READS {
        match stream.conn.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
            _ => return false,
        }
        if nothing_to_read(&stream.sock) {
            return true;
        }
        match stream.conn.read_tls(&mut stream.sock) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    false
}
