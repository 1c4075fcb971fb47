//! Organizations: every endpoint of the AgenticMail organizations doc.

use serde_json::json;

use crate::common::TestServer;
use policy::{AgentRecord, KeyRecord, OrgRecord};

/// The seed's create request, verbatim.
fn seed_body() -> serde_json::Value {
    json!({
        "name": "AgenticMail",
        "slug": "agenticmail",
        "contact_name": "Ope Olatunji",
        "contact_email": "ope@agenticmail.com",
        "description": "Enterprise client — Q1 2026 onboarding",
        "billing_rate_per_agent": 99.00,
        "currency": "USD"
    })
}

#[tokio::test]
async fn create_as_in_the_seed_then_list_and_get_with_agents() {
    let s = TestServer::start().await;
    let r = s.post("/api/organizations", seed_body()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let org = r.body;
    let id = org["id"].as_str().unwrap();
    assert_eq!(org["name"], "AgenticMail");
    assert_eq!(org["slug"], "agenticmail");
    assert_eq!(org["contact_name"], "Ope Olatunji");
    assert_eq!(org["contact_email"], "ope@agenticmail.com");
    assert_eq!(org["description"], "Enterprise client — Q1 2026 onboarding");
    // Money goes out as an exact decimal string, never a float.
    assert_eq!(org["billing_rate_per_agent"], "99.00");
    assert_eq!(org["currency"], "USD");
    assert_eq!(org["active"], true);
    assert_eq!(org["agent_count"], 0);

    let list = s.get("/api/organizations").await.ok();
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"agenticmail") && listed.contains(&"internal"),
        "{listed:?}"
    );

    let agent = s.agent(id, "support-bot").await;
    let detail = s.get(&format!("/api/organizations/{id}")).await.ok();
    assert_eq!(detail["agent_count"], 1);
    s.post(
        &format!("/api/organizations/{id}/teams"),
        json!({"name": "ops"}),
    )
    .await
    .ok();
    let listed = s.get("/api/organizations").await.ok();
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap();
    assert_eq!(
        (mine["agent_count"].as_i64(), mine["team_count"].as_i64()),
        (Some(1), Some(1))
    );
    let agents = detail["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["id"], agent.as_str());
    // The agent inherits the org's default rate.
    assert_eq!(agents[0]["effective_billing_rate"], "99.00");

    s.synced().await;
    let rec: OrgRecord = s
        .record(&policy::kv::org_key(id))
        .await
        .expect("org record pushed");
    assert_eq!((rec.slug.as_str(), rec.active), ("agenticmail", true));
}

#[tokio::test]
async fn slug_is_derived_editable_at_creation_unique_and_immutable() {
    let s = TestServer::start().await;
    let a = s
        .post("/api/organizations", json!({"name": "  Acme, Inc. (EU) "}))
        .await
        .ok();
    assert_eq!(a["slug"], "acme-inc-eu");
    assert_eq!(a["name"], "Acme, Inc. (EU)");
    let b = s
        .post(
            "/api/organizations",
            json!({"name": "Acme", "slug": "acme-custom"}),
        )
        .await
        .ok();
    assert_eq!(b["slug"], "acme-custom");

    let before = s.snapshot().await;
    // Explicitly and implicitly duplicated slugs are both conflicts.
    s.post(
        "/api/organizations",
        json!({"name": "Other", "slug": "acme-inc-eu"}),
    )
    .await
    .err(409, "slug");
    s.post("/api/organizations", json!({"name": "Acme Inc EU"}))
        .await
        .err(409, "slug");
    // Not URL-safe, or nothing to derive from.
    s.post(
        "/api/organizations",
        json!({"name": "X", "slug": "Not A Slug"}),
    )
    .await
    .err(422, "slug");
    s.post("/api/organizations", json!({"name": "X", "slug": "a--b"}))
        .await
        .err(422, "slug");
    assert_eq!(
        s.snapshot().await,
        before,
        "a rejected create wrote something"
    );
    // Nothing to derive a slug from: a random one, still a valid slug.
    let r = s
        .post("/api/organizations", json!({"name": "東京!!!"}))
        .await
        .expect(201);
    let slug = r["slug"].as_str().unwrap();
    assert!(slug.starts_with("org-") && slug.len() == 12, "{slug}");

    let id = a["id"].as_str().unwrap();
    s.patch(
        &format!("/api/organizations/{id}"),
        json!({"slug": "renamed"}),
    )
    .await
    .err(422, "slug");
    // Sending the current slug back (a form round-trip) is not a change.
    let same = s
        .patch(
            &format!("/api/organizations/{id}"),
            json!({"slug": "acme-inc-eu", "name": "Acme EU"}),
        )
        .await
        .ok();
    assert_eq!(
        (same["slug"].as_str(), same["name"].as_str()),
        (Some("acme-inc-eu"), Some("Acme EU"))
    );
}

