//! Syslog intake: UDP (RFC 5426), TCP (RFC 6587) and RELP listeners on
//! every core, off unless configured (`--syslog-udp`, `--syslog-tcp`,
//! `--relp`). Each core binds its own SO_REUSEPORT sockets on its own
//! monoio runtime (io_uring or epoll: the same code), like the HTTP
//! listener.
//!
//! The path of a message is the shippers' path: bytes → a message
//! (`helios_shippers::syslog`'s framers, pure) → a Helios event line
//! (`syslog::translate`, the `--syslog-type` rule, no `app`) → the
//! collector's NDJSON validation and one journal record per read batch
//! (`server::journal_lines`, shared with the shippers' endpoints) stamped
//! with `--syslog-app` → the ticket. Many datagrams or lines make one
//! record: a batch is what one read (or one drain of a UDP socket) gave,
//! up to [`MAX_BATCH_MESSAGES`] and [`MAX_BATCH_BYTES`].
//!
//! What each transport promises, since only RELP can acknowledge:
//! - **UDP**: nothing. A datagram over `--syslog-max-message-bytes`, or
//!   one the journal cannot take (budget full, journal failed or its
//!   commit failed) is counted in `helios_syslog_messages_total` and
//!   gone; the kernel's own drops (a full `SO_RCVBUF`) are read from
//!   `/proc/net/udp` into `helios_syslog_udp_kernel_drops`.
//! - **TCP**: nothing is acknowledged either, but nothing read is dropped
//!   for backpressure: while the journal cannot take a batch the
//!   connection stops reading (the sender's TCP window closes) and the
//!   batch is retried until it is durable or the collector stops. A
//!   message over the limit is counted and skipped; the stream goes on.
//! - **RELP**: `rsp 200 OK` for a frame only after its record is durable
//!   (`Ticket::durable`). A frame that cannot be journaled now is never
//!   answered `500` (rsyslog's omrelp drops such a frame): the connection
//!   stops reading and retries, and after [`RELP_MAX_HOLD`] without
//!   success it sends `serverclose` and closes, so omrelp reconnects and
//!   resends every unanswered frame. `500` only for frames that can never
//!   succeed (over the size limit, refused by validation, a protocol
//!   error). Frames committed but not yet answered at a crash are resent
//!   and stored twice: the only duplicates.
//!
//! Connections (TCP and RELP) count against `--max-connections-per-core`
//! with the core's HTTP connections (one descriptor budget); one past it
//! is closed at once. They have no idle timeout: syslog senders keep one
//! connection open for hours.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helios_shippers::syslog::{self as parse, relp, Context, TcpFramer};
use helios_shippers::{Translation, TypeRule};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::udp::UdpSocket;
use monoio::net::{TcpListener, TcpStream};

use crate::config::{Config, SyslogConfig};
use crate::server::{self, ConnectionSlot, Core, JournalRefusal, TranslationRefusal};
use crate::shutdown::Shutdown;

/// Most messages in one journal record.
pub const MAX_BATCH_MESSAGES: usize = 1024;
/// A batch is closed once its event lines pass this many bytes (one
/// message more at most), so a record stays far below the journal's
/// record limit (33 MiB) whatever `--syslog-max-message-bytes` allows.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Largest UDP payload: a read buffer this size holds any datagram.
const MAX_UDP_DATAGRAM_BYTES: usize = 65_536;
/// Bytes asked of a TCP socket per read.
const READ_CHUNK_BYTES: usize = 16 << 10;
/// A batch's event lines are kept for the next batch only up to this
/// capacity, so a connection that once sent a large batch does not hold
/// its buffer while idle.
const KEEP_BATCH_CAPACITY_BYTES: usize = 64 << 10;
/// First and longest pause before retrying a batch the journal did not
/// take (budget full, journal failed or reopening, commit failed).
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(10);
const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How long a RELP connection holds frames the journal cannot take before
/// it sends `serverclose` and closes (omrelp then resends them on a new
/// connection). Below omrelp's default answer timeout (90 s), so rsyslog
/// never gives up on the connection first and resends frames this
/// connection may still commit.
pub const RELP_MAX_HOLD: Duration = Duration::from_secs(20);
/// Pause after a failed accept (descriptor limit, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A syslog transport, a label of every syslog metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// RFC 5426.
    Udp,
    /// RFC 6587.
    Tcp,
    /// rsyslog's RELP.
    Relp,
}

