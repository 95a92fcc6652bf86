//! The bundled Helios load generator.
//!
//! Not built yet. This crate exists so the workspace has the layout of
//! DESIGN.md §2; it exports nothing until the load-generator issue lands.
