//! The real gateway component under the real host, in front of a mock provider:
//! every status code the inference path answers with, and streaming.

use std::time::Duration;

use futures::StreamExt;
use policy::{IpAcl, KeyStatus, acl::parse_cidrs};
use serde_json::{Value, json};
use tollgate_e2e::fixtures::{self, PROVIDER_KEY};
use tollgate_e2e::harness::{Gateway, KEY, NARROW_KEY, ORG, config};
use tollgate_e2e::upstream::{COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS};

/// Asserts an OpenAI-shaped error with `status` and `code`; returns the message.
async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = resp.json().await.expect("json error body");
    let err = &body["error"];
    assert_eq!(err["code"], code, "{body}");
    assert!(err["type"].is_string(), "{body}");
    let message = err["message"].as_str().expect("message").to_string();
    assert!(!message.is_empty());
    message
}

/// Seeds one more key of the test org.
async fn add_key(gw: &Gateway, secret: &str, record: policy::KeyRecord) {
    let (k, v) = fixtures::key_entry(secret, &record);
    gw.edge.kv().set(&k, &v).await.unwrap();
}

#[tokio::test]
async fn chat_completion_is_forwarded_with_the_provider_credential_only() {
    let gw = Gateway::start().await;
    let resp = gw.chat(KEY, "gpt-4o").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock upstream."
    );
    assert_eq!(
        body["usage"]["total_tokens"],
        PROMPT_TOKENS + COMPLETION_TOKENS
    );

    let seen = gw.upstream.received();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {PROVIDER_KEY}").as_str())
    );
    assert_eq!(seen[0].body["messages"][0]["content"], "hi");
    // The client's virtual key never travels upstream, in any header.
    for (name, value) in &seen[0].headers {
        assert!(
            !value.to_str().unwrap_or("").contains(KEY),
            "{name} leaks the client key"
        );
    }
}