#[tokio::test]
async fn currencies_are_the_six_of_the_seed() {
    let s = TestServer::start().await;
    for c in ["USD", "EUR", "GBP", "NGN", "CAD", "AUD"] {
        let o = s
            .post(
                "/api/organizations",
                json!({"name": format!("org {c}"), "currency": c}),
            )
            .await
            .ok();
        assert_eq!(o["currency"], c);
    }
    let plain = s
        .post("/api/organizations", json!({"name": "default currency"}))
        .await
        .ok();
    assert_eq!(
        (
            plain["currency"].as_str(),
            plain["billing_rate_per_agent"].as_str()
        ),
        (Some("USD"), Some("0.00"))
    );
    let before = s.snapshot().await;
    for bad in [json!("JPY"), json!("usd"), json!(""), json!(840)] {
        let r = s
            .post(
                "/api/organizations",
                json!({"name": "bad currency", "currency": bad}),
            )
            .await;
        r.err(422, "currency");
    }
    let id = plain["id"].as_str().unwrap();
    s.patch(
        &format!("/api/organizations/{id}"),
        json!({"currency": "XYZ"}),
    )
    .await
    .err(422, "currency");
    assert_eq!(s.snapshot().await, before);
    let eur = s
        .patch(
            &format!("/api/organizations/{id}"),
            json!({"currency": "EUR"}),
        )
        .await
        .ok();
    assert_eq!(eur["currency"], "EUR");
}

#[tokio::test]
async fn bad_create_bodies_are_4xx_naming_the_field_and_write_nothing() {
    let s = TestServer::start().await;
    let before = s.snapshot().await;
    let r = s
        .raw(
            "POST",
            "/api/organizations",
            Some(crate::common::ADMIN),
            Some("{\"name\": \"x\""),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "malformed_json");
    let huge = format!(
        "{{\"name\": \"x\", \"description\": \"{}\"}}",
        "d".repeat(admin_service::api::extract::BODY_LIMIT)
    );
    let r = s
        .raw(
            "POST",
            "/api/organizations",
            Some(crate::common::ADMIN),
            Some(&huge),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "request_too_large");
    s.raw(
        "POST",
        "/api/organizations",
        Some(crate::common::ADMIN),
        Some(""),
    )
    .await
    .expect(400);
    let cases = [
        (json!({"name": "x", "bogus": 1}), "bogus"),
        (json!({"name": 5}), "name"),
        (json!({}), "name"),
        (json!({"name": "   "}), "name"),
        (
            json!({"name": "x", "billing_rate_per_agent": "abc"}),
            "billing_rate_per_agent",
        ),
        (
            json!({"name": "x", "billing_rate_per_agent": -1}),
            "billing_rate_per_agent",
        ),
        (
            json!({"name": "x", "billing_rate_per_agent": 1.005}),
            "billing_rate_per_agent",
        ),
        (
            json!({"name": "x", "billing_rate_per_agent": null}),
            "billing_rate_per_agent",
        ),
        (
            json!({"name": "x", "contact_email": "not-an-email"}),
            "contact_email",
        ),
        (json!({"name": "x", "active": "yes"}), "active"),
        (json!(["name"]), "body"),
    ];
    for (body, field) in cases {
        let r = s.post("/api/organizations", body.clone()).await;
        assert!(r.status == 422, "{body}: {}", r.text);
        r.err(422, field);
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "a rejected create wrote something"
    );
}

