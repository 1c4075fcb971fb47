//! Keys change after creation: PATCH edits every setting under create's rules, and
//! rotation replaces the secret with an optional grace for the old one.

use std::sync::Arc;

use admin_service::store::db::Writer;
use admin_service::sync::outbox::Signal;
use serde_json::{Value, json};

use crate::common::TestServer;
use policy::kv::key_hash_hex;
use policy::{Denial, KeyRecord, KeyStatus};

async fn record_of(s: &TestServer, secret: &str) -> Option<KeyRecord> {
    s.record(&format!("key:{}", key_hash_hex(secret))).await
}

fn secret(v: &Value) -> String {
    v["key"].as_str().expect("the full key, once").to_string()
}

#[tokio::test]
async fn patch_edits_every_setting_and_the_edge_record_follows() {
    let s = TestServer::start().await;
    let org = s.org("Edits").await;
    let team = s.team(&org, json!({"name": "t"})).await;
    let agent = s.agent(&org, "a").await;
    let k = s
        .key(
            &org,
            json!({"name": "before", "allowed_models": ["gpt-4o", "gpt-4o-mini"], "rate_limit_rpm": 100}),
        )
        .await;
    let (id, key) = (k["id"].as_str().unwrap().to_string(), secret(&k));
    let path = format!("/api/keys/{id}");
    let v = s
        .patch(
            &path,
            json!({
                "name": "after", "team_id": team, "agent_id": agent,
                "allowed_models": ["gpt-4o-mini"], "ip_allow": ["10.0.0.0/8"], "ip_deny": ["10.9.0.0/16"],
                "rate_limit_rpm": 5, "rate_limit_tpm": 1000, "rate_limit_rph": 50, "rate_limit_rpd": 500, "rate_limit_tpd": 9000,
                "budget": {"limit": "3.25", "period": "daily"}, "expires_at": "2999-01-01T00:00:00Z"
            }),
        )
        .await
        .ok();
    assert_eq!(
        (
            v["name"].as_str(),
            v["team_id"].as_str(),
            v["agent_id"].as_str()
        ),
        (Some("after"), Some(team.as_str()), Some(agent.as_str()))
    );
    assert_eq!(v["allowed_models"], json!(["gpt-4o-mini"]));
    assert_eq!(v["rate_limit_rpm"], 5);
    assert_eq!(v["expires_at"], "2999-01-01T00:00:00Z");
    assert!(v.get("key").is_none(), "PATCH never shows the secret");
    assert_eq!(s.get(&path).await.ok(), v, "GET shows what PATCH answered");
    s.synced().await;
    let rec = record_of(&s, &key).await.unwrap();
    assert_eq!(rec.key_id, id);
    assert_eq!(
        (
            rec.limits.rpm,
            rec.limits.tpm,
            rec.limits.rph,
            rec.limits.rpd,
            rec.limits.tpd
        ),
        (Some(5), Some(1000), Some(50), Some(500), Some(9000))
    );
    assert_eq!(rec.budget.unwrap().limit_micros, 3_250_000);
    assert_eq!(
        (rec.team_id.as_deref(), rec.agent_id.as_deref()),
        (Some(team.as_str()), Some(agent.as_str()))
    );
    assert_eq!(rec.expires_at_ms, Some(32_472_144_000_000));
    assert_eq!(
        s.edge_access(&key, Some("gpt-4o"), Some("10.1.1.1")).await,
        Err(Denial::ModelNotAllowed("gpt-4o".into())),
        "the dropped model is refused"
    );
    assert_eq!(
        s.edge_access(&key, Some("gpt-4o-mini"), Some("8.8.8.8"))
            .await,
        Err(Denial::IpNotAllowed)
    );

    // `null` clears; an absent field keeps its value.
    let v = s
        .patch(
            &path,
            json!({"rate_limit_rpm": null, "allowed_models": null, "team_id": null, "agent_id": null, "budget": null, "expires_at": null, "ip_allow": []}),
        )
        .await
        .ok();
    assert_eq!(
        (v["rate_limit_rpm"].clone(), v["rate_limit_tpm"].clone()),
        (Value::Null, json!(1000))
    );
    assert!(v["allowed_models"].is_null() && v["team_id"].is_null() && v["expires_at"].is_null());
    assert_eq!(v["ip_deny"], json!(["10.9.0.0/16"]));
    s.synced().await;
    let rec = record_of(&s, &key).await.unwrap();
    assert!(rec.models.permits("gpt-4o") && rec.expires_at_ms.is_none() && rec.team_id.is_none());
    assert_eq!(
        s.edge_access(&key, Some("o1"), Some("8.8.8.8")).await,
        Ok(())
    );

    // Audited as a key update, with before and after and no secret.
    let log = s
        .get(&format!(
            "/api/organizations/{org}/audit-log?action=key.update"
        ))
        .await
        .ok();
    let newest = &log[0];
    assert_eq!(newest["entity_id"], json!(id));
    assert_eq!(newest["before"]["name"], "after");
    assert!(!log.to_string().contains(&key) && !log.to_string().contains(&key_hash_hex(&key)));
}

