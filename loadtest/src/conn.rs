//! One connection as a state machine driven by its worker thread
//! (`worker.rs`): connect (with backoff), write a batch of up to
//! `--pipeline` requests in one send, read their responses in order,
//! record them, repeat until the quota or the deadline.
//!
//! Closed loop: the next batch goes as soon as the last one is answered, and
//! latency runs from the send. Open loop (`--rate`): the connection's
//! [`Schedule`] gives each request's *intended* time; a batch carries every
//! request already due (up to the depth), and latency runs from each
//! request's intended time, so time spent queued behind a slow server is
//! counted (coordinated-omission correction). The uncorrected latency (from
//! the actual send) is kept beside it.
//!
//! The connection never blocks and never owns the I/O: it queues operations
//! on the thread's [`Driver`] and reacts to their completions. Its buffers
//! stay where they are for the whole run (the driver may be writing into
//! them); nothing is allocated per request.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::config::Config;
use crate::driver::{Completion, Driver, Op};
use crate::ids_out::IdSink;
use crate::object_id::IdMinter;
use crate::pacing::{Schedule, SendOffset};
use crate::request::{Renderer, RequestTemplate};
use crate::response::{dechunk, parse_response, rejected_indices, Body, Parsed, Response};
use crate::stats::{Interval, ThreadStats};

/// Initial read buffer per connection.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Largest response accepted; a larger one is a parse error.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// First reconnect delay; doubles per consecutive failure.
pub const BACKOFF_MIN_NS: u64 = 10_000_000;
/// Longest reconnect delay.
pub const BACKOFF_MAX_NS: u64 = 1_000_000_000;
/// Consecutive connect failures after which a `--requests` run without a
/// `--duration` gives up on a connection (a duration run retries until the
/// end, e.g. across a server restart).
pub const MAX_CONNECT_FAILURES_WITHOUT_DEADLINE: u32 = 8;
/// No response deadline (`Conn::deadline_ns`).
pub const NO_DEADLINE: u64 = u64::MAX;

/// What one connection is to do.
#[derive(Debug, Clone)]
pub struct ConnPlan {
    /// Requests this connection sends (`--requests` split exactly).
    pub quota: Option<u64>,
    /// Open-loop timetable; `None` in closed loop.
    pub schedule: Option<Schedule>,
}

/// The socket address every connection dials, in the form `connect(2)`
/// takes (kept in one place for the whole run: io_uring reads it late).
pub struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    ipv6: bool,
}

impl SockAddr {
    /// `addr` as a `sockaddr_in` or `sockaddr_in6`.
    pub fn new(addr: std::net::SocketAddr) -> SockAddr {
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let (len, ipv6) = match addr {
            std::net::SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                (std::mem::size_of::<libc::sockaddr_in>(), false)
            }
            std::net::SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                (std::mem::size_of::<libc::sockaddr_in6>(), true)
            }
        };
        SockAddr {
            storage,
            len: len as libc::socklen_t,
            ipv6,
        }
    }
}

/// What a thread's connections share: the run's inputs and the thread's
/// mutable state (driver, stats, timers). Owned by the worker.
pub struct Ctx {
    /// The run's validated configuration.
    pub config: Arc<Config>,
    /// The request template, shared by all threads.
    pub template: Arc<RequestTemplate>,
    /// `pipeline` copies of the fixed request, when ids are not minted.
    pub fixed: Option<Arc<Vec<u8>>>,
    /// Size of one fixed request, in bytes (0 when ids are minted).
    pub request_bytes: usize,
    /// Where to connect (boxed: its address is handed to the kernel).
    pub addr: Box<SockAddr>,
    /// When sending begins (the connections connect before it).
    pub start_ns: u64,
    /// When the run ends (`--duration`); `None` for a `--requests`-only run.
    pub deadline_ns: Option<u64>,
    /// `--timeout` in ns.
    pub timeout_ns: u64,
    /// The thread's I/O.
    pub driver: Driver,
    /// The thread's totals.
    pub stats: ThreadStats,
    /// The current second's latency.
    pub interval: Interval,
    /// Mints the `_id`s of this thread's requests.
    pub minter: IdMinter,
    /// This thread's buffer in front of the `--ids-out` file, when given.
    pub ids: Option<IdSink>,
    /// Connections whose batch was queued in this round, to be stamped with
    /// the time the round is handed to the kernel.
    pub just_sent: Vec<u32>,
    /// Timers asked for in this round: `(at_ns, token, generation, precise)`.
    pub new_timers: Vec<(u64, u32, u32, bool)>,
}

