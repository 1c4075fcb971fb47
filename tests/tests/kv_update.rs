//! `KvBackend::update`, the batch behind `tollgate:gateway/counters`, on every
//! backend (memory, a SQLite file, a real `redis-server`): new values in order,
//! reads that create nothing, expiry of new counters, all or nothing when one
//! counter fails (also among concurrent updates SQLite commits together), exact
//! values past 2^53, and atomicity under concurrent batches.

use edge_host::kv::DEFAULT_STORE;
use edge_host::{Kv, KvConfig, MemoryKv};
use futures::future::join_all;
use tollgate_e2e::harness::RedisServer;

fn moves(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(k, d)| (k.to_string(), *d)).collect()
}

async fn update(
    kv: &Kv,
    deltas: &[(&str, i64)],
    values: &[(&str, &[u8])],
) -> Result<Vec<i64>, edge_host::KvError> {
    let values: Vec<(String, Vec<u8>)> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    kv.backend()
        .update(DEFAULT_STORE, &moves(deltas), &values)
        .await
}

/// What every backend must do.
async fn semantics(kv: &Kv) {
    // Increments, a read of a missing counter and a value, in one call.
    let moved = update(
        kv,
        &[("ctr:a", 3), ("ctr:b", 0), ("ctr:c", -2)],
        &[("usage:e1", b"{\"event\":1}")],
    )
    .await
    .unwrap();
    assert_eq!(moved, [3, 0, -2]);
    assert_eq!(
        kv.get("usage:e1").await.unwrap().as_deref(),
        Some(&b"{\"event\":1}"[..])
    );
    assert_eq!(
        kv.get("ctr:b").await.unwrap(),
        None,
        "a read creates nothing"
    );
    assert_eq!(
        update(kv, &[("ctr:a", 4), ("ctr:a", 0)], &[])
            .await
            .unwrap(),
        [7, 7],
        "a key moved twice in one call sees its own first move"
    );

    // A counter holding text fails the call, and nothing before or after it moved
    // or was written: not the increments, not the read, not the value.
    kv.set("ctr:text", b"hello").await.unwrap();
    for failing in [("ctr:text", 1), ("ctr:text", 0)] {
        let result = update(
            kv,
            &[("ctr:a", 10), failing, ("ctr:new", 5)],
            &[("usage:e2", b"x")],
        )
        .await;
        assert!(result.is_err(), "{failing:?} must fail: {result:?}");
        assert_eq!(kv.counter("ctr:a").await.unwrap(), 7, "{failing:?}");
        assert_eq!(kv.get("ctr:new").await.unwrap(), None, "{failing:?}");
        assert_eq!(kv.get("usage:e2").await.unwrap(), None, "{failing:?}");
    }

    // Overflow of a later counter puts back an earlier one, including one it created.
    let max = i64::MAX - 1;
    update(kv, &[("ctr:big", max)], &[]).await.unwrap();
    let result = update(kv, &[("ctr:a", 1), ("ctr:fresh", 9), ("ctr:big", 2)], &[]).await;
    assert!(result.is_err(), "overflow must fail: {result:?}");
    assert_eq!(kv.counter("ctr:a").await.unwrap(), 7);
    assert_eq!(kv.get("ctr:fresh").await.unwrap(), None);
    // Values far past 2^53 come back exact.
    assert_eq!(
        update(kv, &[("ctr:big", 1), ("ctr:big", 0)], &[])
            .await
            .unwrap(),
        [i64::MAX, i64::MAX]
    );
    assert_eq!(update(kv, &[], &[]).await.unwrap(), Vec::<i64>::new());

    // More counters than one statement reads (SQLite reads 16 at a time), moved
    // and then only read, one key twice across the boundary.
    let names: Vec<String> = (0..40).map(|i| format!("ctr:many:{i}")).collect();
    let mut many: Vec<(&str, i64)> = names
        .iter()
        .zip(1..)
        .map(|(n, d)| (n.as_str(), d))
        .collect();
    many.push(("ctr:many:3", 100));
    let moved = update(kv, &many, &[]).await.unwrap();
    assert_eq!(moved[..40], (1..=40).collect::<Vec<i64>>()[..]);
    assert_eq!(
        moved[40], 104,
        "the second move of ctr:many:3 starts from its first"
    );
    let reads: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    let read = update(kv, &reads, &[]).await.unwrap();
    let mut expected: Vec<i64> = (1..=40).collect();
    expected[3] = 104;
    assert_eq!(read, expected);

    // Concurrent batches are atomic with each other and with single increments.
    let batches = (0..24).map(|_| async {
        for _ in 0..20 {
            update(kv, &[("ctr:x", 1), ("ctr:y", 2)], &[])
                .await
                .unwrap();
            kv.increment("ctr:x", 1).await.unwrap();
        }
    });
    join_all(batches).await;
    assert_eq!(kv.counter("ctr:x").await.unwrap(), 24 * 20 * 2);
    assert_eq!(kv.counter("ctr:y").await.unwrap(), 24 * 20 * 2);

    // Updates that fail beside ones that succeed (SQLite commits concurrent
    // updates together): only the failing ones leave no trace.
    let mixed = (0..32).map(|i| async move {
        let last = if i % 2 == 0 { "ctr:z" } else { "ctr:text" };
        let outcome = update(kv, &[("ctr:g", 1), (last, 1)], &[]).await;
        assert_eq!(outcome.is_ok(), i % 2 == 0, "update {i}: {outcome:?}");
    });
    join_all(mixed).await;
    assert_eq!(kv.counter("ctr:g").await.unwrap(), 16);
    assert_eq!(kv.counter("ctr:z").await.unwrap(), 16);
}

#[tokio::test]
async fn update_in_memory() {
    semantics(&Kv::new(MemoryKv::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let kv = Kv::connect(&KvConfig::Sqlite(path.clone())).await.unwrap();
    semantics(&kv).await;
    // Counters it creates expire like any other (the edge's side table).
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // A counter as Spin writes it (a SQLite integer) moves in a batch too.
    sqlx::query(
        "INSERT INTO spin_key_value (store, key, value) VALUES ('default', 'ctr:spin', 41)",
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(
        update(&kv, &[("ctr:spin", 1), ("ctr:a", 0)], &[])
            .await
            .unwrap(),
        [42, 7]
    );
    assert_eq!(kv.counter("ctr:spin").await.unwrap(), 42);
    let expiring: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tollgate_counter_expiry WHERE key IN ('ctr:a', 'ctr:x')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(expiring, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_on_redis() {
    let redis = RedisServer::start();
    let kv = Kv::connect(&redis.kv_config()).await.unwrap();
    semantics(&kv).await;
    // Spin's layout: counters as Redis integers, new ones with an expiry, the
    // value written as given.
    assert_eq!(redis.command("INCRBY ctr:a 0"), ":7");
    let ttl = redis.command("TTL ctr:x");
    let secs: i64 = ttl.trim_start_matches(':').parse().unwrap();
    assert!(secs > 30 * 86_400, "ctr:x expires in a month: {ttl}");
    assert_eq!(redis.command("TTL usage:e1"), ":-1", "values do not expire");
}
