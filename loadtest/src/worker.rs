//! One worker thread's event loop: its connections, its [`Driver`], its
//! timers, and the pacing.
//!
//! Each round: hand the interval of the second that ended to the main
//! thread, check deadlines, fire due timers (a paced send, a reconnect),
//! then hand every send queued in the round to the kernel in the same
//! system call that waits, stamped with the time taken just before it (the
//! send time the pacing is judged by). The wait is where the pacing is made: when the next
//! paced send is further away than the [`EarlyWake`] margin the thread
//! sleeps on the absolute timerfd until that margin before it; inside the
//! margin it polls its completions without blocking and yields the CPU
//! between polls, so the send leaves within microseconds of its time while
//! the server under test still gets the CPU whenever it wants it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{Receiver, Sender};

use crate::clock::now_ns;
use crate::conn::{Conn, Ctx, NO_DEADLINE};
use crate::driver::{Completion, IoDriverKind, Woken};
use crate::pacing::{plan_wait, send_horizon, EarlyWake, Wait, NS_PER_S};
use crate::stats::{Interval, ThreadStats};

/// Length of one interval of the per-second series and the `--hdr-log`.
pub const INTERVAL_NS: u64 = NS_PER_S;
/// Longest the worker waits, at the end, for the kernel to give back the
/// timer's buffer; past it the buffer is leaked rather than freed under
/// the kernel.
pub const DRAIN_LIMIT_NS: u64 = NS_PER_S;
/// Timer slack asked for (ns): the kernel's default 50 µs would blur
/// every timed wait.
const TIMER_SLACK_NS: libc::c_ulong = 1;

/// What a worker tells the main thread while it runs.
pub enum WorkerMsg {
    /// A finished interval of worker `thread`.
    Interval {
        /// The worker's thread index.
        thread: usize,
        /// Its latency and counts over the interval.
        interval: Box<Interval>,
    },
    /// Worker `thread` sent its last interval (sent by the thread's
    /// wrapper on every way out, failures included).
    Finished {
        /// The worker's thread index.
        thread: usize,
    },
}

/// What a worker returns when its connections are done.
pub struct WorkerOutput {
    /// The thread's totals.
    pub stats: ThreadStats,
    /// Ids written to `--ids-out` (0 without it).
    pub ids_written: u64,
}

/// A timer: `(at_ns, token, generation, precise)` in a min-heap.
type Timer = Reverse<(u64, u32, u32, bool)>;

/// The worker of one thread.
pub struct Worker {
    thread: usize,
    ctx: Ctx,
    conns: Vec<Conn>,
    done: Vec<bool>,
    live: usize,
    timers: BinaryHeap<Timer>,
    early: Option<EarlyWake>,
    completions: Vec<Completion>,
    msgs: Sender<WorkerMsg>,
    recycled: Receiver<Box<Interval>>,
    interval_start_ns: u64,
    next_tick_ns: u64,
    next_sweep_ns: u64,
}

impl Worker {
    /// A worker over `conns` with the thread's `ctx`. `mean_gap_ns` is the
    /// mean time between this thread's paced sends (`None` in closed loop).
    pub fn new(
        thread: usize,
        ctx: Ctx,
        conns: Vec<Conn>,
        mean_gap_ns: Option<f64>,
        msgs: Sender<WorkerMsg>,
        recycled: Receiver<Box<Interval>>,
    ) -> Worker {
        let start = ctx.start_ns;
        Worker {
            thread,
            done: vec![false; conns.len()],
            live: conns.len(),
            completions: Vec::with_capacity(conns.len() * 2),
            timers: BinaryHeap::with_capacity(conns.len() * 2),
            early: mean_gap_ns.map(EarlyWake::new),
            ctx,
            conns,
            msgs,
            recycled,
            interval_start_ns: start,
            next_tick_ns: start + INTERVAL_NS,
            next_sweep_ns: 0,
        }
    }

    /// The driver this worker runs on.
    pub fn driver_kind(&self) -> IoDriverKind {
        self.ctx.driver.kind()
    }

