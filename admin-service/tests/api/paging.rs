//! Every list pages with a cursor: `?limit=` up to 1000, `x-next-cursor` header.

use std::collections::HashSet;

use serde_json::json;

use crate::common::{ADMIN, TestServer};

/// Follows `x-next-cursor` from `path` with `limit`; returns every item's id and the page count.
async fn walk(
    s: &TestServer,
    path: &str,
    token: &str,
    limit: u32,
    id: &str,
) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = s.call("GET", &url, token, None).await;
        let items = r.body.as_array().unwrap_or_else(|| panic!("{}", r.text));
        assert!(items.len() <= limit as usize);
        ids.extend(items.iter().map(|i| i[id].as_str().unwrap().to_string()));
        pages += 1;
        match r.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn ten_thousand_keys_page_by_cursor_without_loss_or_repeat() {
    let s = TestServer::start().await;
    let org = s.org("Many keys").await;
    let other = s.org("Other").await;
    s.key(&other, json!({"name": "not mine"})).await;
    let db = s.db().await;
    let mut tx = db.begin().await.unwrap();
    for i in 0..10_000 {
        sqlx::query(
            "INSERT INTO virtual_keys (id, org_id, name, key_prefix, key_hash, created_at_ms)
             VALUES ($1, $2, 'bulk', 'sk-tg-000000', $3, $4)",
        )
        .bind(format!("key_bulk{i:05}"))
        .bind(&org)
        .bind(format!("hash{i}"))
        .bind(i64::from(i))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let path = format!("/api/organizations/{org}/keys");
    let (ids, pages) = walk(&s, &path, ADMIN, 1000, "id").await;
    assert_eq!(pages, 10, "ten full pages, the last without a cursor");
    assert_eq!(ids.len(), 10_000);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10_000,
        "no repeats"
    );
    assert!(
        ids.iter().all(|i| i.starts_with("key_bulk")),
        "other orgs' keys stay out"
    );

    // Without a limit a page is bounded too.
    let first = s.get(&path).await;
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    assert!(first.next_cursor.is_some());
    for bad in ["limit=1001", "limit=0"] {
        s.get(&format!("{path}?{bad}")).await.err(422, "limit");
    }
    s.get(&format!("{path}?cursor=nonsense"))
        .await
        .err(422, "cursor");
}

#[tokio::test]
async fn the_other_lists_page_too() {
    let s = TestServer::start().await;
    let org = s.org("Lists").await;
    for i in 0..3 {
        s.org(&format!("Org {i}")).await;
        s.user(&org, "viewer").await;
        s.team(&org, json!({"name": format!("t{i}")})).await;
        s.agent(&org, &format!("a{i}")).await;
        s.post(
            "/api/models",
            json!({"name": format!("m{i}"), "access_groups": [format!("g{i}")]}),
        )
        .await
        .ok();
        s.post(
            "/api/route-groups",
            json!({"name": format!("rg{i}"), "models": ["m"]}),
        )
        .await
        .ok();
        s.post(
            &format!("/api/organizations/{org}/invitations"),
            json!({"email": format!("i{i}@example.com"), "role": "viewer"}),
        )
        .await
        .ok();
    }
    let lists = [
        ("/api/organizations".to_string(), "id", 5),
        (format!("/api/organizations/{org}/members"), "user_id", 3),
        (format!("/api/organizations/{org}/invitations"), "id", 3),
        (format!("/api/organizations/{org}/teams"), "id", 3),
        (format!("/api/agents?org_id={org}"), "id", 3),
        ("/api/users".to_string(), "id", 3),
        ("/api/tokens".to_string(), "id", 4),
        ("/api/models".to_string(), "name", 3),
        ("/api/route-groups".to_string(), "name", 3),
        ("/api/access-groups".to_string(), "name", 3),
        ("/api/audit-log".to_string(), "action", 20),
    ];
    for (path, id, at_least) in lists {
        let (ids, pages) = walk(&s, &path, ADMIN, 2, id).await;
        assert!(ids.len() >= at_least, "{path}: {ids:?}");
        assert!(pages >= ids.len() / 2, "{path} was not paged");
        if id != "action" {
            assert_eq!(
                ids.iter().collect::<HashSet<_>>().len(),
                ids.len(),
                "{path} repeats"
            );
        }
    }
}
