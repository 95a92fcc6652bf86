//! `helios-collector`: see `--help`.

use std::process::ExitCode;

use clap::Parser;
use helios_ingest::config::{Cli, Command, Config, DeadLetterAction, LogFormat};
use helios_ingest::deadletter;
use helios_ingest::shutdown::{block_termination_signals, spawn_signal_thread, Shutdown};

fn main() -> ExitCode {
    // Before any thread exists, so every thread inherits the mask and only
    // the signal thread sees SIGINT/SIGTERM.
    if let Err(e) = block_termination_signals() {
        eprintln!("helios-collector: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    let command = cli.command;
    let cfg = match Config::resolve(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("helios-collector: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.log_format);
    if let Some(Command::DeadLetter { action }) = command {
        return match dead_letter(&cfg, action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("helios-collector: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
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

fn dead_letter(cfg: &Config, action: DeadLetterAction) -> anyhow::Result<()> {
    let path = cfg
        .data_dir
        .join(helios_ingest::collector::DEAD_LETTER_DIR)
        .join(deadletter::DEAD_LETTER_FILE);
    match action {
        DeadLetterAction::List => {
            let letters = deadletter::read_all(&path)?;
            for l in &letters {
                let id = l
                    .event
                    .as_ref()
                    .and_then(|e| e["_id"].as_str())
                    .unwrap_or("-");
                let kind = l
                    .event
                    .as_ref()
                    .and_then(|e| e["type"].as_str())
                    .unwrap_or("-");
                println!("{id}\t{kind}\t{}", l.reason);
            }
            println!("{} dead letters in {}", letters.len(), path.display());
        }
        DeadLetterAction::Replay => {
            let _lock = helios_ingest::collector::lock_data_dir(&cfg.data_dir)?;
            let mut sink = cfg.open_sink()?;
            let outcome = deadletter::replay(&path, sink.as_mut())?;
            println!(
                "{} stored, {} kept in {}",
                outcome.stored,
                outcome.kept,
                path.display()
            );
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a file, a pipe or journald gets
        // plain text (issue 23).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