    /// Runs every connection to its end.
    pub fn run(mut self) -> Result<WorkerOutput, String> {
        // SAFETY: prctl on the calling thread only.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS) };
        let now = now_ns();
        for token in 0..self.conns.len() {
            self.conns[token].start(&mut self.ctx, now);
            self.settle(token);
        }
        self.absorb_timers();
        while self.live > 0 {
            let now = now_ns();
            self.tick(now);
            self.sweep(now);
            self.fire_timers(now);
            if self.live == 0 {
                break;
            }
            self.wait()?;
            let now = now_ns();
            let mut completions = std::mem::take(&mut self.completions);
            for c in completions.drain(..) {
                let token = c.token as usize;
                if token < self.conns.len() {
                    self.conns[token].on_completion(&mut self.ctx, c, now);
                    self.settle(token);
                }
            }
            self.completions = completions;
            self.absorb_timers();
        }
        self.finish()
    }

    /// Notes a connection that just finished.
    fn settle(&mut self, token: usize) {
        if !self.done[token] && self.conns[token].done() {
            self.done[token] = true;
            self.live -= 1;
        }
    }

    fn absorb_timers(&mut self) {
        for t in self.ctx.new_timers.drain(..) {
            self.timers.push(Reverse(t));
        }
    }

    /// Hands each finished second to the main thread.
    fn tick(&mut self, now: u64) {
        while now >= self.next_tick_ns {
            self.ctx.interval.length_ns = self.next_tick_ns - self.interval_start_ns;
            let next_index = self.ctx.interval.index + 1;
            self.send_interval(next_index);
            self.interval_start_ns = self.next_tick_ns;
            self.next_tick_ns += INTERVAL_NS;
        }
    }

