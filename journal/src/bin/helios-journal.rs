//! `helios-journal`: inspect and repair a journal directory offline (the
//! collector must not be running on it).
//!
//! ```text
//! helios-journal check DIR    recover read-only and print what is there
//! helios-journal repair DIR   quarantine a damaged tail so DIR opens again
//! ```

use std::path::Path;
use std::process::ExitCode;

use helios_journal::repair::{quarantine_tail, RepairOutcome};
use helios_journal::{recover, JournalError};

const USAGE: &str = "usage: helios-journal check DIR | helios-journal repair DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, dir) = match args.as_slice() {
        [cmd, dir] => (cmd.as_str(), Path::new(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        "check" => check(dir),
        "repair" => repair(dir),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(dir: &Path) -> ExitCode {
    match recover(dir) {
        Ok(r) => {
            for s in &r.segments {
                let seqs = s
                    .seqs
                    .map_or("empty".to_string(), |(a, b)| format!("seq {a}..={b}"));
                println!(
                    "{}  lap {}  {}  used {} of {} bytes",
                    s.path.display(),
                    s.lap,
                    seqs,
                    s.used_end,
                    s.size
                );
            }
            let cp = r.checkpoint.map_or(0, |c| c.seq);
            println!(
                "last seq {}  checkpoint seq {cp}  torn commits {}",
                r.last_seq(),
                r.torn_commits
            );
            // Erased by the next open (check itself changes nothing).
            for (path, offset) in &r.unacked_overlapping {
                println!(
                    "unacknowledged commit in flight with the torn one: {} offset {offset} (dropped at open)",
                    path.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn repair(dir: &Path) -> ExitCode {
    match quarantine_tail(dir) {
        Ok(RepairOutcome::Healthy) => {
            println!("journal is healthy; nothing to repair");
            ExitCode::SUCCESS
        }
        Ok(RepairOutcome::Quarantined {
            path,
            offset,
            moved,
        }) => {
            println!(
                "quarantined the tail of {} from offset {offset}:",
                path.display()
            );
            for m in moved {
                println!("  {}", m.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => report(&e),
    }
}

fn report(e: &JournalError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
