//! The Helios report server: query API and web UI over the store.
//!
//! Not built yet. This crate exists so the workspace has the layout of
//! DESIGN.md §2; it exports nothing until the report-server issue lands.
