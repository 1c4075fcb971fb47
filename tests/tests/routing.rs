//! Routing at the real edge with two mock providers: failover before the first
//! byte (5xx, 429, timeout, refused connection, streams), `max_attempts`, provider
//! cooldown, weighted spread, and route groups called by name.

use std::time::Duration;

use edge_host::{EdgeServer, KvConfig};
use futures::StreamExt;
use policy::{Budget, BudgetPeriod, Cooldown, ProviderRoute, RouteGroup, Routing, Strategy};
use serde_json::{Value, json};
use tollgate_e2e::fixtures;
use tollgate_e2e::harness::{Gateway, KEY, NARROW_KEY, ORG, RedisServer, config_for};
use tollgate_e2e::openai::run_python;
use tollgate_e2e::upstream::MockUpstream;

/// A provider of [`ORG`] named `name` at `base_url` serving every test model, its
/// credential sealed as the admin service seals it.
fn provider(name: &str, base_url: &str) -> ProviderRoute {
    ProviderRoute {
        name: name.into(),
        base_url: base_url.into(),
        api_key: Some(fixtures::sealed_provider_key(ORG, name)),
        models: fixtures::SERVED
            .iter()
            .map(|m| m.parse().unwrap())
            .collect(),
        weight: None,
    }
}

/// The edge in front of providers `a` (the harness's upstream) and `b`, the org
/// routing with `routing` and granting the route group `fast`
/// (`gpt-4o-mini`, then `gpt-4o`); [`KEY`] may call the group.
struct TwoProviders {
    gw: Gateway,
    b: MockUpstream,
}

impl TwoProviders {
    async fn start(routing: Routing) -> TwoProviders {
        TwoProviders::start_on(KvConfig::Memory, routing).await
    }

    /// With the edge's store on `kv`.
    async fn start_on(kv: KvConfig, routing: Routing) -> TwoProviders {
        let a = MockUpstream::start().await;
        let b = MockUpstream::start().await;
        TwoProviders::start_at(a, b, None, kv, routing).await
    }

    /// With `a_url` as provider a's base URL instead of the mock's.
    async fn start_at(
        a: MockUpstream,
        b: MockUpstream,
        a_url: Option<String>,
        kv: KvConfig,
        routing: Routing,
    ) -> TwoProviders {
        let mut cfg = config_for(&[&a, &b]);
        cfg.kv = kv;
        let a_url = a_url.unwrap_or_else(|| a.base_url());
        if let Some(origin) = policy::upstream::origin(&a_url) {
            cfg.allowed_outbound
                .push(origin.trim_start_matches("http://").to_string());
        }
        let gw = Gateway::start_with(a, cfg).await;
        let t = TwoProviders { gw, b };
        t.set_org(a_url, routing, |_| {}).await;
        t
    }

    /// Writes the org record (and [`KEY`]'s, calling `fast`), then `edit`s the org.
    async fn set_org(
        &self,
        a_url: String,
        routing: Routing,
        edit: impl FnOnce(&mut policy::OrgRecord),
    ) {
        let mut org = fixtures::org(ORG, &a_url);
        org.providers = vec![provider("a", &a_url), provider("b", &self.b.base_url())];
        org.allowed_upstreams = [&a_url, &self.b.base_url()]
            .iter()
            .filter_map(|u| policy::upstream::origin(u))
            .collect();
        org.routing = Routing {
            groups: vec![RouteGroup {
                name: "fast".into(),
                models: vec!["gpt-4o-mini".into(), "gpt-4o".into()],
            }],
            ..routing
        };
        edit(&mut org);
        let mut key = fixtures::key("key_full", ORG, &fixtures::SERVED);
        key.route_groups = vec!["fast".into()];
        self.gw
            .edge
            .kv()
            .set_many(&[fixtures::org_entry(&org), fixtures::key_entry(KEY, &key)])
            .await
            .unwrap();
    }

    fn a(&self) -> &MockUpstream {
        &self.gw.upstream
    }

    /// The providers of the spooled events, in no particular order.
    async fn served_by(&self) -> Vec<String> {
        self.gw
            .events()
            .await
            .into_iter()
            .map(|e| e.provider.unwrap_or_default())
            .collect()
    }
}

fn cooldown(failures: u32, seconds: u32) -> Routing {
    Routing {
        cooldown: Some(Cooldown { failures, seconds }),
        ..Routing::default()
    }
}

