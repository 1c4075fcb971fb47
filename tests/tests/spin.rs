//! The gateway component under real Spin: the repository's `spin.toml` and
//! `deploy/` runtime-config files, fed by the real admin service's sinks (a SQLite
//! file in Spin's schema and a Redis server), in front of the mock provider. The
//! edge tests' flows on both of Spin's stores, then several nodes (Spin and Spin,
//! Spin and the Tollgate edge) on one Redis enforcing one limit.
//!
//! Outside CI the tests skip with a message when no Spin binary is found
//! (`SPIN_BIN`, `PATH`, `target/spin`); in CI they fail instead.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use admin_service::sync::sinks::SinkTarget;
use edge_host::{Kv, KvConfig};
use futures::future::join_all;
use policy::{Metric, Scope, kv};
use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::fixtures::PROVIDER_KEY;
use tollgate_e2e::harness::RedisServer;
use tollgate_e2e::openai::run_client_checks;
use tollgate_e2e::spin::{self, SpinApp, SpinStore};
use tollgate_e2e::wall_clock::{MINUTE_MS, clear_of_minute_end, now_ms, secs_left_in_minute};

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];
const DAY_MS: u64 = 86_400_000;

/// The admin service pushing to a SQLite file and to Redis, Spin on each, and
/// the Tollgate edge on the Redis too.
struct Rig {
    cp: ControlPlane,
    redis: RedisServer,
    kv_path: PathBuf,
    on_sqlite: SpinApp,
    on_redis: SpinApp,
}

impl Rig {
    /// `None` (the test skips) when there is no Spin binary outside CI.
    async fn start() -> Option<Rig> {
        let bin = spin::binary()?;
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let kv_path = dir.path().join("edge-kv.db");
        let sinks = vec![
            SinkTarget::Sqlite(kv_path.clone()),
            SinkTarget::Redis(redis.url()),
        ];
        let cp = ControlPlane::start_with(dir, sinks, redis.kv_config()).await;
        let url = redis.url();
        let (on_sqlite, on_redis) = tokio::join!(
            SpinApp::start(&bin, SpinStore::Sqlite(&kv_path), &cp.upstream),
            SpinApp::start(&bin, SpinStore::Redis(&url), &cp.upstream),
        );
        Some(Rig {
            cp,
            redis,
            kv_path,
            on_sqlite,
            on_redis,
        })
    }

    /// Both Spin instances, named by store.
    fn spins(&self) -> [(&'static str, &SpinApp); 2] {
        [("sqlite", &self.on_sqlite), ("redis", &self.on_redis)]
    }

    /// Another Spin on the rig's Redis.
    async fn another_spin_on_redis(&self) -> SpinApp {
        let bin = spin::binary().expect("found before");
        SpinApp::start(&bin, SpinStore::Redis(&self.redis.url()), &self.cp.upstream).await
    }

    /// The store behind the Spin named `store`, opened as the edge opens it.
    async fn store(&self, store: &str) -> Kv {
        let config = match store {
            "sqlite" => KvConfig::Sqlite(self.kv_path.clone()),
            _ => self.redis.kv_config(),
        };
        Kv::connect(&config).await.expect("store opens")
    }

    /// An org with the mock provider and a key of it (extra `key_fields`), synced to every sink.
    async fn org_and_key(&self, name: &str, key_fields: Value) -> (String, String, String) {
        let org = self.cp.org_with_provider(name, MODELS).await;
        let (key_id, key) = self.cp.key(&org, key_fields).await;
        self.cp.synced().await;
        (org, key_id, key)
    }

    async fn org_config(&self, org: &str, config: Value) {
        self.cp
            .admin(
                Method::PATCH,
                &format!("/api/organizations/{org}/config"),
                Some(json!({ "config": config })),
            )
            .await;
        self.cp.synced().await;
    }
}

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("OpenAI error JSON");
    (status, body["error"]["code"].as_str().unwrap_or("").into())
}

/// One answer of a burst: status, `Retry-After`, remaining requests, error code.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    remaining: Option<u64>,
    code: String,
}