impl Ctx {
    fn past_deadline(&self, at_ns: u64) -> bool {
        self.deadline_ns.is_some_and(|d| at_ns >= d)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the backoff timer before reconnecting.
    Backoff,
    /// Connect in flight (deadline: the connect timeout).
    Connecting,
    /// Connected, no batch in flight; open loop: a timer for the next send.
    Idle,
    /// A batch in flight (deadline: the response timeout).
    Busy,
    /// Shut down, waiting for in-flight operations to complete.
    Closing(AfterClose),
    /// Nothing more to do.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterClose {
    /// Connect again at once if there is work left.
    Reconnect,
    /// The connect failed: back off, then connect again.
    ConnectFailed,
}

/// The batch in flight.
#[derive(Debug, Clone, Copy, Default)]
struct Batch {
    /// Requests in it.
    len: u64,
    /// Responses read so far.
    answered: u64,
    /// Bytes of the batch.
    bytes: usize,
    /// Bytes the kernel has taken so far.
    written: usize,
    /// When the send was handed to the kernel (ns).
    sent_at_ns: u64,
    /// A response was cut short by the end of the stream: its status and
    /// head length (the body runs to the close).
    until_close: Option<(u16, usize)>,
}

/// One connection (see the module docs).
pub struct Conn {
    token: u32,
    fd: RawFd,
    state: State,
    /// In-flight operations ([`Op::bit`]).
    inflight: u8,
    /// Bumped whenever a timer asked for earlier stops counting.
    timer_gen: u32,
    /// Connect or response deadline, checked by the worker's sweep.
    pub deadline_ns: u64,
    plan: ConnPlan,
    /// Requests sent so far.
    sent: u64,
    /// When the connection last became able to send (connected or answered).
    ready_ns: u64,
    batch: Batch,
    /// Intended times of the batch's requests (open loop).
    intended_ns: Vec<u64>,
    /// Rendered requests for `--ids-out` batches.
    wbuf: Vec<u8>,
    renderer: Option<Renderer>,
    /// Received bytes; `rpos..len` not yet parsed.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Dechunked ack bodies.
    scratch: Vec<u8>,
    rejected: Vec<usize>,
    connect_failures: u32,
    backoff_ns: u64,
}

impl Conn {
    /// Connection `token` of its thread with `plan`; nothing happens until
    /// [`Conn::start`].
    pub fn new(token: u32, plan: ConnPlan, template: &Arc<RequestTemplate>, depth: usize) -> Conn {
        Conn {
            token,
            fd: -1,
            state: State::Backoff,
            inflight: 0,
            timer_gen: 0,
            deadline_ns: NO_DEADLINE,
            plan,
            sent: 0,
            ready_ns: 0,
            batch: Batch::default(),
            intended_ns: Vec::with_capacity(depth),
            wbuf: Vec::new(),
            renderer: template
                .mints_ids()
                .then(|| Renderer::new(template.clone())),
            rbuf: Vec::with_capacity(READ_BUFFER_BYTES),
            rpos: 0,
            scratch: Vec::new(),
            rejected: Vec::new(),
            connect_failures: 0,
            backoff_ns: BACKOFF_MIN_NS,
        }
    }

    /// Whether the connection has finished.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The timer generation a timer of this connection must carry to count.
    pub fn timer_gen(&self) -> u32 {
        self.timer_gen
    }

    fn set_timer(&mut self, ctx: &mut Ctx, at_ns: u64, precise: bool) {
        self.timer_gen = self.timer_gen.wrapping_add(1);
        ctx.new_timers
            .push((at_ns, self.token, self.timer_gen, precise));
    }