impl Transport {
    /// Every transport, in metric order.
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Relp];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Relp => "relp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What became of a message, a label of `helios_syslog_messages_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Durable in a journal.
    Accepted,
    /// Refused alone by the collector's validation (never durable; RELP
    /// answers it `500`).
    Rejected,
    /// Over `--syslog-max-message-bytes` or the journal's record limit.
    TooBig,
    /// UDP only: the journal could not take it (budget full, journal
    /// failed) or its commit failed.
    Dropped,
}

impl Outcome {
    /// Every outcome, in metric order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::TooBig,
        Outcome::Dropped,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::TooBig => "too_big",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Syslog's counters, shared by the cores (each counts per batch, not per
/// message, so sharing costs nothing measurable).
#[derive(Debug, Default)]
pub struct SyslogMetrics {
    messages: [[AtomicU64; Outcome::ALL.len()]; Transport::ALL.len()],
    connections_open: [AtomicU64; Transport::ALL.len()],
    connections_total: [AtomicU64; Transport::ALL.len()],
    connections_refused: [AtomicU64; Transport::ALL.len()],
    backpressure_waits: [AtomicU64; Transport::ALL.len()],
    relp_closed_busy: AtomicU64,
    /// Inodes of the UDP sockets, to find their rows in /proc/net/udp.
    udp_inodes: Mutex<Vec<u64>>,
}

impl SyslogMetrics {
    fn count(&self, transport: Transport, outcome: Outcome, n: usize) {
        if n > 0 {
            let i = Outcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0);
            self.messages[transport.index()][i].fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Appends the syslog metrics to a Prometheus exposition.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        // Connection families: only the connected transports.
        let mut family = |name: &str, kind: &str, help: &str, values: &[AtomicU64; 3]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for t in [Transport::Tcp, Transport::Relp] {
                let n = values[t.index()].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{transport=\"{}\"}} {n}", t.name());
            }
        };
        family(
            "helios_syslog_connections",
            "gauge",
            "Syslog TCP and RELP connections open.",
            &self.connections_open,
        );
        family(
            "helios_syslog_connections_total",
            "counter",
            "Syslog TCP and RELP connections accepted.",
            &self.connections_total,
        );
        family(
            "helios_syslog_connections_refused_total",
            "counter",
            "Syslog connections closed at once: the core was at --max-connections-per-core.",
            &self.connections_refused,
        );
        family(
            "helios_syslog_backpressure_waits_total",
            "counter",
            "Times a syslog connection stopped reading because the journal could not take its batch (budget full, journal failed, commit failed).",
            &self.backpressure_waits,
        );
        let _ = writeln!(
            out,
            "# HELP helios_syslog_messages_total Syslog messages by transport and outcome: accepted (durable), rejected (by validation), too_big (over --syslog-max-message-bytes), dropped (UDP: the journal could not take it).\n# TYPE helios_syslog_messages_total counter"
        );
        for t in Transport::ALL {
            for (i, o) in Outcome::ALL.iter().enumerate() {
                let n = self.messages[t.index()][i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "helios_syslog_messages_total{{transport=\"{}\",outcome=\"{}\"}} {n}",
                    t.name(),
                    o.name()
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP helios_syslog_relp_closed_busy_total RELP connections closed with serverclose after holding frames the journal could not take for the hold limit (omrelp resends them).\n# TYPE helios_syslog_relp_closed_busy_total counter\nhelios_syslog_relp_closed_busy_total {}",
            self.relp_closed_busy.load(Ordering::Relaxed)
        );
        let inodes = self
            .udp_inodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !inodes.is_empty() {
            let _ = writeln!(
                out,
                "# HELP helios_syslog_udp_kernel_drops Datagrams the kernel dropped on the syslog UDP sockets (a full SO_RCVBUF; the drops column of /proc/net/udp).\n# TYPE helios_syslog_udp_kernel_drops gauge\nhelios_syslog_udp_kernel_drops {}",
                udp_kernel_drops(&inodes)
            );
        }
    }
}

/// The sum of the `drops` column of `/proc/net/udp` and `/proc/net/udp6`
/// over the rows of these socket inodes (0 where /proc cannot be read).
fn udp_kernel_drops(inodes: &[u64]) -> u64 {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| proc_net_udp_drops(&table, inodes))
        .sum()
}

/// The drops of `inodes` in one `/proc/net/udp` table: rows are
/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer
/// drops`.
fn proc_net_udp_drops(table: &str, inodes: &[u64]) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let inode: u64 = fields.get(9)?.parse().ok()?;
            let drops: u64 = fields.get(12)?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

/// One core's syslog sockets, bound before the core reports itself
/// started (a taken port is a start-up error).
#[derive(Default)]
pub struct Listeners {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    relp: Option<TcpListener>,
}

/// Binds the configured syslog sockets of core `core` (call on the core's
/// runtime). Core 0 logs each listener, and for UDP the receive buffer
/// the kernel granted.
pub fn bind(cfg: &SyslogConfig, core: usize) -> anyhow::Result<Listeners> {
    let mut listeners = Listeners::default();
    if let Some(addr) = cfg.udp {
        let (socket, granted) = bind_udp(addr, cfg.udp_rcvbuf_bytes).map_err(|e| {
            anyhow::anyhow!("core {core}: cannot listen on {addr} (--syslog-udp): {e}")
        })?;
        if core == 0 {
            tracing::info!(
                listen = %addr,
                rcvbuf_requested_bytes = cfg.udp_rcvbuf_bytes,
                rcvbuf_granted_bytes = granted,
                "syslog udp listening (kernel SO_RCVBUF granted {granted} bytes; net.core.rmem_max caps it)"
            );
        }
        listeners.udp = Some(socket);
    }
    for (slot, addr, flag, what) in [
        (&mut listeners.tcp, cfg.tcp, "--syslog-tcp", "syslog tcp"),
        (&mut listeners.relp, cfg.relp, "--relp", "syslog relp"),
    ] {
        if let Some(addr) = addr {
            let listener = server::bind(addr).map_err(|e| {
                anyhow::anyhow!("core {core}: cannot listen on {addr} ({flag}): {e}")
            })?;
            if core == 0 {
                tracing::info!(listen = %addr, "{what} listening");
            }
            *slot = Some(listener);
        }
    }
    Ok(listeners)
}

/// A SO_REUSEPORT UDP socket with the receive buffer asked for; the size
/// the kernel granted (it doubles the request for its bookkeeping and
/// caps it at `net.core.rmem_max`).
fn bind_udp(addr: SocketAddr, rcvbuf_bytes: usize) -> io::Result<(UdpSocket, usize)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_recv_buffer_size(rcvbuf_bytes)?;
    // Reads are ours (MSG_DONTWAIT after readiness), on either driver.
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size()?;
    Ok((UdpSocket::from_std(socket.into())?, granted))
}

