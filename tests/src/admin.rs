//! The whole product on loopback: the admin service (real SQLite, or PostgreSQL with
//! `TOLLGATE_TEST_DB=postgres`; real HTTP) pushing compiled records into the SQLite
//! key-value file that the real edge runtime serves the real component from, in
//! front of the mock provider.

use std::time::{Duration, Instant};

use admin_service::sync::sinks::SinkTarget;
use admin_service::vault::KeySource;
use edge_host::{EdgeConfig, EdgeServer, KvConfig};
use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::fixtures::{EDGE_KEYS, MASTER_KEY, PROVIDER_KEY};
use crate::harness;
use crate::upstream::MockUpstream;

/// The platform-admin token the admin service is started with.
pub const ADMIN_TOKEN: &str = "tg-admin-e2e-0123456789abcdef0123";

/// Admin service, edge and provider, wired as `tollgate up` wires them.
pub struct ControlPlane {
    /// Base URL of the admin API (`http://addr`).
    pub admin_url: String,
    /// The edge runtime reading the admin service's sink.
    pub edge: EdgeServer,
    /// The provider the org's config points at.
    pub upstream: MockUpstream,
    /// A client with no default headers.
    pub http: reqwest::Client,
    server: JoinHandle<()>,
    pushers: Vec<JoinHandle<()>>,
    database_url: String,
    _dir: TempDir,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.server.abort();
        self.pushers.iter().for_each(JoinHandle::abort);
    }
}

impl ControlPlane {
    /// Starts the provider, the admin service (sink: a fresh KV file) and the edge on that file.
    pub async fn start() -> ControlPlane {
        ControlPlane::start_on(None).await
    }

    /// Like [`Self::start`] with a Redis server as the shared store of admin and edge.
    pub async fn start_on_redis(redis_url: &str) -> ControlPlane {
        ControlPlane::start_on(Some(redis_url)).await
    }

    async fn start_on(redis_url: Option<&str>) -> ControlPlane {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("edge-kv.db");
        let (sink, kv) = match redis_url {
            Some(url) => (
                SinkTarget::Redis(url.to_string()),
                KvConfig::Redis(url.to_string()),
            ),
            None => (
                SinkTarget::Sqlite(kv_path.clone()),
                KvConfig::Sqlite(kv_path.clone()),
            ),
        };
        ControlPlane::start_with(dir, vec![sink], kv).await
    }

    /// The admin service (its database in `dir`) pushing to `sinks`, and the edge
    /// on `edge_kv`, which should be one of them.
    pub async fn start_with(
        dir: TempDir,
        sinks: Vec<SinkTarget>,
        edge_kv: KvConfig,
    ) -> ControlPlane {
        let master = KeySource::Inline(MASTER_KEY.to_string().into());
        let edge = KeySource::Inline(EDGE_KEYS.to_string().into());
        ControlPlane::start_with_keys(dir, sinks, edge_kv, master, edge).await
    }

    /// Like [`Self::start_with`] with the admin service's master and edge keys
    /// read from `master` and `edge` (the edge always gets the test edge keys).
    pub async fn start_with_keys(
        dir: TempDir,
        sinks: Vec<SinkTarget>,
        edge_kv: KvConfig,
        master_key: KeySource,
        edge_keys: KeySource,
    ) -> ControlPlane {
        let database_url = test_postgres::database_url(dir.path());
        let config = admin_service::Config {
            database_url: database_url.clone(),
            edge_kv: sinks,
            admin_token: Some(ADMIN_TOKEN.to_string()),
            master_key,
            edge_keys,
        };
        let started = admin_service::start(&config)
            .await
            .expect("admin service starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind admin");
        let admin_url = format!("http://{}", listener.local_addr().expect("admin addr"));
        let server = tokio::spawn(async move {
            admin_service::serve(listener, started.state, std::future::pending())
                .await
                .expect("admin serves");
        });
        let upstream = MockUpstream::start().await;
        let edge = EdgeServer::start(EdgeConfig {
            kv: edge_kv,
            ..harness::config(&upstream)
        })
        .await
        .expect("edge starts");
        ControlPlane {
            admin_url,
            edge,
            upstream,
            http: reqwest::Client::new(),
            server,
            pushers: started.pushers,
            database_url,
            _dir: dir,
        }
    }

    /// The directory of the admin database (`admin.db` on SQLite) and the default KV file.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A connection to the admin database (SQLite or PostgreSQL), to look into or
    /// age what is stored as an operator would.
    pub async fn db(&self) -> admin_service::store::db::Db {
        admin_service::store::db::connect(&self.database_url)
            .await
            .expect("admin database")
    }

    /// What a secret-grep of the admin database reads (SQLite: its files; PostgreSQL:
    /// every row as text).
    pub fn db_bytes(&self) -> Vec<u8> {
        test_postgres::stored_bytes(&self.database_url)
    }

