//! The Helios collector: thread-per-core HTTP ingest into per-core journals.
//!
//! Not built yet. This crate exists so the workspace has the layout of
//! DESIGN.md §2; the server, decoding, validation and flushers land with the
//! durable-ingest issue. It deliberately exports nothing, so nothing can
//! depend on a collector that does not exist.
