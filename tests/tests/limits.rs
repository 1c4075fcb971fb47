//! Rate limits, budgets, token accounting and usage events: the real component,
//! both its builds, under the real host (in-memory store), in front of the mock
//! provider.
//!
//! The guest's clock is set to 00:00:05 UTC of the next day, so no minute window or
//! daily period rolls over while a test runs, and `Retry-After` is predictable.

use std::collections::BTreeSet;

use edge_host::GuestClock;
use futures::future::join_all;
use policy::{Budget, BudgetPeriod, Estimate, Metric, Scope, UsageEvent, kv};
use serde_json::{Value, json};
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Build, Gateway, KEY, ORG, config};
use tollgate_e2e::upstream::{COMPLETION_TOKENS, MockUpstream, PROMPT_TOKENS};

const DAY_MS: u64 = 86_400_000;

/// Every test runs on both builds of the component: the one the edge embeds
/// (counters batched through `tollgate:gateway/counters`) and the portable one
/// `spin.toml` deploys (one `wasi:keyvalue` call per counter), which must enforce
/// the same limits.
macro_rules! on_both_builds {
    ($($name:ident),* $(,)?) => {
        mod edge_build {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Build::Edge).await
            })*
        }
        mod portable_build {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Build::Portable).await
            })*
        }
    };
}

on_both_builds!(
    org_rpm_admits_exactly_the_limit_of_concurrent_requests,
    team_and_key_limits_trip_first_and_the_org_counter_is_shared,
    tpm_counts_streamed_and_plain_usage_alike,
    budget_holds_under_concurrency_and_the_next_period_starts_at_zero,
    unmetered_requests_touch_no_counter_and_every_forwarded_request_is_spooled,
    an_unreadable_counter_refuses_the_request_and_moves_no_other,
);

/// A gateway running `build` whose guest clock reads 00:00:05 UTC tomorrow.
async fn gateway(build: Build) -> (Gateway, GuestClock) {
    let upstream = MockUpstream::start().await;
    let clock = GuestClock::system();
    let now = clock.now_ms();
    clock.set_now_ms(now - now % DAY_MS + DAY_MS + 5_000);
    let cfg = edge_host::EdgeConfig {
        clock: clock.clone(),
        component: build.component(),
        ..config(&upstream)
    };
    (Gateway::start_with(upstream, cfg).await, clock)
}

async fn seed(gw: &Gateway, entries: &[(String, Vec<u8>)]) {
    gw.edge.kv().set_many(entries).await.expect("seed records");
}

