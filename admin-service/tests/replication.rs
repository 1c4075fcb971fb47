//! Several admin replicas on one database (PostgreSQL with `TOLLGATE_TEST_DB=postgres`,
//! else SQLite): each sink is pushed, drained and swept by one replica at a time, a
//! failed push leaves the position for another replica to push again, usage counts
//! once, and the audit triggers write the same JSON on both backends.

use std::path::Path;
use std::sync::Arc;

use admin_service::store::db::{Backend, Db, Signal, Writer, connect, now_ms};
use admin_service::store::sync::{Job, SinkTurn};
use admin_service::sync::compile::KvWrite;
use admin_service::sync::drain::drain_once as drain_usage;
use admin_service::sync::outbox::{Pushed, drain_once as push};
use admin_service::sync::sinks::{Sink, SinkError, SinkFuture, SpinSqliteSink};
use admin_service::vault::{KeySource, Vault};
use policy::usage::UsageEvent;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;

/// A database for the test in `dir`, and `n` replicas' pools on it.
async fn replicas(dir: &Path, n: usize) -> Vec<Db> {
    let url = test_postgres::database_url(dir);
    let mut pools = Vec::new();
    for _ in 0..n {
        pools.push(connect(&url).await.unwrap());
    }
    pools
}

fn writer() -> Writer {
    Writer::new(Arc::new(Signal::new(0))).with_actor(|| "usr_auditor".to_string())
}

fn event(i: usize) -> UsageEvent {
    UsageEvent {
        event_id: format!("evt_{i:05}"),
        org_id: "org_internal".into(),
        key_id: "key_x".into(),
        model: "gpt-4o".into(),
        input_tokens: 10,
        output_tokens: 5,
        cost_micros: 7,
        status: 200,
        latency_ms: 3,
        at_ms: 1_795_428_930_000,
        team_id: None,
        agent_id: None,
        provider: Some("openai".into()),
        route_group: None,
        cached: i.is_multiple_of(2),
        code: None,
        denied: false,
        content: None,
    }
}