#[tokio::test]
async fn a_provider_answering_5xx_or_429_fails_over_to_the_next() {
    let t = TwoProviders::start(Routing::default()).await;
    for (i, status) in [500, 503, 429].into_iter().enumerate() {
        t.a().fail_with(Some(status));
        let r = t.gw.chat(KEY, "gpt-4o").await;
        assert_eq!(r.status(), 200, "after a {status}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Hello from the mock upstream."
        );
        assert_eq!(t.a().received().len(), i + 1, "a was tried first");
        assert_eq!(t.b.received().len(), i + 1, "b served");
    }
    let events = t.gw.events().await;
    assert_eq!(events.len(), 3, "one event per request, not per attempt");
    for e in &events {
        assert_eq!((e.provider.as_deref(), e.status), (Some("b"), 200));
        assert_eq!(e.model, "gpt-4o");
        assert!(e.input_tokens > 0, "b's usage is charged");
    }
    // Healthy again: a serves and b is not called.
    t.a().fail_with(None);
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    assert_eq!((t.a().received().len(), t.b.received().len()), (4, 3));
}

#[tokio::test]
async fn a_client_error_is_relayed_without_failover() {
    let t = TwoProviders::start(Routing::default()).await;
    for status in [400, 401, 404] {
        t.a().fail_with(Some(status));
        assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), status);
    }
    assert!(t.b.received().is_empty(), "a 4xx is the client's answer");
    assert_eq!(t.served_by().await, ["a", "a", "a"]);
}

#[tokio::test]
async fn a_timed_out_provider_fails_over_to_the_next() {
    let t = TwoProviders::start(Routing::default()).await;
    t.a().stall(true);
    let r = t.gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!((t.a().received().len(), t.b.received().len()), (1, 1));
    assert_eq!(t.served_by().await, ["b"]);
}

#[tokio::test]
async fn a_refused_connection_fails_over_to_the_next() {
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = MockUpstream::start().await;
    let b = MockUpstream::start().await;
    let t = TwoProviders::start_at(
        a,
        b,
        Some(format!("http://{closed}/v1")),
        KvConfig::Memory,
        Routing::default(),
    )
    .await;
    let r = t.gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    assert_eq!(t.b.received().len(), 1);
    let events = t.gw.events().await;
    assert_eq!(events[0].provider.as_deref(), Some("b"));
}

#[tokio::test]
async fn max_attempts_one_means_no_failover() {
    let t = TwoProviders::start(Routing {
        max_attempts: Some(1),
        ..Routing::default()
    })
    .await;
    t.a().fail_with(Some(500));
    let r = t.gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 500, "a's answer is the client's");
    assert!(t.b.received().is_empty());
    let events = t.gw.events().await;
    assert_eq!(
        (events[0].provider.as_deref(), events[0].status),
        (Some("a"), 500)
    );
    // A 5xx the provider answered in full without usage is not billed.
    assert_eq!(events[0].cost_micros, 0);
}