    /// Opens the socket and queues the connect.
    pub fn start(&mut self, ctx: &mut Ctx, now_ns: u64) {
        if ctx.past_deadline(now_ns) {
            self.finish(ctx);
            return;
        }
        let fd = match ctx.driver.socket(ctx.addr.ipv6) {
            Ok(fd) => fd,
            Err(_) => return self.connect_failed(ctx, now_ns),
        };
        self.fd = fd;
        let addr: *const libc::sockaddr =
            (&ctx.addr.storage as *const libc::sockaddr_storage).cast();
        // SAFETY: ctx.addr is boxed and outlives every operation.
        if unsafe { ctx.driver.connect(self.token, fd, addr, ctx.addr.len) }.is_err() {
            // SAFETY: ours, nothing in flight on it.
            unsafe { libc::close(fd) };
            self.fd = -1;
            return self.connect_failed(ctx, now_ns);
        }
        self.inflight |= Op::Connect.bit();
        self.state = State::Connecting;
        self.deadline_ns = now_ns.saturating_add(ctx.timeout_ns);
    }

    /// A failed connect attempt: count it, then back off (or give up).
    fn connect_failed(&mut self, ctx: &mut Ctx, now_ns: u64) {
        ctx.stats.errors.connect += 1;
        self.connect_failures += 1;
        if ctx.deadline_ns.is_none()
            && self.connect_failures >= MAX_CONNECT_FAILURES_WITHOUT_DEADLINE
        {
            return self.finish(ctx);
        }
        let mut at = now_ns.saturating_add(self.backoff_ns);
        if let Some(d) = ctx.deadline_ns {
            at = at.min(d);
        }
        self.backoff_ns = (self.backoff_ns * 2).min(BACKOFF_MAX_NS);
        self.state = State::Backoff;
        self.deadline_ns = NO_DEADLINE;
        self.set_timer(ctx, at, false);
    }

    /// Whether any request is left to send (quota, schedule, deadline).
    fn has_work(&self, ctx: &Ctx, now_ns: u64) -> bool {
        if self.plan.quota.is_some_and(|q| self.sent >= q) {
            return false;
        }
        // The run ends at the deadline: a backlog still queued behind a slow
        // server then is not sent (it is counted as backlog).
        match &self.plan.schedule {
            Some(s) => !ctx.past_deadline(s.next_ns()) && !ctx.past_deadline(now_ns),
            None => !ctx.past_deadline(now_ns),
        }
    }

    /// Ends the connection: the open-loop backlog is counted, the socket
    /// (with nothing in flight) closed.
    fn finish(&mut self, ctx: &mut Ctx) {
        if let (Some(s), Some(d)) = (&self.plan.schedule, ctx.deadline_ns) {
            let mut left = s.left_before(d);
            if let Some(q) = self.plan.quota {
                left = left.min(q.saturating_sub(self.sent));
            }
            ctx.stats.backlog += left;
        }
        if self.fd >= 0 {
            // SAFETY: ours; nothing is in flight on it.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
        self.state = State::Done;
        self.deadline_ns = NO_DEADLINE;
        self.timer_gen = self.timer_gen.wrapping_add(1);
    }

    /// Connected or answered: send now (closed loop), or set the timer for
    /// the next intended time (open loop), or finish.
    fn next(&mut self, ctx: &mut Ctx, now_ns: u64) {
        self.state = State::Idle;
        self.deadline_ns = NO_DEADLINE;
        if !self.has_work(ctx, now_ns) {
            return self.finish(ctx);
        }
        match &self.plan.schedule {
            Some(s) => {
                let at = s.next_ns();
                self.set_timer(ctx, at, true);
            }
            None if now_ns < ctx.start_ns => {
                let at = ctx.start_ns;
                self.set_timer(ctx, at, false);
            }
            None => self.send_batch(ctx, now_ns, now_ns),
        }
    }

    /// The timer asked for last fired at `now_ns`; a paced send takes the
    /// requests intended up to `due_ns` (`now_ns`, or later when the send
    /// joins a round that already sends: [`crate::pacing::send_horizon`]).
    pub fn on_timer(&mut self, ctx: &mut Ctx, now_ns: u64, due_ns: u64) {
        debug_assert!(due_ns >= now_ns, "a horizon never before now");
        match self.state {
            State::Backoff => self.start(ctx, now_ns),
            State::Idle => {
                if self.has_work(ctx, now_ns) {
                    self.send_batch(ctx, now_ns, due_ns)
                } else {
                    self.finish(ctx)
                }
            }
            _ => {}
        }
    }

    /// The connect or response deadline passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx, _now_ns: u64) {
        match self.state {
            // Counted as a failed connect once the close is done.
            State::Connecting => self.close(ctx, AfterClose::ConnectFailed),
            State::Busy => {
                ctx.stats.errors.timeout += self.batch.len - self.batch.answered;
                self.close(ctx, AfterClose::Reconnect);
            }
            _ => self.deadline_ns = NO_DEADLINE,
        }
    }

