//! Usage drained from the edge spool exactly once, usage queries, and billing with
//! exact figures: the seed's example, custom rates, mid-month moves, empty orgs, the
//! CSV export, and deletion of an org with billing history.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestServer;
use policy::UsageEvent;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;

/// Oct 1, 2026 00:00 UTC: a past month, so every figure is fixed.
const OCT_2026_MS: i64 = 1_790_812_800_000;
const DAY_MS: i64 = 86_400_000;

fn event(org: &str, agent: Option<&str>, model: &str, cost_micros: u64, at_ms: i64) -> UsageEvent {
    UsageEvent {
        event_id: admin_service::store::db::random_hex(16),
        org_id: org.into(),
        team_id: None,
        key_id: "key_x".into(),
        agent_id: agent.map(String::from),
        model: model.into(),
        input_tokens: 1000,
        output_tokens: 500,
        cost_micros,
        status: 200,
        latency_ms: 12,
        at_ms: at_ms as u64,
        provider: Some("mock".into()),
        route_group: None,
        cached: false,
        code: None,
        denied: false,
        content: None,
    }
}

/// Writes events into the sink's KV as the edge spools them.
async fn spool(path: &Path, events: &[UsageEvent]) {
    let opts = SqliteConnectOptions::new().filename(path);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    for e in events {
        sqlx::query(
            "INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES ('default', ?, ?)",
        )
        .bind(e.kv_key())
        .bind(e.encode())
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

async fn spooled(path: &Path) -> i64 {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM spin_key_value WHERE key LIKE 'usage:%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// Waits until the spool is empty (drained into the admin database).
async fn drained(s: &TestServer) {
    let start = Instant::now();
    while spooled(&s.sink_paths[0]).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "spool not drained"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `statement` on the admin database (whichever backend the server runs on):
/// `$1..` take `binds`, the last placeholder takes `id`.
async fn sql(s: &TestServer, statement: &str, binds: &[i64], id: &str) {
    let pool = s.db().await;
    let mut q = sqlx::query(statement);
    for b in binds {
        q = q.bind(*b);
    }
    q.bind(id).execute(&pool).await.unwrap();
    pool.close().await;
}

/// An org billing `rate` per agent, and an agent assigned to it since before October.
async fn org_with_agent(s: &TestServer, rate: &str) -> (String, String) {
    let org = s
        .post("/api/organizations", json!({"name": format!("Client {}", common::rand_suffix()), "billing_rate_per_agent": rate}))
        .await
        .ok();
    let org = org["id"].as_str().unwrap().to_string();
    let agent = s
        .post("/api/agents", json!({"name": "Support bot", "org_id": org}))
        .await
        .ok();
    let agent = agent["id"].as_str().unwrap().to_string();
    // History is recorded at the real time of the move; back-date it to before October.
    sql(
        s,
        "UPDATE agent_assignments SET from_ms = $1 WHERE agent_id = $2",
        &[OCT_2026_MS - DAY_MS],
        &agent,
    )
    .await;
    (org, agent)
}

async fn summary(s: &TestServer, org: &str, month: &str) -> Value {
    let b = s
        .get(&format!(
            "/api/organizations/{org}/billing-summary?from={month}&to={month}"
        ))
        .await
        .ok();
    assert_eq!(b["months"].as_array().unwrap().len(), 1, "{b}");
    b["months"][0].clone()
}

#[tokio::test]
async fn the_seed_example_99_rate_3_cost_is_a_97_percent_margin() {
    let s = TestServer::start().await;
    let (org, agent) = org_with_agent(&s, "99.00").await;
    let at = OCT_2026_MS + 5 * DAY_MS;
    spool(
        &s.sink_paths[0],
        &[
            event(&org, Some(&agent), "gpt-4o", 1_250_000, at),
            event(&org, Some(&agent), "gpt-4o", 1_750_000, at + 3_600_000),
        ],
    )
    .await;
    drained(&s).await;

    let m = summary(&s, &org, "2026-10").await;
    assert_eq!(m["month"], "2026-10");
    assert_eq!(
        (
            &m["revenue"],
            &m["token_cost"],
            &m["margin"],
            &m["margin_percent"]
        ),
        (
            &json!("99.00"),
            &json!("3.00"),
            &json!("96.00"),
            &json!("97.0")
        ),
        "{m}"
    );
    let a = &m["agents"][0];
    assert_eq!(a["agent_id"], json!(agent));
    assert_eq!(
        (&a["rate"], &a["days_assigned"], &a["days_in_month"]),
        (&json!("99.00"), &json!(31), &json!(31))
    );
    assert_eq!(
        (&a["input_tokens"], &a["output_tokens"]),
        (&json!(2000), &json!(1000))
    );
    let b = s
        .get(&format!(
            "/api/organizations/{org}/billing?from=2026-10&to=2026-10"
        ))
        .await
        .ok();
    assert_eq!(b["currency"], "USD");
    assert_eq!(b["records"], json!([a]));
}

/// Each rate is capped below 10^12, their sum is not: a dozen agents at the highest
/// rate add up past what a rate may be and past 2^63 micros, and the month still
/// answers exactly (it overflowed, or broke the answer's own schema).
#[tokio::test]
async fn a_month_of_many_agents_at_the_highest_rate_adds_up_exactly() {
    let s = TestServer::start().await;
    let (org, first) = org_with_agent(&s, "999999999999.99").await;
    let mut agents = vec![first];
    for i in 1..12 {
        let agent = s
            .post(
                "/api/agents",
                json!({"name": format!("Bot {i}"), "org_id": org}),
            )
            .await
            .ok();
        let agent = agent["id"].as_str().unwrap().to_string();
        sql(
            &s,
            "UPDATE agent_assignments SET from_ms = $1 WHERE agent_id = $2",
            &[OCT_2026_MS - DAY_MS],
            &agent,
        )
        .await;
        agents.push(agent);
    }
    let m = summary(&s, &org, "2026-10").await;
    assert_eq!(
        (
            &m["revenue"],
            &m["token_cost"],
            &m["margin"],
            &m["margin_percent"]
        ),
        (
            &json!("11999999999999.88"),
            &json!("0.00"),
            &json!("11999999999999.88"),
            &json!("100.0")
        ),
        "{m}"
    );
    let each: Vec<&Value> = m["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["revenue"])
        .collect();
    assert_eq!(each, vec![&json!("999999999999.99"); 12]);
}

/// Today (UTC) as `YYYY-MM`, `YYYY-MM-DD`, its day of the month and the month's length.
fn today() -> (String, String, i64, i64) {
    let now = time::OffsetDateTime::now_utc();
    let month = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
    let dim = i64::from(now.month().length(now.year()));
    (
        month.clone(),
        format!("{month}-{:02}", now.day()),
        i64::from(now.day()),
        dim,
    )
}

/// `sum / dim` in cents, rounded half up, as a decimal string.
fn prorated(cents_by_day: i64, dim: i64) -> String {
    let c = (2 * cents_by_day + dim) / (2 * dim);
    format!("{}.{:02}", c / 100, c % 100)
}

#[tokio::test]
async fn a_changed_agent_rate_applies_from_its_effective_day_and_never_rewrites_past_months() {
    let s = TestServer::start().await;
    let (org, agent) = org_with_agent(&s, "99.00").await;
    let (month, day, d, dim) = today();
    s.patch(
        &format!("/api/agents/{agent}"),
        json!({"billingRate": "150.00"}),
    )
    .await
    .ok();
    // October was billed at 99.00 and stays so.
    let m = summary(&s, &org, "2026-10").await;
    assert_eq!(
        (&m["revenue"], &m["agents"][0]["rate"]),
        (&json!("99.00"), &json!("99.00")),
        "{m}"
    );
    // This month: 99.00 before today, 150.00 from today on.
    let now = summary(&s, &org, &month).await;
    let want = prorated(9900 * (d - 1) + 15000 * (dim - d + 1), dim);
    assert_eq!(now["revenue"], json!(want), "{now}");
    assert_eq!(now["agents"][0]["rate"], "150.00");
    // Back-dated to the 1st: the whole open month; null reverts to the org rate.
    s.patch(
        &format!("/api/agents/{agent}"),
        json!({"billingRate": "150.00", "billingRateEffectiveFrom": format!("{month}-01")}),
    )
    .await
    .ok();
    assert_eq!(summary(&s, &org, &month).await["revenue"], "150.00");
    s.patch(
        &format!("/api/agents/{agent}"),
        json!({"billingRate": null, "billingRateEffectiveFrom": day}),
    )
    .await
    .ok();
    let want = prorated(15000 * (d - 1) + 9900 * (dim - d + 1), dim);
    assert_eq!(summary(&s, &org, &month).await["revenue"], json!(want));
    assert_eq!(summary(&s, &org, "2026-10").await["revenue"], "99.00");
}

#[tokio::test]
async fn a_rate_cannot_be_back_dated_into_a_billed_month_or_scheduled_ahead() {
    let s = TestServer::start().await;
    let (org, agent) = org_with_agent(&s, "99.00").await;
    let before = s.snapshot().await;
    for (path, body, field) in [
        (
            format!("/api/agents/{agent}"),
            json!({"billingRate": "1.00", "billingRateEffectiveFrom": "2026-10-01"}),
            "billingRateEffectiveFrom",
        ),
        (
            format!("/api/agents/{agent}"),
            json!({"billingRate": "1.00", "billingRateEffectiveFrom": "2999-01-01"}),
            "billingRateEffectiveFrom",
        ),
        (
            format!("/api/agents/{agent}"),
            json!({"billingRateEffectiveFrom": "2026-10-01"}),
            "billingRateEffectiveFrom",
        ),
        (
            format!("/api/organizations/{org}"),
            json!({"billing_rate_per_agent": "1.00", "billing_rate_effective_from": "2026-10-01"}),
            "billing_rate_effective_from",
        ),
        (
            format!("/api/organizations/{org}"),
            json!({"billing_rate_per_agent": "1.00", "billing_rate_effective_from": "soon"}),
            "billing_rate_effective_from",
        ),
    ] {
        s.patch(&path, body).await.err(422, field);
    }
    assert_eq!(
        s.snapshot().await,
        before,
        "a refused rate change wrote something"
    );
    assert_eq!(summary(&s, &org, "2026-10").await["revenue"], "99.00");
}

#[tokio::test]
async fn a_changed_org_rate_reaches_agents_without_their_own_from_its_day_on() {
    let s = TestServer::start().await;
    let (org, _agent) = org_with_agent(&s, "99.00").await;
    let (month, _, d, dim) = today();
    let o = s
        .patch(
            &format!("/api/organizations/{org}"),
            json!({"billing_rate_per_agent": "120.00"}),
        )
        .await
        .ok();
    assert_eq!(o["billing_rate_per_agent"], "120.00");
    assert_eq!(summary(&s, &org, "2026-10").await["revenue"], "99.00");
    let want = prorated(9900 * (d - 1) + 12000 * (dim - d + 1), dim);
    assert_eq!(summary(&s, &org, &month).await["revenue"], json!(want));
}

#[tokio::test]
async fn an_agent_moved_mid_month_bills_each_org_for_its_days() {
    let s = TestServer::start().await;
    let (a, agent) = org_with_agent(&s, "99.00").await;
    // Its rate is set at creation: a later change would apply from that day only.
    let b = s
        .post(
            "/api/organizations",
            json!({"name": "Second client", "billing_rate_per_agent": "99.00"}),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.post(
        &format!("/api/agents/{agent}/assign-org"),
        json!({"org_id": b}),
    )
    .await
    .ok();
    // Back-date the move to Oct 11, noon: Oct 1-10 in A, Oct 11-31 in B.
    let moved = OCT_2026_MS + 10 * DAY_MS + 12 * 3_600_000;
    sql(
        &s,
        "UPDATE agent_assignments SET to_ms = $1 WHERE agent_id = $2 AND to_ms IS NOT NULL",
        &[moved],
        &agent,
    )
    .await;
    sql(
        &s,
        "UPDATE agent_assignments SET from_ms = $1 WHERE agent_id = $2 AND to_ms IS NULL",
        &[moved],
        &agent,
    )
    .await;
    // Usage follows the org that held the agent when it was used.
    spool(
        &s.sink_paths[0],
        &[
            event(&a, Some(&agent), "gpt-4o", 500_000, OCT_2026_MS + DAY_MS),
            event(
                &b,
                Some(&agent),
                "gpt-4o",
                2_000_000,
                OCT_2026_MS + 20 * DAY_MS,
            ),
        ],
    )
    .await;
    drained(&s).await;

    let ma = summary(&s, &a, "2026-10").await;
    let mb = summary(&s, &b, "2026-10").await;
    assert_eq!(ma["agents"][0]["days_assigned"], 10);
    assert_eq!(mb["agents"][0]["days_assigned"], 21);
    // 99 × 10/31 = 31.935… and 99 × 21/31 = 67.064…: rounded half up, they sum to the rate.
    assert_eq!(
        (&ma["revenue"], &ma["token_cost"], &ma["margin"]),
        (&json!("31.94"), &json!("0.50"), &json!("31.44"))
    );
    assert_eq!(
        (&mb["revenue"], &mb["token_cost"], &mb["margin"]),
        (&json!("67.06"), &json!("2.00"), &json!("65.06"))
    );
    // November: the agent is B's all month.
    assert_eq!(summary(&s, &a, "2026-11").await["agents"], json!([]));
    assert_eq!(
        summary(&s, &b, "2026-11").await["agents"][0]["days_assigned"],
        30
    );
}

#[tokio::test]
async fn an_org_without_usage_shows_zero_everywhere() {
    let s = TestServer::start().await;
    let org = s.org("Quiet client").await;
    let b = s
        .get(&format!("/api/organizations/{org}/billing-summary"))
        .await
        .ok();
    let months = b["months"].as_array().unwrap();
    assert_eq!(months.len(), 1, "only the current month: {b}");
    let m = &months[0];
    assert_eq!(
        (
            &m["revenue"],
            &m["token_cost"],
            &m["margin"],
            &m["margin_percent"],
            &m["agents"]
        ),
        (
            &json!("0.00"),
            &json!("0.00"),
            &json!("0.00"),
            &Value::Null,
            &json!([])
        ),
        "{m}"
    );
    let r = s
        .get(&format!("/api/organizations/{org}/billing"))
        .await
        .ok();
    assert_eq!(r["records"], json!([]));
    let u = s.get(&format!("/api/organizations/{org}/usage")).await.ok();
    assert_eq!(
        (&u["rows"], &u["totals"]["cost"], &u["totals"]["requests"]),
        (&json!([]), &json!("0.00"), &json!(0))
    );
}

#[tokio::test]
async fn the_csv_export_round_trips_the_json_records() {
    let s = TestServer::start().await;
    let (org, agent) = org_with_agent(&s, "99.00").await;
    s.patch(
        &format!("/api/agents/{agent}"),
        json!({"name": "Bot, \"the\" first"}),
    )
    .await
    .ok();
    let second = s
        .post("/api/agents", json!({"name": "Second", "org_id": org}))
        .await
        .ok();
    let second = second["id"].as_str().unwrap();
    spool(
        &s.sink_paths[0],
        &[
            event(&org, Some(&agent), "gpt-4o", 123_456, OCT_2026_MS + DAY_MS),
            event(&org, Some(second), "gpt-4o", 7, OCT_2026_MS + 40 * DAY_MS),
        ],
    )
    .await;
    drained(&s).await;

    let range = "from=2026-10&to=2026-12";
    let json_records = s
        .get(&format!("/api/organizations/{org}/billing?{range}"))
        .await
        .ok()["records"]
        .clone();
    let resp = s
        .client
        .get(format!(
            "{}/api/organizations/{org}/billing.csv?{range}",
            s.base
        ))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Value> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let field = |name: &str| r[header.iter().position(|h| h == name).unwrap()].to_string();
            let int = |name: &str| json!(field(name).parse::<u64>().unwrap());
            assert_eq!(field("currency"), "USD");
            assert_eq!(field("org_id"), org);
            json!({
                "month": field("month"), "agent_id": field("agent_id"), "agent_name": field("agent_name"),
                "rate": field("rate"), "days_assigned": int("days_assigned"), "days_in_month": int("days_in_month"),
                "input_tokens": int("input_tokens"), "output_tokens": int("output_tokens"),
                "token_cost": field("token_cost"), "revenue": field("revenue"), "margin": field("margin"),
            })
        })
        .collect();
    assert!(
        json_records.as_array().unwrap().len() >= 4,
        "{json_records}"
    );
    assert_eq!(Value::Array(rows), json_records);
}

#[tokio::test]
async fn usage_is_counted_once_across_repeated_drains_and_restarts() {
    let s = TestServer::start().await;
    let org = s.org("Counted").await;
    let now = admin_service::store::db::now_ms();
    let events: Vec<UsageEvent> = (0..5)
        .map(|i| {
            event(
                &org,
                None,
                if i % 2 == 0 { "gpt-4o" } else { "gpt-4o-mini" },
                10_000,
                now,
            )
        })
        .collect();
    // The sink file gets its table from the first push: spooling before it would race it.
    s.synced().await;
    spool(&s.sink_paths[0], &events).await;
    drained(&s).await;
    // The edge re-spools the same events (a drain that crashed before deleting them).
    spool(&s.sink_paths[0], &events[..3]).await;
    drained(&s).await;

    // Stop the service, spool while it is down, start it again on the same database.
    let sinks = s.sink_paths.clone();
    let later: Vec<UsageEvent> = (0..2)
        .map(|_| event(&org, None, "gpt-4o", 10_000, now))
        .collect();
    let s = restart(s, &sinks, &later).await;
    drained(&s).await;

    let u = s
        .get(&format!("/api/organizations/{org}/usage?group_by=model"))
        .await
        .ok();
    assert_eq!(u["totals"]["requests"], 7, "{u}");
    assert_eq!(u["totals"]["cost"], "0.07");
    assert_eq!(u["rows"][0]["group"], "gpt-4o");
    assert_eq!(u["rows"][0]["requests"], 5);
    assert_eq!(u["rows"][1]["group"], "gpt-4o-mini");
    let by_day = s
        .get(&format!("/api/organizations/{org}/usage?group_by=day"))
        .await
        .ok();
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1);
    let filtered = s
        .get(&format!("/api/organizations/{org}/usage?model=gpt-4o-mini"))
        .await
        .ok();
    assert_eq!(filtered["totals"]["requests"], 2);
}

/// Stops `s`, spools `events` while it is down, and starts it again on the same state.
async fn restart(
    mut s: TestServer,
    sinks: &[std::path::PathBuf],
    events: &[UsageEvent],
) -> TestServer {
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s); // aborts the server and the background tasks
    tokio::time::sleep(Duration::from_millis(50)).await;
    spool(&sinks[0], events).await;
    TestServer::start_in(dir, sinks.to_vec()).await
}

#[tokio::test]
async fn usage_queries_reject_bad_parameters_naming_them() {
    let s = TestServer::start().await;
    let org = s.org("Strict").await;
    s.get(&format!("/api/organizations/{org}/usage?from=2026-13-01"))
        .await
        .err(422, "from");
    s.get(&format!("/api/organizations/{org}/usage?group_by=week"))
        .await
        .err(422, "query");
    s.get(&format!(
        "/api/organizations/{org}/billing-summary?to=2026-1"
    ))
    .await
    .err(422, "to");
    s.get(&format!(
        "/api/organizations/{org}/billing-summary?from=2026-11&to=2026-10"
    ))
    .await
    .err(422, "from");
}

#[tokio::test]
async fn deleting_an_org_with_billing_history_needs_confirmation() {
    let s = TestServer::start().await;
    let (org, agent) = org_with_agent(&s, "10.00").await;
    s.post(&format!("/api/agents/{agent}/unassign-org"), json!({}))
        .await
        .ok();
    let r = s.delete(&format!("/api/organizations/{org}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "billing_history");
    assert!(
        r.text.contains("billing.csv") && r.text.contains("confirm=true"),
        "{}",
        r.text
    );
    // Nothing was deleted: the export still works.
    s.get(&format!("/api/organizations/{org}/billing.csv"))
        .await;
    assert_eq!(
        s.get(&format!("/api/organizations/{org}")).await.status,
        200
    );
    s.delete(&format!("/api/organizations/{org}?confirm=maybe"))
        .await
        .err(422, "confirm");

    assert_eq!(
        s.delete(&format!("/api/organizations/{org}?confirm=true"))
            .await
            .status,
        204
    );
    assert_eq!(
        s.get(&format!("/api/organizations/{org}")).await.status,
        404
    );
}

/// A request the edge denied after its key resolved: no tokens, no cost.
fn denied(org: &str, at_ms: i64) -> UsageEvent {
    UsageEvent {
        input_tokens: 0,
        output_tokens: 0,
        status: 429,
        code: Some("rate_limited".into()),
        denied: true,
        provider: None,
        ..event(org, None, "gpt-4o", 0, at_ms)
    }
}

#[tokio::test]
async fn usage_groups_and_request_logs_count_denied_and_cached_apart_per_org() {
    let s = TestServer::start().await;
    let org = s.org("Logged").await;
    let other = s.org("Neighbour").await;
    let agent = s.agent(&org, "Logger").await;
    let t = OCT_2026_MS + 3 * DAY_MS;
    let mut events = vec![
        event(&org, Some(&agent), "gpt-4o", 20_000, t),
        event(&org, Some(&agent), "gpt-4o", 30_000, t + 1),
        event(&org, None, "gpt-4o-mini", 5_000, t + DAY_MS),
        UsageEvent {
            cached: true,
            input_tokens: 0,
            output_tokens: 0,
            ..event(&org, Some(&agent), "gpt-4o", 0, t + 2)
        },
        denied(&org, t + 3),
        denied(&org, t + DAY_MS + 1),
        // Another tenant's traffic never shows in this org's figures or logs.
        event(&other, None, "gpt-4o", 999_000, t),
    ];
    events[2].team_id = Some("team_x".into());
    s.synced().await;
    spool(&s.sink_paths[0], &events).await;
    drained(&s).await;

    let base = format!("/api/organizations/{org}");
    let by_agent = s.get(&format!("{base}/usage?group_by=agent")).await.ok();
    let rows = by_agent["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{by_agent}");
    // Keys without an agent group under `null`, listed first.
    assert_eq!(rows[0]["group"], Value::Null);
    assert_eq!(
        (&rows[0]["requests"], &rows[0]["denied"], &rows[0]["cost"]),
        (&json!(1), &json!(2), &json!("0.005"))
    );
    assert_eq!(rows[1]["group"], json!(agent));
    assert_eq!(
        (
            &rows[1]["requests"],
            &rows[1]["cached_requests"],
            &rows[1]["denied"]
        ),
        (&json!(3), &json!(1), &json!(0))
    );
    assert_eq!(rows[1]["input_tokens"], 2000);
    assert_eq!(rows[1]["cost"], "0.05");
    let totals = &by_agent["totals"];
    assert_eq!(
        (&totals["requests"], &totals["denied"]),
        (&json!(4), &json!(2))
    );
    assert_eq!(totals["cost"], "0.055");
    let by_team = s.get(&format!("{base}/usage?group_by=team")).await.ok();
    assert_eq!(by_team["rows"][1]["group"], "team_x", "{by_team}");
    assert_eq!(by_team["rows"][1]["requests"], 1);
    let one_day = s
        .get(&format!("{base}/usage?from=2026-10-05&to=2026-10-05"))
        .await
        .ok();
    assert_eq!(one_day["rows"][0]["group"], "2026-10-05", "{one_day}");
    assert_eq!(one_day["totals"]["requests"], 1);
    assert_eq!(one_day["totals"]["denied"], 1);

    let logs = |q: &str| {
        let path = format!("{base}/logs?{q}");
        let s = &s;
        async move { s.get(&path).await.ok().as_array().unwrap().clone() }
    };
    assert_eq!(logs("denied=true").await.len(), 2);
    assert_eq!(logs("denied=false").await.len(), 4);
    let cached = logs("cached=true").await;
    assert_eq!(cached.len(), 1);
    assert_eq!(cached[0]["cached"], true);
    assert_eq!(cached[0]["denied"], false);
    let limited = logs("status=429&code=rate_limited").await;
    assert_eq!(limited.len(), 2);
    assert!(
        limited
            .iter()
            .all(|e| e["denied"] == true && e["cost"] == "0.00")
    );
    assert_eq!(
        logs(&format!("agent_id={agent}&model=gpt-4o")).await.len(),
        3
    );
    assert_eq!(logs("team_id=team_x").await[0]["model"], "gpt-4o-mini");

    // Pages of two, newest first, every event once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.map_or(String::new(), |c| format!("&cursor={c}"));
        let page = s.get(&format!("{base}/logs?limit=2{q}")).await;
        cursor = page.next_cursor.clone();
        let items = page.ok();
        seen.extend(items.as_array().unwrap().iter().map(|e| e["at"].clone()));
        if cursor.is_none() {
            break;
        }
    }
    let newest_first: Vec<Value> = [t + DAY_MS + 1, t + DAY_MS, t + 3, t + 2, t + 1, t]
        .map(|ms| json!(admin_service::store::db::rfc3339(ms)))
        .into();
    assert_eq!(seen, newest_first);

    // Attacks: a forged cursor, and a viewer of this org reading the neighbour's logs.
    s.get(&format!("{base}/logs?cursor=nope"))
        .await
        .err(422, "cursor");
    let (_, viewer) = s.user(&org, "viewer").await;
    let theirs = s
        .call(
            "GET",
            &format!("/api/organizations/{other}/logs"),
            &viewer,
            None,
        )
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    let mine = s
        .call("GET", &format!("{base}/logs"), &viewer, None)
        .await
        .ok();
    assert_eq!(mine.as_array().unwrap().len(), 6);
}
