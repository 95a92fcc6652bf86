//! Helios store (in progress).
