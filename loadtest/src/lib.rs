//! `helios-loadgen`: the bundled load generator (DESIGN.md §8).
//!
//! Drives any HTTP/1.1 endpoint with POSTs from one monoio io_uring runtime
//! per thread, closed loop at full speed or open loop at a fixed rate with
//! coordinated-omission correction, with pipelining, synthesized or file
//! bodies (JSON, NDJSON, gzip), and HdrHistogram latency. `--ids-out` turns
//! it into a durability checker: every event gets a unique `_id`, and the
//! ids of acked events are written out for a test to compare with the store.
//!
//! Depends on no Helios server crate: it must measure nginx the same way.
//!
//! Code map: `config` (flags → `Config`), `body` (event payloads and `_id`
//! slots), `object_id` (unique ids), `request` (request bytes, gzip),
//! `response` (response framing, ack parsing), `conn` (one connection's
//! loop), `stats` (per-thread counters), `ids_out` (the ids file), `runner`
//! (threads, progress, merge), `report` (table and JSON).

#![warn(missing_docs)]

pub mod body;
pub mod config;
pub mod conn;
pub mod ids_out;
pub mod object_id;
pub mod report;
pub mod request;
pub mod response;
pub mod runner;
pub mod stats;

pub use config::{Args, Config, ConfigError};
pub use report::Report;
pub use runner::{run, RunError};
