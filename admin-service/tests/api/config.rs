//! Org config as in the Prism doc: retrieve, merge-patch update, replace;
//! provider credentials are write-only.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;

use crate::common::{ADMIN, TestServer};
use admin_service::api::routes::endpoints;
use policy::{BudgetPeriod, OrgRecord};

const SECRET: &str = "sk-upstream-credential-7f3a9c";

#[tokio::test]
async fn retrieve_and_update_as_in_the_seed_and_partial_updates_merge() {
    let s = TestServer::start().await;
    let org = s.org("Prism").await;
    let path = format!("/api/organizations/{org}/config");
    let empty = s.get(&path).await.ok();
    assert_eq!(empty["org_id"], org.as_str());
    assert_eq!(empty["config"]["rate_limiting"]["enabled"], true);

    // client.org_configs.update(org_id=..., config={...}) from the seed.
    let r = s
        .patch(
            &path,
            json!({"config": {"rate_limiting": {"enabled": true, "rpm": 1000}, "budgets": {"limit": 500.00, "period": "monthly"}}}),
        )
        .await
        .ok();
    assert_eq!(
        r["config"]["rate_limiting"],
        json!({"enabled": true, "rpm": 1000})
    );
    assert_eq!(r["config"]["budgets"]["limit"], "500.00");
    assert_eq!(r["config"]["budgets"]["period"], "monthly");

    // A partial update touches only what it names.
    s.patch(&path, json!({"config": {"rate_limiting": {"tpm": 50000, "rph": 10000, "rpd": 100000, "tpd": 9000000}}})).await.ok();
    s.patch(&path, json!({"config": {"caching": {"enabled": true, "ttl_seconds": 60}, "audit": {"store_content": false}}})).await.ok();
    let c = s.get(&path).await.ok()["config"].clone();
    assert_eq!(
        c["rate_limiting"],
        json!({"enabled": true, "rpm": 1000, "tpm": 50000, "rph": 10000, "rpd": 100000, "tpd": 9000000})
    );
    assert_eq!(c["budgets"]["limit"], "500.00", "merge kept the budget");
    assert_eq!(c["caching"], json!({"enabled": true, "ttl_seconds": 60}));
    assert_eq!(c["audit"]["store_content"], false);

    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!(
        (
            rec.limits.rpm,
            rec.limits.tpm,
            rec.limits.rph,
            rec.limits.rpd,
            rec.limits.tpd
        ),
        (
            Some(1000),
            Some(50000),
            Some(10000),
            Some(100000),
            Some(9000000)
        )
    );
    let b = rec.budget.expect("budget compiled");
    assert_eq!(
        (b.limit_micros, b.period),
        (500_000_000, BudgetPeriod::Monthly)
    );

    // null deletes a section (RFC 7386); disabled limits are not enforced at the edge.
    s.patch(
        &path,
        json!({"config": {"budgets": null, "rate_limiting": {"enabled": false}}}),
    )
    .await
    .ok();
    let c = s.get(&path).await.ok()["config"].clone();
    assert!(c.get("budgets").is_none(), "{c}");
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!((rec.budget, rec.limits), (None, policy::Limits::default()));
    assert_eq!(rec.max_in_flight, None, "no cap set: the edge's default");

    // The org's concurrency cap reaches its record, where the edge host reads it.
    s.patch(&path, json!({"config": {"max_in_flight": 12}}))
        .await
        .ok();
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!(rec.max_in_flight, Some(12));

    // PUT replaces the whole document.
    let r = s
        .put(
            &path,
            json!({"config": {"rate_limiting": {"enabled": true, "rpd": 5}}}),
        )
        .await
        .ok();
    assert_eq!(
        r["config"]["rate_limiting"],
        json!({"enabled": true, "rpd": 5})
    );
    assert_eq!(
        r["config"]["caching"]["enabled"], false,
        "PUT dropped what it did not name"
    );
}

#[tokio::test]
async fn asset_access_models_route_groups_and_access_groups() {
    let s = TestServer::start().await;
    let org = s.org("Assets").await;
    s.post(
        "/api/route-groups",
        json!({"name": "fast", "models": ["gpt-4o-mini"]}),
    )
    .await
    .ok();
    let path = format!("/api/organizations/{org}/config");
    // An access group is valid before any model carries it.
    let r = s
        .patch(&path, json!({"config": {"access": {"models": ["gpt-4o"], "route_groups": ["fast"], "access_groups": ["beta"]}}}))
        .await
        .ok();
    assert_eq!(
        r["config"]["access"],
        json!({"models": ["gpt-4o"], "route_groups": ["fast"], "access_groups": ["beta"]})
    );
    let before = s.snapshot().await;
    s.patch(
        &path,
        json!({"config": {"access": {"route_groups": ["fast", "missing"]}}}),
    )
    .await
    .err(422, "config.access.route_groups[1]");
    s.patch(
        &path,
        json!({"config": {"access": {"access_groups": ["Bad Label"]}}}),
    )
    .await
    .err(422, "config.access.access_groups[0]");
    s.patch(&path, json!({"config": {"access": {"models": [""]}}}))
        .await
        .err(422, "config.access.models[0]");
    assert_eq!(s.snapshot().await, before);
    // A route group an org grants cannot be deleted from under it.
    assert_eq!(s.delete("/api/route-groups/fast").await.status, 409);
}

