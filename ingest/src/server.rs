//! One collector core: a monoio runtime (io_uring, or epoll where the host
//! refuses io_uring: `collector::choose_io_driver`) with its own
//! SO_REUSEPORT listener and journal. Connections are served by tasks on
//! this core only; nothing on the request path is shared with other cores.
//! The code is the same on both drivers: monoio's sockets, timers and the
//! idle wait (`readable`, a poll on io_uring, readiness on epoll) follow
//! the runtime; only the journal's commits change path (its writer thread
//! on epoll), never the ack rule.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use helios_journal::{Journal, JournalConfig, JournalError, RecordMeta, Ticket};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, CancelableAsyncReadRent};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};

use crate::auth::{ApiKeys, AuthError, Role};
use crate::config::Config;
use crate::decode::{gunzip_limited, unzstd_limited, GunzipError, UnzstdError};
use crate::events::{self, IdMinter};
use crate::flusher::Feed;
use crate::http::{
    self, ChunkProgress, ChunkedDecoder, Encoding, Framing, HttpError, HttpLimits, Method,
    RequestHead, Route,
};
use crate::metrics::{CoreMetrics, Metrics};
use crate::response::{
    error_body, error_name, json_string, write_response, write_response_with, ResponseHead,
    CONTENT_TYPE_JSON, CONTENT_TYPE_PROMETHEUS,
};
use crate::shutdown::Shutdown;

/// Initial read buffer of a connection; it grows up to the request limits.
const READ_CHUNK_BYTES: usize = 16 << 10;
/// Listen backlog per core.
const LISTEN_BACKLOG: i32 = 4096;
/// How often shutdown re-checks for in-flight requests.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// Most buffers a core keeps for reuse; beyond that they are freed.
const BUFFER_POOL_MAX: usize = 256;

/// Read and write buffers recycled between this core's connections, so an
/// idle connection holds none and a busy one allocates none.
#[derive(Default)]
struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK_BYTES))
    }

    fn put(&self, mut buf: Vec<u8>) {
        // Keep only ordinary buffers: one grown for a big body is freed.
        if buf.capacity() == 0 || buf.capacity() > 4 * READ_CHUNK_BYTES {
            return;
        }
        let mut free = self.free.borrow_mut();
        if free.len() < BUFFER_POOL_MAX {
            buf.clear();
            free.push(buf);
        }
    }
}

/// Per-core state shared by this core's connection tasks (never across
/// cores: `Rc`, `Cell`, `RefCell`).
pub struct Core {
    index: usize,
    cfg: Config,
    http_limits: HttpLimits,
    journal: RefCell<Rc<Journal>>,
    reopen: JournalReopen,
    metrics: Arc<CoreMetrics>,
    registry: Arc<Metrics>,
    api_keys: Option<Arc<ApiKeys>>,
    minter: RefCell<IdMinter>,
    scratch: RefCell<Scratch>,
    shutting_down: Cell<bool>,
    in_flight: Cell<usize>,
    connections: Cell<usize>,
    /// Request-body bytes this core's connections hold while bodies arrive
    /// (`--max-buffered-body-bytes-per-core`).
    buffered_body_bytes: Cell<usize>,
    buffers: BufferPool,
    /// The shippers' decoder settings (from `cfg`).
    shipper_settings: helios_shippers::Settings,
    /// This core's journal budget thresholds by priority (from `cfg`,
    /// computed once: every journaled request compares against them).
    priority_budget: events::PriorityBudget,
}

/// Buffers reused by every request on this core (requests are processed
/// synchronously between awaits, so one set suffices).
#[derive(Default)]
struct Scratch {
    decoded: Vec<u8>,
    validation: events::Validation,
    /// A shipper request's body as Helios events.
    translation: helios_shippers::Translation,
}

/// A response waiting to be written, in request order.
struct Pending {
    status: u16,
    body: std::ops::Range<usize>,
    keep_alive: bool,
    http10: bool,
    /// Present when the response may only go out once the record is durable.
    ticket: Option<Ticket>,
    /// Events accepted and rejected (counted once the response is final).
    events: (u64, u64),
    /// `Content-Type` of the body.
    content_type: &'static str,
    /// Send `Retry-After`.
    retry_after: bool,
    /// Extra header lines (a shipper protocol's).
    extra_headers: &'static str,
    /// For a 405: the methods the path takes.
    allow: Option<&'static str>,
    /// A `HEAD` request: send the head only.
    omit_body: bool,
    /// A shipper request's answer should its commit fail, rendered in its
    /// protocol's shape (Helios's own requests get `error_body`).
    commit_failure: Option<(helios_shippers::Answer, std::ops::Range<usize>)>,
}

impl Pending {
    /// A JSON answer with nothing to wait for.
    fn json(status: u16, body: std::ops::Range<usize>, keep_alive: bool, http10: bool) -> Pending {
        Pending {
            status,
            body,
            keep_alive,
            http10,
            ticket: None,
            events: (0, 0),
            content_type: CONTENT_TYPE_JSON,
            retry_after: status == 503,
            extra_headers: "",
            allow: None,
            omit_body: false,
            commit_failure: None,
        }
    }

    /// Takes a shipper protocol's answer (status, content type, headers).
    fn answer(&mut self, answer: &helios_shippers::Answer) {
        self.status = answer.status;
        self.content_type = answer.content_type;
        self.retry_after = answer.retry_after;
        self.extra_headers = answer.headers;
    }
}

/// What `/v1/events` takes.
const ALLOW_EVENTS: &str = "POST";
/// What the read-only paths take.
const ALLOW_READ: &str = "GET, HEAD";

impl Core {
    /// Sets up the core around an opened journal.
    pub fn new(
        index: usize,
        cfg: Config,
        journal: Journal,
        reopen: JournalReopen,
        minter: IdMinter,
        registry: Arc<Metrics>,
        api_keys: Option<Arc<ApiKeys>>,
    ) -> Rc<Core> {
        let http_limits = HttpLimits {
            max_header_bytes: cfg.max_header_bytes,
            max_headers: cfg.max_headers,
            max_body_bytes: cfg.max_body_bytes,
        };
        let shipper_settings = cfg.shipper_settings();
        let priority_budget = cfg.priority_budget_per_core();
        Rc::new(Core {
            index,
            cfg,
            http_limits,
            journal: RefCell::new(Rc::new(journal)),
            reopen,
            metrics: registry.core(index),
            registry,
            api_keys,
            minter: RefCell::new(minter),
            scratch: RefCell::new(Scratch::default()),
            shutting_down: Cell::new(false),
            in_flight: Cell::new(0),
            connections: Cell::new(0),
            buffered_body_bytes: Cell::new(0),
            buffers: BufferPool::default(),
            shipper_settings,
            priority_budget,
        })
    }

    /// The core's current journal (replaced when it is reopened after a
    /// failure).
    pub fn journal(&self) -> Rc<Journal> {
        Rc::clone(&self.journal.borrow())
    }

    /// Its index (it owns journal `index`).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The collector's configuration.
    pub(crate) fn cfg(&self) -> &Config {
        &self.cfg
    }

    /// Every metric of the collector.
    pub(crate) fn registry(&self) -> &Arc<Metrics> {
        &self.registry
    }

    /// Shutdown has begun: take no new work.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    /// A place under `--max-connections-per-core` (shared by every
    /// listener of the core: one descriptor budget), or `None` at it.
    pub(crate) fn connection_slot(self: &Rc<Core>) -> Option<ConnectionSlot> {
        (self.connections.get() < self.cfg.max_connections_per_core)
            .then(|| ConnectionSlot::take(self))
    }

