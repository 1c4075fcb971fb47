//! Invitation pre-hijack: memberships reached through an email address need proof of
//! that address. The secret goes by SMTP (to a real receiver on loopback) to the
//! invitee only; accounts that never used an emailed secret get nothing by email.

use serde_json::json;

use crate::common::TestServer;

/// Whether the user with `email` has proved the address, per the database.
async fn verified(s: &TestServer, email: &str) -> bool {
    let db = s.db().await;
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT email_verified_at_ms FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&db)
            .await
            .unwrap();
    db.close().await;
    at.flatten().is_some()
}

#[tokio::test]
async fn the_invitation_secret_reaches_only_the_invitees_mailbox() {
    let s = TestServer::start().await;
    let org = s.org("Mailers").await;
    let path = format!("/api/organizations/{org}/invitations");
    let inv = s
        .post(
            &path,
            json!({"email": "Newcomer@Example.com", "role": "member"}),
        )
        .await
        .expect(201);
    assert!(
        inv.get("token").is_none() && !inv.to_string().contains("tg-inv-"),
        "the inviter got the secret: {inv}"
    );
    let listed = s.get(&path).await.ok();
    assert!(!listed.to_string().contains("tg-inv-"), "{listed}");

    let mails = s.mail.mail_to("newcomer@example.com");
    assert_eq!(mails.len(), 1, "one email to the invitee");
    let mail = &mails[0];
    assert!(
        mail.data
            .contains("Subject: Invitation to Mailers on Tollgate"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("http://tollgate.test.example/api/invitations/accept"),
        "the email holds the accept link: {}",
        mail.data
    );
    let secret = s.emailed_secret("newcomer@example.com");
    assert_eq!(secret.len(), "tg-inv-".len() + 48, "{secret}");

    // A guessed secret, or a near miss of the real one, gets nothing.
    let before = s.snapshot().await;
    let mut near = secret.clone();
    near.replace_range(
        near.len() - 1..,
        if secret.ends_with('0') { "1" } else { "0" },
    );
    for guess in [
        "tg-inv-000000000000000000000000000000000000000000000000",
        &near,
    ] {
        let r = s
            .raw(
                "POST",
                "/api/invitations/accept",
                None,
                Some(&json!({ "token": guess }).to_string()),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert!(!r.text.contains("tg-user-"), "{}", r.text);
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "a refused accept wrote something"
    );
    assert!(!verified(&s, "newcomer@example.com").await);

    // The emailed secret creates the account, verified, and hands it its token.
    let acc = s
        .raw(
            "POST",
            "/api/invitations/accept",
            None,
            Some(&json!({ "token": secret }).to_string()),
        )
        .await
        .expect(200);
    let token = acc["token"].as_str().unwrap();
    let me = s.call("GET", "/api/me", token, None).await.ok();
    assert_eq!(me["user"]["email"], "newcomer@example.com");
    assert_eq!(me["memberships"][0]["role"], "member");
    assert!(verified(&s, "newcomer@example.com").await);
}

#[tokio::test]
async fn an_org_admin_cannot_pre_hijack_an_address_without_an_account() {
    let s = TestServer::start().await;
    let a = s.org("Attacker").await;
    let b = s.org("Bystander").await;
    let (_, admin_a) = s.user(&a, "admin").await;
    let victim = "victim@example.com";

    // The admin invites an address that has no account yet and tries to accept the
    // invitation themselves, with and without their own bearer token.
    let inv = s
        .call(
            "POST",
            &format!("/api/organizations/{a}/invitations"),
            &admin_a,
            Some(json!({"email": victim, "role": "admin"})),
        )
        .await
        .expect(201);
    assert!(!inv.to_string().contains("tg-inv-"), "{inv}");
    let listed = s
        .call(
            "GET",
            &format!("/api/organizations/{a}/invitations"),
            &admin_a,
            None,
        )
        .await
        .ok();
    assert!(!listed.to_string().contains("tg-inv-"), "{listed}");
    let before = s.snapshot().await;
    for bearer in [None, Some(admin_a.as_str())] {
        for guess in [
            json!(inv["id"]),
            json!("tg-inv-"),
            json!(format!("tg-inv-{}", inv["id"])),
        ] {
            let r = s
                .raw(
                    "POST",
                    "/api/invitations/accept",
                    bearer,
                    Some(&json!({ "token": guess }).to_string()),
                )
                .await;
            assert_eq!(r.status, 404, "{}", r.text);
        }
    }
    assert_eq!(s.snapshot().await, before, "no account for the victim");

    // The victim, reading their mail, gets the account; a platform admin may then
    // add it by email elsewhere, since it is now the address owner's.
    let secret = s.emailed_secret(victim);
    let acc = s
        .raw(
            "POST",
            "/api/invitations/accept",
            None,
            Some(&json!({ "token": secret }).to_string()),
        )
        .await
        .expect(200);
    assert!(acc["token"].as_str().unwrap().starts_with("tg-user-"));
    s.post(
        &format!("/api/organizations/{b}/members"),
        json!({"email": victim, "role": "viewer"}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn adding_an_unverified_account_by_email_grants_nothing() {
    let s = TestServer::start().await;
    let first = s.org("First").await;
    let second = s.org("Second").await;
    // An account made for the address by someone else (here the platform API) that
    // never used an emailed secret.
    let user = s
        .post("/api/users", json!({"email": "unproven@example.com"}))
        .await
        .expect(201);
    let uid = user["id"].as_str().unwrap().to_string();
    let before = s.snapshot().await;
    let r = s
        .post(
            &format!("/api/organizations/{first}/members"),
            json!({"email": "Unproven@example.com", "role": "admin"}),
        )
        .await;
    r.err(422, "email");
    assert!(r.text.contains("invitation"), "{}", r.text);
    assert_eq!(s.snapshot().await, before, "the refusal stored something");

    // Once its owner accepts an emailed invitation (signed in as themselves), the
    // address is proven and adding by email works.
    let tok = s
        .post(&format!("/api/users/{uid}/tokens"), json!({}))
        .await
        .ok();
    let own = tok["token"].as_str().unwrap();
    let (_, secret) = s.invite(&second, "unproven@example.com", "viewer").await;
    s.call(
        "POST",
        "/api/invitations/accept",
        own,
        Some(json!({ "token": secret })),
    )
    .await
    .expect(200);
    assert!(verified(&s, "unproven@example.com").await);
    let m = s
        .post(
            &format!("/api/organizations/{first}/members"),
            json!({"email": "unproven@example.com", "role": "admin"}),
        )
        .await
        .expect(201);
    assert_eq!(m["user_id"], json!(uid));
}
