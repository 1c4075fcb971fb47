//! What a hostile tenant or client tries against the edge, and that it fails: the
//! real component under the real host (and the real admin service where config is
//! the attack), in front of the mock provider.

use std::time::{Duration, Instant};

use edge_host::{EdgeConfig, GuestClock};
use policy::{Budget, BudgetPeriod, Estimate, IpAcl, Scope, UsageEvent, kv};
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Gateway, KEY, NARROW_KEY, ORG, RedisServer, config};
use tollgate_e2e::upstream::{COMPLETION_TOKENS, MockUpstream};

const DAY_MS: u64 = 86_400_000;

/// A gateway whose guest clock reads 00:00:05 UTC tomorrow (no period rolls over).
async fn gateway_with(cfg: impl FnOnce(EdgeConfig) -> EdgeConfig) -> (Gateway, GuestClock) {
    let upstream = MockUpstream::start().await;
    let clock = GuestClock::system();
    let now = clock.now_ms();
    clock.set_now_ms(now - now % DAY_MS + DAY_MS + 5_000);
    let cfg = cfg(EdgeConfig {
        clock: clock.clone(),
        ..config(&upstream)
    });
    (Gateway::start_with(upstream, cfg).await, clock)
}

async fn gateway() -> (Gateway, GuestClock) {
    gateway_with(|c| c).await
}

/// The same edge with its counters and spool on a throwaway Redis.
async fn gateway_on(redis: &RedisServer) -> (Gateway, GuestClock) {
    gateway_with(|c| EdgeConfig {
        kv: redis.kv_config(),
        ..c
    })
    .await
}

async fn seed(gw: &Gateway, entries: &[(String, Vec<u8>)]) {
    gw.edge.kv().set_many(entries).await.expect("seed records");
}

fn daily(limit_micros: u64) -> Option<Budget> {
    Some(Budget {
        limit_micros,
        period: BudgetPeriod::Daily,
        utc_offset_minutes: 0,
    })
}

/// Status, error code and `param` of an answer.
async fn error_of(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
        body["error"]["param"].clone(),
    )
}

/// POSTs raw bytes as a chat completion.
async fn post_raw(gw: &Gateway, body: &str) -> reqwest::Response {
    gw.http
        .post(gw.url("chat/completions"))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("edge reachable")
}

async fn spend(gw: &Gateway, clock: &GuestClock) -> u64 {
    gw.settled().await;
    let today = clock.now_ms() - clock.now_ms() % DAY_MS;
    gw.edge
        .kv()
        .counter(&kv::spend_key(Scope::Org, ORG, today))
        .await
        .expect("spend counter") as u64
}

/// The usage events spooled so far.
async fn events(gw: &Gateway) -> Vec<UsageEvent> {
    gw.events().await
}