    /// Marks work whose commit shutdown must wait for, while it lives.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.set(self.in_flight.get() + 1);
        InFlight(self)
    }
}

/// Work in flight on a core (see [`Core::in_flight`]).
pub(crate) struct InFlight<'a>(&'a Core);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// What a core needs to reopen its journal after a write failure.
pub struct JournalReopen {
    /// The journal directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub cfg: JournalConfig,
    /// Hands the reopened journal's reader and checkpointer to the flusher.
    pub feeds: std::sync::mpsc::Sender<Feed>,
}

/// First and longest pause between attempts to reopen a failed journal.
const REOPEN_BACKOFF_MIN: Duration = Duration::from_millis(50);
const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often a core checks its journal's health.
const JOURNAL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Watches the core's journal; after a failed write or fdatasync it closes
/// it and reopens it from disk (recovery) with backoff, meanwhile requests
/// get 503 from the failed journal's appends. Acked data is untouched: a
/// failed group was never acknowledged.
pub async fn supervise_journal(core: Rc<Core>, shutdown: Arc<Shutdown>) {
    let mut backoff = REOPEN_BACKOFF_MIN;
    while !shutdown.is_set() {
        monoio::time::sleep(JOURNAL_CHECK_INTERVAL).await;
        let current = core.journal();
        if !current.is_failed() {
            continue;
        }
        tracing::error!(core = core.index, "journal failed; reopening it from disk");
        let _ = current.close().await;
        drop(current);
        loop {
            match Journal::open(&core.reopen.dir, core.reopen.cfg.clone()).await {
                Ok(journal) => {
                    let report = journal.recovery_report();
                    let checkpointer = journal.checkpointer();
                    let feed = Feed {
                        name: core.reopen.dir.display().to_string(),
                        reader: journal.reader(checkpointer.current().seq),
                        checkpointer,
                    };
                    core.registry.set_journal(&feed.name, journal.monitor());
                    *core.journal.borrow_mut() = Rc::new(journal);
                    if core.reopen.feeds.send(feed).is_err() {
                        tracing::error!(
                            core = core.index,
                            "flusher gone; reopened journal will drain on the next start"
                        );
                    }
                    tracing::info!(
                        core = core.index,
                        last_seq = report.last_seq,
                        torn = report.torn_commits,
                        "journal reopened"
                    );
                    backoff = REOPEN_BACKOFF_MIN;
                    break;
                }
                Err(e) => {
                    tracing::error!(core = core.index, error = %e, retry_in_ms = backoff.as_millis() as u64, "journal reopen failed");
                    monoio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(REOPEN_BACKOFF_MAX);
                    if shutdown.is_set() {
                        return;
                    }
                }
            }
        }
    }
}

/// Binds this core's SO_REUSEPORT listener.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(LISTEN_BACKLOG);
    TcpListener::bind_with_config(addr, &opts)
}

/// Accepts and serves until shutdown, then drains in-flight requests (up to
/// the deadline) and closes the journal (committing what is pending).
pub async fn run(core: Rc<Core>, listener: TcpListener, shutdown: Arc<Shutdown>) {
    monoio::spawn(supervise_journal(Rc::clone(&core), Arc::clone(&shutdown)));
    loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    if core.connections.get() >= core.cfg.max_connections_per_core {
                        monoio::spawn(refuse(stream));
                    } else {
                        monoio::spawn(serve(Rc::clone(&core), stream));
                    }
                }
                Err(e) => {
                    tracing::warn!(core = core.index, error = %e, "accept failed");
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.wait() => break,
        }
    }
    drop(listener);
    core.shutting_down.set(true);
    let deadline = std::time::Instant::now() + Duration::from_millis(core.cfg.shutdown_deadline_ms);
    while core.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        monoio::time::sleep(SHUTDOWN_POLL).await;
    }
    let journal = core.journal();
    if let Err(e) = journal.close().await {
        tracing::error!(core = core.index, error = %e, "journal close failed");
    }
    let stats = journal.stats();
    tracing::info!(
        core = core.index,
        commits = stats.commits,
        records = stats.records,
        bytes = stats.bytes,
        records_per_commit = stats.records as f64 / stats.commits.max(1) as f64,
        "core stopped"
    );
}

/// Answers a connection over the per-core limit with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let mut body = Vec::new();
    error_body(
        &mut body,
        "unavailable",
        "too many connections; retry later",
    );
    let mut out = Vec::new();
    write_response(&mut out, 503, &body, false, false);
    let _ = stream.write_all(out).await;
}

/// Most time a refused connection is given to finish sending its body
/// before it is closed (nginx's `lingering_timeout` idea).
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Closes a connection whose request was refused before its body was read:
/// the answer is already written; shut down our sending side, then read
/// and discard what the client still sends (up to `--max-body-bytes` or
/// [`LINGER_TIMEOUT`]) before closing. Closing at once, with unread bytes
/// in the socket, makes the kernel answer with a reset that can reach the
/// client before our answer, which it then never reads (exporters retry a
/// reset as if the server had failed).
async fn linger_close(core: &Core, mut stream: TcpStream) {
    use monoio::io::AsyncWriteRent;
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + LINGER_TIMEOUT;
    let mut discarded = 0usize;
    let mut buf = core.buffers.take();
    buf.clear();
    while discarded <= core.cfg.max_body_bytes {
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            break;
        }
        let read = stream.read(buf);
        let Ok((result, returned)) = monoio::time::timeout(remaining, read).await else {
            return;
        };
        buf = returned;
        match result {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
        buf.clear();
    }
    core.buffers.put(buf);
}

/// Counts a connection for the per-core limit while it lives.
pub(crate) struct ConnectionSlot(Rc<Core>);

impl ConnectionSlot {
    fn take(core: &Rc<Core>) -> ConnectionSlot {
        core.connections.set(core.connections.get() + 1);
        ConnectionSlot(Rc::clone(core))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get() - 1);
    }
}

/// The share of the core's body budget a connection holds while its
/// request body arrives; given back when the request is handled or the
/// connection ends.
struct BodyReservation {
    core: Rc<Core>,
    bytes: usize,
}

impl BodyReservation {
    /// Holds `bytes` in all (more only, never less); false when the core's
    /// budget cannot give that much.
    fn grow_to(&mut self, bytes: usize) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        let extra = bytes - self.bytes;
        let held = self.core.buffered_body_bytes.get();
        if held + extra > self.core.cfg.max_buffered_body_bytes_per_core {
            return false;
        }
        self.core.buffered_body_bytes.set(held + extra);
        self.bytes = bytes;
        true
    }

    fn release(&mut self) {
        let held = self.core.buffered_body_bytes.get();
        debug_assert!(held >= self.bytes);
        self.core.buffered_body_bytes.set(held - self.bytes);
        self.bytes = 0;
    }
}

impl Drop for BodyReservation {
    fn drop(&mut self) {
        self.release();
    }
}

/// What a connection is waiting for, which decides its read deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Between requests: `--idle-timeout-ms`, then a silent close.
    Idle,
    /// Inside a request head: `--header-timeout-ms` from its first byte.
    Head,
    /// Inside a body: `--body-timeout-ms` from the first byte of the request.
    Body,
}

