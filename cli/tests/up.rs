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
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "up",
            "--admin-listen",
            "127.0.0.1:0",
            "--edge-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(["--allow-outbound", &upstream.addr().to_string()])
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let token = after(&lines, "store it now):").map(str::to_string);
    Up {
        child,
        admin,
        edge,
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
    let org = admin(
        &http,
        &first,
        &token,
        "/api/organizations",
        json!({"name": "Local Dev"}),
    )
    .await;
    let org_id = org["id"].as_str().expect("org id");
    let resp = http
        .patch(format!("{}/organizations/{org_id}/config", first.admin))
        .bearer_auth(&token)
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
        &http,
        &first,
        &token,
        &format!("/api/organizations/{org_id}/keys"),
        json!({"name": "laptop"}),
    )
    .await;
    let key = key["key"].as_str().expect("full key once").to_string();
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
