//! `helios-journal`: the durable group-commit journal every acked Helios
//! event passes through.
//!
//! One [`Journal`] per writer (the collector runs one per core), each in its
//! own directory of fixed-size, preallocated, zero-filled segment files.
//! [`Journal::append`] copies a record into the current group and returns a
//! [`Ticket`]; the group is written with one O_DIRECT write starting on a
//! fresh block and fdatasynced before any of its tickets resolves. Opening
//! recovers from disk: a torn final commit is truncated, damaged acked data
//! refuses to open. Flushers read committed records with a
//! [`JournalReader`] and persist progress through a [`Checkpointer`], which
//! lets old segments be recycled.
//!
//! The byte-level format is in `journal/FORMAT.md`. This crate knows nothing
//! of HTTP, JSON or stores.

#![warn(missing_docs)]

mod aligned;
pub mod checkpoint;
mod commit;
mod commit_thread;
mod config;
pub mod disk;
mod error;
mod fault;
pub mod format;
pub mod histogram;
mod prealloc;
mod reader;
mod recovery;
pub mod repair;
pub mod runtime;
mod segment;
mod shared;
mod stale;
mod writer;

pub use aligned::AlignedBuf;
pub use checkpoint::{Checkpoint, RecordIds};
pub use config::*;
pub use disk::DiskCheck;
pub use error::{FormatError, JournalError, Result};
pub use fault::{FaultPlan, HoldPoint};
pub use format::RecordMeta;
pub use reader::{JournalReader, Record};
pub use recovery::{recover, Recovered, SegmentState};
pub use runtime::{IoDriver, IoUringRefused};
pub use segment::segment_path;
pub use shared::JournalStats;
pub use writer::{Checkpointer, Journal, JournalMonitor, RecoveryReport, Ticket};