/// The value of a counter in the guest's current window of `metric`.
async fn counter(gw: &Gateway, clock: &GuestClock, scope: Scope, id: &str, metric: Metric) -> i64 {
    gw.settled().await;
    let window = metric.window(clock.now_ms()).index;
    gw.edge
        .kv()
        .counter(&kv::counter_key(scope, id, metric, window))
        .await
        .expect("counter readable")
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

/// Status, error code (if any), `Retry-After` and `x-ratelimit-*` of an answer.
struct Answer {
    status: u16,
    code: Option<String>,
    error_type: Option<String>,
    message: String,
    retry_after: Option<u64>,
    remaining_requests: Option<u64>,
    remaining_tokens: Option<u64>,
    limit_requests: Option<u64>,
    reset_requests: Option<String>,
    body: String,
}

async fn answer(resp: reqwest::Response) -> Answer {
    let num = |name: &str| header(&resp, name).map(|v| v.parse::<u64>().expect(name));
    let status = resp.status().as_u16();
    let retry_after = num("retry-after");
    let remaining_requests = num("x-ratelimit-remaining-requests");
    let remaining_tokens = num("x-ratelimit-remaining-tokens");
    let limit_requests = num("x-ratelimit-limit-requests");
    let reset_requests = header(&resp, "x-ratelimit-reset-requests");
    let body = resp.text().await.expect("body");
    let error = serde_json::from_str::<Value>(&body)
        .ok()
        .map(|v| v["error"].clone());
    let field = |f: &str| {
        error
            .as_ref()
            .and_then(|e| e[f].as_str())
            .map(str::to_string)
    };
    Answer {
        status,
        code: field("code"),
        error_type: field("type"),
        message: field("message").unwrap_or_default(),
        retry_after,
        remaining_requests,
        remaining_tokens,
        limit_requests,
        reset_requests,
        body,
    }
}

/// The usage events spooled so far.
async fn events(gw: &Gateway) -> Vec<UsageEvent> {
    gw.events().await
}

async fn org_rpm_admits_exactly_the_limit_of_concurrent_requests(build: Build) {
    let (gw, clock) = gateway(build).await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.limits.rpm = Some(20);
    seed(&gw, &[fixtures::org_entry(&org)]).await;

    let answers =
        join_all((0..200).map(|_| async { answer(gw.chat(KEY, "gpt-4o-mini").await).await })).await;

    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok.len(), limited.len()), (20, 180));
    // Each admitted request saw its own count: remaining 19, 18, …, 0 once each.
    let remaining: BTreeSet<u64> = ok.iter().map(|a| a.remaining_requests.unwrap()).collect();
    assert_eq!(remaining, (0..20).collect());
    for a in &limited {
        assert_eq!(a.code.as_deref(), Some("rate_limit_exceeded"), "{}", a.body);
        assert_eq!(a.error_type.as_deref(), Some("requests"));
        assert!(a.message.contains("org rpm limit of 20"), "{}", a.message);
        // 00:00:05 plus the time the burst took: the minute resets in ≤ 55 s.
        let retry = a.retry_after.expect("Retry-After");
        assert!((30..=55).contains(&retry), "Retry-After {retry}");
        assert_eq!(a.limit_requests, Some(20));
        assert_eq!(a.remaining_requests, Some(0));
        assert!(a.reset_requests.as_deref().unwrap().ends_with('s'));
    }
    // Refused requests gave their count back.
    assert_eq!(counter(&gw, &clock, Scope::Org, ORG, Metric::Rpm).await, 20);
    assert_eq!(gw.upstream.received().len(), 20);

    // The next minute starts from zero.
    clock.advance(std::time::Duration::from_secs(60));
    let next = answer(gw.chat(KEY, "gpt-4o-mini").await).await;
    assert_eq!((next.status, next.remaining_requests), (200, Some(19)));
}

async fn team_and_key_limits_trip_first_and_the_org_counter_is_shared(build: Build) {
    let (gw, clock) = gateway(build).await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.limits.rpm = Some(10);
    let mut team = fixtures::team("team_a", ORG);
    team.limits.rpm = Some(4);
    let mut key_a = fixtures::key("key_a", ORG, &["*"]);
    key_a.team_id = Some("team_a".into());
    key_a.limits.rpm = Some(2);
    let mut key_b = fixtures::key("key_b", ORG, &["*"]);
    key_b.team_id = Some("team_a".into());
    let key_c = fixtures::key("key_c", ORG, &["*"]);
    let (a, b, c) = ("sk-tg-scope-a", "sk-tg-scope-b", "sk-tg-scope-c");
    seed(
        &gw,
        &[
            fixtures::org_entry(&org),
            fixtures::team_entry(&team),
            fixtures::key_entry(a, &key_a),
            fixtures::key_entry(b, &key_b),
            fixtures::key_entry(c, &key_c),
        ],
    )
    .await;

    let mut denied = Vec::new();
    let mut ok = 0;
    for (secret, n) in [(a, 3), (b, 3), (c, 7)] {
        for _ in 0..n {
            let got = answer(gw.chat(secret, "gpt-4o").await).await;
            match got.status {
                200 => ok += 1,
                429 => {
                    let retry = got.retry_after.expect("Retry-After");
                    assert!((30..=55).contains(&retry), "Retry-After {retry}");
                    let scope = got.message.split(" limit of").next().unwrap_or("");
                    denied.push((
                        secret,
                        scope.trim_start_matches("Rate limit reached: ").to_string(),
                    ));
                }
                other => panic!("unexpected {other}: {}", got.body),
            }
        }
    }
    // a: 2 (its key limit); b: 2 (the team's 4 include a's); c: 6 (the org's 10
    // include the team's 4), then each scope's own limit refuses.
    assert_eq!(
        denied,
        [
            (a, "key rpm".to_string()),
            (b, "team rpm".to_string()),
            (c, "org rpm".to_string()),
        ]
    );
    assert_eq!(ok, 10);
    assert_eq!(counter(&gw, &clock, Scope::Org, ORG, Metric::Rpm).await, 10);
    assert_eq!(
        counter(&gw, &clock, Scope::Team, "team_a", Metric::Rpm).await,
        4
    );
    assert_eq!(
        counter(&gw, &clock, Scope::Key, "key_a", Metric::Rpm).await,
        2
    );
    assert_eq!(
        counter(&gw, &clock, Scope::Key, "key_b", Metric::Rpm).await,
        0
    );
}

