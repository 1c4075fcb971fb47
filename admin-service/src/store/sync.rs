//! The SQL of edge synchronisation: the outbox and each sink's position in it, the
//! state the compiler reads, usage drained from the edge spools, and the per-sink
//! turn that lets only one replica push to (or drain, or sweep) a sink at a time.

use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::store::query::Sql;

use crate::store::db::{Backend, Db};

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Position in the outbox.
    pub id: i64,
    /// `org`, `team`, `key`, `agent`, `all` or `kvdel`.
    pub kind: String,
    /// The entity (or KV key for `kvdel`).
    pub entity_id: String,
}

/// A sink's replication bookkeeping.
#[derive(Debug, Clone)]
pub struct SinkPosition {
    /// Last outbox id the sink acknowledged.
    pub position: i64,
    /// The last push error, cleared by the next success.
    pub last_error: Option<String>,
    /// When the last error happened (Unix ms).
    pub last_error_at_ms: Option<i64>,
    /// When the last batch was acknowledged (Unix ms).
    pub last_success_at_ms: Option<i64>,
}

/// What a periodic job does with a sink; each has its own turn.
#[derive(Debug, Clone, Copy)]
pub enum Job {
    /// Compile the outbox and push it.
    Push,
    /// Move spooled usage into the database.
    Drain,
    /// Delete ended counters and expired cache entries.
    Sweep,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Push => "push",
            Job::Drain => "drain",
            Job::Sweep => "sweep",
        }
    }
}

/// The advisory-lock class of sink turns ("tgsk"); the lock's second key is a hash
/// of the job and sink names. Two-key locks never collide with the writer's one-key lock.
const TURN_LOCK_CLASS: i32 = 0x7467_736b;

/// The exclusive right to run one [`Job`] on one sink. On PostgreSQL, a transaction
/// holding an advisory lock that every replica contends for: it ends, and the lock
/// with it, when the turn is finished or dropped, or when the replica's connection
/// dies, so a replica killed mid-batch hands the sink over with nothing advanced.
/// On SQLite (one process) a plain connection.
pub struct SinkTurn {
    held: Held,
}

enum Held {
    Locked(Transaction<'static, Any>),
    Single(PoolConnection<Any>),
}

impl SinkTurn {
    /// Takes the turn for `job` on `sink`, or `None` while another replica has it.
    pub async fn take(db: &Db, job: Job, sink: &str) -> Result<Option<SinkTurn>, sqlx::Error> {
        let held = match Backend::of(db) {
            Backend::Sqlite => Held::Single(db.acquire().await?),
            Backend::Postgres => {
                let mut tx = db.begin().await?;
                let got: i64 = sqlx::query_scalar(
                    "SELECT CAST(CASE WHEN pg_try_advisory_xact_lock($1, hashtext($2)) \
                     THEN 1 ELSE 0 END AS BIGINT)",
                )
                .bind(TURN_LOCK_CLASS)
                .bind(format!("{}:{sink}", job.name()))
                .fetch_one(&mut *tx)
                .await?;
                if got == 0 {
                    return Ok(None);
                }
                Held::Locked(tx)
            }
        };
        Ok(Some(SinkTurn { held }))
    }

    /// The connection of the turn.
    pub fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.held {
            Held::Locked(tx) => tx,
            Held::Single(c) => c,
        }
    }

    /// Ends the turn, keeping what it wrote (the position it advanced).
    pub async fn finish(self) -> Result<(), sqlx::Error> {
        match self.held {
            Held::Locked(tx) => tx.commit().await,
            Held::Single(_) => Ok(()),
        }
    }
}

/// Registers `sink` at the start of the outbox unless it is known already.
pub async fn register_sink(db: &Db, sink: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sink_positions (sink, position) VALUES ($1, 0) ON CONFLICT (sink) DO NOTHING",
    )
    .bind(sink)
    .execute(db)
    .await?;
    Ok(())
}

/// The outbox position `sink` has acknowledged.
pub async fn position(conn: &mut AnyConnection, sink: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT position FROM sink_positions WHERE sink = $1")
        .bind(sink)
        .fetch_one(conn)
        .await
}

