//! Token lifecycle: list without secrets, issue with expiry, revoke (effective on
//! the next request), and rotation of the bootstrap token by `TOLLGATE_ADMIN_TOKEN`.

use serde_json::json;

use crate::common::{ADMIN, TestServer};

#[tokio::test]
async fn users_list_issue_and_revoke_their_own_tokens_and_revocation_is_immediate() {
    let s = TestServer::start().await;
    let org = s.org("Tokens").await;
    let (uid, first) = s.user(&org, "member").await;
    let (_, other) = s.user(&org, "member").await;

    // A second token of one's own, with an expiry; the secret is shown once.
    let created = s
        .call(
            "POST",
            "/api/tokens",
            &first,
            Some(json!({"name": "laptop", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await
        .expect(201);
    let second = created["token"].as_str().unwrap().to_string();
    assert!(second.starts_with("tg-user-"), "{created}");
    assert_eq!(created["user_id"], uid.as_str());
    assert_eq!(created["expires_at"], "2099-01-01T00:00:00Z");
    s.call("GET", "/api/me", &second, None).await.ok();

    // The list: names, prefixes, last use and expiry; never a secret.
    let listed = s.call("GET", "/api/tokens", &first, None).await;
    let rows = listed.body.as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{}", listed.text);
    assert!(!listed.text.contains(&second) && !listed.text.contains(&first));
    let laptop = rows.iter().find(|r| r["name"] == "laptop").unwrap();
    assert_eq!(laptop["prefix"], &second[..13]);
    assert_eq!(laptop["status"], "active");
    assert!(laptop["last_used_at"].is_string(), "{laptop}");
    s.assert_not_stored(&second, &s.snapshot().await);

    // Another user sees none of them and cannot revoke them (404, not 403).
    let theirs = s.call("GET", "/api/tokens", &other, None).await.ok();
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let tid = created["id"].as_str().unwrap();
    s.call("DELETE", &format!("/api/tokens/{tid}"), &other, None)
        .await
        .expect(404);
    s.call("GET", &format!("/api/users/{uid}/tokens"), &other, None)
        .await
        .expect(403);
    s.call("GET", "/api/me", &second, None).await.ok();

    // Revoking one's own token: the very next request with it is refused.
    let r = s
        .call("DELETE", &format!("/api/tokens/{tid}"), &first, None)
        .await
        .ok();
    assert_eq!(r["status"], "revoked");
    s.call("GET", "/api/me", &second, None).await.expect(401);
    s.call("GET", "/api/me", &first, None).await.ok();

    // Platform admins see every token and revoke any.
    let all = s.get(&format!("/api/users/{uid}/tokens")).await.ok();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let first_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "active")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.delete(&format!("/api/tokens/{first_id}")).await.ok();
    s.call("GET", "/api/me", &first, None).await.expect(401);
    let everyone = s.get("/api/tokens").await.ok();
    assert!(everyone.as_array().unwrap().len() >= 4);
}

#[tokio::test]
async fn expired_tokens_are_refused_and_bad_expiries_name_the_field() {
    let s = TestServer::start().await;
    let org = s.org("Expiry").await;
    let (uid, tok) = s.user(&org, "viewer").await;
    s.call(
        "POST",
        "/api/tokens",
        &tok,
        Some(json!({"expires_at": "2001-01-01T00:00:00Z"})),
    )
    .await
    .err(422, "expires_at");
    s.call(
        "POST",
        "/api/tokens",
        &tok,
        Some(json!({"expires_at": "soon"})),
    )
    .await
    .err(422, "expires_at");
    let soon = admin_service::store::db::rfc3339(admin_service::store::db::now_ms() + 1_500);
    let t = s
        .post(
            &format!("/api/users/{uid}/tokens"),
            json!({"name": "short", "expires_at": soon}),
        )
        .await
        .expect(201);
    let short = t["token"].as_str().unwrap();
    s.call("GET", "/api/me", short, None).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(1_700)).await;
    s.call("GET", "/api/me", short, None).await.expect(401);
    let listed = s.call("GET", "/api/tokens", &tok, None).await.ok();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "short" && r["status"] == "expired"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_changed_admin_token_replaces_the_bootstrap_token() {
    let s = TestServer::start().await;
    // A platform admin's own extra token survives rotation; only the bootstrap changes.
    let extra = s
        .post("/api/tokens", json!({"name": "ci"}))
        .await
        .expect(201);
    let extra = extra["token"].as_str().unwrap().to_string();
    assert!(extra.starts_with("tg-admin-"));
    let db = s.db().await;
    const ROTATED: &str = "tg-admin-rotated-fedcba9876543210";
    admin_service::auth::bootstrap(&db, Some(ROTATED))
        .await
        .unwrap();
    s.call("GET", "/api/me", ADMIN, None).await.expect(401);
    let me = s.call("GET", "/api/me", ROTATED, None).await.ok();
    assert_eq!(me["platform_admin"], true);
    s.call("GET", "/api/me", &extra, None).await.ok();
    // Restarting with the same value changes nothing; one live bootstrap token.
    admin_service::auth::bootstrap(&db, Some(ROTATED))
        .await
        .unwrap();
    let tokens = s.call("GET", "/api/tokens", ROTATED, None).await.ok();
    let live: Vec<_> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["bootstrap"] == true && t["status"] == "active")
        .collect();
    assert_eq!(live.len(), 1, "{tokens}");
    assert_eq!(live[0]["prefix"], &ROTATED[..13]);
}
