//! Team memberships: when an org has teams, members create keys only in their
//! teams, so team models, limits and budgets bind them; admins use any team.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn members_create_keys_only_in_their_teams_once_the_org_has_teams() {
    let s = TestServer::start().await;
    let org = s.org("Teamed").await;
    let (uid, member) = s.user(&org, "member").await;
    let (_, admin) = s.user(&org, "admin").await;
    let keys = format!("/api/organizations/{org}/keys");
    // No teams yet: members create org-level keys as before.
    s.call("POST", &keys, &member, Some(json!({"name": "early"})))
        .await
        .expect(201);

    let narrow = s
        .team(&org, json!({"name": "narrow", "rate_limit_rpm": 5}))
        .await;
    let wide = s.team(&org, json!({"name": "wide"})).await;
    s.call(
        "POST",
        &format!("/api/teams/{narrow}/members"),
        &admin,
        Some(json!({"user_id": uid})),
    )
    .await
    .expect(201);

    // The attacker's requests: no team (escaping every team limit), another team.
    let before = s.snapshot().await;
    s.call("POST", &keys, &member, Some(json!({"name": "escape"})))
        .await
        .err(403, "team_id");
    s.call(
        "POST",
        &keys,
        &member,
        Some(json!({"name": "escape", "team_id": wide})),
    )
    .await
    .err(403, "team_id");
    assert_eq!(s.snapshot().await, before, "refused keys wrote nothing");

    let k = s
        .call(
            "POST",
            &keys,
            &member,
            Some(json!({"name": "bound", "team_id": narrow})),
        )
        .await
        .expect(201);
    assert_eq!(k["team_id"], narrow.as_str());
    // Admins may create keys for any team, or none.
    s.call(
        "POST",
        &keys,
        &admin,
        Some(json!({"name": "a", "team_id": wide})),
    )
    .await
    .expect(201);
    s.call("POST", &keys, &admin, Some(json!({"name": "b"})))
        .await
        .expect(201);

    // Leaving the team ends it.
    let listed = s.get(&format!("/api/teams/{narrow}/members")).await.ok();
    assert_eq!(listed[0]["user_id"], uid.as_str());
    assert_eq!(listed[0]["role"], "member");
    s.call(
        "DELETE",
        &format!("/api/teams/{narrow}/members/{uid}"),
        &admin,
        None,
    )
    .await
    .expect(204);
    s.call(
        "POST",
        &keys,
        &member,
        Some(json!({"name": "again", "team_id": narrow})),
    )
    .await
    .err(403, "team_id");
}

#[tokio::test]
async fn only_org_members_join_teams_and_are_listed_in_openapi() {
    let s = TestServer::start().await;
    let org = s.org("Teams").await;
    let other = s.org("Outside").await;
    let team = s.team(&org, json!({"name": "t"})).await;
    let (outsider, _) = s.user(&other, "member").await;
    let (insider, _) = s.user(&org, "viewer").await;
    let path = format!("/api/teams/{team}/members");
    s.post(&path, json!({"user_id": outsider}))
        .await
        .err(404, "user_id");
    s.post(&path, json!({"user_id": insider})).await.expect(201);
    s.post(&path, json!({"user_id": insider}))
        .await
        .err(409, "user_id");
    // Removing the user from the org removes them from its teams.
    s.delete(&format!("/api/organizations/{org}/members/{insider}"))
        .await
        .ok();
    assert_eq!(s.get(&path).await.ok(), json!([]));
    let doc = s.get("/api/openapi.json").await.ok();
    assert!(doc["paths"]["/api/teams/{id}/members"]["post"].is_object());
    assert!(doc["paths"]["/api/teams/{id}/members/{user_id}"]["delete"].is_object());
}
