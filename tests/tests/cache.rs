//! The response cache end to end: the admin service turns `config.caching` on, the
//! real component answers repeats from the edge store without calling the provider,
//! and usage records the hits as cached at no cost. Every authorisation step still
//! runs before the cache.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::harness::RedisServer;
use tollgate_e2e::openai::run_cache_checks;

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];
const CHAT: &str = "/v1/chat/completions";
const BODY: &str =
    r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#;

/// An org on the mock provider with caching on for `ttl_seconds`.
async fn caching_org(cp: &ControlPlane, name: &str, ttl_seconds: u64) -> String {
    let org = cp.org_with_provider(name, MODELS).await;
    set_caching(
        cp,
        &org,
        json!({"enabled": true, "ttl_seconds": ttl_seconds}),
    )
    .await;
    org
}

async fn set_caching(cp: &ControlPlane, org: &str, caching: Value) {
    cp.admin(
        Method::PATCH,
        &format!("/api/organizations/{org}/config"),
        Some(json!({"config": {"caching": caching}})),
    )
    .await;
}

/// What the edge answered a raw request.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// `x-tollgate-cache`, if sent.
    cache: Option<String>,
    body: Value,
}

/// POSTs `body` byte for byte to `path` with `key` and any extra headers.
async fn post(
    cp: &ControlPlane,
    key: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = cp
        .http
        .post(format!("{}{path}", cp.edge.url()))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("edge reachable");
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-tollgate-cache")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body = resp.json().await.expect("JSON answer");
    Answer {
        status,
        cache,
        body,
    }
}

/// Sends [`CHAT`] `body` with `key` and asserts a 200 with `x-tollgate-cache: want`.
async fn expect_cache(cp: &ControlPlane, key: &str, body: &str, want: Option<&str>) {
    let a = post(cp, key, CHAT, body, &[]).await;
    assert_eq!((a.status, a.cache.as_deref()), (200, want), "{body}");
}