/// Serves one connection: reads, handles every complete request in the
/// buffer (appending accepted events to the journal), awaits their commit
/// once, writes the responses in order.
async fn serve(core: Rc<Core>, mut stream: TcpStream) {
    let _slot = ConnectionSlot::take(&core);
    let mut conn = Conn {
        // A client that just connected is about to send.
        hot: true,
        canceller: monoio::io::Canceller::new(),
        inbuf: Vec::new(),
        out: Vec::new(),
        responses: Responses::default(),
        chunked: None,
        sent_continue: false,
        request_started: None,
        reservation: BodyReservation {
            core: Rc::clone(&core),
            bytes: 0,
        },
    };
    loop {
        let consumed = conn.handle_buffered(&core);
        conn.inbuf.drain(..consumed);
        if !conn.responses.pending.is_empty() {
            core.in_flight.set(core.in_flight.get() + 1);
            conn.responses.finish(&core, &mut conn.out).await;
            let out = std::mem::take(&mut conn.out);
            let (result, mut out) = stream.write_all(out).await;
            out.clear();
            conn.out = out;
            core.in_flight.set(core.in_flight.get() - 1);
            if result.is_err() {
                return;
            }
        }
        if conn.responses.close && conn.responses.linger {
            linger_close(&core, stream).await;
            return;
        }
        if conn.responses.close || (core.shutting_down.get() && conn.inbuf.is_empty()) {
            return;
        }
        if consumed > 0 && !conn.inbuf.is_empty() {
            // A request may be complete already but had to wait its turn
            // (a chunked one is decoded only from the start of the buffer,
            // and at most --max-pipelined-requests are handled per batch).
            continue;
        }
        if conn.wants_continue() {
            let (result, _) = stream
                .write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..])
                .await;
            if result.is_err() {
                return;
            }
            conn.sent_continue = true;
        }
        let waiting = conn.waiting(consumed > 0);
        let limit_ms = match waiting {
            Waiting::Idle => core.cfg.idle_timeout_ms,
            Waiting::Head => core.cfg.header_timeout_ms,
            Waiting::Body => core.cfg.body_timeout_ms,
        };
        let started = conn.request_started.unwrap_or_else(std::time::Instant::now);
        let remaining = Duration::from_millis(limit_ms).saturating_sub(started.elapsed());
        if waiting == Waiting::Idle {
            core.buffers.put(std::mem::take(&mut conn.out));
            let gap_started = std::time::Instant::now();
            match hot_read(&core, &mut stream, &mut conn, remaining).await {
                HotRead::Read(0) | HotRead::Failed => return,
                HotRead::Read(_) => {
                    conn.hot = gap_started.elapsed() < HOT_READ_WINDOW;
                    conn.out = core.buffers.take();
                    continue;
                }
                HotRead::Cold => {}
            }
            // An idle connection holds no buffer (10,000 idle keep-alive
            // connections must stay small): hand it back to the core's
            // pool and wait for readability before taking one again.
            core.buffers.put(std::mem::take(&mut conn.inbuf));
            let remaining = remaining.saturating_sub(gap_started.elapsed());
            match monoio::time::timeout(remaining, stream.readable(false)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
            conn.hot = gap_started.elapsed() < HOT_READ_WINDOW;
            conn.inbuf = core.buffers.take();
            conn.out = core.buffers.take();
        }
        let len = conn.inbuf.len();
        if conn.inbuf.capacity() - len < READ_CHUNK_BYTES / 2 {
            conn.inbuf.reserve(READ_CHUNK_BYTES);
        }
        let cap = conn.inbuf.capacity();
        let buf = std::mem::take(&mut conn.inbuf);
        let read = stream.read(monoio::buf::IoBufMut::slice_mut(buf, len..cap));
        let Ok((result, slice)) = monoio::time::timeout(remaining, read).await else {
            if waiting != Waiting::Idle {
                let mut body = Vec::new();
                error_body(&mut body, error_name(408), "request not received in time");
                let mut out = Vec::new();
                write_response(&mut out, 408, &body, false, false);
                let _ = stream.write_all(out).await;
            }
            return;
        };
        conn.inbuf = slice.into_inner();
        match result {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// How long a connection that just answered keeps a read posted with its
/// buffer before it counts as idle. A client in a request-response loop
/// sends its next request within this, and a posted read then costs one
/// io_uring operation where the idle path costs two (a readiness poll,
/// then the read). A connection whose client paused longer than this last
/// time waits idle straight away, holding no buffer.
const HOT_READ_WINDOW: Duration = Duration::from_millis(10);

/// What the read posted right after an answer got.
enum HotRead {
    /// Bytes read into the connection's buffer (0: the peer closed).
    Read(usize),
    /// The connection is not hot, or nothing came within the window: wait
    /// idle.
    Cold,
    /// The read failed: close.
    Failed,
}

/// Reads into `conn.inbuf` (empty) for at most [`HOT_READ_WINDOW`] (or
/// `remaining`, if shorter) when the connection is hot. A read still posted
/// when the window ends is cancelled and then awaited, so bytes the kernel
/// delivered in the meantime are kept, never dropped with the operation.
async fn hot_read(
    core: &Core,
    stream: &mut TcpStream,
    conn: &mut Conn,
    remaining: Duration,
) -> HotRead {
    if !conn.hot || remaining.is_zero() {
        return HotRead::Cold;
    }
    debug_assert!(conn.inbuf.is_empty());
    if conn.inbuf.capacity() == 0 {
        conn.inbuf = core.buffers.take();
    }
    let cap = conn.inbuf.capacity();
    let buf = std::mem::take(&mut conn.inbuf);
    let read = stream.cancelable_read(
        monoio::buf::IoBufMut::slice_mut(buf, 0..cap),
        conn.canceller.handle(),
    );
    let mut read = std::pin::pin!(read);
    let window = remaining.min(HOT_READ_WINDOW);
    let (result, slice) = monoio::select! {
        done = &mut read => done,
        () = monoio::time::sleep(window) => {
            // `cancel` consumes the canceller and hands back a fresh one.
            conn.canceller = std::mem::take(&mut conn.canceller).cancel();
            read.await
        }
    };
    conn.inbuf = slice.into_inner();
    match result {
        Ok(n) => HotRead::Read(n),
        Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => HotRead::Cold,
        Err(_) => HotRead::Failed,
    }
}

/// A chunked body being received across reads. Its head stays at the start
/// of the connection's buffer; consumed chunk framing is dropped as it goes.
struct ChunkedInProgress {
    head: RequestHead,
    decoder: ChunkedDecoder,
    body: Vec<u8>,
}

struct Conn {
    /// The client sent its last request soon after the previous answer
    /// ([`HOT_READ_WINDOW`]): post the next read with a buffer at once.
    hot: bool,
    /// Cancels a hot read whose window ended. One per connection, not per
    /// read: creating one allocates, and its set of reads keeps its
    /// capacity from read to read.
    canceller: monoio::io::Canceller,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    responses: Responses,
    chunked: Option<ChunkedInProgress>,
    sent_continue: bool,
    /// When the first byte of the request now being received arrived.
    request_started: Option<std::time::Instant>,
    /// Body budget held for the request now being received.
    reservation: BodyReservation,
}

/// Responses queued for the requests handled since the last write.
#[derive(Default)]
struct Responses {
    /// Bodies of `pending`, back to back.
    bodies: Vec<u8>,
    pending: Vec<Pending>,
    /// Close the connection after writing them.
    close: bool,
    /// A request was refused with its body unread: close gently
    /// ([`linger_close`]) so the client reads the answer.
    linger: bool,
}

enum Step {
    /// A request was handled; this many bytes consumed.
    Handled(usize),
    /// Not a complete request yet.
    NeedMore,
}

impl Conn {
    /// Handles every complete request at the start of `inbuf`; returns the
    /// bytes consumed.
    fn handle_buffered(&mut self, core: &Core) -> usize {
        let mut consumed = 0;
        let mut handled = 0;
        while !self.responses.close && handled < core.cfg.max_pipelined_requests {
            if self.chunked.is_none() && consumed >= self.inbuf.len() {
                break;
            }
            match self.step(core, consumed) {
                Step::Handled(n) => {
                    consumed += n;
                    handled += 1;
                    self.sent_continue = false;
                }
                Step::NeedMore => break,
            }
        }
        consumed
    }

    /// What the next read waits for; `progressed` says a request was just
    /// handled (a partial one after it starts its clock now).
    fn waiting(&mut self, progressed: bool) -> Waiting {
        if self.inbuf.is_empty() && self.chunked.is_none() {
            self.request_started = None;
            return Waiting::Idle;
        }
        if progressed || self.request_started.is_none() {
            self.request_started = Some(std::time::Instant::now());
        }
        if self.chunked.is_some() {
            return Waiting::Body;
        }
        if self.buffered_head().is_some() {
            Waiting::Body
        } else {
            Waiting::Head
        }
    }

    /// The head of the partial request at the start of the buffer, once
    /// complete (limits were enforced when it was first parsed).
    fn buffered_head(&self) -> Option<RequestHead> {
        let limits = HttpLimits {
            max_header_bytes: usize::MAX,
            max_headers: crate::config::MAX_HEADERS_CEILING,
            max_body_bytes: usize::MAX,
        };
        http::parse_head(&self.inbuf, &limits).ok().flatten()
    }

    fn wants_continue(&self) -> bool {
        if self.sent_continue || !self.responses.pending.is_empty() {
            return false;
        }
        if let Some(c) = &self.chunked {
            return c.head.expect_continue;
        }
        self.buffered_head().is_some_and(|h| h.expect_continue)
    }

    fn step(&mut self, core: &Core, start: usize) -> Step {
        if let Some(c) = self.chunked.as_mut() {
            debug_assert_eq!(start, 0, "a partial chunked request is always first");
            let head_len = c.head.head_len;
            return match c.decoder.feed(
                &self.inbuf[head_len..],
                &mut c.body,
                core.cfg.max_body_bytes,
            ) {
                Ok(ChunkProgress::NeedMore(n)) => {
                    self.inbuf.drain(head_len..head_len + n);
                    if !self.reservation.grow_to(c.body.len()) {
                        let http10 = c.head.version_minor == 0;
                        self.chunked = None;
                        self.reservation.release();
                        self.responses.refuse(503, BODY_BUDGET_DETAIL, http10);
                        return Step::Handled(self.inbuf.len());
                    }
                    Step::NeedMore
                }
                Ok(ChunkProgress::Done(n)) => {
                    let Some(c) = self.chunked.take() else {
                        unreachable!("matched Some above");
                    };
                    let values = HeadValues::of(&c.head, &self.inbuf);
                    self.responses.respond_to(core, &c.head, &c.body, values);
                    self.reservation.release();
                    Step::Handled(head_len + n)
                }
                Err(e) => {
                    let http10 = c.head.version_minor == 0;
                    let head = c.head.clone();
                    self.chunked = None;
                    self.reservation.release();
                    match head.route {
                        Route::Shipper(endpoint) if e == HttpError::BodyTooLarge => {
                            let values = HeadValues::of(&head, &self.inbuf);
                            let req = shipper_request(endpoint, values, now_ms());
                            let failure = helios_shippers::Failure::TooLarge(e.detail().into());
                            self.responses.refuse_shipper(&req, &failure, http10);
                        }
                        _ => self.responses.reject(&e, http10),
                    }
                    Step::Handled(self.inbuf.len())
                }
            };
        }
        let buf = &self.inbuf[start..];
        let head = match http::parse_head(buf, &core.http_limits) {
            Ok(Some(h)) => h,
            Ok(None) => return Step::NeedMore,
            Err(e) => {
                match shipper_of_oversized(&e, buf, core) {
                    Some((head, endpoint)) => {
                        let values = HeadValues::of(&head, buf);
                        let req = shipper_request(endpoint, values, now_ms());
                        let failure = helios_shippers::Failure::TooLarge(e.detail().into());
                        self.responses
                            .refuse_shipper(&req, &failure, head.version_minor == 0);
                    }
                    None => self.responses.reject(&e, false),
                }
                return Step::Handled(buf.len());
            }
        };
        let values = HeadValues::of(&head, buf);
        let http10 = head.version_minor == 0;
        // Auth on the head of a body still to come: an unauthorized body is
        // never read, let alone buffered (one already here in full is
        // answered as usual, keeping the connection).
        let body_to_come = match head.framing {
            Framing::None => false,
            Framing::Length(len) => buf.len() < head.head_len + len,
            Framing::Chunked => true,
        };
        if body_to_come && head.route == Route::Events && head.method == Method::Post {
            if let Err((status, detail)) = authorize(core, &head, values.authorization) {
                self.responses.refuse(status, detail, http10);
                return Step::Handled(buf.len());
            }
        }
        if let Route::Shipper(endpoint) = head.route {
            if body_to_come && endpoint.carries_events() {
                if let Err(failure) = authorize_shipper(core, values.authorization) {
                    let req = shipper_request(endpoint, values, now_ms());
                    self.responses.refuse_shipper(&req, &failure, http10);
                    return Step::Handled(buf.len());
                }
            }
        }
        match head.framing {
            Framing::None => {
                self.responses.respond_to(core, &head, &[], values);
                Step::Handled(head.head_len)
            }
            Framing::Length(len) => {
                let total = head.head_len + len;
                if buf.len() < total {
                    if !self.reservation.grow_to(len) {
                        self.responses.refuse(503, BODY_BUDGET_DETAIL, http10);
                        return Step::Handled(buf.len());
                    }
                    let missing = start + total - self.inbuf.len();
                    self.inbuf.reserve(missing);
                    return Step::NeedMore;
                }
                self.responses
                    .respond_to(core, &head, &buf[head.head_len..total], values);
                self.reservation.release();
                Step::Handled(total)
            }
            Framing::Chunked => {
                if start != 0 {
                    // Answer the requests before it first, so the partial
                    // chunked request sits at the start of the buffer.
                    return Step::NeedMore;
                }
                self.chunked = Some(ChunkedInProgress {
                    head,
                    decoder: ChunkedDecoder::default(),
                    body: Vec::new(),
                });
                self.step(core, 0)
            }
        }
    }
}

/// Header values a handler reads, borrowed from the request's buffer.
#[derive(Clone, Copy, Default)]
struct HeadValues<'a> {
    sent_at: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
    path: &'a str,
    query: &'a str,
    /// `Content-Type`, `""` when absent or not UTF-8.
    content_type: &'a str,
}

impl<'a> HeadValues<'a> {
    /// Resolves `head`'s ranges in `buf` (the buffer it was parsed from).
    fn of(head: &RequestHead, buf: &'a [u8]) -> HeadValues<'a> {
        let text = |range: Option<std::ops::Range<usize>>| {
            range
                .and_then(|r| buf.get(r))
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .unwrap_or("")
        };
        let mut values = HeadValues {
            sent_at: head.sent_at.clone().and_then(|r| buf.get(r)),
            authorization: head.authorization.clone().and_then(|r| buf.get(r)),
            ..HeadValues::default()
        };
        // Only the shippers' decoders read these: `/v1/events` skips them.
        if matches!(head.route, Route::Shipper(_)) {
            values.path = text(Some(head.path.clone()));
            values.query = text(Some(head.query.clone()));
            values.content_type = text(head.content_type.clone());
        }
        values
    }
}

/// What a shipper's decoder and answers know of a request.
fn shipper_request<'a>(
    endpoint: helios_shippers::Endpoint,
    values: HeadValues<'a>,
    recv_ms: i64,
) -> helios_shippers::Request<'a> {
    helios_shippers::Request {
        endpoint,
        path: values.path,
        query: values.query,
        content_type: values.content_type,
        app: "",
        recv_ms,
    }
}

