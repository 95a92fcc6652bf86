//! Process-wide shutdown: SIGTERM/SIGINT are blocked in every thread and
//! taken by one signal thread with `sigwait`, which flips a flag and wakes
//! whoever waits (the cores' accept loops, the flusher).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// A shutdown flag with wakers, shared by all threads.
#[derive(Debug, Default)]
pub struct Shutdown {
    flag: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// A new, unset flag.
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// Sets the flag and wakes every waiter.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    /// Whether shutdown has started.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown starts (works across threads: monoio's
    /// `sync` feature lets a foreign thread wake its tasks).
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            self.wakers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(cx.waker().clone());
            if self.is_set() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
/// it spawns afterwards). Call first thing in `main`.
pub fn block_termination_signals() -> std::io::Result<()> {
    // SAFETY: plain libc calls on a local, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
    }
    Ok(())
}

/// Spawns the thread that waits for SIGINT/SIGTERM and triggers `shutdown`.
pub fn spawn_signal_thread(shutdown: Arc<Shutdown>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("helios-signals".into())
        .spawn(move || {
            // SAFETY: as above; sigwait only reads the set and writes `sig`.
            let sig = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
                let mut sig: libc::c_int = 0;
                libc::sigwait(&set, &mut sig);
                sig
            };
            tracing::info!(signal = sig, "shutdown requested");
            shutdown.trigger();
        })?;
    Ok(())
}
