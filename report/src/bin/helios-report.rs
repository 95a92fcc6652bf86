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
    let backend = Backend::from_config(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helios-report")
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        // Installed before the URL is printed: a SIGTERM right after it
        // must stop the server cleanly, not kill it.
        let stop = termination()?;
        let server = ReportServer::bind(&cfg, backend).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, "helios-report listening");
        println!("helios-report: http://{addr}/");
        server.serve(stop).await?;
        Ok(())
    })
}

/// A future that resolves on SIGINT or SIGTERM (handlers installed now).
fn termination() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
