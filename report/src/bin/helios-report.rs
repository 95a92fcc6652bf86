//! `helios-report`: see `--help`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use helios_report::{Backend, Cli, ReportConfig, ReportServer};

fn main() -> ExitCode {
    let cfg = match ReportConfig::resolve(Cli::parse()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("helios-report: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("helios-report: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: ReportConfig) -> anyhow::Result<()> {
    let backend = Backend::from_uri(&cfg.store)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helios-report")
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let server = ReportServer::bind(&cfg, backend).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, "helios-report listening");
        println!("helios-report: http://{addr}/");
        server.serve(termination()).await?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn termination() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
