//! The I/O under each worker thread: io_uring where the kernel and the
//! sandbox allow it, epoll otherwise (`--io-driver auto|io-uring|epoll`,
//! the collector's flag), behind one completion-style interface so the
//! connections and the pacing are the same on both.
//!
//! A worker queues operations (`connect`, `write`, `read` into a buffer it
//! owns), hands them to the kernel with [`Driver::submit`], and collects
//! [`Completion`]s with [`Driver::wait`]. The wake-up timer is a
//! `CLOCK_MONOTONIC` timerfd armed with an absolute nanosecond deadline
//! (`TFD_TIMER_ABSTIME`) on both drivers.
//!
//! - **io_uring**: `SEND`, `RECV`, `CONNECT` and a `READ` kept in flight on
//!   the timerfd; one `io_uring_enter` submits a round of sends and reads.
//! - **epoll** (edge-triggered): `submit` performs the queued `send`s and
//!   `connect`s right away (non-blocking sockets); reads happen when the
//!   socket reports readable and a read is queued; results are queued as
//!   completions, so the caller cannot tell the difference.
//!
//! Safety contract of the `unsafe` queueing methods: the buffer (and the
//! socket address) must stay valid and untouched until the operation's
//! completion has been returned by [`Driver::wait`]. The worker keeps every
//! connection's buffers in place for the whole run and drains every
//! operation before dropping them.

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, types, IoUring};

/// The token of the driver's own timer operation (never a connection).
const TIMER_TOKEN: u32 = u32::MAX;
/// Most epoll events taken per `epoll_wait`.
const EPOLL_EVENTS: usize = 256;
/// Opcodes the io_uring driver issues; a kernel lacking one gets epoll.
const REQUIRED_OPS: [(u8, &str); 6] = [
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Read::CODE, "READ"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Nop::CODE, "NOP"),
];
/// Ring size for the probe.
const PROBE_ENTRIES: u32 = 4;
/// The user data of the probe's no-op.
const PROBE_USER_DATA: u64 = 0x004C_4F41_4447_454E; // "LOADGEN"

/// `--io-driver`: which I/O interface the workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriverChoice {
    /// io_uring when the probe passes, epoll otherwise (said in one line).
    Auto,
    /// io_uring or fail.
    IoUring,
    /// epoll, even where io_uring works.
    Epoll,
}

/// The I/O interface a run actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum IoDriverKind {
    /// io_uring (`SEND`/`RECV`/`CONNECT`, a `READ` on the timerfd).
    #[serde(rename = "io_uring")]
    IoUring,
    /// Edge-triggered epoll with non-blocking sockets.
    #[serde(rename = "epoll")]
    Epoll,
}

impl IoDriverKind {
    /// `io_uring` or `epoll`, as reports and logs spell it.
    pub fn name(self) -> &'static str {
        match self {
            IoDriverKind::IoUring => "io_uring",
            IoDriverKind::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoDriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Picks the driver for `choice`: `Ok((kind, why_not_io_uring))`, the reason
/// set when `auto` fell back to epoll; `Err` when `io-uring` was demanded
/// and refused.
pub fn resolve(choice: IoDriverChoice) -> Result<(IoDriverKind, Option<String>), String> {
    match choice {
        IoDriverChoice::Epoll => Ok((IoDriverKind::Epoll, None)),
        IoDriverChoice::IoUring => match probe_io_uring() {
            Ok(()) => Ok((IoDriverKind::IoUring, None)),
            Err(why) => Err(format!("--io-driver io-uring: io_uring refused: {why}")),
        },
        IoDriverChoice::Auto => match probe_io_uring() {
            Ok(()) => Ok((IoDriverKind::IoUring, None)),
            Err(why) => Ok((IoDriverKind::Epoll, Some(why))),
        },
    }
}

/// Asks the kernel for what the io_uring driver uses: a ring, a no-op
/// submitted and completed through `io_uring_enter`, and every opcode in
/// [`REQUIRED_OPS`]. Returns why not, e.g. `EPERM from io_uring_setup`.
pub fn probe_io_uring() -> Result<(), String> {
    let mut ring = IoUring::new(PROBE_ENTRIES)
        .map_err(|e| format!("{} from io_uring_setup", errno_text(&e)))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("{} from io_uring_register", errno_text(&e)))?;
    if let Some((_, name)) = REQUIRED_OPS.iter().find(|(c, _)| !probe.is_supported(*c)) {
        return Err(format!("the kernel's io_uring lacks {name}"));
    }
    let nop = opcode::Nop::new().build().user_data(PROBE_USER_DATA);
    // SAFETY: a no-op references no memory.
    unsafe { ring.submission().push(&nop) }.map_err(|_| "the probe ring is full".to_string())?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("{} from io_uring_enter", errno_text(&e)))?;
    let done = ring
        .completion()
        .next()
        .map(|c| (c.user_data(), c.result()));
    match done {
        Some((PROBE_USER_DATA, result)) if result >= 0 => Ok(()),
        Some((_, result)) => Err(format!("the probe's no-op completed with {result}")),
        None => Err("the probe's no-op never completed".to_string()),
    }
}

fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::ENOSYS) => "ENOSYS".into(),
        Some(libc::ENOMEM) => "ENOMEM (RLIMIT_MEMLOCK too low?)".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// Which operation a completion ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `connect(2)`: result 0 or `-errno`.
    Connect = 1,
    /// `send(2)`: bytes written or `-errno`.
    Write = 2,
    /// `recv(2)`: bytes read, 0 at end of stream, or `-errno`.
    Read = 3,
}

impl Op {
    /// The bit of this operation in a connection's in-flight mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Kind number of cancellation requests (their completions are ignored).
const CANCEL_KIND: u64 = 7;

/// One finished operation of connection `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The connection (index in the worker).
    pub token: u32,
    /// What finished.
    pub op: Op,
    /// Bytes or 0 on success, `-errno` on failure (as io_uring reports).
    pub result: i32,
}

/// What [`Driver::wait`] saw besides completions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Woken {
    /// The timer armed with [`Driver::arm_timer`] expired.
    pub timer: bool,
}

/// A worker thread's I/O: io_uring or epoll.
pub enum Driver {
    /// The io_uring driver.
    Uring(UringDriver),
    /// The epoll driver.
    Epoll(EpollDriver),
}

impl Driver {
    /// A driver of `kind` for `connections` connections.
    pub fn new(kind: IoDriverKind, connections: usize) -> io::Result<Driver> {
        Ok(match kind {
            IoDriverKind::IoUring => Driver::Uring(UringDriver::new(connections)?),
            IoDriverKind::Epoll => Driver::Epoll(EpollDriver::new(connections)?),
        })
    }

    /// Which driver this is.
    pub fn kind(&self) -> IoDriverKind {
        match self {
            Driver::Uring(_) => IoDriverKind::IoUring,
            Driver::Epoll(_) => IoDriverKind::Epoll,
        }
    }

