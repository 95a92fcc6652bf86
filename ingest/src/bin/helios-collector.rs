//! `helios-collector`: see `--help`.

use std::process::ExitCode;

use clap::Parser;
use helios_ingest::config::{Cli, Config, LogFormat};
use helios_ingest::shutdown::{block_termination_signals, spawn_signal_thread, Shutdown};

fn main() -> ExitCode {
    // Before any thread exists, so every thread inherits the mask and only
    // the signal thread sees SIGINT/SIGTERM.
    if let Err(e) = block_termination_signals() {
        eprintln!("helios-collector: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let cfg = match Config::resolve(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("helios-collector: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.log_format);
    let shutdown = Shutdown::new();
    if let Err(e) = spawn_signal_thread(shutdown.clone()) {
        tracing::error!(error = %e, "cannot start the signal thread");
        return ExitCode::FAILURE;
    }
    match helios_ingest::collector::run(cfg, shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "helios-collector failed");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