/// `n` concurrent chats with `key`, the i-th to `urls[i % urls.len()]`; returns the
/// answers and the minute (index) they were all sent and answered in.
async fn burst(cp: &ControlPlane, urls: &[&str], key: &str, n: usize) -> (Vec<Answer>, u64) {
    clear_of_minute_end().await;
    let started = now_ms();
    let answers = join_all((0..n).map(|i| async move {
        let resp = cp.chat_at(urls[i % urls.len()], key, "gpt-4o-mini").await;
        let num = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
        };
        let (retry_after, remaining) = (num("retry-after"), num("x-ratelimit-remaining-requests"));
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.expect("JSON answer");
        Answer {
            status,
            retry_after,
            remaining,
            code: body["error"]["code"].as_str().unwrap_or("").into(),
        }
    }))
    .await;
    let finished = now_ms();
    assert_eq!(
        started / MINUTE_MS,
        finished / MINUTE_MS,
        "burst within one minute"
    );
    let retry = secs_left_in_minute(finished)..=secs_left_in_minute(started);
    for a in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((a.status, a.code.as_str()), (429, "rate_limit_exceeded"));
        let after = a.retry_after.expect("Retry-After");
        assert!(
            retry.contains(&after),
            "Retry-After {after} not in {retry:?}"
        );
        assert_eq!(a.remaining, Some(0));
    }
    (answers, started / MINUTE_MS)
}

