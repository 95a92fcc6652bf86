//! Seccomp filters for tests: refuse io_uring the way Docker's and
//! containerd's default profiles do (EPERM), the way an old or stripped
//! kernel does (ENOSYS), or refuse an `O_DIRECT` open the way some FUSE and
//! network filesystems do (EINVAL), and install them on the calling thread
//! or in a child process just before it execs.
//!
//! Built with the `seccompiler` crate (rust-vmm, pure Rust on libc: no
//! system package to install). Shared by the journal's, the collector's and
//! the cross-crate tests (`#[path]`-included, like the skip helper), so each
//! including crate needs `seccompiler` and `libc` as dev-dependencies.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// A compiled filter, ready to install.
#[derive(Clone)]
pub struct Filter {
    program: BpfProgram,
    what: String,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

fn arch() -> TargetArch {
    std::env::consts::ARCH
        .try_into()
        .expect("seccomp filters are built for x86_64, aarch64 and riscv64 only")
}

/// Every other syscall is allowed; the listed ones (with their argument
/// rules; an empty list matches every call) answer `errno`.
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32, what: String) -> Filter {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch(),
    )
    .expect("a valid seccomp filter");
    let program: BpfProgram = filter.try_into().expect("a seccomp filter compiles");
    Filter { program, what }
}

/// `io_uring_setup`, `io_uring_enter` and `io_uring_register` all answer
/// `errno`, as Docker 25+'s default profile does with EPERM.
pub fn io_uring_refused(errno: i32) -> Filter {
    let rules = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    compile(rules, errno, format!("io_uring refused with errno {errno}"))
}

/// Only `io_uring_enter` answers `errno`: a ring can be set up but nothing
/// submitted (what a probe that stops at `io_uring_setup` would miss).
pub fn io_uring_enter_refused(errno: i32) -> Filter {
    let rules = [(libc::SYS_io_uring_enter, Vec::new())].into();
    compile(
        rules,
        errno,
        format!("io_uring_enter refused with errno {errno}"),
    )
}

/// An `open`/`openat` whose flags carry `O_DIRECT` answers `errno`
/// (EINVAL: what a filesystem without direct I/O says).
pub fn o_direct_open_refused(errno: i32) -> Filter {
    let direct = libc::O_DIRECT as u64;
    let carries_o_direct = |arg: u8| {
        SeccompRule::new(vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(direct),
            direct,
        )
        .expect("a valid condition")])
        .expect("a valid rule")
    };
    let mut rules = BTreeMap::new();
    // openat(dirfd, path, flags, mode): flags are argument 2.
    rules.insert(libc::SYS_openat, vec![carries_o_direct(2)]);
    // open(path, flags, mode) where the architecture still has it.
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_open, vec![carries_o_direct(1)]);
    compile(
        rules,
        errno,
        format!("O_DIRECT opens refused with errno {errno}"),
    )
}

/// Every positioned write (`pwrite64`, what std's `write_at` uses; the
/// journal's commits and its O_DIRECT probe) answers `errno`: a filesystem
/// that takes an O_DIRECT open but refuses the write (EINVAL). Plain
/// `write` is untouched.
pub fn pwrite_refused(errno: i32) -> Filter {
    let rules = [(libc::SYS_pwrite64, Vec::new())].into();
    compile(rules, errno, format!("pwrite64 refused with errno {errno}"))
}

impl Filter {
    /// Installs the filter on the calling thread (and the threads it starts
    /// from now on). It cannot be removed: use it on a test's own thread.
    pub fn apply_to_this_thread(&self) -> io::Result<()> {
        seccompiler::apply_filter(&self.program).map_err(io::Error::other)
    }

    /// What the filter refuses (for messages).
    pub fn describe(&self) -> &str {
        &self.what
    }
}

/// Makes `cmd`'s child install `filters` between fork and exec, so the
/// program runs confined from its first instruction, as under a container
/// runtime's profile.
pub fn confine(cmd: &mut Command, filters: &[Filter]) {
    let programs: Vec<BpfProgram> = filters.iter().map(|f| f.program.clone()).collect();
    // SAFETY: the closure runs in the forked child before exec; it only
    // calls prctl/seccomp on programs compiled before the fork (no
    // allocation, no lock).
    unsafe {
        cmd.pre_exec(move || {
            for program in &programs {
                seccompiler::apply_filter(program)
                    .map_err(|_| io::Error::from_raw_os_error(libc::EPERM))?;
            }
            Ok(())
        });
    }
}