#[tokio::test]
async fn patch_refuses_widening_foreign_objects_revoked_keys_and_bad_fields() {
    let s = TestServer::start().await;
    s.post(
        "/api/models",
        json!({"name": "gpt-4o", "access_groups": ["support"]}),
    )
    .await
    .ok();
    let org = s.org("Guarded").await;
    let other = s.org("Other").await;
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"access": {"models": ["gpt-4o-mini", "o1"], "access_groups": ["support"]}}}),
    )
    .await
    .ok();
    let team = s
        .team(
            &org,
            json!({"name": "t", "allowed_models": ["gpt-4o-mini"]}),
        )
        .await;
    let foreign_team = s.team(&other, json!({"name": "t"})).await;
    let foreign_agent = s.agent(&other, "b").await;
    let k = s
        .key(&org, json!({"name": "k", "allowed_models": ["o1"]}))
        .await;
    let id = k["id"].as_str().unwrap().to_string();
    let path = format!("/api/keys/{id}");
    let in_team = s.key(&org, json!({"name": "t", "team_id": team})).await;
    let team_path = format!("/api/keys/{}", in_team["id"].as_str().unwrap());

    let (_, other_admin) = s.user(&other, "admin").await;
    let (_, viewer) = s.user(&org, "viewer").await;
    let before = s.snapshot().await;
    for (p, body, field) in [
        // Beyond the org's universe.
        (
            &path,
            json!({"allowed_models": ["claude-3-opus"]}),
            "allowed_models[0]",
        ),
        (&path, json!({"allowed_models": ["*"]}), "allowed_models[0]"),
        // Beyond the team's, though inside the org's.
        (
            &team_path,
            json!({"allowed_models": ["o1"]}),
            "allowed_models[0]",
        ),
        // Moving into a team that does not grant what the key has.
        (&path, json!({"team_id": team}), "allowed_models[0]"),
        (&path, json!({"team_id": foreign_team}), "team_id"),
        (&path, json!({"team_id": "team_nope"}), "team_id"),
        (&path, json!({"agent_id": foreign_agent}), "agent_id"),
        (&path, json!({"name": ""}), "name"),
        (&path, json!({"name": null}), "name"),
        (&path, json!({"ip_allow": ["10.0.0.0/33"]}), "ip_allow[0]"),
        (&path, json!({"ip_deny": null}), "ip_deny"),
        (&path, json!({"rate_limit_rpm": -1}), "rate_limit_rpm"),
        (
            &path,
            json!({"expires_at": "2020-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            &path,
            json!({"budget": {"limit": "x", "period": "daily"}}),
            "budget.limit",
        ),
        (&path, json!({"key": "sk-tg-chosen"}), "key"),
        (&path, json!({"status": "active"}), "status"),
        (
            &path,
            json!({"allowed_models": ["group:nope"]}),
            "allowed_models[0]",
        ),
    ] {
        s.patch(p, body.clone()).await.err(422, field);
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "a refused PATCH wrote something"
    );

    // Another org's admin: the key does not exist. A viewer: may not.
    for (verb, p, body) in [
        ("PATCH", path.clone(), json!({"name": "mine now"})),
        ("POST", format!("{path}/rotate"), json!({})),
    ] {
        let r = s.call(verb, &p, &other_admin, Some(body.clone())).await;
        assert_eq!(r.status, 404, "{verb} {p}: {}", r.text);
        assert!(!r.text.contains("\"k\""));
        s.call(verb, &p, &viewer, Some(body)).await.expect(403);
    }
    assert_eq!(s.snapshot().await, before);

    // Members edit and rotate their own keys, only into their teams, never others' keys.
    let (member_id, member) = s.user(&org, "member").await;
    s.post(
        &format!("/api/teams/{team}/members"),
        json!({"user_id": member_id}),
    )
    .await
    .ok();
    let mine = s
        .call(
            "POST",
            &format!("/api/organizations/{org}/keys"),
            &member,
            Some(json!({"name": "mine", "team_id": team})),
        )
        .await
        .expect(201);
    let mine_path = format!("/api/keys/{}", mine["id"].as_str().unwrap());
    s.call(
        "PATCH",
        &mine_path,
        &member,
        Some(json!({"rate_limit_rpm": 7})),
    )
    .await
    .ok();
    s.call("PATCH", &path, &member, Some(json!({"rate_limit_rpm": 7})))
        .await
        .expect(403);
    s.call("POST", &format!("{path}/rotate"), &member, Some(json!({})))
        .await
        .expect(403);
    let r = s
        .call("PATCH", &mine_path, &member, Some(json!({"team_id": null})))
        .await;
    assert_eq!(r.status, 403, "out of every team: {}", r.text);
    let rotated = s
        .call("POST", &format!("{mine_path}/rotate"), &member, None)
        .await
        .ok();
    assert!(secret(&rotated).starts_with("sk-tg-"));

    // Revoked keys are final.
    s.delete(&path).await.ok();
    let before = s.snapshot().await;
    let r = s.patch(&path, json!({"name": "revived"})).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("revoked")),
        "{}",
        r.text
    );
    let r = s
        .post(&format!("{path}/rotate"), json!({"grace_seconds": 60}))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(s.snapshot().await, before);
}

