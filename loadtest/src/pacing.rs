//! Open-loop pacing, free of I/O and of the real clock so it can be tested
//! with made-up times: each connection's [`Schedule`] of intended send times
//! (constant or Poisson arrivals, in absolute nanoseconds of
//! `CLOCK_MONOTONIC`), the [`EarlyWake`] estimate of how early a thread must
//! ask the kernel to wake it so that a short spin reaches each send on time,
//! and [`plan_wait`], the decision between sleeping and spinning.
//!
//! Why the spin: a timer wake-up (timerfd, epoll or io_uring timeout) on a
//! virtual machine arrives 35–170 µs late, far more than the 20 µs the
//! generator promises at p99. So the worker asks to be woken a margin
//! before the next send, learned from the wake-ups it actually got, and
//! covers the rest by polling its completions with `sched_yield` between
//! polls (the server under test gets the CPU whenever it wants it). The
//! margin is capped at a share of the thread's mean send gap, so at high
//! rates the spin never becomes a busy loop.
//!
//! Why [`send_horizon`]: handing a loopback send to the kernel costs the
//! sender 9–13 µs at p50 and 60–70 µs at p99 (the receiver's TCP stack and
//! the wake-up of the server run inside the sender's system call). With
//! Poisson arrivals a thread's next send is often due while it is still
//! inside that call, and comes out late by the rest of it. So a paced send
//! due within [`COALESCE_NS`] of a send being handed to the kernel now goes
//! in the same system call, early by at most that much; [`SendOffset`]
//! counts it as early, never as on time.

/// Nanoseconds in a second.
pub const NS_PER_S: u64 = 1_000_000_000;
/// Wake-ups remembered by [`EarlyWake`] (a sliding window). With
/// [`WAKE_OUTLIERS_IGNORED`] the margin covers about 99.7 % of wake-ups:
/// the send lateness is promised at p99, and a wake-up later than the
/// margin is a late send.
pub const WAKE_WINDOW: usize = 1024;
/// Largest wake-ups of the window ignored by [`EarlyWake`]: one or two
/// preempted wake-ups should not make every later one spin longer.
pub const WAKE_OUTLIERS_IGNORED: usize = 2;
/// Added to the observed lateness: the spin also has to notice the time.
pub const WAKE_SAFETY_NS: u64 = 5_000;
/// Margin before anything was observed (a VM's typical wake-up delay).
pub const WAKE_MARGIN_INITIAL_NS: u64 = 100_000;
/// The margin is never below this (a bare-metal wake-up is a few µs late).
pub const WAKE_MARGIN_MIN_NS: u64 = 5_000;
/// The margin is never above this, whatever the wake-ups did.
pub const WAKE_MARGIN_MAX_NS: u64 = 500_000;
/// Share of a thread's mean gap between sends it may spend spinning: at
/// 2,000 req/s on two threads (1 ms gaps) a 250 µs margin; at 15,000 req/s
/// (133 µs gaps) 33 µs, so high rates sleep rather than spin.
pub const SPIN_SHARE_OF_GAP: f64 = 0.25;
/// A paced send due at most this long after a round that hands a send to
/// the kernel joins that round (see [`send_horizon`]): about one loopback
/// send's cost at p50, and under [`SEND_LATENESS_TOLERANCE_US`] so that a
/// send pulled forward is still within the promise.
pub const COALESCE_NS: u64 = 15_000;
// Pulled forward, a send stays within the promise.
const _: () = assert!(COALESCE_NS < SEND_LATENESS_TOLERANCE_US * 1_000);
/// The last stretch before a paced send is spun without `sched_yield`: a
/// yield that hands the CPU to the server for longer than the time left
/// makes the send late, and measured on 2 cores that was the largest cause
/// of sends more than 20 µs late (45 % of them). Never more than a quarter
/// of the spin's cap ([`EarlyWake::no_yield_ns`]), so at most 1/16 of a
/// thread's mean send gap keeps the CPU from the server (wake-up
/// preemption still lets it in).
pub const SPIN_NO_YIELD_NS: u64 = 60_000;
/// Send lateness above this at p99 means the run was not paced as promised
/// (a warning in the report).
pub const SEND_LATENESS_TOLERANCE_US: u64 = 20;