    /// Queues the next batch: every request intended up to `due_ns` (open
    /// loop) or a full pipeline (closed loop), within the quota.
    fn send_batch(&mut self, ctx: &mut Ctx, now_ns: u64, due_ns: u64) {
        let depth = ctx.config.pipeline as u64;
        let left = self.plan.quota.map_or(u64::MAX, |q| q - self.sent);
        let mut n = depth.min(left);
        self.intended_ns.clear();
        if let Some(s) = &mut self.plan.schedule {
            // Requests intended after the deadline are never sent.
            while (self.intended_ns.len() as u64) < n
                && s.next_ns() <= due_ns
                && ctx.deadline_ns.is_none_or(|d| s.next_ns() < d)
            {
                let at = s.take();
                if at < self.ready_ns {
                    ctx.stats.sends_behind += 1;
                }
                self.intended_ns.push(at);
            }
            n = self.intended_ns.len() as u64;
            if n == 0 {
                // Woken early (never by design): wait for the next one.
                let at = s.next_ns();
                return self.set_timer(ctx, at, true);
            }
        }
        let (ptr, bytes) = match &ctx.fixed {
            Some(fixed) => (fixed.as_ptr(), ctx.request_bytes * n as usize),
            None => {
                let renderer = self
                    .renderer
                    .as_mut()
                    .expect("a renderer when ids are minted");
                renderer.render_batch(n as usize, &mut ctx.minter, &mut self.wbuf);
                (self.wbuf.as_ptr(), self.wbuf.len())
            }
        };
        self.sent += n;
        ctx.stats.requests_sent += n;
        ctx.interval.sent += n;
        self.batch = Batch {
            len: n,
            answered: 0,
            bytes,
            written: 0,
            sent_at_ns: now_ns,
            until_close: None,
        };
        // SAFETY: the fixed batch lives in ctx for the run; wbuf is not
        // touched until this write completes.
        unsafe { ctx.driver.write(self.token, self.fd, ptr, bytes) };
        self.inflight |= Op::Write.bit();
        self.queue_read(ctx);
        self.state = State::Busy;
        self.deadline_ns = now_ns.saturating_add(ctx.timeout_ns);
        ctx.just_sent.push(self.token);
    }

    /// The round holding this connection's batch was handed to the kernel
    /// at `submitted_ns`: that is the send time, and the pacing's error
    /// (late, or early for a request pulled into a round that was sending).
    pub fn stamp(&mut self, ctx: &mut Ctx, submitted_ns: u64) {
        if self.state != State::Busy {
            return;
        }
        self.batch.sent_at_ns = submitted_ns;
        self.deadline_ns = submitted_ns.saturating_add(ctx.timeout_ns);
        for &at in &self.intended_ns {
            let offset = SendOffset::of(at.max(self.ready_ns), submitted_ns);
            ctx.stats
                .send_lateness_ns
                .saturating_record(offset.distance_ns());
            if let SendOffset::Early(ns) = offset {
                ctx.stats.send_early_ns.saturating_record(ns);
            }
        }
    }

    fn queue_read(&mut self, ctx: &mut Ctx) {
        if self.inflight & Op::Read.bit() != 0 {
            return;
        }
        let filled = self.rbuf.len();
        let spare = self.rbuf.capacity() - filled;
        // SAFETY: the spare capacity is not touched until the read completes
        // (the buffer never grows while a read is in flight).
        unsafe {
            let ptr = self.rbuf.as_mut_ptr().add(filled);
            ctx.driver.read(self.token, self.fd, ptr, spare);
        }
        self.inflight |= Op::Read.bit();
    }

