//! Request logs: the recorded usage events one by one, newest first, and the
//! request/response bodies an org chose to keep.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::db::Db;
use crate::store::query::Sql;

/// Which events a log page shows; `None` filters nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFilter<'a> {
    /// Virtual key.
    pub key_id: Option<&'a str>,
    /// Team.
    pub team_id: Option<&'a str>,
    /// Agent.
    pub agent_id: Option<&'a str>,
    /// Model requested.
    pub model: Option<&'a str>,
    /// Provider that served.
    pub provider: Option<&'a str>,
    /// Error code.
    pub code: Option<&'a str>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Answered from the cache or not.
    pub cached: Option<bool>,
    /// Denied or not.
    pub denied: Option<bool>,
    /// Arrived at or after, Unix ms.
    pub from_ms: Option<i64>,
    /// Arrived before, Unix ms.
    pub to_ms: Option<i64>,
    /// Strictly older than this `(at_ms, event_id)` (the previous page's end).
    pub before: Option<(i64, &'a str)>,
}

/// One recorded event.
#[derive(Debug)]
pub struct LogRow {
    /// Unique per request.
    pub event_id: String,
    /// Arrival, Unix ms.
    pub at_ms: i64,
    /// Virtual key.
    pub key_id: String,
    /// Team of the key.
    pub team_id: Option<String>,
    /// Agent of the key.
    pub agent_id: Option<String>,
    /// Model requested.
    pub model: String,
    /// Route group named.
    pub route_group: Option<String>,
    /// Provider that served.
    pub provider: Option<String>,
    /// HTTP status.
    pub status: i64,
    /// Error code.
    pub code: Option<String>,
    /// Denied by the edge.
    pub denied: bool,
    /// Answered from the cache.
    pub cached: bool,
    /// Latency in ms.
    pub latency_ms: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Cost in micros.
    pub cost_micros: i64,
}

/// Up to `limit` of the org's events matching `f`, newest first (ties by event id).
pub async fn page(
    db: &Db,
    org_id: &str,
    f: &LogFilter<'_>,
    limit: i64,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT event_id, at_ms, key_id, team_id, agent_id, model, route_group, provider,
                status, code, denied, cached, latency_ms, input_tokens, output_tokens, cost_micros
         FROM usage_events WHERE org_id = ",
    );
    sql.bind(org_id.to_string());
    let text_filters = [
        (" AND key_id = ", f.key_id),
        (" AND team_id = ", f.team_id),
        (" AND agent_id = ", f.agent_id),
        (" AND model = ", f.model),
        (" AND provider = ", f.provider),
        (" AND code = ", f.code),
    ];
    for (clause, value) in text_filters {
        if let Some(v) = value {
            sql.push(clause).bind(v.to_string());
        }
    }
    let int_filters = [
        (" AND status = ", f.status.map(i64::from)),
        // Flags are 0/1 integers on both backends.
        (" AND cached = ", f.cached.map(i64::from)),
        (" AND denied = ", f.denied.map(i64::from)),
        (" AND at_ms >= ", f.from_ms),
        (" AND at_ms < ", f.to_ms),
    ];
    for (clause, value) in int_filters {
        if let Some(v) = value {
            sql.push(clause).bind(v);
        }
    }
    if let Some((at, id)) = f.before {
        sql.push(" AND (at_ms < ")
            .bind(at)
            .push(" OR (at_ms = ")
            .bind(at)
            .push(" AND event_id < ")
            .bind(id.to_string())
            .push("))");
    }
    sql.push(" ORDER BY at_ms DESC, event_id DESC LIMIT ")
        .bind(limit);
    sql.fetch_all(db).await?.iter().map(log_row).collect()
}

fn log_row(r: &AnyRow) -> Result<LogRow, sqlx::Error> {
    Ok(LogRow {
        event_id: r.try_get("event_id")?,
        at_ms: r.try_get("at_ms")?,
        key_id: r.try_get("key_id")?,
        team_id: r.try_get("team_id")?,
        agent_id: r.try_get("agent_id")?,
        model: r.try_get("model")?,
        route_group: r.try_get("route_group")?,
        provider: r.try_get("provider")?,
        status: r.try_get("status")?,
        code: r.try_get("code")?,
        denied: r.try_get::<i64, _>("denied")? != 0,
        cached: r.try_get::<i64, _>("cached")? != 0,
        latency_ms: r.try_get("latency_ms")?,
        input_tokens: r.try_get("input_tokens")?,
        output_tokens: r.try_get("output_tokens")?,
        cost_micros: r.try_get("cost_micros")?,
    })
}

/// The bodies kept for one request.
#[derive(Debug)]
pub struct ContentRow {
    /// The request they belong to.
    pub event_id: String,
    /// The client's request body.
    pub request: String,
    /// The answer relayed.
    pub response: String,
    /// Whether either was cut off.
    pub truncated: bool,
    /// When retention ends, Unix ms.
    pub expires_at_ms: i64,
}

/// The bodies the org kept for `event_id`, unless their retention ended by `now_ms`.
pub async fn content(
    db: &Db,
    org_id: &str,
    event_id: &str,
    now_ms: i64,
) -> Result<Option<ContentRow>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT event_id, request, response, truncated, expires_at_ms FROM request_contents
         WHERE org_id = $1 AND event_id = $2 AND expires_at_ms > $3",
    )
    .bind(org_id)
    .bind(event_id)
    .bind(now_ms)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ContentRow {
        event_id: r.try_get("event_id")?,
        request: r.try_get("request")?,
        response: r.try_get("response")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
        expires_at_ms: r.try_get("expires_at_ms")?,
    }))
}

/// Whether some kept bodies' retention ended by `now_ms` (a read, so the job
/// takes the writer only when there is something to delete).
pub async fn any_expired(db: &Db, now_ms: i64) -> Result<bool, sqlx::Error> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM request_contents WHERE expires_at_ms <= $1 LIMIT 1")
            .bind(now_ms)
            .fetch_optional(db)
            .await?;
    Ok(due.is_some())
}

/// Deletes the bodies whose retention ended by `now_ms`; returns how many.
pub async fn delete_expired(conn: &mut AnyConnection, now_ms: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM request_contents WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
