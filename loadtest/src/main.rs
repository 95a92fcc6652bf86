//! `helios-loadgen` command line: flags → run → table or JSON.
//! Exit 0 when the run completed (HTTP errors are reported, not fatal),
//! 2 on bad arguments, 1 when the run itself failed.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use helios_loadgen::{run, Args, Config, RunError};

fn main() -> ExitCode {
    let config = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("helios-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let json = config.json;
    match run(config) {
        Ok(report) => {
            if json {
                eprint!("{}", report.to_table());
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e @ RunError::Setup(_)) => {
            eprintln!("helios-loadgen: {e}");
            ExitCode::from(2)
        }
        Err(e @ RunError::Failed(_)) => {
            eprintln!("helios-loadgen: {e}");
            ExitCode::from(1)
        }
    }
}