    /// A new TCP socket for `addr`'s family, as this driver wants it
    /// (non-blocking for epoll; blocking for io_uring, which then waits in
    /// the kernel instead of answering EAGAIN).
    pub fn socket(&self, ipv6: bool) -> io::Result<RawFd> {
        let family = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
        let mut ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        if self.kind() == IoDriverKind::Epoll {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(family, ty, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }

    /// Queues a connect of `fd` (from [`Driver::socket`]) to `addr`.
    ///
    /// # Safety
    /// `addr` must stay valid until the completion is returned.
    pub unsafe fn connect(
        &mut self,
        token: u32,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    ) -> io::Result<()> {
        match self {
            Driver::Uring(d) => {
                let e = opcode::Connect::new(types::Fd(fd), addr, len)
                    .build()
                    .user_data(user_data(token, Op::Connect as u64));
                d.push(e)
            }
            Driver::Epoll(d) => d.connect(token, fd, addr, len),
        }
    }

    /// Queues a send of `len` bytes at `buf`.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and unchanged until the completion.
    pub unsafe fn write(&mut self, token: u32, fd: RawFd, buf: *const u8, len: usize) {
        let len = len.min(u32::MAX as usize) as u32;
        match self {
            Driver::Uring(d) => {
                let e = opcode::Send::new(types::Fd(fd), buf, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(token, Op::Write as u64));
                // A full ring was submitted to make room; a failure there
                // is reported by the next submit.
                let _ = d.push(e);
            }
            Driver::Epoll(d) => d.write(token, buf, len as usize),
        }
    }

    /// Queues a receive into `buf..buf+len`.
    ///
    /// # Safety
    /// `buf..buf+len` must stay valid and otherwise unused until the
    /// completion.
    pub unsafe fn read(&mut self, token: u32, fd: RawFd, buf: *mut u8, len: usize) {
        let len = len.min(u32::MAX as usize) as u32;
        match self {
            Driver::Uring(d) => {
                let e = opcode::Recv::new(types::Fd(fd), buf, len)
                    .build()
                    .user_data(user_data(token, Op::Read as u64));
                let _ = d.push(e);
            }
            Driver::Epoll(d) => d.read(token, buf, len as usize),
        }
    }

    /// Ends `token`'s operations on `fd` early, after the caller shut the
    /// socket down: each in-flight operation still completes once (with an
    /// error, or 0 for a read), so the caller's accounting stays exact.
    pub fn cancel(&mut self, token: u32, fd: RawFd) {
        match self {
            Driver::Uring(d) => {
                // shutdown(2) ends a pending send or recv, but a connect in
                // progress would be retried by the kernel: cancel it.
                let e = opcode::AsyncCancel::new(user_data(token, Op::Connect as u64))
                    .build()
                    .user_data(user_data(token, CANCEL_KIND));
                let _ = d.push(e);
            }
            Driver::Epoll(d) => d.cancel(token, fd),
        }
    }

    /// Hands every queued operation to the kernel now.
    pub fn submit(&mut self) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.submit(),
            Driver::Epoll(d) => {
                d.submit();
                Ok(())
            }
        }
    }

    /// Arms the wake-up timer for `at_ns` (absolute `CLOCK_MONOTONIC`);
    /// re-arming replaces the previous time.
    pub fn arm_timer(&mut self, at_ns: u64) -> io::Result<()> {
        match self {
            Driver::Uring(d) => d.timer.arm(at_ns),
            Driver::Epoll(d) => d.timer.arm(at_ns),
        }
    }

    /// Collects completions into `out`; blocks until at least one arrives
    /// or the timer fires when `block`, returns at once otherwise.
    pub fn wait(&mut self, block: bool, out: &mut Vec<Completion>) -> io::Result<Woken> {
        match self {
            Driver::Uring(d) => d.wait(block, out),
            Driver::Epoll(d) => d.wait(block, out),
        }
    }

    /// Whether the timer's own operation is done (io_uring: its `READ` must
    /// complete before the driver may be dropped).
    pub fn idle(&self) -> bool {
        match self {
            Driver::Uring(d) => !d.timer_read_in_flight,
            Driver::Epoll(_) => true,
        }
    }

    /// Starts ending the timer's own operation (see [`Driver::idle`]).
    pub fn stop_timer(&mut self) {
        if let Driver::Uring(d) = self {
            d.timer_stopped = true;
            if d.timer_read_in_flight {
                let e = opcode::AsyncCancel::new(user_data(TIMER_TOKEN, Op::Read as u64))
                    .build()
                    .user_data(user_data(TIMER_TOKEN, CANCEL_KIND));
                let _ = d.push(e);
                let _ = d.submit();
            }
        }
    }
}

