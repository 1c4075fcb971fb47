//! Teams inside orgs, the model catalog, route groups and access groups, and the
//! rule that grants only narrow.

use serde_json::json;

use crate::common::TestServer;
use policy::{KeyRecord, TeamRecord};

/// An org whose asset access is `gpt-4o-mini`, route group `fast` and access group `support`.
async fn narrowed_org(s: &TestServer) -> String {
    s.post("/api/models", json!({"name": "gpt-4o", "access_groups": ["support"], "input_price_per_1m": "2.50", "output_price_per_1m": 10})).await.ok();
    s.post(
        "/api/models",
        json!({"name": "claude-3-opus", "access_groups": ["finance"]}),
    )
    .await
    .ok();
    s.post(
        "/api/route-groups",
        json!({"name": "fast", "models": ["gpt-4o-mini", "o1-mini"]}),
    )
    .await
    .ok();
    let org = s.org("Narrow").await;
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"access": {"models": ["gpt-4o-mini"], "route_groups": ["fast"], "access_groups": ["support"]}}}),
    )
    .await
    .ok();
    org
}

#[tokio::test]
async fn catalog_models_route_groups_and_access_groups() {
    let s = TestServer::start().await;
    let m = s.post("/api/models", json!({"name": "gpt-4o", "access_groups": ["support", "beta"], "input_price_per_1m": 2.5, "output_price_per_1m": "10"})).await;
    assert_eq!(m.status, 201, "{}", m.text);
    assert_eq!(
        (
            m.body["input_price_per_1m"].as_str(),
            m.body["output_price_per_1m"].as_str()
        ),
        (Some("2.50"), Some("10.00"))
    );
    s.post(
        "/api/models",
        json!({"name": "gpt-4o-mini", "access_groups": ["beta"]}),
    )
    .await
    .ok();
    let list = s.get("/api/models").await.ok();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        s.get("/api/models/gpt-4o").await.ok()["access_groups"],
        json!(["support", "beta"])
    );
    let groups = s.get("/api/access-groups").await.ok();
    assert_eq!(
        groups,
        json!([{"name": "beta", "models": ["gpt-4o", "gpt-4o-mini"]}, {"name": "support", "models": ["gpt-4o"]}])
    );
    let p = s
        .patch(
            "/api/models/gpt-4o",
            json!({"access_groups": ["support"], "input_price_per_1m": "3"}),
        )
        .await
        .ok();
    assert_eq!(
        (
            p["input_price_per_1m"].as_str(),
            p["output_price_per_1m"].as_str()
        ),
        (Some("3.00"), Some("10.00"))
    );

    let rg = s
        .post(
            "/api/route-groups",
            json!({"name": "fast", "models": ["gpt-4o-mini", "o1-*"]}),
        )
        .await;
    assert_eq!(rg.status, 201, "{}", rg.text);
    let rg = s
        .patch("/api/route-groups/fast", json!({"models": ["gpt-4o-mini"]}))
        .await
        .ok();
    assert_eq!(rg["models"], json!(["gpt-4o-mini"]));
    assert_eq!(s.get("/api/route-groups").await.ok()[0]["name"], "fast");

    // Prices reach the org records the edge prices spend with.
    let org = s.org("Priced").await;
    s.synced().await;
    let rec: policy::OrgRecord = s.record(&policy::kv::org_key(&org)).await.unwrap();
    let price = rec
        .prices
        .iter()
        .find(|p| p.model.as_str() == "gpt-4o")
        .expect("gpt-4o priced");
    assert_eq!(
        (price.input_per_mtok_micros, price.output_per_mtok_micros),
        (3_000_000, 10_000_000)
    );

    let before = s.snapshot().await;
    s.post("/api/models", json!({"name": "gpt-4o"}))
        .await
        .err(409, "name");
    s.post("/api/models", json!({"name": "fast"}))
        .await
        .err(409, "name");
    s.post("/api/route-groups", json!({"name": "gpt-4o", "models": []}))
        .await
        .err(409, "name");
    s.post("/api/route-groups", json!({"name": "fast", "models": []}))
        .await
        .err(409, "name");
    s.post("/api/models", json!({"name": "gpt-*"}))
        .await
        .err(422, "name");
    s.post("/api/models", json!({"name": ""}))
        .await
        .err(422, "name");
    s.post(
        "/api/models",
        json!({"name": "m", "access_groups": ["Not Valid"]}),
    )
    .await
    .err(422, "access_groups[0]");
    s.post(
        "/api/models",
        json!({"name": "m", "input_price_per_1m": -1}),
    )
    .await
    .err(422, "input_price_per_1m");
    s.post(
        "/api/models",
        json!({"name": "m", "output_price_per_1m": "0.0000001"}),
    )
    .await
    .err(422, "output_price_per_1m");
    s.post("/api/models", json!({"name": "m", "label": "x"}))
        .await
        .err(422, "label");
    s.patch("/api/models/gpt-4o", json!({"access_groups": "support"}))
        .await
        .err(422, "access_groups");
    s.post("/api/route-groups", json!({"name": "g*", "models": []}))
        .await
        .err(422, "name");
    s.post("/api/route-groups", json!({"name": "g"}))
        .await
        .err(422, "models");
    s.post(
        "/api/route-groups",
        json!({"name": "g", "models": ["bad model"]}),
    )
    .await
    .err(422, "models[0]");
    s.patch("/api/route-groups/fast", json!({}))
        .await
        .err(422, "models");
    s.patch("/api/route-groups/fast", json!({"models": null}))
        .await
        .err(422, "models");
    assert_eq!(
        s.patch("/api/models/nope", json!({"access_groups": []}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.patch("/api/route-groups/nope", json!({"models": []}))
            .await
            .status,
        404
    );
    assert_eq!(s.snapshot().await, before);

    assert_eq!(s.delete("/api/models/gpt-4o-mini").await.status, 204);
    assert_eq!(s.get("/api/models/gpt-4o-mini").await.status, 404);
    assert_eq!(s.delete("/api/route-groups/fast").await.status, 204);
    assert_eq!(s.delete("/api/route-groups/fast").await.status, 404);
}

#[tokio::test]
async fn team_crud_with_limits_budget_and_edge_record() {
    let s = TestServer::start().await;
    let org = s.org("Teams").await;
    let teams = format!("/api/organizations/{org}/teams");
    let t = s
        .post(&teams, json!({"name": "Marketing", "rate_limit_rpm": 50, "rate_limit_tpd": 1000000, "budget": {"limit": 200, "period": "monthly"}}))
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let id = t.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            t.body["rate_limit_rpm"].as_u64(),
            t.body["allowed_models"].is_null()
        ),
        (Some(50), true)
    );
    assert_eq!(t.body["budget"]["limit"], "200.00");
    assert_eq!(s.get(&teams).await.ok().as_array().unwrap().len(), 1);
    s.synced().await;
    let rec: TeamRecord = s.record(&policy::kv::team_key(&id)).await.unwrap();
    assert_eq!(
        (rec.org_id.as_str(), rec.limits.rpm, rec.limits.tpd),
        (org.as_str(), Some(50), Some(1000000))
    );
    assert_eq!(rec.budget.unwrap().limit_micros, 200_000_000);

    let path = format!("/api/teams/{id}");
    let u = s
        .patch(
            &path,
            json!({"rate_limit_rpm": null, "rate_limit_tpm": 999, "name": "Growth"}),
        )
        .await
        .ok();
    assert_eq!(
        (
            u["rate_limit_rpm"].is_null(),
            u["rate_limit_tpm"].as_u64(),
            u["rate_limit_tpd"].as_u64()
        ),
        (true, Some(999), Some(1000000))
    );
    assert_eq!(s.get(&path).await.ok()["name"], "Growth");

    let before = s.snapshot().await;
    s.post(&teams, json!({"name": "Growth"}))
        .await
        .err(409, "name");
    s.post(&teams, json!({"name": ""})).await.err(422, "name");
    s.post(&teams, json!({"name": "x", "rate_limit_rpm": -5}))
        .await
        .err(422, "rate_limit_rpm");
    s.post(&teams, json!({"name": "x", "rate_limit_rpm": "many"}))
        .await
        .err(422, "rate_limit_rpm");
    s.post(
        &teams,
        json!({"name": "x", "budget": {"limit": 1, "period": "hourly"}}),
    )
    .await
    .err(422, "budget.period");
    s.post(&teams, json!({"name": "x", "members": []}))
        .await
        .err(422, "members");
    s.post(&teams, json!({"name": "x", "allowed_models": "gpt-4o"}))
        .await
        .err(422, "allowed_models");
    s.patch(&path, json!({"rate_limit_rph": 1.5}))
        .await
        .err(422, "rate_limit_rph");
    s.patch(&path, json!({"org_id": "other"}))
        .await
        .err(422, "org_id");
    assert_eq!(s.get("/api/teams/team_nope").await.status, 404);
    assert_eq!(s.snapshot().await, before);

    // A team with active keys is kept; revoked keys do not hold it.
    let key = s.key(&org, json!({"name": "k", "team_id": id})).await;
    let r = s.delete(&path).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("has_keys")),
        "{}",
        r.text
    );
    s.delete(&format!("/api/keys/{}", key["id"].as_str().unwrap()))
        .await
        .ok();
    assert_eq!(s.delete(&path).await.status, 204);
    assert_eq!(s.get(&path).await.status, 404);
    s.synced().await;
    assert!(
        s.kv(0, &policy::kv::team_key(&id)).await.is_none(),
        "deleted team left at the edge"
    );
}

