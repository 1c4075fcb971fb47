//! `tollgate up` as a user runs it: one process, admin token printed once, an org,
//! provider and key created through the admin API answer through the edge, and
//! everything survives a restart on the same data directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_e2e::fixtures::PROVIDER_KEY;
use tollgate_e2e::upstream::MockUpstream;

/// A running `tollgate up`, killed on drop.
struct Up {
    child: Child,
    admin: String,
    edge: String,
    ops: String,
    token: Option<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `label` on the first line of `lines` that has it.
fn after<'a>(lines: &'a [String], label: &str) -> Option<&'a str> {
    lines
        .iter()
        .find_map(|l| l.split_once(label).map(|(_, rest)| rest.trim()))
}

fn up(dir: &std::path::Path, upstream: &MockUpstream) -> Up {
    up_with(dir, upstream, &[], &[])
}

/// Starts `tollgate up` with extra arguments and environment; its log (stderr)
/// is appended to `<dir>/stderr.log`.
fn up_with(
    dir: &std::path::Path,
    upstream: &MockUpstream,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Up {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))
        .expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "up",
            "--admin-listen",
            "127.0.0.1:0",
            "--edge-listen",
            "127.0.0.1:0",
            "--edge-ops-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--allow-outbound", &upstream.addr().to_string()])
        .args(extra)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("tollgate binary runs");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let lines = banner(&mut out);
    let admin = after(&lines, "admin API:")
        .and_then(|s| s.split_whitespace().next())
        .expect("admin URL printed")
        .to_string();
    let edge = after(&lines, "edge:")
        .and_then(|s| s.split_whitespace().next())
        .expect("edge URL printed")
        .to_string();
    let ops = after(&lines, "edge ops:")
        .and_then(|s| s.split_whitespace().next())
        .expect("edge ops URL printed")
        .to_string();
    let token = after(&lines, "store it now):").map(str::to_string);
    Up {
        child,
        admin,
        edge,
        ops,
        token,
    }
}

/// Reads stdout up to and including the admin-token line.
fn banner(out: &mut BufReader<ChildStdout>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "tollgate up exited early; printed {lines:?}");
        let done = line.contains("admin token");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