async fn until_events(gw: &Gateway, n: usize) -> Vec<UsageEvent> {
    let start = Instant::now();
    loop {
        let got = events(gw).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} usage events after 10 s, expected {n}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Item 1: budgets do not skip unpriced models.

#[tokio::test]
async fn an_unpriced_model_under_a_budget_is_refused_not_free() {
    let (gw, clock) = gateway().await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.providers[0].models = vec!["gpt-4o*".parse().unwrap()];
    org.prices = vec![fixtures::price("gpt-4o-mini", 150_000, 600_000)];
    org.budget = daily(10_000);
    let key = fixtures::key("key_full", ORG, &["gpt-4o*"]);
    seed(
        &gw,
        &[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)],
    )
    .await;

    for _ in 0..3 {
        let (status, code, _) = error_of(gw.chat(KEY, "gpt-4o-mini-2024-07-18").await).await;
        assert_eq!((status, code.as_str()), (403, "model_not_priced"));
    }
    assert!(gw.upstream.received().is_empty(), "nothing was forwarded");
    assert_eq!(spend(&gw, &clock).await, 0);
    // The priced model still works under the same budget.
    assert_eq!(gw.chat(KEY, "gpt-4o-mini").await.status(), 200);

    // An org default price (compiled as the last, catch-all price) prices it.
    org.prices.push(fixtures::price("*", 1_000_000, 2_000_000));
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let before = spend(&gw, &clock).await;
    assert_eq!(gw.chat(KEY, "gpt-4o-mini-2024-07-18").await.status(), 200);
    assert!(spend(&gw, &clock).await > before, "the call was charged");

    // Without any budget an unpriced model is not refused.
    org.prices.pop();
    org.budget = None;
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    assert_eq!(gw.chat(KEY, "gpt-4o-mini-2024-07-18").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_warns_of_unpriced_models_and_a_default_price_fixes_them() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Unpriced", &["gpt-4o*"]).await;
    let (_, key) = cp.key(&org, json!({})).await;
    let path = format!("/api/organizations/{org}/config");
    let patched = cp
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"config": {"budgets": {"limit": "0.01", "period": "daily"}}})),
        )
        .await;
    let warnings = patched["warnings"].as_array().expect("warnings array");
    assert_eq!(warnings.len(), 1, "{patched}");
    assert!(
        warnings[0].as_str().unwrap().contains("gpt-4o*"),
        "{warnings:?}"
    );
    assert_eq!(
        cp.admin(Method::GET, &path, None).await["warnings"],
        json!(warnings)
    );
    cp.synced().await;
    let resp = cp.chat(&key, "gpt-4o-mini-2024-07-18").await;
    let (status, code, _) = error_of(resp).await;
    assert_eq!((status, code.as_str()), (403, "model_not_priced"));

    let patched = cp
        .admin(
            Method::PATCH,
            &path,
            Some(json!({"config": {"default_price": {"input_per_1m": "0.15", "output_per_1m": "0.60"}}})),
        )
        .await;
    assert_eq!(patched["warnings"], json!([]));
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o-mini-2024-07-18").await.status(), 200);
}

// Item 2: what a request is charged cannot be chosen by the client.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_pays_what_the_provider_reports() {
    let (gw, clock) = gateway().await;
    client_leaves_mid_stream(&gw, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_pays_what_the_provider_reports_on_redis() {
    let redis = RedisServer::start();
    let (gw, clock) = gateway_on(&redis).await;
    client_leaves_mid_stream(&gw, &clock).await;
}

async fn client_leaves_mid_stream(gw: &Gateway, clock: &GuestClock) {
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    // One micro per token either way: cost = tokens.
    org.prices = vec![fixtures::price("gpt-4o-mini", 1_000_000, 1_000_000)];
    org.budget = daily(1_000_000_000);
    seed(gw, &[fixtures::org_entry(&org)]).await;
    // The provider counts far more prompt tokens than the body's bytes suggest.
    gw.upstream.report_prompt_tokens(5_000);
    gw.upstream.hold_streams();

    let body = json!({"model": "gpt-4o-mini", "stream": true, "max_tokens": 1,
                      "messages": [{"role": "user", "content": "hi"}]});
    let mut resp = gw.post("chat/completions", KEY, body).await;
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.expect("first chunk").expect("a chunk");
    assert!(!first.is_empty());
    drop(resp);
    // Let the host see the client gone before the provider carries on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.upstream.release();

    let events = until_events(gw, 1).await;
    assert_eq!(events[0].input_tokens, 5_000, "{:?}", events[0]);
    assert_eq!(events[0].output_tokens, COMPLETION_TOKENS);
    assert_eq!(spend(gw, clock).await, 5_000 + COMPLETION_TOKENS);
}

#[tokio::test]
async fn n_and_the_org_output_ceiling_are_reserved() {
    let (gw, clock) = gateway().await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.prices = vec![fixtures::price("gpt-4o-mini", 1_000_000, 1_000_000)];
    org.budget = daily(50_000);
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let chat = |extra: Value| {
        let mut body =
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        gw.post("chat/completions", KEY, body)
    };
    // 100 completions of up to 1000 tokens cannot fit a 50 000-token budget.
    let (status, code, _) = error_of(chat(json!({"n": 100, "max_tokens": 1000})).await).await;
    assert_eq!((status, code.as_str()), (429, "budget_exceeded"));
    let (status, code, _) = error_of(chat(json!({"best_of": 100, "max_tokens": 1000})).await).await;
    assert_eq!((status, code.as_str()), (429, "budget_exceeded"));
    assert_eq!(
        chat(json!({"n": 1, "max_tokens": 1000})).await.status(),
        200
    );
    assert_eq!(chat(json!({})).await.status(), 200, "1024 tokens fit");

    // The org reserves 100 000 output tokens for requests that set no cap.
    org.default_max_output_tokens = Some(100_000);
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let (status, code, _) = error_of(chat(json!({})).await).await;
    assert_eq!((status, code.as_str()), (429, "budget_exceeded"));
    assert_eq!(chat(json!({"max_tokens": 10})).await.status(), 200);
    assert_eq!(gw.upstream.received().len(), 3);
    assert!(spend(&gw, &clock).await <= 50_000);
}

#[tokio::test]
async fn a_provider_timeout_after_sending_settles_at_the_reservation() {
    let (gw, clock) = gateway().await;
    provider_times_out_after_sending(&gw, &clock).await;
}

#[tokio::test]
async fn a_provider_timeout_after_sending_settles_at_the_reservation_on_redis() {
    let redis = RedisServer::start();
    let (gw, clock) = gateway_on(&redis).await;
    provider_times_out_after_sending(&gw, &clock).await;
}

async fn provider_times_out_after_sending(gw: &Gateway, clock: &GuestClock) {
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.prices = vec![fixtures::price("slow-model", 1_000_000, 1_000_000)];
    org.budget = daily(1_000_000);
    seed(gw, &[fixtures::org_entry(&org)]).await;
    let body = json!({"model": "slow-model", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "hi"}]});
    let len = serde_json::to_vec(&body).unwrap().len();
    let resp = gw.post("chat/completions", KEY, body).await;
    let (status, code, _) = error_of(resp).await;
    assert_eq!((status, code.as_str()), (504, "upstream_timeout"));
    // The provider got the request and may bill it: charged what was reserved.
    let reserved = Estimate::of_request(len, Some(100), None, 1, true).total();
    assert_eq!(spend(gw, clock).await, reserved);
    let events = until_events(gw, 1).await;
    assert_eq!(events[0].cost_micros, reserved);
}