/// A streamed chat through the gateway; `include_usage` as the client sets it.
async fn stream_chat(gw: &Gateway, include_usage: Option<bool>) -> Answer {
    let mut body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    if let Some(u) = include_usage {
        body["stream_options"] = json!({"include_usage": u});
    }
    answer(gw.post("chat/completions", KEY, body).await).await
}

async fn tpm_counts_streamed_and_plain_usage_alike(build: Build) {
    let (gw, clock) = gateway(build).await;
    let per_call = PROMPT_TOKENS + COMPLETION_TOKENS;
    let mut key = fixtures::key("key_full", ORG, &fixtures::SERVED);
    key.limits.tpm = Some(3 * per_call);
    seed(&gw, &[fixtures::key_entry(KEY, &key)]).await;

    let plain = answer(gw.chat(KEY, "gpt-4o-mini").await).await;
    assert_eq!(
        (plain.status, plain.remaining_tokens),
        (200, Some(3 * per_call))
    );
    // No request limit is configured: no request headers.
    assert_eq!(plain.limit_requests, None);

    // The client did not ask for usage: the gateway asked on its behalf, counted
    // it, and removed the usage-only chunk from what the client sees.
    let streamed = stream_chat(&gw, None).await;
    assert_eq!(
        (streamed.status, streamed.remaining_tokens),
        (200, Some(2 * per_call))
    );
    assert!(streamed.body.contains("part2"), "{}", streamed.body);
    assert!(!streamed.body.contains("\"usage\""), "{}", streamed.body);
    assert!(streamed.body.trim_end().ends_with("data: [DONE]"));
    assert_eq!(
        gw.upstream.received()[1].body["stream_options"]["include_usage"],
        true
    );

    // The client asked for usage itself: it gets the chunk, and it counts once.
    let asked = stream_chat(&gw, Some(true)).await;
    assert_eq!(
        (asked.status, asked.remaining_tokens),
        (200, Some(per_call))
    );
    assert!(asked.body.contains("\"usage\":{"), "{}", asked.body);
    assert_eq!(
        counter(&gw, &clock, Scope::Key, "key_full", Metric::Tpm).await,
        3 * per_call as i64
    );

    // The window is used up: refused before reaching the provider.
    let over = stream_chat(&gw, Some(false)).await;
    assert_eq!(over.status, 429);
    assert_eq!(over.error_type.as_deref(), Some("tokens"));
    assert_eq!(over.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(over.remaining_tokens, Some(0));
    assert!((30..=55).contains(&over.retry_after.unwrap()));
    assert_eq!(gw.upstream.received().len(), 3);
}

async fn budget_holds_under_concurrency_and_the_next_period_starts_at_zero(build: Build) {
    let (gw, clock) = gateway(build).await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    // $2500 and $5000 per 1M tokens: the mock's 10 + 5 tokens cost $0.05 a call.
    org.prices = vec![fixtures::price("gpt-4o-mini", 2_500_000_000, 5_000_000_000)];
    org.budget = Some(Budget {
        limit_micros: 1_000_000,
        period: BudgetPeriod::Daily,
        utc_offset_minutes: 0,
    });
    seed(&gw, &[fixtures::org_entry(&org)]).await;
    let cost = 50_000;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let estimate = Estimate::of_request(
        serde_json::to_vec(&body).unwrap().len(),
        Some(5),
        None,
        1,
        true,
    );
    let reserve = estimate.input_tokens * 2_500 + estimate.output_tokens * 5_000;
    assert!(reserve >= cost, "the estimate covers the real cost");

    let spend_key = |day_start: u64| kv::spend_key(Scope::Org, ORG, day_start);
    let today = clock.now_ms() - clock.now_ms() % DAY_MS;
    let spend = |start: u64| {
        let gw = &gw;
        async move {
            gw.settled().await;
            gw.edge.kv().counter(&spend_key(start)).await.unwrap() as u64
        }
    };

    let burst = join_all(
        (0..100)
            .map(|_| async { answer(gw.post("chat/completions", KEY, body.clone()).await).await }),
    )
    .await;
    let mut admitted = burst.iter().filter(|a| a.status == 200).count() as u64;
    for a in burst.iter().filter(|a| a.status != 200) {
        assert_eq!(a.status, 429, "{}", a.body);
        assert_eq!(a.code.as_deref(), Some("budget_exceeded"));
        assert_eq!(a.error_type.as_deref(), Some("insufficient_quota"));
        // The day resets at midnight: 24 h less the 5 s (and the test's run time).
        let retry = a.retry_after.unwrap();
        assert!((86_300..=86_395).contains(&retry), "Retry-After {retry}");
    }
    // Reservations are settled to the real cost: spend is exactly the calls made,
    // and never more than the budget.
    assert!(admitted >= 1);
    assert_eq!(spend(today).await, admitted * cost);
    assert!(admitted * cost <= 1_000_000);

    // One by one, the budget fills until the next reservation cannot fit.
    loop {
        let a = answer(gw.post("chat/completions", KEY, body.clone()).await).await;
        if a.status == 429 {
            assert_eq!(a.code.as_deref(), Some("budget_exceeded"));
            break;
        }
        assert_eq!(a.status, 200, "{}", a.body);
        admitted += 1;
    }
    let spent = spend(today).await;
    assert_eq!(spent, admitted * cost);
    assert!(
        spent <= 1_000_000 && spent + reserve > 1_000_000,
        "spent {spent}"
    );
    let charged: u64 = events(&gw).await.iter().map(|e| e.cost_micros).sum();
    assert_eq!(charged, spent);

    // Tomorrow is a new period, counted from zero.
    clock.advance(std::time::Duration::from_millis(DAY_MS));
    let next = answer(gw.post("chat/completions", KEY, body.clone()).await).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(spend(today + DAY_MS).await, cost);
    assert_eq!(spend(today).await, spent);
}

async fn unmetered_requests_touch_no_counter_and_every_forwarded_request_is_spooled(build: Build) {
    let (gw, _clock) = gateway(build).await;
    let before = gw.edge.kv().list_keys().await.unwrap();
    let plain = gw.chat(KEY, "gpt-4o").await;
    assert_eq!(plain.status(), 200);
    assert!(
        !plain
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("x-ratelimit")),
        "no limit is configured, so none is reported"
    );
    assert_eq!(stream_chat(&gw, None).await.status, 200);
    let emb = gw
        .post(
            "embeddings",
            KEY,
            json!({"model": "text-embedding-3-small", "input": "hi"}),
        )
        .await;
    assert_eq!(emb.status(), 200);
    // Refused requests are not forwarded: an unknown key yields no event, a known
    // one's denial only a request-log entry.
    assert_eq!(gw.chat("sk-tg-unknown", "gpt-4o").await.status(), 401);
    assert_eq!(gw.chat(KEY, "not-served").await.status(), 403);

    let after = gw.edge.kv().list_keys().await.unwrap();
    assert!(
        !after.iter().any(|k| k.starts_with(kv::COUNTER_PREFIX)),
        "{after:?}"
    );
    let (denied, mut events): (Vec<_>, Vec<_>) =
        events(&gw).await.into_iter().partition(|e| e.denied);
    // Three usage events, one denial and the count of spooled events.
    assert_eq!(after.len(), before.len() + 5);
    assert_eq!(denied.len(), 1);
    assert_eq!(
        (denied[0].model.as_str(), denied[0].cost_micros),
        ("not-served", 0)
    );
    events.sort_by_key(|e| e.model.clone());
    let ids: BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    for e in &events {
        assert_eq!(e.event_id.len(), 32);
        // Arrival first: the drain reads the spool in key order, oldest first.
        assert_eq!(e.event_id[..12], format!("{:012x}", e.at_ms));
        assert!(
            e.event_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            (e.org_id.as_str(), e.key_id.as_str(), e.status),
            (ORG, "key_full", 200)
        );
        assert_eq!((e.team_id.as_deref(), e.agent_id.as_deref()), (None, None));
        assert_eq!(e.input_tokens, PROMPT_TOKENS);
        assert_eq!(e.cost_micros, 0, "no price configured");
        assert!(e.at_ms > 0);
    }
    let shape: Vec<(&str, u64)> = events
        .iter()
        .map(|e| (e.model.as_str(), e.output_tokens))
        .collect();
    assert_eq!(
        shape,
        [
            ("gpt-4o", COMPLETION_TOKENS),
            ("gpt-4o-mini", COMPLETION_TOKENS),
            ("text-embedding-3-small", 0),
        ]
    );
}

