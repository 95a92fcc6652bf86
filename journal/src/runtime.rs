//! Which monoio driver a journal and its host run on, and the probe that
//! decides it (DESIGN §10).
//!
//! io_uring is the fast path, but many hosts refuse it: Docker's and
//! containerd's default seccomp profiles answer EPERM to the `io_uring_*`
//! calls, old or stripped kernels ENOSYS, kernels before 5.12 ENOMEM when
//! the ring does not fit `RLIMIT_MEMLOCK`, and Linux 6.6+ has the
//! `kernel.io_uring_disabled` sysctl. [`probe_io_uring`] asks the kernel
//! for exactly what the collector will use — one ring per core, a no-op
//! submitted and completed through `io_uring_enter`, and every opcode monoio
//! issues for sockets and journal files — so a refusal is found at start,
//! not as a hang or a failed commit later. Where it is refused the host
//! runs monoio's legacy (epoll) driver and the journal commits on its
//! blocking writer thread ([`crate::CommitPath::WriterThread`]).

use std::fmt;
use std::future::Future;
use std::io;

use io_uring::opcode;

/// Where `kernel.io_uring_disabled` lives (Linux 6.6+; absent before).
pub const IO_URING_DISABLED_SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// The io_uring operations the collector relies on (monoio issues them for
/// its sockets, poll waits, cancellations and the journal's files). A
/// kernel that lacks one gets the epoll driver rather than a failure at
/// the first request that needs it.
const REQUIRED_OPS: [(u8, &str); 12] = [
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Fsync::CODE, "FSYNC"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::Read::CODE, "READ"),
    (opcode::Readv::CODE, "READV"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Writev::CODE, "WRITEV"),
    (opcode::Nop::CODE, "NOP"),
];

/// The user data of the probe's no-op, to recognise its completion.
const PROBE_USER_DATA: u64 = 0x4845_4c49_4f53; // "HELIOS"

/// The monoio driver a thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// `IoUringDriver`: sockets and journal commits through io_uring.
    IoUring,
    /// `LegacyDriver` (epoll through mio): sockets through readiness, journal
    /// commits on a blocking writer thread per journal.
    Epoll,
}

impl IoDriver {
    /// The name logs and metrics use: `io_uring` or `epoll`.
    pub fn name(self) -> &'static str {
        match self {
            IoDriver::IoUring => "io_uring",
            IoDriver::Epoll => "epoll",
        }
    }

    /// How a journal on a runtime of this driver commits.
    pub fn commit_path(self) -> crate::CommitPath {
        match self {
            IoDriver::IoUring => crate::CommitPath::IoUring,
            IoDriver::Epoll => crate::CommitPath::WriterThread,
        }
    }
}

impl fmt::Display for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why io_uring cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoUringRefused {
    /// A system call failed.
    Call {
        /// `io_uring_setup`, `io_uring_enter` or `io_uring_register`.
        call: &'static str,
        /// The errno it returned.
        errno: i32,
        /// `kernel.io_uring_disabled` when it is set (non-zero), which
        /// explains an EPERM.
        sysctl_disabled: Option<u8>,
    },
    /// The kernel's io_uring lacks an operation the collector issues.
    MissingOp(&'static str),
    /// The probe's no-op did not complete as it should.
    NoCompletion(String),
}

impl IoUringRefused {
    /// The errno of a refused call, if that is what happened.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IoUringRefused::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl fmt::Display for IoUringRefused {
    /// Short, for the start-up line: `EPERM`, `ENOMEM from io_uring_setup
    /// (RLIMIT_MEMLOCK too low?)`, `EPERM (kernel.io_uring_disabled=2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoUringRefused::Call {
                call,
                errno,
                sysctl_disabled,
            } => {
                f.write_str(&errno_name(*errno))?;
                if *call != "io_uring_setup" {
                    write!(f, " from {call}")?;
                }
                if let Some(level) = sysctl_disabled {
                    write!(f, " (kernel.io_uring_disabled={level})")?;
                } else if *errno == libc::ENOMEM {
                    f.write_str(" (RLIMIT_MEMLOCK too low for the rings?)")?;
                }
                Ok(())
            }
            IoUringRefused::MissingOp(op) => write!(f, "the kernel lacks IORING_OP_{op}"),
            IoUringRefused::NoCompletion(what) => write!(f, "no-op did not complete: {what}"),
        }
    }
}

impl std::error::Error for IoUringRefused {}

