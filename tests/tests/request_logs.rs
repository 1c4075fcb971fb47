//! Request logs end to end: the real component logs forwarded and denied requests,
//! the real admin service drains them, and `GET /api/organizations/{id}/logs`
//! serves them to the org's viewers (and to nobody else).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tollgate_e2e::admin::ControlPlane;

/// Sends one chat completion with the official `openai` client; returns the
/// status it saw (200, or the error's status) and the error code.
async fn openai_chat(base_url: String, key: String, model: &str) -> String {
    let script = r#"
import os, openai
c = openai.OpenAI(base_url=os.environ["BASE"], api_key=os.environ["KEY"], max_retries=0)
try:
    c.chat.completions.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "hi"}])
    print("200")
except openai.APIStatusError as e:
    print(e.status_code, e.code)
"#;
    let model = model.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script])
            .env("BASE", base_url)
            .env("KEY", key)
            .env("MODEL", model)
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("client task");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls the org's logs (as platform admin) until `n` entries are there.
async fn until_logs(cp: &ControlPlane, org: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let logs = cp
            .admin(Method::GET, &format!("/api/organizations/{org}/logs"), None)
            .await;
        let logs = logs.as_array().expect("an array").clone();
        if logs.len() >= n {
            return logs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} log entries after 10 s, expected {n}",
            logs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_denied_requests_are_logged_and_read_by_viewers_only() {
    let cp = ControlPlane::start().await;
    let org = cp
        .org_with_provider("Logged", &["gpt-4o", "gpt-4o-mini"])
        .await;
    let other = cp.org_with_provider("Other", &["gpt-4o"]).await;
    let (key_id, key) = cp
        .key(&org, json!({"allowed_models": ["gpt-4o-mini"]}))
        .await;
    cp.synced().await;
    let base = format!("{}/v1", cp.edge.url());

    assert_eq!(
        openai_chat(base.clone(), key.clone(), "gpt-4o-mini").await,
        "200"
    );
    assert_eq!(
        openai_chat(base.clone(), key.clone(), "gpt-4o").await,
        "403 model_not_allowed"
    );
    // An unknown key has no org: refused, and in no org's log.
    assert_eq!(
        cp.chat("sk-tg-unknown-0123456789abcdef", "gpt-4o")
            .await
            .status(),
        401
    );

    let logs = until_logs(&cp, &org, 2).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    // Newest first.
    let (denied, ok) = (&logs[0], &logs[1]);
    assert_eq!(denied["model"], "gpt-4o");
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["code"], "model_not_allowed");
    assert_eq!(denied["denied"], true);
    assert_eq!(denied["provider"], Value::Null);
    assert_eq!(denied["cost"], "0.00");
    assert_eq!(denied["key_id"], key_id.as_str());
    assert_eq!(ok["model"], "gpt-4o-mini");
    assert_eq!((&ok["status"], &ok["denied"]), (&json!(200), &json!(false)));
    assert_eq!(ok["provider"], "mock");
    assert_eq!(ok["input_tokens"], 10);
    assert!(ok["at"].as_str().unwrap() <= denied["at"].as_str().unwrap());

    // Filters.
    let (cp, org) = (&cp, &org);
    let get = |q: String| async move {
        cp.admin(
            Method::GET,
            &format!("/api/organizations/{org}/logs?{q}"),
            None,
        )
        .await
    };
    assert_eq!(get("denied=true".into()).await.as_array().unwrap().len(), 1);
    assert_eq!(
        get("code=model_not_allowed".into()).await[0]["model"],
        "gpt-4o"
    );
    assert_eq!(get("status=200".into()).await[0]["model"], "gpt-4o-mini");
    assert_eq!(
        get("provider=mock".into()).await.as_array().unwrap().len(),
        1
    );
    assert_eq!(
        get("model=gpt-4o-mini&cached=false".into())
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get("key_id=key_nobody".into())
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get("to=2000-01-01T00:00:00Z".into())
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get("from=2000-01-01T00:00:00Z".into())
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Paged: one per page, the cursor leads to the older one, then no cursor.
    let page = cp
        .http
        .get(format!(
            "{}/api/organizations/{org}/logs?limit=1",
            cp.admin_url
        ))
        .bearer_auth(tollgate_e2e::admin::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let cursor = page.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_string();
    let first: Value = page.json().await.unwrap();
    assert_eq!(first[0]["event_id"], denied["event_id"]);
    let second = get(format!("limit=1&cursor={cursor}")).await;
    assert_eq!(second[0]["event_id"], ok["event_id"]);

    // Usage totals still count forwarded requests only; denials are reported apart.
    let usage = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/usage"),
            None,
        )
        .await;
    assert_eq!(
        (&usage["totals"]["requests"], &usage["totals"]["denied"]),
        (&json!(1), &json!(1)),
        "{usage}"
    );

    // Viewers see logs; a viewer of another org does not, nor does anyone without a token.
    let (_, viewer) = cp.member(org, "viewer").await;
    let (status, body) = cp
        .api_as(
            &viewer,
            Method::GET,
            &format!("/api/organizations/{org}/logs"),
            None,
        )
        .await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(2)));
    let (_, outsider) = cp.member(&other, "admin").await;
    let (status, _) = cp
        .api_as(
            &outsider,
            Method::GET,
            &format!("/api/organizations/{org}/logs"),
            None,
        )
        .await;
    assert!(status == 404 || status == 403, "{status}");
    let (status, _) = cp
        .api_as(
            "nope",
            Method::GET,
            &format!("/api/organizations/{org}/logs"),
            None,
        )
        .await;
    assert_eq!(status, 401);
    // Bad filters are named.
    let (status, body) = cp
        .api_as(
            &viewer,
            Method::GET,
            &format!("/api/organizations/{org}/logs?from=yesterday"),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("from"), "{body}");
    let (status, _) = cp
        .api_as(
            &viewer,
            Method::GET,
            &format!("/api/organizations/{org}/logs?cursor=x"),
            None,
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_bodies_are_read_by_admins_only_and_deleted_after_their_retention() {
    let cp = ControlPlane::start().await;
    let org = cp.org_with_provider("Audited", &["gpt-4o"]).await;
    let config = format!("/api/organizations/{org}/config");
    cp.admin(
        Method::PATCH,
        &config,
        Some(json!({"config": {"audit": {"store_content": true, "retention_days": 30}}})),
    )
    .await;
    let (_, key) = cp.key(&org, json!({})).await;
    cp.synced().await;
    let base = format!("{}/v1", cp.edge.url());
    assert_eq!(
        openai_chat(base.clone(), key.clone(), "gpt-4o").await,
        "200"
    );
    let logs = until_logs(&cp, &org, 1).await;
    let event = logs[0]["event_id"].as_str().expect("event id").to_string();
    let content_path = format!("/api/organizations/{org}/logs/{event}/content");

    // What the client sent and what it got back, for admins only.
    let c = cp.admin(Method::GET, &content_path, None).await;
    assert!(
        c["request"].as_str().unwrap().contains(r#""content":"hi""#),
        "{c}"
    );
    assert!(
        c["response"].as_str().unwrap().contains("chat.completion"),
        "{c}"
    );
    assert_eq!(c["truncated"], false);
    for role in ["viewer", "member"] {
        let (_, token) = cp.member(&org, role).await;
        let (status, body) = cp.api_as(&token, Method::GET, &content_path, None).await;
        assert_eq!(status, 403, "{role}: {body}");
    }
    // A stream keeps the SSE text the client got.
    let streamed = cp
        .http
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "stream me"}]}))
        .send()
        .await
        .expect("stream");
    assert_eq!(streamed.status(), 200);
    let relayed = streamed.text().await.expect("stream body");
    let logs = until_logs(&cp, &org, 2).await;
    let stream_event = logs[0]["event_id"].as_str().unwrap();
    let sc = cp
        .admin(
            Method::GET,
            &format!("/api/organizations/{org}/logs/{stream_event}/content"),
            None,
        )
        .await;
    assert!(
        sc["request"].as_str().unwrap().contains("stream me"),
        "{sc}"
    );
    assert_eq!(
        sc["response"],
        json!(relayed),
        "the content is what the client got"
    );

    let other = cp.org_with_provider("Nosy", &["gpt-4o"]).await;
    let (_, outsider) = cp.member(&other, "owner").await;
    let (status, _) = cp.api_as(&outsider, Method::GET, &content_path, None).await;
    assert!(status == 403 || status == 404, "{status}");
    // Nor through their own org's path: an event of another org is not there.
    let (status, _) = cp
        .api_as(
            &outsider,
            Method::GET,
            &format!("/api/organizations/{other}/logs/{event}/content"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Off: the next request keeps nothing.
    cp.admin(
        Method::PATCH,
        &config,
        Some(json!({"config": {"audit": {"store_content": false}}})),
    )
    .await;
    cp.synced().await;
    assert_eq!(openai_chat(base, key, "gpt-4o").await, "200");
    let logs = until_logs(&cp, &org, 3).await;
    let second = logs[0]["event_id"].as_str().unwrap();
    assert_ne!(second, event);
    let (status, _) = cp
        .api_as(
            tollgate_e2e::admin::ADMIN_TOKEN,
            Method::GET,
            &format!("/api/organizations/{org}/logs/{second}/content"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Past its retention the body is refused at once and deleted by the job.
    let db = cp.db().await;
    sqlx::query("UPDATE request_contents SET expires_at_ms = 1 WHERE event_id = $1")
        .bind(&event)
        .execute(&db)
        .await
        .unwrap();
    let (status, _) = cp
        .api_as(
            tollgate_e2e::admin::ADMIN_TOKEN,
            Method::GET,
            &content_path,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let start = Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM request_contents WHERE event_id = $1")
                .bind(&event)
                .fetch_one(&db)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "retention job did not delete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
