//! Admin authentication: the bootstrap platform-admin token, hashed tokens, 401s.

use crate::common::{ADMIN, TestServer};

#[tokio::test]
async fn first_start_generates_one_admin_token_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    // The backend TOLLGATE_TEST_DB names: bootstrap runs on both.
    let url = test_postgres::database_url(dir.path());
    let config = admin_service::Config {
        database_url: url.clone(),
        edge_kv: Vec::new(),
        admin_token: None,
        ..Default::default()
    };
    let first = admin_service::start(&config).await.unwrap();
    let token = first
        .generated_admin_token
        .clone()
        .expect("a token on first start");
    assert!(
        token.starts_with("tg-admin-") && token.len() > 40,
        "{token}"
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&first.state.db)
        .await
        .unwrap();
    assert_eq!(stored, vec![admin_service::auth::hash_secret(&token)]);
    // The token works against the real router.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(admin_service::serve(
        listener,
        first.state.clone(),
        std::future::pending(),
    ));
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{addr}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["platform_admin"], true);
    server.abort();
    first.state.db.close().await;

    // A second start prints nothing: the token exists.
    let second = admin_service::start(&config).await.unwrap();
    assert!(second.generated_admin_token.is_none());
    second.state.db.close().await;
    let raw: Vec<u8> = if url.starts_with("postgres") {
        test_postgres::table_text(&url)
    } else {
        ["", "-wal"]
            .iter()
            .flat_map(|s| {
                std::fs::read(format!("{}{s}", dir.path().join("admin.db").display()))
                    .unwrap_or_default()
            })
            .collect()
    };
    assert!(
        !crate::common::contains(&raw, &token),
        "the admin token is stored in clear"
    );

    // A token from the environment is registered and nothing is generated.
    let dir2 = tempfile::tempdir().unwrap();
    let env = admin_service::Config {
        database_url: test_postgres::database_url(dir2.path()),
        edge_kv: Vec::new(),
        admin_token: Some("tg-admin-from-env-0001".into()),
        ..Default::default()
    };
    let st = admin_service::start(&env).await.unwrap();
    assert!(st.generated_admin_token.is_none());
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE platform_admin = 1 AND token_hash = $1",
    )
    .bind(admin_service::auth::hash_secret("tg-admin-from-env-0001"))
    .fetch_one(&st.state.db)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401() {
    let s = TestServer::start().await;
    let org = s.org("Locked").await;
    for (header, why) in [
        (None, "none"),
        (Some("Basic abc"), "basic"),
        (Some("Bearer "), "empty"),
        (Some("Bearer tg-admin-wrong"), "unknown"),
    ] {
        let mut req = s.client.get(format!("{}/api/organizations/{org}", s.base));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{why}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["type"], "authentication_error", "{why}");
    }
    // A 401 comes before the body is even looked at: nothing is written.
    let before = s.snapshot().await;
    let r = s
        .raw(
            "POST",
            "/api/organizations",
            None,
            Some("{\"name\": \"sneaky\"}"),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(s.snapshot().await, before);
    // The hashed token table never holds a bearer secret.
    s.assert_not_stored(ADMIN, &before);
    let (_, tok) = s.user(&org, "viewer").await;
    s.assert_not_stored(&tok, &s.snapshot().await);
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_of_the_route_table() {
    let s = TestServer::start().await;
    let r = s.raw("GET", "/api/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for e in admin_service::api::routes::endpoints() {
        assert!(
            doc["paths"][&e.path][e.method].is_object(),
            "{} {} missing from the OpenAPI document",
            e.method,
            e.path
        );
    }
}
