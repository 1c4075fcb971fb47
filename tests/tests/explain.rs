//! Why denied, end to end: `POST /api/organizations/{id}/explain` runs the real
//! component's policy export against the edge store the admin service pushes to,
//! and answers what the real edge answers for the same request.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;

/// Status and error code the edge answers a chat completion with.
async fn edge_answer(cp: &ControlPlane, key: &str, model: &str) -> (u16, Value) {
    let resp = cp.chat(key, model).await;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].clone();
    (status, if status == 200 { Value::Null } else { code })
}

async fn explain(cp: &ControlPlane, org: &str, body: Value) -> Value {
    cp.admin(
        Method::POST,
        &format!("/api/organizations/{org}/explain"),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_agrees_with_the_edge_and_follows_revocation() {
    let cp = ControlPlane::start().await;
    let org = cp
        .org_with_provider("Explained", &["gpt-4o", "gpt-4o-mini"])
        .await;
    let other = cp.org_with_provider("Elsewhere", &["gpt-4o"]).await;
    let (key_id, key) = cp
        .key(&org, json!({"allowed_models": ["gpt-4o-mini"]}))
        .await;
    let (fenced_id, fenced) = cp.key(&org, json!({"ip_allow": ["10.0.0.0/8"]})).await;
    let (other_key_id, _) = cp.key(&other, json!({})).await;
    cp.synced().await;

    // Allowed model, another model, and an address outside the key's ACL: the
    // same status and code as the edge gives the same request (from 127.0.0.1).
    for (id, secret, model) in [
        (&key_id, &key, "gpt-4o-mini"),
        (&key_id, &key, "gpt-4o"),
        (&fenced_id, &fenced, "gpt-4o"),
    ] {
        let said = explain(
            &cp,
            &org,
            json!({"key_id": id, "model": model, "ip": "127.0.0.1"}),
        )
        .await;
        let (status, code) = edge_answer(&cp, secret, model).await;
        assert_eq!(
            (&said["status"], &said["code"]),
            (&json!(status), &code),
            "{said}"
        );
        assert_eq!(said["allowed"], status == 200, "{said}");
    }
    let said = explain(
        &cp,
        &org,
        json!({"key_id": key_id, "model": "gpt-4o", "ip": "127.0.0.1"}),
    )
    .await;
    assert_eq!(said["code"], "model_not_allowed");
    assert!(
        said["message"].as_str().unwrap().contains("gpt-4o"),
        "{said}"
    );
    let said = explain(
        &cp,
        &org,
        json!({"key_id": fenced_id, "model": "gpt-4o", "ip": "127.0.0.1"}),
    )
    .await;
    assert_eq!(
        (&said["status"], &said["code"]),
        (&json!(403), &json!("ip_not_allowed"))
    );
    let said = explain(
        &cp,
        &org,
        json!({"key_id": fenced_id, "model": "gpt-4o", "ip": "10.1.2.3"}),
    )
    .await;
    assert_eq!(
        (&said["allowed"], &said["code"]),
        (&json!(true), &Value::Null),
        "{said}"
    );

    // By prefix, as the inventory shows it.
    let prefix = &key[..12];
    let said = explain(
        &cp,
        &org,
        json!({"key_prefix": prefix, "model": "gpt-4o-mini"}),
    )
    .await;
    assert_eq!(
        (&said["allowed"], &said["key_id"]),
        (&json!(true), &json!(key_id))
    );

    // Explaining consumes nothing: the edge still serves, and no log entry appears.
    assert_eq!(edge_answer(&cp, &key, "gpt-4o-mini").await.0, 200);

    // Revoked: explain says so within a second, as the edge does.
    cp.admin(Method::DELETE, &format!("/api/keys/{key_id}"), None)
        .await;
    let start = Instant::now();
    loop {
        let said = explain(&cp, &org, json!({"key_id": key_id, "model": "gpt-4o-mini"})).await;
        if said["code"] == "key_revoked" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "still {said}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, code) = edge_answer(&cp, &key, "gpt-4o-mini").await;
    assert_eq!((status, code), (401, json!("key_revoked")));

    // Attacks: another org's key is absent; viewers and members may not ask; bad
    // input is named.
    let path = format!("/api/organizations/{org}/explain");
    let (_, admin) = cp.member(&org, "admin").await;
    let (status, _) = cp
        .api_as(
            &admin,
            Method::POST,
            &path,
            Some(json!({"key_id": other_key_id, "model": "gpt-4o"})),
        )
        .await;
    assert_eq!(status, 404);
    for role in ["viewer", "member"] {
        let (_, token) = cp.member(&org, role).await;
        let (status, _) = cp
            .api_as(
                &token,
                Method::POST,
                &path,
                Some(json!({"key_id": fenced_id})),
            )
            .await;
        assert_eq!(status, 403, "{role}");
    }
    let (_, outsider) = cp.member(&other, "owner").await;
    let (status, _) = cp
        .api_as(
            &outsider,
            Method::POST,
            &path,
            Some(json!({"key_id": fenced_id})),
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");
    for (body, field) in [
        (json!({"key_id": fenced_id, "ip": "not-an-ip"}), "ip"),
        (json!({"model": "gpt-4o"}), "key_id"),
        (
            json!({"key_id": fenced_id, "key_prefix": "sk-tg-"}),
            "key_id",
        ),
        (
            json!({"key_id": fenced_id, "api_key": "sk-tg-x"}),
            "api_key",
        ),
    ] {
        let (status, err) = cp
            .api_as(&admin, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {err}");
        assert!(err.to_string().contains(field), "{body}: {err}");
    }
}
