//! Concurrent PATCHes of different fields all land: read-modify-write happens in
//! one write transaction.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_team_patches_of_different_fields_all_land() {
    let s = TestServer::start().await;
    let org = s.org("Racers").await;
    let team = s.team(&org, json!({"name": "racing"})).await;
    let path = format!("/api/teams/{team}");
    let fields = [
        "rate_limit_rpm",
        "rate_limit_tpm",
        "rate_limit_rph",
        "rate_limit_rpd",
        "rate_limit_tpd",
    ];
    for round in 1..=8u64 {
        let patches = fields.iter().map(|f| {
            let body = json!({ *f: round });
            let (s, path) = (&s, &path);
            async move { s.patch(path, body).await.ok() }
        });
        futures::future::join_all(patches).await;
        let t = s.get(&path).await.ok();
        for f in fields {
            assert_eq!(t[f], round, "round {round}: {f} lost: {t}");
        }
    }
}
