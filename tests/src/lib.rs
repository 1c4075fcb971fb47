//! Shared pieces of the end-to-end tests and benchmarks: the mock upstream provider
//! (the outside world) and builders for compiled records.

pub mod fixtures;
pub mod harness;
pub mod upstream;
