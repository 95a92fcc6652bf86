//! `helios-report`: see `--help`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use helios_report::file_config::{self, FileConfigError};
use helios_report::{Backend, ReportConfig, ReportServer};

fn main() -> ExitCode {
    let cli = match file_config::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        // `--help`, `--version` and bad arguments: clap prints and exits.
        Err(FileConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("helios-report: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match ReportConfig::resolve(cli) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("helios-report: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match helios_report::limits::raise_open_file_limit() {
        Ok((old, new)) if old != new => {
            tracing::info!(
                old,
                new,
                "raised the open-file limit (columnar files stay open)"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("helios-report: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How long the runtime may wait for blocking work still running once the
/// server has stopped. The server cancels its queries before it returns,
/// so this is only a backstop: a stop must not hang on a stuck thread.
const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(3);

fn run(cfg: ReportConfig) -> anyhow::Result<()> {
    let backend = Backend::from_config(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("helios-report")
        .build()
        .context("starting the tokio runtime")?;
    let served = runtime.block_on(async {
        // Installed before the URL is printed: a SIGTERM right after it
        // must stop the server cleanly, not kill it.
        let stop = termination()?;
        let server = ReportServer::bind(&cfg, backend).await?;
        let addr = server.local_addr()?;
        tracing::info!(%addr, "helios-report listening");
        println!("helios-report: http://{addr}/");
        server.serve(stop).await?;
        Ok(())
    });
    runtime.shutdown_timeout(RUNTIME_STOP_TIMEOUT);
    served
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
        // Colour only on a terminal: a file, a pipe or journald gets
        // plain text (issue 23).
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