#[tokio::test]
async fn bad_config_input_is_422_naming_the_field_and_changes_nothing() {
    let s = TestServer::start().await;
    let org = s.org("Strict").await;
    let path = format!("/api/organizations/{org}/config");
    s.patch(
        &path,
        json!({"config": {"rate_limiting": {"enabled": true, "rpm": 10}}}),
    )
    .await
    .ok();
    let before = s.snapshot().await;
    let r = s
        .raw("PATCH", &path, Some(ADMIN), Some("{\"config\": {"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let cases = [
        (json!({}), "config"),
        (json!({"config": 5}), "config"),
        (json!({"config": {}, "extra": 1}), "extra"),
        (json!({"config": {"bogus": 1}}), "config.bogus"),
        (
            json!({"config": {"rate_limiting": {"rpm": "fast"}}}),
            "config.rate_limiting.rpm",
        ),
        (
            json!({"config": {"rate_limiting": {"rpm": -1}}}),
            "config.rate_limiting.rpm",
        ),
        (
            json!({"config": {"rate_limiting": {"rpx": 1}}}),
            "config.rate_limiting.rpx",
        ),
        (
            json!({"config": {"rate_limiting": {"enabled": "yes"}}}),
            "config.rate_limiting.enabled",
        ),
        (
            json!({"config": {"budgets": {"limit": 5, "period": "yearly"}}}),
            "config.budgets.period",
        ),
        (
            json!({"config": {"budgets": {"limit": -5, "period": "daily"}}}),
            "config.budgets.limit",
        ),
        (
            json!({"config": {"budgets": {"period": "daily"}}}),
            "config.budgets.limit",
        ),
        (
            json!({"config": {"budgets": {"limit": 5, "period": "daily", "utc_offset_minutes": 5000}}}),
            "config.budgets.utc_offset_minutes",
        ),
        (
            json!({"config": {"providers": [{"name": "p", "base_url": "ftp://x"}]}}),
            "config.providers[0].base_url",
        ),
        (
            json!({"config": {"providers": [{"name": "p", "base_url": "https://a"}, {"name": "p", "base_url": "https://b"}]}}),
            "config.providers[1].name",
        ),
        (
            json!({"config": {"providers": [{"base_url": "https://a"}]}}),
            "config.providers[0].name",
        ),
        (
            json!({"config": {"routing": {"provider_order": ["ghost"]}}}),
            "config.routing.provider_order[0]",
        ),
        (
            json!({"config": {"routing": {"strategy": "random"}}}),
            "config.routing.strategy",
        ),
        (
            json!({"config": {"client_ip_header": "x forwarded"}}),
            "config.client_ip_header",
        ),
        (
            json!({"config": {"audit": {"store_content": 1}}}),
            "config.audit.store_content",
        ),
        // Bodies are kept for a stated time or not at all.
        (
            json!({"config": {"audit": {"store_content": true}}}),
            "config.audit.retention_days",
        ),
        (
            json!({"config": {"audit": {"store_content": true, "retention_days": 0}}}),
            "config.audit.retention_days",
        ),
        (
            json!({"config": {"audit": {"store_content": true, "retention_days": 3651}}}),
            "config.audit.retention_days",
        ),
        (
            json!({"config": {"max_in_flight": 0}}),
            "config.max_in_flight",
        ),
        (
            json!({"config": {"max_in_flight": 10_001}}),
            "config.max_in_flight",
        ),
        (
            json!({"config": {"max_in_flight": -1}}),
            "config.max_in_flight",
        ),
    ];
    for (body, field) in cases {
        let r = s.patch(&path, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        r.err(422, field);
        let r = s.put(&path, body.clone()).await;
        assert_eq!(r.status, 422, "PUT {body}: {}", r.text);
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "a rejected config write changed something"
    );
    assert_eq!(
        s.get(&path).await.ok()["config"]["rate_limiting"]["rpm"],
        10
    );
}

/// A tracing writer collecting every log line of this process.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per process) a subscriber that records every event at every level.
fn capture_logs() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        // Our service and its database layer at every level; client-side noise is not ours.
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "admin_service=trace,sqlx=trace,axum=trace",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(sub).expect("no other global subscriber");
        logs
    })
    .clone()
}

