//! Counter moves, and the writes that go with them, in as few host calls as the
//! host allows: on the Tollgate edge (`edge` feature) one
//! `tollgate:gateway/counters.update`, one store transaction or Redis round trip,
//! however many counters a request moves; on plain `wasi:keyvalue` (Spin) one call
//! per counter. Either way the caller sees all or nothing.
//!
//! Counters are only ever read through an increment by 0: unlike `get`, it returns
//! the number whatever encoding the backend stores it in (Spin's Redis store keeps
//! decimal strings, SQLite integers).

use crate::bindings::wasi::keyvalue::store::{Bucket, Error as StoreError};

/// Longest single wait before giving up on a locked SQLite store (waits double from
/// 1 ms: about a quarter second in all).
const BUSY_MAX_WAIT_MS: u64 = 128;

/// Sets each of `values`, then adds each delta to its counter (a zero delta only
/// reads); returns the counters' new values in the order of `deltas`. On an error
/// no counter has moved.
pub fn update(
    bucket: &Bucket,
    deltas: &[(String, i64)],
    values: &[(String, Vec<u8>)],
) -> Result<Vec<i64>, StoreError> {
    #[cfg(feature = "edge")]
    {
        // All or nothing in one store transaction, so a locked store is retried whole.
        unless_busy(|| crate::bindings::tollgate::gateway::counters::update(bucket, deltas, values))
    }
    #[cfg(not(feature = "edge"))]
    {
        one_call_each(bucket, deltas, values)
    }
}

/// [`update`] on plain `wasi:keyvalue`: the values are set, then the counters moved
/// in order; a failed move gives back the ones before it and deletes the values.
#[cfg(not(feature = "edge"))]
fn one_call_each(
    bucket: &Bucket,
    deltas: &[(String, i64)],
    values: &[(String, Vec<u8>)],
) -> Result<Vec<i64>, StoreError> {
    for (key, value) in values {
        bucket.set(key, value)?;
    }
    let mut moved = Vec::with_capacity(deltas.len());
    for (key, delta) in deltas {
        match increment(bucket, key, *delta) {
            Ok(value) => moved.push(value),
            Err(e) => {
                let taken = deltas.iter().take(moved.len()).filter(|(_, d)| *d != 0);
                for (key, delta) in taken {
                    if let Err(e) = increment(bucket, key, delta.saturating_neg()) {
                        eprintln!("tollgate: counter {key} not given back {delta}: {e:?}");
                    }
                }
                for (key, _) in values {
                    if let Err(e) = bucket.delete(key) {
                        eprintln!("tollgate: {key} of a failed update not deleted: {e:?}");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(moved)
}

/// `atomics.increment` of one counter (a zero delta reads it), retried while the
/// store is locked.
pub fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<i64, StoreError> {
    unless_busy(|| crate::bindings::wasi::keyvalue::atomics::increment(bucket, key, delta))
}

/// Runs `op` again while the store answers SQLite's "database is locked": Spin's
/// SQLite store increments in a deferred transaction, which SQLite rolls back at
/// once, writing nothing, when another process (the admin service's sink, another
/// edge) holds the write lock. Other failures may have applied the operation and
/// are not retried.
fn unless_busy<T>(mut op: impl FnMut() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let mut wait_ms = 1;
    loop {
        match op() {
            Err(StoreError::Other(e))
                if wait_ms <= BUSY_MAX_WAIT_MS && e.contains("database is locked") =>
            {
                wasi::clocks::monotonic_clock::subscribe_duration(wait_ms * 1_000_000).block();
                wait_ms *= 2;
            }
            result => return result,
        }
    }
}