#[tokio::test]
async fn rotation_replaces_the_secret_and_the_old_one_ends_with_its_grace() {
    let s = TestServer::start().await;
    let org = s.org("Rotators").await;
    let k = s
        .key(&org, json!({"name": "rotating", "rate_limit_rpm": 9}))
        .await;
    let id = k["id"].as_str().unwrap().to_string();
    let rotate = format!("/api/keys/{id}/rotate");
    let first = secret(&k);

    // Grace 0 (the default, no body needed): the old secret is gone at once.
    let r = s
        .raw("POST", &rotate, Some(crate::common::ADMIN), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let second = secret(&r.body);
    assert_ne!(second, first);
    assert_eq!(r.body["id"], json!(id));
    assert_eq!(r.body["rate_limit_rpm"], 9, "settings stay");
    let prefix = r.body["key_prefix"].as_str().unwrap();
    assert!(second.starts_with(prefix) && !first.starts_with(prefix));
    let listed = s.get(&format!("/api/organizations/{org}/keys")).await.ok();
    assert_eq!(
        listed[0]["key_prefix"].as_str(),
        Some(prefix),
        "the inventory shows the new prefix"
    );
    assert!(!listed.to_string().contains(&second));
    s.assert_not_stored(&second, &s.snapshot().await);
    s.synced().await;
    assert_eq!(s.edge(&first, None, None).await, Err(Denial::UnknownKey));
    assert_eq!(s.edge(&second, None, None).await, Ok(()));
    assert_eq!(record_of(&s, &second).await.unwrap().key_id, id);

    // A grace: both work, as the same key; the old one until the grace ends.
    let t0 = admin_service::store::db::now_ms() as u64;
    let third = secret(&s.post(&rotate, json!({"grace_seconds": 3600})).await.ok());
    s.synced().await;
    let old = record_of(&s, &second).await.unwrap();
    let new = record_of(&s, &third).await.unwrap();
    assert_eq!(
        (old.key_id.as_str(), new.key_id.as_str()),
        (id.as_str(), id.as_str())
    );
    let ends = old.expires_at_ms.unwrap();
    assert!((t0 + 3_600_000..t0 + 3_610_000).contains(&ends), "{ends}");
    assert_eq!(new.expires_at_ms, None);
    assert_eq!(s.edge(&second, None, None).await, Ok(()));
    assert_eq!(s.edge(&third, None, None).await, Ok(()));

    // Edits reach the old secret too while it lives.
    s.patch(&format!("/api/keys/{id}"), json!({"rate_limit_rpm": 3}))
        .await
        .ok();
    s.synced().await;
    assert_eq!(record_of(&s, &second).await.unwrap().limits.rpm, Some(3));

    // Rotating again within the grace: the older secret never outlives the new grace.
    let fourth = secret(&s.post(&rotate, json!({"grace_seconds": 1})).await.ok());
    s.synced().await;
    for old in [&second, &third] {
        let ends = record_of(&s, old).await.unwrap().expires_at_ms.unwrap();
        assert!(
            ends <= admin_service::store::db::now_ms() as u64 + 1000,
            "{ends}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for old in [&second, &third] {
        assert_eq!(
            s.edge(old, None, None).await,
            Err(Denial::KeyExpired),
            "after the grace"
        );
    }
    assert_eq!(s.edge(&fourth, None, None).await, Ok(()));

    // The clean-up removes ended graces from the database and the edge.
    let db = s.db().await;
    let writer = Writer::new(Arc::new(Signal::new(0)));
    let ended =
        admin_service::api::rotation::end_graces(&db, &writer, admin_service::store::db::now_ms())
            .await
            .unwrap();
    // The service's own clean-up (every 30 s) may have been first.
    assert!(ended <= 2, "{ended}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_grace_hashes")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "ended graces are deleted");
    // Any later write wakes the pushers (the clean-up's own signal has none).
    s.patch(&format!("/api/keys/{id}"), json!({"name": "rotated"}))
        .await
        .ok();
    s.synced().await;
    for old in [&second, &third] {
        assert_eq!(s.edge(old, None, None).await, Err(Denial::UnknownKey));
    }

    // A grace never outlives the key's own expiry, and revocation ends it at once.
    let exp = admin_service::store::db::now_ms() + 120_000;
    s.patch(
        &format!("/api/keys/{id}"),
        json!({"expires_at": admin_service::store::db::rfc3339(exp)}),
    )
    .await
    .ok();
    let fifth = secret(&s.post(&rotate, json!({"grace_seconds": 86400})).await.ok());
    s.synced().await;
    let old = record_of(&s, &fourth).await.unwrap();
    assert!(old.expires_at_ms.unwrap() <= exp as u64, "{old:?}");
    s.delete(&format!("/api/keys/{id}")).await.ok();
    s.synced().await;
    for k in [&fourth, &fifth] {
        assert_eq!(record_of(&s, k).await.unwrap().status, KeyStatus::Revoked);
        assert_eq!(s.edge(k, None, None).await, Err(Denial::KeyRevoked));
    }

    // Bad bodies: 422 naming the field, nothing written.
    let k = s.key(&org, json!({"name": "other"})).await;
    let rotate = format!("/api/keys/{}/rotate", k["id"].as_str().unwrap());
    let before = s.snapshot().await;
    for (body, field) in [
        (json!({"grace_seconds": 604_801}), "grace_seconds"),
        (json!({"grace_seconds": -1}), "grace_seconds"),
        (json!({"grace_seconds": "60"}), "grace_seconds"),
        (json!({"grace": 60}), "grace"),
    ] {
        s.post(&rotate, body).await.err(422, field);
    }
    assert_eq!(s.snapshot().await, before);
    s.post(&rotate, json!({"grace_seconds": 604_800}))
        .await
        .ok();
}
