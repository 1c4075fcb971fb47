//! Provider credentials at rest (issue 16), end to end: the real admin service
//! (real SQLite) sealing credentials under a master key and pushing them sealed
//! under an edge key into a SQLite file and Redis, the real component under the
//! real host opening them for the call to the mock provider. Byte searches of
//! every store, wrong and rotated keys, and a blob moved to another org.

use std::path::Path;

use admin_service::sync::sinks::SinkTarget;
use admin_service::vault::KeySource;
use edge_host::{EdgeConfig, EdgeServer, KvConfig};
use policy::OrgRecord;
use policy::sealed::KeyRing;
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::fixtures::{EDGE_KEYS, PROVIDER_KEY};
use tollgate_e2e::harness::{self, RedisServer};

const MODELS: &[&str] = &["gpt-4o"];
const NEW_EDGE_KEY: &str = "e-new:bmV3LWVkZ2Uta2V5LWZvci10aGUtcm90YXRpb24tMDA=";
const OLD_MASTER: &str = "m-old:b2xkLW1hc3Rlci1rZXktb2YtdGhlLXJvdGF0aW9uLTA=";
const NEW_MASTER: &str = "m-new:bmV3LW1hc3Rlci1rZXktb2YtdGhlLXJvdGF0aW9uLTA=";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The bytes of a file and its SQLite WAL (absent files read as empty).
fn file_and_wal(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(&wal).unwrap_or_default());
    bytes
}

/// An edge on `kv` opening credentials with `keys`.
async fn edge_with(cp: &ControlPlane, kv: KvConfig, keys: &str) -> EdgeServer {
    EdgeServer::start(EdgeConfig {
        kv,
        edge_keys: KeyRing::parse(keys).expect("edge keys"),
        ..harness::config(&cp.upstream)
    })
    .await
    .expect("edge starts")
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].as_str().unwrap_or("").into())
}

