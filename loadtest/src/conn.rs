//! One connection's task on its thread's monoio runtime: connect (with
//! backoff), write a batch of up to `--pipeline` requests in one write, read
//! their responses in order, record them, repeat until the quota or the
//! deadline.
//!
//! Closed loop: the next batch goes as soon as the last one is answered, and
//! latency runs from the write. Open loop (`--rate`): request k of this
//! connection is *intended* at `first + k × interval`; a batch carries every
//! request already due (up to the depth), and latency runs from each
//! request's intended time, so time spent queued behind a slow server is
//! counted (coordinated-omission correction).
//!
//! Nothing here allocates per request: the fixed batch is shared, the read
//! buffer and (for `--ids-out`) the render buffer are reused.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use monoio::time::Instant;

use crate::config::Config;
use crate::ids_out::IdSink;
use crate::object_id::IdMinter;
use crate::request::{Renderer, RequestTemplate};
use crate::response::{dechunk, parse_response, rejected_indices, Body, Parsed, Response};
use crate::stats::ThreadStats;

/// Initial read buffer per connection.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Largest response accepted; a larger one is a parse error.
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// First reconnect delay; doubles per consecutive failure.
pub const BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Consecutive connect failures after which a `--requests` run without a
/// `--duration` gives up on a connection (a duration run retries until the
/// end, e.g. across a server restart).
pub const MAX_CONNECT_FAILURES_WITHOUT_DEADLINE: u32 = 8;

/// State shared by the connections of one thread (never across threads,
/// except the progress counter, which only this thread writes).
pub struct ThreadCtx {
    /// The run's validated configuration.
    pub config: Arc<Config>,
    /// The request template, shared by all threads.
    pub template: Arc<RequestTemplate>,
    /// `pipeline` copies of the fixed request, when ids are not minted.
    pub fixed: Option<Rc<Vec<u8>>>,
    /// Size of one fixed request, in bytes; 0 when ids are minted (requests are
    /// then rendered per batch).
    pub request_bytes: usize,
    /// When the run ends (`--duration`); `None` for a `--requests`-only run.
    pub deadline: Option<Instant>,
    /// This thread's counters and latency histogram.
    pub stats: RefCell<ThreadStats>,
    /// Responses received so far on this thread, for the main thread's progress
    /// lines.
    pub progress: Arc<AtomicU64>,
    /// Mints the `_id`s of this thread's requests (one minter per thread keeps
    /// them unique without atomics).
    pub minter: RefCell<IdMinter>,
    /// This thread's buffer in front of the `--ids-out` file, when given.
    pub ids: Option<RefCell<IdSink>>,
}

/// Open-loop timetable of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Intended send time of request 0.
    pub first: Instant,
    /// Time between consecutive requests on this connection (connections / rate).
    pub interval: Duration,
}

impl Schedule {
    /// Intended send time of request `k`: `first + k × interval`.
    pub fn at(&self, k: u64) -> Instant {
        self.first + Duration::from_secs_f64(self.interval.as_secs_f64() * k as f64)
    }

    /// How many requests from `k` on are due at `now` (at least 1).
    fn due(&self, k: u64, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.first).as_secs_f64();
        let last_due = (elapsed / self.interval.as_secs_f64()) as u64;
        (last_due + 1).saturating_sub(k).max(1)
    }
}

/// What one connection is to do.
#[derive(Debug, Clone, Copy)]
pub struct ConnPlan {
    /// Requests this connection sends (`--requests` split exactly).
    pub quota: Option<u64>,
    /// Open-loop timetable; `None` in closed loop.
    pub schedule: Option<Schedule>,
}

enum Connected {
    Yes,
    Stop,
}

/// Runs one connection until its quota is sent and answered, the deadline
/// passes, or (with no deadline) connecting fails
/// [`MAX_CONNECT_FAILURES_WITHOUT_DEADLINE`] times in a row.
pub async fn run(ctx: Rc<ThreadCtx>, plan: ConnPlan) {
    let renderer = ctx
        .template
        .mints_ids()
        .then(|| Renderer::new(ctx.template.clone()));
    let mut conn = Connection {
        ctx,
        plan,
        stream: None,
        rbuf: Vec::with_capacity(READ_BUFFER_BYTES),
        rpos: 0,
        wbuf: Some(Vec::new()),
        renderer,
        scratch: Vec::new(),
        rejected: Vec::new(),
        sent: 0,
        connect_failures: 0,
        backoff: BACKOFF_MIN,
    };
    conn.run().await;
}

struct Connection {
    ctx: Rc<ThreadCtx>,
    plan: ConnPlan,
    stream: Option<TcpStream>,
    /// Received bytes; `rpos..len` not yet parsed.
    rbuf: Vec<u8>,
    rpos: usize,
    /// Render buffer for `--ids-out` batches (taken while being written).
    wbuf: Option<Vec<u8>>,
    renderer: Option<Renderer>,
    /// Dechunked ack bodies.
    scratch: Vec<u8>,
    rejected: Vec<usize>,
    /// Requests sent so far (also the next schedule index).
    sent: u64,
    connect_failures: u32,
    backoff: Duration,
}

