//! Unauthenticated invitation acceptance: the token is checked before the writer
//! lock, and guesses from one address are cut off with 429.

use std::sync::Arc;
use std::time::{Duration, Instant};

use admin_service::store::db::Writer;

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn a_guessed_token_is_refused_without_waiting_for_the_writer() {
    let s = TestServer::start().await;
    // Another writer (another replica, a long import) holds the database's write
    // lock: SQLite's, or the advisory lock every writer takes on PostgreSQL.
    let pool = s.db().await;
    let held = Writer::new(Arc::default()).begin(&pool).await.unwrap();
    let start = Instant::now();
    let guess = s.raw(
        "POST",
        "/api/invitations/accept",
        None,
        Some(r#"{"token":"tg-inv-guess"}"#),
    );
    tokio::time::timeout(Duration::from_secs(5), guess)
        .await
        .expect("the guess queued behind the writer")
        .expect(404);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the guess queued behind the writer: {:?}",
        start.elapsed()
    );
    drop(held);
}

#[tokio::test]
async fn repeated_guesses_from_one_address_get_429() {
    let s = TestServer::start().await;
    let org = s.org("Inviters").await;
    let (_, secret) = s.invite(&org, "real@example.com", "viewer").await;
    for i in 0..admin_service::auth::attempts::MAX_FAILURES {
        let body = json!({"token": format!("tg-inv-guess-{i}")}).to_string();
        s.raw("POST", "/api/invitations/accept", None, Some(&body))
            .await
            .expect(404);
    }
    let body = json!({"token": "tg-inv-guess-last"}).to_string();
    let r = s
        .raw("POST", "/api/invitations/accept", None, Some(&body))
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "too_many_attempts");
    // Cut off means cut off: even the right token waits out the window.
    let body = json!({ "token": secret }).to_string();
    s.raw("POST", "/api/invitations/accept", None, Some(&body))
        .await
        .expect(429);
}
