//! Users, memberships with the seed's roles, and invitations by email.

use serde_json::json;

use crate::common::{Resp, TestServer};

#[tokio::test]
async fn members_are_added_listed_changed_and_removed_and_users_span_orgs() {
    let s = TestServer::start().await;
    let a = s.org("A").await;
    let b = s.org("B").await;
    let u = s
        .post("/api/users", json!({"email": "Dana@Example.com"}))
        .await;
    assert_eq!(u.status, 201, "{}", u.text);
    assert_eq!(u.body["email"], "dana@example.com", "emails are normalized");
    let uid = u.body["id"].as_str().unwrap().to_string();
    let m = s
        .post(
            &format!("/api/organizations/{a}/members"),
            json!({"user_id": uid, "role": "admin"}),
        )
        .await;
    assert_eq!(
        (m.status, m.body["role"].as_str()),
        (201, Some("admin")),
        "{}",
        m.text
    );
    // By email only once Dana proved the address (email_verification.rs); by id the
    // platform admin names the account itself.
    s.post(
        &format!("/api/organizations/{b}/members"),
        json!({"email": "dana@example.com", "role": "viewer"}),
    )
    .await
    .err(409, "email");
    let m = s
        .post(
            &format!("/api/organizations/{b}/members"),
            json!({"user_id": uid, "role": "viewer"}),
        )
        .await;
    assert_eq!(
        (m.status, m.body["user_id"].as_str()),
        (201, Some(uid.as_str())),
        "{}",
        m.text
    );

    let tok = s
        .post(&format!("/api/users/{uid}/tokens"), json!({"name": "cli"}))
        .await
        .ok();
    let token = tok["token"].as_str().unwrap();
    assert!(token.starts_with("tg-user-"));
    let me = s.call("GET", "/api/me", token, None).await.ok();
    assert_eq!(me["platform_admin"], false);
    assert_eq!(me["user"]["email"], "dana@example.com");
    let mut roles: Vec<(String, String)> = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["org_id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    roles.sort();
    let mut want = vec![
        (a.clone(), "admin".to_string()),
        (b.clone(), "viewer".to_string()),
    ];
    want.sort();
    assert_eq!(roles, want);
    let orgs = s.call("GET", "/api/organizations", token, None).await.ok();
    assert_eq!(
        orgs.as_array().unwrap().len(),
        2,
        "a user sees exactly their orgs"
    );

    let list = s.get(&format!("/api/organizations/{a}/members")).await.ok();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|m| m["user_id"] == uid.as_str() && m["role"] == "admin")
    );
    let r = s
        .patch(
            &format!("/api/organizations/{a}/members/{uid}"),
            json!({"role": "member"}),
        )
        .await
        .ok();
    assert_eq!(r["role"], "member");
    let before = s.snapshot().await;
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"user_id": uid, "role": "viewer"}),
    )
    .await
    .err(409, "user_id");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"user_id": "usr_nope", "role": "viewer"}),
    )
    .await
    .err(422, "user_id");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"email": "ghost@example.com", "role": "viewer"}),
    )
    .await
    .err(422, "email");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"email": "not an email", "role": "viewer"}),
    )
    .await
    .err(422, "email");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"role": "viewer"}),
    )
    .await
    .err(422, "user_id");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"user_id": uid, "role": "superuser"}),
    )
    .await
    .err(422, "role");
    s.post(
        &format!("/api/organizations/{a}/members"),
        json!({"user_id": uid}),
    )
    .await
    .err(422, "role");
    s.patch(
        &format!("/api/organizations/{a}/members/{uid}"),
        json!({"role": 3}),
    )
    .await
    .err(422, "role");
    s.post("/api/users", json!({"email": "DANA@example.com"}))
        .await
        .err(409, "email");
    s.post("/api/users", json!({"email": "@example.com"}))
        .await
        .err(422, "email");
    s.post("/api/users", json!({"mail": "x@example.com"}))
        .await
        .err(422, "mail");
    assert_eq!(
        s.patch(
            &format!("/api/organizations/{a}/members/usr_nope"),
            json!({"role": "viewer"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        s.post("/api/users/usr_nope/tokens", json!({})).await.status,
        404
    );
    assert_eq!(s.snapshot().await, before);

    assert_eq!(
        s.delete(&format!("/api/organizations/{a}/members/{uid}"))
            .await
            .status,
        200
    );
    let me = s.call("GET", "/api/me", token, None).await.ok();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.call("GET", &format!("/api/organizations/{a}"), token, None)
            .await
            .status,
        404
    );
    let users = s.get("/api/users").await.ok();
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == uid.as_str())
    );
}

