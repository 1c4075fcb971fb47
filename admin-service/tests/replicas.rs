//! Two `tollgate-admin` processes on one PostgreSQL database and one edge KV file,
//! the real edge serving from that file: 1,000 writes spread over both replicas,
//! one replica killed (SIGKILL) midway. Every write that was acknowledged is
//! stored, the sink converges on the database, and the usage the edge logged
//! during the run is counted exactly once.
//!
//! Runs with `TOLLGATE_TEST_DB=postgres` (SQLite holds one replica by design). Also:
//! a `DATABASE_URL` naming no backend stops the binary with an error naming it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use admin_service::store::db::{Backend, Db, connect};
use edge_host::{EdgeConfig, EdgeServer, KvConfig};
use policy::{KeyRecord, KeyStatus};
use serde_json::{Value, json};

use common::{ADMIN, EDGE_KEYS, MASTER_KEY, kv_get};

mod common;

const WRITES: usize = 1000;
const WORKERS: usize = 8;
/// Writes acknowledged before one replica is killed.
const KILL_AFTER: usize = 400;

/// One `tollgate-admin` process.
struct Replica {
    base: String,
    child: Child,
}

impl Replica {
    fn start(database_url: &str, kv: &Path) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate-admin"))
            .env_remove("TOLLGATE_SMTP_URL")
            .env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database_url)
            .env("TOLLGATE_EDGE_KV", format!("sqlite:{}", kv.display()))
            .env("TOLLGATE_ADMIN_TOKEN", ADMIN)
            .env("TOLLGATE_MASTER_KEY", MASTER_KEY)
            .env("TOLLGATE_EDGE_KEYS", EDGE_KEYS)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Replica {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    async fn ready(&self, http: &reqwest::Client) {
        let start = Instant::now();
        while http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "replica did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a write; `Some(body)` only for a 2xx answer.
async fn call(http: &reqwest::Client, method: &str, url: String, body: Value) -> Option<Value> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let res = http
        .request(method, url)
        .bearer_auth(ADMIN)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        panic!("a live replica refused a valid write: {status} {text}");
    }
    res.json().await.ok()
}

/// What the test knows a worker's acknowledged writes left in the database.
#[derive(Default)]
struct Acked {
    orgs: Vec<String>,
    /// Key id → (secret, expected name if certain, revoked).
    keys: HashMap<String, (String, Option<String>, bool)>,
}

/// The record under `key` in the edge KV file.
async fn kv_record(path: &Path, key: &str) -> Option<KeyRecord> {
    let bytes = kv_get(path, key).await?;
    Some(policy::records::decode(&bytes).expect("the edge decodes what admin pushed"))
}

