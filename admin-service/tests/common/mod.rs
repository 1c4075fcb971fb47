//! Shared test harness: the real router on a loopback port, a real admin database
//! (SQLite in a temp dir, or PostgreSQL with `TOLLGATE_TEST_DB=postgres`), a real
//! Spin-schema sink file in the temp dir, and a small HTTP client.

#![allow(dead_code)]

pub mod smtp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_service::sync::sinks::{Sink, SpinSqliteSink};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// The platform-admin token every test server is started with.
pub const ADMIN: &str = "tg-admin-test-0123456789abcdef";
/// The master key of test servers.
pub const MASTER_KEY: &str = "mtest:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The edge key of test servers.
pub const EDGE_KEYS: &str = "etest:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// The keys of test servers.
pub fn test_vault() -> admin_service::vault::Vault {
    admin_service::vault::Vault::with_rings(
        policy::sealed::KeyRing::parse(MASTER_KEY).unwrap(),
        policy::sealed::KeyRing::parse(EDGE_KEYS).unwrap(),
    )
}

/// The plaintext of a credential an edge record carries, opened as the edge does.
pub fn open_edge_credential(org_id: &str, provider: &str, sealed: &str) -> String {
    let ring = policy::sealed::KeyRing::parse(EDGE_KEYS).unwrap();
    let plain = ring
        .open(
            sealed,
            &policy::sealed::provider_credential_aad(org_id, provider),
        )
        .expect("the record's credential opens with the edge key");
    String::from_utf8(plain.to_vec()).unwrap()
}

/// A running admin service.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    /// The SQLite file of the admin database (absent on PostgreSQL).
    pub db_path: PathBuf,
    /// The admin database (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    pub sink_paths: Vec<PathBuf>,
    server: JoinHandle<()>,
    pushers: Vec<JoinHandle<()>>,
    /// The SMTP server the service sends invitation emails to.
    pub mail: smtp::SmtpSink,
    /// A connection kept for snapshots, which the RBAC matrix takes hundreds of.
    snap: tokio::sync::OnceCell<admin_service::store::db::Db>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
        for p in &self.pushers {
            p.abort();
        }
    }
}

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    /// The `x-next-cursor` header of a list page.
    pub next_cursor: Option<String>,
}

impl Resp {
    /// Asserts a 2xx status and returns the body.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected 2xx, got {}: {}",
            self.status,
            self.text
        );
        self.body
    }

    /// Asserts exactly `status` and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        self.body
    }

    /// Asserts an error with `status` whose `field` is `field` and whose message names it.
    #[track_caller]
    pub fn err(&self, status: u16, field: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let e = &self.body["error"];
        assert_eq!(e["field"], json!(field), "{}", self.text);
        assert!(
            e["message"].as_str().unwrap_or("").contains(field),
            "message must name {field}: {}",
            self.text
        );
        assert!(
            e["type"].is_string() && e["code"].is_string(),
            "{}",
            self.text
        );
    }
}

