//! The Helios report server: a JSON query API and a web UI over the stored
//! events (DESIGN §6).
//!
//! - [`config`]: the command line and its secure-by-default checks;
//!   [`file_config`]: `--config FILE`.
//! - [`ReportServer`]: bind and serve (used by `helios-report` and by the
//!   one-command `helios` stack).
//! - [`Backend`]: the store, opened from a store URI, queried on the
//!   blocking pool through `helios_store::query::QueryBackend`.
//! - The UI's files are embedded in the binary (`assets/`); every response
//!   carries a strict Content-Security-Policy ([`security`]).
//!
//! This crate depends on `helios-store` only; it never writes to a store.

// Denied everywhere but `limits` (two libc calls on this process's own
// rlimit), the one place that may not be written without it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod assets;
pub mod backend;
pub mod config;
pub mod error;
pub mod file_config;
#[allow(unsafe_code)]
pub mod limits;
pub mod params;
pub mod routes;
pub mod security;
pub mod server;

pub use backend::{Backend, BackendError};
pub use config::{Cli, ConfigError, ReportConfig};
pub use server::{ReportServer, ServerError};
