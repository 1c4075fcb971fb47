//! Teams and keys grant access groups (`group:<label>`) within their parent's
//! universe; labelling a model later reaches every grant naming the group.

use serde_json::json;

use crate::common::TestServer;
use policy::Denial;

#[tokio::test]
async fn teams_and_keys_grant_access_groups_only_within_their_parent() {
    let s = TestServer::start().await;
    for (name, groups) in [
        ("gpt-4o", json!(["support"])),
        ("claude-3-opus", json!(["finance"])),
        ("gpt-4o-mini", json!([])),
    ] {
        s.post(
            "/api/models",
            json!({"name": name, "access_groups": groups}),
        )
        .await
        .ok();
    }
    let org = s.org("Groups").await;
    s.patch(
        &format!("/api/organizations/{org}/config"),
        json!({"config": {"access": {"models": ["gpt-4o-mini"], "access_groups": ["support"]}}}),
    )
    .await
    .ok();
    let teams = format!("/api/organizations/{org}/teams");
    let keys = format!("/api/organizations/{org}/keys");

    let before = s.snapshot().await;
    // A group the org does not have is refused like a model it does not have.
    let r = s
        .post(
            &teams,
            json!({"name": "t", "allowed_models": ["group:finance"]}),
        )
        .await;
    r.err(422, "allowed_models[0]");
    assert!(r.text.contains("organization"), "{}", r.text);
    let r = s
        .post(
            &keys,
            json!({"name": "k", "allowed_models": ["gpt-4o-mini", "group:nope"]}),
        )
        .await;
    r.err(422, "allowed_models[1]");
    assert!(r.text.contains("unknown access group"), "{}", r.text);
    s.post(&keys, json!({"name": "k", "allowed_models": ["group:"]}))
        .await
        .err(422, "allowed_models[0]");
    // The prefix is reserved for grants.
    s.post("/api/models", json!({"name": "group:x"}))
        .await
        .err(422, "name");
    s.post(
        "/api/route-groups",
        json!({"name": "group:x", "models": ["m"]}),
    )
    .await
    .err(422, "name");
    assert_eq!(s.snapshot().await, before);

    let team = s
        .team(
            &org,
            json!({"name": "support", "allowed_models": ["group:support"]}),
        )
        .await;
    // A key under the team narrows the team: the org's direct model is not the team's.
    s.post(
        &keys,
        json!({"name": "k", "team_id": team, "allowed_models": ["gpt-4o-mini"]}),
    )
    .await
    .err(422, "allowed_models[0]");
    let in_team = s
        .key(
            &org,
            json!({"name": "in team", "team_id": team, "allowed_models": ["group:support"]}),
        )
        .await;
    let in_team = in_team["key"].as_str().unwrap().to_string();
    let direct = s
        .key(
            &org,
            json!({"name": "direct", "allowed_models": ["group:support"]}),
        )
        .await;
    let direct_id = direct["id"].as_str().unwrap().to_string();
    let direct = direct["key"].as_str().unwrap().to_string();
    s.synced().await;
    for k in [&in_team, &direct] {
        assert_eq!(s.edge_access(k, Some("gpt-4o"), None).await, Ok(()));
        assert_eq!(
            s.edge_access(k, Some("gpt-4o-mini"), None).await,
            Err(Denial::ModelNotAllowed("gpt-4o-mini".into()))
        );
    }

    // Labelling a model later reaches the team's and the key's grant.
    s.patch(
        "/api/models/gpt-4o-mini",
        json!({"access_groups": ["support"]}),
    )
    .await
    .ok();
    s.synced().await;
    for k in [&in_team, &direct] {
        assert_eq!(s.edge_access(k, Some("gpt-4o-mini"), None).await, Ok(()));
    }
    // Unlabelling takes it away again; the group's other model stays.
    s.patch("/api/models/gpt-4o", json!({"access_groups": []}))
        .await
        .ok();
    s.synced().await;
    for k in [&in_team, &direct] {
        assert_eq!(
            s.edge_access(k, Some("gpt-4o"), None).await,
            Err(Denial::ModelNotAllowed("gpt-4o".into()))
        );
        assert_eq!(s.edge_access(k, Some("gpt-4o-mini"), None).await, Ok(()));
    }
    // A group nobody carries any more grants nothing: fail closed.
    s.patch("/api/models/gpt-4o-mini", json!({"access_groups": []}))
        .await
        .ok();
    s.synced().await;
    assert_eq!(
        s.edge_access(&direct, Some("gpt-4o-mini"), None).await,
        Err(Denial::ModelNotAllowed("gpt-4o-mini".into()))
    );
    // PATCHing a key to the now unknown group is refused.
    s.patch(
        &format!("/api/keys/{direct_id}"),
        json!({"allowed_models": ["group:support"]}),
    )
    .await
    .err(422, "allowed_models[0]");
}
