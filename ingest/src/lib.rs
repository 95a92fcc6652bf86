//! The Helios collector: thread-per-core HTTP/1.1 ingest on monoio
//! (io_uring) into durable per-core journals, and a flusher that moves
//! journaled events into the store.
//!
//! The binary is `helios-collector` (`src/bin`); this library holds its
//! parts so tests and benches can drive them.

#![warn(missing_docs)]

pub mod auth;
pub mod collector;
pub mod compaction;
pub mod config;
pub mod deadletter;
pub mod decode;
pub mod events;
pub mod flusher;
pub mod http;
pub mod metrics;
pub mod relay;
pub mod response;
pub mod server;
pub mod shutdown;
pub mod syslog;