// Item 3: a streamed request always asks for usage, or is not forwarded.

#[tokio::test]
async fn bodies_that_would_be_forwarded_without_usage_are_refused() {
    let (gw, _) = gateway().await;
    let cases = [
        // Re-encoding fails on a lone surrogate or a number beyond f64.
        (
            r#"{"model":"gpt-4o","stream":true,"stream_options":{},"messages":[{"role":"user","content":"\ud800"}]}"#,
            "invalid_json",
        ),
        (
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},"temperature":1e400,"messages":[]}"#,
            "invalid_json",
        ),
        (
            r#"{"model":"gpt-4o","stream":true,"messages":[],"x":1e400}"#,
            "invalid_json",
        ),
        // A provider may coerce "true"; the gateway would not have asked for usage.
        (
            r#"{"model":"gpt-4o","stream":"true","messages":[]}"#,
            "invalid_parameter",
        ),
        (
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":"false"},"messages":[]}"#,
            "invalid_parameter",
        ),
        (
            r#"{"model":"gpt-4o","stream":true,"stream_options":"yes","messages":[]}"#,
            "invalid_parameter",
        ),
        // Parsers disagree on which duplicate counts.
        (
            r#"{"model":"gpt-4o","stream":false,"messages":[],"stream":true}"#,
            "invalid_parameter",
        ),
    ];
    for (body, want) in cases {
        let (status, code, _) = error_of(post_raw(&gw, body).await).await;
        assert_eq!((status, code.as_str()), (400, want), "{body}");
    }
    assert!(gw.upstream.received().is_empty(), "nothing was forwarded");

    // Every streamed request that goes out asks for usage.
    for body in [
        r#"{"model":"gpt-4o","stream":true,"messages":[]}"#,
        r#"{"model":"gpt-4o","stream":true,"stream_options":null,"messages":[]}"#,
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},"messages":[]}"#,
    ] {
        let resp = post_raw(&gw, body).await;
        assert_eq!(resp.status(), 200, "{body}");
        resp.text().await.unwrap();
    }
    for r in gw.upstream.received() {
        assert_eq!(
            r.body["stream_options"]["include_usage"], true,
            "{}",
            r.body
        );
    }
}

// Item 4: forwarding headers count only from proxies the edge trusts.