/// Every GET endpoint with its placeholders filled from `ids`.
fn get_paths(ids: &[(&str, &str)]) -> Vec<String> {
    endpoints()
        .iter()
        .filter(|e| e.method == "get")
        .map(|e| {
            ids.iter()
                .fold(e.path.to_string(), |p, (k, v)| p.replace(k, v))
        })
        .collect()
}

#[tokio::test]
async fn provider_credentials_are_write_only_everywhere() {
    let logs = capture_logs();
    let s = TestServer::start().await;
    let org = s.org("Creds").await;
    let path = format!("/api/organizations/{org}/config");
    let provider = json!({"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": SECRET, "models": ["gpt-*"]});
    let r = s
        .patch(&path, json!({"config": {"providers": [provider]}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains(SECRET),
        "PATCH response echoes the credential"
    );
    assert_eq!(r.body["config"]["providers"][0]["api_key_set"], true);

    // Round-trip what a GET shows (api_key_set, no api_key): the credential is kept.
    let shown = s.get(&path).await.ok()["config"].clone();
    s.put(&path, json!({"config": shown})).await.expect(200);
    let r = s.patch(&path, json!({"config": {"providers": [{"name": "openai", "base_url": "https://api.openai.com/v2", "models": ["gpt-4o"]}]}})).await;
    assert_eq!(
        r.body["config"]["providers"][0]["api_key_set"], true,
        "{}",
        r.text
    );
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    let sealed = rec.providers[0].api_key.as_deref().expect("a credential");
    assert!(!sealed.contains(SECRET), "the record carries it sealed");
    assert_eq!(
        crate::common::open_edge_credential(&org, "openai", sealed),
        SECRET,
        "the edge needs the credential"
    );
    assert_eq!(rec.providers[0].base_url, "https://api.openai.com/v2");

    // No read anywhere returns it: every GET endpoint of the route table, filled in.
    let team = s
        .post(
            &format!("/api/organizations/{org}/teams"),
            json!({"name": "t"}),
        )
        .await
        .ok();
    let key = s.key(&org, json!({"name": "k"})).await;
    let agent = s.agent(&org, "a").await;
    s.post("/api/models", json!({"name": "gpt-4o"})).await.ok();
    let ids = [
        ("{id}", org.as_str()),
        ("{name}", "gpt-4o"),
        ("{user_id}", "none"),
    ];
    let mut paths = get_paths(&ids);
    paths.extend([
        format!("/api/teams/{}", team["id"].as_str().unwrap()),
        format!("/api/keys/{}", key["id"].as_str().unwrap()),
        format!("/api/agents/{agent}"),
    ]);
    let mut read = 0;
    for p in paths {
        let r = s.get(&p).await;
        assert!(
            !r.text.contains(SECRET),
            "GET {p} returned the provider credential"
        );
        read += usize::from(r.status == 200);
    }
    assert!(
        read >= 15,
        "too few GETs succeeded ({read}) for the check to mean anything"
    );

    // `"api_key": null` clears it.
    let r = s.patch(&path, json!({"config": {"providers": [{"name": "openai", "base_url": "https://x.example", "api_key": null}]}})).await.ok();
    assert_eq!(r["config"]["providers"][0]["api_key_set"], false);

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        text.contains("org config updated"),
        "logs were not captured"
    );
    assert!(
        !text.contains(SECRET),
        "a log line contains the provider credential"
    );
}

#[tokio::test]
async fn configured_limits_are_enforced_unless_explicitly_disabled() {
    let s = TestServer::start().await;
    let org = s.org("Limited").await;
    let path = format!("/api/organizations/{org}/config");
    // The request: limits without `enabled`.
    let r = s
        .patch(&path, json!({"config": {"rate_limiting": {"rpm": 2}}}))
        .await
        .ok();
    assert_eq!(
        r["config"]["rate_limiting"],
        json!({"enabled": true, "rpm": 2}),
        "the read shows the limit is on"
    );
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!(rec.limits.rpm, Some(2), "the edge enforces it");

    // Only an explicit false turns them off, and the read says so.
    let r = s
        .patch(
            &path,
            json!({"config": {"rate_limiting": {"enabled": false}}}),
        )
        .await
        .ok();
    assert_eq!(
        r["config"]["rate_limiting"],
        json!({"enabled": false, "rpm": 2})
    );
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!(rec.limits, policy::Limits::default());

    // PUT without the section: limits gone, nothing to enforce.
    s.put(&path, json!({"config": {"rate_limiting": {"tpm": 10}}}))
        .await
        .ok();
    s.synced().await;
    let rec: OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    assert_eq!((rec.limits.rpm, rec.limits.tpm), (None, Some(10)));
}

#[tokio::test]
async fn plaintext_credentials_of_an_older_database_are_sealed_on_start_and_kept() {
    use admin_service::sync::compile::{KvWrite, OutboxEntry, compile};
    use admin_service::vault::KeySource;
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("admin.db");
    let url = format!("sqlite://{}", db_path.display());
    // A database from before encryption: the credential stored as plaintext.
    let old = admin_service::start(&admin_service::Config {
        database_url: url.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let config = json!({"providers": [{"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": SECRET, "models": ["gpt-*"]}]});
    sqlx::query(
        "INSERT INTO organizations (id, name, slug, config, created_at_ms, updated_at_ms)
         VALUES ('org_legacy', 'Legacy', 'legacy', $1, 0, 0)",
    )
    .bind(config.to_string())
    .execute(&old.state.db)
    .await
    .unwrap();
    old.pushers.iter().for_each(|t| t.abort());
    old.state.db.close().await;
    let raw = |p: &std::path::Path| {
        let mut b = std::fs::read(p).unwrap_or_default();
        b.extend(std::fs::read(p.with_extension("db-wal")).unwrap_or_default());
        b
    };
    assert!(
        crate::common::contains(&raw(&db_path), SECRET),
        "the old state"
    );

    // Started with a master key: sealed at once, nothing lost.
    let new = admin_service::start(&admin_service::Config {
        database_url: url,
        master_key: KeySource::Inline(crate::common::MASTER_KEY.to_string().into()),
        edge_keys: KeySource::Inline(crate::common::EDGE_KEYS.to_string().into()),
        ..Default::default()
    })
    .await
    .unwrap();
    new.pushers.iter().for_each(|t| t.abort());
    let stored: String =
        sqlx::query_scalar("SELECT config FROM organizations WHERE id = 'org_legacy'")
            .fetch_one(&new.state.db)
            .await
            .unwrap();
    assert!(stored.contains("\"api_key\":\"tg1.org."), "{stored}");
    assert!(
        !crate::common::contains(&raw(&db_path), SECRET),
        "plaintext left in the admin DB or its WAL"
    );
    let entry = OutboxEntry {
        id: 0,
        kind: "org".into(),
        entity_id: "org_legacy".into(),
    };
    let writes = compile(&new.state.db, &new.state.vault, &[entry])
        .await
        .unwrap();
    let record = writes
        .iter()
        .find_map(|w| match w {
            KvWrite::Put { key, value } if key == "org:org_legacy" => {
                Some(policy::records::decode::<OrgRecord>(value).unwrap())
            }
            _ => None,
        })
        .expect("org record compiled");
    let sealed = record.providers[0].api_key.as_deref().unwrap();
    assert_eq!(
        crate::common::open_edge_credential("org_legacy", "openai", sealed),
        SECRET
    );
    // Queued for the edge on start, so the stores get the sealed record too.
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'org' AND entity_id = 'org_legacy'",
    )
    .fetch_one(&new.state.db)
    .await
    .unwrap();
    assert!(queued >= 1);
}

#[tokio::test]
async fn a_stored_credential_copied_into_another_org_does_not_open() {
    use admin_service::sync::compile::{KvWrite, OutboxEntry, compile};
    let s = TestServer::start().await;
    let provider = json!({"config": {"providers": [{"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": SECRET, "models": ["gpt-*"]}]}});
    let victim = s.org("Victim").await;
    let thief = s.org("Thief").await;
    for org in [&victim, &thief] {
        s.patch(
            &format!("/api/organizations/{org}/config"),
            provider.clone(),
        )
        .await
        .expect(200);
    }
    let db = s.db().await;
    let stored: String = sqlx::query_scalar("SELECT config FROM organizations WHERE id = $1")
        .bind(&victim)
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(!stored.contains(SECRET));
    // Someone with write access to the database moves the victim's blob over.
    sqlx::query("UPDATE organizations SET config = $1 WHERE id = $2")
        .bind(&stored)
        .bind(&thief)
        .execute(&db)
        .await
        .unwrap();
    let entry = OutboxEntry {
        id: 0,
        kind: "org".into(),
        entity_id: thief.clone(),
    };
    let vault = crate::common::test_vault();
    let writes = compile(&db, &vault, &[entry]).await.unwrap();
    let record = writes
        .iter()
        .find_map(|w| match w {
            KvWrite::Put { key, value } if *key == policy::kv::org_key(&thief) => {
                Some(policy::records::decode::<OrgRecord>(value).unwrap())
            }
            _ => None,
        })
        .expect("org record compiled");
    assert_eq!(
        record.providers[0].api_key.as_deref(),
        Some(admin_service::vault::UNUSABLE),
        "the thief's record must carry nothing the edge can open"
    );
}
