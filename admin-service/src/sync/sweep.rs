//! Counter sweep: removes the counters of rate-limit windows and budget periods
//! that have ended from every sink, so each edge store stays bounded. Spin's
//! stores never expire them (its Redis `increment` is a plain `INCRBY`, its SQLite
//! store has no expiry), and neither does the edge host's SQLite store.
//!
//! Which window or period a counter belongs to is read from its name
//! (`policy::kv::counter_key`, `policy::kv::spend_key`); names it does not know
//! are left alone.
//!
//! The sweep also deletes response-cache entries (`cache:*`) whose expiry, read
//! from the head of the value, has passed: the edge never serves them, and
//! overwrites only those that are asked for again. An entry rewritten between the
//! read and the delete is lost, which costs one cache miss.

use std::sync::Arc;
use std::time::Duration;

use policy::{Metric, kv};
use tokio::task::JoinHandle;

use crate::store::db::{Db, now_ms};
use crate::store::sync::{Job, SinkTurn};
use crate::sync::compile::KvWrite;
use crate::sync::sinks::{Sink, SinkError};

/// How often each sink is swept (the first sweep runs at start).
const INTERVAL: Duration = Duration::from_secs(60);
/// A counter outlives its window or period by this much: an edge whose clock lags
/// may still count in it, and a stream settles its tokens after it ends.
pub const GRACE_MS: u64 = 5 * 60_000;
/// The longest budget period, a 31-day month. A spend key names only the start of
/// its period, so it is kept until the longest period starting then has ended.
pub const LONGEST_PERIOD_MS: u64 = 31 * 86_400_000;
/// Keys deleted per write to the sink.
const DELETE_BATCH: usize = 500;

/// When the window or period counted under `key` ends (Unix ms), or `None` for a
/// key that is not a counter this version knows (kept).
pub fn counter_ends_at(key: &str) -> Option<u64> {
    let rest = key.strip_prefix(kv::COUNTER_PREFIX)?;
    // `<scope>:<id>:<metric>:<n>`: ids may hold `:`, so take the fields from the right.
    let (rest, number) = rest.rsplit_once(':')?;
    let (_, kind) = rest.rsplit_once(':')?;
    let number: u64 = number.parse().ok()?;
    if kind == "spend" {
        return number.checked_add(LONGEST_PERIOD_MS);
    }
    let metric = Metric::ALL.into_iter().find(|m| m.as_str() == kind)?;
    number.checked_add(1)?.checked_mul(metric.window_ms())
}

/// Whether `key` is a counter whose window or period ended over [`GRACE_MS`] before `now_ms`.
pub fn is_past(key: &str, now_ms: u64) -> bool {
    counter_ends_at(key).is_some_and(|end| end.saturating_add(GRACE_MS) <= now_ms)
}

/// Whether a cache entry whose value starts with `head` expired by `now_ms`
/// (an unreadable one is left alone).
pub fn is_expired(head: &[u8], now_ms: u64) -> bool {
    policy::cache::expires_at(head).is_some_and(|at| at <= now_ms)
}

/// Deletes every past counter and expired cache entry from `sink`; returns how
/// many were deleted.
pub async fn sweep_once(sink: &dyn Sink, now_ms: u64) -> Result<usize, SinkError> {
    let counters = sink.counter_keys().await?;
    let entries = sink.cache_expiries().await?;
    let past: Vec<KvWrite> = counters
        .into_iter()
        .filter(|k| is_past(k, now_ms))
        .chain(
            entries
                .into_iter()
                .filter(|(_, head)| is_expired(head, now_ms))
                .map(|(key, _)| key),
        )
        .map(|key| KvWrite::Delete { key })
        .collect();
    for batch in past.chunks(DELETE_BATCH) {
        sink.apply(batch).await?;
    }
    Ok(past.len())
}

