//! `tollgate orgs|keys|members|agents` as an operator runs them, against a real
//! `tollgate up`: tables and `--json`, keys shown once, every page listed, and each
//! refusal a message and a non-zero exit, never the token.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "tg-admin-cli-test-0123456789abcdef0123456789abcdef";

/// The shared `tollgate up` and its data directory. A static is never dropped,
/// so the server is killed (and its directory removed) by an `atexit` hook: a
/// `Drop` here never ran and left the server running after every test run.
static SERVER: Mutex<Option<Child>> = Mutex::new(None);
static SERVER_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn stop_server() {
    let child = SERVER.lock().map(|mut s| s.take());
    if let Ok(Some(mut child)) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(dir) = SERVER_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The URL of one `tollgate up` shared by the tests of this file.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let admin = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["up", "--data-dir"])
            .arg(&dir)
            .args(["--admin-listen", &admin])
            .args(["--edge-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--edge-ops-listen", &format!("127.0.0.1:{}", free_port())])
            .env("TOLLGATE_ADMIN_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tollgate up starts");
        *SERVER.lock().unwrap() = Some(child);
        let _ = SERVER_DIR.set(dir);
        // SAFETY: registers a plain function; it runs once, at exit.
        unsafe { libc::atexit(stop_server) };
        let url = format!("http://{admin}");
        let start = Instant::now();
        while !http::get_ok(&format!("{url}/readyz")) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "tollgate up never got ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        url
    })
}

mod http {
    //! The few direct calls the tests make beside the CLI (readiness, setting up a
    //! viewer), as plain HTTP/1.0 on loopback: the tests stay synchronous.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// `METHOD url` with an optional bearer token and JSON body: (status line, body).
    pub fn call(
        method: &str,
        url: &str,
        token: Option<&str>,
        body: &str,
    ) -> Option<(String, String)> {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_at(rest.find('/')?);
        let mut s = TcpStream::connect(host).ok()?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_string(), body.to_string()))
    }

    /// Whether `GET url` answers 200.
    pub fn get_ok(url: &str) -> bool {
        call("GET", url, None, "").is_some_and(|(status, _)| status.contains(" 200 "))
    }
}

/// Runs `tollgate <args>` against the shared server with `token`.
fn cli(token: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_BASE_URL", server())
        .env("TOLLGATE_API_KEY", token)
        .output()
        .expect("tollgate runs")
}

