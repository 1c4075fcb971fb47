//! Keys edited, rotated and granted access groups through the admin API act at the
//! real edge within a second, as the `openai` Python client sees it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tollgate_e2e::admin::ControlPlane;
use tollgate_e2e::openai::chat_outcomes;
use tollgate_e2e::wall_clock::clear_of_minute_end;

const MODELS: &[&str] = &["gpt-4o", "gpt-4o-mini"];

/// Each `(key, model, status)` is one chat completion by the `openai` client that
/// must end in `status`.
async fn openai_outcomes(cp: &ControlPlane, calls: &[(&str, &str, u16)]) {
    chat_outcomes(format!("{}/v1", cp.edge.url()), calls).await;
}

async fn rotate(cp: &ControlPlane, id: &str, grace_seconds: u64) -> String {
    let r = cp
        .admin(
            Method::POST,
            &format!("/api/keys/{id}/rotate"),
            Some(json!({"grace_seconds": grace_seconds})),
        )
        .await;
    r["key"].as_str().expect("the new key, once").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_keeps_the_old_secret_for_its_grace_only() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Rotators", MODELS).await;
    let (id, first) = cp.key(&org, json!({})).await;
    cp.synced().await;

    // A grace of 20 s (a loaded machine needs seconds to start the client): old and
    // new both serve the client, then only the new one.
    let rotated_at = Instant::now();
    let second = rotate(&cp, &id, 20).await;
    cp.synced().await;
    openai_outcomes(&cp, &[(&first, "gpt-4o", 200), (&second, "gpt-4o", 200)]).await;
    while cp.chat(&first, "gpt-4o").await.status() == 200 {
        assert!(
            rotated_at.elapsed() < Duration::from_secs(22),
            "the grace never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grace = rotated_at.elapsed();
    assert!(
        grace > Duration::from_millis(19_500),
        "the grace of 20 s ended after {grace:?}"
    );
    openai_outcomes(&cp, &[(&first, "gpt-4o", 401), (&second, "gpt-4o", 200)]).await;

    // Grace 0: the old secret is refused within a second of the call.
    let third = rotate(&cp, &id, 0).await;
    let took = cp.until_status(&second, "gpt-4o", 401).await;
    assert!(took < Duration::from_secs(1), "rotation took {took:?}");
    openai_outcomes(
        &cp,
        &[
            (&first, "gpt-4o", 401),
            (&second, "gpt-4o", 401),
            (&third, "gpt-4o-mini", 200),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_limits_and_models_act_at_the_edge_within_a_second() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Editors", MODELS).await;
    let (id, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    assert_eq!(cp.chat(&key, "gpt-4o").await.status(), 200);

    // Narrowing the models: the dropped one is 403 at once, the kept one serves.
    cp.admin(
        Method::PATCH,
        &format!("/api/keys/{id}"),
        Some(json!({"allowed_models": ["gpt-4o-mini"]})),
    )
    .await;
    let took = cp.until_status(&key, "gpt-4o", 403).await;
    assert!(took < Duration::from_secs(1), "narrowing took {took:?}");
    openai_outcomes(&cp, &[(&key, "gpt-4o", 403), (&key, "gpt-4o-mini", 200)]).await;

    // A rate limit set by PATCH is enforced: 2 a minute, the third is 429.
    clear_of_minute_end().await;
    // A fresh key: the requests above count in this minute's window for the first.
    let (fresh_id, fresh) = cp.key(&org, json!({})).await;
    cp.admin(
        Method::PATCH,
        &format!("/api/keys/{fresh_id}"),
        Some(json!({"rate_limit_rpm": 2})),
    )
    .await;
    cp.synced().await;
    openai_outcomes(
        &cp,
        &[
            (&fresh, "gpt-4o", 200),
            (&fresh, "gpt-4o", 200),
            (&fresh, "gpt-4o", 429),
        ],
    )
    .await;
    // Lifting it again lets the key through in the same minute.
    cp.admin(
        Method::PATCH,
        &format!("/api/keys/{fresh_id}"),
        Some(json!({"rate_limit_rpm": null})),
    )
    .await;
    let took = cp.until_status(&fresh, "gpt-4o", 200).await;
    assert!(took < Duration::from_secs(1), "lifting took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelling_a_model_reaches_access_group_grants_within_a_second() {
    let cp = ControlPlane::start().await;
    for (name, groups) in [("gpt-4o", json!(["support"])), ("gpt-4o-mini", json!([]))] {
        cp.admin(
            Method::POST,
            "/api/models",
            Some(json!({"name": name, "access_groups": groups})),
        )
        .await;
    }
    let org = cp.org_with_provider("Labels", MODELS).await;
    let team = cp
        .admin(
            Method::POST,
            &format!("/api/organizations/{org}/teams"),
            Some(json!({"name": "support", "allowed_models": ["group:support"]})),
        )
        .await;
    let team = team["id"].as_str().expect("team id").to_string();
    let (_, in_team) = cp.key(&org, json!({"team_id": team})).await;
    let (_, direct) = cp
        .key(&org, json!({"allowed_models": ["group:support"]}))
        .await;
    cp.synced().await;
    openai_outcomes(
        &cp,
        &[
            (&in_team, "gpt-4o", 200),
            (&in_team, "gpt-4o-mini", 403),
            (&direct, "gpt-4o", 200),
            (&direct, "gpt-4o-mini", 403),
        ],
    )
    .await;

    // Labelled later: 403 then 200 within a second, for the team's and the key's grant.
    cp.admin(
        Method::PATCH,
        "/api/models/gpt-4o-mini",
        Some(json!({"access_groups": ["support"]})),
    )
    .await;
    for k in [&in_team, &direct] {
        let took = cp.until_status(k, "gpt-4o-mini", 200).await;
        assert!(took < Duration::from_secs(1), "labelling took {took:?}");
    }
    // Unlabelled: 200 then 403.
    cp.admin(
        Method::PATCH,
        "/api/models/gpt-4o",
        Some(json!({"access_groups": []})),
    )
    .await;
    for k in [&in_team, &direct] {
        let took = cp.until_status(k, "gpt-4o", 403).await;
        assert!(took < Duration::from_secs(1), "unlabelling took {took:?}");
    }
    openai_outcomes(
        &cp,
        &[(&in_team, "gpt-4o", 403), (&direct, "gpt-4o-mini", 200)],
    )
    .await;
}