/// What every syslog task of a core shares.
struct Intake {
    core: Rc<Core>,
    shutdown: Arc<Shutdown>,
    rule: TypeRule,
    app: String,
    max_message_bytes: usize,
    /// Messages per batch: [`MAX_BATCH_MESSAGES`] or fewer, never past
    /// `--max-events-per-request` (the validator's limit).
    batch_messages: usize,
    metrics: Arc<SyslogMetrics>,
}

/// Starts the core's syslog tasks on its runtime.
pub fn spawn(core: &Rc<Core>, listeners: Listeners, shutdown: &Arc<Shutdown>) {
    let cfg: &Config = core.cfg();
    let intake = Rc::new(Intake {
        core: Rc::clone(core),
        shutdown: Arc::clone(shutdown),
        rule: cfg.shipper_types.syslog.clone(),
        app: cfg.syslog.app.clone(),
        max_message_bytes: cfg.syslog.max_message_bytes,
        batch_messages: MAX_BATCH_MESSAGES.min(cfg.max_events_per_request),
        metrics: Arc::clone(&core.registry().syslog),
    });
    if let Some(socket) = listeners.udp {
        let inode = socket_inode(&socket);
        intake
            .metrics
            .udp_inodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(inode);
        monoio::spawn(serve_udp(Rc::clone(&intake), socket));
    }
    if let Some(listener) = listeners.tcp {
        monoio::spawn(accept(Rc::clone(&intake), listener, Transport::Tcp));
    }
    if let Some(listener) = listeners.relp {
        monoio::spawn(accept(intake, listener, Transport::Relp));
    }
}