    /// One of this connection's operations finished at `now_ns`.
    pub fn on_completion(&mut self, ctx: &mut Ctx, c: Completion, now_ns: u64) {
        debug_assert!(
            self.inflight & c.op.bit() != 0,
            "a completion for an operation in flight"
        );
        self.inflight &= !c.op.bit();
        if let State::Closing(after) = self.state {
            return self.close_done(ctx, after, now_ns);
        }
        match c.op {
            Op::Connect => self.on_connect(ctx, c.result, now_ns),
            Op::Write => self.on_write(ctx, c.result, now_ns),
            Op::Read => self.on_read(ctx, c.result, now_ns),
        }
    }

    fn on_connect(&mut self, ctx: &mut Ctx, result: i32, now_ns: u64) {
        if result < 0 {
            // SAFETY: ours; the connect was its only operation.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
            return self.connect_failed(ctx, now_ns);
        }
        ctx.stats.connects += 1;
        let one: libc::c_int = 1;
        // Requests are whole writes; Nagle would only delay them.
        // SAFETY: a valid int option on our socket.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        self.connect_failures = 0;
        self.backoff_ns = BACKOFF_MIN_NS;
        self.ready_ns = now_ns.max(ctx.start_ns);
        self.rbuf.clear();
        self.rpos = 0;
        self.next(ctx, now_ns);
    }

