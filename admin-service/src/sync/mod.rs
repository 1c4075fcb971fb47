//! Edge synchronisation: compiling records, the outbox and its pushers, the KV sinks.

pub mod compile;
pub mod outbox;
pub mod sinks;
pub mod sweep;