#[tokio::test]
async fn a_stream_fails_over_when_the_first_provider_fails_before_its_first_byte() {
    let t = TwoProviders::start(Routing::default()).await;
    t.a().fail_with(Some(502));
    let r = t
        .gw
        .post(
            "chat/completions",
            KEY,
            json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(
        text.contains("part0") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    // Each provider got the same body, usage requested for the gateway.
    let (sent_a, sent_b) = (&t.a().received()[0].body, &t.b.received()[0].body);
    assert_eq!(sent_a, sent_b);
    assert_eq!(sent_b["stream_options"]["include_usage"], true);
    let events = t.gw.events().await;
    assert_eq!(events[0].provider.as_deref(), Some("b"));
    assert!(events[0].output_tokens > 0, "b's streamed usage is read");
}

#[tokio::test]
async fn a_provider_failing_repeatedly_cools_down_and_then_comes_back() {
    let t = TwoProviders::start(cooldown(2, 1)).await;
    t.a().fail_with(Some(500));
    for _ in 0..2 {
        assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    }
    assert_eq!(t.a().received().len(), 2, "two failures start the cooldown");
    // Cooling down: a receives nothing, b serves at once.
    for _ in 0..5 {
        assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    }
    assert_eq!(
        t.a().received().len(),
        2,
        "a was skipped while cooling down"
    );
    assert_eq!(t.b.received().len(), 7);
    // The state is in the shared store, where every edge node reads it.
    let state = t.gw.edge.kv().get("cool:org_test:a").await.unwrap();
    assert!(state.is_some_and(|s| s.starts_with(b"0 ")));

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    t.a().fail_with(None);
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    assert_eq!(
        t.a().received().len(),
        3,
        "a is tried again after the cooldown"
    );
    assert_eq!(t.b.received().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_one_edge_node_starts_holds_on_every_node_of_the_store() {
    let redis = RedisServer::start();
    let t = TwoProviders::start_on(redis.kv_config(), cooldown(1, 60)).await;
    let other = EdgeServer::start(edge_host::EdgeConfig {
        kv: redis.kv_config(),
        ..config_for(&[t.a(), &t.b])
    })
    .await
    .expect("second edge starts");
    t.a().fail_with(Some(500));
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    assert_eq!(t.a().received().len(), 1, "one failure starts the cooldown");
    for _ in 0..3 {
        let r =
            t.gw.http
                .post(format!("{}/v1/chat/completions", other.url()))
                .bearer_auth(KEY)
                .json(&json!({"model": "gpt-4o", "messages": []}))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(t.a().received().len(), 1, "the other node skipped a too");
    assert_eq!(t.b.received().len(), 4);
}

#[tokio::test]
async fn a_success_ends_a_failure_streak() {
    let t = TwoProviders::start(cooldown(2, 60)).await;
    t.a().fail_with(Some(500));
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    t.a().fail_with(None);
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    t.a().fail_with(Some(500));
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    // Failures 1 and 3 were not consecutive: no cooldown, a is still tried.
    t.a().fail_with(None);
    assert_eq!(t.gw.chat(KEY, "gpt-4o").await.status(), 200);
    assert_eq!((t.a().received().len(), t.b.received().len()), (4, 2));
}

#[tokio::test]
async fn every_provider_cooling_down_is_a_503_with_retry_after() {
    let t = TwoProviders::start(cooldown(1, 30)).await;
    t.a().fail_with(Some(500));
    t.b.fail_with(Some(500));
    let r = t.gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 500, "the last provider's answer");
    let r = t.gw.chat(KEY, "gpt-4o").await;
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "providers_cooling_down");
    assert_eq!((t.a().received().len(), t.b.received().len()), (1, 1));
}

#[tokio::test]
async fn weighted_routing_spreads_by_weight() {
    let a = MockUpstream::start().await;
    let b = MockUpstream::start().await;
    let a_url = a.base_url();
    let t = TwoProviders::start_at(a, b, None, KvConfig::Memory, Routing::default()).await;
    t.set_org(
        a_url,
        Routing {
            strategy: Strategy::Weighted,
            ..Routing::default()
        },
        |org| {
            org.providers[0].weight = Some(3);
            org.providers[1].weight = Some(1);
        },
    )
    .await;
    for _ in 0..400 {
        assert_eq!(t.gw.chat(KEY, "gpt-4o-mini").await.status(), 200);
    }
    let a = t.a().received().len();
    assert_eq!(a + t.b.received().len(), 400, "one call per request");
    // Expected 300 (σ ≈ 8.7): a generous band, never a coin flip.
    assert!((250..=350).contains(&a), "a served {a} of 400");
    let served = t.served_by().await;
    assert_eq!(served.iter().filter(|p| *p == "a").count(), a);
}

#[tokio::test]
async fn a_route_group_routes_to_a_member_the_key_may_call() {
    let t = TwoProviders::start(Routing::default()).await;
    let r = t.gw.chat(KEY, "fast").await;
    assert_eq!(r.status(), 200);
    let sent = &t.a().received()[0].body;
    assert_eq!(sent["model"], "gpt-4o-mini", "the first member, by name");
    assert_eq!(sent["messages"][0]["content"], "hi");
    let e = &t.gw.events().await[0];
    assert_eq!(e.model, "gpt-4o-mini");
    assert_eq!(e.route_group.as_deref(), Some("fast"));
    assert_eq!(e.provider.as_deref(), Some("a"));

    // A key that may call only `gpt-4o` of the group gets `gpt-4o`.
    let mut only_4o = fixtures::key("key_4o", ORG, &["gpt-4o"]);
    only_4o.route_groups = vec!["fast".into()];
    let secret = "sk-tg-test-only-4o-0123456789abcdefghijklm";
    let (k, v) = fixtures::key_entry(secret, &only_4o);
    t.gw.edge.kv().set(&k, &v).await.unwrap();
    assert_eq!(t.gw.chat(secret, "fast").await.status(), 200);
    assert_eq!(t.a().received()[1].body["model"], "gpt-4o");

    // Failover within the group renames the member for the next provider too.
    t.a().fail_with(Some(500));
    assert_eq!(t.gw.chat(KEY, "fast").await.status(), 200);
    assert_eq!(t.b.received()[0].body["model"], "gpt-4o-mini");

    // The group is listed for the key that may call it.
    let models: Value =
        t.gw.http
            .get(t.gw.url("models"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let fast = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "fast")
        .expect("fast is listed");
    assert_eq!(fast["owned_by"], "route-group");
}

#[tokio::test]
async fn a_route_group_under_a_budget_skips_unpriced_members_and_charges_the_served_one() {
    let t = TwoProviders::start(Routing::default()).await;
    t.set_org(t.a().base_url(), Routing::default(), |org| {
        org.prices = vec![fixtures::price("gpt-4o", 2_000_000, 8_000_000)];
        org.budget = Some(Budget {
            limit_micros: 1_000_000,
            period: BudgetPeriod::Daily,
            utc_offset_minutes: 0,
        });
    })
    .await;
    assert_eq!(t.gw.chat(KEY, "fast").await.status(), 200);
    assert_eq!(t.a().received()[0].body["model"], "gpt-4o");
    let e = &t.gw.events().await[0];
    assert_eq!(e.model, "gpt-4o");
    // 10 prompt tokens at 2 and 5 completion tokens at 8 micro-units each.
    assert_eq!(e.cost_micros, 60);

    // No member priced: refused before any provider call.
    t.set_org(t.a().base_url(), Routing::default(), |org| {
        org.prices.clear();
        org.budget = Some(Budget {
            limit_micros: 1_000_000,
            period: BudgetPeriod::Daily,
            utc_offset_minutes: 0,
        });
    })
    .await;
    let r = t.gw.chat(KEY, "fast").await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_priced");
    assert_eq!(t.a().received().len(), 1);
}

#[tokio::test]
async fn attackers_cannot_call_a_group_they_were_not_given_nor_pick_the_provider() {
    let t = TwoProviders::start(Routing::default()).await;
    // The harness's narrow key was compiled without the group: not callable.
    assert_eq!(t.gw.chat(NARROW_KEY, "fast").await.status(), 403);
    // A key of the org that may call no member of the group.
    let embed_only = fixtures::key("key_embed", ORG, &["text-embedding-3-small"]);
    let secret = "sk-tg-test-embed-only-0123456789abcdefghij";
    let (k, v) = fixtures::key_entry(secret, &embed_only);
    t.gw.edge.kv().set(&k, &v).await.unwrap();
    let r = t.gw.chat(secret, "fast").await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed");
    // A group name the org does not grant is nobody's, whatever a key record lists.
    let mut forged = embed_only.clone();
    forged.route_groups = vec!["premium".into()];
    let (k, v) = fixtures::key_entry(secret, &forged);
    t.gw.edge.kv().set(&k, &v).await.unwrap();
    assert_eq!(t.gw.chat(secret, "premium").await.status(), 403);

    // Another org that does not grant `fast`: its key naming it gets nothing.
    let mut other = fixtures::org("org_other", &t.a().base_url());
    other.routing = Routing::default();
    let mut other_key = fixtures::key("key_other", "org_other", &fixtures::SERVED);
    other_key.route_groups = vec!["fast".into()];
    let other_secret = "sk-tg-test-other-org-0123456789abcdefghij";
    t.gw.edge
        .kv()
        .set_many(&[
            fixtures::org_entry(&other),
            fixtures::key_entry(other_secret, &other_key),
        ])
        .await
        .unwrap();
    let r = t.gw.chat(other_secret, "fast").await;
    assert_eq!(r.status(), 403);

    // The client cannot choose the provider: no header or model prefix picks b.
    let before = t.b.received().len();
    let r =
        t.gw.http
            .post(t.gw.url("chat/completions"))
            .bearer_auth(KEY)
            .header("x-tollgate-provider", "b")
            .header("x-provider", "b")
            .json(&json!({"model": "gpt-4o", "provider": "b", "messages": []}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        t.b.received().len(),
        before,
        "a, first in the org's order, served"
    );
    assert_eq!(t.gw.chat(KEY, "b/gpt-4o").await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_client_calls_a_route_group_through_a_failing_provider() {
    let t = TwoProviders::start(Routing::default()).await;
    t.a().fail_with(Some(503));
    let out = run_python(
        "routing_client.py",
        &[
            ("TOLLGATE_BASE_URL", format!("{}/v1", t.gw.edge.url())),
            ("TOLLGATE_KEY", KEY.to_string()),
        ],
    )
    .await;
    assert!(out.contains("3 passed, 0 failed"), "{out}");
    let served = t.served_by().await;
    assert_eq!(served, ["b", "b"], "both calls served by b");
    for e in t.gw.events().await {
        assert_eq!(
            (e.model.as_str(), e.route_group.as_deref()),
            ("gpt-4o-mini", Some("fast"))
        );
    }
}