/// The symbolic name of an errno the probe may meet (`os error N` for
/// others).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::EFAULT => "EFAULT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("os error {errno}"),
    };
    name.to_string()
}

/// Asks the kernel for what a host of `rings` io_uring runtimes with
/// `entries` entries each needs: all the rings at once (RLIMIT_MEMLOCK is
/// charged per ring on kernels before 5.12), a no-op through
/// `io_uring_enter` and back, and the opcodes in use (`io_uring_register`
/// probe). Everything it opens is closed before it returns.
pub fn probe_io_uring(entries: u32, rings: usize) -> Result<(), IoUringRefused> {
    let mut held = Vec::with_capacity(rings.max(1));
    for _ in 0..rings.max(1) {
        let ring = io_uring::IoUring::new(entries).map_err(|e| refused("io_uring_setup", &e))?;
        held.push(ring);
    }
    let ring = &mut held[0];
    let nop = opcode::Nop::new().build().user_data(PROBE_USER_DATA);
    // SAFETY: a no-op references no memory; the ring outlives the wait.
    unsafe { ring.submission().push(&nop) }
        .map_err(|_| IoUringRefused::NoCompletion("submission queue full".into()))?;
    ring.submit_and_wait(1)
        .map_err(|e| refused("io_uring_enter", &e))?;
    match ring.completion().next() {
        Some(cqe) if cqe.user_data() == PROBE_USER_DATA && cqe.result() >= 0 => {}
        Some(cqe) if cqe.result() < 0 => {
            return Err(IoUringRefused::NoCompletion(errno_name(-cqe.result())))
        }
        Some(_) => return Err(IoUringRefused::NoCompletion("unexpected completion".into())),
        None => return Err(IoUringRefused::NoCompletion("no completion".into())),
    }
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| refused("io_uring_register", &e))?;
    for (code, name) in REQUIRED_OPS {
        if !probe.is_supported(code) {
            return Err(IoUringRefused::MissingOp(name));
        }
    }
    Ok(())
}

fn refused(call: &'static str, e: &io::Error) -> IoUringRefused {
    IoUringRefused::Call {
        call,
        errno: e.raw_os_error().unwrap_or(0),
        sysctl_disabled: io_uring_disabled_sysctl().filter(|level| *level != 0),
    }
}

/// `kernel.io_uring_disabled` (0: allowed, 1: only for the
/// `kernel.io_uring_group`, 2: refused to all), `None` where the kernel
/// has no such sysctl or it cannot be read.
pub fn io_uring_disabled_sysctl() -> Option<u8> {
    std::fs::read_to_string(IO_URING_DISABLED_SYSCTL)
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Builds a monoio runtime of `driver` (with a timer; `entries` sizes the
/// io_uring queues or the epoll event buffer) on this thread and runs `f`
/// to completion on it. Fails only when the runtime cannot be built.
pub fn block_on<F: Future>(driver: IoDriver, entries: u32, f: F) -> io::Result<F::Output> {
    Ok(match driver {
        IoDriver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(entries)
            .enable_timer()
            .build()?
            .block_on(f),
        IoDriver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .with_entries(entries)
            .enable_timer()
            .build()?
            .block_on(f),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_the_errno_and_its_likely_cause() {
        let eperm = IoUringRefused::Call {
            call: "io_uring_setup",
            errno: libc::EPERM,
            sysctl_disabled: None,
        };
        assert_eq!(eperm.to_string(), "EPERM");
        let sysctl = IoUringRefused::Call {
            call: "io_uring_setup",
            errno: libc::EPERM,
            sysctl_disabled: Some(2),
        };
        assert_eq!(sysctl.to_string(), "EPERM (kernel.io_uring_disabled=2)");
        let enter = IoUringRefused::Call {
            call: "io_uring_enter",
            errno: libc::ENOSYS,
            sysctl_disabled: None,
        };
        assert_eq!(enter.to_string(), "ENOSYS from io_uring_enter");
        let memlock = IoUringRefused::Call {
            call: "io_uring_setup",
            errno: libc::ENOMEM,
            sysctl_disabled: None,
        };
        assert!(memlock.to_string().contains("RLIMIT_MEMLOCK"));
        assert_eq!(errno_name(12345), "os error 12345");
    }

    #[test]
    fn an_epoll_runtime_runs_a_future_with_a_timer() {
        let out = block_on(IoDriver::Epoll, 256, async {
            monoio::time::sleep(std::time::Duration::from_millis(1)).await;
            7
        })
        .unwrap();
        assert_eq!(out, 7);
    }
}