/// The inode of a socket (its row in /proc/net/udp).
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    // SAFETY: fstat on a descriptor we own, into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstat(socket.as_raw_fd(), &mut st) };
    (rc == 0).then_some(st.st_ino)
}

/// The receive context of a batch: now, and the collector's zone offset
/// now (the zone of an RFC 3164 time).
fn context() -> Context {
    let recv_ms = server::now_ms();
    Context {
        recv_ms,
        utc_offset_s: utc_offset_s(recv_ms),
    }
}

/// The local zone's offset from UTC at `ms`, seconds east (0 where the
/// C library cannot tell).
fn utc_offset_s(ms: i64) -> i32 {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; glibc reads
    // the zone once (TZ or /etc/localtime) and caches it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if ok {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    } else {
        0
    }
}

/// How a batch ended.
enum Commit {
    /// Durable; lines the validation refused alone are listed (0-based,
    /// with why).
    Durable { rejected: Vec<(usize, String)> },
    /// Can never be journaled (over the record limit, a defect): why.
    Refused(String),
    /// The journal could not take it now (UDP drops it; TCP and RELP
    /// retry).
    Busy(String),
}

/// Journals a batch once and waits until it is durable.
async fn commit_once(intake: &Intake, batch: &Translation, recv_ms: i64) -> Commit {
    let core = &intake.core;
    match server::journal_lines(core, &batch.ndjson, &intake.app, recv_ms) {
        Ok(journaled) => {
            if let Some(ticket) = journaled.ticket {
                // Shutdown waits for this commit before closing the journal.
                let _in_flight = core.in_flight();
                if let Err(e) = ticket.durable().await {
                    return Commit::Busy(format!("journal commit failed: {e}"));
                }
            }
            Commit::Durable {
                rejected: journaled.rejected,
            }
        }
        Err(TranslationRefusal::Journal(JournalRefusal::Busy(detail))) => Commit::Busy(detail),
        Err(TranslationRefusal::Journal(JournalRefusal::TooLarge)) => {
            Commit::Refused("the batch exceeds the journal record limit".into())
        }
        Err(TranslationRefusal::Journal(JournalRefusal::Internal)) => {
            Commit::Refused("cannot frame the accepted events".into())
        }
        Err(TranslationRefusal::TooManyEvents) => {
            // Batches stop at --max-events-per-request.
            debug_assert!(false, "a syslog batch exceeded --max-events-per-request");
            Commit::Refused("more messages than --max-events-per-request".into())
        }
        Err(TranslationRefusal::Invalid(detail)) => Commit::Refused(detail),
    }
}

/// Journals a batch, retrying with backoff while the journal cannot take
/// it (the connection reads nothing meanwhile: backpressure), until it is
/// durable, refused for good, `hold` has passed (`Busy`), or shutdown
/// (`Busy`).
async fn commit_holding(
    intake: &Intake,
    batch: &Translation,
    recv_ms: i64,
    transport: Transport,
    hold: Option<Duration>,
) -> Commit {
    let started = Instant::now();
    let mut backoff = RETRY_BACKOFF_MIN;
    let mut waited = false;
    loop {
        match commit_once(intake, batch, recv_ms).await {
            Commit::Busy(detail) => {
                if !waited {
                    waited = true;
                    intake.metrics.backpressure_waits[transport.index()]
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(core = intake.core.index(), transport = transport.name(), %detail, "syslog batch waits for the journal; reading stops");
                }
                let held_too_long = hold.is_some_and(|hold| started.elapsed() >= hold);
                if held_too_long || intake.shutdown.is_set() {
                    return Commit::Busy(detail);
                }
                monoio::select! {
                    _ = monoio::time::sleep(backoff) => {}
                    _ = intake.shutdown.wait() => return Commit::Busy(detail),
                }
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            }
            done => return done,
        }
    }
}

