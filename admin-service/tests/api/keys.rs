//! Virtual keys as in the Prism doc: created once with the full key, listed by
//! prefix, revoked; only the hash is stored.

use serde_json::json;

use crate::common::{ADMIN, TestServer};
use policy::{Denial, KeyRecord, KeyStatus};

#[tokio::test]
async fn create_list_and_revoke_as_in_the_seed() {
    let s = TestServer::start().await;
    let org = s.org("Keys").await;
    // client.keys.create(org_id=..., name="backend-service", rate_limit_rpm=100, allowed_models=[...])
    let r = s
        .post(&format!("/api/organizations/{org}/keys"), json!({"name": "backend-service", "rate_limit_rpm": 100, "allowed_models": ["gpt-4o", "gpt-4o-mini"]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-tg-") && key.len() >= 40, "{key}");
    let prefix = r.body["key_prefix"].as_str().unwrap();
    assert!(
        key.starts_with(prefix) && prefix.len() < key.len() / 2,
        "{prefix}"
    );
    assert_eq!(r.body["rate_limit_rpm"], 100);

    let list = s.get(&format!("/api/organizations/{org}/keys")).await;
    assert!(!list.text.contains(&key), "the list shows the key");
    let listed = &list.body[0];
    assert_eq!(
        (listed["name"].as_str(), listed["key_prefix"].as_str()),
        (Some("backend-service"), Some(prefix))
    );
    assert!(listed.get("key").is_none());
    let got = s.get(&format!("/api/keys/{id}")).await;
    assert!(!got.text.contains(&key) && got.body["status"] == "active");
    s.assert_not_stored(&key, &s.snapshot().await);

    s.synced().await;
    let rec: KeyRecord = s
        .record(&format!("key:{}", policy::kv::key_hash_hex(&key)))
        .await
        .expect("key pushed under its hash");
    assert_eq!(
        (rec.key_id.as_str(), rec.status, rec.limits.rpm),
        (id.as_str(), KeyStatus::Active, Some(100))
    );
    assert_eq!(
        s.edge(&key, Some("gpt-4o"), None).await.err(),
        Some(Denial::NoRoute("gpt-4o".into())),
        "allowed, but the org has no provider yet"
    );
    assert_eq!(
        s.edge(&key, Some("o1"), None).await,
        Err(Denial::ModelNotAllowed("o1".into()))
    );

    // client.keys.delete(key_id=...)
    let rv = s.delete(&format!("/api/keys/{id}")).await.ok();
    assert_eq!(rv["status"], "revoked");
    assert!(rv["revoked_at"].is_string());
    assert_eq!(
        s.delete(&format!("/api/keys/{id}")).await.ok()["status"],
        "revoked",
        "revoking is idempotent"
    );
    s.synced().await;
    assert_eq!(s.edge(&key, None, None).await, Err(Denial::KeyRevoked));
}

#[tokio::test]
async fn ip_acls_expiry_budget_team_and_agent() {
    let s = TestServer::start().await;
    let org = s.org("Acl").await;
    let other = s.org("Other").await;
    let team = s.team(&org, json!({"name": "t"})).await;
    let foreign_team = s.team(&other, json!({"name": "t"})).await;
    let agent = s.agent(&org, "a").await;
    let foreign_agent = s.agent(&other, "b").await;
    let keys = format!("/api/organizations/{org}/keys");
    let k = s
        .post(
            &keys,
            json!({
                "name": "full", "team_id": team, "agent_id": agent,
                "ip_allow": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"], "ip_deny": ["10.9.0.0/16"],
                "rate_limit_tpm": 1000, "rate_limit_rph": 10, "rate_limit_rpd": 100, "rate_limit_tpd": 10000,
                "budget": {"limit": "25.50", "period": "weekly"},
                "expires_at": "2999-01-01T00:00:00Z"
            }),
        )
        .await;
    assert_eq!(k.status, 201, "{}", k.text);
    assert_eq!(
        k.body["ip_allow"],
        json!(["10.0.0.0/8", "2001:db8::/32", "192.168.1.7/32"])
    );
    assert_eq!(k.body["expires_at"], "2999-01-01T00:00:00Z");
    let secret = k.body["key"].as_str().unwrap();
    s.synced().await;
    let rec: KeyRecord = s
        .record(&format!("key:{}", policy::kv::key_hash_hex(secret)))
        .await
        .unwrap();
    assert_eq!(
        (rec.team_id.as_deref(), rec.agent_id.as_deref()),
        (Some(team.as_str()), Some(agent.as_str()))
    );
    assert_eq!(rec.budget.unwrap().limit_micros, 25_500_000);
    assert_eq!(rec.expires_at_ms, Some(32_472_144_000_000));
    assert_eq!(s.edge(secret, None, Some("10.1.2.3")).await, Ok(()));
    assert_eq!(s.edge(secret, None, Some("2001:db8::1")).await, Ok(()));
    assert_eq!(
        s.edge(secret, None, Some("10.9.1.1")).await,
        Err(Denial::IpNotAllowed)
    );
    assert_eq!(
        s.edge(secret, None, Some("8.8.8.8")).await,
        Err(Denial::IpNotAllowed)
    );

    let before = s.snapshot().await;
    let cases = [
        (
            json!({"name": "k", "ip_allow": ["10.0.0.0/8", "10.0.0.0/33"]}),
            "ip_allow[1]",
        ),
        (json!({"name": "k", "ip_deny": ["not-an-ip"]}), "ip_deny[0]"),
        (json!({"name": "k", "ip_allow": "10.0.0.0/8"}), "ip_allow"),
        (json!({"name": "k", "ip_allow": [10]}), "ip_allow[0]"),
        (
            json!({"name": "k", "expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "k", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"name": "k", "team_id": foreign_team}), "team_id"),
        (json!({"name": "k", "team_id": "team_nope"}), "team_id"),
        (json!({"name": "k", "agent_id": foreign_agent}), "agent_id"),
        (json!({"name": "k", "rate_limit_rpm": -1}), "rate_limit_rpm"),
        (
            json!({"name": "k", "rate_limit_rpm": "100"}),
            "rate_limit_rpm",
        ),
        (
            json!({"name": "k", "budget": {"limit": "x", "period": "daily"}}),
            "budget.limit",
        ),
        (
            json!({"name": "k", "budget": {"limit": 1, "period": "daily", "utc_offset_minutes": -2000}}),
            "budget.utc_offset_minutes",
        ),
        (
            json!({"name": "k", "allowed_models": [""]}),
            "allowed_models[0]",
        ),
        (json!({"name": ""}), "name"),
        (json!({}), "name"),
        (json!({"name": "k", "key": "sk-tg-chosen"}), "key"),
    ];
    for (body, field) in cases {
        let r = s.post(&keys, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        r.err(422, field);
    }
    let r = s
        .raw("POST", &keys, Some(ADMIN), Some("{\"name\": \"k\",}"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        s.snapshot().await,
        before,
        "a rejected key create wrote something"
    );
    assert_eq!(s.get(&keys).await.ok().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_create_keys_and_revoke_only_their_own() {
    let s = TestServer::start().await;
    let org = s.org("Own").await;
    let (_, member) = s.user(&org, "member").await;
    let (_, other_member) = s.user(&org, "member").await;
    let (_, admin) = s.user(&org, "admin").await;
    let keys = format!("/api/organizations/{org}/keys");
    let mine = s
        .call("POST", &keys, &member, Some(json!({"name": "mine"})))
        .await
        .ok();
    let theirs = s
        .call(
            "POST",
            &keys,
            &other_member,
            Some(json!({"name": "theirs"})),
        )
        .await
        .ok();
    s.call(
        "DELETE",
        &format!("/api/keys/{}", theirs["id"].as_str().unwrap()),
        &member,
        None,
    )
    .await
    .expect(403);
    let r = s
        .call(
            "DELETE",
            &format!("/api/keys/{}", mine["id"].as_str().unwrap()),
            &member,
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("revoked")),
        "{}",
        r.text
    );
    let r = s
        .call(
            "DELETE",
            &format!("/api/keys/{}", theirs["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "admins revoke any key of the org: {}",
        r.text
    );
}

#[tokio::test]
async fn a_key_from_another_org_is_invisible() {
    let s = TestServer::start().await;
    let a = s.org("A").await;
    let b = s.org("B").await;
    let (_, admin_a) = s.user(&a, "admin").await;
    let kb = s.key(&b, json!({"name": "b-key"})).await;
    let id = kb["id"].as_str().unwrap();
    let before = s.snapshot().await;
    for (m, p) in [
        ("GET", format!("/api/keys/{id}")),
        ("DELETE", format!("/api/keys/{id}")),
        ("GET", format!("/api/organizations/{b}/keys")),
    ] {
        let r = s.call(m, &p, &admin_a, None).await;
        assert_eq!(r.status, 404, "{m} {p}: {}", r.text);
        assert!(!r.text.contains("b-key"));
    }
    assert_eq!(s.snapshot().await, before);
}
