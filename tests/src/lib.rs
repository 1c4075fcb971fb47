//! Shared pieces of the end-to-end tests and benchmarks: the mock upstream provider
//! (the outside world), builders for compiled records, the edge alone, and the admin
//! service plus edge together.

pub mod admin;
pub mod fixtures;
pub mod harness;
pub mod openai;
pub mod upstream;