/// Calls of `path` that reached the provider.
fn provider_calls(cp: &ControlPlane, path: &str) -> usize {
    cp.upstream
        .received()
        .iter()
        .filter(|r| r.path == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_gets_hits_and_usage_records_them_cached_at_no_cost() {
    let cp = ControlPlane::start().await;
    cp.price_gpt_4o().await;
    let org = caching_org(&cp, "Cachers", 60).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;

    run_cache_checks(format!("{}/v1", cp.edge.url()), key).await;

    // Chat: one miss, one no-store, two streams; the hit never reached the provider.
    assert_eq!(provider_calls(&cp, CHAT), 4);
    assert_eq!(provider_calls(&cp, "/v1/embeddings"), 1);
    assert_eq!(provider_calls(&cp, "/v1/completions"), 1);
    // 9 requests, 3 of them hits; the 5 gpt-4o calls that reached the provider
    // cost $0.000075 each and the hits nothing.
    let u = cp.usage_once_drained(&org, "?group_by=model", 9).await;
    assert_eq!(u["totals"]["cached_requests"], 3, "{u}");
    assert_eq!(u["totals"]["cost"], "0.000375", "{u}");
    let gpt = u["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "gpt-4o")
        .expect("gpt-4o row");
    // Hits record no tokens: 5 provider calls of 10 + 5 tokens.
    assert_eq!(
        (
            &gpt["requests"],
            &gpt["input_tokens"],
            &gpt["output_tokens"]
        ),
        (&json!(7), &json!(50), &json!(25)),
        "{u}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_same_org_model_and_canonical_body_hit() {
    let cp = ControlPlane::start().await;
    let org = caching_org(&cp, "Exact", 60).await;
    let other_org = caching_org(&cp, "Neighbour", 60).await;
    let (_, key) = cp.key(&org, json!({})).await;
    let (_, neighbour) = cp.key(&other_org, json!({})).await;
    cp.synced().await;

    let first = post(&cp, &key, CHAT, BODY, &[]).await;
    assert_eq!((first.status, first.cache.as_deref()), (200, Some("miss")));
    // Key order and whitespace do not matter.
    let reordered = "{ \"temperature\": 0.5,\n  \"messages\": [ {\"content\": \"hi\", \"role\": \"user\"} ],\n  \"model\": \"gpt-4o\" }";
    let hit = post(&cp, &key, CHAT, reordered, &[]).await;
    assert_eq!((hit.status, hit.cache.as_deref()), (200, Some("hit")));
    assert_eq!(hit.body, first.body);
    assert_eq!(provider_calls(&cp, CHAT), 1);

    // Anything else misses and reaches the provider: another value, another
    // model, a number written differently, another org with the identical body.
    let misses = [
        (&key, BODY.replace("\"hi\"", "\"hello\"")),
        (&key, BODY.replace("gpt-4o", "gpt-4o-mini")),
        (&key, BODY.replace("0.5", "0.50")),
        (&neighbour, BODY.to_string()),
    ];
    for (i, (k, body)) in misses.iter().enumerate() {
        let a = post(&cp, k, CHAT, body, &[]).await;
        assert_eq!(
            (a.status, a.cache.as_deref()),
            (200, Some("miss")),
            "{body}"
        );
        assert_eq!(provider_calls(&cp, CHAT), 2 + i, "{body}");
    }

    // no-store: neither read nor written; no-cache: not read, but written.
    let no_store = post(&cp, &key, CHAT, BODY, &[("cache-control", "no-store")]).await;
    assert_eq!((no_store.status, no_store.cache), (200, None));
    assert_eq!(provider_calls(&cp, CHAT), 6);
    let fresh = BODY.replace("hi", "fresh");
    let a = post(&cp, &key, CHAT, &fresh, &[("cache-control", "no-store")]).await;
    assert_eq!(a.cache, None);
    expect_cache(&cp, &key, &fresh, Some("miss")).await;
    assert_eq!(provider_calls(&cp, CHAT), 8, "no-store wrote nothing");
    let no_cache = post(&cp, &key, CHAT, BODY, &[("cache-control", "no-cache")]).await;
    assert_eq!(no_cache.cache.as_deref(), Some("miss"));
    assert_eq!(provider_calls(&cp, CHAT), 9);
    expect_cache(&cp, &key, BODY, Some("hit")).await;

    // Turning caching off takes effect within a second: no header, provider called.
    set_caching(&cp, &org, json!({"enabled": false})).await;
    let start = Instant::now();
    loop {
        let a = post(&cp, &key, CHAT, BODY, &[]).await;
        if a.cache.is_none() {
            assert_eq!(a.status, 200);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "still cached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_the_ttl() {
    let cp = ControlPlane::start().await;
    let org = caching_org(&cp, "Shortlived", 1).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    expect_cache(&cp, &key, BODY, Some("miss")).await;
    expect_cache(&cp, &key, BODY, Some("hit")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    expect_cache(&cp, &key, BODY, Some("miss")).await;
    // The expired entry was overwritten by the fresh answer.
    expect_cache(&cp, &key, BODY, Some("hit")).await;
    assert_eq!(provider_calls(&cp, CHAT), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_out_of_bounds_is_refused_naming_the_field() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Bounded", MODELS).await;
    for ttl in [0, 604_801] {
        let (status, body) = cp
            .api_as(
                tollgate_e2e::admin::ADMIN_TOKEN,
                Method::PATCH,
                &format!("/api/organizations/{org}/config"),
                Some(json!({"config": {"caching": {"enabled": true, "ttl_seconds": ttl}}})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body.to_string().contains("config.caching.ttl_seconds"),
            "{body}"
        );
    }
    let cfg = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/config"),
            None,
        )
        .await;
    assert!(
        !cfg.to_string().contains("ttl_seconds"),
        "nothing stored: {cfg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_sits_behind_every_check() {
    let cp = ControlPlane::start().await;
    cp.price_gpt_4o().await;
    let org = caching_org(&cp, "Guarded", 60).await;
    let (_, filler) = cp.key(&org, json!({})).await;
    let (_, narrow) = cp
        .key(&org, json!({"allowed_models": ["gpt-4o-mini"]}))
        .await;
    let (_, limited) = cp.key(&org, json!({"rate_limit_rpm": 1})).await;
    let (_, broke) = cp
        .key(
            &org,
            json!({"budget": {"limit": "0.000001", "period": "daily"}}),
        )
        .await;
    let (revoked_id, revoked) = cp.key(&org, json!({})).await;
    cp.synced().await;
    expect_cache(&cp, &filler, BODY, Some("miss")).await;

    let code = |a: &Answer| a.body["error"]["code"].as_str().unwrap_or("").to_string();
    // A key without the model gets 403, not the cached answer.
    let a = post(&cp, &narrow, CHAT, BODY, &[]).await;
    assert_eq!(
        (a.status, code(&a).as_str(), a.cache),
        (403, "model_not_allowed", None)
    );
    // A rate-limited key gets 429 even though the answer is cached: hits count.
    let a = post(&cp, &limited, CHAT, BODY, &[]).await;
    assert_eq!((a.status, a.cache.as_deref()), (200, Some("hit")));
    let a = post(&cp, &limited, CHAT, BODY, &[]).await;
    assert_eq!((a.status, code(&a).as_str()), (429, "rate_limit_exceeded"));
    // A key whose budget cannot cover the request is refused before the cache:
    // hits cost nothing, but a budget that is spent stops the key outright.
    let a = post(&cp, &broke, CHAT, BODY, &[]).await;
    assert_eq!((a.status, code(&a).as_str()), (429, "budget_exceeded"));
    // A revoked key gets 401.
    expect_cache(&cp, &revoked, BODY, Some("hit")).await;
    cp.admin(Method::DELETE, &format!("/api/keys/{revoked_id}"), None)
        .await;
    cp.synced().await;
    let a = post(&cp, &revoked, CHAT, BODY, &[]).await;
    assert_eq!((a.status, code(&a).as_str()), (401, "key_revoked"));
    // No request above reached the provider but the first.
    assert_eq!(provider_calls(&cp, CHAT), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_entries_live_in_the_shared_store() {
    let redis = RedisServer::start();
    let cp = ControlPlane::start_on_redis(&redis.url()).await;
    let org = caching_org(&cp, "Redis cachers", 60).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    expect_cache(&cp, &key, BODY, Some("miss")).await;
    let hit = post(&cp, &key, CHAT, BODY, &[]).await;
    assert_eq!((hit.status, hit.cache.as_deref()), (200, Some("hit")));
    assert_eq!(provider_calls(&cp, CHAT), 1);
    let pattern = format!("cache:{org}:*");
    assert_eq!(
        redis.command(&format!(
            "EVAL \"return #redis.call('KEYS','{pattern}')\" 0"
        )),
        ":1"
    );
}