/// Every request the provider saw carried the org's credential, as a bearer.
fn all_authorized(cp: &ControlPlane, expected: usize) {
    let seen = cp.upstream.received();
    assert_eq!(seen.len(), expected);
    for r in &seen {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {PROVIDER_KEY}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_holds_a_provider_key_in_plaintext_after_a_full_flow() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let kv_path = dir.path().join("edge-kv.db");
    let sinks = vec![
        SinkTarget::Sqlite(kv_path.clone()),
        SinkTarget::Redis(redis.url()),
    ];
    let cp = ControlPlane::start_with(dir, sinks, KvConfig::Sqlite(kv_path.clone())).await;
    let on_redis = edge_with(&cp, redis.kv_config(), EDGE_KEYS).await;
    let org = cp.org_with_provider("Vaulted", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    assert_eq!(
        cp.chat_at(&on_redis.url(), &key, "gpt-4o").await.status(),
        200
    );
    // Both edges sent the real credential.
    all_authorized(&cp, 2);

    let admin_db = cp.db_bytes();
    assert!(contains(&admin_db, &org), "searched the right database");
    assert!(!contains(&admin_db, PROVIDER_KEY), "admin DB holds the key");
    let edge_kv = file_and_wal(&kv_path);
    assert!(contains(&edge_kv, &org), "searched the right KV file");
    assert!(
        !contains(&edge_kv, PROVIDER_KEY),
        "edge SQLite holds the key"
    );
    let dump = cp.dir().join("redis.rdb");
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "--rdb"])
        .arg(&dump)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
    let rdb = std::fs::read(&dump).unwrap();
    assert!(contains(&rdb, &org), "searched the right Redis");
    assert!(!contains(&rdb, PROVIDER_KEY), "Redis holds the key");
    // Nor is it a record's field anyone could read back unsealed.
    let record = org_record(&cp, &org).await;
    let sealed = record.providers[0].api_key.as_deref().unwrap();
    assert_eq!(policy::sealed::key_id(sealed), Some("e-e2e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_edge_key_fails_closed_and_the_provider_sees_nothing() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Locked", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    let kv = KvConfig::Sqlite(cp.dir().join("edge-kv.db"));
    // Same key id, other bytes; another id; none at all.
    for keys in [
        "e-e2e:d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3I=",
        NEW_EDGE_KEY,
        "",
    ] {
        let edge = edge_with(&cp, kv.clone(), keys).await;
        let (status, code) = error_code(cp.chat_at(&edge.url(), &key, "gpt-4o").await).await;
        assert_eq!(
            (status, code.as_str()),
            (503, "policy_unavailable"),
            "{keys}"
        );
    }
    assert!(cp.upstream.received().is_empty(), "a request went out");
    // The right key on the same records works.
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    all_authorized(&cp, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_copied_into_another_orgs_record_does_not_open() {
    let cp = ControlPlane::start().await;
    let victim = cp.org_with_provider("Victim", MODELS).await;
    let thief = cp.org_with_provider("Thief", MODELS).await;
    let (_, thief_key) = cp.key(&thief, json!({})).await;
    cp.synced().await;
    let stolen = org_record(&cp, &victim).await.providers[0].api_key.clone();
    let mut forged = org_record(&cp, &thief).await;
    forged.providers[0].api_key = stolen;
    cp.edge
        .kv()
        .set_many(&[policy_entry(&forged)])
        .await
        .unwrap();
    let (status, code) = error_code(cp.chat(&thief_key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (503, "policy_unavailable"));
    assert!(cp.upstream.received().is_empty());

    // Nor through the admin API: a sealed value is refused as a credential.
    let (status, body) = cp
        .api_as(
            tollgate_e2e::admin::ADMIN_TOKEN,
            Method::PATCH,
            &format!("/api/organizations/{thief}/config"),
            Some(json!({"config": {"providers": [{
                "name": "mock", "base_url": cp.upstream.base_url(),
                "api_key": forged.providers[0].api_key, "models": MODELS,
            }]}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "config.providers[0].api_key");
}

/// The org's record as the edge reads it.
async fn org_record(cp: &ControlPlane, org: &str) -> OrgRecord {
    let bytes = cp
        .edge
        .kv()
        .get(&policy::kv::org_key(org))
        .await
        .unwrap()
        .expect("org record pushed");
    policy::records::decode(&bytes).unwrap()
}

fn policy_entry(org: &OrgRecord) -> (String, Vec<u8>) {
    (
        policy::kv::org_key(&org.org_id),
        policy::records::encode(org),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_master_key_credentials_are_refused_and_the_rest_works() {
    let dir = tempfile::tempdir().unwrap();
    let kv_path = dir.path().join("edge-kv.db");
    let cp = ControlPlane::start_with_keys(
        dir,
        vec![SinkTarget::Sqlite(kv_path.clone())],
        KvConfig::Sqlite(kv_path),
        KeySource::None,
        KeySource::Inline(EDGE_KEYS.to_string().into()),
    )
    .await;
    let org = cp
        .admin(
            Method::POST,
            "/api/organizations",
            Some(json!({"name": "Keyless", "currency": "USD"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/organizations/{org}/config");
    let provider = json!({"name": "mock", "base_url": cp.upstream.base_url(), "models": MODELS});
    let mut with_key = provider.clone();
    with_key["api_key"] = json!(PROVIDER_KEY);
    let (status, body) = cp
        .api_as(
            tollgate_e2e::admin::ADMIN_TOKEN,
            Method::PATCH,
            &path,
            Some(json!({"config": {"providers": [with_key]}})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "master_key_missing");
    assert_eq!(body["error"]["field"], "config.providers[0].api_key");
    let admin_db = cp.db_bytes();
    assert!(!contains(&admin_db, PROVIDER_KEY), "stored anyway");
    // A provider without a credential is stored, and served.
    cp.admin(
        Method::PATCH,
        &path,
        Some(json!({"config": {"providers": [provider]}})),
    )
    .await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    assert_eq!(cp.upstream.received()[0].authorization, None);
}

/// Writes `text` to the key file `path`.
fn write_keys(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_rewraps_every_data_key_and_every_org_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let kv_path = dir.path().join("edge-kv.db");
    let master_file = dir.path().join("master.key");
    let edge_file = dir.path().join("edge.key");
    write_keys(&master_file, OLD_MASTER);
    write_keys(&edge_file, EDGE_KEYS);
    let cp = ControlPlane::start_with_keys(
        dir,
        vec![SinkTarget::Sqlite(kv_path.clone())],
        KvConfig::Sqlite(kv_path),
        KeySource::File(master_file.clone()),
        KeySource::File(edge_file),
    )
    .await;
    let mut keys = Vec::new();
    for name in ["Rot A", "Rot B", "Rot C"] {
        let org = cp.org_with_provider(name, MODELS).await;
        keys.push(cp.key(&org, json!({})).await.1);
    }
    let status = cp.admin(Method::GET, "/api/platform/keys", None).await;
    assert_eq!(status["data_keys_by_master_key"], json!({"m-old": 3}));
    assert!(!status.to_string().contains("b2xk"), "key bytes shown");

    // New key first, old still there: every data key moves to the new one.
    write_keys(&master_file, &format!("{NEW_MASTER},{OLD_MASTER}"));
    let rotated = cp
        .admin(Method::POST, "/api/platform/master-key/rotate", None)
        .await;
    assert_eq!(rotated["data_keys_by_master_key"], json!({"m-new": 3}));
    assert_eq!(rotated["master"]["current"], "m-new");
    // The old key retired: everything still opens, edits included.
    write_keys(&master_file, NEW_MASTER);
    cp.admin(Method::POST, "/api/platform/master-key/rotate", None)
        .await;
    // Re-sealing for the edge opens every data key with the new master key only.
    cp.admin(Method::POST, "/api/platform/edge-keys/rotate", None)
        .await;
    cp.synced().await;
    let sync = cp.admin(Method::GET, "/api/sync/status", None).await;
    assert_eq!(sync["sinks"][0]["last_error"], Value::Null, "{sync}");
    for key in &keys {
        assert_eq!(cp.chat(key, "gpt-4o").await.status(), 200);
    }
    all_authorized(&cp, 3);

    // A key that never wrapped them opens nothing: rotation refuses, changes nothing.
    write_keys(
        &master_file,
        "m-bad:YmFkLWJhZC1iYWQtYmFkLWJhZC1iYWQtYmFkLWJhZC0wMDA=",
    );
    let (status, body) = cp
        .api_as(
            tollgate_e2e::admin::ADMIN_TOKEN,
            Method::POST,
            "/api/platform/master-key/rotate",
            None,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    // The service keeps the ring that works: a re-seal still opens every data key.
    cp.admin(Method::POST, "/api/platform/edge-keys/rotate", None)
        .await;
    cp.synced().await;
    for key in &keys {
        assert_eq!(cp.chat(key, "gpt-4o").await.status(), 200);
    }
    all_authorized(&cp, 6);
    write_keys(&master_file, NEW_MASTER);
    let status = cp
        .admin(Method::POST, "/api/platform/master-key/rotate", None)
        .await;
    assert_eq!(status["data_keys_by_master_key"], json!({"m-new": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_key_rotation_reseals_every_record_and_both_keys_open_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let kv_path = dir.path().join("edge-kv.db");
    let edge_file = dir.path().join("edge.key");
    write_keys(&edge_file, EDGE_KEYS);
    let cp = ControlPlane::start_with_keys(
        dir,
        vec![SinkTarget::Sqlite(kv_path.clone())],
        KvConfig::Sqlite(kv_path.clone()),
        KeySource::Inline(tollgate_e2e::fixtures::MASTER_KEY.to_string().into()),
        KeySource::File(edge_file.clone()),
    )
    .await;
    let org = cp.org_with_provider("Edge rot", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    // Step 1: edges learn the new key beside the old one.
    let both = edge_with(
        &cp,
        KvConfig::Sqlite(kv_path.clone()),
        &format!("{NEW_EDGE_KEY},{EDGE_KEYS}"),
    )
    .await;
    assert_eq!(cp.chat_at(&both.url(), &key, "gpt-4o").await.status(), 200);
    // Step 2: the admin service seals with it and re-pushes.
    write_keys(&edge_file, &format!("{NEW_EDGE_KEY},{EDGE_KEYS}"));
    let rotated = cp
        .admin(Method::POST, "/api/platform/edge-keys/rotate", None)
        .await;
    assert_eq!(rotated["records_sealed_under"], "e-new");
    cp.synced().await;
    let record = org_record(&cp, &org).await;
    assert_eq!(
        policy::sealed::key_id(record.providers[0].api_key.as_deref().unwrap()),
        Some("e-new")
    );
    assert_eq!(cp.chat_at(&both.url(), &key, "gpt-4o").await.status(), 200);
    // An edge still on the old key alone no longer opens the re-sealed record.
    let (status, code) = error_code(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (503, "policy_unavailable"));
    // Step 3: edges drop the old key.
    let new_only = edge_with(&cp, KvConfig::Sqlite(kv_path), NEW_EDGE_KEY).await;
    assert_eq!(
        cp.chat_at(&new_only.url(), &key, "gpt-4o").await.status(),
        200
    );
    all_authorized(&cp, 3);
}
