//! Cross-crate integration tests; the test programs are in `src/bin/`.