#[tokio::test]
async fn admins_manage_members_except_owners_and_an_org_keeps_an_owner() {
    let s = TestServer::start().await;
    let org = s.org("Roles").await;
    let (owner_id, owner) = s.user(&org, "owner").await;
    let (admin_id, admin) = s.user(&org, "admin").await;
    let (viewer_id, _) = s.user(&org, "viewer").await;
    let fresh = s
        .post("/api/users", json!({"email": "fresh@example.com"}))
        .await
        .ok();
    let members = format!("/api/organizations/{org}/members");
    let invitations = format!("/api/organizations/{org}/invitations");
    let role = |r: &str| Some(json!({ "role": r }));
    // In order: (who, method, path, body, expected status).
    let steps = [
        // Org roles do not add existing users directly (that would reveal accounts of
        // other tenants, without their consent): they invite.
        (
            &admin,
            "POST",
            members.clone(),
            Some(json!({"user_id": fresh["id"], "role": "viewer"})),
            403,
        ),
        (
            &owner,
            "POST",
            members.clone(),
            Some(json!({"user_id": fresh["id"], "role": "viewer"})),
            403,
        ),
        // Admins: not the owner role, not owners...
        (
            &admin,
            "PATCH",
            format!("{members}/{viewer_id}"),
            role("owner"),
            403,
        ),
        (
            &admin,
            "PATCH",
            format!("{members}/{owner_id}"),
            role("viewer"),
            403,
        ),
        (&admin, "DELETE", format!("{members}/{owner_id}"), None, 403),
        (
            &admin,
            "POST",
            invitations.clone(),
            Some(json!({"email": "o@example.com", "role": "owner"})),
            403,
        ),
        // ...but everything below owner.
        (
            &admin,
            "POST",
            invitations.clone(),
            Some(json!({"email": "a2@example.com", "role": "admin"})),
            201,
        ),
        (
            &admin,
            "PATCH",
            format!("{members}/{viewer_id}"),
            role("member"),
            200,
        ),
        // The last owner can be neither demoted nor removed, even by themselves.
        (
            &owner,
            "PATCH",
            format!("{members}/{owner_id}"),
            role("admin"),
            409,
        ),
        (&owner, "DELETE", format!("{members}/{owner_id}"), None, 409),
        // With a second owner, the first may step down...
        (
            &owner,
            "PATCH",
            format!("{members}/{admin_id}"),
            role("owner"),
            200,
        ),
        (
            &owner,
            "PATCH",
            format!("{members}/{owner_id}"),
            role("viewer"),
            200,
        ),
        // ...and has lost owner rights at once.
        (
            &owner,
            "POST",
            format!("/api/organizations/{org}/toggle"),
            None,
            403,
        ),
    ];
    for (tok, method, path, body, want) in steps {
        let r = s.call(method, &path, tok, body).await;
        assert_eq!(r.status, want, "{method} {path}: {}", r.text);
        if want == 409 && method == "PATCH" {
            r.err(409, "role");
        }
    }
}

