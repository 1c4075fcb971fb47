//! Admin-service figures, printed, not asserted: key create → visible in the edge
//! KV sink (p50/p99 over 200 keys), and compile + push of an org with 100k keys.
//! Run: `cargo bench -p admin-service --bench admin`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use admin_service::sync::compile::{OutboxEntry, compile};
use admin_service::sync::sinks::{Sink, SpinSqliteSink};
use common::TestServer;
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;

const KEYS: usize = 200;
const BIG_ORG_KEYS: i64 = 100_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        key_create_to_edge().await;
        compile_and_push_big_org().await;
    });
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// A read-only connection to a sink file, kept open so polling measures the push,
/// not connection setup.
async fn sink_reader(path: &Path) -> sqlx::SqlitePool {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    sqlx::SqlitePool::connect_with(opts).await.unwrap()
}

async fn key_create_to_edge() {
    let s = TestServer::start().await;
    let org = s.org("Bench").await;
    s.synced().await;
    let reader = sink_reader(&s.sink_paths[0]).await;
    let mut lat = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let t0 = Instant::now();
        let k = s.key(&org, json!({"name": format!("k{i}"), "allowed_models": ["gpt-4o"], "ip_allow": ["10.0.0.0/8"]})).await;
        let kv_key = format!(
            "key:{}",
            policy::kv::key_hash_hex(k["key"].as_str().unwrap())
        );
        loop {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM spin_key_value WHERE store = 'default' AND key = ?",
            )
            .bind(&kv_key)
            .fetch_optional(&reader)
            .await
            .unwrap();
            if found.is_some() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "key {i} never reached the sink"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t0.elapsed());
    }
    lat.sort();
    println!(
        "key create -> visible in edge KV ({KEYS} keys, sequential, HTTP + commit + compile + push + poll): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
}

async fn compile_and_push_big_org() {
    let s = TestServer::start().await;
    let org = s.org("Big").await;
    let team = s
        .post(
            &format!("/api/organizations/{org}/teams"),
            json!({"name": "t", "allowed_models": ["gpt-4o", "gpt-4o-mini"]}),
        )
        .await
        .ok();
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"rate_limiting": {"enabled": true, "rpm": 1000}}}),
    )
    .await
    .ok();
    s.synced().await;

    // 100k keys as the API stores them, inserted in one statement: creating them over
    // HTTP would measure the API 100k times, not the compile.
    let db = s.db().await;
    let t = Instant::now();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO virtual_keys (id, org_id, team_id, name, key_prefix, key_hash, allowed_models, ip_allow, ip_deny, limits, status, created_at_ms)
         SELECT 'key_bench_' || i, ?, CASE WHEN i % 2 = 0 THEN ? END, 'bench ' || i, 'sk-tg-000000', printf('%064x', i),
                '[\"gpt-4o\"]', '[\"10.0.0.0/8\",\"2001:db8::/32\"]', '[\"10.9.0.0/16\"]', '{\"rpm\":60}', 'active', 0
         FROM n",
    )
    .bind(BIG_ORG_KEYS)
    .bind(&org)
    .bind(team["id"].as_str().unwrap())
    .execute(&db)
    .await
    .unwrap();
    println!(
        "fixture: {BIG_ORG_KEYS} keys inserted in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The compiler alone, then one sink alone, on a fresh file.
    let entries = [OutboxEntry {
        id: 0,
        kind: "org".into(),
        entity_id: org.clone(),
    }];
    let t = Instant::now();
    let vault = common::test_vault();
    let writes = compile(&db, &vault, &entries).await.unwrap();
    let compile_s = t.elapsed().as_secs_f64();
    let bytes: usize = writes
        .iter()
        .map(|w| match w {
            admin_service::sync::compile::KvWrite::Put { value, .. } => value.len(),
            admin_service::sync::compile::KvWrite::Delete { .. }
            | admin_service::sync::compile::KvWrite::AddToCounter { .. } => 0,
        })
        .sum();
    let fresh = SpinSqliteSink::new(s.dir.path().join("fresh.db"));
    let t = Instant::now();
    fresh.apply(&writes).await.unwrap();
    let push_s = t.elapsed().as_secs_f64();
    println!(
        "compile org with {BIG_ORG_KEYS} keys: {compile_s:.2} s ({} records, {:.1} MB); push to a Spin SQLite sink: {push_s:.2} s",
        writes.len(),
        bytes as f64 / 1e6
    );

    // End to end: an org config change recompiles every key and the pusher delivers it.
    let t = Instant::now();
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"rate_limiting": {"rpm": 2000}}}),
    )
    .await
    .ok();
    let patched = t.elapsed();
    let start = Instant::now();
    loop {
        let st = s.get("/api/sync/status").await.ok();
        if st["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["pending"] == 0)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "push never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "org config PATCH -> all {BIG_ORG_KEYS} keys recompiled and acknowledged by the sink: {:.2} s (PATCH itself {:.1} ms)",
        t.elapsed().as_secs_f64(),
        patched.as_secs_f64() * 1e3
    );
    db.close().await;
}