/// Counts a finished batch of `messages` messages.
fn count_commit(intake: &Intake, transport: Transport, messages: usize, commit: &Commit) {
    let m = &intake.metrics;
    match commit {
        Commit::Durable { rejected } => {
            m.count(transport, Outcome::Accepted, messages - rejected.len());
            m.count(transport, Outcome::Rejected, rejected.len());
        }
        Commit::Refused(detail) => {
            tracing::warn!(core = intake.core.index(), transport = transport.name(), messages, %detail, "syslog batch refused");
            m.count(transport, Outcome::TooBig, messages);
        }
        Commit::Busy(detail) => {
            if transport == Transport::Udp {
                m.count(transport, Outcome::Dropped, messages);
                tracing::debug!(core = intake.core.index(), messages, %detail, "syslog udp datagrams dropped: the journal cannot take them");
            }
        }
    }
}

/// Empties a batch for reuse, freeing an unusually large buffer.
fn reset(batch: &mut Translation) {
    batch.clear();
    if batch.ndjson.capacity() > KEEP_BATCH_CAPACITY_BYTES {
        batch.ndjson = Vec::new();
        batch.items = Vec::new();
    }
}

/// Whether a batch is full.
fn full(intake: &Intake, batch: &Translation) -> bool {
    batch.items.len() >= intake.batch_messages || batch.ndjson.len() >= MAX_BATCH_BYTES
}

/// UDP: waits for a datagram, drains what the socket holds (up to a
/// batch), journals the batch as one record, waits for it, repeats.
/// Datagrams arriving during the commit wait in the socket buffer and make
/// the next batch.
async fn serve_udp(intake: Rc<Intake>, socket: UdpSocket) {
    let mut buf = vec![0u8; MAX_UDP_DATAGRAM_BYTES];
    let mut batch = Translation::default();
    let fd = socket.as_raw_fd();
    loop {
        monoio::select! {
            ready = socket.readable(false) => {
                if let Err(e) = ready {
                    tracing::warn!(core = intake.core.index(), error = %e, "syslog udp socket failed");
                    monoio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            }
            _ = intake.shutdown.wait() => return,
        }
        if intake.core.shutting_down() {
            return;
        }
        let ctx = context();
        let mut too_big = 0;
        while !full(&intake, &batch) {
            // SAFETY: recv into our buffer of `buf.len()` bytes.
            let n = unsafe {
                libc::recv(
                    fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
                    tracing::warn!(core = intake.core.index(), error = %e, "syslog udp read failed");
                }
                break;
            }
            // MSG_TRUNC: `n` is the datagram's whole length.
            let n = n as usize;
            if n > buf.len() {
                too_big += 1;
                continue;
            }
            match parse::udp_message(&buf[..n], intake.max_message_bytes) {
                Ok(Some(message)) => parse::translate(message, &intake.rule, &ctx, &mut batch),
                Ok(None) => {}
                Err(_) => too_big += 1,
            }
        }
        intake
            .metrics
            .count(Transport::Udp, Outcome::TooBig, too_big);
        if batch.items.is_empty() {
            continue;
        }
        let commit = commit_once(&intake, &batch, ctx.recv_ms).await;
        count_commit(&intake, Transport::Udp, batch.items.len(), &commit);
        reset(&mut batch);
    }
}

/// Accepts TCP or RELP connections until shutdown.
async fn accept(intake: Rc<Intake>, listener: TcpListener, transport: Transport) {
    let i = transport.index();
    loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match intake.core.connection_slot() {
                    Some(slot) => {
                        intake.metrics.connections_total[i].fetch_add(1, Ordering::Relaxed);
                        let conn = Connection::new(Rc::clone(&intake), stream, slot, transport);
                        match transport {
                            Transport::Relp => monoio::spawn(serve_relp(conn)),
                            _ => monoio::spawn(serve_tcp(conn)),
                        };
                    }
                    None => {
                        // Closing at once tells the sender to try later
                        // (rsyslog retries the connection).
                        intake.metrics.connections_refused[i].fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    }
                },
                Err(e) => {
                    tracing::warn!(core = intake.core.index(), error = %e, "syslog accept failed");
                    monoio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            _ = intake.shutdown.wait() => return,
        }
    }
}

