//! Hosts that refuse what the fast path needs (DESIGN §10): the io_uring
//! probe under seccomp filters that refuse it the ways real hosts do, and a
//! journal directory on a memory filesystem.

#[path = "../../store/tests/support/skip.rs"]
mod skip;

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use helios_journal::runtime::probe_io_uring;
use helios_journal::{IoUringRefused, Journal, JournalConfig, JournalError};

/// What the collector probes with: its ring size, two cores.
const ENTRIES: u32 = 1024;
const RINGS: usize = 2;

/// Runs `f` on a fresh thread confined by `filter`, so the filter dies
/// with it.
fn confined<T: Send + 'static>(
    filter: seccomp::Filter,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        filter.apply_to_this_thread().expect("install filter");
        f()
    })
    .join()
    .expect("confined thread")
}

#[test]
fn the_probe_accepts_this_hosts_io_uring() {
    // The io_uring test targets need it too; .ci/run's host has it.
    probe_io_uring(ENTRIES, RINGS).expect("io_uring usable on the test host");
}

#[test]
fn the_probe_reports_eperm_as_dockers_default_profile_answers_it() {
    let refused = confined(seccomp::io_uring_refused(libc::EPERM), || {
        probe_io_uring(ENTRIES, RINGS)
    });
    let Err(refusal @ IoUringRefused::Call { call, errno, .. }) = &refused else {
        panic!("expected a refused call, got {refused:?}");
    };
    assert_eq!((*call, *errno), ("io_uring_setup", libc::EPERM));
    assert!(refusal.to_string().starts_with("EPERM"), "{refusal}");
}

#[test]
fn the_probe_reports_enosys_as_a_kernel_without_io_uring_answers_it() {
    let refused = confined(seccomp::io_uring_refused(libc::ENOSYS), || {
        probe_io_uring(ENTRIES, RINGS)
    });
    assert_eq!(
        refused.as_ref().err().and_then(|r| r.errno()),
        Some(libc::ENOSYS)
    );
    assert!(refused.unwrap_err().to_string().starts_with("ENOSYS"));
}

#[test]
fn the_probe_submits_through_the_ring_so_a_refused_enter_is_caught() {
    // io_uring_setup alone succeeds here: a probe that stopped there would
    // hand the cores rings that never complete anything.
    let refused = confined(seccomp::io_uring_enter_refused(libc::EPERM), || {
        probe_io_uring(ENTRIES, RINGS)
    });
    match refused {
        Err(IoUringRefused::Call { call, errno, .. }) => {
            assert_eq!((call, errno), ("io_uring_enter", libc::EPERM));
        }
        other => panic!("expected io_uring_enter refused, got {other:?}"),
    }
}

#[test]
fn an_o_direct_write_refused_with_einval_is_named_when_the_journal_opens() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let dir_for_thread = journal.clone();
    // The open succeeds; the first write is refused, as on filesystems
    // that accept the flag and fail the I/O.
    let err = confined(seccomp::pwrite_refused(libc::EINVAL), move || {
        run(async move { Journal::open(&dir_for_thread, small_config()).await.err() })
    });
    match err {
        Some(JournalError::DirectIoRefused {
            dir, stage, source, ..
        }) => {
            assert_eq!(dir, journal);
            assert_eq!(stage, "first write");
            assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
        }
        other => panic!("expected DirectIoRefused at the first write, got {other:?}"),
    }
    assert!(segment_files(&journal).is_empty(), "no segment was created");
}

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a small tmpfs at `at`, or says loudly why the test cannot run.
fn mount_tmpfs(at: &Path, test: &str) -> Option<Mounted> {
    std::fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(Mounted(at.to_path_buf()));
    }
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } != 0,
        "running as root but could not mount a tmpfs at {}",
        at.display()
    );
    skip::skip(
        test,
        "not root, so no tmpfs can be mounted (CI runs it as root)",
    );
    None
}

#[test]
fn a_journal_on_tmpfs_is_refused_unless_volatile_acks_are_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let Some(_mounted) = mount_tmpfs(&mnt, "a_journal_on_tmpfs_is_refused") else {
        return;
    };
    let dir = mnt.join("journal");
    run(async {
        let err = Journal::open(&dir, small_config()).await.err();
        match &err {
            Some(JournalError::Volatile { dir: d, filesystem }) => {
                assert_eq!(d, &dir);
                assert_eq!(filesystem, "tmpfs");
            }
            other => panic!("expected Volatile, got {other:?}"),
        }
        assert!(segment_files(&dir).is_empty(), "nothing written");
        let cfg = JournalConfig {
            allow_volatile: true,
            // tmpfs refuses O_DIRECT before Linux 6.6.
            buffered_io: true,
            ..small_config()
        };
        let j = Journal::open(&dir, cfg).await.unwrap();
        assert!(j.disk().volatile);
        assert_eq!(j.disk().filesystem, "tmpfs");
        append_each(&j, 0, 10).await;
        assert_records(&read_all(&j, 0), 0, 10);
        j.close().await.unwrap();
    });
}
