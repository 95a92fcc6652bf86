//! A test that cannot run here (no MongoDB server, not root) says so where
//! people and CI look: straight to the stderr handle (libtest captures
//! `eprintln!`) and, when `HELIOS_SKIP_LOG` names a file, one line appended
//! there, which `.ci/test` prints as a summary at the end of the run.
//! Shared by the store's and the collector's tests (`#[path]`-included).

#![allow(dead_code)]

use std::io::Write;

/// Environment variable naming the file skips are appended to.
pub const SKIP_LOG_VAR: &str = "HELIOS_SKIP_LOG";

/// Reports that `test` did not run, and why (with what would make it run).
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}");
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            // One write of the whole line: tests append concurrently, and
            // `writeln!` may split a line into several writes.
            .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
        if let Err(error) = appended {
            let _ = writeln!(std::io::stderr(), "cannot append to {path:?}: {error}");
        }
    }
}
