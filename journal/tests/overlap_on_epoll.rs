//! `overlap.rs` again, on monoio's legacy (epoll) driver with every commit
//! on the journal's blocking writer threads, and io_uring refused to the
//! test threads by a seccomp filter (see `common::driver`).

#[path = "overlap.rs"]
mod suite;