impl TestServer {
    /// A server with one sink file `kv.db` in the temp dir.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let sink = dir.path().join("kv.db");
        Self::start_in(dir, vec![sink]).await
    }

    /// A server on the database in `dir` (created if missing) pushing to `sinks`.
    pub async fn start_in(dir: TempDir, sinks: Vec<PathBuf>) -> TestServer {
        Self::start_mailing(dir, sinks, None).await
    }

    /// Like [`TestServer::start_in`]; invitation emails go to `smtp_url` instead of
    /// the server's own receiver when given.
    pub async fn start_mailing(
        dir: TempDir,
        sinks: Vec<PathBuf>,
        smtp_url: Option<String>,
    ) -> TestServer {
        let db_path = dir.path().join("admin.db");
        let database_url = test_postgres::database_url(dir.path());
        let config = admin_service::Config {
            database_url: database_url.clone(),
            edge_kv: Vec::new(),
            admin_token: Some(ADMIN.to_string()),
            ..Default::default()
        };
        let db = admin_service::store::db::connect(&config.database_url)
            .await
            .unwrap();
        admin_service::auth::bootstrap(&db, Some(ADMIN))
            .await
            .unwrap();
        let sink_objs: Vec<Arc<dyn Sink>> = sinks
            .iter()
            .map(|p| Arc::new(SpinSqliteSink::new(p)) as Arc<dyn Sink>)
            .collect();
        let mut started =
            admin_service::start_with_sinks(db, sink_objs, None, Arc::new(test_vault()))
                .await
                .unwrap();
        let targets: Vec<admin_service::sync::sinks::SinkTarget> = sinks
            .iter()
            .map(|p| admin_service::sync::sinks::SinkTarget::Sqlite(p.clone()))
            .collect();
        started.state.explainer = Arc::new(admin_service::api::explain::Explainer::new(&targets));
        let mail = smtp::SmtpSink::start().await;
        started.state.mailer = Arc::new(
            admin_service::mail::Mailer::smtp(
                &smtp_url.unwrap_or_else(|| format!("smtp://{}", mail.addr)),
                "Tollgate <tollgate@test.example>",
                "http://tollgate.test.example",
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = started.state.clone();
        let server = tokio::spawn(async move {
            admin_service::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        });
        TestServer {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            dir,
            db_path,
            database_url,
            sink_paths: sinks,
            server,
            pushers: started.pushers,
            mail,
            snap: tokio::sync::OnceCell::new(),
        }
    }

    /// Sends `body` (raw text) with `token`.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Resp {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let next_cursor = res
            .headers()
            .get(admin_service::api::paging::NEXT_CURSOR)
            .map(|v| v.to_str().unwrap().to_string());
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Resp {
            status,
            body,
            text,
            next_cursor,
        }
    }

    /// Sends a JSON request with `token`.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let text = body.map(|b| b.to_string());
        self.raw(method, path, Some(token), text.as_deref()).await
    }

    /// GET as platform admin.
    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, ADMIN, None).await
    }

    /// POST as platform admin.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, ADMIN, Some(body)).await
    }

    /// PATCH as platform admin.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call("PATCH", path, ADMIN, Some(body)).await
    }

    /// PUT as platform admin.
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.call("PUT", path, ADMIN, Some(body)).await
    }

    /// DELETE as platform admin.
    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, ADMIN, None).await
    }

    /// Creates an org named `name`; returns its id.
    pub async fn org(&self, name: &str) -> String {
        let body = self
            .post("/api/organizations", json!({"name": name}))
            .await
            .ok();
        body["id"].as_str().unwrap().to_string()
    }

    /// Creates a user, gives it `role` in `org_id`, and returns (user id, token).
    pub async fn user(&self, org_id: &str, role: &str) -> (String, String) {
        let email = format!("{}-{}@example.com", role, rand_suffix());
        let user = self.post("/api/users", json!({"email": email})).await.ok();
        let uid = user["id"].as_str().unwrap().to_string();
        self.post(
            &format!("/api/organizations/{org_id}/members"),
            json!({"user_id": uid, "role": role}),
        )
        .await
        .ok();
        let tok = self
            .post(&format!("/api/users/{uid}/tokens"), json!({}))
            .await
            .ok();
        (uid, tok["token"].as_str().unwrap().to_string())
    }

    /// Invites `email` to `org_id` as `role`; returns the creation response and the
    /// secret from the email the invitee received.
    pub async fn invite(&self, org_id: &str, email: &str, role: &str) -> (Value, String) {
        let inv = self
            .post(
                &format!("/api/organizations/{org_id}/invitations"),
                json!({"email": email, "role": role}),
            )
            .await
            .expect(201);
        (inv, self.emailed_secret(email))
    }

    /// Accepts an invitation with `secret`, presenting `bearer` if any.
    pub async fn accept(&self, secret: &str, bearer: Option<&str>) -> Resp {
        let body = json!({ "token": secret }).to_string();
        self.raw("POST", "/api/invitations/accept", bearer, Some(&body))
            .await
    }

    /// The secret of the latest invitation emailed to `email`.
    #[track_caller]
    pub fn emailed_secret(&self, email: &str) -> String {
        let mails = self.mail.mail_to(email);
        smtp::invitation_secret(
            &mails
                .last()
                .expect("an invitation email was delivered")
                .data,
        )
    }

    /// Waits until every sink has acknowledged the whole outbox; returns the wait.
    pub async fn synced(&self) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.get("/api/sync/status").await.ok();
            let done = s["sinks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["pending"] == 0);
            if done {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sinks did not catch up: {s}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Reads one record from sink `i`.
    pub async fn kv(&self, i: usize, key: &str) -> Option<Vec<u8>> {
        kv_get(&self.sink_paths[i], key).await
    }

    /// Reads and decodes one record from sink 0 with the edge's own decoder.
    pub async fn record<T: for<'de> serde::Deserialize<'de> + policy::records::Versioned>(
        &self,
        key: &str,
    ) -> Option<T> {
        let bytes = self.kv(0, key).await?;
        Some(policy::records::decode(&bytes).expect("the edge can decode what admin pushed"))
    }

    /// The newest outbox id: unchanged means no mutation reached the edge's queue.
    pub async fn outbox_head(&self) -> i64 {
        self.get("/api/sync/status").await.ok()["outbox_head"]
            .as_i64()
            .unwrap()
    }

    /// Stops the service (server and pushers) and starts it again on the same
    /// database with `sinks`, as an operator restart would.
    pub async fn restart(mut self, sinks: Vec<PathBuf>) -> TestServer {
        self.server.abort();
        for p in self.pushers.drain(..) {
            p.abort();
            let _ = p.await;
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        TestServer::start_in(dir, sinks).await
    }

    /// A read-write connection to the admin database, for assertions on what is stored.
    pub async fn db(&self) -> admin_service::store::db::Db {
        admin_service::store::db::connect(&self.database_url)
            .await
            .unwrap()
    }

    /// Every row of every admin table except the pushers' and token-use bookkeeping, as text:
    /// equal snapshots before and after a rejected request prove nothing was written.
    pub async fn snapshot(&self) -> String {
        let pool = self.snap.get_or_init(|| self.db()).await;
        if self.is_postgres() {
            return postgres_snapshot(pool).await;
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name NOT IN ('sink_positions', 'api_token_usage', '_sqlx_migrations') ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut out = String::new();
        for t in tables {
            let cols: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let expr = cols
                .iter()
                .map(|c| format!("quote(\"{c}\")"))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT {expr} FROM \"{t}\" ORDER BY rowid"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            out.push_str(&format!("== {t}\n{}\n", rows.join("\n")));
        }
        out
    }

    /// Whether the admin database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// The raw bytes of the admin database files (main file and write-ahead log):
    /// a secret found here would be stored in clear. On PostgreSQL, every row of
    /// every table as text.
    pub fn db_bytes(&self) -> Vec<u8> {
        test_postgres::stored_bytes(&self.database_url)
    }

    /// Asserts `secret` appears in no stored admin state (rows or raw files).
    #[track_caller]
    pub fn assert_not_stored(&self, secret: &str, snapshot: &str) {
        assert!(!snapshot.contains(secret), "secret stored in a table");
        let bytes = self.db_bytes();
        assert!(!bytes.is_empty(), "admin database files not found");
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "secret found in the database files"
        );
    }

    /// Creates an agent in `org_id`; returns its id.
    pub async fn agent(&self, org_id: &str, name: &str) -> String {
        let a = self
            .post("/api/agents", json!({"name": name, "org_id": org_id}))
            .await
            .ok();
        a["id"].as_str().unwrap().to_string()
    }

    /// Creates a team in `org_id` with `body` (as platform admin); returns its id.
    pub async fn team(&self, org_id: &str, body: Value) -> String {
        let t = self
            .post(&format!("/api/organizations/{org_id}/teams"), body)
            .await
            .ok();
        t["id"].as_str().unwrap().to_string()
    }

    /// Creates a key in `org_id` with `body` (as platform admin); returns the response.
    pub async fn key(&self, org_id: &str, body: Value) -> Value {
        self.post(&format!("/api/organizations/{org_id}/keys"), body)
            .await
            .ok()
    }
}

impl TestServer {
    /// What the edge would decide for `secret` calling `model` from `ip`, from the
    /// records in sink 0, with policy's own decision engine (no limits or counters).
    pub async fn edge(
        &self,
        secret: &str,
        model: Option<&str>,
        ip: Option<&str>,
    ) -> Result<(), policy::Denial> {
        use policy::{AgentRecord, KeyRecord, OrgRecord, TeamRecord};
        let key: KeyRecord = self
            .record(&format!(
                "{}{}",
                policy::kv::KEY_PREFIX,
                policy::kv::key_hash_hex(secret)
            ))
            .await
            .ok_or(policy::Denial::UnknownKey)?;
        let org: OrgRecord = self
            .record(&policy::kv::org_key(&key.org_id))
            .await
            .ok_or(policy::Denial::RecordUnavailable("org"))?;
        let team: Option<TeamRecord> = match &key.team_id {
            Some(t) => self.record(&policy::kv::team_key(t)).await,
            None => None,
        };
        let agent: Option<AgentRecord> = match &key.agent_id {
            Some(a) => self.record(&policy::kv::agent_key(a)).await,
            None => None,
        };
        let subject = policy::Subject {
            key: &key,
            org: &org,
            team: team.as_ref(),
            agent: agent.as_ref(),
        };
        let facts = policy::Facts {
            now_ms: u64::try_from(admin_service::store::db::now_ms()).unwrap(),
            client_ip: ip.map(|i| i.parse().unwrap()),
            model,
        };
        policy::authorize(&subject, &facts)
    }
}

impl TestServer {
    /// Like [`TestServer::edge`], for orgs without providers: a model the key may
    /// call but nothing routes counts as allowed.
    pub async fn edge_access(
        &self,
        secret: &str,
        model: Option<&str>,
        ip: Option<&str>,
    ) -> Result<(), policy::Denial> {
        match self.edge(secret, model, ip).await {
            Err(policy::Denial::NoRoute(_)) => Ok(()),
            other => other,
        }
    }
}

/// The PostgreSQL counterpart of [`TestServer::snapshot`]: every row of every table
/// but the same bookkeeping ones, as text, sorted.
async fn postgres_snapshot(pool: &admin_service::store::db::Db) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
         AND table_name NOT IN ('sink_positions', 'api_token_usage', '_sqlx_migrations')
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = String::new();
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{t}\" t ORDER BY 1"))
                .fetch_all(pool)
                .await
                .unwrap();
        out.push_str(&format!("== {t}\n{}\n", rows.join("\n")));
    }
    out
}

/// Whether a byte string contains `needle`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads `key` from the `default` store of a Spin-schema SQLite file.
pub async fn kv_get(path: &Path, key: &str) -> Option<Vec<u8>> {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.ok()?;
    let v: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?")
            .bind(key)
            .fetch_optional(&pool)
            .await
            .unwrap();
    pool.close().await;
    v
}

/// A short random suffix for unique names.
pub fn rand_suffix() -> String {
    admin_service::store::db::random_hex(4)
}