/// One batch in flight: when it went, and the schedule index of its first
/// request.
#[derive(Clone, Copy)]
struct Batch {
    len: u64,
    sent_at: Instant,
    first_k: u64,
}

impl Connection {
    async fn run(&mut self) {
        while let Some(n) = self.next_batch_len().await {
            if let Connected::Stop = self.ensure_connected().await {
                return;
            }
            let Some(batch) = self.send(n).await else {
                continue;
            };
            self.receive(batch).await;
        }
    }

    fn past_deadline(&self, at: Instant) -> bool {
        self.ctx.deadline.is_some_and(|d| at >= d)
    }

    /// Size of the next batch, waiting for the first request's intended
    /// time in open loop; `None` when this connection is done.
    async fn next_batch_len(&mut self) -> Option<u64> {
        let depth = self.ctx.config.pipeline as u64;
        let left = self.plan.quota.map_or(u64::MAX, |q| q - self.sent);
        let mut n = depth.min(left);
        if n == 0 {
            return None;
        }
        match self.plan.schedule {
            None => {
                if self.past_deadline(Instant::now()) {
                    return None;
                }
            }
            Some(s) => {
                // The run ends at the deadline: a backlog still queued
                // behind a slow server then is not sent.
                let next = s.at(self.sent);
                if self.past_deadline(next) || self.past_deadline(Instant::now()) {
                    return None;
                }
                monoio::time::sleep_until(next).await;
                n = n.min(s.due(self.sent, Instant::now()));
                // Requests intended after the deadline are never sent.
                if let Some(d) = self.ctx.deadline {
                    while n > 1 && s.at(self.sent + n - 1) >= d {
                        n -= 1;
                    }
                }
            }
        }
        Some(n)
    }