async fn ip_gateway(trusted: &[&str]) -> Gateway {
    let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
    let (gw, _) = gateway_with(|c| EdgeConfig {
        trusted_proxies: trusted,
        ..c
    })
    .await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.client_ip_header = Some("x-forwarded-for".into());
    let mut key = fixtures::key("key_full", ORG, &fixtures::SERVED);
    key.ip_acl = IpAcl {
        allow: policy::acl::parse_cidrs(&["203.0.113.0/24"]).unwrap(),
        deny: Vec::new(),
    };
    seed(
        &gw,
        &[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)],
    )
    .await;
    gw
}

async fn status_with_xff(gw: &Gateway, xff: &str) -> (u16, String) {
    let resp = gw
        .http
        .post(gw.url("chat/completions"))
        .bearer_auth(KEY)
        .header("x-forwarded-for", xff)
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .expect("edge reachable");
    let (status, code, _) = error_of(resp).await;
    (status, code)
}

#[tokio::test]
async fn a_direct_client_cannot_claim_an_allowed_address() {
    // The test client connects from 127.0.0.1, which no proxy list names here.
    for trusted in [&[][..], &["10.0.0.0/8"][..]] {
        let gw = ip_gateway(trusted).await;
        let (status, code) = status_with_xff(&gw, "203.0.113.7").await;
        assert_eq!(
            (status, code.as_str()),
            (403, "ip_not_allowed"),
            "{trusted:?}"
        );
    }
}

#[tokio::test]
async fn trusted_hops_are_walked_right_to_left() {
    let gw = ip_gateway(&["127.0.0.1", "198.51.100.0/24"]).await;
    assert_eq!(status_with_xff(&gw, "203.0.113.7").await.0, 200);
    // The proxy at 198.51.100.1 is trusted: the client is the one before it.
    assert_eq!(
        status_with_xff(&gw, "203.0.113.7, 198.51.100.1").await.0,
        200
    );
    // A client prepending an allowed address gains nothing: the right-most
    // untrusted entry is the client.
    let (status, code) = status_with_xff(&gw, "203.0.113.7, 192.0.2.66").await;
    assert_eq!((status, code.as_str()), (403, "ip_not_allowed"));
    let (status, code) = status_with_xff(&gw, "203.0.113.7, garbage").await;
    assert_eq!((status, code.as_str()), (403, "ip_not_allowed"));
}

#[tokio::test]
async fn the_edge_refuses_to_start_with_a_malformed_trusted_proxy() {
    let upstream = MockUpstream::start().await;
    let cfg = EdgeConfig {
        trusted_proxies: vec!["10.0.0.0/33".into()],
        ..config(&upstream)
    };
    assert!(edge_host::EdgeServer::start(cfg).await.is_err());
}

// Item 5: a stored provider key does not follow a changed origin.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_key_is_not_carried_to_a_new_host() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Carry", &["gpt-4o"]).await;
    let (_, key) = cp.key(&org, json!({})).await;
    let elsewhere = MockUpstream::start().await;
    let path = format!("/api/organizations/{org}/config");
    let owner = cp.member(&org, "owner").await.1;
    for (token, url) in [
        (super_token(), elsewhere.base_url()),
        (owner.as_str(), "https://attacker.example/v1".to_string()),
        (
            owner.as_str(),
            cp.upstream.base_url().replacen("http://", "https://", 1),
        ),
    ] {
        let (status, body) = cp
            .api_as(
                token,
                Method::PATCH,
                &path,
                Some(json!({"config": {"providers": [{"name": "mock", "base_url": url, "models": ["gpt-4o"]}]}})),
            )
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(
            body["error"]["field"], "config.providers[0].api_key",
            "{body}"
        );
    }
    // Same scheme, host and port: the key is kept (a path change is fine).
    let same = cp.upstream.base_url().replace("/v1", "/v1/");
    cp.admin(
        Method::PATCH,
        &path,
        Some(json!({"config": {"providers": [{"name": "mock", "base_url": same, "models": ["gpt-4o"]}]}})),
    )
    .await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    assert!(
        elsewhere.received().is_empty(),
        "the other host got nothing"
    );
}

fn super_token() -> &'static str {
    tollgate_e2e::admin::ADMIN_TOKEN
}