#[tokio::test]
async fn patch_updates_fields_and_null_clears_optional_ones() {
    let s = TestServer::start().await;
    let id = s.post("/api/organizations", seed_body()).await.ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/organizations/{id}");
    let o = s
        .patch(&path, json!({"name": "AgenticMail Ltd", "contact_name": null, "description": "renewed", "billing_rate_per_agent": "120.5"}))
        .await
        .ok();
    assert_eq!(o["name"], "AgenticMail Ltd");
    assert_eq!(o["contact_name"], serde_json::Value::Null);
    assert_eq!(
        o["contact_email"], "ope@agenticmail.com",
        "absent fields are kept"
    );
    assert_eq!(o["description"], "renewed");
    assert_eq!(o["billing_rate_per_agent"], "120.50");
    let got = s.get(&path).await.ok();
    assert_eq!(got["name"], "AgenticMail Ltd");

    let before = s.snapshot().await;
    s.patch(&path, json!({"name": ""})).await.err(422, "name");
    s.patch(&path, json!({"name": null})).await.err(422, "name");
    s.patch(&path, json!({"contact_email": "nope"}))
        .await
        .err(422, "contact_email");
    s.patch(&path, json!({"billing_rate_per_agent": "1.234"}))
        .await
        .err(422, "billing_rate_per_agent");
    s.patch(&path, json!({"unknown": true}))
        .await
        .err(422, "unknown");
    assert_eq!(s.snapshot().await, before);
    let r = s
        .patch(
            "/api/organizations/org_does_not_exist",
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn delete_needs_zero_agents_and_removes_the_edge_records() {
    let s = TestServer::start().await;
    let id = s.org("Doomed").await;
    let agent = s.agent(&id, "a1").await;
    let key = s.key(&id, json!({"name": "k"})).await;
    let key_kv = format!(
        "key:{}",
        policy::kv::key_hash_hex(key["key"].as_str().unwrap())
    );
    s.synced().await;
    assert!(s.kv(0, &key_kv).await.is_some());

    let before = s.snapshot().await;
    let r = s.delete(&format!("/api/organizations/{id}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "has_agents");
    assert_eq!(s.snapshot().await, before);

    s.post(&format!("/api/agents/{agent}/unassign-org"), json!({}))
        .await
        .ok();
    // The agent's days here are billing history: deleting loses it, so it takes a confirmation.
    let before = s.snapshot().await;
    let r = s.delete(&format!("/api/organizations/{id}")).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("billing_history")),
        "{}",
        r.text
    );
    assert_eq!(s.snapshot().await, before);
    let r = s
        .delete(&format!("/api/organizations/{id}?confirm=true"))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(s.get(&format!("/api/organizations/{id}")).await.status, 404);
    assert_eq!(
        s.get(&format!("/api/keys/{}", key["id"].as_str().unwrap()))
            .await
            .status,
        404
    );
    s.synced().await;
    assert!(
        s.kv(0, &policy::kv::org_key(&id)).await.is_none(),
        "org record left at the edge"
    );
    assert!(
        s.kv(0, &key_kv).await.is_none(),
        "key record left at the edge"
    );
    // The agent lives on in the internal org.
    let a = s.get(&format!("/api/agents/{agent}")).await.ok();
    assert_eq!(a["org_id"], "org_internal");
    assert_eq!(
        s.delete(&format!("/api/organizations/{id}")).await.status,
        404
    );
}

#[tokio::test]
async fn toggle_suspends_agents_and_keys_at_the_edge_and_back() {
    let s = TestServer::start().await;
    let id = s.org("Flip").await;
    let agent = s.agent(&id, "bot").await;
    let key = s.key(&id, json!({"name": "k", "agent_id": agent})).await;
    let key_kv = format!(
        "key:{}",
        policy::kv::key_hash_hex(key["key"].as_str().unwrap())
    );

    let off = s
        .post(&format!("/api/organizations/{id}/toggle"), json!({}))
        .await
        .ok();
    assert_eq!(off["active"], false);
    s.synced().await;
    let org: OrgRecord = s.record(&policy::kv::org_key(&id)).await.unwrap();
    let ag: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    let k: KeyRecord = s.record(&key_kv).await.unwrap();
    assert!(
        !org.active && !ag.active,
        "org and its agents are suspended at the edge"
    );
    assert_eq!(k.org_id, id);
    let secret = key["key"].as_str().unwrap();
    assert_eq!(
        s.edge(secret, None, None).await,
        Err(policy::Denial::OrgInactive)
    );

    let on = s
        .post(&format!("/api/organizations/{id}/toggle"), json!({}))
        .await
        .ok();
    assert_eq!(on["active"], true);
    s.synced().await;
    let org: OrgRecord = s.record(&policy::kv::org_key(&id)).await.unwrap();
    let ag: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    assert!(org.active && ag.active);
    assert_eq!(s.edge(secret, None, None).await, Ok(()));

    // PATCH active=false is the same switch.
    s.patch(
        &format!("/api/organizations/{id}"),
        json!({"active": false}),
    )
    .await
    .ok();
    s.synced().await;
    let ag: AgentRecord = s.record(&policy::kv::agent_key(&agent)).await.unwrap();
    assert!(!ag.active);
}

#[tokio::test]
async fn the_internal_org_holds_unassigned_agents_and_is_protected() {
    let s = TestServer::start().await;
    let a = s.post("/api/agents", json!({"name": "stray"})).await.ok();
    assert_eq!(a["org_id"], "org_internal");
    let internal = s.get("/api/organizations/org_internal").await.ok();
    assert_eq!(internal["is_internal"], true);
    assert!(
        internal["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == a["id"])
    );
    let before = s.snapshot().await;
    assert_eq!(
        s.delete("/api/organizations/org_internal").await.status,
        409
    );
    assert_eq!(
        s.post("/api/organizations/org_internal/toggle", json!({}))
            .await
            .status,
        409
    );
    s.patch("/api/organizations/org_internal", json!({"active": false}))
        .await
        .err(422, "active");
    assert_eq!(s.snapshot().await, before);
    s.synced().await;
    let rec: OrgRecord = s
        .record(&policy::kv::org_key("org_internal"))
        .await
        .expect("internal org pushed on a fresh install");
    assert!(rec.active);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let s = TestServer::start().await;
    let r = s.get("/api/nope").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = s
        .call(
            "PUT",
            "/api/organizations",
            crate::common::ADMIN,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}
