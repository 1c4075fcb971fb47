//! Shared pieces of the end-to-end tests and benchmarks: the mock upstream provider
//! (the outside world), builders for compiled records, the edge alone, the admin
//! service plus edge together, and real Spin.

pub mod admin;
pub mod fixtures;
pub mod harness;
pub mod openai;
pub mod spin;
pub mod upstream;
pub mod wall_clock;
