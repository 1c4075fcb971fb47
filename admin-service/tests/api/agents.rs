//! Agents: one org at a time, assign/unassign, per-agent `billingRate`.

use serde_json::json;

use crate::common::TestServer;
use policy::AgentRecord;

#[tokio::test]
async fn create_get_and_list_by_org() {
    let s = TestServer::start().await;
    let a = s.org("A").await;
    let b = s.org("B").await;
    let x = s
        .post(
            "/api/agents",
            json!({"name": "x", "org_id": a, "billingRate": 12.5}),
        )
        .await;
    assert_eq!(x.status, 201, "{}", x.text);
    assert_eq!(x.body["billing_rate"], "12.50");
    let y = s.agent(&b, "y").await;
    let got = s
        .get(&format!("/api/agents/{}", x.body["id"].as_str().unwrap()))
        .await
        .ok();
    assert_eq!(
        (
            got["name"].as_str(),
            got["org_id"].as_str(),
            got["active"].as_bool()
        ),
        (Some("x"), Some(a.as_str()), Some(true))
    );
    let of_a = s.get(&format!("/api/agents?org_id={a}")).await.ok();
    assert_eq!(of_a.as_array().unwrap().len(), 1);
    let all = s.get("/api/agents").await.ok();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == y.as_str())
    );
    assert_eq!(s.get("/api/agents/agt_nope").await.status, 404);
    assert_eq!(s.get("/api/agents?org_id=org_nope").await.status, 404);

    let before = s.snapshot().await;
    s.post("/api/agents", json!({"name": ""}))
        .await
        .err(422, "name");
    s.post("/api/agents", json!({"name": "z", "colour": "red"}))
        .await
        .err(422, "colour");
    s.post("/api/agents", json!({"name": "z", "billingRate": "lots"}))
        .await
        .err(422, "billingRate");
    assert_eq!(
        s.post("/api/agents", json!({"name": "z", "org_id": "org_nope"}))
            .await
            .status,
        404
    );
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn assign_moves_between_orgs_and_unassign_returns_to_internal() {
    let s = TestServer::start().await;
    let a = s.org("A").await;
    let b = s.org("B").await;
    let agent = s.agent(&a, "mover").await;
    let moved = s
        .post(
            &format!("/api/agents/{agent}/assign-org"),
            json!({"org_id": b}),
        )
        .await
        .ok();
    assert_eq!(moved["org_id"], b.as_str());
    let a_detail = s.get(&format!("/api/organizations/{a}")).await.ok();
    assert_eq!(a_detail["agent_count"], 0);
    let b_detail = s.get(&format!("/api/organizations/{b}")).await.ok();
    assert_eq!(b_detail["agents"][0]["id"], agent.as_str());
    s.synced().await;
    let rec: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    assert_eq!(rec.org_id, b);

    // A key of the old org bound to the agent stops working once the agent moves.
    let key = s.key(&b, json!({"name": "bound", "agent_id": agent})).await;
    let secret = key["key"].as_str().unwrap();
    s.synced().await;
    assert_eq!(s.edge(secret, None, None).await, Ok(()));
    s.post(
        &format!("/api/agents/{agent}/assign-org"),
        json!({"orgId": a}),
    )
    .await
    .ok();
    s.synced().await;
    assert_eq!(
        s.edge(secret, None, None).await,
        Err(policy::Denial::AgentInactive)
    );

    let back = s
        .post(&format!("/api/agents/{agent}/unassign-org"), json!({}))
        .await
        .ok();
    assert_eq!(back["org_id"], "org_internal");
    s.synced().await;
    let rec: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    assert_eq!(rec.org_id, "org_internal");

    let before = s.snapshot().await;
    s.post(
        &format!("/api/agents/{agent}/assign-org"),
        json!({"org_id": "org_nope"}),
    )
    .await
    .err(404, "org_id");
    s.post(&format!("/api/agents/{agent}/assign-org"), json!({}))
        .await
        .err(422, "org_id");
    s.post(
        &format!("/api/agents/{agent}/assign-org"),
        json!({"org_id": 7}),
    )
    .await
    .err(422, "org_id");
    assert_eq!(
        s.post("/api/agents/agt_nope/assign-org", json!({"org_id": a}))
            .await
            .status,
        404
    );
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn billing_rate_is_custom_or_the_org_default() {
    let s = TestServer::start().await;
    let org = s
        .post(
            "/api/organizations",
            json!({"name": "Billed", "billing_rate_per_agent": "99.00"}),
        )
        .await
        .ok();
    let org_id = org["id"].as_str().unwrap();
    let agent = s.agent(org_id, "a").await;
    let path = format!("/api/agents/{agent}");
    let a = s.get(&path).await.ok();
    assert_eq!(
        (
            a["billing_rate"].clone(),
            a["effective_billing_rate"].as_str()
        ),
        (serde_json::Value::Null, Some("99.00"))
    );
    // The seed's field name.
    let a = s.patch(&path, json!({"billingRate": 149.99})).await.ok();
    assert_eq!(
        (
            a["billing_rate"].as_str(),
            a["effective_billing_rate"].as_str()
        ),
        (Some("149.99"), Some("149.99"))
    );
    // Renaming leaves the rate alone; null reverts to the org's rate.
    let a = s.patch(&path, json!({"name": "renamed"})).await.ok();
    assert_eq!(
        (a["name"].as_str(), a["billing_rate"].as_str()),
        (Some("renamed"), Some("149.99"))
    );
    let a = s.patch(&path, json!({"billingRate": null})).await.ok();
    assert_eq!(
        (
            a["billing_rate"].clone(),
            a["effective_billing_rate"].as_str()
        ),
        (serde_json::Value::Null, Some("99.00"))
    );

    let before = s.snapshot().await;
    s.patch(&path, json!({"billingRate": "ten"}))
        .await
        .err(422, "billingRate");
    s.patch(&path, json!({"billingRate": -3}))
        .await
        .err(422, "billingRate");
    s.patch(&path, json!({"billingRate": 1.001}))
        .await
        .err(422, "billingRate");
    s.patch(&path, json!({"name": ""})).await.err(422, "name");
    s.patch(&path, json!({"active": "no"}))
        .await
        .err(422, "active");
    s.patch(&path, json!({"rate": 1})).await.err(422, "rate");
    assert_eq!(s.snapshot().await, before);

    // Deactivating an agent suspends it at the edge.
    s.patch(&path, json!({"active": false})).await.ok();
    s.synced().await;
    let rec: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    assert!(!rec.active);
}

#[tokio::test]
async fn only_owners_set_billing_rates() {
    let s = TestServer::start().await;
    let org = s.org("Rates").await;
    let agent = s.agent(&org, "a").await;
    let (_, admin) = s.user(&org, "admin").await;
    let (_, owner) = s.user(&org, "owner").await;
    let path = format!("/api/agents/{agent}");
    s.call("PATCH", &path, &admin, Some(json!({"billingRate": 5})))
        .await
        .expect(403);
    s.call("PATCH", &path, &admin, Some(json!({"name": "by admin"})))
        .await
        .expect(200);
    let r = s
        .call("PATCH", &path, &owner, Some(json!({"billingRate": 5})))
        .await
        .ok();
    assert_eq!(r["billing_rate"], "5.00");
    let r = s
        .call(
            "PATCH",
            &format!("/api/organizations/{org}"),
            &admin,
            Some(json!({"billing_rate_per_agent": 1})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call(
            "PATCH",
            &format!("/api/organizations/{org}"),
            &owner,
            Some(json!({"billing_rate_per_agent": 1})),
        )
        .await
        .ok();
    assert_eq!(r["billing_rate_per_agent"], "1.00");
}