#[tokio::test]
async fn team_and_key_grants_only_narrow_the_org() {
    let s = TestServer::start().await;
    let org = narrowed_org(&s).await;
    let teams = format!("/api/organizations/{org}/teams");
    let keys = format!("/api/organizations/{org}/keys");
    let before = s.snapshot().await;
    s.post(
        &teams,
        json!({"name": "t", "allowed_models": ["gpt-4o-mini", "claude-3-opus"]}),
    )
    .await
    .err(422, "allowed_models[1]");
    s.post(&teams, json!({"name": "t", "allowed_models": ["gpt-*"]}))
        .await
        .err(422, "allowed_models[0]");
    s.post(
        &teams,
        json!({"name": "t", "allowed_models": ["bad model"]}),
    )
    .await
    .err(422, "allowed_models[0]");
    s.post(
        &keys,
        json!({"name": "k", "allowed_models": ["o1-preview"]}),
    )
    .await
    .err(422, "allowed_models[0]");
    assert_eq!(s.snapshot().await, before);

    // Inside the org's universe: direct model, a route group's member, an access group's member.
    let team = s
        .post(
            &teams,
            json!({"name": "t", "allowed_models": ["gpt-4o-mini", "gpt-4o"]}),
        )
        .await;
    assert_eq!(team.status, 201, "{}", team.text);
    let team_id = team.body["id"].as_str().unwrap().to_string();
    s.post(
        &teams,
        json!({"name": "fast-team", "allowed_models": ["fast"]}),
    )
    .await
    .ok();
    // A key under the team can only narrow the team, even with what the org has.
    let before = s.snapshot().await;
    let r = s
        .post(
            &keys,
            json!({"name": "k", "team_id": team_id, "allowed_models": ["gpt-4o", "o1-mini"]}),
        )
        .await;
    r.err(422, "allowed_models[1]");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("team"),
        "{}",
        r.text
    );
    let r = s
        .patch(
            &format!("/api/teams/{team_id}"),
            json!({"allowed_models": ["claude-3-opus"]}),
        )
        .await;
    r.err(422, "allowed_models[0]");
    assert_eq!(s.snapshot().await, before);

    let k = s
        .key(
            &org,
            json!({"name": "k", "team_id": team_id, "allowed_models": ["gpt-4o"]}),
        )
        .await;
    let wide = s.key(&org, json!({"name": "inherits"})).await;
    s.synced().await;
    let hash = policy::kv::key_hash_hex(k["key"].as_str().unwrap());
    let rec: KeyRecord = s.record(&format!("key:{hash}")).await.unwrap();
    assert!(
        rec.models.permits("gpt-4o")
            && !rec.models.permits("gpt-4o-mini")
            && !rec.models.permits("claude-3-opus")
    );
    let wide_secret = wide["key"].as_str().unwrap();
    let rec: KeyRecord = s
        .record(&format!("key:{}", policy::kv::key_hash_hex(wide_secret)))
        .await
        .unwrap();
    for m in ["gpt-4o", "gpt-4o-mini", "o1-mini"] {
        assert!(
            rec.models.permits(m),
            "{m} should be inherited from the org"
        );
    }
    assert!(!rec.models.permits("claude-3-opus") && !rec.models.permits("o1-preview"));
    assert_eq!(
        s.edge(wide_secret, Some("claude-3-opus"), None).await,
        Err(policy::Denial::ModelNotAllowed("claude-3-opus".into()))
    );

    // Narrowing the org later narrows every key at the edge.
    s.patch(&format!("/api/organizations/{org}/config"), json!({"config": {"access": {"models": ["gpt-4o-mini"], "route_groups": [], "access_groups": []}}})).await.ok();
    s.synced().await;
    let rec: KeyRecord = s.record(&format!("key:{hash}")).await.unwrap();
    assert!(
        !rec.models.permits("gpt-4o"),
        "the org no longer grants gpt-4o"
    );
    // A model labelled later joins the org through its access group.
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"access": {"access_groups": ["finance"]}}}),
    )
    .await
    .ok();
    s.post(
        "/api/models",
        json!({"name": "claude-3-haiku", "access_groups": ["finance"]}),
    )
    .await
    .ok();
    s.synced().await;
    let rec: KeyRecord = s
        .record(&format!("key:{}", policy::kv::key_hash_hex(wide_secret)))
        .await
        .unwrap();
    assert!(rec.models.permits("claude-3-haiku") && rec.models.permits("claude-3-opus"));
}