impl Responses {
    /// Queues an error response for a framing error and closes after it.
    fn reject(&mut self, e: &HttpError, http10: bool) {
        self.refuse(e.status(), e.detail(), http10);
    }

    /// Queues an error answer to a request whose body will not be read,
    /// and closes the connection after it (the unread body would otherwise
    /// be taken for the next request).
    fn refuse(&mut self, status: u16, detail: &str, http10: bool) {
        let start = self.bodies.len();
        error_body(&mut self.bodies, error_name(status), detail);
        self.pending.push(Pending::json(
            status,
            start..self.bodies.len(),
            false,
            http10,
        ));
        self.close = true;
        self.linger = true;
    }

    /// [`Responses::refuse`] for a shipper endpoint: the protocol's shape.
    fn refuse_shipper(
        &mut self,
        req: &helios_shippers::Request<'_>,
        failure: &helios_shippers::Failure,
        http10: bool,
    ) {
        let start = self.bodies.len();
        let answer = helios_shippers::render_failure(req, failure, &mut self.bodies);
        let mut pending = Pending::json(answer.status, start..self.bodies.len(), false, http10);
        pending.answer(&answer);
        self.pending.push(pending);
        self.close = true;
        self.linger = true;
    }

    fn respond_to(&mut self, core: &Core, head: &RequestHead, body: &[u8], values: HeadValues<'_>) {
        let keep_alive = head.keep_alive && !core.shutting_down.get();
        let http10 = head.version_minor == 0;
        let body_start = self.bodies.len();
        let bodies = &mut self.bodies;
        let mut pending = Pending::json(200, 0..0, keep_alive, http10);
        pending.omit_body = head.method == Method::Head;
        let status = match (head.route, head.method) {
            (Route::Events, Method::Post) => {
                core.metrics.body_bytes(body.len() as u64);
                let (status, ticket, counts) = ingest_events(core, head, body, values, bodies);
                pending.events = counts;
                pending.ticket = ticket;
                status
            }
            (Route::Metrics, Method::Get | Method::Head) => {
                bodies.extend_from_slice(core.registry.render().as_bytes());
                pending.content_type = CONTENT_TYPE_PROMETHEUS;
                200
            }
            (Route::Metrics, _) => {
                error_body(bodies, error_name(405), "use GET");
                pending.allow = Some(ALLOW_READ);
                405
            }
            (Route::Events, _) => {
                error_body(bodies, error_name(405), "use POST");
                pending.allow = Some(ALLOW_EVENTS);
                405
            }
            (Route::Healthz, Method::Get | Method::Head) => {
                bodies.extend_from_slice(b"{\"status\":\"ok\"}");
                200
            }
            (Route::Readyz, Method::Get | Method::Head) => match unready_reason(core) {
                Some(reason) => {
                    error_body(bodies, "unavailable", reason);
                    503
                }
                None => {
                    bodies.extend_from_slice(b"{\"status\":\"ready\"}");
                    200
                }
            },
            (Route::Healthz | Route::Readyz, _) => {
                error_body(bodies, error_name(405), "use GET");
                pending.allow = Some(ALLOW_READ);
                405
            }
            (Route::Shipper(endpoint), method) => {
                let req = shipper_request(endpoint, values, now_ms());
                core.metrics.shipper_request(endpoint.protocol());
                let allowed = matches!(endpoint, helios_shippers::Endpoint::Unknown(_))
                    || match endpoint.allow() {
                        "POST" => method == Method::Post,
                        "POST, PUT" => matches!(method, Method::Post | Method::Put),
                        _ => matches!(method, Method::Get | Method::Head),
                    };
                if !allowed {
                    let answer = helios_shippers::render_failure(
                        &req,
                        &helios_shippers::Failure::MethodNotAllowed,
                        bodies,
                    );
                    pending.answer(&answer);
                    // `Allow` only goes with a 405 (a protocol could answer
                    // otherwise).
                    pending.allow = (answer.status == 405).then(|| endpoint.allow());
                } else if endpoint.carries_events() {
                    core.metrics.body_bytes(body.len() as u64);
                    let done = ingest_shipper(core, head, req, body, values, bodies);
                    pending.answer(&done.answer);
                    pending.ticket = done.ticket;
                    pending.events = done.counts;
                    pending.commit_failure = done.commit_failure;
                } else {
                    let answer = match authorize(core, head, values.authorization) {
                        Err((_, _)) if endpoint.needs_key() => {
                            let failure = auth_failure(core, values.authorization);
                            helios_shippers::render_failure(&req, &failure, bodies)
                        }
                        _ => helios_shippers::render_probe(
                            &req,
                            unready_reason(core).is_none(),
                            bodies,
                        ),
                    };
                    pending.answer(&answer);
                }
                pending.status
            }
            (Route::NotFound, _) => {
                error_body(bodies, error_name(404), "unknown path");
                404
            }
        };
        if !matches!(head.route, Route::Shipper(_)) {
            pending.retry_after = status == 503;
        }
        pending.status = status;
        if !keep_alive {
            self.close = true;
        }
        pending.body = body_start..self.bodies.len();
        if let Some((_, range)) = &pending.commit_failure {
            // The commit-failure answer was rendered after the success body.
            pending.body = body_start..range.start;
        }
        self.pending.push(pending);
    }

