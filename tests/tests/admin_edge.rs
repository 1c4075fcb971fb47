//! The admin API drives the real edge: objects created, changed and revoked through
//! the API take effect in the real component served from the admin service's sink.

use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::fixtures::PROVIDER_KEY;
use tollgate_e2e::harness::RedisServer;
use tollgate_e2e::openai::{chat_outcomes, run_client_checks};

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"];

async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("OpenAI error JSON");
    (status, body["error"]["code"].as_str().unwrap_or("").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_created_through_the_api_serve_the_openai_client() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Acme Corp", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    let (_, narrow) = cp
        .key(&org, json!({"allowed_models": ["gpt-4o-mini"]}))
        .await;
    assert!(key.starts_with("sk-tg-"), "{key}");
    cp.synced().await;

    run_client_checks(format!("{}/v1", cp.edge.url()), key.clone(), narrow).await;

    // The provider saw the org's credential, never the virtual key.
    let received = cp.upstream.received();
    assert!(!received.is_empty());
    for r in &received {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {PROVIDER_KEY}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_within_a_second() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Revokers", MODELS).await;
    let (id, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    // Served twice: the edge keeps the key's and the org's records across requests.
    for _ in 0..2 {
        assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    }

    let revoked_at = std::time::Instant::now();
    cp.admin(Method::DELETE, &format!("/api/keys/{id}"), None)
        .await;
    cp.synced().await;
    // Once the push is acknowledged, the very next request reads the key afresh.
    let (status, code) = error_code(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (401, "key_revoked"));
    let took = revoked_at.elapsed();
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_revokes_their_keys_at_the_edge_within_a_second() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Leavers", MODELS).await;
    let (leaver, leaver_token) = cp.member(&org, "member").await;
    let (mover, mover_token) = cp.member(&org, "member").await;
    let (heir, heir_token) = cp.member(&org, "member").await;
    let member_key = |token: String| {
        let cp = &cp;
        let org = org.clone();
        async move {
            let (status, key) = cp
                .api_as(
                    &token,
                    Method::POST,
                    &format!("/api/organizations/{org}/keys"),
                    Some(json!({"name": "mine"})),
                )
                .await;
            assert_eq!(status, 201, "{key}");
            (
                key["id"].as_str().unwrap().to_string(),
                key["key"].as_str().unwrap().to_string(),
            )
        }
    };
    let (leaver_key_id, leaver_key) = member_key(leaver_token.clone()).await;
    let (moved_key_id, moved_key) = member_key(mover_token).await;
    let (_, bystander) = cp.key(&org, json!({})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&leaver_key, "gpt-4o").await.status(), 200);

    let removed = cp
        .admin(
            Method::DELETE,
            &format!("/api/organizations/{org}/members/{leaver}"),
            None,
        )
        .await;
    assert_eq!(removed["revoked_keys"], json!([leaver_key_id]), "{removed}");
    let took = cp.until_status(&leaver_key, "gpt-4o", 401).await;
    assert!(took < Duration::from_secs(1), "removal took {took:?}");
    let (status, code) = error_code(cp.chat(&leaver_key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (401, "key_revoked"));
    // Their access to the org ended with it; other keys are untouched.
    let (status, _) = cp
        .api_as(
            &leaver_token,
            Method::GET,
            &format!("/api/organizations/{org}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(cp.chat(&bystander, "gpt-4o").await.status(), 200);

    // Transfer instead: the key keeps working and is now the heir's to revoke.
    let moved = cp
        .admin(
            Method::DELETE,
            &format!("/api/organizations/{org}/members/{mover}?transfer_keys_to={heir}"),
            None,
        )
        .await;
    assert_eq!(moved["transferred_keys"], json!([moved_key_id]), "{moved}");
    cp.synced().await;
    assert_eq!(cp.chat(&moved_key, "gpt-4o").await.status(), 200);
    let (status, body) = cp
        .api_as(
            &heir_token,
            Method::DELETE,
            &format!("/api/keys/{moved_key_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    cp.until_status(&moved_key, "gpt-4o", 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_org_is_refused_until_reactivated() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Togglers", MODELS).await;
    let other = cp.org_with_provider("Bystanders", MODELS).await;
    let (_, key) = cp.key(&org, json!({})).await;
    let (_, bystander) = cp.key(&other, json!({})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);

    let toggled = cp
        .admin(
            Method::POST,
            &format!("/api/organizations/{org}/toggle"),
            None,
        )
        .await;
    assert_eq!(toggled["active"], json!(false), "{toggled}");
    cp.until_status(&key, "gpt-4o", 403).await;
    let (_, code) = error_code(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!(code, "organization_inactive");
    // Another org's keys are untouched.
    assert_eq!(cp.chat(&bystander, "gpt-4o").await.status(), 200);

    cp.admin(
        Method::POST,
        &format!("/api/organizations/{org}/toggle"),
        None,
    )
    .await;
    cp.until_status(&key, "gpt-4o", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_models_on_team_and_org_is_enforced() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Narrowers", MODELS).await;
    let team = cp
        .admin(
            Method::POST,
            &format!("/api/organizations/{org}/teams"),
            Some(json!({"name": "research"})),
        )
        .await;
    let team_id = team["id"].as_str().expect("team id");
    let (_, key) = cp.key(&org, json!({"team_id": team_id})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);

    // The team narrows to the mini model: the key follows without being touched.
    cp.admin(
        Method::PATCH,
        &format!("/api/teams/{team_id}"),
        Some(json!({"allowed_models": ["gpt-4o-mini"]})),
    )
    .await;
    cp.until_status(&key, "gpt-4o", 403).await;
    let (_, code) = error_code(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!(code, "model_not_allowed");
    assert_eq!(cp.chat(&key, "gpt-4o-mini").await.status(), 200);

    // The org narrows its universe to gpt-4o: nothing the team kept is left.
    cp.admin(
        Method::PATCH,
        &format!("/api/organizations/{org}/config"),
        Some(json!({"config": {"access": {"models": ["gpt-4o"]}}})),
    )
    .await;
    cp.until_status(&key, "gpt-4o-mini", 403).await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_at_the_edge_reaches_usage_queries_and_billing_priced_from_the_catalog() {
    usage_reaches_billing(ControlPlane::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_records_are_pushed_and_usage_is_drained_the_same_way() {
    let redis = RedisServer::start();
    usage_reaches_billing(ControlPlane::start_on_redis(&redis.url()).await).await;
    // The spool empties once the drained events are stored (deleted right after).
    let start = std::time::Instant::now();
    while redis.command("EVAL \"return #redis.call('KEYS','usage:*')\" 0") != ":0" {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "spool not emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records pushed by the admin service serve a key at the edge; the edge's usage
/// events come back as usage and billing, priced from the catalog.
async fn usage_reaches_billing(cp: ControlPlane) {
    cp.price_gpt_4o().await;
    let org = cp.org_with_provider("Metered", MODELS).await;
    cp.admin(
        Method::PATCH,
        &format!("/api/organizations/{org}"),
        Some(json!({"billing_rate_per_agent": "99.00"})),
    )
    .await;
    let agent = cp
        .admin(
            Method::POST,
            "/api/agents",
            Some(json!({"name": "Mailer", "org_id": org})),
        )
        .await;
    let agent_id = agent["id"].as_str().expect("agent id");
    let (key_id, key) = cp.key(&org, json!({"agent_id": agent_id})).await;
    cp.synced().await;

    for _ in 0..3 {
        assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);
    }
    let stream = cp
        .http
        .post(format!("{}/v1/chat/completions", cp.edge.url()))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    stream.text().await.expect("stream body");

    let usage = cp.usage_once_drained(&org, "?group_by=key", 4).await;
    assert_eq!(usage["rows"][0]["group"], json!(key_id));
    assert_eq!(
        (
            &usage["totals"]["input_tokens"],
            &usage["totals"]["output_tokens"]
        ),
        (&json!(40), &json!(20)),
        "streamed and plain completions count alike: {usage}"
    );
    assert_eq!(usage["totals"]["cost"], "0.0003");

    let summary = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/billing-summary"),
            None,
        )
        .await;
    let month = summary["months"]
        .as_array()
        .expect("months")
        .last()
        .cloned()
        .expect("this month");
    assert_eq!(month["token_cost"], "0.0003", "{month}");
    assert_eq!(month["agents"][0]["agent_id"], json!(agent_id));
    assert_eq!(month["agents"][0]["input_tokens"], 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_in_another_currency_pays_catalog_prices_at_the_rate_in_force_when_used() {
    let cp = ControlPlane::start().await;
    cp.admin(
        Method::PUT,
        "/api/fx-rates/USD/EUR",
        Some(json!({"rate": "0.4"})),
    )
    .await;
    // $2.50 / $10.00 per 1M: the mock's 10 + 5 tokens cost $0.000075, so €0.00003.
    cp.admin(
        Method::POST,
        "/api/models",
        Some(
            json!({"name": "gpt-4o", "input_price_per_1m": "2.50", "output_price_per_1m": "10.00", "currency": "USD"}),
        ),
    )
    .await;
    let org = cp.org_with_provider("Euro Metered", MODELS).await;
    let o = cp
        .admin(
            Method::PATCH,
            &format!("/api/organizations/{org}"),
            Some(json!({"currency": "EUR"})),
        )
        .await;
    assert_eq!(o["currency"], "EUR");
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    let base = format!("{}/v1", cp.edge.url());
    chat_outcomes(
        base.clone(),
        &[(&key, "gpt-4o", 200), (&key, "gpt-4o", 200)],
    )
    .await;
    let u = cp.usage_once_drained(&org, "", 2).await;
    assert_eq!(
        (&u["totals"]["cost"], &u["currency"]),
        (&json!("0.00006"), &json!("EUR")),
        "{u}"
    );

    // A new rate prices what comes after it; recorded usage keeps its cost.
    cp.admin(
        Method::PUT,
        "/api/fx-rates/USD/EUR",
        Some(json!({"rate": "2"})),
    )
    .await;
    cp.synced().await;
    chat_outcomes(base, &[(&key, "gpt-4o", 200)]).await;
    let u = cp.usage_once_drained(&org, "", 3).await;
    assert_eq!(u["totals"]["cost"], "0.00021", "{u}");
}
