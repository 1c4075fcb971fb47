//! The billing, usage, exchange-rate and request-log SQL on the backend
//! `TOLLGATE_TEST_DB` names (SQLite by default, PostgreSQL with `postgres`), called
//! below the HTTP layer so every figure is checked on both engines: sums read as
//! 64-bit integers, 0/1 flags, grouping, paging, upserts and the currency-gap check.

use std::sync::Arc;

use admin_service::billing::fx::FxRates;
use admin_service::billing::rate_history::{Rates, SINCE_ALWAYS, set_agent_rate, set_org_rate};
use admin_service::billing::usage::{GroupBy, report, utc_day};
use admin_service::billing::{self, MonthRange, compute};
use admin_service::store::db::{Db, Signal, Writer, connect};
use admin_service::store::logs::{self, LogFilter};
use admin_service::store::usage::UsageFilter;
use admin_service::store::{fx, sync};
use policy::UsageEvent;
use serde_json::json;

/// Oct 1, 2026 00:00 UTC.
const OCT_2026_MS: i64 = 1_790_812_800_000;
const DAY_MS: i64 = 86_400_000;

struct Fixture {
    db: Db,
    writer: Writer,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(&test_postgres::database_url(dir.path()))
        .await
        .unwrap();
    let writer = Writer::new(Arc::new(Signal::new(0)));
    Fixture {
        db,
        writer,
        _dir: dir,
    }
}