    /// Awaits the tickets of queued responses, then renders them in order
    /// into `out`. Groups commit in order, so after the first wait the rest
    /// are usually resolved already.
    async fn finish(&mut self, core: &Core, out: &mut Vec<u8>) {
        let mut failed_body = Vec::new();
        for p in &self.pending {
            let mut head = ResponseHead {
                status: p.status,
                content_type: p.content_type,
                keep_alive: p.keep_alive,
                http10: p.http10,
                allow: p.allow,
                omit_body: p.omit_body,
                retry_after: p.retry_after,
                extra_headers: p.extra_headers,
            };
            let mut body = &self.bodies[p.body.clone()];
            let mut committed = true;
            if let Some(t) = &p.ticket {
                if let Err(e) = t.durable().await {
                    tracing::warn!(core = core.index, error = %e, "commit failed; answering 503");
                    committed = false;
                    match &p.commit_failure {
                        Some((answer, range)) => {
                            head.status = answer.status;
                            head.content_type = answer.content_type;
                            head.retry_after = answer.retry_after;
                            head.extra_headers = answer.headers;
                            body = &self.bodies[range.clone()];
                        }
                        None => {
                            failed_body.clear();
                            error_body(&mut failed_body, "unavailable", &journal_detail(&e));
                            head = ResponseHead {
                                keep_alive: p.keep_alive,
                                http10: p.http10,
                                ..ResponseHead::new(503)
                            };
                            body = &failed_body;
                        }
                    }
                }
            }
            core.metrics.response(head.status);
            if committed {
                core.metrics.events(p.events.0, p.events.1);
            }
            write_response_with(out, &head, body);
        }
        self.pending.clear();
        self.bodies.clear();
    }
}