    async fn ensure_connected(&mut self) -> Connected {
        let timeout = self.ctx.config.timeout;
        while self.stream.is_none() {
            if self.past_deadline(Instant::now()) {
                return Connected::Stop;
            }
            let attempt = TcpStream::connect_addr(self.ctx.config.target.addr);
            match monoio::time::timeout(timeout, attempt).await {
                Ok(Ok(stream)) => {
                    // Requests are whole writes; Nagle would only delay them.
                    let _ = stream.set_nodelay(true);
                    self.stream = Some(stream);
                    self.rbuf.clear();
                    self.rpos = 0;
                    self.connect_failures = 0;
                    self.backoff = BACKOFF_MIN;
                    self.ctx.stats.borrow_mut().connects += 1;
                }
                Ok(Err(_)) | Err(_) => {
                    self.ctx.stats.borrow_mut().errors.connect += 1;
                    self.connect_failures += 1;
                    if self.ctx.deadline.is_none()
                        && self.connect_failures >= MAX_CONNECT_FAILURES_WITHOUT_DEADLINE
                    {
                        return Connected::Stop;
                    }
                    let mut pause = self.backoff;
                    if let Some(d) = self.ctx.deadline {
                        pause = pause.min(d.saturating_duration_since(Instant::now()));
                    }
                    monoio::time::sleep(pause).await;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        Connected::Yes
    }

    /// Writes `n` requests in one write. The requests count as sent even
    /// when the write fails (they may have reached the server).
    async fn send(&mut self, n: u64) -> Option<Batch> {
        let first_k = self.sent;
        self.sent += n;
        let stream = self.stream.as_mut().expect("connected before send");
        let sent_at = Instant::now();
        let (result, bytes) = match &self.ctx.fixed {
            Some(fixed) => {
                let len = self.ctx.request_bytes * n as usize;
                let (result, _) = stream.write_all(fixed.clone().slice(..len)).await;
                (result, len)
            }
            None => {
                let mut wbuf = self.wbuf.take().expect("render buffer present");
                let renderer = self
                    .renderer
                    .as_mut()
                    .expect("renderer when ids are minted");
                renderer.render_batch(n as usize, &mut self.ctx.minter.borrow_mut(), &mut wbuf);
                let len = wbuf.len();
                let (result, wbuf) = stream.write_all(wbuf).await;
                self.wbuf = Some(wbuf);
                (result, len)
            }
        };
        let mut stats = self.ctx.stats.borrow_mut();
        stats.requests_sent += n;
        if result.is_err() {
            stats.errors.write += 1;
            drop(stats);
            self.stream = None;
            return None;
        }
        stats.bytes_sent += bytes as u64;
        Some(Batch {
            len: n,
            sent_at,
            first_k,
        })
    }

    /// Reads the batch's responses in order; on any failure the connection
    /// is dropped and the unanswered requests stay unanswered (never acked).
    async fn receive(&mut self, batch: Batch) {
        let read_deadline = batch.sent_at + self.ctx.config.timeout;
        let mut answered = 0u64;
        while answered < batch.len {
            let parsed = match parse_response(&self.rbuf[self.rpos..]) {
                Ok(p) => p,
                Err(_) => {
                    self.ctx.stats.borrow_mut().errors.parse += 1;
                    self.stream = None;
                    return;
                }
            };
            let until_close = match parsed {
                Parsed::Complete(r) => {
                    let start = self.rpos;
                    self.rpos += r.len;
                    if r.interim {
                        continue;
                    }
                    self.on_response(&r, start, &batch, answered);
                    answered += 1;
                    if r.close {
                        self.ctx.stats.borrow_mut().errors.closed += 1;
                        self.stream = None;
                        return;
                    }
                    continue;
                }
                Parsed::Partial => None,
                Parsed::UntilClose { status, head_len } => Some((status, head_len)),
            };
            match self.read_more(read_deadline).await {
                ReadOutcome::Data => {}
                ReadOutcome::Eof => {
                    if let Some((status, head_len)) = until_close {
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
                        self.on_response(&r, self.rpos, &batch, answered);
                    }
                    self.ctx.stats.borrow_mut().errors.closed += 1;
                    self.stream = None;
                    return;
                }
                ReadOutcome::TimedOut => {
                    self.ctx.stats.borrow_mut().errors.timeout += batch.len - answered;
                    self.stream = None;
                    return;
                }
                ReadOutcome::Failed => {
                    self.stream = None;
                    return;
                }
            }
        }
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
    }

    /// Appends received bytes after compacting and, if full, growing.
    async fn read_more(&mut self, deadline: Instant) -> ReadOutcome {
        if self.rpos > 0 {
            self.rbuf.copy_within(self.rpos.., 0);
            self.rbuf.truncate(self.rbuf.len() - self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.len() == self.rbuf.capacity() {
            if self.rbuf.capacity() >= MAX_RESPONSE_BYTES {
                self.ctx.stats.borrow_mut().errors.parse += 1;
                return ReadOutcome::Failed;
            }
            self.rbuf
                .reserve(self.rbuf.capacity().max(READ_BUFFER_BYTES));
        }
        let stream = self.stream.as_mut().expect("connected while reading");
        let buf = std::mem::take(&mut self.rbuf);
        let filled = buf.len();
        let cap = buf.capacity();
        match monoio::time::timeout_at(deadline, stream.read(buf.slice_mut(filled..cap))).await {
            Ok((result, slice)) => {
                self.rbuf = slice.into_inner();
                match result {
                    Ok(0) => ReadOutcome::Eof,
                    Ok(_) => ReadOutcome::Data,
                    Err(_) => {
                        self.ctx.stats.borrow_mut().errors.read += 1;
                        ReadOutcome::Failed
                    }
                }
            }
            Err(_) => {
                // The cancelled read kept the buffer; the connection is
                // dropped anyway, so start the next one with a fresh one.
                self.rbuf = Vec::with_capacity(READ_BUFFER_BYTES);
                ReadOutcome::TimedOut
            }
        }
    }

    /// Records one final response: status, latency and, for 2xx, acked
    /// events (and their ids with `--ids-out`). `start` is the response's
    /// offset in `rbuf`.
    fn on_response(&mut self, r: &Response, start: usize, batch: &Batch, index: u64) {
        let now = Instant::now();
        let began = match self.plan.schedule {
            Some(s) => s.at(batch.first_k + index),
            None => batch.sent_at,
        };
        let latency_us = now.saturating_duration_since(began).as_micros() as u64;
        let events = self.ctx.template.events() as u64;
        let acked = if (200..300).contains(&r.status) {
            match &self.renderer {
                Some(_) => self.ack_ids(r, start, index as usize),
                None => events,
            }
        } else {
            0
        };
        let mut stats = self.ctx.stats.borrow_mut();
        stats.events_acked += acked;
        stats.record_response(r.status, latency_us);
        self.ctx.progress.store(stats.responses, Ordering::Relaxed);
    }

    /// Writes the ids of request `index`'s events not listed as rejected;
    /// returns how many.
    fn ack_ids(&mut self, r: &Response, start: usize, index: usize) -> u64 {
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
        let mut sink = self
            .ctx
            .ids
            .as_ref()
            .expect("id sink with ids")
            .borrow_mut();
        let mut acked = 0;
        for (i, id) in renderer.ids_of(index).iter().enumerate() {
            if self.rejected.binary_search(&i).is_err() {
                sink.push(id);
                acked += 1;
            }
        }
        acked
    }
}

enum ReadOutcome {
    Data,
    Eof,
    TimedOut,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_counts_due_requests() {
        let first = Instant::now();
        let s = Schedule {
            first,
            interval: Duration::from_millis(10),
        };
        assert_eq!(s.at(3), first + Duration::from_millis(30));
        assert_eq!(s.due(0, first), 1);
        assert_eq!(s.due(0, first + Duration::from_millis(35)), 4);
        assert_eq!(s.due(2, first + Duration::from_millis(35)), 2);
        // Never less than one: the caller only asks once `k` is due.
        assert_eq!(s.due(9, first), 1);
    }
}