/// Asserts exactly `limit` of `answers` were admitted, each seeing its own count.
fn exactly_admitted(answers: &[Answer], limit: u64) {
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(ok.len() as u64, limit, "admitted");
    let remaining: BTreeSet<u64> = ok.iter().map(|a| a.remaining.unwrap()).collect();
    assert_eq!(
        remaining,
        (0..limit).collect(),
        "each admitted request saw its own count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_chat_streaming_embeddings_and_errors_on_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (org, _, key) = rig.org_and_key("Acme Corp", json!({})).await;
    let (_, narrow) = rig
        .cp
        .key(&org, json!({"allowed_models": ["gpt-4o-mini"]}))
        .await;
    rig.cp.synced().await;

    for (store, spin) in rig.spins() {
        // Chat, a stream, embeddings, the model list, 401 and 403 through the openai package.
        run_client_checks(format!("{}/v1", spin.url()), key.clone(), narrow.clone()).await;
        let unknown = rig
            .cp
            .http
            .post(format!("{}/v1/images/generations", spin.url()))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o", "prompt": "a cat"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(unknown).await,
            (404, "unknown_url".into()),
            "{store}"
        );
        let no_key = rig
            .cp
            .http
            .post(format!("{}/v1/chat/completions", spin.url()))
            .json(&json!({"model": "gpt-4o", "messages": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(no_key).await,
            (401, "invalid_api_key".into()),
            "{store}"
        );
        let (status, code) = error_code(rig.cp.chat_at(spin.url(), &key, "not-served").await).await;
        assert_eq!((status, code.as_str()), (404, "model_not_found"), "{store}");
    }
    // The provider saw the org's credential, never the virtual key.
    let received = rig.cp.upstream.received();
    assert_eq!(
        received.len(),
        6,
        "chat, stream and embeddings on each store"
    );
    for r in &received {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {PROVIDER_KEY}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_with_a_wrong_edge_key_fails_closed_and_sends_nothing() {
    let Some(bin) = spin::binary() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kv_path = dir.path().join("edge-kv.db");
    let cp = ControlPlane::start_with(
        dir,
        vec![SinkTarget::Sqlite(kv_path.clone())],
        KvConfig::Sqlite(kv_path.clone()),
    )
    .await;
    let org = cp.org_with_provider("Spin locked", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    // The right key id with other bytes.
    let wrong = "e-e2e:d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3I=";
    let spin =
        SpinApp::start_with_edge_keys(&bin, SpinStore::Sqlite(&kv_path), &cp.upstream, wrong).await;
    let (status, code) = error_code(cp.chat_at(spin.url(), &key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (503, "policy_unavailable"));
    assert!(cp.upstream.received().is_empty(), "a request went out");
    assert!(
        !spin.log().contains(PROVIDER_KEY),
        "the credential was logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_acl_uses_spins_peer_address_and_a_spoofed_one_is_ignored() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (org, _, elsewhere) = rig
        .org_and_key("Fenced", json!({"ip_allow": ["10.0.0.0/8"]}))
        .await;
    let (_, loopback) = rig
        .cp
        .key(&org, json!({"ip_allow": ["127.0.0.1/32"]}))
        .await;
    let (_, denied) = rig.cp.key(&org, json!({"ip_deny": ["127.0.0.0/8"]})).await;
    rig.cp.synced().await;

    for (store, spin) in rig.spins() {
        assert_eq!(
            rig.cp
                .chat_at(spin.url(), &loopback, "gpt-4o")
                .await
                .status(),
            200,
            "{store}"
        );
        for key in [&elsewhere, &denied] {
            let honest = rig.cp.chat_at(spin.url(), key, "gpt-4o").await;
            assert_eq!(
                error_code(honest).await,
                (403, "ip_not_allowed".into()),
                "{store}"
            );
            // The attacker claims an allowed address in Spin's own header and in a
            // forwarding header the org does not trust: Spin's peer address decides.
            let spoofed = rig
                .cp
                .http
                .post(format!("{}/v1/chat/completions", spin.url()))
                .bearer_auth(key)
                .header("spin-client-addr", "10.1.2.3:4444")
                .header("x-forwarded-for", "10.1.2.3")
                .json(&json!({"model": "gpt-4o", "messages": []}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                error_code(spoofed).await,
                (403, "ip_not_allowed".into()),
                "{store}"
            );
        }
    }
    assert_eq!(rig.cp.upstream.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_admits_exactly_the_limit_with_retry_after_on_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (org, _, key) = rig.org_and_key("Limited", json!({})).await;
    rig.org_config(&org, json!({"rate_limiting": {"enabled": true, "rpm": 5}}))
        .await;

    for (store, spin) in rig.spins() {
        let (answers, window) = burst(&rig.cp, &[spin.url()], &key, 20).await;
        exactly_admitted(&answers, 5);
        let counter = kv::counter_key(Scope::Org, &org, Metric::Rpm, window);
        assert_eq!(
            rig.store(store).await.counter(&counter).await.unwrap(),
            5,
            "{store}"
        );
    }
    // Spin's Redis counters carry no expiry: the admin service's sweep removes them.
    let window = now_ms() / MINUTE_MS;
    let counter = kv::counter_key(Scope::Org, &org, Metric::Rpm, window);
    assert_eq!(rig.redis.command(&format!("TTL {counter}")), ":-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_holds_under_concurrency_on_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    // $2500 and $5000 per 1M tokens: the mock's 10 + 5 tokens cost $0.05 a call.
    rig.cp
        .admin(
            Method::POST,
            "/api/models",
            Some(json!({"name": "gpt-4o-mini", "input_price_per_1m": "2500", "output_price_per_1m": "5000"})),
        )
        .await;
    let (org, _, key) = rig.org_and_key("Budgeted", json!({})).await;
    rig.org_config(
        &org,
        json!({"budgets": {"limit": "0.50", "period": "daily"}}),
    )
    .await;
    let cost = 50_000;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});

    for (store, spin) in rig.spins() {
        let url = format!("{}/v1/chat/completions", spin.url());
        let call = || async {
            let resp = rig
                .cp
                .http
                .post(&url)
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let (status, code) = error_code_or_ok(resp).await;
            (status, code, retry)
        };
        let answers = join_all((0..30).map(|_| call())).await;
        let mut admitted = answers.iter().filter(|a| a.0 == 200).count() as u64;
        assert!(admitted >= 1, "{store}");
        for (status, code, retry) in answers.iter().filter(|a| a.0 != 200) {
            assert_eq!(
                (*status, code.as_str()),
                (429, "budget_exceeded"),
                "{store}"
            );
            // The day resets at midnight UTC.
            let retry = retry.expect("Retry-After");
            assert!((1..=86_400).contains(&retry), "Retry-After {retry}");
        }
        // One at a time, the budget fills until the next reservation cannot fit.
        loop {
            let (status, code, _) = call().await;
            if status == 429 {
                assert_eq!(code, "budget_exceeded");
                break;
            }
            assert_eq!(status, 200, "{store}: {code}");
            admitted += 1;
        }
        // Reservations were settled to the real cost: the store holds exactly what
        // the admitted calls cost, never more than the budget.
        let today = now_ms() - now_ms() % DAY_MS;
        let spent = rig
            .store(store)
            .await
            .counter(&kv::spend_key(Scope::Org, &org, today))
            .await
            .unwrap() as u64;
        assert_eq!(spent, admitted * cost, "{store}");
        assert!(spent <= 500_000, "{store}: spent {spent}");
    }
}

/// Status and error code (empty on success).
async fn error_code_or_ok(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON answer");
    (status, body["error"]["code"].as_str().unwrap_or("").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_drained_exactly_once_from_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let org = rig.cp.org_with_provider("Metered", MODELS).await;
    let mut keys = Vec::new();
    for _ in rig.spins() {
        keys.push(rig.cp.key(&org, json!({})).await);
    }
    rig.cp.synced().await;

    for ((_, spin), (_, key)) in rig.spins().into_iter().zip(&keys) {
        assert_eq!(
            rig.cp.chat_at(spin.url(), key, "gpt-4o").await.status(),
            200
        );
        let stream = rig
            .cp
            .http
            .post(format!("{}/v1/chat/completions", spin.url()))
            .bearer_auth(key)
            .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert!(stream.text().await.unwrap().contains("[DONE]"));
        let emb = rig
            .cp
            .http
            .post(format!("{}/v1/embeddings", spin.url()))
            .bearer_auth(key)
            .json(&json!({"model": "text-embedding-3-small", "input": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(emb.status(), 200);
    }

    let path = format!("/api/organizations/{org}/usage?group_by=key");
    let start = Instant::now();
    while rig.cp.admin(Method::GET, &path, None).await["totals"]["requests"] != 6 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "usage not drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several drain rounds later nothing was counted twice, per store and in all.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let usage = rig.cp.admin(Method::GET, &path, None).await;
    assert_eq!(usage["totals"]["requests"], 6, "{usage}");
    assert_eq!(usage["totals"]["input_tokens"], 60, "{usage}");
    assert_eq!(usage["totals"]["output_tokens"], 20, "{usage}");
    let per_key: BTreeSet<(String, u64)> = usage["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["group"].as_str().unwrap().to_string(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, u64)> = keys.iter().map(|(id, _)| (id.clone(), 3)).collect();
    assert_eq!(per_key, expected);
    // Both spools are empty.
    for (store, _) in rig.spins() {
        let left = rig.store(store).await.list_keys().await.unwrap();
        assert!(
            !left
                .iter()
                .any(|k| k.starts_with(policy::usage::USAGE_PREFIX)),
            "{store}: {left:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_within_a_second_on_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (_, id, key) = rig.org_and_key("Revokers", json!({})).await;
    for (_, spin) in rig.spins() {
        assert_eq!(
            rig.cp.chat_at(spin.url(), &key, "gpt-4o").await.status(),
            200
        );
    }
    let revoked = Instant::now();
    rig.cp
        .admin(Method::DELETE, &format!("/api/keys/{id}"), None)
        .await;
    let waits = join_all(
        rig.spins()
            .map(|(_, spin)| rig.cp.until_status_at(spin.url(), &key, "gpt-4o", 401)),
    )
    .await;
    let took = revoked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "revocation took {took:?} ({waits:?})"
    );
    for (store, spin) in rig.spins() {
        let (status, code) = error_code(rig.cp.chat_at(spin.url(), &key, "gpt-4o").await).await;
        assert_eq!((status, code.as_str()), (401, "key_revoked"), "{store}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_toggled_off_is_refused_until_back_on_on_both_stores() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (org, _, key) = rig.org_and_key("Togglers", json!({})).await;
    let (_, _, bystander) = rig.org_and_key("Bystanders", json!({})).await;
    let path = format!("/api/organizations/{org}/toggle");
    let toggle = || rig.cp.admin(Method::POST, &path, None);
    assert_eq!(toggle().await["active"], json!(false));
    for (store, spin) in rig.spins() {
        rig.cp
            .until_status_at(spin.url(), &key, "gpt-4o", 403)
            .await;
        let (_, code) = error_code(rig.cp.chat_at(spin.url(), &key, "gpt-4o").await).await;
        assert_eq!(code, "organization_inactive", "{store}");
        assert_eq!(
            rig.cp
                .chat_at(spin.url(), &bystander, "gpt-4o")
                .await
                .status(),
            200,
            "another org is untouched ({store})"
        );
    }
    assert_eq!(toggle().await["active"], json!(true));
    for (_, spin) in rig.spins() {
        rig.cp
            .until_status_at(spin.url(), &key, "gpt-4o", 200)
            .await;
    }
}

/// Several nodes on the rig's Redis (`urls`, served in turn) admit exactly `rpm`
/// of a burst of `n`: one counter, shared.
async fn nodes_on_one_redis_admit_exactly(
    rig: &Rig,
    org_name: &str,
    urls: &[&str],
    rpm: u64,
    n: usize,
) {
    let (org, _, key) = rig.org_and_key(org_name, json!({})).await;
    rig.org_config(
        &org,
        json!({"rate_limiting": {"enabled": true, "rpm": rpm}}),
    )
    .await;
    let (answers, window) = burst(&rig.cp, urls, &key, n).await;
    exactly_admitted(&answers, rpm);
    let counter = kv::counter_key(Scope::Org, &org, Metric::Rpm, window);
    let counted = rig.store("redis").await.counter(&counter).await.unwrap();
    assert_eq!(counted as u64, rpm);
    assert_eq!(rig.cp.upstream.received().len() as u64, rpm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_spin_instances_on_one_redis_admit_exactly_the_org_rpm() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let second = rig.another_spin_on_redis().await;
    nodes_on_one_redis_admit_exactly(&rig, "Shared", &[rig.on_redis.url(), second.url()], 20, 80)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_and_the_tollgate_edge_on_one_redis_enforce_one_limit() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let edge = rig.cp.edge.url();
    nodes_on_one_redis_admit_exactly(&rig, "Mixed", &[rig.on_redis.url(), &edge], 15, 60).await;
}