fn journal_detail(e: &JournalError) -> String {
    match e {
        JournalError::NoSpace { .. } => "no disk space for the journal; retry later".into(),
        JournalError::Backpressure { .. } => "journal is full; retry later".into(),
        JournalError::Failed { .. } => "journal write failed; retry later".into(),
        other => format!("journal unavailable: {other}"),
    }
}

/// Receive time in UTC milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `POST /v1/events`: decode, validate, journal the accepted events.
/// Returns the status and, for a journaled request, the ticket the
/// response must wait for; the body goes into `bodies`.
/// Why a request's body is refused before it is read: the core's body
/// budget is spent.
const BODY_BUDGET_DETAIL: &str =
    "request bodies being received on this core exceed --max-buffered-body-bytes-per-core; retry";

/// Whether the request's key may post these events: `(relayed, app)` to
/// stamp, or the status and reason to refuse with. Without `--api-keys`
/// everyone may, and a relay says so with `Helios-Relay: 1`.
fn authorize<'c>(
    core: &'c Core,
    head: &RequestHead,
    authorization: Option<&[u8]>,
) -> Result<(bool, &'c str), (u16, &'static str)> {
    let Some(keys) = &core.api_keys else {
        return Ok((head.relay, ""));
    };
    match keys.authenticate(authorization) {
        Ok(p) if p.role == Role::Relay => Ok((true, "")),
        Ok(_) if head.relay => Err((403, "this key may not send relayed events")),
        Ok(p) => Ok((false, p.app.as_str())),
        Err(AuthError::Missing) => Err((401, "missing API key: send Authorization: Bearer KEY")),
        Err(AuthError::Unknown) => Err((401, "unknown API key")),
    }
}

/// Why a request's accepted events were not journaled.
pub(crate) enum JournalRefusal {
    /// The store is behind by a whole budget, the journal is failed or
    /// reopening, or the disk is full: retry later (503).
    Busy(String),
    /// The accepted events exceed one journal record (413).
    TooLarge,
    /// A defect: the ranges did not frame.
    Internal,
}

/// What a journal record says of its request besides its events, and how
/// its events meet the journal budget.
struct Stamp<'a> {
    relay: bool,
    app: &'a str,
    recv_ms: i64,
    clock_offset_ms: i64,
    budget: BudgetRule,
}

/// How a request's events meet the journal budget's priority thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BudgetRule {
    /// Event by event, refusals in the answer's reject list: `/v1/events`,
    /// whose clients read them.
    PerEvent,
    /// The whole request (a shipper's request, a syslog batch) admitted or
    /// refused by the highest priority it carries. Their clients resend
    /// whole requests or nothing: a refused item is taken as final (OTLP's
    /// `partialSuccess`, a bulk item's 400, HEC's and Loki's 400, RELP's
    /// `500` all mean "do not resend"), so refusing items one by one would
    /// lose them, and a resent request would store its other events twice.
    /// A request refused whole is answered "busy" and resent.
    WholeRequest,
}

/// Journals the events `v` accepted from `body` as one record: the ticket
/// to wait for before answering (`None` when nothing was accepted).
fn journal_accepted(
    core: &Core,
    body: &[u8],
    v: &mut events::Validation,
    stamp: Stamp<'_>,
) -> Result<Option<Ticket>, JournalRefusal> {
    if v.accepted().is_empty() {
        return Ok(None);
    }
    refuse_over_budget(core, v, stamp.budget)?;
    let accepted = v.accepted().len();
    let Stamp {
        relay,
        app,
        recv_ms,
        clock_offset_ms,
        budget: _,
    } = stamp;
    let flags = if relay {
        events::PAYLOAD_FLAG_RELAYED
    } else {
        0
    };
    let payload = match events::check_payload(flags, body, v.accepted()) {
        Ok(checked) => checked,
        Err(e) => {
            // The ranges come from `validate` on this very body.
            debug_assert!(false, "payload framing failed: {e}");
            return Err(JournalRefusal::Internal);
        }
    };
    let id_base = core.minter.borrow_mut().reserve(recv_ms, v.mint_count());
    let meta = RecordMeta {
        recv_ms,
        clock_offset_ms,
        id_base,
        event_count: accepted as u32,
        app,
    };
    // The events are framed straight into the journal's group buffer.
    match core
        .journal()
        .append_with(&meta, payload.len(), |out| payload.write(out))
    {
        Ok(t) => Ok(Some(t)),
        Err(JournalError::RecordTooLarge { .. }) => Err(JournalRefusal::TooLarge),
        Err(e) => Err(JournalRefusal::Busy(journal_detail(&e))),
    }
}

/// Applies the journal budget by priority (DESIGN §5 backpressure, issue
/// 21 §2): the store is behind, so rather than grow the journal without
/// bound, refuse the events whose priority's threshold the journal has
/// reached. They become per-event rejects (`v` is changed in place); when
/// none of the request's events is left, the whole request is refused
/// (503 + Retry-After, as a full budget always was). Below the low
/// threshold this is one comparison.
fn refuse_over_budget(
    core: &Core,
    v: &mut events::Validation,
    rule: BudgetRule,
) -> Result<(), JournalRefusal> {
    let unflushed_bytes = core.journal().unflushed_bytes();
    let budget = core.priority_budget;
    if !budget.refuses_any(unflushed_bytes) {
        return Ok(());
    }
    let refused = match rule {
        BudgetRule::PerEvent => {
            let refused = v.refuse_priorities(|p| budget.refuses(p, unflushed_bytes));
            core.metrics.budget_refused(refused);
            if !v.accepted().is_empty() {
                return Ok(());
            }
            refused
        }
        BudgetRule::WholeRequest => {
            let counts = v.accepted_priorities();
            let highest = events::Priority::ALL
                .into_iter()
                .find(|p| counts[p.index()] > 0)
                .unwrap_or(events::Priority::Normal);
            if !budget.refuses(highest, unflushed_bytes) {
                return Ok(());
            }
            core.metrics.budget_refused(counts);
            counts
        }
    };
    // Name the most urgent priority refused: that is the threshold the
    // client is waiting on.
    let detail = match events::Priority::ALL
        .into_iter()
        .find(|p| refused[p.index()] > 0)
    {
        Some(events::Priority::Low) => format!(
            "journal budget: low-priority events are refused above {}% of the budget \
             (--low-priority-budget-percent): the store is behind; retry later",
            core.cfg.low_priority_budget_percent
        ),
        Some(events::Priority::Normal) => format!(
            "journal budget: normal-priority events are refused in the last {}% of the budget, \
             kept for high priority (--high-priority-reserve-percent): the store is behind; \
             retry later",
            core.cfg.high_priority_reserve_percent
        ),
        Some(events::Priority::High) | None => {
            "journal budget reached: the store is behind; retry later".into()
        }
    };
    Err(JournalRefusal::Busy(detail))
}

