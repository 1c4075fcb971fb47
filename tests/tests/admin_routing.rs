//! Routing configured through the admin API reaches the real edge: a catalog route
//! group the org grants is callable by name, failover and weights act, and routing
//! settings nothing would act on are refused with 422.

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::{ADMIN_TOKEN, ControlPlane};
use tollgate_e2e::fixtures::PROVIDER_KEY;

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];

async fn patch_config(cp: &ControlPlane, org: &str, config: Value) -> (u16, Value) {
    cp.api_as(
        ADMIN_TOKEN,
        Method::PATCH,
        &format!("/api/organizations/{org}/config"),
        Some(json!({ "config": config })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_route_group_fails_over_to_a_working_provider() {
    let cp = ControlPlane::start().await;
    cp.admin(
        Method::POST,
        "/api/route-groups",
        Some(json!({"name": "fast", "models": ["gpt-4o-mini", "gpt-4o*"]})),
    )
    .await;
    let org = cp.org_with_provider("Routers", MODELS).await;
    // A first provider nothing answers at (a closed port), then the mock.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, body) = patch_config(
        &cp,
        &org,
        json!({
            "providers": [
                {"name": "down", "base_url": format!("http://{closed}/v1"), "models": MODELS},
                {"name": "mock", "base_url": cp.upstream.base_url(), "api_key": PROVIDER_KEY, "models": MODELS},
            ],
            "routing": {"max_attempts": 2, "cooldown_failures": 3, "cooldown_seconds": 60},
            "access": {"route_groups": ["fast"], "models": ["text-embedding-3-small"]},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["routing"]["max_attempts"], 2);
    let (_, key) = cp.key(&org, json!({})).await;
    let (_, embed_only) = cp
        .key(&org, json!({"allowed_models": ["text-embedding-3-small"]}))
        .await;
    cp.synced().await;

    let r = cp.chat(&key, "fast").await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let received = cp.upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body["model"], "gpt-4o-mini");
    // A member by its own name is callable too; the group is not for a key that
    // may call none of its members.
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    assert_eq!(cp.chat(&embed_only, "fast").await.status(), 403);

    // Another org that does not grant the group: to its keys `fast` is just an
    // unknown model name, which no provider of theirs serves.
    let other = cp.org_with_provider("Others", MODELS).await;
    let (_, other_key) = cp.key(&other, json!({})).await;
    cp.synced().await;
    let before = cp.upstream.received().len();
    assert_eq!(cp.chat(&other_key, "fast").await.status(), 404);
    assert_eq!(
        cp.upstream.received().len(),
        before,
        "nothing was forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_settings_nothing_acts_on_are_refused() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Strict", MODELS).await;
    let provider = |weight: Value| json!([{"name": "mock", "base_url": cp.upstream.base_url(), "models": MODELS, "weight": weight}]);
    for (config, field) in [
        (
            json!({"providers": provider(json!(3))}),
            "config.providers[0].weight",
        ),
        (
            json!({"providers": provider(json!(0)), "routing": {"strategy": "weighted"}}),
            "config.providers[0].weight",
        ),
        (
            json!({"routing": {"max_attempts": 2}}),
            "config.routing.max_attempts",
        ),
        (
            json!({"routing": {"cooldown_failures": 3}}),
            "config.routing.cooldown_seconds",
        ),
        (json!({"routing": {"retries": 3}}), "config.routing.retries"),
        (
            json!({"routing": {"strategy": "round_robin"}}),
            "config.routing.strategy",
        ),
    ] {
        let (status, body) = patch_config(&cp, &org, config.clone()).await;
        assert_eq!(status, 422, "{config}: {body}");
        let text = body.to_string();
        assert!(text.contains(field), "{config}: {body}");
    }
    // Weighted with a weight is fine.
    let (status, body) = patch_config(
        &cp,
        &org,
        json!({"providers": provider(json!(3)), "routing": {"strategy": "weighted"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["providers"][0]["weight"], 3);
}