/// Up to `limit` outbox rows after `position`, in id order.
pub async fn outbox_after(
    conn: &mut AnyConnection,
    position: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, kind, entity_id FROM outbox WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(position)
            .bind(limit)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                entity_id: r.try_get("entity_id")?,
            })
        })
        .collect()
}

/// Records that `sink` acknowledged everything up to `position`.
pub async fn advance(
    conn: &mut AnyConnection,
    sink: &str,
    position: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sink_positions SET position = $1, last_error = NULL, last_success_at_ms = $2 \
         WHERE sink = $3",
    )
    .bind(position)
    .bind(now_ms)
    .bind(sink)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a failed push to `sink`.
pub async fn record_error(
    db: &Db,
    sink: &str,
    error: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sink_positions SET last_error = $1, last_error_at_ms = $2 WHERE sink = $3")
        .bind(error)
        .bind(now_ms)
        .bind(sink)
        .execute(db)
        .await?;
    Ok(())
}

/// The newest outbox id (0 when empty).
pub async fn outbox_head(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM outbox")
        .fetch_one(db)
        .await
}

/// The bookkeeping of `sink`, if registered.
pub async fn sink_position(db: &Db, sink: &str) -> Result<Option<SinkPosition>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT position, last_error, last_error_at_ms, last_success_at_ms \
         FROM sink_positions WHERE sink = $1",
    )
    .bind(sink)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(SinkPosition {
        position: r.try_get("position")?,
        last_error: r.try_get("last_error")?,
        last_error_at_ms: r.try_get("last_error_at_ms")?,
        last_success_at_ms: r.try_get("last_success_at_ms")?,
    }))
}

/// Outbox entries after `position`.
pub async fn pending(db: &Db, position: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE id > $1")
        .bind(position)
        .fetch_one(db)
        .await
}

/// (key id, hash of a rotated-out secret, end of its grace) of every grace hash.
pub async fn grace_hashes(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT key_id, key_hash, grace_ends_at_ms FROM key_grace_hashes")
        .fetch_all(db)
        .await
}

/// Every org id.
pub async fn org_ids(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM organizations ORDER BY id")
        .fetch_all(db)
        .await
}

/// Every team id.
pub async fn team_ids(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM teams ORDER BY id")
        .fetch_all(db)
        .await
}

/// The org's row (all columns).
pub async fn org_row(db: &Db, id: &str) -> Result<Option<AnyRow>, sqlx::Error> {
    sqlx::query("SELECT * FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The org's `active` flag and stored config.
pub async fn org_activity(db: &Db, id: &str) -> Result<Option<(bool, String)>, sqlx::Error> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT active, config FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(active, config)| (active != 0, config)))
}

/// The ids of the org's agents.
pub async fn agent_ids_of_org(db: &Db, org_id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM agents WHERE org_id = $1 ORDER BY id")
        .bind(org_id)
        .fetch_all(db)
        .await
}

/// The agent's org and `active` flag.
pub async fn agent_state(db: &Db, id: &str) -> Result<Option<(String, bool)>, sqlx::Error> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT org_id, active FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(org, active)| (org, active != 0)))
}

