//! The admin API drives the real edge: objects created, changed and revoked through
//! the API take effect in the real component served from the admin service's sink.

use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::fixtures::PROVIDER_KEY;
use tollgate_e2e::openai::run_client_checks;

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini"];

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
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);

    cp.admin(Method::DELETE, &format!("/api/keys/{id}"), None)
        .await;
    let took = cp.until_status(&key, "gpt-4o", 401).await;
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
    let (status, code) = error_code(cp.chat(&key, "gpt-4o").await).await;
    assert_eq!((status, code.as_str()), (401, "key_revoked"));
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