/// Why a body's `Content-Encoding` could not be removed.
enum ContentRefusal {
    /// Decodes past `--max-decoded-bytes`.
    TooLarge,
    /// Not what its encoding says, or (zstd) asking for a window over
    /// 8 MiB: the detail says which. A 400 either way: resending the same
    /// bytes cannot succeed, and a smaller batch would not help a window.
    Corrupt(&'static str),
    /// An encoding we do not decode.
    Unsupported,
}

/// The detail of a 415 (or the shippers' bad-encoding answer).
const SUPPORTED_ENCODINGS: &str = "supported Content-Encoding: gzip, zstd, identity";

/// The body with its `Content-Encoding` removed (into `decoded` when
/// there is one to remove).
fn decode_content<'b>(
    core: &Core,
    head: &RequestHead,
    wire_body: &'b [u8],
    decoded: &'b mut Vec<u8>,
) -> Result<&'b [u8], ContentRefusal> {
    match head.encoding {
        Encoding::Identity => Ok(wire_body),
        Encoding::Gzip => match gunzip_limited(wire_body, core.cfg.max_decoded_bytes, decoded) {
            Ok(()) => Ok(decoded),
            Err(GunzipError::TooLarge) => Err(ContentRefusal::TooLarge),
            Err(GunzipError::Corrupt) => Err(ContentRefusal::Corrupt("body is not valid gzip")),
        },
        Encoding::Zstd => match unzstd_limited(wire_body, core.cfg.max_decoded_bytes, decoded) {
            Ok(()) => Ok(decoded),
            Err(UnzstdError::TooLarge) => Err(ContentRefusal::TooLarge),
            Err(UnzstdError::WindowTooLarge) => Err(ContentRefusal::Corrupt(
                "zstd frame window exceeds 8 MiB, the limit for HTTP (RFC 9659): \
                 compress at level 19 or lower, without long-distance matching",
            )),
            Err(UnzstdError::Corrupt) => Err(ContentRefusal::Corrupt("body is not valid zstd")),
        },
        // A Loki protobuf push may say `snappy`: its body is snappy by
        // definition and the decoder removes it (as Loki does).
        Encoding::Snappy if head.route == Route::Shipper(helios_shippers::Endpoint::LokiPush) => {
            Ok(wire_body)
        }
        Encoding::Snappy | Encoding::Unsupported => Err(ContentRefusal::Unsupported),
    }
}

fn ingest_events(
    core: &Core,
    head: &RequestHead,
    wire_body: &[u8],
    values: HeadValues<'_>,
    bodies: &mut Vec<u8>,
) -> (u16, Option<Ticket>, (u64, u64)) {
    // Auth first: nothing about an unauthorized body is worth decoding.
    let (relay, app) = match authorize(core, head, values.authorization) {
        Ok(allowed) => allowed,
        Err((status, detail)) => {
            error_body(bodies, error_name(status), detail);
            return (status, None, (0, 0));
        }
    };
    let sent_at = values.sent_at;
    let mut scratch = core.scratch.borrow_mut();
    let Scratch {
        decoded,
        validation: v,
        ..
    } = &mut *scratch;
    let body = match decode_content(core, head, wire_body, decoded) {
        Ok(body) => body,
        Err(ContentRefusal::TooLarge) => {
            error_body(
                bodies,
                error_name(413),
                "decoded body exceeds max_decoded_bytes",
            );
            return (413, None, (0, 0));
        }
        Err(ContentRefusal::Corrupt(detail)) => {
            error_body(bodies, error_name(400), detail);
            return (400, None, (0, 0));
        }
        Err(ContentRefusal::Unsupported) => {
            error_body(bodies, error_name(415), SUPPORTED_ENCODINGS);
            return (415, None, (0, 0));
        }
    };
    let recv_ms = now_ms();
    let clock_offset_ms =
        events::clock_offset_ms(recv_ms, sent_at, core.cfg.clock_skew_threshold_ms);
    let format = if head.ndjson {
        events::BodyFormat::Ndjson
    } else {
        events::BodyFormat::Json
    };
    let mode = events::ValidateMode { relay };
    match events::validate(body, format, &validate_limits(core), mode, v) {
        Ok(()) => {}
        Err(events::BodyError::TooManyEvents { .. }) => {
            error_body(
                bodies,
                error_name(413),
                "more events than max_events_per_request",
            );
            return (413, None, (0, 0));
        }
        Err(e) => {
            error_body(bodies, error_name(400), &e.to_string());
            return (400, None, (0, 0));
        }
    }
    let ticket = match journal_accepted(
        core,
        body,
        v,
        Stamp {
            relay,
            app,
            recv_ms,
            clock_offset_ms,
            budget: BudgetRule::PerEvent,
        },
    ) {
        Ok(ticket) => ticket,
        Err(JournalRefusal::Busy(detail)) => {
            error_body(bodies, "unavailable", &detail);
            return (503, None, (0, 0));
        }
        Err(JournalRefusal::TooLarge) => {
            error_body(
                bodies,
                error_name(413),
                "accepted events exceed the journal record limit",
            );
            return (413, None, (0, 0));
        }
        Err(JournalRefusal::Internal) => {
            error_body(bodies, "internal", "cannot frame the accepted events");
            return (500, None, (0, 0));
        }
    };
    let accepted = v.accepted().len();
    accepted_body(bodies, accepted, v.rejected());
    (200, ticket, (accepted as u64, v.rejected().len() as u64))
}

fn validate_limits(core: &Core) -> events::ValidateLimits {
    events::ValidateLimits {
        max_events_per_request: core.cfg.max_events_per_request,
        max_json_depth: core.cfg.max_json_depth,
    }
}

/// The outcome of a shipper request carrying events.
struct ShipperDone {
    answer: helios_shippers::Answer,
    ticket: Option<Ticket>,
    counts: (u64, u64),
    /// The answer should the commit fail, rendered after the success body.
    commit_failure: Option<(helios_shippers::Answer, std::ops::Range<usize>)>,
}

impl ShipperDone {
    fn refused(answer: helios_shippers::Answer) -> ShipperDone {
        ShipperDone {
            answer,
            ticket: None,
            counts: (0, 0),
            commit_failure: None,
        }
    }
}

/// The app a shipper request's key stamps, or the failure to answer. A
/// relay's key may not use the shippers' endpoints: relays forward Helios
/// events on `/v1/events`.
fn authorize_shipper<'c>(
    core: &'c Core,
    authorization: Option<&[u8]>,
) -> Result<&'c str, helios_shippers::Failure> {
    let Some(keys) = &core.api_keys else {
        return Ok("");
    };
    match keys.authenticate(authorization) {
        Ok(p) if p.role == Role::Relay => Err(helios_shippers::Failure::Forbidden(
            "a relay key may only send /v1/events".into(),
        )),
        Ok(p) => Ok(p.app.as_str()),
        Err(AuthError::Missing) => Err(helios_shippers::Failure::MissingKey),
        Err(AuthError::Unknown) => Err(helios_shippers::Failure::UnknownKey),
    }
}

/// The failure for a request whose key does not authenticate.
fn auth_failure(core: &Core, authorization: Option<&[u8]>) -> helios_shippers::Failure {
    authorize_shipper(core, authorization)
        .err()
        .unwrap_or(helios_shippers::Failure::UnknownKey)
}

/// The head and shipper endpoint of a request refused for its declared
/// body size, so the refusal can take its protocol's shape.
fn shipper_of_oversized(
    e: &HttpError,
    buf: &[u8],
    core: &Core,
) -> Option<(RequestHead, helios_shippers::Endpoint)> {
    if *e != HttpError::BodyTooLarge {
        return None;
    }
    let limits = HttpLimits {
        max_body_bytes: usize::MAX,
        ..core.http_limits
    };
    let head = http::parse_head(buf, &limits).ok().flatten()?;
    match head.route {
        Route::Shipper(endpoint) => Some((head, endpoint)),
        _ => None,
    }
}