fn user_data(token: u32, kind: u64) -> u64 {
    (u64::from(token) << 8) | kind
}

/// A `CLOCK_MONOTONIC` timerfd armed with absolute deadlines.
struct TimerFd {
    fd: RawFd,
    armed_ns: Option<u64>,
}

impl TimerFd {
    fn new(nonblocking: bool) -> io::Result<TimerFd> {
        let flags = libc::TFD_CLOEXEC | if nonblocking { libc::TFD_NONBLOCK } else { 0 };
        // SAFETY: plain timerfd_create(2).
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(TimerFd { fd, armed_ns: None })
    }

    fn arm(&mut self, at_ns: u64) -> io::Result<()> {
        if self.armed_ns == Some(at_ns) {
            return Ok(());
        }
        // Zero would disarm; the past fires at once, as wanted.
        let at_ns = at_ns.max(1);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: the spec is a valid itimerspec; no old value is asked for.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed_ns = Some(at_ns);
        Ok(())
    }

    fn fired(&mut self) {
        self.armed_ns = None;
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        // SAFETY: the fd is ours.
        unsafe { libc::close(self.fd) };
    }
}

/// The io_uring driver.
pub struct UringDriver {
    ring: IoUring,
    timer: TimerFd,
    /// The timerfd read's 8-byte destination (boxed: its address is handed
    /// to the kernel and must not move).
    timer_buf: Box<u64>,
    timer_read_in_flight: bool,
    /// Set by [`Driver::stop_timer`]: a timer read that completes is not
    /// queued again (the worker is draining).
    timer_stopped: bool,
}

impl UringDriver {
    fn new(connections: usize) -> io::Result<UringDriver> {
        // Up to three operations per connection (connect or send, recv,
        // cancel) and the timer's read; a full ring is submitted early.
        let entries = (connections * 2 + 1).next_power_of_two().clamp(256, 32_768) as u32;
        let ring = IoUring::new(entries)?;
        let mut d = UringDriver {
            ring,
            timer: TimerFd::new(false)?,
            timer_buf: Box::new(0),
            timer_read_in_flight: false,
            timer_stopped: false,
        };
        d.queue_timer_read()?;
        Ok(d)
    }

    fn queue_timer_read(&mut self) -> io::Result<()> {
        let buf: *mut u64 = &mut *self.timer_buf;
        let e = opcode::Read::new(types::Fd(self.timer.fd), buf.cast(), 8)
            .build()
            .user_data(user_data(TIMER_TOKEN, Op::Read as u64));
        self.push(e)?;
        self.timer_read_in_flight = true;
        Ok(())
    }

    fn push(&mut self, e: io_uring::squeue::Entry) -> io::Result<()> {
        // SAFETY: the caller's contract (see the module doc) keeps every
        // buffer the entry points to alive until its completion.
        if unsafe { self.ring.submission().push(&e) }.is_ok() {
            return Ok(());
        }
        self.submit()?;
        // SAFETY: as above.
        unsafe { self.ring.submission().push(&e) }
            .map_err(|_| io::Error::other("io_uring submission queue full after a submit"))
    }

    fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The completion queue is full: the caller reaps, then the
                // next submit goes through.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn wait(&mut self, block: bool, out: &mut Vec<Completion>) -> io::Result<Woken> {
        if block && self.ring.completion().is_empty() {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
        } else if !self.ring.submission().is_empty() {
            self.submit()?;
        }
        let mut woken = Woken::default();
        let mut rearm = false;
        for cqe in self.ring.completion() {
            let token = (cqe.user_data() >> 8) as u32;
            let op = match cqe.user_data() & 0xff {
                1 => Op::Connect,
                2 => Op::Write,
                3 => Op::Read,
                _ => continue, // a cancellation's own answer
            };
            if token == TIMER_TOKEN {
                self.timer_read_in_flight = false;
                if cqe.result() >= 0 {
                    woken.timer = true;
                    self.timer.fired();
                    rearm = true;
                }
                continue;
            }
            out.push(Completion {
                token,
                op,
                result: cqe.result(),
            });
        }
        if rearm && !self.timer_stopped {
            self.queue_timer_read()?;
        }
        Ok(woken)
    }
}

