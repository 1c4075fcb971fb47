//! Edge synchronisation: compiling records, the outbox and its pushers, the KV sinks,
//! the usage drain and the counter sweep.

pub mod compile;
pub mod drain;
pub mod outbox;
pub mod sinks;
pub mod sweep;
