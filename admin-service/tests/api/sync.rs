//! Compile and push: the outbox reaches every sink in order, a sink that was down
//! catches up, and a restart with a sink down loses nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TestServer, kv_get};
use policy::{KeyRecord, OrgRecord};

/// Polls the sync status until `done` holds for it (10 s at most).
async fn wait_status(s: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let st = s.get("/api/sync/status").await.ok();
        if done(&st) {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: {st}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn status_shows_each_sinks_lag_and_a_down_sink_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up.db");
    let down_dir = dir.path().join("not-mounted-yet");
    let down = down_dir.join("kv.db");
    let s = TestServer::start_in(dir, vec![up.clone(), down.clone()]).await;
    let org = s.org("Lag").await;
    let key = s.key(&org, json!({"name": "k"})).await;
    let kv_key = format!(
        "key:{}",
        policy::kv::key_hash_hex(key["key"].as_str().unwrap())
    );

    let st = wait_status(
        &s,
        "the up sink acknowledges, the down one reports its error",
        |st| st["sinks"][0]["pending"] == 0 && st["sinks"][1]["last_error"].is_string(),
    )
    .await;
    let head = st["outbox_head"].as_i64().unwrap();
    assert!(head > 0);
    assert_eq!(st["sinks"][0]["name"], format!("sqlite:{}", up.display()));
    assert_eq!(st["sinks"][0]["position"], head);
    assert!(st["sinks"][1]["pending"].as_i64().unwrap() > 0, "{st}");
    assert!(st["sinks"][1]["last_success_at"].is_null());
    assert!(kv_get(&up, &kv_key).await.is_some());

    // The sink comes back: retries deliver everything it missed, and clear the error.
    std::fs::create_dir_all(&down_dir).unwrap();
    s.synced().await;
    let st = s.get("/api/sync/status").await.ok();
    assert!(
        st["sinks"][1]["last_error"].is_null() && st["sinks"][1]["last_success_at"].is_string(),
        "{st}"
    );
    assert_eq!(kv_get(&down, &kv_key).await, kv_get(&up, &kv_key).await);
    assert!(
        kv_get(&down, &policy::kv::org_key("org_internal"))
            .await
            .is_some(),
        "the install-time record reached the late sink"
    );

    let (_, owner) = s.user(&org, "owner").await;
    let r = s.call("GET", "/api/sync/status", &owner, None).await;
    assert_eq!(r.status, 403, "sync status is for platform admins");
}

#[tokio::test]
async fn a_restart_with_a_sink_down_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink_dir = dir.path().join("edge");
    let sink = sink_dir.join("kv.db");
    let s = TestServer::start_in(dir, vec![sink.clone()]).await;
    let org = s.org("Durable").await;
    let cfg = format!("/api/organizations/{org}/config");
    s.patch(
        &cfg,
        json!({"config": {"rate_limiting": {"enabled": true, "rpm": 1}}}),
    )
    .await
    .ok();
    let k1 = s.key(&org, json!({"name": "first"})).await;
    let revoked = s.key(&org, json!({"name": "gone"})).await;
    s.delete(&format!("/api/keys/{}", revoked["id"].as_str().unwrap()))
        .await
        .ok();
    let pending = s.get("/api/sync/status").await.ok()["sinks"][0]["pending"]
        .as_i64()
        .unwrap();
    assert!(pending >= 4, "nothing can have been pushed: {pending}");

    // Restart, still down; more changes; restart again, and only then the sink returns.
    let s = s.restart(vec![sink.clone()]).await;
    s.patch(&cfg, json!({"config": {"rate_limiting": {"rpm": 2}}}))
        .await
        .ok();
    let k2 = s.key(&org, json!({"name": "second"})).await;
    let s = s.restart(vec![sink.clone()]).await;
    std::fs::create_dir_all(&sink_dir).unwrap();
    s.synced().await;

    let rec: OrgRecord = s
        .record(&policy::kv::org_key(&org))
        .await
        .expect("org pushed after the restarts");
    assert_eq!(rec.limits.rpm, Some(2), "the latest config wins");
    for k in [&k1, &k2] {
        let secret = k["key"].as_str().unwrap();
        assert_eq!(
            s.edge(secret, None, None).await,
            Ok(()),
            "{} missing after restart",
            k["name"]
        );
    }
    let gone: KeyRecord = s
        .record(&format!(
            "key:{}",
            policy::kv::key_hash_hex(revoked["key"].as_str().unwrap())
        ))
        .await
        .unwrap();
    assert_eq!(gone.status, policy::KeyStatus::Revoked);
}

#[tokio::test]
async fn updates_reach_the_sink_in_commit_order() {
    let s = TestServer::start().await;
    let org = s.org("Ordered").await;
    let cfg = format!("/api/organizations/{org}/config");
    // Interleave waits so several batches, not one, carry the sequence.
    for rpm in 1..=12u64 {
        s.patch(
            &cfg,
            json!({"config": {"rate_limiting": {"enabled": true, "rpm": rpm}}}),
        )
        .await
        .ok();
        if rpm % 4 == 0 {
            s.synced().await;
            let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
            assert_eq!(rec.limits.rpm, Some(rpm));
        }
    }
    // A deletion after a write leaves no record, a write after a deletion leaves one.
    let team = s
        .post(
            &format!("/api/organizations/{org}/teams"),
            json!({"name": "t"}),
        )
        .await
        .ok();
    let tid = team["id"].as_str().unwrap();
    s.delete(&format!("/api/teams/{tid}")).await;
    s.post(
        &format!("/api/organizations/{org}/teams"),
        json!({"name": "t"}),
    )
    .await
    .ok();
    s.synced().await;
    assert!(s.kv(0, &policy::kv::team_key(tid)).await.is_none());
}
