//! The admin service's sweep on a real SQLite sink and a real Redis sink:
//! counters of past windows and budget periods and expired response-cache entries
//! are removed (as Spin's stores never expire them), current ones and every other
//! key are kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_service::sync::sinks::{Sink, SinkTarget};
use admin_service::sync::sweep::{self, GRACE_MS, LONGEST_PERIOD_MS};
use edge_host::{Kv, KvConfig};
use policy::{Metric, Scope, kv};
use tollgate_e2e::harness::RedisServer;
use tollgate_e2e::wall_clock::{MINUTE_MS, now_ms};

const DAY_MS: u64 = 86_400_000;

/// Counters a store holds at `now`, as `(key, past?)`: every metric's current and
/// previous window (the previous still within the grace), windows long gone, and
/// spend of this and of a long-ended period.
fn counters(now: u64) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for metric in Metric::ALL {
        let len = metric.window_ms();
        let current = metric.window(now).index;
        let gone = metric.window(now - GRACE_MS - len).index;
        out.push((kv::counter_key(Scope::Org, "org_1", metric, current), false));
        out.push((kv::counter_key(Scope::Key, "key_1", metric, gone), true));
    }
    let rpm_now = Metric::Rpm.window(now).index;
    out.push((
        kv::counter_key(Scope::Team, "t", Metric::Rpm, rpm_now - 1),
        false,
    ));
    let today = now - now % DAY_MS;
    out.push((kv::spend_key(Scope::Org, "org_1", today), false));
    out.push((
        kv::spend_key(Scope::Org, "org_1", today - 30 * DAY_MS),
        false,
    ));
    out.push((
        kv::spend_key(Scope::Team, "t", today - LONGEST_PERIOD_MS - DAY_MS),
        true,
    ));
    out
}

/// Fills `store` with [`counters`] (moved by `increment`, as the edge moves them)
/// and records, sweeps it through `sink` and checks what is left.
async fn sweeps_past_counters_only(store: Kv, sink: Arc<dyn Sink>) {
    let now = now_ms();
    let counters = counters(now);
    for (key, _) in &counters {
        store.increment(key, 7).await.unwrap();
    }
    let records = ["org:org_1", "key:abc", "usage:0123456789abcdef"];
    for key in records {
        store.set(key, b"{}").await.unwrap();
    }
    // Cache entries as the edge writes them: one expired, one fresh, and a value
    // the sweep cannot read (left alone).
    let body = vec![b'x'; 64 * 1024];
    let entry = |expires_at_ms| {
        policy::cache::Entry {
            expires_at_ms,
            status: 200,
            content_type: b"application/json",
            body: &body,
        }
        .encode()
    };
    let expired = policy::cache::cache_key("org_1", "00aa");
    store.set(&expired, &entry(now - 1)).await.unwrap();
    let kept_entries = [
        (
            policy::cache::cache_key("org_1", "11bb"),
            entry(now + 60_000),
        ),
        (
            policy::cache::cache_key("org_1", "22cc"),
            b"unreadable".to_vec(),
        ),
    ];
    for (key, value) in &kept_entries {
        store.set(key, value).await.unwrap();
    }

    let removed = sweep::sweep_once(sink.as_ref(), now).await.unwrap();
    let past = counters.iter().filter(|(_, past)| *past).count();
    assert_eq!(removed, past + 1);
    let mut left = store.list_keys().await.unwrap();
    left.sort();
    let mut expected: Vec<String> = counters
        .iter()
        .filter(|(_, past)| !past)
        .map(|(k, _)| k.clone())
        .chain(records.iter().map(|k| k.to_string()))
        .chain(kept_entries.iter().map(|(k, _)| k.clone()))
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    // Current counters keep their values.
    for (key, _) in counters.iter().filter(|(_, past)| !past) {
        assert_eq!(store.counter(key).await.unwrap(), 7, "{key}");
    }
    // A second sweep finds nothing more.
    assert_eq!(sweep::sweep_once(sink.as_ref(), now).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_sink_sweeps_past_windows_and_periods_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge-kv.db");
    let store = Kv::connect(&KvConfig::Sqlite(path.clone())).await.unwrap();
    sweeps_past_counters_only(store, SinkTarget::Sqlite(path).open()).await;
}

#[tokio::test]
async fn redis_sink_sweeps_past_windows_and_periods_only() {
    let redis = RedisServer::start();
    let store = Kv::connect(&redis.kv_config()).await.unwrap();
    sweeps_past_counters_only(store, SinkTarget::Redis(redis.url()).open()).await;
}

#[tokio::test]
async fn the_admin_service_sweeps_its_sinks_from_the_start() {
    let redis = RedisServer::start();
    let now = now_ms();
    let gone = kv::counter_key(
        Scope::Org,
        "o",
        Metric::Rpm,
        (now - GRACE_MS) / MINUTE_MS - 1,
    );
    let current = kv::counter_key(Scope::Org, "o", Metric::Rpm, now / MINUTE_MS);
    // As Spin's Redis store leaves them: plain INCRBY, no expiry.
    for key in [&gone, &current] {
        assert_eq!(redis.command(&format!("INCRBY {key} 3")), ":3");
    }
    let dir = tempfile::tempdir().unwrap();
    let started = admin_service::start(&admin_service::Config {
        database_url: test_postgres::database_url(dir.path()),
        edge_kv: vec![SinkTarget::Redis(redis.url())],
        admin_token: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.command(&format!("EXISTS {gone}")) != ":0" {
        assert!(Instant::now() < deadline, "past window not swept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(redis.command(&format!("GET {current}")), "$1");
    started.pushers.iter().for_each(|t| t.abort());
}