/// The team's row (all columns).
pub async fn team_row(db: &Db, id: &str) -> Result<Option<AnyRow>, sqlx::Error> {
    sqlx::query("SELECT * FROM teams WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The rows of the keys whose `column` (`id`, `org_id` or `team_id`) is `value`.
pub async fn key_rows(db: &Db, column: KeyColumn, value: &str) -> Result<Vec<AnyRow>, sqlx::Error> {
    let sql = match column {
        KeyColumn::Id => "SELECT * FROM virtual_keys WHERE id = $1",
        KeyColumn::Org => "SELECT * FROM virtual_keys WHERE org_id = $1 ORDER BY id",
        KeyColumn::Team => "SELECT * FROM virtual_keys WHERE team_id = $1 ORDER BY id",
    };
    sqlx::query(sql).bind(value).fetch_all(db).await
}

/// Which key column [`key_rows`] selects by.
#[derive(Debug, Clone, Copy)]
pub enum KeyColumn {
    /// The key's own id.
    Id,
    /// Its org.
    Org,
    /// Its team.
    Team,
}

/// Events per INSERT in [`insert_usage`], 18 values each (within SQLite's and
/// PostgreSQL's parameter limits). The placeholders are anonymous on SQLite
/// ([`Sql::for_connection`]): numbered, binding them cost the square of their
/// number, a tenth of the process's CPU at 100 rows.
const USAGE_ROWS_PER_INSERT: usize = 100;

/// Stores drained events, each with its UTC day, in a few multi-row statements (one
/// per event made the drain's round trips to the database its largest cost); a
/// second insert of the same event id is a no-op, so a batch re-drained after a
/// crash (or by another replica) counts once.
pub async fn insert_usage(
    conn: &mut AnyConnection,
    events: &[(policy::usage::UsageEvent, String)],
) -> Result<(), sqlx::Error> {
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for chunk in events.chunks(USAGE_ROWS_PER_INSERT) {
        let mut sql = Sql::for_connection(
            conn,
            "INSERT INTO usage_events (event_id, org_id, team_id, key_id, agent_id, model,
                input_tokens, output_tokens, cost_micros, status, latency_ms, at_ms, day,
                provider, route_group, cached, code, denied) VALUES ",
        );
        for (i, (e, day)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(e.event_id.clone())
                .push(", ")
                .bind(e.org_id.clone())
                .push(", ")
                .bind(e.team_id.clone())
                .push(", ")
                .bind(e.key_id.clone())
                .push(", ")
                .bind(e.agent_id.clone())
                .push(", ")
                .bind(e.model.clone())
                .push(", ")
                .bind(as_i64(e.input_tokens))
                .push(", ")
                .bind(as_i64(e.output_tokens))
                .push(", ")
                .bind(as_i64(e.cost_micros))
                .push(", ")
                .bind(i64::from(e.status))
                .push(", ")
                .bind(as_i64(e.latency_ms))
                .push(", ")
                .bind(as_i64(e.at_ms))
                .push(", ")
                .bind(day.clone())
                .push(", ")
                .bind(e.provider.clone())
                .push(", ")
                .bind(e.route_group.clone())
                .push(", ")
                .bind(i64::from(e.cached))
                .push(", ")
                .bind(e.code.clone())
                .push(", ")
                .bind(i64::from(e.denied))
                .push(")");
        }
        sql.push(" ON CONFLICT (event_id) DO NOTHING");
        sql.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The org's stored config, to decide whether it keeps request contents.
pub async fn org_config(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT config FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(conn)
        .await
}

/// A request's stored bodies.
#[derive(Debug, Clone)]
pub struct ContentRow<'a> {
    /// The usage event they belong to.
    pub event_id: &'a str,
    /// Its org.
    pub org_id: &'a str,
    /// When the request was made.
    pub at_ms: i64,
    /// When they are deleted.
    pub expires_at_ms: i64,
    /// The request body.
    pub request: &'a str,
    /// The response body.
    pub response: &'a str,
    /// Whether either was cut at the edge's limit.
    pub truncated: bool,
}

/// Stores a request's bodies once (a re-drain is a no-op).
pub async fn insert_content(
    conn: &mut AnyConnection,
    c: &ContentRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO request_contents
            (event_id, org_id, at_ms, expires_at_ms, request, response, truncated)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(c.event_id)
    .bind(c.org_id)
    .bind(c.at_ms)
    .bind(c.expires_at_ms)
    .bind(c.request)
    .bind(c.response)
    .bind(i64::from(c.truncated))
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps a spool entry that could not be decoded, once.
pub async fn insert_reject(
    conn: &mut AnyConnection,
    sink: &str,
    kv_key: &str,
    raw: &[u8],
    reason: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_rejects (sink, kv_key, raw, reason, at_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sink, kv_key) DO NOTHING",
    )
    .bind(sink)
    .bind(kv_key)
    .bind(raw.to_vec())
    .bind(reason)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}
