//! The real (embedded) gateway component under the host, over real HTTP on
//! loopback.

mod common;

use std::time::{Duration, Instant};

use common::{OPEN_KEY, chat, records, upstream, write_json};
use edge_host::{EdgeConfig, EdgeServer, KvConfig, RequestFacts};
use serde_json::{Value, json};

async fn start(cfg: EdgeConfig) -> EdgeServer {
    EdgeServer::start(cfg).await.expect("edge starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The mock provider and an edge serving the open key to it (the records file
/// must outlive the test's requests).
async fn serving_upstream() -> (common::Upstream, EdgeServer, tempfile::NamedTempFile) {
    let up = upstream().await;
    let file = write_json(&records(&up.base_url(), &[]));
    let server = start(EdgeConfig {
        records: Some(file.path().into()),
        allowed_outbound: vec![up.addr.to_string()],
        ..EdgeConfig::default()
    })
    .await;
    (up, server, file)
}

/// Opens a streamed chat completion and reads it up to the provider's first
/// chunk (the provider holds the rest until released); returns what was read.
async fn open_stream(server: &EdgeServer) -> (reqwest::Response, String) {
    let mut res = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth(OPEN_KEY)
        .header("content-type", "application/json")
        .body(chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut seen = String::new();
    while !seen.contains("first") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("first SSE chunk arrives before the stream ends")
            .unwrap()
            .expect("stream still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (res, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_on_an_ephemeral_port_and_graceful_shutdown() {
    let server = start(EdgeConfig::default()).await;
    assert_ne!(server.local_addr().port(), 0);
    let res = client()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let addr = server.local_addr();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_supplied_spin_client_addr_is_replaced_by_the_peer() {
    let up = upstream().await;
    let file = write_json(&records(
        &up.base_url(),
        &[
            (
                "sk-tg-loopback-only",
                "k-lo",
                json!({"allow": ["127.0.0.1/32"]}),
            ),
            (
                "sk-tg-spoofed-only",
                "k-sp",
                json!({"allow": ["10.9.9.9/32"]}),
            ),
        ],
    ));
    let server = start(EdgeConfig {
        records: Some(file.path().into()),
        ..EdgeConfig::default()
    })
    .await;
    let models = |key: &'static str| {
        client()
            .get(format!("{}/v1/models", server.url()))
            .bearer_auth(key)
            // Two spoof attempts: both must be dropped.
            .header("spin-client-addr", "10.9.9.9:1234")
            .header("spin-client-addr", "10.9.9.9:1")
            .send()
    };
    // The real peer (127.0.0.1) is what the component sees...
    assert_eq!(models("sk-tg-loopback-only").await.unwrap().status(), 200);
    // ...so a key that only admits the spoofed address is refused.
    let res = models("sk-tg-spoofed-only").await.unwrap();
    assert_eq!(res.status(), 403);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_to_a_host_not_allowed_is_denied() {
    let up = upstream().await;
    let file = write_json(&records(&up.base_url(), &[]));
    let server = start(EdgeConfig {
        records: Some(file.path().into()),
        allowed_outbound: vec!["api.openai.com".into(), "127.0.0.1:1".into()],
        ..EdgeConfig::default()
    })
    .await;
    let res = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth(OPEN_KEY)
        .header("content-type", "application/json")
        .body(chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(up.hits(), 0, "the denied upstream must never be contacted");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_outbound_reaches_the_provider() {
    let (up, server, _records) = serving_upstream().await;
    let res = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .bearer_auth(OPEN_KEY)
        .header("content-type", "application/json")
        .body(chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "hi", "{body}");
    assert_eq!(up.hits(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_is_streamed_not_buffered() {
    let (up, server, _records) = serving_upstream().await;
    // The upstream holds the rest of the stream until released: the first chunk
    // can only arrive here if nothing on the way buffers the body.
    let (mut res, mut seen) = open_stream(&server).await;
    assert!(!seen.contains("second"));
    up.release.notify_one();
    while let Some(chunk) = res.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("second") && seen.contains("[DONE]"), "{seen}");
    server.shutdown().await;
}

/// Waits (at most 5 s) until `addr` refuses connections.
async fn refusing_connections(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Usage events spooled in `kv`.
async fn spooled_events(kv: &edge_host::Kv) -> usize {
    let keys = kv.list_keys().await.unwrap();
    keys.iter()
        .filter(|k| k.starts_with(policy::usage::USAGE_PREFIX))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_stream_in_flight_finish_and_record_its_usage() {
    let (up, server, _records) = serving_upstream().await;
    let (kv, addr) = (server.kv().clone(), server.local_addr());
    let (mut res, mut seen) = open_stream(&server).await;
    let stopping = tokio::spawn(server.shutdown());
    // New connections are refused at once, while the stream is still open.
    refusing_connections(addr).await;
    assert!(!stopping.is_finished(), "shutdown waits for the stream");
    up.release.notify_one();
    while let Some(chunk) = res.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("second") && seen.contains("[DONE]"), "{seen}");
    stopping.await.unwrap();
    // The finished stream was charged and its usage spooled.
    assert_eq!(spooled_events(&kv).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_guest_of_an_aborted_stream_to_record_its_usage() {
    let (up, server, _records) = serving_upstream().await;
    let (kv, addr) = (server.kv().clone(), server.local_addr());
    let (res, _) = open_stream(&server).await;
    // The client goes away; the guest still waits on the held upstream.
    drop(res);
    let stopping = tokio::spawn(server.shutdown());
    refusing_connections(addr).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown returned while a guest was still running"
    );
    up.release.notify_one();
    stopping.await.unwrap();
    assert_eq!(
        spooled_events(&kv).await,
        1,
        "the cut-off stream is charged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_by_another_process_are_seen_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("edge-kv.db");
    let server = start(EdgeConfig {
        kv: KvConfig::Sqlite(db.clone()),
        ..EdgeConfig::default()
    })
    .await;
    let models = || {
        client()
            .get(format!("{}/v1/models", server.url()))
            .bearer_auth(OPEN_KEY)
            .send()
    };
    assert_eq!(models().await.unwrap().status(), 401);

    // Another "process": its own connections to the same file.
    let admin = edge_host::Kv::open(&KvConfig::Sqlite(db)).unwrap();
    let entries =
        edge_host::records::parse(&records("http://127.0.0.1:1/v1", &[]).to_string()).unwrap();
    admin.set_many(&entries).await.unwrap();
    assert_eq!(models().await.unwrap().status(), 200);

    admin
        .delete(policy::kv::KeyName::of(OPEN_KEY).as_str())
        .await
        .unwrap();
    assert_eq!(models().await.unwrap().status(), 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decide_calls_the_component_policy_export() {
    let file = write_json(&records("http://127.0.0.1:1/v1", &[]));
    let server = start(EdgeConfig {
        records: Some(file.path().into()),
        ..EdgeConfig::default()
    })
    .await;
    let facts = |key: &str, model: &str| RequestFacts {
        key: edge_host::KeyRef::Secret(key.into()),
        client_ip: Some("127.0.0.1".into()),
        model: Some(model.into()),
    };
    let ok = server.decide(facts(OPEN_KEY, "gpt-4o")).await.unwrap();
    assert!(ok.allowed, "{ok:?}");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.org_id.as_deref(), Some("o1"));
    assert_eq!(ok.key_id.as_deref(), Some("k-open"));

    let unknown = server.decide(facts("sk-tg-nope", "gpt-4o")).await.unwrap();
    assert!(!unknown.allowed);
    assert_eq!(unknown.status, 401);

    let model = server
        .decide(facts(OPEN_KEY, "gpt-5-secret"))
        .await
        .unwrap();
    assert_eq!(model.status, 403, "{model:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_component_fails_at_start() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"not wasm").unwrap();
    let err = EdgeServer::start(EdgeConfig {
        component: Some(file.path().into()),
        ..EdgeConfig::default()
    })
    .await
    .err()
    .expect("start fails");
    assert!(matches!(err, edge_host::EdgeError::Component(_)), "{err}");
}

/// Sequential requests on one keep-alive connection; prints the mean latency
/// (run with `--nocapture`; meaningful in release builds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_request_latency() {
    let file = write_json(&records("http://127.0.0.1:1/v1", &[]));
    let server = start(EdgeConfig {
        records: Some(file.path().into()),
        ..EdgeConfig::default()
    })
    .await;
    let client = client();
    let url = format!("{}/v1/models", server.url());
    for _ in 0..20 {
        client.get(&url).bearer_auth(OPEN_KEY).send().await.unwrap();
    }
    let n = 300;
    let started = Instant::now();
    for _ in 0..n {
        let res = client.get(&url).bearer_auth(OPEN_KEY).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
    }
    let per = started.elapsed() / n;
    println!("GET /v1/models (key + org lookup, policy): {per:?} per request");
    server.shutdown().await;
}

#[tokio::test]
async fn zero_serving_threads_is_refused_by_name() {
    let cfg = EdgeConfig {
        limits: edge_host::EdgeLimits {
            serving_threads: 0,
            ..Default::default()
        },
        ..EdgeConfig::default()
    };
    let Err(e) = EdgeServer::start(cfg).await else {
        panic!("an edge with no serving thread started");
    };
    assert_eq!(
        e.to_string(),
        "invalid limit: serving_threads must be above zero"
    );
}