/// How requests arrive on each connection (`--arrivals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Evenly spaced: connection `g` sends at `start + g/R + k·C/R`.
    Constant,
    /// A Poisson process per connection (exponential gaps of mean `C/R`),
    /// each connection independent of the others.
    Poisson,
}

impl Arrivals {
    /// The flag value: `constant` or `poisson`.
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// SplitMix64: small, fast and good enough for exponential gaps; one
/// stream per connection, seeded from the run seed and the connection.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream for connection `stream` of the run seeded with `seed`.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        // 1 - u is in (0, 1]: ln never sees 0.
        -(1.0 - self.unit()).ln() * mean
    }
}

/// One connection's intended send times, in absolute nanoseconds.
///
/// Constant arrivals are computed as `first + k × gap` (no accumulated
/// rounding, so a long run keeps the exact rate); Poisson arrivals add one
/// exponential gap per request, kept in `f64` nanoseconds.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrivals: Arrivals,
    first_ns: f64,
    gap_mean_ns: f64,
    /// Index of the next request (the one [`Schedule::next_ns`] is for).
    k: u64,
    /// Its intended time (Poisson: the running sum of gaps).
    next_at_ns: f64,
    rng: Rng,
}

impl Schedule {
    /// The schedule of connection `g` of `connections` at a total `rate`
    /// (requests/s) starting at `start_ns`. Constant arrivals stagger the
    /// connections by `1/rate`; Poisson ones start with one random gap.
    pub fn new(
        arrivals: Arrivals,
        start_ns: u64,
        g: usize,
        connections: usize,
        rate: f64,
        seed: u64,
    ) -> Schedule {
        let gap_mean_ns = connections as f64 * NS_PER_S as f64 / rate;
        let mut rng = Rng::new(seed, g as u64);
        let first_ns = match arrivals {
            Arrivals::Constant => start_ns as f64 + g as f64 * NS_PER_S as f64 / rate,
            Arrivals::Poisson => start_ns as f64 + rng.exponential(gap_mean_ns),
        };
        Schedule {
            arrivals,
            first_ns,
            gap_mean_ns,
            k: 0,
            next_at_ns: first_ns,
            rng,
        }
    }

    /// Intended time of the next request not yet taken.
    pub fn next_ns(&self) -> u64 {
        self.next_at_ns as u64
    }

    /// Requests taken so far.
    pub fn taken(&self) -> u64 {
        self.k
    }

    /// Takes the next request: returns its intended time and moves on.
    pub fn take(&mut self) -> u64 {
        let at = self.next_ns();
        self.k += 1;
        self.next_at_ns = match self.arrivals {
            Arrivals::Constant => self.first_ns + self.k as f64 * self.gap_mean_ns,
            Arrivals::Poisson => self.next_at_ns + self.rng.exponential(self.gap_mean_ns),
        };
        at
    }

    /// Requests intended before `deadline_ns` and not taken: the backlog a
    /// run leaves when it ends. Exact for constant arrivals; for Poisson the
    /// expected count (drawing them all could take as long as the run).
    pub fn left_before(&self, deadline_ns: u64) -> u64 {
        let next = self.next_at_ns;
        let end = deadline_ns as f64;
        if next >= end {
            return 0;
        }
        match self.arrivals {
            // Indices k..K with first + K·gap < end.
            Arrivals::Constant => {
                let last = ((end - self.first_ns) / self.gap_mean_ns).ceil() as u64;
                last.saturating_sub(self.k)
            }
            Arrivals::Poisson => 1 + ((end - next) / self.gap_mean_ns) as u64,
        }
    }
}

/// How early to ask for a wake-up: learned from the lateness of the timer
/// wake-ups this thread got, over a sliding window of [`WAKE_WINDOW`].
#[derive(Debug, Clone)]
pub struct EarlyWake {
    window: [u32; WAKE_WINDOW],
    len: usize,
    pos: usize,
    margin_ns: u64,
    cap_ns: u64,
    since_update: usize,
}