async fn an_unreadable_counter_refuses_the_request_and_moves_no_other(build: Build) {
    let (gw, clock) = gateway(build).await;
    let mut org = fixtures::org(ORG, &gw.upstream.base_url());
    org.limits.rpm = Some(10);
    org.limits.rpd = Some(100);
    let mut key = fixtures::key("key_full", ORG, &["*"]);
    key.limits.rpm = Some(10);
    seed(
        &gw,
        &[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)],
    )
    .await;
    // The org's minute counter (moved after the key's) holds text, as a bad manual
    // edit or another writer might leave it.
    let window = Metric::Rpm.window(clock.now_ms()).index;
    let broken = kv::counter_key(Scope::Org, ORG, Metric::Rpm, window);
    gw.edge.kv().set(&broken, b"garbage").await.unwrap();

    for _ in 0..3 {
        let refused = answer(gw.chat(KEY, "gpt-4o-mini").await).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert_eq!(refused.code.as_deref(), Some("policy_unavailable"));
    }
    assert!(gw.upstream.received().is_empty(), "fails closed");
    // The key's counter, moved before the broken one, was given back; the one
    // after it was never kept.
    assert_eq!(
        counter(&gw, &clock, Scope::Key, "key_full", Metric::Rpm).await,
        0
    );
    assert_eq!(counter(&gw, &clock, Scope::Org, ORG, Metric::Rpd).await, 0);

    // Repaired, the next request goes through and counts once everywhere.
    gw.edge.kv().delete(&broken).await.unwrap();
    assert_eq!(answer(gw.chat(KEY, "gpt-4o-mini").await).await.status, 200);
    for (scope, id, metric) in [
        (Scope::Key, "key_full", Metric::Rpm),
        (Scope::Org, ORG, Metric::Rpm),
        (Scope::Org, ORG, Metric::Rpd),
    ] {
        assert_eq!(
            counter(&gw, &clock, scope, id, metric).await,
            1,
            "{scope:?} {metric:?}"
        );
    }
}