/// One connection's pending operations under epoll.
#[derive(Clone, Copy)]
struct EpollSlot {
    fd: RawFd,
    connecting: bool,
    write: Option<(*const u8, usize)>,
    read: Option<(*mut u8, usize)>,
    readable: bool,
    writable: bool,
}

impl EpollSlot {
    const EMPTY: EpollSlot = EpollSlot {
        fd: -1,
        connecting: false,
        write: None,
        read: None,
        readable: false,
        writable: false,
    };
}

/// The epoll driver: edge-triggered readiness turned into completions.
pub struct EpollDriver {
    epfd: RawFd,
    timer: TimerFd,
    slots: Vec<EpollSlot>,
    /// Tokens with an operation queued since the last submit.
    queued: Vec<u32>,
    ready: Vec<Completion>,
    events: Vec<libc::epoll_event>,
}

impl EpollDriver {
    fn new(connections: usize) -> io::Result<EpollDriver> {
        // SAFETY: plain epoll_create1(2).
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let timer = TimerFd::new(true)?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: u64::from(TIMER_TOKEN),
        };
        // SAFETY: both fds are ours; ev is valid.
        if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, timer.fd, &mut ev) } < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: ours.
            unsafe { libc::close(epfd) };
            return Err(e);
        }
        Ok(EpollDriver {
            epfd,
            timer,
            slots: vec![EpollSlot::EMPTY; connections],
            queued: Vec::with_capacity(connections),
            ready: Vec::with_capacity(connections),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_EVENTS],
        })
    }

    unsafe fn connect(
        &mut self,
        token: u32,
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    ) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: u64::from(token),
        };
        if libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) < 0 {
            return Err(io::Error::last_os_error());
        }
        let slot = &mut self.slots[token as usize];
        *slot = EpollSlot {
            fd,
            ..EpollSlot::EMPTY
        };
        // A non-blocking connect returns at once; its end is EPOLLOUT.
        let rc = libc::connect(fd, addr, len);
        let err = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if rc == 0 {
            slot.writable = true;
            self.ready.push(Completion {
                token,
                op: Op::Connect,
                result: 0,
            });
        } else if err == libc::EINPROGRESS {
            slot.connecting = true;
        } else {
            self.ready.push(Completion {
                token,
                op: Op::Connect,
                result: -err,
            });
        }
        Ok(())
    }

    fn write(&mut self, token: u32, buf: *const u8, len: usize) {
        self.slots[token as usize].write = Some((buf, len));
        self.queued.push(token);
    }

    fn read(&mut self, token: u32, buf: *mut u8, len: usize) {
        self.slots[token as usize].read = Some((buf, len));
        self.queued.push(token);
    }

    fn cancel(&mut self, token: u32, fd: RawFd) {
        let slot = &mut self.slots[token as usize];
        let mut end = |op: Op| {
            self.ready.push(Completion {
                token,
                op,
                result: -libc::ECANCELED,
            })
        };
        if slot.connecting {
            end(Op::Connect);
        }
        if slot.write.is_some() {
            end(Op::Write);
        }
        if slot.read.is_some() {
            end(Op::Read);
        }
        *slot = EpollSlot::EMPTY;
        // SAFETY: fd is the caller's open socket; removing it from the set
        // before the caller closes it keeps no stale registration.
        unsafe { libc::epoll_ctl(self.epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
    }

    fn submit(&mut self) {
        for i in 0..self.queued.len() {
            let token = self.queued[i];
            self.progress(token);
        }
        self.queued.clear();
    }

    /// Does what the socket's readiness allows for `token`'s queued
    /// operations, queueing their completions.
    fn progress(&mut self, token: u32) {
        let slot = &mut self.slots[token as usize];
        if slot.fd < 0 {
            return;
        }
        if slot.connecting && slot.writable {
            slot.connecting = false;
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: err and len are valid for SO_ERROR.
            let rc = unsafe {
                libc::getsockopt(
                    slot.fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            let result = if rc < 0 {
                -io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO)
            } else {
                -err
            };
            self.ready.push(Completion {
                token,
                op: Op::Connect,
                result,
            });
        }
        if slot.connecting {
            return;
        }
        if let Some((buf, len)) = slot.write {
            // SAFETY: the caller keeps buf..buf+len valid until the completion.
            let n = unsafe { libc::send(slot.fd, buf.cast(), len, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                slot.write = None;
                self.ready.push(Completion {
                    token,
                    op: Op::Write,
                    result: n as i32,
                });
            } else {
                let err = io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO);
                if err == libc::EAGAIN {
                    slot.writable = false;
                } else {
                    slot.write = None;
                    self.ready.push(Completion {
                        token,
                        op: Op::Write,
                        result: -err,
                    });
                }
            }
        }
        if let (Some((buf, len)), true) = (slot.read, slot.readable) {
            // SAFETY: the caller keeps buf..buf+len valid and unused until
            // the completion.
            let n = unsafe { libc::recv(slot.fd, buf.cast(), len, 0) };
            if n >= 0 {
                slot.read = None;
                // Edge-triggered: a short read drained the socket; new bytes
                // bring a new edge. A full one may have left more.
                slot.readable = n as usize == len;
                self.ready.push(Completion {
                    token,
                    op: Op::Read,
                    result: n as i32,
                });
            } else {
                let err = io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EIO);
                if err == libc::EAGAIN {
                    slot.readable = false;
                } else {
                    slot.read = None;
                    self.ready.push(Completion {
                        token,
                        op: Op::Read,
                        result: -err,
                    });
                }
            }
        }
    }

    fn wait(&mut self, block: bool, out: &mut Vec<Completion>) -> io::Result<Woken> {
        self.submit();
        let timeout = if block && self.ready.is_empty() {
            -1
        } else {
            0
        };
        // SAFETY: events has EPOLL_EVENTS valid entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd,
                self.events.as_mut_ptr(),
                EPOLL_EVENTS as libc::c_int,
                timeout,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
        let mut woken = Woken::default();
        for i in 0..n.max(0) as usize {
            let ev = self.events[i];
            let token = ev.u64 as u32;
            if token == TIMER_TOKEN {
                let mut ticks = 0u64;
                // SAFETY: reads 8 bytes into ticks; EAGAIN (already read) is fine.
                unsafe { libc::read(self.timer.fd, (&mut ticks as *mut u64).cast(), 8) };
                self.timer.fired();
                woken.timer = true;
                continue;
            }
            let flags = ev.events as libc::c_int;
            let Some(slot) = self.slots.get_mut(token as usize) else {
                continue;
            };
            if flags & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                slot.readable = true;
            }
            if flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0 {
                slot.writable = true;
            }
            self.progress(token);
        }
        out.append(&mut self.ready);
        Ok(woken)
    }
}

impl Drop for EpollDriver {
    fn drop(&mut self) {
        // SAFETY: ours.
        unsafe { libc::close(self.epfd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_epoll_never_probes() {
        assert_eq!(
            resolve(IoDriverChoice::Epoll).unwrap(),
            (IoDriverKind::Epoll, None)
        );
    }

    #[test]
    fn user_data_round_trips_token_and_kind() {
        let ud = user_data(12345, Op::Read as u64);
        assert_eq!(ud >> 8, 12345);
        assert_eq!(ud & 0xff, 3);
        assert_eq!(user_data(TIMER_TOKEN, 1) >> 8, u64::from(u32::MAX));
        assert_ne!(Op::Connect.bit() & Op::Write.bit(), Op::Connect.bit());
    }
}