/// Recompute the margin after this many new wake-ups (a partial sort of the
/// window each time would cost more than it gains).
const WAKE_UPDATE_EVERY: usize = 16;

impl EarlyWake {
    /// A fresh estimate for a thread whose sends are `mean_gap_ns` apart on
    /// average; the margin never exceeds [`SPIN_SHARE_OF_GAP`] of it.
    pub fn new(mean_gap_ns: f64) -> EarlyWake {
        let cap_ns = ((mean_gap_ns * SPIN_SHARE_OF_GAP) as u64)
            .clamp(WAKE_MARGIN_MIN_NS, WAKE_MARGIN_MAX_NS);
        EarlyWake {
            window: [0; WAKE_WINDOW],
            len: 0,
            pos: 0,
            margin_ns: WAKE_MARGIN_INITIAL_NS.min(cap_ns),
            cap_ns,
            since_update: 0,
        }
    }

    /// How long before a send to be woken.
    pub fn margin_ns(&self) -> u64 {
        self.margin_ns
    }

    /// The most the margin may be (a share of the mean gap).
    pub fn cap_ns(&self) -> u64 {
        self.cap_ns
    }

    /// How long before a send the spin stops yielding the CPU: at 2,000
    /// req/s on two threads [`SPIN_NO_YIELD_NS`], at 15,000 req/s 8 µs.
    pub fn no_yield_ns(&self) -> u64 {
        (self.cap_ns / 4).min(SPIN_NO_YIELD_NS)
    }

    /// Records one timer wake-up that came `late_ns` after the time asked.
    pub fn observe(&mut self, late_ns: u64) {
        self.window[self.pos] = late_ns.min(u64::from(u32::MAX)) as u32;
        self.pos = (self.pos + 1) % WAKE_WINDOW;
        self.len = (self.len + 1).min(WAKE_WINDOW);
        self.since_update += 1;
        if self.since_update >= WAKE_UPDATE_EVERY || self.len < WAKE_UPDATE_EVERY {
            self.since_update = 0;
            self.update();
        }
    }

    fn update(&mut self) {
        let mut sorted = self.window;
        let seen = &mut sorted[..self.len];
        // The largest value once the outliers are set aside.
        let skip = WAKE_OUTLIERS_IGNORED.min(self.len - 1);
        let index = self.len - 1 - skip;
        let (_, nth, _) = seen.select_nth_unstable(index);
        self.margin_ns = (u64::from(*nth) + WAKE_SAFETY_NS).clamp(WAKE_MARGIN_MIN_NS, self.cap_ns);
    }
}

/// What the worker does until its next timed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Something is due now.
    Now,
    /// Poll without blocking: the next event is closer than the wake-up
    /// margin. Between polls the CPU is yielded, except in the last
    /// stretch before the send (`yield_cpu` false).
    Spin {
        /// Whether to `sched_yield` before the next poll.
        yield_cpu: bool,
    },
    /// Block until I/O completes or the kernel timer fires at this time.
    SleepUntil(u64),
    /// Nothing is timed: block until I/O completes.
    Forever,
}

/// The wait for a worker at `now_ns` whose next timed event is `next_ns`.
/// `precise` events (paced sends) get the early wake-up and the spin, which
/// stops yielding `no_yield_ns` before the send; others (timeouts, the
/// one-second ticks) are simply slept until.
pub fn plan_wait(
    now_ns: u64,
    next_ns: Option<(u64, bool)>,
    margin_ns: u64,
    no_yield_ns: u64,
) -> Wait {
    match next_ns {
        None => Wait::Forever,
        Some((at, _)) if at <= now_ns => Wait::Now,
        Some((at, true)) if at - now_ns <= margin_ns => Wait::Spin {
            yield_cpu: at - now_ns > no_yield_ns,
        },
        Some((at, true)) => Wait::SleepUntil(at - margin_ns),
        Some((at, false)) => Wait::SleepUntil(at),
    }
}

