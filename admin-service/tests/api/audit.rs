//! The audit log: every mutation records who, what, when and before/after with
//! secrets redacted, in the same transaction; paged and filtered.

use serde_json::{Value, json};

use crate::common::TestServer;

const UPSTREAM_SECRET: &str = "sk-upstream-audited-5d1c";

async fn all_entries(s: &TestServer, path: &str, token: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = s.call("GET", &url, token, None).await;
        let data = page.body.as_array().unwrap();
        assert!(data.len() <= limit as usize);
        out.extend(data.iter().cloned());
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn every_mutation_is_audited_with_actor_and_redacted_before_after() {
    let s = TestServer::start().await;
    let org = s.org("Audited").await;
    let (admin_id, admin) = s.user(&org, "admin").await;
    let (member_id, member) = s.user(&org, "member").await;
    let log = format!("/api/organizations/{org}/audit-log");

    s.call(
        "PATCH",
        &format!("/api/organizations/{org}/config"),
        &admin,
        Some(json!({"config": {"providers": [{"name": "p", "base_url": "https://up.example", "api_key": UPSTREAM_SECRET}]}})),
    )
    .await
    .ok();
    let team = s
        .call(
            "POST",
            &format!("/api/organizations/{org}/teams"),
            &admin,
            Some(json!({"name": "audited", "rate_limit_rpm": 5})),
        )
        .await
        .expect(201);
    let team_id = team["id"].as_str().unwrap();
    s.call(
        "PATCH",
        &format!("/api/teams/{team_id}"),
        &admin,
        Some(json!({"rate_limit_rpm": 7})),
    )
    .await
    .ok();
    s.call(
        "POST",
        &format!("/api/teams/{team_id}/members"),
        &admin,
        Some(json!({"user_id": member_id})),
    )
    .await
    .expect(201);
    let key = s
        .call(
            "POST",
            &format!("/api/organizations/{org}/keys"),
            &member,
            Some(json!({"name": "k", "team_id": team_id})),
        )
        .await
        .expect(201);
    let secret = key["key"].as_str().unwrap();
    // A refused mutation leaves no entry: the log commits with the change or not at all.
    let count = all_entries(&s, &log, &admin, 1000).await.len();
    s.call(
        "POST",
        &format!("/api/organizations/{org}/teams"),
        &admin,
        Some(json!({"name": "audited"})),
    )
    .await
    .expect(409);
    assert_eq!(all_entries(&s, &log, &admin, 1000).await.len(), count);

    let entries = all_entries(&s, &log, &admin, 2).await;
    assert_eq!(entries.len(), count, "paging loses nothing");
    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        !text.contains(UPSTREAM_SECRET),
        "provider credential in the audit log"
    );
    assert!(
        !text.contains(secret) && !text.contains("key_hash"),
        "key secret in the audit log"
    );

    let find = |action: &str| -> Vec<&Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    let cfg = find("org.update");
    assert_eq!(cfg[0]["actor"], admin_id.as_str());
    assert_eq!(
        cfg[0]["after"]["config"]["providers"][0]["api_key_set"],
        true
    );
    let patch = find("team.update");
    assert_eq!(patch[0]["before"]["limits"], "{\"rpm\":5}");
    assert_eq!(patch[0]["after"]["limits"], "{\"rpm\":7}");
    let created = find("key.create");
    assert_eq!(created[0]["actor"], member_id.as_str());
    assert_eq!(created[0]["entity_id"], key["id"]);
    assert!(created[0]["before"].is_null() && created[0]["after"]["key_prefix"].is_string());

    // Filters: actor, action, time.
    let mine = all_entries(&s, &format!("{log}?actor={member_id}"), &admin, 100).await;
    assert!(!mine.is_empty() && mine.iter().all(|e| e["actor"] == member_id.as_str()));
    let teams = all_entries(&s, &format!("{log}?action=team.create"), &admin, 100).await;
    assert_eq!(teams.len(), 1);
    let later = all_entries(&s, &format!("{log}?from=2999-01-01T00:00:00Z"), &admin, 100).await;
    assert!(later.is_empty());
    let earlier = all_entries(&s, &format!("{log}?to=2999-01-01T00:00:00Z"), &admin, 100).await;
    assert_eq!(earlier.len(), count);
    s.call("GET", &format!("{log}?from=yesterday"), &admin, None)
        .await
        .err(422, "from");
    s.call("GET", &format!("{log}?limit=1001"), &admin, None)
        .await
        .err(422, "limit");

    // Members do not read it; the platform log also holds platform-level changes.
    s.call("GET", &log, &member, None).await.expect(403);
    let platform = all_entries(
        &s,
        "/api/audit-log?action=user.create",
        crate::common::ADMIN,
        1000,
    )
    .await;
    assert!(platform.iter().any(|e| e["entity_id"] == admin_id.as_str()));
}