/// Spawns one sweeper per sink. With several replicas, the one holding a sink's
/// sweep turn sweeps it; the others skip that round (deletes are idempotent, so
/// this only saves the duplicate scans).
pub fn spawn_sweepers(db: &Db, sinks: &[Arc<dyn Sink>]) -> Vec<JoinHandle<()>> {
    sinks
        .iter()
        .map(|sink| {
            let (db, sink) = (db.clone(), sink.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(INTERVAL);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    let turn = match SinkTurn::take(&db, Job::Sweep, sink.name()).await {
                        Ok(Some(turn)) => turn,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(sink = sink.name(), error = %e, "store sweep failed");
                            continue;
                        }
                    };
                    let now = u64::try_from(now_ms()).unwrap_or(0);
                    let swept = sweep_once(sink.as_ref(), now).await;
                    // Nothing was written under the turn: ending it only frees the sink.
                    drop(turn);
                    match swept {
                        Ok(0) => {}
                        Ok(n) => tracing::debug!(sink = sink.name(), removed = n, "store swept"),
                        Err(e) => {
                            tracing::warn!(sink = sink.name(), error = %e, "store sweep failed")
                        }
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::Scope;

    const MINUTE: u64 = 60_000;
    const DAY: u64 = 86_400_000;
    // 2026-11-23T10:15:30Z.
    const NOW: u64 = 1_795_428_930_000;

    #[test]
    fn window_ends_are_read_from_the_names_policy_builds() {
        for metric in Metric::ALL {
            let len = metric.window_ms();
            let window = metric.window(NOW).index;
            let key = kv::counter_key(Scope::Team, "team:with:colons", metric, window);
            assert_eq!(counter_ends_at(&key), Some((window + 1) * len), "{key}");
        }
        let spend = kv::spend_key(Scope::Org, "o1", NOW - NOW % DAY);
        assert_eq!(
            counter_ends_at(&spend),
            Some(NOW - NOW % DAY + LONGEST_PERIOD_MS)
        );
    }

    #[test]
    fn only_counters_past_their_window_and_the_grace_are_past() {
        let rpm = |at: u64| kv::counter_key(Scope::Org, "o1", Metric::Rpm, at / MINUTE);
        assert!(!is_past(&rpm(NOW), NOW));
        // The previous minute is still within the grace.
        assert!(!is_past(&rpm(NOW - MINUTE), NOW));
        assert!(is_past(&rpm(NOW - GRACE_MS - MINUTE), NOW));
        let rpd = |at: u64| kv::counter_key(Scope::Key, "k1", Metric::Rpd, at / DAY);
        assert!(!is_past(&rpd(NOW - 10 * MINUTE), NOW));
        assert!(is_past(&rpd(NOW - DAY), NOW));
        // A daily or monthly spend key: kept for the longest period after its start.
        let spend = |start: u64| kv::spend_key(Scope::Key, "k1", start);
        assert!(!is_past(&spend(NOW - 30 * DAY), NOW));
        assert!(is_past(&spend(NOW - 32 * DAY), NOW));
    }

    #[test]
    fn anything_else_is_kept() {
        for key in [
            "org:o1",
            "key:abc",
            "usage:0123",
            "ctr:",
            "ctr:org:o1:rpm",
            "ctr:org:o1:rpm:notanumber",
            "ctr:org:o1:rpm:-1",
            "ctr:org:o1:weird:1",
            "ctr:org:o1:rpm:99999999999999999999",
            "ctr:org:o1:rpd:18446744073709551615",
        ] {
            assert_eq!(counter_ends_at(key), None, "{key}");
            assert!(!is_past(key, u64::MAX), "{key}");
        }
    }

    #[test]
    fn only_cache_entries_past_their_expiry_are_expired() {
        let entry = |expires_at_ms| {
            policy::cache::Entry {
                expires_at_ms,
                status: 200,
                content_type: b"application/json",
                body: b"{}",
            }
            .encode()
        };
        let head = |v: &[u8]| v[..v.len().min(policy::cache::EXPIRY_PREFIX_BYTES)].to_vec();
        assert!(is_expired(&head(&entry(NOW - 1)), NOW));
        assert!(is_expired(&head(&entry(NOW)), NOW));
        assert!(!is_expired(&head(&entry(NOW + 1)), NOW));
        assert!(!is_expired(&head(&entry(u64::MAX)), NOW));
        assert!(!is_expired(b"garbage", u64::MAX));
        assert!(!is_expired(b"", u64::MAX));
    }
}
