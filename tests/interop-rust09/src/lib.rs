//! Nothing but tests: see `tests/rust09.rs`.
