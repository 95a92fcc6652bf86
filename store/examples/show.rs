//! Prints how many events an embedded store holds and the newest ones.
//!
//! `cargo run -p helios-store --example show -- helios-data/events.db [N]`
//! (`--count` prints only the count, for scripts).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count_only = args.iter().any(|a| a == "--count");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--count").collect();
    let Some(path) = rest.first() else {
        eprintln!("usage: show DB [N] [--count]");
        return ExitCode::from(2);
    };
    let newest: usize = rest.get(1).and_then(|n| n.parse().ok()).unwrap_or(5);
    let reader = match helios_store::sqlite::SqliteReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let count = match reader.count() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if count_only {
        println!("{count}");
        return ExitCode::SUCCESS;
    }
    println!("{count} events in {path}");
    let ids = match reader.ids() {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for id in ids.iter().rev().take(newest) {
        if let Ok(Some(doc)) = reader.get(*id) {
            println!("{}", doc.doc);
        }
    }
    ExitCode::SUCCESS
}
