//! Removing a member ends their access at once and revokes the keys they created in
//! that org, or hands them to another member.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn removing_a_member_revokes_their_keys_unless_transferred() {
    let s = TestServer::start().await;
    let org = s.org("Leavers").await;
    let other_org = s.org("Elsewhere").await;
    for o in [&org, &other_org] {
        s.patch(
            &format!("/api/organizations/{o}/config"),
            json!({"config": {"providers": [{"name": "p", "base_url": "https://up.example", "models": ["m"]}]}}),
        )
        .await
        .ok();
    }
    let (leaver, leaver_tok) = s.user(&org, "member").await;
    let (_, admin_tok) = s.user(&org, "admin").await;
    let (heir, heir_tok) = s.user(&org, "member").await;
    // The leaver also belongs elsewhere: that membership and its keys are untouched.
    s.post(
        &format!("/api/organizations/{other_org}/members"),
        json!({"user_id": leaver, "role": "member"}),
    )
    .await
    .ok();
    let mk = |org: String, tok: String| {
        let s = &s;
        async move {
            s.call(
                "POST",
                &format!("/api/organizations/{org}/keys"),
                &tok,
                Some(json!({"name": "mine"})),
            )
            .await
            .expect(201)
        }
    };
    let k1 = mk(org.clone(), leaver_tok.clone()).await;
    let k2 = mk(org.clone(), leaver_tok.clone()).await;
    let kept = mk(other_org.clone(), leaver_tok.clone()).await;
    let heirs_own = mk(org.clone(), heir_tok.clone()).await;
    s.synced().await;

    // A bad heir is refused naming the field, and nothing changes.
    let before = s.snapshot().await;
    for (bad, status) in [(leaver.as_str(), 422), ("usr_nobody", 404)] {
        s.call(
            "DELETE",
            &format!("/api/organizations/{org}/members/{leaver}?transfer_keys_to={bad}"),
            &admin_tok,
            None,
        )
        .await
        .err(status, "transfer_keys_to");
    }
    assert_eq!(s.snapshot().await, before);

    let r = s
        .call(
            "DELETE",
            &format!("/api/organizations/{org}/members/{leaver}"),
            &admin_tok,
            None,
        )
        .await
        .ok();
    let mut revoked: Vec<String> = serde_json::from_value(r["revoked_keys"].clone()).unwrap();
    revoked.sort();
    let mut want = vec![
        k1["id"].as_str().unwrap().to_string(),
        k2["id"].as_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(revoked, want);
    s.synced().await;
    for k in [&k1, &k2] {
        assert_eq!(
            s.edge(k["key"].as_str().unwrap(), Some("m"), None).await,
            Err(policy::Denial::KeyRevoked)
        );
    }
    assert_eq!(
        s.edge(kept["key"].as_str().unwrap(), Some("m"), None).await,
        Ok(())
    );
    assert_eq!(
        s.edge(heirs_own["key"].as_str().unwrap(), Some("m"), None)
            .await,
        Ok(())
    );
    // Access ended at once: the org is invisible to them; the other org is not.
    s.call(
        "GET",
        &format!("/api/organizations/{org}"),
        &leaver_tok,
        None,
    )
    .await
    .expect(404);
    s.call(
        "GET",
        &format!("/api/organizations/{other_org}"),
        &leaver_tok,
        None,
    )
    .await
    .ok();

    // Transfer: the keys stay live and become the heir's.
    let (mover, mover_tok) = s.user(&org, "member").await;
    let moved = mk(org.clone(), mover_tok).await;
    let r = s
        .call(
            "DELETE",
            &format!("/api/organizations/{org}/members/{mover}?transfer_keys_to={heir}"),
            &admin_tok,
            None,
        )
        .await
        .ok();
    assert_eq!(r["transferred_keys"], json!([moved["id"]]));
    assert_eq!(r["revoked_keys"], json!([]));
    s.synced().await;
    assert!(
        s.edge(moved["key"].as_str().unwrap(), Some("m"), None)
            .await
            .is_ok()
    );
    s.call(
        "DELETE",
        &format!("/api/keys/{}", moved["id"].as_str().unwrap()),
        &heir_tok,
        None,
    )
    .await
    .ok();
}