// Item 6: egress is per org, and internal hosts need a platform admin.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_admins_cannot_point_providers_at_internal_hosts() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Egress", &["gpt-4o"]).await;
    let path = format!("/api/organizations/{org}/config");
    let owner = cp.member(&org, "owner").await.1;
    for url in [
        cp.upstream.base_url().replace("/v1", "/other"),
        "http://127.0.0.1:9/v1".to_string(),
        "http://169.254.169.254/latest".to_string(),
        "http://10.0.0.1/v1".to_string(),
        "http://[::1]:8080/v1".to_string(),
        "http://[fd00::1]/v1".to_string(),
        "http://localhost:8080/v1".to_string(),
        "http://2130706433/v1".to_string(),
    ] {
        let (status, body) = cp
            .api_as(
                &owner,
                Method::PATCH,
                &path,
                Some(json!({"config": {"providers": [{"name": "inner", "base_url": url, "api_key": "k", "models": ["x"]}]}})),
            )
            .await;
        assert_eq!(status, 403, "{url}: {body}");
        assert_eq!(body["error"]["code"], "platform_admin_required");
        assert_eq!(body["error"]["field"], "config.providers[0].base_url");
    }
    // The platform admin's loopback provider stays while the owner edits the rest.
    let (status, body) = cp
        .api_as(
            &owner,
            Method::PATCH,
            &path,
            Some(json!({"config": {"rate_limiting": {"enabled": true, "rpm": 100}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A public host is the owner's to set.
    let (status, body) = cp
        .api_as(
            &owner,
            Method::PATCH,
            &path,
            Some(json!({"config": {"providers": [{"name": "pub", "base_url": "https://api.example.com/v1", "api_key": "k", "models": ["x"]}]}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    cp.synced().await;
    let rec: policy::OrgRecord = policy::records::decode(
        &cp.edge
            .kv()
            .get(&kv::org_key(&org))
            .await
            .unwrap()
            .expect("org record"),
    )
    .unwrap();
    assert_eq!(rec.allowed_upstreams, vec!["https://api.example.com:443"]);
}

#[tokio::test]
async fn the_edge_calls_only_origins_compiled_into_the_org_record() {
    let (gw, _) = gateway().await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.allowed_upstreams = vec!["https://api.openai.com:443".into()];
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let (status, code, _) = error_of(gw.chat(KEY, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (403, "upstream_not_allowed"));
    org.allowed_upstreams.clear();
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let (status, code, _) = error_of(gw.chat(KEY, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (403, "upstream_not_allowed"));
    assert!(gw.upstream.received().is_empty());
}

// Item 9: spooled strings are bounded.

#[tokio::test]
async fn overlong_spooled_strings_are_refused() {
    let (gw, _) = gateway().await;
    let long = "m".repeat(257);
    let (status, code, param) = error_of(gw.chat(KEY, &long).await).await;
    assert_eq!((status, code.as_str()), (400, "string_above_max_length"));
    assert_eq!(param, "model");
    let body = json!({"model": "gpt-4o", "user": "u".repeat(257), "messages": []});
    let (status, code, param) = error_of(gw.post("chat/completions", KEY, body).await).await;
    assert_eq!((status, code.as_str()), (400, "string_above_max_length"));
    assert_eq!(param, "user");
    assert!(gw.upstream.received().is_empty());
    // 256 bytes pass the length check (and then route like any other name).
    let (status, _, _) = error_of(gw.chat(KEY, &"m".repeat(256)).await).await;
    assert_eq!(status, 403, "not allowed for the key, but not too long");
    let body = json!({"model": "gpt-4o", "user": "u".repeat(256), "messages": []});
    assert_eq!(gw.post("chat/completions", KEY, body).await.status(), 200);
}

#[tokio::test]
async fn a_full_usage_spool_refuses_before_forwarding() {
    let (gw, _) = gateway().await;
    let kv = gw.edge.kv();
    let max = policy::usage::MAX_SPOOLED_EVENTS as i64;
    kv.increment(policy::usage::SPOOL_PENDING_KEY, max)
        .await
        .unwrap();
    let (status, code, _) = error_of(gw.chat(KEY, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (503, "usage_spool_full"));
    assert!(gw.upstream.received().is_empty());
    assert!(events(&gw).await.is_empty());
    // One drained event makes room for one more.
    kv.increment(policy::usage::SPOOL_PENDING_KEY, -1)
        .await
        .unwrap();
    assert_eq!(gw.chat(KEY, "gpt-4o").await.status(), 200);
    gw.settled().await;
    assert_eq!(
        kv.counter(policy::usage::SPOOL_PENDING_KEY).await.unwrap(),
        max
    );
    assert_eq!(events(&gw).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_count_follows_the_admin_drain_on_redis() {
    let redis = tollgate_e2e::harness::RedisServer::start();
    let cp = ControlPlane::start_on_redis(&redis.url()).await;
    let org = cp.org_with_provider("Spool", &["gpt-4o"]).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    for _ in 0..3 {
        assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    }
    // The drainer moves the events into the admin database and gives the room back.
    let start = Instant::now();
    loop {
        let pending = cp
            .edge
            .kv()
            .counter(policy::usage::SPOOL_PENDING_KEY)
            .await
            .unwrap();
        let spooled = cp
            .edge
            .kv()
            .list_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.starts_with(policy::usage::USAGE_PREFIX))
            .count();
        if pending == 0 && spooled == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "spool count {pending}, {spooled} events left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Full on the shared store: refused, as every node sharing it refuses.
    cp.edge
        .kv()
        .increment(
            policy::usage::SPOOL_PENDING_KEY,
            policy::usage::MAX_SPOOLED_EVENTS as i64,
        )
        .await
        .unwrap();
    let (status, code, _) = error_of(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (503, "usage_spool_full"));
}

// Request logs: denials of a resolved key are logged, within a bound of their own.

#[tokio::test]
async fn denials_of_a_known_key_are_logged_unknown_keys_are_not() {
    let (gw, _) = gateway().await;
    let (status, code, _) = error_of(gw.chat(NARROW_KEY, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"));
    let (status, _, _) = error_of(gw.chat("sk-tg-nobody-at-all-0123456789", "gpt-4o").await).await;
    assert_eq!(status, 401);
    assert_eq!(gw.chat(KEY, "gpt-4o").await.status(), 200);
    let mut events = until_events(&gw, 2).await;
    events.sort_by_key(|e| e.denied);
    assert_eq!(events.len(), 2, "the unknown key has no org to log under");
    let (ok, denied) = (&events[0], &events[1]);
    assert!(!ok.denied && ok.code.is_none() && ok.provider.as_deref() == Some("mock"));
    assert!(denied.denied, "{denied:?}");
    assert_eq!(
        (
            denied.key_id.as_str(),
            denied.org_id.as_str(),
            denied.model.as_str()
        ),
        ("key_narrow", ORG, "gpt-4o")
    );
    assert_eq!(
        (denied.status, denied.code.as_deref()),
        (403, Some("model_not_allowed"))
    );
    assert_eq!(
        (
            denied.cost_micros,
            denied.input_tokens,
            denied.output_tokens
        ),
        (0, 0, 0)
    );
    assert_eq!(denied.provider, None);
}

#[tokio::test]
async fn a_flood_of_denials_cannot_fill_the_spool_for_another_org() {
    let (gw, _) = gateway().await;
    let victim_key = "sk-tg-victim-0123456789abcdefghijklmnop";
    let victim = fixtures::org("org_victim", &gw.upstream.base_url());
    seed(
        &gw,
        &[
            fixtures::org_entry(&victim),
            fixtures::key_entry(
                victim_key,
                &fixtures::key("key_victim", "org_victim", &["gpt-4o"]),
            ),
        ],
    )
    .await;
    let kv = gw.edge.kv();
    // The spool is 3 events short of the point where denials stop being logged.
    let start = policy::usage::MAX_PENDING_FOR_DENIALS as i64 - 3;
    kv.increment(policy::usage::SPOOL_PENDING_KEY, start)
        .await
        .unwrap();
    for _ in 0..40 {
        let (status, _, _) = error_of(gw.chat(NARROW_KEY, "gpt-4o").await).await;
        assert_eq!(status, 403);
    }
    gw.settled().await;
    let pending = kv.counter(policy::usage::SPOOL_PENDING_KEY).await.unwrap();
    assert_eq!(pending, start + 3, "denials stop at their bound");
    assert_eq!(
        kv.counter(policy::usage::DENIALS_DROPPED_KEY)
            .await
            .unwrap(),
        37,
        "every denial not logged is counted"
    );
    assert_eq!(events(&gw).await.len(), 3);
    // The other org's requests still have the rest of the spool.
    assert_eq!(gw.chat(victim_key, "gpt-4o").await.status(), 200);
    assert_eq!(events(&gw).await.len(), 4);
}