    /// Calls the admin API as platform admin; panics on a non-2xx answer.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.admin_url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin API reachable");
        let status = resp.status();
        let text = resp.text().await.expect("admin body");
        assert!(status.is_success(), "{method} {path}: {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("admin answers JSON")
        }
    }

    /// The org's usage report (`query`: e.g. `?group_by=key`, or empty) once it
    /// counts `requests` forwarded requests: the admin service drains the edge's
    /// spool in the background. Panics after 10 s.
    pub async fn usage_once_drained(&self, org: &str, query: &str, requests: u64) -> Value {
        let path = format!("/api/organizations/{org}/usage{query}");
        let start = Instant::now();
        loop {
            let u = self.admin(Method::GET, &path, None).await;
            if u["totals"]["requests"] == requests {
                return u;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "usage not drained: {u}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Calls the admin API with `token`; returns the status and the JSON body (`Null` when empty).
    pub async fn api_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.admin_url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin API reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("admin body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a user with `role` in `org` and an API token for them; returns (user id, token).
    pub async fn member(&self, org: &str, role: &str) -> (String, String) {
        let email = format!(
            "{role}-{}@example.com",
            admin_service::store::db::random_hex(4)
        );
        let user = self
            .admin(Method::POST, "/api/users", Some(json!({"email": email})))
            .await;
        let uid = user["id"].as_str().expect("user id").to_string();
        self.admin(
            Method::POST,
            &format!("/api/organizations/{org}/members"),
            Some(json!({"user_id": uid, "role": role})),
        )
        .await;
        let token = self
            .admin(
                Method::POST,
                &format!("/api/users/{uid}/tokens"),
                Some(json!({})),
            )
            .await;
        let token = token["token"].as_str().expect("user token").to_string();
        (uid, token)
    }

    /// Prices gpt-4o in the catalog at $2.50 / $10.00 per 1M tokens: the mock's
    /// 10 + 5 tokens cost $0.000075.
    pub async fn price_gpt_4o(&self) {
        self.admin(
            Method::POST,
            "/api/models",
            Some(
                json!({"name": "gpt-4o", "input_price_per_1m": "2.50", "output_price_per_1m": "10.00"}),
            ),
        )
        .await;
    }

    /// Creates an org whose only provider is the mock upstream serving every
    /// model in `models`; returns its id.
    pub async fn org_with_provider(&self, name: &str, models: &[&str]) -> String {
        let org = self
            .admin(
                Method::POST,
                "/api/organizations",
                Some(json!({"name": name, "currency": "USD"})),
            )
            .await;
        let id = org["id"].as_str().expect("org id").to_string();
        let config = json!({"config": {"providers": [{
            "name": "mock",
            "base_url": self.upstream.base_url(),
            "api_key": PROVIDER_KEY,
            "models": models,
        }]}});
        self.admin(
            Method::PATCH,
            &format!("/api/organizations/{id}/config"),
            Some(config),
        )
        .await;
        id
    }

    /// Creates a virtual key in `org` with the given extra fields; returns (id, secret).
    pub async fn key(&self, org: &str, fields: Value) -> (String, String) {
        let mut body = json!({"name": "e2e"});
        body.as_object_mut()
            .expect("object")
            .extend(fields.as_object().cloned().unwrap_or_default());
        let key = self
            .admin(
                Method::POST,
                &format!("/api/organizations/{org}/keys"),
                Some(body),
            )
            .await;
        (
            key["id"].as_str().expect("key id").to_string(),
            key["key"]
                .as_str()
                .expect("full key, shown once")
                .to_string(),
        )
    }

    /// Waits until every sink has acknowledged the whole outbox; returns the wait.
    pub async fn synced(&self) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.admin(Method::GET, "/api/sync/status", None).await;
            let sinks = s["sinks"].as_array().expect("sinks");
            if sinks.iter().all(|k| k["pending"] == 0) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sinks did not catch up: {s}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A minimal chat completion for `model` through the edge with `key`.
    pub async fn chat(&self, key: &str, model: &str) -> reqwest::Response {
        self.chat_at(&self.edge.url(), key, model).await
    }

    /// A minimal chat completion for `model` with `key` through the gateway at `base` (`http://addr`).
    pub async fn chat_at(&self, base: &str, key: &str, model: &str) -> reqwest::Response {
        self.http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("edge reachable")
    }

    /// Polls the edge with `key` until it answers `status`; returns how long that took.
    pub async fn until_status(&self, key: &str, model: &str, status: u16) -> Duration {
        self.until_status_at(&self.edge.url(), key, model, status)
            .await
    }

    /// Polls the gateway at `base` with `key` until it answers `status`; returns how long that took.
    pub async fn until_status_at(
        &self,
        base: &str,
        key: &str,
        model: &str,
        status: u16,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let got = self.chat_at(base, key, model).await.status().as_u16();
            if got == status {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "edge still answers {got}, expected {status}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