    fn on_write(&mut self, ctx: &mut Ctx, result: i32, now_ns: u64) {
        if result <= 0 {
            ctx.stats.errors.write += 1;
            return self.close(ctx, AfterClose::Reconnect);
        }
        self.batch.written += result as usize;
        if self.batch.written < self.batch.bytes {
            let base = match &ctx.fixed {
                Some(fixed) => fixed.as_ptr(),
                None => self.wbuf.as_ptr(),
            };
            let rest = self.batch.bytes - self.batch.written;
            // SAFETY: as in send_batch; the rest of the same buffer.
            unsafe {
                ctx.driver
                    .write(self.token, self.fd, base.add(self.batch.written), rest)
            };
            self.inflight |= Op::Write.bit();
            return;
        }
        ctx.stats.bytes_sent += self.batch.bytes as u64;
        if self.batch.answered == self.batch.len {
            self.batch_done(ctx, now_ns);
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx, result: i32, now_ns: u64) {
        if result < 0 {
            ctx.stats.errors.read += 1;
            return self.close(ctx, AfterClose::Reconnect);
        }
        if result == 0 {
            if let Some((status, head_len)) = self.batch.until_close {
                let len = self.rbuf.len() - self.rpos;
                let r = Response {
                    status,
                    len,
                    body: Body::Plain {
                        start: head_len,
                        end: len,
                    },
                    close: true,
                    interim: false,
                };
                let start = self.rpos;
                self.on_response(ctx, &r, start, now_ns);
            }
            ctx.stats.errors.closed += 1;
            return self.close(ctx, AfterClose::Reconnect);
        }
        // SAFETY: the kernel wrote `result` bytes into the spare capacity.
        unsafe { self.rbuf.set_len(self.rbuf.len() + result as usize) };
        self.parse(ctx, now_ns);
    }

    /// Consumes every complete response in the buffer; then finishes the
    /// batch, or reads more.
    fn parse(&mut self, ctx: &mut Ctx, now_ns: u64) {
        while self.batch.answered < self.batch.len {
            match parse_response(&self.rbuf[self.rpos..]) {
                Err(_) => {
                    ctx.stats.errors.parse += 1;
                    return self.close(ctx, AfterClose::Reconnect);
                }
                Ok(Parsed::Complete(r)) => {
                    let start = self.rpos;
                    self.rpos += r.len;
                    if r.interim {
                        continue;
                    }
                    self.on_response(ctx, &r, start, now_ns);
                    if r.close {
                        ctx.stats.errors.closed += 1;
                        return self.close(ctx, AfterClose::Reconnect);
                    }
                }
                Ok(Parsed::Partial) => {
                    self.batch.until_close = None;
                    return self.read_more(ctx);
                }
                Ok(Parsed::UntilClose { status, head_len }) => {
                    self.batch.until_close = Some((status, head_len));
                    return self.read_more(ctx);
                }
            }
        }
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        if self.batch.written == self.batch.bytes {
            self.batch_done(ctx, now_ns);
        }
    }

    /// Makes room (compacting, then growing up to [`MAX_RESPONSE_BYTES`])
    /// and queues a read.
    fn read_more(&mut self, ctx: &mut Ctx) {
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos.., 0);
            self.rbuf.truncate(self.rbuf.len() - self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.len() == self.rbuf.capacity() {
            if self.rbuf.capacity() >= MAX_RESPONSE_BYTES {
                ctx.stats.errors.parse += 1;
                return self.close(ctx, AfterClose::Reconnect);
            }
            self.rbuf
                .reserve(self.rbuf.capacity().max(READ_BUFFER_BYTES));
        }
        self.queue_read(ctx);
    }

    fn batch_done(&mut self, ctx: &mut Ctx, now_ns: u64) {
        self.ready_ns = now_ns;
        self.next(ctx, now_ns);
    }

    /// Records one final response: status, both latencies and, for 2xx,
    /// acked events (and their ids with `--ids-out`). `start` is the
    /// response's offset in `rbuf`.
    fn on_response(&mut self, ctx: &mut Ctx, r: &Response, start: usize, now_ns: u64) {
        let index = self.batch.answered;
        self.batch.answered += 1;
        let sent = self.batch.sent_at_ns;
        let intended = self
            .intended_ns
            .get(index as usize)
            .copied()
            .unwrap_or(sent);
        let corrected_us = now_ns.saturating_sub(intended) / 1_000;
        let uncorrected_us = now_ns.saturating_sub(sent) / 1_000;
        ctx.interval.record(corrected_us, uncorrected_us);
        ctx.stats.record_status(r.status);
        if (200..300).contains(&r.status) {
            ctx.stats.events_acked += match self.renderer {
                Some(_) => self.ack_ids(ctx, r, start, index as usize),
                None => ctx.template.events() as u64,
            };
        }
    }

    /// Writes the ids of request `index`'s events not listed as rejected;
    /// returns how many.
    fn ack_ids(&mut self, ctx: &mut Ctx, r: &Response, start: usize, index: usize) -> u64 {
        self.rejected.clear();
        match r.body {
            Body::Plain { start: b, end } => {
                rejected_indices(&self.rbuf[start + b..start + end], &mut self.rejected)
            }
            Body::Chunked { start: b, end } => {
                self.scratch.clear();
                // A chunked body that frames but does not decode acks all.
                if dechunk(&self.rbuf[start + b..start + end], &mut self.scratch).is_ok() {
                    rejected_indices(&self.scratch, &mut self.rejected);
                }
            }
        }
        self.rejected.sort_unstable();
        let renderer = self.renderer.as_ref().expect("ids are minted");
        let sink = ctx.ids.as_mut().expect("an id sink with ids");
        let mut acked = 0;
        for (i, id) in renderer.ids_of(index).iter().enumerate() {
            if self.rejected.binary_search(&i).is_err() {
                sink.push(id);
                acked += 1;
            }
        }
        acked
    }

    /// Shuts the socket down; once every in-flight operation has completed
    /// the socket is closed and `after` decides what comes next.
    fn close(&mut self, ctx: &mut Ctx, after: AfterClose) {
        self.state = State::Closing(after);
        self.deadline_ns = NO_DEADLINE;
        self.timer_gen = self.timer_gen.wrapping_add(1);
        if self.inflight != 0 {
            // SAFETY: shutdown(2) on our socket; it ends a pending send/recv.
            unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
            ctx.driver.cancel(self.token, self.fd);
            return;
        }
        // Nothing in flight: done at once (now is not needed to reconnect
        // later than the caller's round).
        self.close_done(ctx, after, 0);
    }

    fn close_done(&mut self, ctx: &mut Ctx, after: AfterClose, now_ns: u64) {
        if self.inflight != 0 {
            return;
        }
        // SAFETY: ours, and nothing is in flight on it any more.
        unsafe { libc::close(self.fd) };
        self.fd = -1;
        self.rbuf.clear();
        self.rpos = 0;
        self.batch = Batch::default();
        self.intended_ns.clear();
        let now_ns = now_ns.max(crate::clock::now_ns());
        match after {
            AfterClose::Reconnect if self.has_work(ctx, now_ns) => self.start(ctx, now_ns),
            AfterClose::Reconnect => self.finish(ctx),
            AfterClose::ConnectFailed => self.connect_failed(ctx, now_ns),
        }
    }
}