/// Why the collector is not ready (`/readyz`, HEC's health), if it is not:
/// a failed journal, a journal past the point where normal-priority events
/// are refused, or a failing store.
fn unready_reason(core: &Core) -> Option<&'static str> {
    if core.journal().is_failed() {
        Some("journal failed; reopening")
    } else if core
        .priority_budget
        .refuses(events::Priority::Normal, core.journal().unflushed_bytes())
    {
        // Ordinary traffic is refused from here (only high priority gets
        // the reserve): a load balancer should send it elsewhere.
        Some("journal budget reached for normal-priority events: the store is behind")
    } else if core
        .registry
        .flusher
        .store_failing
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        Some("the store is not accepting writes")
    } else {
        None
    }
}

/// A shipper request carrying events: authorize, remove the content
/// encoding, translate into Helios events, validate and journal them like
/// `/v1/events` (NDJSON), answer in the protocol's shapes.
fn ingest_shipper<'a>(
    core: &'a Core,
    head: &RequestHead,
    mut req: helios_shippers::Request<'a>,
    wire_body: &[u8],
    values: HeadValues<'a>,
    bodies: &mut Vec<u8>,
) -> ShipperDone {
    use helios_shippers::Failure;
    let started = std::time::Instant::now();
    let fail = |failure: Failure, req: &helios_shippers::Request<'_>, bodies: &mut Vec<u8>| {
        ShipperDone::refused(helios_shippers::render_failure(req, &failure, bodies))
    };
    req.app = match authorize_shipper(core, values.authorization) {
        Ok(app) => app,
        Err(failure) => return fail(failure, &req, bodies),
    };
    let mut scratch = core.scratch.borrow_mut();
    let Scratch {
        decoded,
        validation: v,
        translation,
    } = &mut *scratch;
    let body = match decode_content(core, head, wire_body, decoded) {
        Ok(body) => body,
        Err(ContentRefusal::TooLarge) => {
            let failure = Failure::TooLarge("decoded body exceeds max_decoded_bytes".into());
            return fail(failure, &req, bodies);
        }
        Err(ContentRefusal::Corrupt(detail)) => {
            let failure = Failure::BadEncoding(detail.into());
            return fail(failure, &req, bodies);
        }
        Err(ContentRefusal::Unsupported) => {
            let failure = Failure::BadEncoding(SUPPORTED_ENCODINGS.into());
            return fail(failure, &req, bodies);
        }
    };
    if let Err(failure) = helios_shippers::decode(&req, body, &core.shipper_settings, translation) {
        return fail(failure, &req, bodies);
    }
    let lines = &translation.ndjson;
    let ticket = match journal_translation(core, lines, v, req.app, req.recv_ms) {
        Ok(ticket) => ticket,
        Err(TranslationRefusal::TooManyEvents) => {
            return fail(Failure::TooManyEvents, &req, bodies);
        }
        Err(TranslationRefusal::Invalid(detail)) => {
            return fail(Failure::Internal(detail), &req, bodies);
        }
        Err(TranslationRefusal::Journal(JournalRefusal::Busy(detail))) => {
            return fail(Failure::Busy(detail), &req, bodies)
        }
        Err(TranslationRefusal::Journal(JournalRefusal::TooLarge)) => {
            let failure =
                Failure::TooLarge("accepted events exceed the journal record limit".into());
            return fail(failure, &req, bodies);
        }
        Err(TranslationRefusal::Journal(JournalRefusal::Internal)) => {
            let failure = Failure::Internal("cannot frame the accepted events".into());
            return fail(failure, &req, bodies);
        }
    };
    let rejected: Vec<helios_shippers::LineReject<'_>> = v
        .rejected()
        .iter()
        .map(|r| helios_shippers::LineReject {
            line: r.index as u32,
            error: r.error.as_str(),
        })
        .collect();
    let took_ms = started.elapsed().as_millis() as u64;
    let answer = helios_shippers::render_success(&req, translation, &rejected, took_ms, bodies);
    let commit_failure = ticket.as_ref().map(|_| {
        let start = bodies.len();
        let failure = Failure::Busy("journal commit failed; retry later".into());
        let answer = helios_shippers::render_failure(&req, &failure, bodies);
        (answer, start..bodies.len())
    });
    ShipperDone {
        answer,
        ticket,
        counts: (v.accepted().len() as u64, v.rejected().len() as u64),
        commit_failure,
    }
}

/// Why a translation's events (a shipper request's, a syslog batch's)
/// were not journaled.
pub(crate) enum TranslationRefusal {
    /// More lines than `--max-events-per-request`.
    TooManyEvents,
    /// A line the validator refused as a whole body: a translator's
    /// defect (each writes one JSON object per line).
    Invalid(String),
    /// Validated, but the journal did not take the record.
    Journal(JournalRefusal),
}

/// The one path from translated Helios NDJSON (`lines`, one event per
/// line) to the journal, shared by the shippers' endpoints and syslog:
/// validate as NDJSON (`v` then holds the accepted ranges and per-line
/// rejects), then journal the accepted lines as one record stamped with
/// `app` and `recv_ms`. The ticket resolves when the record is durable;
/// `None` when no line was accepted.
pub(crate) fn journal_translation(
    core: &Core,
    lines: &[u8],
    v: &mut events::Validation,
    app: &str,
    recv_ms: i64,
) -> Result<Option<Ticket>, TranslationRefusal> {
    let mode = events::ValidateMode { relay: false };
    match events::validate(
        lines,
        events::BodyFormat::Ndjson,
        &validate_limits(core),
        mode,
        v,
    ) {
        Ok(()) => {}
        Err(events::BodyError::TooManyEvents { .. }) => {
            return Err(TranslationRefusal::TooManyEvents)
        }
        Err(e) => {
            // The translators write one object per line: a defect of ours.
            debug_assert!(false, "a translation failed validation: {e}");
            return Err(TranslationRefusal::Invalid(e.to_string()));
        }
    }
    let stamp = Stamp {
        relay: false,
        app,
        recv_ms,
        clock_offset_ms: 0,
        budget: BudgetRule::WholeRequest,
    };
    journal_accepted(core, lines, v, stamp).map_err(TranslationRefusal::Journal)
}

/// What [`journal_lines`] journaled.
pub(crate) struct JournaledLines {
    /// Resolves when the record is durable; `None` when no line was
    /// accepted.
    pub ticket: Option<Ticket>,
    /// Lines the validator rejected one by one (0-based), with why.
    pub rejected: Vec<(usize, String)>,
}

/// [`journal_translation`] with the core's scratch buffers, for callers
/// that keep their lines elsewhere (syslog's listeners).
pub(crate) fn journal_lines(
    core: &Core,
    lines: &[u8],
    app: &str,
    recv_ms: i64,
) -> Result<JournaledLines, TranslationRefusal> {
    let mut scratch = core.scratch.borrow_mut();
    let Scratch { validation: v, .. } = &mut *scratch;
    let ticket = journal_translation(core, lines, v, app, recv_ms)?;
    Ok(JournaledLines {
        ticket,
        rejected: v
            .rejected()
            .iter()
            .map(|r| (r.index, r.error.as_str().to_owned()))
            .collect(),
    })
}

/// `{"accepted": n, "rejected": [{"index": i, "error": "…"}]}`.
fn accepted_body(out: &mut Vec<u8>, accepted: usize, rejected: &[events::Reject]) {
    use std::io::Write;
    let _ = write!(out, "{{\"accepted\":{accepted},\"rejected\":[");
    for (i, r) in rejected.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{{\"index\":{},\"error\":", r.index);
        json_string(out, r.error.as_str());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}