#[tokio::test]
async fn invitations_are_single_use_expire_and_store_only_a_hash() {
    let s = TestServer::start().await;
    let org = s.org("Invites").await;
    let inv_path = format!("/api/organizations/{org}/invitations");
    let inv = s
        .post(
            &inv_path,
            json!({"email": "New.Person@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(inv.status, 201, "{}", inv.text);
    let token = s.emailed_secret("new.person@example.com");
    assert!(token.starts_with("tg-inv-"));
    assert!(!inv.text.contains(&token), "the inviter got the secret");
    assert_eq!(
        (inv.body["email"].as_str(), inv.body["status"].as_str()),
        (Some("new.person@example.com"), Some("pending"))
    );
    let listed = s.get(&inv_path).await;
    assert!(!listed.text.contains(&token), "the list shows the token");
    assert_eq!(listed.body[0]["status"], "pending");
    s.assert_not_stored(&token, &s.snapshot().await);

    // Accepting needs no bearer token: the emailed secret is the credential.
    let acc = accept(&s, &json!(token), None).await;
    assert_eq!(acc.status, 200, "{}", acc.text);
    assert_eq!(
        (acc.body["org_id"].as_str(), acc.body["role"].as_str()),
        (Some(org.as_str()), Some("member"))
    );
    let user_token = acc.body["token"].as_str().unwrap().to_string();
    let me = s.call("GET", "/api/me", &user_token, None).await.ok();
    assert_eq!(me["memberships"][0]["role"], "member");
    assert_eq!(me["user"]["email"], "new.person@example.com");
    assert_eq!(s.get(&inv_path).await.ok()[0]["status"], "accepted");
    s.assert_not_stored(&user_token, &s.snapshot().await);

    // Single use.
    let before = s.snapshot().await;
    let again = accept(&s, &json!(token), None).await;
    assert_eq!(again.status, 404, "{}", again.text);
    assert_eq!(s.snapshot().await, before);

    // Revoked: unusable.
    let inv2 = s
        .post(
            &inv_path,
            json!({"email": "late@example.com", "role": "viewer"}),
        )
        .await
        .ok();
    let secret2 = s.emailed_secret("late@example.com");
    assert_eq!(
        s.delete(&format!(
            "/api/invitations/{}",
            inv2["id"].as_str().unwrap()
        ))
        .await
        .status,
        204
    );
    accept(&s, &json!(secret2), None).await.expect(404);

    // Expired: 410. Time is moved by rewriting the stored expiry.
    let inv3 = s
        .post(
            &inv_path,
            json!({"email": "slow@example.com", "role": "viewer", "expires_in_hours": 1}),
        )
        .await
        .ok();
    let secret3 = s.emailed_secret("slow@example.com");
    let db = s.db().await;
    sqlx::query("UPDATE invitations SET expires_at_ms = 1 WHERE id = $1")
        .bind(inv3["id"].as_str())
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    accept(&s, &json!(secret3), None).await.expect(410);
    let members = s
        .get(&format!("/api/organizations/{org}/members"))
        .await
        .ok();
    assert!(
        !members.to_string().contains("slow@example.com"),
        "an expired invitation made a member"
    );

    let before = s.snapshot().await;
    s.post(&inv_path, json!({"email": "nope", "role": "viewer"}))
        .await
        .err(422, "email");
    s.post(&inv_path, json!({"email": "a@example.com", "role": "god"}))
        .await
        .err(422, "role");
    s.post(
        &inv_path,
        json!({"email": "a@example.com", "role": "viewer", "expires_in_hours": 0}),
    )
    .await
    .err(422, "expires_in_hours");
    s.post(
        &inv_path,
        json!({"email": "a@example.com", "role": "viewer", "expires_in_hours": -1}),
    )
    .await
    .err(422, "expires_in_hours");
    s.post(
        &inv_path,
        json!({"email": "a@example.com", "role": "viewer", "cc": "b"}),
    )
    .await
    .err(422, "cc");
    let r = s
        .raw("POST", "/api/invitations/accept", None, Some("{\"token\":"))
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .raw("POST", "/api/invitations/accept", None, Some("{}"))
        .await;
    r.err(422, "token");
    let r = s
        .raw(
            "POST",
            "/api/invitations/accept",
            None,
            Some("{\"token\": \"tg-inv-made-up\"}"),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(s.snapshot().await, before);
}

/// Accepts the invitation with `token`, presenting `bearer` if any.
async fn accept(s: &TestServer, token: &serde_json::Value, bearer: Option<&str>) -> Resp {
    let body = json!({ "token": token }).to_string();
    s.raw("POST", "/api/invitations/accept", bearer, Some(&body))
        .await
}

/// Invites the user behind `token` to `org` as `role` and accepts with that token.
async fn invite_and_accept(s: &TestServer, org: &str, token: &str, role: &str) -> Resp {
    let me = s.call("GET", "/api/me", token, None).await.ok();
    let email = me["user"]["email"].as_str().unwrap();
    let (_, secret) = s.invite(org, email, role).await;
    let accept = json!({ "token": secret });
    s.call("POST", "/api/invitations/accept", token, Some(accept))
        .await
}

#[tokio::test]
async fn accepting_an_invitation_never_demotes_an_existing_member() {
    let s = TestServer::start().await;
    let org = s.org("Keep").await;
    let (_, owner) = s.user(&org, "owner").await;
    // An admin may not demote an owner directly; an invitation must not do it either.
    let r = invite_and_accept(&s, &org, &owner, "viewer").await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (200, Some("owner")),
        "{}",
        r.text
    );
    assert!(
        r.body.get("token").is_none(),
        "an existing user gets no new token: {}",
        r.text
    );
    let toggle = format!("/api/organizations/{org}/toggle");
    s.call("POST", &toggle, &owner, None).await.expect(200);
    // An invitation to a stronger role does raise it.
    let (_, viewer) = s.user(&org, "viewer").await;
    let r = invite_and_accept(&s, &org, &viewer, "admin").await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (200, Some("admin")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn an_inviter_cannot_take_over_an_existing_account() {
    let s = TestServer::start().await;
    let a = s.org("Attacker").await;
    let b = s.org("Victim").await;
    let (_, admin_a) = s.user(&a, "admin").await;
    let (_, owner_b) = s.user(&b, "owner").await;
    let victim = s.call("GET", "/api/me", &owner_b, None).await.ok()["user"]["email"]
        .as_str()
        .unwrap()
        .to_string();
    // The admin of A invites B's owner; the secret goes to the owner's mailbox. Even
    // if it leaked to the admin, it is no way into the owner's account.
    let inv = s
        .call(
            "POST",
            &format!("/api/organizations/{a}/invitations"),
            &admin_a,
            Some(json!({"email": victim, "role": "viewer"})),
        )
        .await
        .expect(201);
    let secret = s.emailed_secret(&victim);
    assert!(!inv.to_string().contains(&secret), "{inv}");
    let accept = json!({ "token": secret }).to_string();
    let before = s.snapshot().await;
    let r = s
        .raw("POST", "/api/invitations/accept", None, Some(&accept))
        .await;
    assert_eq!(
        r.status, 401,
        "accepting for an existing account without its token: {}",
        r.text
    );
    assert!(!r.text.contains("tg-user-"), "{}", r.text);
    let r = s
        .raw(
            "POST",
            "/api/invitations/accept",
            Some(&admin_a),
            Some(&accept),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "accepting with someone else's token: {}",
        r.text
    );
    assert_eq!(
        s.snapshot().await,
        before,
        "a refused accept wrote something"
    );
    // The invitation stays usable by its rightful user, who gets no new token.
    let r = s
        .raw(
            "POST",
            "/api/invitations/accept",
            Some(&owner_b),
            Some(&accept),
        )
        .await;
    assert_eq!(
        (r.status, r.body["org_id"].as_str()),
        (200, Some(a.as_str())),
        "{}",
        r.text
    );
    assert!(r.body.get("token").is_none(), "{}", r.text);
}
