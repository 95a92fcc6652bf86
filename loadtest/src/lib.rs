//! `helios-loadgen`: the bundled load generator (DESIGN.md §8).
//!
//! Drives any HTTP/1.1 endpoint with POSTs from one event loop per thread
//! (io_uring, or epoll where io_uring is refused), closed loop at full
//! speed or open loop at a fixed rate (constant or Poisson arrivals, paced
//! to the microsecond on absolute timerfd deadlines) with
//! coordinated-omission correction, with pipelining, synthesized or file
//! bodies (JSON, NDJSON, gzip), HdrHistogram latency (corrected and
//! uncorrected, per second, and as an interval log). `--ids-out` turns it
//! into a durability checker: every event gets a unique `_id`, and the ids
//! of acked events are written out for a test to compare with the store.
//!
//! Depends on no Helios server crate: it must measure nginx the same way.
//!
//! Code map: `config` (flags → `Config`), `body` (event payloads and `_id`
//! slots), `object_id` (unique ids), `request` (request bytes, gzip),
//! `response` (response framing, ack parsing), `clock` (the monotonic ns
//! clock), `pacing` (schedules, early wake-up; no I/O), `driver` (io_uring
//! or epoll, completions, the timerfd), `conn` (one connection's state
//! machine), `worker` (a thread's event loop and pacing), `stats`
//! (per-thread counters and intervals), `series` (per-second merge,
//! `--hdr-log`), `ids_out` (the ids file), `runner` (threads, progress),
//! `report` (table and JSON).

#![warn(missing_docs)]

pub mod body;
pub mod clock;
pub mod config;
pub mod conn;
pub mod driver;
pub mod ids_out;
pub mod object_id;
pub mod pacing;
pub mod report;
pub mod request;
pub mod response;
pub mod runner;
pub mod series;
pub mod stats;
pub mod worker;

pub use config::{Args, Config, ConfigError};
pub use report::Report;
pub use runner::{run, RunError};