/// The latest intended time of a paced send that goes in the round being
/// handed to the kernel at `now_ns`: `now_ns` itself, or, when the round
/// already carries a send (`round_sends`), [`COALESCE_NS`] later. A send
/// alone is never sent early: only one that would otherwise wait for the
/// thread to come back out of another send's system call.
pub fn send_horizon(now_ns: u64, round_sends: bool) -> u64 {
    if round_sends {
        now_ns.saturating_add(COALESCE_NS)
    } else {
        now_ns
    }
}

/// Where a send was handed to the kernel relative to the time it was
/// meant for: the pacing's error, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOffset {
    /// At or after the intended time, by this many ns.
    Late(u64),
    /// Before it (pulled into an earlier round), by this many ns.
    Early(u64),
}

impl SendOffset {
    /// The offset of a send handed over at `submitted_ns` that was meant
    /// for `intended_ns`.
    pub fn of(intended_ns: u64, submitted_ns: u64) -> SendOffset {
        if submitted_ns >= intended_ns {
            SendOffset::Late(submitted_ns - intended_ns)
        } else {
            SendOffset::Early(intended_ns - submitted_ns)
        }
    }

    /// How far from the intended time, early or late: what the
    /// "within 20 µs of its intended time" promise is judged by.
    pub fn distance_ns(self) -> u64 {
        match self {
            SendOffset::Late(ns) | SendOffset::Early(ns) => ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_schedule_is_exact_and_staggered() {
        let start = 1_000_000_000;
        // 2,000 req/s over 64 connections: 32 ms per connection.
        let mut s = Schedule::new(Arrivals::Constant, start, 3, 64, 2000.0, 7);
        assert_eq!(s.next_ns(), start + 1_500_000);
        assert_eq!(s.take(), start + 1_500_000);
        assert_eq!(s.take(), start + 1_500_000 + 32_000_000);
        for _ in 0..1_000_000 {
            s.take();
        }
        // No drift after a million requests.
        assert_eq!(s.next_ns(), start + 1_500_000 + 1_000_002 * 32_000_000);
        assert_eq!(s.taken(), 1_000_002);
    }

    #[test]
    fn constant_schedules_together_hit_the_rate_exactly() {
        // Every connection's requests intended in [start, start + 1 s).
        let (start, conns, rate) = (0u64, 64, 2000.0);
        let end = start + NS_PER_S;
        let mut total = 0;
        for g in 0..conns {
            let mut s = Schedule::new(Arrivals::Constant, start, g, conns, rate, 1);
            assert_eq!(s.left_before(end), {
                let mut copy = s.clone();
                let mut n = 0;
                while copy.take() < end {
                    n += 1;
                }
                n
            });
            while s.take() < end {
                total += 1;
            }
        }
        assert_eq!(total, 2000);
    }

    #[test]
    fn poisson_gaps_have_the_mean_and_spread_of_an_exponential() {
        let mut s = Schedule::new(Arrivals::Poisson, 0, 0, 1, 1000.0, 42);
        let n = 200_000;
        let mut prev = s.take();
        let mut gaps = Vec::with_capacity(n);
        for _ in 0..n {
            let at = s.take();
            gaps.push((at - prev) as f64);
            prev = at;
        }
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        // Mean 1 ms; an exponential's standard deviation equals its mean.
        assert!((mean / 1e6 - 1.0).abs() < 0.01, "mean {mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "cv {}",
            var.sqrt() / mean
        );
        // P(gap > 3 means) = e^-3.
        let tail = gaps.iter().filter(|&&g| g > 3e6).count() as f64 / n as f64;
        assert!((tail - (-3.0f64).exp()).abs() < 0.003, "tail {tail}");
    }

    #[test]
    fn poisson_connections_are_independent_and_seeded() {
        let a = Schedule::new(Arrivals::Poisson, 0, 0, 2, 100.0, 9);
        let b = Schedule::new(Arrivals::Poisson, 0, 1, 2, 100.0, 9);
        let a_again = Schedule::new(Arrivals::Poisson, 0, 0, 2, 100.0, 9);
        assert_ne!(a.next_ns(), b.next_ns());
        assert_eq!(a.next_ns(), a_again.next_ns());
        let other_seed = Schedule::new(Arrivals::Poisson, 0, 0, 2, 100.0, 10);
        assert_ne!(a.next_ns(), other_seed.next_ns());
    }

    #[test]
    fn backlog_counts_what_was_never_taken() {
        // 10 req/s on one connection: 100 ms gaps, 10 intended in 1 s.
        let mut s = Schedule::new(Arrivals::Constant, 0, 0, 1, 10.0, 0);
        assert_eq!(s.left_before(NS_PER_S), 10);
        for _ in 0..4 {
            s.take();
        }
        assert_eq!(s.left_before(NS_PER_S), 6);
        assert_eq!(s.left_before(0), 0);
    }

    #[test]
    fn early_wake_learns_the_lateness_and_ignores_outliers() {
        // 1 ms gaps: the cap is 250 µs.
        let mut w = EarlyWake::new(1e6);
        assert_eq!(w.cap_ns(), 250_000);
        assert_eq!(w.margin_ns(), WAKE_MARGIN_INITIAL_NS);
        for i in 0..WAKE_WINDOW as u64 {
            w.observe(40_000 + i % 50 * 1_000); // 40..89 µs
        }
        assert_eq!(w.margin_ns(), 89_000 + WAKE_SAFETY_NS);
        // Two huge wake-ups (preemption) do not move it.
        w.observe(10_000_000);
        w.observe(9_000_000);
        for _ in 0..WAKE_UPDATE_EVERY {
            w.observe(50_000);
        }
        assert_eq!(w.margin_ns(), 89_000 + WAKE_SAFETY_NS);
        // A third does: then it is the machine, capped at the share of the gap.
        w.observe(8_000_000);
        for _ in 0..WAKE_UPDATE_EVERY {
            w.observe(50_000);
        }
        assert_eq!(w.margin_ns(), 250_000);
        // Once the window forgets them, quiet wake-ups bring it down again.
        // (The margin is recomputed every WAKE_UPDATE_EVERY wake-ups.)
        for _ in 0..WAKE_WINDOW + WAKE_UPDATE_EVERY {
            w.observe(3_000);
        }
        assert_eq!(w.margin_ns(), 8_000);
    }

    #[test]
    fn early_wake_never_spins_more_than_a_share_of_the_gap() {
        // 15,000 req/s on two threads: 133 µs gaps.
        let mut w = EarlyWake::new(133_333.0);
        assert_eq!(w.cap_ns(), 33_333);
        for _ in 0..100 {
            w.observe(150_000);
        }
        assert_eq!(w.margin_ns(), 33_333);
        // Very slow rates are capped by the absolute maximum.
        assert_eq!(EarlyWake::new(1e9).cap_ns(), WAKE_MARGIN_MAX_NS);
        assert_eq!(EarlyWake::new(1_000.0).cap_ns(), WAKE_MARGIN_MIN_NS);
    }

    #[test]
    fn a_send_joins_a_round_only_when_the_round_already_sends() {
        let now = 5_000_000;
        // Nothing is sent now: a send is due at its time, never before.
        assert_eq!(send_horizon(now, false), now);
        // A send goes now: one due within one send's cost goes with it.
        assert_eq!(send_horizon(now, true), now + COALESCE_NS);
        assert_eq!(send_horizon(u64::MAX - 1, true), u64::MAX);
    }

    #[test]
    fn a_thread_with_poisson_sends_pulls_only_close_ones_forward() {
        // A fake clock walks one thread's merged Poisson arrivals (32
        // connections at 2,000 req/s over 64: 1 ms mean gap per thread),
        // sending at each due time and taking every send within the horizon
        // with it, as the worker does. Every send goes at most COALESCE_NS
        // early, never late, and only those within COALESCE_NS of an earlier
        // one are pulled.
        let mut conns: Vec<Schedule> = (0..32)
            .map(|g| Schedule::new(Arrivals::Poisson, 0, g, 64, 2000.0, 3))
            .collect();
        let end = 20 * NS_PER_S;
        let (mut sent, mut early, mut close_pairs) = (0u64, 0u64, 0u64);
        let mut last_at = None::<u64>;
        loop {
            let (first, now) = conns
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.next_ns()))
                .min_by_key(|&(_, at)| at)
                .unwrap();
            if now >= end {
                break;
            }
            conns[first].take();
            sent += 1;
            let horizon = send_horizon(now, true);
            for s in conns.iter_mut() {
                while s.next_ns() <= horizon {
                    let at = s.take();
                    sent += 1;
                    match SendOffset::of(at, now) {
                        SendOffset::Early(ns) => {
                            assert!(ns <= COALESCE_NS);
                            early += 1;
                        }
                        SendOffset::Late(ns) => assert_eq!(ns, 0, "same instant"),
                    }
                }
            }
            if last_at.is_some_and(|l| now - l <= COALESCE_NS) {
                close_pairs += 1;
            }
            last_at = Some(now);
        }
        // No two rounds are closer than the horizon: what was close went
        // together.
        assert_eq!(close_pairs, 0);
        // About 1 - e^(-15 us / 1 ms) = 1.5 % of a thread's sends are due
        // within COALESCE_NS of the one before them.
        let share = early as f64 / sent as f64;
        assert!((0.010..0.020).contains(&share), "early share {share}");
    }

