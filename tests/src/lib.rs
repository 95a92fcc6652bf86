//! Cross-crate integration tests; the test programs are in `src/bin/`.
//! [`seccomp`] builds the filters the tests run programs under (also
//! included by path from the journal's and the collector's tests).

pub mod seccomp;
