//! `journal.rs` again, on monoio's legacy (epoll) driver with every commit on
//! the journal's blocking writer thread, and io_uring refused to the test
//! threads by a seccomp filter (see `common::driver`).

#[path = "journal.rs"]
mod suite;