/// One TCP or RELP connection's state.
struct Connection {
    intake: Rc<Intake>,
    stream: TcpStream,
    transport: Transport,
    read_buf: Vec<u8>,
    batch: Translation,
    _slot: ConnectionSlot,
}

impl Connection {
    fn new(
        intake: Rc<Intake>,
        stream: TcpStream,
        slot: ConnectionSlot,
        transport: Transport,
    ) -> Connection {
        intake.metrics.connections_open[transport.index()].fetch_add(1, Ordering::Relaxed);
        Connection {
            intake,
            stream,
            transport,
            read_buf: Vec::new(),
            batch: Translation::default(),
            _slot: slot,
        }
    }

    /// Reads what the peer sent next: `Some(bytes)` (never empty), or
    /// `None` at its end, an error, or shutdown.
    async fn read(&mut self) -> Option<&[u8]> {
        monoio::select! {
            ready = self.stream.readable(false) => ready.ok()?,
            _ = self.intake.shutdown.wait() => return None,
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.clear();
        buf.reserve(READ_CHUNK_BYTES);
        let (result, buf) = self.stream.read(buf).await;
        self.read_buf = buf;
        match result {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(&self.read_buf[..n]),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.intake.metrics.connections_open[self.transport.index()]
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Plain syslog over TCP: frames messages, journals one record per batch,
/// and stops reading while the journal cannot take it. Nothing is
/// answered (the protocol has no answers).
async fn serve_tcp(mut conn: Connection) {
    let intake = Rc::clone(&conn.intake);
    let mut framer = TcpFramer::new(intake.max_message_bytes);
    let mut ended = false;
    loop {
        let ctx = context();
        let mut too_big = 0;
        let mut drained = false;
        while !full(&intake, &conn.batch) {
            match framer.next_message() {
                Ok(Some(message)) => parse::translate(message, &intake.rule, &ctx, &mut conn.batch),
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(_) => too_big += 1,
            }
        }
        if drained && ended {
            // The sender closed after a line without its LF: keep it.
            if let Some(message) = framer.finish() {
                parse::translate(message, &intake.rule, &ctx, &mut conn.batch);
            }
        }
        intake
            .metrics
            .count(Transport::Tcp, Outcome::TooBig, too_big);
        if !conn.batch.items.is_empty() {
            let commit =
                commit_holding(&intake, &conn.batch, ctx.recv_ms, Transport::Tcp, None).await;
            count_commit(&intake, Transport::Tcp, conn.batch.items.len(), &commit);
            reset(&mut conn.batch);
            if matches!(commit, Commit::Busy(_)) {
                // Only shutdown ends the hold: what was read is lost, as
                // with any syslog server that stops (TCP syslog has no
                // acknowledgement to resend from).
                return;
            }
        }
        if ended && drained {
            return;
        }
        if !drained {
            continue; // a full batch: more messages are already buffered
        }
        match conn.read().await {
            Some(bytes) => framer.push(bytes),
            None => ended = true,
        }
    }
}

/// The end of a RELP session, answered after the frames before it.
enum SessionEnd {
    /// `close`: answer it, then close.
    Close(u32),
    /// A protocol error: its last words, then close.
    Error(relp::RelpError),
}

/// RELP: frames are translated into a batch as they are read; once the
/// batch is durable each frame gets `200 OK` (or `500` if it can never
/// succeed), in frame order, with one write.
async fn serve_relp(mut conn: Connection) {
    let intake = Rc::clone(&conn.intake);
    let mut session = relp::RelpSession::new(intake.max_message_bytes);
    let mut txnrs: Vec<u32> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    loop {
        let ctx = context();
        let mut end = None;
        let mut drained = false;
        while !full(&intake, &conn.batch) {
            match session.next_request() {
                Ok(Some(relp::Request::Open { txnr })) => relp::render_open(txnr, &mut out),
                Ok(Some(relp::Request::Syslog { txnr, message })) => {
                    parse::translate(message, &intake.rule, &ctx, &mut conn.batch);
                    txnrs.push(txnr);
                }
                Ok(Some(relp::Request::Close { txnr })) => {
                    end = Some(SessionEnd::Close(txnr));
                    break;
                }
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(error) => {
                    end = Some(SessionEnd::Error(error));
                    break;
                }
            }
        }
        if !txnrs.is_empty() {
            let commit = commit_holding(
                &intake,
                &conn.batch,
                ctx.recv_ms,
                Transport::Relp,
                Some(RELP_MAX_HOLD),
            )
            .await;
            count_commit(&intake, Transport::Relp, txnrs.len(), &commit);
            match &commit {
                Commit::Durable { rejected } => {
                    let mut rejected = rejected.iter().peekable();
                    for (line, &txnr) in txnrs.iter().enumerate() {
                        match rejected.next_if(|(index, _)| *index == line) {
                            Some((_, why)) => relp::render_refused(txnr, why, &mut out),
                            None => relp::render_ok(txnr, &mut out),
                        }
                    }
                }
                Commit::Refused(why) => {
                    for &txnr in &txnrs {
                        relp::render_refused(txnr, why, &mut out);
                    }
                }
                Commit::Busy(detail) => {
                    // Never 500 (omrelp would drop the frames): close
                    // with them unanswered; omrelp resends them.
                    if !intake.shutdown.is_set() {
                        intake
                            .metrics
                            .relp_closed_busy
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(core = intake.core.index(), frames = txnrs.len(), %detail, "relp: the journal took no batch for {} s; serverclose, the client resends", RELP_MAX_HOLD.as_secs());
                    }
                    relp::render_serverclose(&mut out);
                    let _ = conn.stream.write_all(out).await;
                    return;
                }
            }
            txnrs.clear();
            reset(&mut conn.batch);
        }
        let ending = end.is_some();
        match end {
            Some(SessionEnd::Close(txnr)) => relp::render_close(txnr, &mut out),
            Some(SessionEnd::Error(error)) => {
                if matches!(error, relp::RelpError::DataTooLong { .. }) {
                    intake.metrics.count(Transport::Relp, Outcome::TooBig, 1);
                }
                tracing::debug!(core = intake.core.index(), %error, "relp session ends");
                error.render(&mut out);
            }
            None => {}
        }
        if !out.is_empty() {
            let (result, written) = conn.stream.write_all(out).await;
            out = written;
            out.clear();
            if result.is_err() {
                return;
            }
        }
        if ending {
            return;
        }
        if !drained {
            continue; // a full batch: more frames are already buffered
        }
        match conn.read().await {
            Some(bytes) => session.push(bytes),
            None => {
                if intake.shutdown.is_set() {
                    // Tell the client now; it resends what is unanswered.
                    relp::render_serverclose(&mut out);
                    let _ = conn.stream.write_all(out).await;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_drops_are_summed_over_our_sockets_rows_only() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  123: 0100007F:3039 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 17\n\
  124: 0100007F:303A 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4343 2 0000000000000000 5\n\
  125: 0100007F:303B 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 9999 2 0000000000000000 100\n\
  garbage row\n";
        assert_eq!(proc_net_udp_drops(table, &[4242, 4343]), 22);
        assert_eq!(proc_net_udp_drops(table, &[1]), 0);
        assert_eq!(proc_net_udp_drops("", &[4242]), 0);
    }

    #[test]
    fn the_zone_offset_is_whole_seconds_within_a_day() {
        let offset = utc_offset_s(1_796_642_895_000);
        assert!(offset.abs() < 86_400, "{offset}");
    }

    #[test]
    fn every_transport_and_outcome_is_rendered() {
        let m = SyslogMetrics::default();
        m.count(Transport::Relp, Outcome::Accepted, 3);
        m.count(Transport::Udp, Outcome::TooBig, 2);
        let mut text = String::new();
        m.render(&mut text);
        assert!(
            text.contains(
                "helios_syslog_messages_total{transport=\"relp\",outcome=\"accepted\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains("helios_syslog_messages_total{transport=\"udp\",outcome=\"too_big\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("helios_syslog_messages_total{transport=\"tcp\",outcome=\"dropped\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("helios_syslog_udp_kernel_drops"),
            "no UDP socket, no drops line"
        );
    }
}
