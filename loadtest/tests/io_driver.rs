//! `--io-driver`: the epoll driver does what the io_uring one does, and
//! where io_uring is refused (a seccomp filter answering EPERM, as Docker's
//! default profile does) `auto` falls back to epoll and says so, while a
//! demanded `io-uring` fails.
mod common;
#[path = "../../store/tests/support/skip.rs"]
mod skip;
use common::*;
use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// io_uring_setup, io_uring_enter, io_uring_register (the same numbers on
/// x86_64 and aarch64).
const IO_URING_SYSCALLS: (u32, u32) = (425, 427);

/// Installs, in the child about to exec, a seccomp filter that answers
/// EPERM to the three io_uring calls and allows everything else.
fn refuse_io_uring(cmd: &mut Command) {
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
    const BPF_JMP_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K (0)
    const BPF_JMP_JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K (0)
    const BPF_RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code, k, jt, jf| libc::sock_filter { code, jt, jf, k };
    let program = [
        stmt(BPF_LD_W_ABS, 0), // seccomp_data.nr
        jump(BPF_JMP_JGE_K, IO_URING_SYSCALLS.0, 0, 2),
        jump(BPF_JMP_JGT_K, IO_URING_SYSCALLS.1, 1, 0),
        stmt(BPF_RET_K, RET_ERRNO | libc::EPERM as u32),
        stmt(BPF_RET_K, RET_ALLOW),
    ];
    // SAFETY: between fork and exec the closure only makes two prctl calls
    // on memory it owns (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: program.len() as u16,
                filter: program.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

fn run_refused(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios-loadgen"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    refuse_io_uring(&mut cmd);
    let out = cmd.output().expect("the loadgen runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refused_io_uring_falls_back_to_epoll_and_says_so() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let (code, stdout, stderr) = run_refused(&[
        "--url",
        &url,
        "--requests",
        "20",
        "-c",
        "2",
        "--json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The table (on stderr with --json) shows the driver too; the notice
    // is the one line of its own.
    let fallback_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("helios-loadgen:"))
        .collect();
    assert_eq!(
        fallback_lines,
        ["helios-loadgen: io_uring refused (EPERM from io_uring_setup); running on epoll"],
        "one line says so: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["io_driver"], "epoll");
    assert_eq!(report["io_driver_fallback"], "EPERM from io_uring_setup");
    assert!(stderr.contains("  io           epoll (io_uring refused: EPERM from io_uring_setup)"));
    assert_eq!(report["status"]["204"], 20);
    assert_eq!(server.log().requests.len(), 20);
}

#[test]
fn demanded_io_uring_fails_where_refused() {
    let (code, _, stderr) = run_refused(&[
        "--url",
        "http://127.0.0.1:9/",
        "--requests",
        "1",
        "--io-driver",
        "io-uring",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("io_uring refused: EPERM"), "{stderr}");
}

#[test]
fn io_uring_is_used_where_allowed_unless_epoll_is_asked_for() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let auto = loadgen_json(&["--url", &url, "--requests", "4", "-c", "1"]);
    match auto["io_driver_fallback"].as_str() {
        // A sandbox that refuses io_uring (Docker's default seccomp
        // profile): auto fell back, which the other tests check.
        Some(why) => skip::skip(
            "io_uring_is_used_where_allowed_unless_epoll_is_asked_for (the io_uring half)",
            &format!("io_uring is refused here ({why}); run on a host that allows it"),
        ),
        None => assert_eq!(auto["io_driver"], "io_uring"),
    }
    let epoll = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "4",
        "-c",
        "1",
        "--io-driver",
        "epoll",
    ]);
    assert_eq!(epoll["io_driver"], "epoll");
    assert!(epoll["io_driver_fallback"].is_null());
}

#[test]
fn epoll_pipelines_reconnects_and_acks_like_io_uring() {
    // Pipelined bursts of 4, the connection closed after every 3rd burst's
    // answers: every request answered in order, reconnecting as needed.
    let server = TestServer::start(Opts { min_burst: 4 }, |req| Reply {
        close: req.seq % 12 == 11,
        ..Reply::json(200, r#"{"accepted":1,"rejected":[]}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids");
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "48",
        "-c",
        "1",
        "--pipeline",
        "4",
        "--ids-out",
        ids.to_str().unwrap(),
        "--io-driver",
        "epoll",
    ]);
    assert_eq!(report["status"]["200"], 48);
    assert_eq!(report["errors"]["closed"], 4);
    assert_eq!(
        report["connects"], 4,
        "one connection, reconnected after 3 of 4 closes"
    );
    let log = server.log();
    assert_eq!(log.bursts, vec![4; 12]);
    let sent: BTreeSet<String> = log.requests.iter().flat_map(|r| r.ids()).collect();
    let written: BTreeSet<String> = std::fs::read_to_string(&ids)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(written.len(), 48);
    assert_eq!(written, sent);
}

#[test]
fn epoll_paces_an_open_loop_run() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--rate",
        "200",
        "--duration",
        "1s",
        "-c",
        "4",
        "-t",
        "2",
        "--io-driver",
        "epoll",
    ]);
    assert_eq!(report["io_driver"], "epoll");
    // Constant arrivals: exactly rate × duration intended. Each one was
    // sent, or counted in the backlog if its connection was still busy at
    // the end (a test server starved of CPU on a loaded machine stalls for
    // hundreds of milliseconds: never a silently lower rate).
    let sent = report["requests_sent"].as_u64().unwrap();
    let backlog = report["pacing"]["backlog"].as_u64().unwrap();
    assert_eq!(sent + backlog, 200, "{report}");
    assert!(sent > 0, "{report}");
    assert_eq!(report["responses"], sent, "{report}");
    assert!(report["pacing"]["send_lateness_us"]["p50"].is_number());
}

#[test]
fn helios_io_driver_in_the_environment_picks_the_driver_as_for_the_collector() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let run = loadgen_with_env(
        &[
            "--url",
            &url,
            "--requests",
            "8",
            "-c",
            "2",
            "--json",
            "--quiet",
        ],
        &[("HELIOS_IO_DRIVER", "epoll")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["io_driver"], "epoll", "{report}");
    assert_eq!(report["responses"], 8, "{report}");
}