    fn send_interval(&mut self, next_index: u64) {
        // A cleared interval from the main thread when one is back; the
        // swap costs nothing on this thread's hot path.
        let mut fresh = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Box::new(Interval::new(next_index)));
        fresh.relabel(next_index);
        let full = std::mem::replace(&mut self.ctx.interval, *fresh);
        // The main thread outlives the workers; a send can only fail if it
        // panicked, and then the run fails anyway.
        let _ = self.msgs.send(WorkerMsg::Interval {
            thread: self.thread,
            interval: Box::new(full),
        });
    }

    /// Checks connect and response deadlines. A deadline set later than a
    /// sweep is at least `--timeout` after it, so the next sweep is due at
    /// the earliest known deadline or one timeout on.
    fn sweep(&mut self, now: u64) {
        if now < self.next_sweep_ns {
            return;
        }
        let mut earliest = now.saturating_add(self.ctx.timeout_ns);
        for token in 0..self.conns.len() {
            let deadline = self.conns[token].deadline_ns;
            if deadline == NO_DEADLINE {
                continue;
            }
            if deadline <= now {
                self.conns[token].on_deadline(&mut self.ctx, now);
                self.settle(token);
            } else {
                earliest = earliest.min(deadline);
            }
        }
        self.next_sweep_ns = earliest;
        self.absorb_timers();
    }

    /// Fires the timers due at `now`; then, when the round sends, the paced
    /// sends due within one send's cost of it ([`send_horizon`]), which
    /// would otherwise come out late behind this round's system call.
    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((at, token, gen, _))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.fire(token, gen, now, now);
        }
        let horizon = send_horizon(now, !self.ctx.just_sent.is_empty());
        while let Some(&Reverse((at, token, gen, precise))) = self.timers.peek() {
            if at > horizon || !precise {
                break;
            }
            self.timers.pop();
            self.fire(token, gen, now, horizon);
        }
    }

    /// Fires one timer, if it still counts.
    fn fire(&mut self, token: u32, gen: u32, now: u64, due: u64) {
        let t = token as usize;
        if self.conns[t].timer_gen() == gen && !self.done[t] {
            self.conns[t].on_timer(&mut self.ctx, now, due);
            self.settle(t);
        }
        // Timers set while firing are later than the horizon (a send sets a
        // deadline, not a timer; a paced timer is for a request not yet
        // due), so the loops end.
        self.absorb_timers();
    }

    /// Hands the round's queued operations to the kernel and collects
    /// completions (blocking or not), stamping each batch queued in the
    /// round with the time just before: one system call both submits the
    /// round's sends and waits, as cheap as closed loop needs, as precise as
    /// open loop needs.
    fn submit_and_wait(&mut self, block: bool) -> Result<Woken, String> {
        if !self.ctx.just_sent.is_empty() {
            let submitted = now_ns();
            let sent = std::mem::take(&mut self.ctx.just_sent);
            for &token in &sent {
                self.conns[token as usize].stamp(&mut self.ctx, submitted);
            }
            self.ctx.just_sent = sent;
            self.ctx.just_sent.clear();
        }
        // Completions already taken are handled first: never block on them.
        let block = block && self.completions.is_empty();
        self.ctx
            .driver
            .wait(block, &mut self.completions)
            .map_err(|e| format!("submitting to or waiting on the kernel failed: {e}"))
    }

    /// The next timed event: `(at_ns, precise)`.
    fn next_event(&mut self) -> Option<(u64, bool)> {
        // Drop timers that no longer count.
        while let Some(&Reverse((_, token, gen, _))) = self.timers.peek() {
            let t = token as usize;
            if self.conns[t].timer_gen() == gen && !self.done[t] {
                break;
            }
            self.timers.pop();
        }
        let timer = self.timers.peek().map(|&Reverse((at, _, _, p))| (at, p));
        let tick = Some((self.next_tick_ns.min(self.next_sweep_ns), false));
        match (timer, tick) {
            (Some(t), Some(k)) if t.0 <= k.0 => Some(t),
            (_, k) => k,
        }
    }

    fn wait(&mut self) -> Result<(), String> {
        let (margin, no_yield) = self
            .early
            .as_ref()
            .map_or((0, 0), |e| (e.margin_ns(), e.no_yield_ns()));
        let next = self.next_event();
        match plan_wait(now_ns(), next, margin, no_yield) {
            // Completions that are already there are taken on the way.
            Wait::Now => {
                self.submit_and_wait(false)?;
            }
            Wait::Spin { yield_cpu } => {
                self.submit_and_wait(false)?;
                if self.completions.is_empty() {
                    self.ctx.stats.spin_polls += 1;
                    if yield_cpu {
                        // Low priority: whatever else wants this CPU (the
                        // server under test) gets it before the next poll.
                        // SAFETY: sched_yield has no arguments and cannot fail.
                        unsafe { libc::sched_yield() };
                    } else {
                        // The send is too close to risk losing the CPU.
                        std::hint::spin_loop();
                    }
                }
            }
            Wait::SleepUntil(at) => {
                if self.early.is_some() && !self.ctx.just_sent.is_empty() {
                    // Paced sends go before the timer is re-armed (a
                    // system call of its own); closed loop saves the call.
                    self.submit_and_wait(false)?;
                }
                self.ctx
                    .driver
                    .arm_timer(at)
                    .map_err(|e| format!("arming the timer failed: {e}"))?;
                let woken = self.submit_and_wait(true)?;
                let precise = next.is_some_and(|(_, p)| p);
                if woken.timer && precise {
                    let late = now_ns().saturating_sub(at);
                    self.ctx.stats.timer_wake_late_ns.saturating_record(late);
                    if let Some(e) = &mut self.early {
                        e.observe(late);
                    }
                }
            }
            Wait::Forever => {
                self.submit_and_wait(true)?;
            }
        }
        Ok(())
    }

    /// Sends the last (partial) interval, gives the timer's buffer back and
    /// returns the totals.
    fn finish(mut self) -> Result<WorkerOutput, String> {
        let now = now_ns();
        self.tick(now);
        self.ctx.interval.length_ns = now.saturating_sub(self.interval_start_ns);
        let next_index = self.ctx.interval.index + 1;
        self.send_interval(next_index);
        self.ctx.driver.stop_timer();
        let give_up = now_ns() + DRAIN_LIMIT_NS;
        while !self.ctx.driver.idle() && now_ns() < give_up {
            self.completions.clear();
            if self.ctx.driver.wait(false, &mut self.completions).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let ids_written = match self.ctx.ids.take() {
            Some(sink) => sink
                .finish()
                .map_err(|e| format!("--ids-out: write failed, the file is incomplete: {e}"))?,
            None => 0,
        };
        let stats = std::mem::take(&mut self.ctx.stats);
        if !self.ctx.driver.idle() {
            // The kernel still holds the timer's buffer: leak the driver
            // rather than free memory it may write to.
            std::mem::forget(self);
        }
        Ok(WorkerOutput { stats, ids_written })
    }
}