/// The edge's count of spooled events in the Spin KV file at `path`.
async fn spool_counter(path: &Path) -> i64 {
    let pool = sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let v: Vec<u8> =
        sqlx::query_scalar("SELECT value FROM spin_key_value WHERE store = 'default' AND key = $1")
            .bind(policy::usage::SPOOL_PENDING_KEY)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    i64::from_le_bytes(v.try_into().unwrap())
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

#[tokio::test]
async fn a_sink_turn_is_held_by_one_replica_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = replicas(dir.path(), 2).await;
    let first = SinkTurn::take(&dbs[0], Job::Push, "sqlite:a")
        .await
        .unwrap();
    assert!(first.is_some());
    let second = SinkTurn::take(&dbs[1], Job::Push, "sqlite:a")
        .await
        .unwrap();
    match Backend::of(&dbs[0]) {
        // One process owns a SQLite file: nobody else contends.
        Backend::Sqlite => assert!(second.is_some()),
        Backend::Postgres => {
            assert!(second.is_none(), "two replicas pushing one sink at once");
            // Another sink, or another job on the same sink, is free.
            assert!(
                SinkTurn::take(&dbs[1], Job::Push, "sqlite:b")
                    .await
                    .unwrap()
                    .is_some()
            );
            assert!(
                SinkTurn::take(&dbs[1], Job::Drain, "sqlite:a")
                    .await
                    .unwrap()
                    .is_some()
            );
            // Dropped without finishing (a replica that died): the sink is free again.
            drop(first);
            let mut again = None;
            for _ in 0..50 {
                again = SinkTurn::take(&dbs[1], Job::Push, "sqlite:a")
                    .await
                    .unwrap();
                if again.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(again.is_some(), "the turn outlived its holder");
        }
    }
}

#[tokio::test]
async fn usage_spooled_once_is_counted_once_when_two_replicas_drain_it() {
    const EVENTS: usize = 1200;
    let dir = tempfile::tempdir().unwrap();
    // Two replicas on PostgreSQL; on SQLite (one replica by design) one.
    let mut dbs = replicas(dir.path(), 2).await;
    if Backend::of(&dbs[0]) == Backend::Sqlite {
        dbs.truncate(1);
    }
    let path = dir.path().join("kv.db");
    let sink = Arc::new(SpinSqliteSink::new(&path));
    let mut spool: Vec<KvWrite> = (0..EVENTS)
        .map(|i| KvWrite::Put {
            key: event(i).kv_key(),
            value: event(i).encode(),
        })
        .collect();
    spool.push(KvWrite::AddToCounter {
        key: policy::usage::SPOOL_PENDING_KEY.into(),
        delta: EVENTS as i64,
    });
    sink.apply(&spool).await.unwrap();

    let mut tasks = Vec::new();
    for db in dbs.clone() {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            let writer = writer();
            let mut idle = 0;
            while idle < 5 {
                match drain_usage(&db, &writer, sink.as_ref()).await.unwrap() {
                    0 => {
                        idle += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    _ => idle = 0,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        count(&dbs[0], "SELECT COUNT(*) FROM usage_events").await,
        EVENTS as i64
    );
    assert_eq!(
        count(
            &dbs[0],
            "SELECT CAST(SUM(input_tokens) AS BIGINT) FROM usage_events"
        )
        .await,
        10 * EVENTS as i64
    );
    assert_eq!(
        spool_counter(&path).await,
        0,
        "the spool counter dropped once per event"
    );
    assert!(sink.spooled_usage(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_forged_spool_entry_is_kept_as_a_reject_and_never_counted() {
    const EVENTS: usize = 45;
    let dir = tempfile::tempdir().unwrap();
    let db = replicas(dir.path(), 1).await.remove(0);
    let path = dir.path().join("kv.db");
    let sink = SpinSqliteSink::new(&path);
    // Real events around entries no edge wrote: not JSON, and an event carrying a
    // field the edge never writes (strict decoding refuses it).
    let mut forged = event(EVENTS);
    forged.event_id = "evt_forged".into();
    let mut widened: Value = serde_json::from_slice(&forged.encode()).unwrap();
    widened["cost_micros_override"] = 0.into();
    let mut spool: Vec<KvWrite> = (0..EVENTS)
        .map(|i| KvWrite::Put {
            key: event(i).kv_key(),
            value: event(i).encode(),
        })
        .collect();
    spool.insert(
        10,
        KvWrite::Put {
            key: "usage:00000-not-json".into(),
            value: b"{not json".to_vec(),
        },
    );
    spool.push(KvWrite::Put {
        key: forged.kv_key(),
        value: serde_json::to_vec(&widened).unwrap(),
    });
    spool.push(KvWrite::AddToCounter {
        key: policy::usage::SPOOL_PENDING_KEY.into(),
        delta: EVENTS as i64 + 2,
    });
    sink.apply(&spool).await.unwrap();

    while drain_usage(&db, &writer(), &sink).await.unwrap() > 0 {}
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM usage_events").await,
        EVENTS as i64
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM usage_events WHERE event_id = 'evt_forged'"
        )
        .await,
        0
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_rejects").await, 2);
    assert_eq!(spool_counter(&path).await, 0);
    assert!(sink.spooled_usage(10).await.unwrap().is_empty());
}

/// A sink that fails every write, under the real sink's name.
struct Down(String);

impl Sink for Down {
    fn name(&self) -> &str {
        &self.0
    }
    fn apply<'a>(&'a self, _: &'a [KvWrite]) -> SinkFuture<'a> {
        Box::pin(async { Err(SinkError("connection refused".into())) })
    }
    fn spooled_usage(&self, _: usize) -> admin_service::sync::sinks::SpoolFuture<'_> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn counter_keys(&self) -> admin_service::sync::sinks::KeysFuture<'_> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn cache_expiries(&self) -> admin_service::sync::sinks::SpoolFuture<'_> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[tokio::test]
async fn a_batch_one_replica_failed_to_push_is_pushed_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let dbs = replicas(dir.path(), 2).await;
    let path = dir.path().join("kv.db");
    let sink = SpinSqliteSink::new(&path);
    admin_service::store::sync::register_sink(&dbs[0], sink.name())
        .await
        .unwrap();
    let vault = Vault::load(KeySource::None, KeySource::None).unwrap();
    // Writes from both replicas.
    for (i, db) in dbs.iter().cycle().take(40).enumerate() {
        let mut tx = writer().begin(db).await.unwrap();
        let id = format!("org_r{i:03}");
        sqlx::query(
            "INSERT INTO organizations (id, name, slug, created_at_ms, updated_at_ms)
             VALUES ($1, $1, $1, $2, $2)",
        )
        .bind(&id)
        .bind(now_ms())
        .execute(tx.conn())
        .await
        .unwrap();
        tx.enqueue("org", &id).await.unwrap();
        tx.commit().await.unwrap();
    }
    // Replica 0 cannot reach the sink: its position stays where it was.
    let before = position(&dbs[0], sink.name()).await;
    let down = Down(sink.name().to_string());
    assert!(push(&dbs[0], &down, &vault).await.is_err());
    assert_eq!(position(&dbs[0], sink.name()).await, before);
    // Replica 1 pushes everything.
    let last = dbs.len() - 1;
    while push(&dbs[last], &sink, &vault).await.unwrap() != Pushed::UpToDate {}
    let head = count(&dbs[0], "SELECT CAST(MAX(id) AS BIGINT) FROM outbox").await;
    assert_eq!(position(&dbs[0], sink.name()).await, head);
    for i in 0..40 {
        let key = policy::kv::org_key(&format!("org_r{i:03}"));
        let pool = sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spin_key_value WHERE key = $1")
            .bind(&key)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 1, "{key} missing from the sink");
    }
}

/// The outbox position `sink` acknowledged.
async fn position(db: &Db, sink: &str) -> i64 {
    admin_service::store::sync::sink_position(db, sink)
        .await
        .unwrap()
        .expect("the sink is registered")
        .position
}

/// actor, action, entity_id, org_id, before, after.
type AuditRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[tokio::test]
async fn audit_rows_name_the_actor_and_leave_secrets_out_on_either_backend() {
    let dir = tempfile::tempdir().unwrap();
    let db = &replicas(dir.path(), 1).await[0];
    let config = r#"{"providers":[{"name":"openai","api_key":"sk-live-SECRET","models":["gpt-*"]},{"name":"local"}]}"#;
    let mut tx = writer().begin(db).await.unwrap();
    for sql in [
        "INSERT INTO organizations (id, name, slug, config, created_at_ms, updated_at_ms)
         VALUES ('org_a', 'A', 'a', $1, 1, 1)",
        "UPDATE organizations SET name = 'A2' WHERE id = 'org_a' AND config = $1",
        "INSERT INTO virtual_keys (id, org_id, name, key_prefix, key_hash, created_at_ms)
         SELECT 'key_a', 'org_a', 'k', 'tg-ab', 'HASHSECRET', 1 WHERE $1 <> ''",
        "INSERT INTO fx_rates (from_currency, to_currency, rate_micros, updated_at_ms)
         SELECT 'USD', 'EUR', 900000, 1 WHERE $1 <> ''",
    ] {
        sqlx::query(sql)
            .bind(config)
            .execute(tx.conn())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // A writer outside any request: the system's.
    let mut tx = Writer::new(Arc::new(Signal::new(0)))
        .begin(db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM fx_rates")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT actor, action, entity_id, org_id, before, after FROM audit_log ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let actions: Vec<(&str, &str, Option<&str>, Option<&str>)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_deref(), r.3.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("usr_auditor", "org.create", Some("org_a"), Some("org_a")),
            ("usr_auditor", "org.update", Some("org_a"), Some("org_a")),
            ("usr_auditor", "key.create", Some("key_a"), Some("org_a")),
            ("usr_auditor", "fx_rate.create", Some("USD/EUR"), None),
            ("system", "fx_rate.delete", Some("USD/EUR"), None),
        ]
    );
    let json =
        |t: &Option<String>| -> Value { serde_json::from_str(t.as_deref().unwrap()).unwrap() };
    let org = json(&rows[1].5);
    assert_eq!(json(&rows[1].4)["name"], "A");
    assert_eq!(org["name"], "A2");
    assert_eq!(org["active"], 1);
    assert_eq!(org["contact_email"], Value::Null);
    assert_eq!(
        org["config"]["providers"],
        serde_json::json!([
            {"name": "openai", "api_key_set": true, "models": ["gpt-*"]},
            {"name": "local"}
        ])
    );
    let key = json(&rows[2].5);
    assert_eq!(key["key_prefix"], "tg-ab");
    assert_eq!(key["limits"], "{}");
    assert!(key.get("key_hash").is_none());
    assert!(rows[2].4.is_none() && rows[4].5.is_none());
    assert_eq!(json(&rows[4].4)["rate_micros"], 900000);
    for r in &rows {
        for doc in [&r.4, &r.5].into_iter().flatten() {
            assert!(!doc.contains("SECRET"), "{doc}");
        }
    }
}
