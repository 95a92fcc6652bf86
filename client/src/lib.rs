//! Helios client (in progress).