#[tokio::test]
async fn x_api_key_header_is_accepted() {
    let gw = Gateway::start().await;
    let resp = gw
        .http
        .post(gw.url("chat/completions"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn completions_and_embeddings_are_forwarded() {
    let gw = Gateway::start().await;
    let resp = gw
        .post(
            "completions",
            KEY,
            json!({"model": "gpt-4o", "prompt": "hi"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["choices"][0]["text"],
        "mock text"
    );
    let resp = gw
        .post(
            "embeddings",
            KEY,
            json!({"model": "text-embedding-3-small", "input": "hi"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["data"][0]["embedding"][2],
        0.3
    );
    let paths: Vec<String> = gw.upstream.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/completions", "/v1/embeddings"]);
}

#[tokio::test]
async fn streaming_chunks_arrive_in_order_before_the_upstream_finishes() {
    let gw = Gateway::start().await;
    gw.upstream.hold_streams();
    let resp = gw
        .post(
            "chat/completions",
            KEY,
            json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    // The provider holds the rest of the stream until released: the first chunk
    // can only arrive here if the gateway does not buffer.
    while !seen.contains("part0") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("first chunk arrives while the upstream is still streaming")
            .expect("stream open")
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!seen.contains("part1"), "held part arrived early: {seen}");
    gw.upstream.release();
    while let Some(chunk) = body.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let p0 = seen.find("part0").unwrap();
    let p1 = seen.find("part1").expect("part1");
    let p2 = seen.find("part2").expect("part2");
    assert!(p0 < p1 && p1 < p2, "{seen}");
    assert!(seen.trim_end().ends_with("data: [DONE]"), "{seen}");
    // The gateway asked the provider for usage so it can count tokens.
    let sent = &gw.upstream.received()[0].body;
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");
}

#[tokio::test]
async fn models_lists_only_what_the_key_may_use() {
    let gw = Gateway::start().await;
    let list = |key: &'static str| {
        let gw = &gw;
        async move {
            let resp = gw
                .http
                .get(gw.url("models"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["object"], "list");
            let mut ids: Vec<String> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list(NARROW_KEY).await, ["gpt-4o-mini"]);
    let mut all: Vec<String> = fixtures::SERVED.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(list(KEY).await, all);
    let resp = gw.http.get(gw.url("models")).send().await.unwrap();
    expect_error(resp, 401, "invalid_api_key").await;
}

#[tokio::test]
async fn healthz_needs_no_key() {
    let gw = Gateway::start().await;
    let resp = gw
        .http
        .get(format!("{}/healthz", gw.edge.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let gw = Gateway::start().await;
    let no_key = gw
        .http
        .post(gw.url("chat/completions"))
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .unwrap();
    expect_error(no_key, 401, "invalid_api_key").await;
    expect_error(
        gw.chat("sk-tg-unknown", "gpt-4o").await,
        401,
        "invalid_api_key",
    )
    .await;

    let mut revoked = fixtures::key("key_revoked", ORG, &["gpt-4o"]);
    revoked.status = KeyStatus::Revoked;
    add_key(&gw, "sk-tg-revoked", revoked).await;
    expect_error(gw.chat("sk-tg-revoked", "gpt-4o").await, 401, "key_revoked").await;

    let mut expired = fixtures::key("key_expired", ORG, &["gpt-4o"]);
    expired.expires_at_ms = Some(1_000);
    add_key(&gw, "sk-tg-expired", expired).await;
    expect_error(gw.chat("sk-tg-expired", "gpt-4o").await, 401, "key_expired").await;
    assert!(
        gw.upstream.received().is_empty(),
        "nothing denied reaches the provider"
    );
}

#[tokio::test]
async fn forbidden_requests_get_403() {
    let gw = Gateway::start().await;
    // Model outside the key's list.
    let msg = expect_error(
        gw.chat(NARROW_KEY, "gpt-4o").await,
        403,
        "model_not_allowed",
    )
    .await;
    assert!(msg.contains("gpt-4o"), "{msg}");

    // IP ACL: the test client is 127.0.0.1; a spoofed runtime header changes nothing.
    let mut office = fixtures::key("key_office", ORG, &["gpt-4o"]);
    office.ip_acl = IpAcl {
        allow: parse_cidrs(&["10.0.0.0/8"]).unwrap(),
        deny: vec![],
    };
    add_key(&gw, "sk-tg-office", office).await;
    expect_error(
        gw.chat("sk-tg-office", "gpt-4o").await,
        403,
        "ip_not_allowed",
    )
    .await;
    let spoofed = gw
        .http
        .post(gw.url("chat/completions"))
        .bearer_auth("sk-tg-office")
        .header("spin-client-addr", "10.1.2.3:4444")
        .header("x-forwarded-for", "10.1.2.3")
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .unwrap();
    expect_error(spoofed, 403, "ip_not_allowed").await;
    let mut loopback_denied = fixtures::key("key_lo", ORG, &["gpt-4o"]);
    loopback_denied.ip_acl = IpAcl {
        allow: vec![],
        deny: parse_cidrs(&["127.0.0.0/8"]).unwrap(),
    };
    add_key(&gw, "sk-tg-lo", loopback_denied).await;
    expect_error(gw.chat("sk-tg-lo", "gpt-4o").await, 403, "ip_not_allowed").await;

    // Suspended agent.
    let mut bound = fixtures::key("key_agent", ORG, &["gpt-4o"]);
    bound.agent_id = Some("agent_1".into());
    add_key(&gw, "sk-tg-agent", bound).await;
    let (k, v) = fixtures::agent_entry(&fixtures::agent("agent_1", ORG, false));
    gw.edge.kv().set(&k, &v).await.unwrap();
    expect_error(
        gw.chat("sk-tg-agent", "gpt-4o").await,
        403,
        "agent_inactive",
    )
    .await;

    // Inactive org: every key of it.
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.active = false;
    let (k, v) = fixtures::org_entry(&org);
    gw.edge.kv().set(&k, &v).await.unwrap();
    expect_error(gw.chat(KEY, "gpt-4o").await, 403, "organization_inactive").await;
    assert!(
        gw.upstream.received().is_empty(),
        "nothing denied reaches the provider"
    );
}

#[tokio::test]
async fn missing_or_unreadable_records_fail_closed() {
    let gw = Gateway::start().await;
    // A key whose org record does not exist.
    add_key(
        &gw,
        "sk-tg-orphan",
        fixtures::key("key_orphan", "org_gone", &["gpt-4o"]),
    )
    .await;
    expect_error(
        gw.chat("sk-tg-orphan", "gpt-4o").await,
        403,
        "policy_unavailable",
    )
    .await;
    // A key bound to an agent whose record is missing.
    let mut bound = fixtures::key("key_agentless", ORG, &["gpt-4o"]);
    bound.agent_id = Some("agent_missing".into());
    add_key(&gw, "sk-tg-agentless", bound).await;
    expect_error(
        gw.chat("sk-tg-agentless", "gpt-4o").await,
        403,
        "policy_unavailable",
    )
    .await;
    // A corrupted org record denies every key of the org.
    gw.edge
        .kv()
        .set(&policy::kv::org_key(ORG), b"{\"garbage\":")
        .await
        .unwrap();
    expect_error(gw.chat(KEY, "gpt-4o").await, 403, "policy_unavailable").await;
    // A corrupted key record is not a valid key.
    let (k, _) = fixtures::key_entry("sk-tg-corrupt", &fixtures::key("x", ORG, &[]));
    gw.edge.kv().set(&k, b"not json").await.unwrap();
    let resp = gw.chat("sk-tg-corrupt", "gpt-4o").await;
    assert!(
        matches!(resp.status().as_u16(), 401 | 403),
        "{}",
        resp.status()
    );
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_400_naming_the_problem() {
    let gw = Gateway::start().await;
    let raw = |body: &'static str| {
        gw.http
            .post(gw.url("chat/completions"))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    expect_error(raw("{\"model\": ").await.unwrap(), 400, "invalid_json").await;
    let msg = expect_error(
        raw("{\"messages\": []}").await.unwrap(),
        400,
        "missing_required_parameter",
    )
    .await;
    assert!(msg.contains("model"), "{msg}");
    let msg = expect_error(
        raw("{\"model\": 4}").await.unwrap(),
        400,
        "missing_required_parameter",
    )
    .await;
    assert!(msg.contains("model"), "{msg}");
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let gw = Gateway::start().await;
    let big = format!(
        "{{\"model\":\"gpt-4o\",\"pad\":\"{}\"}}",
        "x".repeat(5 << 20)
    );
    let resp = gw
        .http
        .post(gw.url("chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, "request_too_large").await;
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn oversized_chunked_bodies_get_413_too() {
    // No length declared: the edge finds out while reading, and still answers.
    let gw = Gateway::start().await;
    let head = bytes::Bytes::from_static(br#"{"model":"gpt-4o","pad":""#);
    let chunks = std::iter::once(head)
        .chain(std::iter::repeat_n(
            bytes::Bytes::from(vec![b'x'; 64 << 10]),
            80,
        ))
        .map(Ok::<_, std::io::Error>);
    let resp = gw
        .http
        .post(gw.url("chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, "request_too_large").await;
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_unserved_models_get_404() {
    let gw = Gateway::start().await;
    let resp = gw
        .http
        .get(gw.url("nope"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let mut wide = fixtures::key("key_wide", ORG, &["*"]);
    wide.models = policy::ModelSet::all();
    add_key(&gw, "sk-tg-wide", wide).await;
    expect_error(
        gw.chat("sk-tg-wide", "no-such-model").await,
        404,
        "model_not_found",
    )
    .await;
}

#[tokio::test]
async fn unreachable_or_disallowed_upstreams_get_502() {
    // A provider on a port nobody listens on, which the host allows.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let upstream = MockUpstream::start().await;
    let mut cfg = config(&upstream);
    cfg.allowed_outbound.push(dead.to_string());
    let gw = Gateway::start_with(upstream, cfg).await;
    let (k, v) = fixtures::org_entry(&fixtures::org(ORG, &format!("http://{dead}/v1")));
    gw.edge.kv().set(&k, &v).await.unwrap();
    expect_error(gw.chat(KEY, "gpt-4o").await, 502, "upstream_error").await;

    // A provider the host's outbound allow-list does not name.
    let other = MockUpstream::start().await;
    let (k, v) = fixtures::org_entry(&fixtures::org(ORG, &other.base_url()));
    gw.edge.kv().set(&k, &v).await.unwrap();
    expect_error(gw.chat(KEY, "gpt-4o").await, 502, "upstream_error").await;
    assert!(other.received().is_empty(), "the host blocked the call");
}

#[tokio::test]
async fn slow_upstreams_get_504() {
    let gw = Gateway::start().await;
    expect_error(gw.chat(KEY, "slow-model").await, 504, "upstream_timeout").await;
}

#[tokio::test]
async fn policy_export_decides_without_http() {
    let gw = Gateway::start().await;
    let facts = |key: &str, model: Option<&str>| edge_host::RequestFacts {
        key: edge_host::KeyRef::Secret(key.to_string()),
        client_ip: Some("127.0.0.1".to_string()),
        model: model.map(str::to_string),
    };
    let ok = gw
        .edge
        .decide(facts(NARROW_KEY, Some("gpt-4o-mini")))
        .await
        .unwrap();
    assert!(ok.allowed, "{ok:?}");
    assert_eq!(
        (ok.status, ok.org_id.as_deref(), ok.key_id.as_deref()),
        (200, Some(ORG), Some("key_narrow"))
    );
    let no = gw
        .edge
        .decide(facts(NARROW_KEY, Some("gpt-4o")))
        .await
        .unwrap();
    assert_eq!(
        (no.allowed, no.status, no.code.as_str()),
        (false, 403, "model_not_allowed")
    );
    let unknown = gw.edge.decide(facts("sk-tg-nope", None)).await.unwrap();
    assert_eq!((unknown.allowed, unknown.status), (false, 401));
    assert!(gw.upstream.received().is_empty());
}

#[tokio::test]
async fn records_written_by_another_process_into_the_sqlite_store_apply_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge-kv.db");
    let upstream = MockUpstream::start().await;
    let mut cfg = config(&upstream);
    cfg.kv = edge_host::KvConfig::Sqlite(path.clone());
    let gw = Gateway::start_with(upstream, cfg).await;
    // A second, independent handle on the same file stands in for the admin service.
    let writer = edge_host::Kv::new(edge_host::SqliteKv::open(&path).unwrap());
    let record = fixtures::key("key_late", ORG, &["gpt-4o"]);
    let (k, v) = fixtures::key_entry("sk-tg-late", &record);
    expect_error(
        gw.chat("sk-tg-late", "gpt-4o").await,
        401,
        "invalid_api_key",
    )
    .await;
    writer.set(&k, &v).await.unwrap();
    assert_eq!(gw.chat("sk-tg-late", "gpt-4o").await.status(), 200);
    let mut revoked = record;
    revoked.status = KeyStatus::Revoked;
    let (k, v) = fixtures::key_entry("sk-tg-late", &revoked);
    writer.set(&k, &v).await.unwrap();
    expect_error(gw.chat("sk-tg-late", "gpt-4o").await, 401, "key_revoked").await;
}
