//! Invitation pre-hijack: memberships reached through an email address need proof of
//! that address. The secret goes by SMTP (to a real receiver on loopback) to the
//! invitee only; accounts that never used an emailed secret get nothing by email.

use serde_json::json;

use crate::common::TestServer;

/// Whether the user with `email` has proved the address, per the database.
async fn verified(s: &TestServer, email: &str) -> bool {
    let db = s.db().await;
    let at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT email_verified_at_ms FROM users WHERE email = $1")
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
    // An address with a display-name part would send the secret elsewhere than the
    // email the invitation is for.
    let sent = s.mail.count();
    s.post(
        &path,
        json!({"email": "x<other@example.com>", "role": "member"}),
    )
    .await
    .err(422, "email");
    assert_eq!(s.mail.count(), sent, "a refused invitation was emailed");
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
        let r = s.accept(guess, None).await;
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
    let acc = s.accept(&secret, None).await.expect(200);
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
        // What the admin knows: the invitation's id, and the secrets' shape.
        let id = inv["id"].as_str().unwrap();
        for guess in [id.to_string(), "tg-inv-".into(), format!("tg-inv-{id}")] {
            let r = s.accept(&guess, bearer).await;
            assert_eq!(r.status, 404, "{}", r.text);
        }
    }
    assert_eq!(s.snapshot().await, before, "no account for the victim");

    // The victim, reading their mail, gets the account; a platform admin may then
    // add it by email elsewhere, since it is now the address owner's.
    let secret = s.emailed_secret(victim);
    let acc = s.accept(&secret, None).await.expect(200);
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
    r.err(409, "email");
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
    s.accept(&secret, Some(own)).await.expect(200);
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

#[tokio::test]
async fn an_invitation_whose_email_cannot_be_sent_is_not_stored() {
    // A port nothing listens on: the SMTP connection is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", dead.local_addr().unwrap());
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("kv.db");
    let s = TestServer::start_mailing(dir, vec![sink], Some(url)).await;
    let org = s.org("Unmailed").await;
    let before = s.snapshot().await;
    let r = s
        .post(
            &format!("/api/organizations/{org}/invitations"),
            json!({"email": "lost@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert!(r.text.contains("email"), "{}", r.text);
    assert!(!r.text.contains("tg-inv-"), "{}", r.text);
    assert_eq!(
        s.snapshot().await,
        before,
        "an invitation nobody can accept was stored"
    );
}

/// Kills the spawned service when the test ends, pass or fail.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn without_smtp_the_binary_logs_the_accept_link() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-admin"))
        .env_remove("TOLLGATE_SMTP_URL")
        .env_remove("TOLLGATE_PUBLIC_URL")
        .env_remove("TOLLGATE_EDGE_KV")
        .env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("admin.db").display()),
        )
        .env("TOLLGATE_ADMIN_TOKEN", crate::common::ADMIN)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Log lines go to stderr (stdout carries the start-up banner).
    let log = Arc::new(Mutex::new(String::new()));
    let out = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let _service = Service(child);
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(crate::common::ADMIN)
            .json(&body)
            .send()
    };
    let start = Instant::now();
    let org = loop {
        if let Ok(r) = call(
            reqwest::Method::POST,
            "/api/organizations",
            json!({"name": "Local"}),
        )
        .await
        {
            break r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let inv = call(
        reqwest::Method::POST,
        &format!("/api/organizations/{org}/invitations"),
        json!({"email": "local@example.com", "role": "member"}),
    )
    .await
    .unwrap();
    assert_eq!(inv.status(), 201);
    assert!(!inv.text().await.unwrap().contains("tg-inv-"));
    let line = loop {
        let found = log
            .lock()
            .unwrap()
            .lines()
            .find(|l| l.contains("invitation email not sent"))
            .map(str::to_string);
        if let Some(line) = found {
            break line;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "not logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains(&format!("{base}/api/invitations/accept")),
        "{line}"
    );
    let secret = crate::common::smtp::invitation_secret(&line);
    let acc = client
        .post(format!("{base}/api/invitations/accept"))
        .json(&json!({ "token": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(acc.status(), 200);
    let acc: serde_json::Value = acc.json().await.unwrap();
    assert_eq!(acc["email"], "local@example.com");
}