    #[test]
    fn offsets_count_early_and_late_alike() {
        assert_eq!(SendOffset::of(1_000, 1_000), SendOffset::Late(0));
        assert_eq!(SendOffset::of(1_000, 4_000), SendOffset::Late(3_000));
        assert_eq!(SendOffset::of(9_000, 2_000), SendOffset::Early(7_000));
        assert_eq!(SendOffset::of(9_000, 2_000).distance_ns(), 7_000);
        assert_eq!(SendOffset::of(2_000, 9_000).distance_ns(), 7_000);
    }

    #[test]
    fn waits_spin_only_close_to_a_paced_send() {
        let (margin, no_yield) = (100_000, 30_000);
        let plan = |now, next| plan_wait(now, next, margin, no_yield);
        assert_eq!(plan(1_000, None), Wait::Forever);
        assert_eq!(plan(1_000, Some((1_000, true))), Wait::Now);
        assert_eq!(plan(1_000, Some((900, false))), Wait::Now);
        assert_eq!(
            plan(1_000, Some((50_000, true))),
            Wait::Spin { yield_cpu: true }
        );
        assert_eq!(
            plan(1_000, Some((500_000, true))),
            Wait::SleepUntil(400_000)
        );
        // A timeout or a tick is not worth a spin.
        assert_eq!(plan(1_000, Some((50_000, false))), Wait::SleepUntil(50_000));
    }