async fn admin(http: &reqwest::Client, up: &Up, token: &str, path: &str, body: Value) -> Value {
    let resp = http
        .post(format!("{}{path}", up.admin.trim_end_matches("/api")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("admin API reachable");
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON");
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Creates an org whose provider is the mock (with [`PROVIDER_KEY`]) and a key
/// that may call `gpt-4o`; returns the org id and the full key.
async fn org_and_key(
    http: &reqwest::Client,
    up: &Up,
    token: &str,
    upstream: &MockUpstream,
    name: &str,
) -> (String, String) {
    let org = admin(http, up, token, "/api/organizations", json!({"name": name})).await;
    let org_id = org["id"].as_str().expect("org id").to_string();
    let resp = http
        .patch(format!("{}/organizations/{org_id}/config", up.admin))
        .bearer_auth(token)
        .json(&json!({"config": {"providers": [{
            "name": "mock",
            "base_url": upstream.base_url(),
            "api_key": PROVIDER_KEY,
            "models": ["gpt-4o"],
        }]}}))
        .send()
        .await
        .expect("config");
    assert_eq!(resp.status(), 200);
    let key = admin(
        http,
        up,
        token,
        &format!("/api/organizations/{org_id}/keys"),
        json!({"name": "e2e", "allowed_models": ["gpt-4o"]}),
    )
    .await;
    (
        org_id,
        key["key"].as_str().expect("full key once").to_string(),
    )
}

async fn chat_until_ok(http: &reqwest::Client, up: &Up, key: &str) -> Value {
    let start = Instant::now();
    loop {
        let resp = http
            .post(format!("{}/chat/completions", up.edge))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("edge reachable");
        if resp.status() == 200 {
            return resp.json().await.expect("completion JSON");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "edge still answers {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgate_up_serves_what_the_admin_api_creates_and_survives_a_restart() {
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();

    let first = up(dir.path(), &upstream);
    let token = first
        .token
        .clone()
        .expect("first start prints the admin token");
    let (_, key) = org_and_key(&http, &first, &token, &upstream, "Local Dev").await;
    let completion = chat_until_ok(&http, &first, &key).await;
    assert_eq!(completion["object"], "chat.completion");
    drop(first);
    // The first start made both keys, readable by their owner only; the
    // credential reached the provider and is stored sealed.
    let key_files = ["master.key", "edge.key"].map(|f| dir.path().join(f));
    let keys_before = key_files
        .clone()
        .map(|f| std::fs::read(f).expect("key file"));
    for f in &key_files {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", f.display());
    }
    assert_eq!(
        upstream.received()[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    let mut admin_db = std::fs::read(dir.path().join("admin.db")).unwrap();
    admin_db.extend(std::fs::read(dir.path().join("admin.db-wal")).unwrap_or_default());
    assert!(
        !admin_db
            .windows(PROVIDER_KEY.len())
            .any(|w| w == PROVIDER_KEY.as_bytes()),
        "the admin DB holds the provider key in plaintext"
    );

    // Same data directory: no new token, the old one and the key still work.
    let second = up(dir.path(), &upstream);
    assert_eq!(second.token, None, "the admin token is shown only once");
    let orgs = http
        .get(format!("{}/organizations", second.admin))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list orgs");
    assert_eq!(orgs.status(), 200);
    chat_until_ok(&http, &second, &key).await;
    // The keys are kept across starts, not replaced.
    assert_eq!(key_files.map(|f| std::fs::read(f).unwrap()), keys_before);
}

/// GETs `url` (with `token` as bearer if given): status and body text.
async fn fetch(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("reachable");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_served_and_no_secret_reaches_a_log_line_or_a_metric() {
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::new();
    let up = up_with(
        dir.path(),
        &upstream,
        &["--log-format", "json"],
        &[("RUST_LOG", "debug,wasmtime=warn,cranelift=warn")],
    );
    let token = up.token.clone().expect("admin token");
    let (org_id, key) = org_and_key(&http, &up, &token, &upstream, "Observed").await;
    // The first success may race the record push past the host's admission read
    // (counted under no org); the second is surely the org's.
    chat_until_ok(&http, &up, &key).await;
    chat_until_ok(&http, &up, &key).await;
    let denied = http
        .post(format!("{}/chat/completions", up.edge))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("edge reachable");
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["x-tollgate-error"], "model_not_allowed");

    // The edge's operator endpoints, off the public port.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            fetch(&http, &format!("{}{path}", up.ops), None).await.0,
            200,
            "{path}"
        );
    }
    let (status, edge_metrics) = fetch(&http, &format!("{}/metrics", up.ops), None).await;
    assert_eq!(status, 200);
    for series in [
        format!(r#"tollgate_edge_requests_total{{code="",org="{org_id}",status="200"}}"#),
        format!(
            r#"tollgate_edge_requests_total{{code="model_not_allowed",org="{org_id}",status="403"}} 1"#
        ),
        r#"tollgate_edge_upstream_duration_seconds_count{outcome="response"}"#.to_string(),
        r#"tollgate_edge_kv_operation_duration_seconds_count{op="get"}"#.to_string(),
        r#"tollgate_edge_request_duration_seconds_bucket{status_class="2xx""#.to_string(),
    ] {
        assert!(
            edge_metrics.contains(&series),
            "{series} missing from:\n{edge_metrics}"
        );
    }
    assert_eq!(
        fetch(
            &http,
            &format!("{}/metrics", up.edge.trim_end_matches("/v1")),
            None
        )
        .await
        .0,
        404,
        "metrics are not on the public port"
    );

    // The admin service's: /metrics for platform admins only.
    let base = up.admin.trim_end_matches("/api").to_string();
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            fetch(&http, &format!("{base}{path}"), None).await.0,
            200,
            "{path}"
        );
    }
    assert_eq!(fetch(&http, &format!("{base}/metrics"), None).await.0, 401);
    let (status, admin_metrics) = fetch(&http, &format!("{base}/metrics"), Some(&token)).await;
    assert_eq!(status, 200, "{admin_metrics}");
    for series in [
        r#"tollgate_admin_http_request_duration_seconds_count{method="PATCH",route="/api/organizations/{id}/config",status="200"} 1"#,
        "tollgate_admin_outbox_pending{sink=",
        "tollgate_admin_usage_drain_last_success_timestamp_seconds{sink=",
    ] {
        assert!(
            admin_metrics.contains(series),
            "{series} missing from:\n{admin_metrics}"
        );
    }
    drop(up);

    // Every log line is one JSON object, and no secret is in any line or metric.
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).expect("log");
    assert!(
        log.lines().count() > 10,
        "debug logging wrote little: {log}"
    );
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    for (name, secret) in [
        ("provider key", PROVIDER_KEY),
        ("virtual key", key.as_str()),
        ("admin token", token.as_str()),
    ] {
        for (place, text) in [
            ("log", &log),
            ("edge metrics", &edge_metrics),
            ("admin metrics", &admin_metrics),
        ] {
            assert!(!text.contains(secret), "the {name} appears in the {place}");
        }
    }
}