async fn usage_rows(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_one_killed_lose_no_acknowledged_write_and_count_usage_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = test_postgres::database_url(dir.path());
    if Backend::of_url(&url) != Some(Backend::Postgres) {
        eprintln!("replicas need PostgreSQL: run with TOLLGATE_TEST_DB=postgres");
        return;
    }
    let kv: PathBuf = dir.path().join("edge-kv.db");
    let http = reqwest::Client::new();
    let replicas = [Replica::start(&url, &kv), Replica::start(&url, &kv)];
    for r in &replicas {
        r.ready(&http).await;
    }
    let bases: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.base.clone()).collect());
    let org = call(
        &http,
        "POST",
        format!("{}/api/organizations", bases[0]),
        json!({"name": "Replicated"}),
    )
    .await
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The key the edge traffic uses; the org routes no model, so each request is
    // denied after the key resolved, and logged as one usage event.
    let probe = call(
        &http,
        "POST",
        format!("{}/api/organizations/{org}/keys", bases[1]),
        json!({"name": "traffic"}),
    )
    .await
    .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let edge = EdgeServer::start(EdgeConfig {
        kv: KvConfig::Sqlite(kv.clone()),
        edge_keys: policy::sealed::KeyRing::parse(EDGE_KEYS).unwrap(),
        ..EdgeConfig::default()
    })
    .await
    .unwrap();

    // Edge traffic for the whole run: requests whose key resolved are counted.
    let done = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (http, url, done) = (http.clone(), edge.url(), done.clone());
        tokio::spawn(async move {
            let mut resolved = 0_i64;
            while !done.load(Ordering::Relaxed) {
                let res = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(&probe)
                    .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .unwrap();
                if res.status() != reqwest::StatusCode::UNAUTHORIZED {
                    resolved += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            resolved
        })
    };

    let acked_count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (http, bases, org) = (http.clone(), bases.clone(), org.clone());
        let (acked_count, killed) = (acked_count.clone(), killed.clone());
        workers.push(tokio::spawn(async move {
            let mut acked = Acked::default();
            let mut mine: Vec<String> = Vec::new();
            for j in 0..WRITES / WORKERS {
                // Spread over both replicas; after the kill only the survivor answers.
                let base = if killed.load(Ordering::Relaxed) {
                    &bases[0]
                } else {
                    &bases[(w + j) % 2]
                };
                let result = match j % 5 {
                    0 => call(
                        &http,
                        "POST",
                        format!("{base}/api/organizations"),
                        json!({"name": format!("R {w} {j}")}),
                    )
                    .await
                    .map(|b| acked.orgs.push(b["id"].as_str().unwrap().to_string())),
                    1 | 2 => call(
                        &http,
                        "POST",
                        format!("{base}/api/organizations/{org}/keys"),
                        json!({"name": format!("k {w} {j}")}),
                    )
                    .await
                    .map(|b| {
                        let id = b["id"].as_str().unwrap().to_string();
                        let secret = b["key"].as_str().unwrap().to_string();
                        acked
                            .keys
                            .insert(id.clone(), (secret, Some(format!("k {w} {j}")), false));
                        mine.push(id);
                    }),
                    3 => match mine.last().cloned() {
                        Some(id) => {
                            let name = format!("renamed {w} {j}");
                            let r = call(
                                &http,
                                "PATCH",
                                format!("{base}/api/keys/{id}"),
                                json!({"name": name}),
                            )
                            .await;
                            // Unanswered: it may or may not have committed.
                            acked.keys.get_mut(&id).unwrap().1 = r.as_ref().map(|_| name);
                            r.map(|_| ())
                        }
                        None => Some(()),
                    },
                    _ => match mine.first().cloned() {
                        Some(id) => {
                            mine.remove(0);
                            let r =
                                call(&http, "DELETE", format!("{base}/api/keys/{id}"), json!({}))
                                    .await;
                            if r.is_some() {
                                acked.keys.get_mut(&id).unwrap().2 = true;
                            }
                            r.map(|_| ())
                        }
                        None => Some(()),
                    },
                };
                if result.is_some() {
                    acked_count.fetch_add(1, Ordering::Relaxed);
                }
            }
            acked
        }));
    }
    // SIGKILL one replica once the run is well under way.
    let mut replicas = replicas;
    let start = Instant::now();
    while acked_count.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(start.elapsed() < Duration::from_secs(120), "writes stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replicas[1].child.kill().unwrap();
    replicas[1].child.wait().unwrap();
    killed.store(true, Ordering::Relaxed);
    let mut all = Acked::default();
    for w in workers {
        let a = w.await.unwrap();
        all.orgs.extend(a.orgs);
        all.keys.extend(a.keys);
    }
    done.store(true, Ordering::Relaxed);
    let requests = traffic.await.unwrap();
    assert!(
        acked_count.load(Ordering::Relaxed) >= WRITES * 9 / 10,
        "most writes acknowledged"
    );
    assert!(requests > 0, "the edge saw the traffic key");

    // Every acknowledged write is stored.
    let db = connect(&url).await.unwrap();
    for id in &all.orgs {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(n, 1, "acknowledged org {id} lost");
    }
    for (id, (_, name, revoked)) in &all.keys {
        let (stored_name, status): (String, String) =
            sqlx::query_as("SELECT name, status FROM virtual_keys WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap_or_else(|e| panic!("acknowledged key {id} lost: {e}"));
        if let Some(name) = name {
            assert_eq!(&stored_name, name, "key {id}");
        }
        if *revoked {
            assert_eq!(status, "revoked", "key {id}");
        }
    }

    // The sink converges: every key's record, active or revoked as stored.
    let start = Instant::now();
    loop {
        let s: Value = http
            .get(format!("{}/api/sync/status", bases[0]))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["sinks"][0]["pending"] == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sink did not converge: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (id, (secret, _, _)) in &all.keys {
        let status: String = sqlx::query_scalar("SELECT status FROM virtual_keys WHERE id = $1")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        let record = kv_record(&kv, &format!("key:{}", policy::kv::key_hash_hex(secret)))
            .await
            .unwrap_or_else(|| panic!("key {id} missing at the edge"));
        let expected = if status == "active" {
            KeyStatus::Active
        } else {
            KeyStatus::Revoked
        };
        assert_eq!(
            (record.key_id.as_str(), record.status),
            (id.as_str(), expected)
        );
    }

    // Usage: every request the edge logged is counted, once.
    let start = Instant::now();
    while usage_rows(&db).await < requests {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "usage not drained: {} of {requests}",
            usage_rows(&db).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        usage_rows(&db).await,
        requests,
        "usage counted more than once"
    );
    drop(edge);
}

#[test]
fn a_database_url_of_no_known_backend_stops_the_start_naming_database_url() {
    for url in ["mysql://tg:hunter2@db.internal/tollgate", "admin.db"] {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate-admin"))
            .env("DATABASE_URL", url)
            .env("TOLLGATE_LISTEN", "127.0.0.1:0")
            .env_remove("TOLLGATE_EDGE_KV")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: started anyway");
        assert!(stderr.contains("DATABASE_URL"), "{url}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "the password was echoed: {stderr}"
        );
    }
}