    #[test]
    fn the_spin_keeps_the_cpu_only_in_its_last_stretch() {
        // A fake clock walks towards a send at 1 ms with a 100 µs margin
        // and a 30 µs no-yield stretch, one poll per µs.
        let (at, margin, no_yield) = (1_000_000u64, 100_000, 30_000);
        let (mut slept, mut yielding, mut busy, mut now) = (0, 0, 0, 0u64);
        loop {
            match plan_wait(now, Some((at, true)), margin, no_yield) {
                Wait::SleepUntil(t) => {
                    slept += 1;
                    now = t;
                }
                Wait::Spin { yield_cpu: true } => {
                    yielding += 1;
                    now += 1_000;
                }
                Wait::Spin { yield_cpu: false } => {
                    busy += 1;
                    now += 1_000;
                }
                Wait::Now => break,
                Wait::Forever => unreachable!("a send is timed"),
            }
        }
        assert_eq!((slept, now), (1, at));
        assert_eq!((yielding, busy), (70, 30));
    }

    #[test]
    fn the_no_yield_stretch_is_a_sixteenth_of_the_gap_at_most() {
        // 2,000 req/s on two threads: 1 ms gaps, cap 250 µs.
        assert_eq!(EarlyWake::new(1e6).no_yield_ns(), SPIN_NO_YIELD_NS);
        // 15,000 req/s: 133 µs gaps, cap 33 µs, 8 µs without yielding.
        assert_eq!(EarlyWake::new(133_333.0).no_yield_ns(), 8_333);
    }
}
