//! One connection to an endpoint: opening it (TCP, then the TLS handshake
//! for `https://`), bounded blocking reads and writes, and the check that
//! an idle kept-alive connection is still worth reusing.
//!
//! Every timeout is set on the underlying `TcpStream`, also under TLS:
//! `rustls::StreamOwned` reads and writes through it, so a read or write
//! slice that expires surfaces as `WouldBlock`/`TimedOut` from rustls too,
//! and rustls' state machine resumes cleanly on the next call.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::endpoint::Endpoint;
use super::tls::TlsConfig;
#[cfg(feature = "tls")]
use super::tls::{self, TlsStream};
use super::{DeadlineFn, HttpError};

/// Bytes read per `read()` call.
pub(super) const READ_CHUNK_BYTES: usize = 8 * 1024;
/// Longest a blocking read or write waits before re-checking the shutdown
/// deadline.
const IO_POLL_SLICE_MS: u64 = 50;

/// A connection and the bytes read from it but not yet used.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) stream: Stream,
    pub(super) buf: Vec<u8>,
}

/// The byte stream of a connection: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub(super) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP socket underneath, where timeouts and non-blocking mode are
    /// set.
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => &stream.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// Opens a connection to `endpoint`: TCP within `connect_timeout` per
/// address, then for `https://` the whole TLS handshake (each step within
/// `connect_timeout` too), so that a bad certificate fails here with its
/// own message.
pub(super) fn connect(
    endpoint: &Endpoint,
    connect_timeout: Duration,
    deadline: DeadlineFn<'_>,
    tls: Option<&TlsConfig>,
) -> Result<Connection, HttpError> {
    let socket = connect_tcp(endpoint, connect_timeout, deadline)?;
    let stream = match (endpoint.tls, tls) {
        (false, _) => Stream::Plain(socket),
        #[cfg(feature = "tls")]
        (true, Some(config)) => Stream::Tls(Box::new(tls::handshake(
            socket,
            config,
            endpoint,
            connect_timeout,
            deadline,
        )?)),
        // Never send plaintext to an https:// endpoint.
        (true, _) => {
            return Err(HttpError::Tls {
                host: endpoint.host.clone(),
                source: io::Error::other("no TLS configuration"),
            })
        }
    };
    Ok(Connection {
        stream,
        buf: Vec::with_capacity(READ_CHUNK_BYTES),
    })
}

fn connect_tcp(
    endpoint: &Endpoint,
    connect_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<TcpStream, HttpError> {
    let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            host: endpoint.host.clone(),
            source,
        })?
        .collect();
    let mut last_error = HttpError::Resolve {
        host: endpoint.host.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    };
    for addr in addrs {
        let timeout = bounded_timeout(connect_timeout, deadline())?;
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(socket) => {
                // Head and body go in one write, but a lone small request
                // must not wait for a delayed ACK either.
                socket.set_nodelay(true).map_err(HttpError::Write)?;
                return Ok(socket);
            }
            Err(source) => {
                last_error = HttpError::Connect {
                    addr: addr.to_string(),
                    source,
                }
            }
        }
    }
    Err(last_error)
}

/// A kept connection is worth reusing only if the server has not closed it
/// (or sent unsolicited bytes) while it sat idle.
pub(super) fn is_idle_and_open(conn: &mut Connection) -> bool {
    if !conn.buf.is_empty() || conn.stream.socket().set_nonblocking(true).is_err() {
        return false;
    }
    let quiet = match &mut conn.stream {
        Stream::Plain(socket) => nothing_to_read(socket),
        #[cfg(feature = "tls")]
        Stream::Tls(stream) => tls::idle_and_open(stream, nothing_to_read),
    };
    conn.stream.socket().set_nonblocking(false).is_ok() && quiet
}

/// True when a non-blocking `socket` has no byte waiting and is not closed.
fn nothing_to_read(socket: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(socket.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// `limit`, shortened to what is left before `deadline`; `Timeout` if
/// nothing is left.
pub(super) fn bounded_timeout(
    limit: Duration,
    deadline: Option<Instant>,
) -> Result<Duration, HttpError> {
    let timeout = match deadline {
        Some(deadline) => limit.min(deadline.saturating_duration_since(Instant::now())),
        None => limit,
    };
    if timeout.is_zero() {
        return Err(HttpError::Timeout);
    }
    Ok(timeout)
}

/// Time limits of one blocking read or write loop: `idle` without progress,
/// and the shutdown deadline, checked every [`IO_POLL_SLICE_MS`].
pub(super) struct IoBudget<'a> {
    idle: Duration,
    deadline: DeadlineFn<'a>,
    idle_since: Instant,
}

impl<'a> IoBudget<'a> {
    pub(super) fn new(idle: Duration, deadline: DeadlineFn<'a>) -> Self {
        IoBudget {
            idle,
            deadline,
            idle_since: Instant::now(),
        }
    }

    /// How long the next blocking call may wait, or `Timeout`.
    pub(super) fn next_slice(&self) -> Result<Duration, HttpError> {
        let idle_left = self.idle.saturating_sub(self.idle_since.elapsed());
        bounded_timeout(
            idle_left.min(Duration::from_millis(IO_POLL_SLICE_MS)),
            (self.deadline)(),
        )
    }

    pub(super) fn progressed(&mut self) {
        self.idle_since = Instant::now();
    }
}

/// A blocking call that gave up for its slice (or was interrupted): the
/// budget decides whether to try again.
pub(super) fn is_retryable_wait(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Writes all of `bytes`, then flushes (under TLS the last records may
/// still sit in rustls' buffer after the final `write`).
pub(super) fn send_all(
    stream: &mut Stream,
    bytes: &[u8],
    write_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<(), HttpError> {
    let mut budget = IoBudget::new(write_timeout, deadline);
    let mut written = 0;
    // Each pass writes bytes or uses up a slice of the budget.
    while written < bytes.len() {
        let slice = budget.next_slice()?;
        stream
            .socket()
            .set_write_timeout(Some(slice))
            .map_err(HttpError::Write)?;
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(HttpError::Write(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                budget.progressed();
            }
            Err(e) if is_retryable_wait(&e) => {}
            Err(e) => return Err(HttpError::Write(e)),
        }
    }
    // Each pass flushes or uses up a slice of the budget.
    loop {
        let slice = budget.next_slice()?;
        stream
            .socket()
            .set_write_timeout(Some(slice))
            .map_err(HttpError::Write)?;
        match stream.flush() {
            Ok(()) => return Ok(()),
            Err(e) if is_retryable_wait(&e) => {}
            Err(e) => return Err(HttpError::Write(e)),
        }
    }
}

/// Reads more bytes into `conn.buf`; `Ok(0)` at end of stream.
pub(super) fn fill(
    conn: &mut Connection,
    read_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<usize, HttpError> {
    let budget = IoBudget::new(read_timeout, deadline);
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    // Each pass reads or uses up a slice of the budget.
    loop {
        let slice = budget.next_slice()?;
        conn.stream
            .socket()
            .set_read_timeout(Some(slice))
            .map_err(HttpError::Read)?;
        match conn.stream.read(&mut chunk) {
            Ok(n) => {
                conn.buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if is_retryable_wait(&e) => {}
            Err(e) => return Err(HttpError::Read(e)),
        }
    }
}