/// Runs a command that must succeed with `--json`, and parses its answer.
fn json_of(token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli(token, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints JSON")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unique() -> String {
    format!(
        "{:x}",
        Instant::now().elapsed().as_nanos() ^ std::process::id() as u128
    )
}

fn new_org(name: &str) -> String {
    let org = json_of(
        TOKEN,
        &["orgs", "create", "--name", &format!("{name} {}", unique())],
    );
    org["id"].as_str().unwrap().to_string()
}

#[test]
fn a_key_is_printed_once_and_listed_by_prefix_as_a_table_or_json() {
    let org = new_org("Keys");
    let out = cli(
        TOKEN,
        &[
            "keys",
            "create",
            "--org",
            &org,
            "--name",
            "svc",
            "--rpm",
            "100",
            "--models",
            "gpt-4o,gpt-4o-mini",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key "))
        .map(str::trim)
        .expect("the full key is printed")
        .to_string();
    assert!(key.starts_with("sk-tg-"), "{text}");
    assert!(stderr(&out).contains("shown only this once"));

    let table = cli(TOKEN, &["keys", "list", "--org", &org]);
    let table = stdout(&table);
    assert!(
        table.contains("KEY_PREFIX") && table.contains(&key[..12]),
        "{table}"
    );
    assert!(
        !table.contains(&key),
        "the list shows the key itself: {table}"
    );

    let listed = json_of(TOKEN, &["keys", "list", "--org", &org]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["rate_limit_rpm"], 100);
    assert_eq!(
        listed[0]["allowed_models"],
        json!(["gpt-4o", "gpt-4o-mini"])
    );
    assert!(listed[0].get("key").is_none());

    let id = listed[0]["id"].as_str().unwrap();
    let edited = json_of(
        TOKEN,
        &["keys", "update", id, "--rpm", "none", "--budget", "5.00"],
    );
    assert_eq!(edited["rate_limit_rpm"], Value::Null);
    assert_eq!(
        edited["budget"],
        json!({"limit": "5.00", "period": "monthly", "utc_offset_minutes": 0})
    );
    let rotated = json_of(TOKEN, &["keys", "rotate", id, "--grace-seconds", "60"]);
    assert_ne!(rotated["key"].as_str().unwrap(), key);
    assert_eq!(json_of(TOKEN, &["keys", "revoke", id])["status"], "revoked");
}

#[test]
fn lists_hold_every_page() {
    let org = new_org("Paging");
    // More keys than one page (100) holds.
    for i in 0..101 {
        let out = cli(
            TOKEN,
            &[
                "keys",
                "create",
                "--org",
                &org,
                "--name",
                &format!("k{i}"),
                "--json",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let listed = json_of(TOKEN, &["keys", "list", "--org", &org]);
    let ids: std::collections::HashSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 101);
}

#[test]
fn members_and_agents_round_trip() {
    let org = new_org("People");
    let email = format!("m{}@example.com", unique());
    let invited = json_of(
        TOKEN,
        &[
            "members", "invite", "--org", &org, "--email", &email, "--role", "member",
        ],
    );
    assert_eq!(invited["email"], email.as_str());
    assert!(
        invited.get("token").is_none(),
        "the invitation secret goes only to the invitee"
    );

    let agent = json_of(
        TOKEN,
        &[
            "agents",
            "create",
            "--name",
            "helper",
            "--billing-rate",
            "10.00",
        ],
    );
    let id = agent["id"].as_str().unwrap();
    assert_eq!(
        json_of(TOKEN, &["agents", "assign", id, "--org", &org])["org_id"],
        org.as_str()
    );
    let listed = json_of(TOKEN, &["agents", "list", "--org", &org]);
    assert_eq!(listed[0]["id"], id);
    assert_ne!(
        json_of(TOKEN, &["agents", "unassign", id])["org_id"],
        org.as_str()
    );
    let members = json_of(TOKEN, &["members", "list", "--org", &org]);
    assert!(members.as_array().unwrap().is_empty(), "{members}");
}

#[test]
fn refusals_exit_non_zero_with_the_api_message_and_never_the_token() {
    let org = new_org("Mine");
    let other = new_org("Theirs");
    // A viewer of `org`, with their own token.
    let email = format!("v{}@example.com", unique());
    let api = format!("{}/api", server());
    let user = admin_post(&format!("{api}/users"), json!({"email": email}));
    let uid = user["id"].as_str().unwrap();
    admin_post(
        &format!("{api}/organizations/{org}/members"),
        json!({"user_id": uid, "role": "viewer"}),
    );
    let viewer = admin_post(&format!("{api}/users/{uid}/tokens"), json!({"name": "cli"}))["token"]
        .as_str()
        .unwrap()
        .to_string();

    let out = cli(
        &viewer,
        &["keys", "create", "--org", &org, "--name", "nope"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));

    let out = cli(&viewer, &["keys", "list", "--org", &other]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("404"),
        "another tenant's org: {}",
        stderr(&out)
    );

    let out = cli(
        TOKEN,
        &[
            "keys",
            "create",
            "--org",
            &org,
            "--name",
            "bad",
            "--ip-allow",
            "nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ip_allow[0]"), "{}", stderr(&out));

    let wrong = "tg-admin-not-a-real-token-0000000000000000";
    let out = cli(wrong, &["orgs", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("401") && !stderr(&out).contains(wrong),
        "{}",
        stderr(&out)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "orgs",
            "list",
            "--api-url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .env("TOLLGATE_API_KEY", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(!stderr(&out).contains(TOKEN));

    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["orgs", "list"])
        .env_remove("TOLLGATE_API_KEY")
        .env("TOLLGATE_BASE_URL", server())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TOLLGATE_API_KEY"));
}

/// A POST with the admin token that must succeed, for setting up what the CLI does not.
fn admin_post(url: &str, body: Value) -> Value {
    let (status, body) = http::call("POST", url, Some(TOKEN), &body.to_string()).expect("POST");
    assert!(status.contains(" 20"), "{status}\n{body}");
    serde_json::from_str(&body).unwrap()
}