impl Fixture {
    /// An org billing in `currency`, at `rate_minor` per agent and month.
    async fn org(&self, id: &str, currency: &str, rate_minor: i64) {
        let mut tx = self.writer.begin(&self.db).await.unwrap();
        sqlx::query(
            "INSERT INTO organizations (id, name, slug, currency, created_at_ms, updated_at_ms)
             VALUES ($1, $1, $1, $2, 0, 0)",
        )
        .bind(id)
        .bind(currency)
        .execute(tx.conn())
        .await
        .unwrap();
        set_org_rate(tx.conn(), id, SINCE_ALWAYS, rate_minor)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// An agent of `org` (following its rate) since `from_ms`.
    async fn agent(&self, id: &str, org: &str, from_ms: i64) {
        let mut tx = self.writer.begin(&self.db).await.unwrap();
        sqlx::query(
            "INSERT INTO agents (id, name, org_id, created_at_ms, updated_at_ms)
             VALUES ($1, $1, $2, 0, 0)",
        )
        .bind(id)
        .bind(org)
        .execute(tx.conn())
        .await
        .unwrap();
        billing::record_assignment(tx.conn(), id, org, from_ms)
            .await
            .unwrap();
        set_agent_rate(tx.conn(), id, SINCE_ALWAYS, None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Stores events as the usage drain does.
    async fn usage(&self, events: &[UsageEvent]) {
        let mut tx = self.writer.begin(&self.db).await.unwrap();
        let rows: Vec<_> = events
            .iter()
            .map(|e| (e.clone(), utc_day(e.at_ms as i64)))
            .collect();
        sync::insert_usage(tx.conn(), &rows).await.unwrap();
        tx.commit().await.unwrap();
    }
}

fn event(id: &str, org: &str, agent: Option<&str>, cost_micros: u64, at_ms: i64) -> UsageEvent {
    UsageEvent {
        event_id: id.into(),
        org_id: org.into(),
        team_id: None,
        key_id: "key_x".into(),
        agent_id: agent.map(String::from),
        model: "gpt-4o".into(),
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

fn range(from: Option<&str>, to: &str) -> MonthRange {
    serde_json::from_value(json!({"from": from, "to": to})).unwrap()
}

#[tokio::test]
async fn billing_usage_and_logs_figures_are_exact_on_this_backend() {
    let f = fixture().await;
    f.org("org_a", "USD", 9900).await;
    f.org("org_b", "USD", 100).await;
    // Assigned from Sept 30: one day of September, all of October.
    f.agent("agent_1", "org_a", OCT_2026_MS - DAY_MS).await;
    let t = OCT_2026_MS + 4 * DAY_MS;
    let mut cached = event("e4", "org_a", Some("agent_1"), 0, t + 3);
    cached.cached = true;
    let mut denied = event("e5", "org_a", None, 0, OCT_2026_MS - 60 * DAY_MS);
    (denied.denied, denied.status, denied.code) = (true, 429, Some("rate_limited".into()));
    let events = [
        event("e1", "org_a", Some("agent_1"), 1_000_000, t),
        event("e2", "org_a", Some("agent_1"), 2_000_000, t + 1),
        event("e3", "org_a", None, 500_000, t + DAY_MS),
        cached,
        denied,
        event("e6", "org_b", None, 7_000_000, t),
    ];
    f.usage(&events).await;
    // A re-drained event counts once.
    f.usage(&events[..1]).await;

    // The seed: $99 rate, $3 agent cost; the unattributed $0.50 is the org's cost.
    let b = compute(&f.db, "org_a", &range(Some("2026-10"), "2026-10"))
        .await
        .unwrap();
    let oct = serde_json::to_value(&b.months[0]).unwrap();
    assert_eq!(b.currency, "USD");
    assert_eq!(oct["agents"][0]["revenue"], "99.00", "{oct}");
    assert_eq!(oct["agents"][0]["token_cost"], "3.00");
    assert_eq!(oct["agents"][0]["margin"], "96.00");
    assert_eq!(oct["agents"][0]["input_tokens"], 3000);
    assert_eq!(oct["token_cost"], "3.50");
    assert_eq!(oct["unattributed_token_cost"], "0.50");
    assert_eq!(oct["margin_percent"], "96.5");
    // Without `from`, billing starts at the first assignment: the denied August
    // event is no history.
    let all = compute(&f.db, "org_a", &range(None, "2026-10"))
        .await
        .unwrap();
    let sept = serde_json::to_value(&all.months[0]).unwrap();
    assert_eq!(sept["month"], "2026-09", "{sept}");
    assert_eq!(sept["revenue"], "3.30");
    assert!(
        compute(&f.db, "org_nope", &range(None, "2026-10"))
            .await
            .is_err()
    );

    let by_agent = report(&f.db, "org_a", GroupBy::Agent, &UsageFilter::default())
        .await
        .unwrap();
    let v = serde_json::to_value(&by_agent).unwrap();
    assert_eq!(v["rows"][0]["group"], json!(null), "{v}");
    assert_eq!(
        (&v["rows"][0]["requests"], &v["rows"][0]["denied"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(v["rows"][1]["requests"], 3);
    assert_eq!(v["rows"][1]["cached_requests"], 1);
    assert_eq!(v["rows"][1]["cost"], "3.00");
    assert_eq!(v["totals"]["cost"], "3.50");
    assert_eq!(v["totals"]["input_tokens"], 5000);
    let day = UsageFilter {
        from_day: Some("2026-10-06"),
        to_day: Some("2026-10-06"),
        ..UsageFilter::default()
    };
    let one_day = report(&f.db, "org_a", GroupBy::Day, &day).await.unwrap();
    let v = serde_json::to_value(&one_day).unwrap();
    assert_eq!(v["rows"][0]["group"], "2026-10-06", "{v}");
    assert_eq!(v["totals"]["requests"], 1);

    let count = |rows: Vec<logs::LogRow>| rows.len();
    let flt = |denied, cached| LogFilter {
        denied,
        cached,
        ..LogFilter::default()
    };
    assert_eq!(
        count(
            logs::page(&f.db, "org_a", &flt(Some(true), None), 50)
                .await
                .unwrap()
        ),
        1
    );
    assert_eq!(
        count(
            logs::page(&f.db, "org_a", &flt(Some(false), None), 50)
                .await
                .unwrap()
        ),
        4
    );
    let hit = logs::page(&f.db, "org_a", &flt(None, Some(true)), 50)
        .await
        .unwrap();
    assert_eq!((hit.len(), hit[0].cached, hit[0].denied), (1, true, false));
    let limited = LogFilter {
        status: Some(429),
        code: Some("rate_limited"),
        ..LogFilter::default()
    };
    let limited = logs::page(&f.db, "org_a", &limited, 50).await.unwrap();
    assert_eq!(limited[0].event_id, "e5");
    // Newest first, two at a time, resuming after the last one seen.
    let first = logs::page(&f.db, "org_a", &LogFilter::default(), 2)
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["e3", "e4"]);
    let after = LogFilter {
        before: Some((first[1].at_ms, &first[1].event_id)),
        ..LogFilter::default()
    };
    let next = logs::page(&f.db, "org_a", &after, 2).await.unwrap();
    let ids: Vec<&str> = next.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids, ["e2", "e1"]);
}

#[tokio::test]
async fn rates_history_and_deletion_on_this_backend() {
    let f = fixture().await;
    f.org("org_a", "USD", 9900).await;
    f.org("org_empty", "USD", 0).await;
    f.agent("agent_1", "org_a", OCT_2026_MS).await;
    let mut tx = f.writer.begin(&f.db).await.unwrap();
    set_agent_rate(tx.conn(), "agent_1", "2026-10-15", Some(15_000))
        .await
        .unwrap();
    // A second change on the same day replaces the first (the upsert path).
    set_agent_rate(tx.conn(), "agent_1", "2026-10-15", Some(12_000))
        .await
        .unwrap();
    set_org_rate(tx.conn(), "org_a", "2026-10-20", 10_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rates = Rates::load(&f.db, "org_a").await.unwrap();
    assert_eq!(rates.on("agent_1", "2026-10-14"), 9900);
    assert_eq!(rates.on("agent_1", "2026-10-15"), 12_000);
    assert_eq!(rates.on("other", "2026-10-21"), 10_000);
    let in_force: Option<i64> =
        sqlx::query_scalar("SELECT billing_rate_minor FROM agents WHERE id = $1")
            .bind("agent_1")
            .fetch_one(&f.db)
            .await
            .unwrap();
    assert_eq!(in_force, Some(12_000));

    let mut tx = f.writer.begin(&f.db).await.unwrap();
    assert!(billing::has_history(tx.conn(), "org_a").await.unwrap());
    assert!(!billing::has_history(tx.conn(), "org_empty").await.unwrap());
    billing::delete_history(tx.conn(), "org_a").await.unwrap();
    assert!(!billing::has_history(tx.conn(), "org_a").await.unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn exchange_rates_and_the_currency_gap_on_this_backend() {
    let f = fixture().await;
    f.org("org_eur", "EUR", 0).await;
    let mut tx = f.writer.begin(&f.db).await.unwrap();
    sqlx::query(
        "INSERT INTO catalog_models (name, currency, input_price_micros_per_1m, created_at_ms,
             updated_at_ms) VALUES ('gpt-4o', 'USD', 2500000, 0, 0)",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    let gap = fx::first_gap(tx.conn())
        .await
        .unwrap()
        .expect("no USD→EUR rate");
    assert_eq!(
        (gap.model.as_str(), gap.from_currency.as_str()),
        ("gpt-4o", "USD")
    );
    assert_eq!(
        (gap.org_slug.as_str(), gap.to_currency.as_str()),
        ("org_eur", "EUR")
    );
    fx::upsert(tx.conn(), "USD", "EUR", 920_000, 1)
        .await
        .unwrap();
    fx::upsert(tx.conn(), "USD", "EUR", 930_000, 2)
        .await
        .unwrap();
    assert!(fx::first_gap(tx.conn()).await.unwrap().is_none());
    tx.commit().await.unwrap();

    let rows = fx::list(&f.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].rate_micros, rows[0].updated_at_ms), (930_000, 2));
    let rates = FxRates::load(&f.db).await.unwrap();
    assert_eq!(rates.convert(2_500_000, "USD", "EUR"), Some(2_325_000));

    let mut tx = f.writer.begin(&f.db).await.unwrap();
    assert!(fx::delete(tx.conn(), "USD", "EUR").await.unwrap());
    assert!(!fx::delete(tx.conn(), "USD", "EUR").await.unwrap());
    assert!(fx::first_gap(tx.conn()).await.unwrap().is_some());
}

#[tokio::test]
async fn kept_bodies_are_read_per_org_and_expire_on_this_backend() {
    let f = fixture().await;
    f.org("org_a", "USD", 0).await;
    f.org("org_b", "USD", 0).await;
    let mut tx = f.writer.begin(&f.db).await.unwrap();
    sqlx::query(
        "INSERT INTO request_contents
            (event_id, org_id, at_ms, expires_at_ms, request, response, truncated)
         VALUES ('e1', 'org_a', 0, 1000, '{\"q\":1}', '{\"a\":2}', 1)",
    )
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let kept = logs::content(&f.db, "org_a", "e1", 999)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((kept.request.as_str(), kept.truncated), ("{\"q\":1}", true));
    // Another org's path never reads it, nor does anyone after its retention.
    assert!(
        logs::content(&f.db, "org_b", "e1", 999)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        logs::content(&f.db, "org_a", "e1", 1000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!logs::any_expired(&f.db, 999).await.unwrap());
    assert!(logs::any_expired(&f.db, 1000).await.unwrap());
    let mut tx = f.writer.begin(&f.db).await.unwrap();
    assert_eq!(logs::delete_expired(tx.conn(), 1000).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert!(!logs::any_expired(&f.db, 5000).await.unwrap());
}
