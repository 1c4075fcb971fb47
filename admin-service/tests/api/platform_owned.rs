//! The org's model universe and billing rate are the platform admin's: org roles
//! may narrow them, widening is a 403 naming the field.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn org_admins_narrow_model_access_but_cannot_widen_it() {
    let s = TestServer::start().await;
    s.post(
        "/api/route-groups",
        json!({"name": "premium", "models": ["o1"]}),
    )
    .await
    .ok();
    let org = s.org("Bounded").await;
    let (_, owner) = s.user(&org, "owner").await;
    let path = format!("/api/organizations/{org}/config");
    s.patch(
        &path,
        json!({"config": {"access": {"models": ["gpt-4o", "gpt-4o-mini"]}}}),
    )
    .await
    .ok();

    let before = s.snapshot().await;
    let widen = [
        (
            json!({"access": {"models": ["gpt-4o", "gpt-4o-mini", "o1"]}}),
            "config.access.models",
        ),
        (
            json!({"access": {"models": ["gpt-*"]}}),
            "config.access.models",
        ),
        (json!({"access": null}), "config.access"),
        (
            json!({"access": {"models": [], "route_groups": ["premium"]}}),
            "config.access.route_groups",
        ),
        (
            json!({"access": {"models": [], "access_groups": ["later"]}}),
            "config.access.access_groups",
        ),
    ];
    for (cfg, field) in widen {
        s.call("PATCH", &path, &owner, Some(json!({"config": cfg})))
            .await
            .err(403, field);
    }
    // PUT without access drops it (every model): widening too.
    s.call("PUT", &path, &owner, Some(json!({"config": {}})))
        .await
        .err(403, "config.access");
    assert_eq!(
        s.snapshot().await,
        before,
        "refused widenings wrote nothing"
    );

    // Narrowing is theirs; other sections stay theirs too.
    let r = s
        .call(
            "PATCH",
            &path,
            &owner,
            Some(json!({"config": {"access": {"models": ["gpt-4o-mini"]}, "rate_limiting": {"rpm": 9}}})),
        )
        .await
        .ok();
    assert_eq!(r["config"]["access"]["models"], json!(["gpt-4o-mini"]));
    // Going back up is the platform admin's call.
    s.call(
        "PATCH",
        &path,
        &owner,
        Some(json!({"config": {"access": {"models": ["gpt-4o", "gpt-4o-mini"]}}})),
    )
    .await
    .err(403, "config.access.models");
    s.patch(&path, json!({"config": {"access": null}}))
        .await
        .ok();
}

#[tokio::test]
async fn org_owners_cannot_lower_their_billing_rate() {
    let s = TestServer::start().await;
    let org = s
        .post(
            "/api/organizations",
            json!({"name": "Payer", "billing_rate_per_agent": "99.00"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, owner) = s.user(&org, "owner").await;
    let path = format!("/api/organizations/{org}");
    s.call(
        "PATCH",
        &path,
        &owner,
        Some(json!({"billing_rate_per_agent": "1.00"})),
    )
    .await
    .err(403, "billing_rate_per_agent");
    let r = s
        .call(
            "PATCH",
            &path,
            &owner,
            Some(json!({"billing_rate_per_agent": "99.00", "name": "Payer Inc"})),
        )
        .await
        .ok();
    assert_eq!(r["billing_rate_per_agent"], "99.00");
    let r = s
        .patch(&path, json!({"billing_rate_per_agent": "10.00"}))
        .await
        .ok();
    assert_eq!(
        r["billing_rate_per_agent"], "10.00",
        "the platform admin sets it"
    );
}
