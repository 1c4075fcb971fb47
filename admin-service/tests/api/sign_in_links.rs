//! Emailed one-time dashboard sign-in links, through a real SMTP receiver: the link
//! signs in once, before it expires, as a token that dies with the session; asking
//! tells nobody which addresses have accounts, and is limited per address.

use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::json;

use crate::common::TestServer;

/// A browser that neither follows redirects nor keeps cookies.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The link's secret in an email (quoted-printable soft breaks undone).
fn link_secret(mail: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=\n", "");
    let marker = "http://tollgate.test.example/sign-in/email/";
    let at = text.find(marker).expect("a sign-in link at the public URL") + marker.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// Asks for a link for `email`: status and page.
async fn ask(s: &TestServer, email: &str) -> (u16, String) {
    let res = browser()
        .post(format!("{}/sign-in/email", s.base))
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Posts the link's sign-in button from `origin`: status and the session cookie.
async fn use_link(s: &TestServer, secret: &str, origin: &str) -> (u16, Option<String>) {
    let res = browser()
        .post(format!("{}/sign-in/email/{secret}", s.base))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    (res.status().as_u16(), cookie)
}

/// `GET path` with `cookie`: status, Location and page.
async fn page(s: &TestServer, path: &str, cookie: &str) -> (u16, String, String) {
    let res = browser()
        .get(format!("{}{path}", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let location = res
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (res.status().as_u16(), location, res.text().await.unwrap())
}

/// The minted tokens of `user`: (revoked, expires set).
async fn minted(s: &TestServer, user: &str) -> Vec<(bool, bool)> {
    let db = s.db().await;
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT revoked_at_ms, expires_at_ms FROM api_tokens
         WHERE user_id = $1 AND name = 'dashboard sign-in'",
    )
    .bind(user)
    .fetch_all(&db)
    .await
    .unwrap();
    db.close().await;
    rows.into_iter()
        .map(|(r, e)| (r.is_some(), e.is_some()))
        .collect()
}

#[tokio::test]
async fn an_emailed_link_signs_in_once_as_a_token_that_ends_with_the_session() {
    let s = TestServer::start().await;
    let org = s.org("Linked Org").await;
    let user = s
        .post("/api/users", json!({"email": "Reader@Example.com"}))
        .await
        .ok();
    let uid = user["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/organizations/{org}/members"),
        json!({"user_id": uid, "role": "viewer"}),
    )
    .await
    .ok();

    // An address without an account gets the same answer, and no email.
    let before = s.mail.count();
    let (status, nobody) = ask(&s, "nobody@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(s.mail.count(), before, "no mail for an unknown address");
    let (status, known) = ask(&s, "reader@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        nobody.replace("nobody@example.com", "X"),
        known.replace("reader@example.com", "X"),
        "the page tells which addresses have accounts"
    );
    let mails = s.mail.mail_to("reader@example.com");
    assert_eq!(mails.len(), 1, "one email to the account's address");
    let secret = link_secret(&mails[0].data);
    assert_eq!(secret.len(), 64, "{}", mails[0].data);

    // Opening the link (a mail scanner would) uses nothing up; another site cannot
    // post it.
    let (status, _, html) = page(&s, &format!("/sign-in/email/{secret}"), "").await;
    assert_eq!(status, 200);
    assert!(html.contains("use-link"), "{html}");
    let (status, cookie) = use_link(&s, &secret, "http://evil.example").await;
    assert_eq!((status, cookie), (403, None));

    let (status, cookie) = use_link(&s, &secret, &s.base).await;
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    let (status, _, home) = page(&s, "/", &cookie).await;
    assert_eq!(status, 200, "{home}");
    assert!(
        home.contains("Linked Org") && home.contains("viewer"),
        "{home}"
    );
    assert_eq!(minted(&s, &uid).await, [(false, true)]);
    let verified: Option<i64> =
        sqlx::query_scalar("SELECT email_verified_at_ms FROM users WHERE id = $1")
            .bind(&uid)
            .fetch_one(&s.db().await)
            .await
            .unwrap();
    assert!(verified.is_some(), "following the link proves the address");

    // Used once: a second use is refused and makes no session.
    let (status, again) = use_link(&s, &secret, &s.base).await;
    assert_eq!((status, again), (401, None));
    let (status, _) = use_link(&s, &"0".repeat(64), &s.base).await;
    assert_eq!(status, 401);

    // Signing out ends the session and revokes the token the link minted.
    let csrf = home
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a csrf field")
        .to_string();
    let res = browser()
        .post(format!("{}/sign-out", s.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(minted(&s, &uid).await, [(true, true)]);
    let (status, location, _) = page(&s, "/", &cookie).await;
    assert_eq!((status, location.as_str()), (303, "/sign-in"));

    // An expired link is refused.
    let (status, _) = ask(&s, "reader@example.com").await;
    assert_eq!(status, 200);
    let late = link_secret(&s.mail.mail_to("reader@example.com")[1].data);
    let db = s.db().await;
    sqlx::query("UPDATE ui_sign_in_links SET expires_at_ms = 0 WHERE used_at_ms IS NULL")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    let (status, cookie) = use_link(&s, &late, &s.base).await;
    assert_eq!((status, cookie), (401, None));

    // Three asks per address in fifteen minutes, known or not: the same limit.
    for (email, asked) in [("reader@example.com", 2), ("nobody@example.com", 1)] {
        for _ in asked..3 {
            let (status, _) = ask(&s, email).await;
            assert_eq!(status, 200, "{email}");
        }
        let (status, page) = ask(&s, email).await;
        assert_eq!(status, 429, "{email}");
        assert!(page.contains("too many"), "{page}");
    }
    assert_eq!(s.mail.mail_to("reader@example.com").len(), 3);
}
