//! Request logs: every usage event the edge spooled (forwarded requests, and those
//! denied after their key resolved), newest first, filtered and paged.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyPool, QueryBuilder, Row};
use tokio::task::JoinHandle;

use crate::AppState;
use crate::api::paging::{PageParams, Paged, query};
use crate::auth::audit::time_filter;
use crate::auth::{Actor, Perm, authorize_org};
use crate::billing::money::Micros;
use crate::errors::{ApiError, ApiResult};
use crate::store::db::{Writer, now_ms, rfc3339};

/// One request as the edge logged it.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    /// The event id (unique per request).
    pub event_id: String,
    /// When the request arrived (RFC 3339).
    pub at: String,
    /// Virtual key.
    pub key_id: String,
    /// Team of the key, if any.
    pub team_id: Option<String>,
    /// Agent of the key, if any.
    pub agent_id: Option<String>,
    /// Model requested (empty when the body named none).
    pub model: String,
    /// Route group the client named, if any.
    pub route_group: Option<String>,
    /// Provider that served; `null` when none was called.
    pub provider: Option<String>,
    /// HTTP status the client got.
    pub status: u16,
    /// Error code of a denied or failed request.
    pub code: Option<String>,
    /// Denied by the edge before any provider call.
    pub denied: bool,
    /// Answered from the edge's cache.
    pub cached: bool,
    /// From arrival to the last byte relayed, in milliseconds.
    pub latency_ms: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in the org's currency.
    pub cost: Micros,
}

/// Query of `GET /api/organizations/{id}/logs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// RFC 3339, inclusive.
    #[serde(default)]
    from: Option<String>,
    /// RFC 3339, exclusive.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    cached: Option<bool>,
    #[serde(default)]
    denied: Option<bool>,
    /// Page size (1-1000).
    #[serde(default)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// A page cursor: the `(at_ms, event_id)` the previous page ended at.
fn parse_cursor(text: &str) -> Result<(i64, &str), ApiError> {
    text.split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id)))
        .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor of this list"))
}

/// `GET /api/organizations/{id}/logs` (viewer+): the org's request log, newest
/// first, filtered by time, key, team, agent, model, provider, status, code,
/// cache and denial.
pub async fn org_logs(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Paged<LogEntry>> {
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let Query(q) = query(q)?;
    let p = PageParams::new(q.limit, q.cursor.clone())?;
    let from = time_filter("from", q.from.as_deref())?;
    let to = time_filter("to", q.to.as_deref())?;
    let cursor = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let mut sql: QueryBuilder<Any> =
        QueryBuilder::new("SELECT * FROM usage_events WHERE org_id = ");
    sql.push_bind(&org_id);
    let text_filters = [
        ("key_id", &q.key_id),
        ("team_id", &q.team_id),
        ("agent_id", &q.agent_id),
        ("model", &q.model),
        ("provider", &q.provider),
        ("code", &q.code),
    ];
    for (column, value) in text_filters {
        if let Some(v) = value {
            sql.push(format!(" AND {column} = ")).push_bind(v);
        }
    }
    if let Some(s) = q.status {
        sql.push(" AND status = ").push_bind(i64::from(s));
    }
    if let Some(c) = q.cached {
        sql.push(" AND cached = ").push_bind(c);
    }
    if let Some(d) = q.denied {
        sql.push(" AND denied = ").push_bind(d);
    }
    if let Some(f) = from {
        sql.push(" AND at_ms >= ").push_bind(f);
    }
    if let Some(t) = to {
        sql.push(" AND at_ms < ").push_bind(t);
    }
    if let Some((at, id)) = cursor {
        sql.push(" AND (at_ms < ")
            .push_bind(at)
            .push(" OR (at_ms = ")
            .push_bind(at)
            .push(" AND event_id < ")
            .push_bind(id)
            .push("))");
    }
    sql.push(" ORDER BY at_ms DESC, event_id DESC LIMIT ")
        .push_bind(p.fetch());
    let rows = sql.build().fetch_all(&st.db).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let get = |c: &str| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        out.push((
            r.try_get::<i64, _>("at_ms")?,
            LogEntry {
                event_id: r.try_get("event_id")?,
                at: rfc3339(r.try_get("at_ms")?),
                key_id: r.try_get("key_id")?,
                team_id: r.try_get("team_id")?,
                agent_id: r.try_get("agent_id")?,
                model: r.try_get("model")?,
                route_group: r.try_get("route_group")?,
                provider: r.try_get("provider")?,
                status: u16::try_from(get("status")?).unwrap_or(0),
                code: r.try_get("code")?,
                // BIGINT 0/1 on both backends: the Any driver decodes no bool from it.
                denied: r.try_get::<i64, _>("denied")? != 0,
                cached: r.try_get::<i64, _>("cached")? != 0,
                latency_ms: get("latency_ms")?,
                input_tokens: get("input_tokens")?,
                output_tokens: get("output_tokens")?,
                cost: Micros(get("cost_micros")?),
            },
        ));
    }
    let page = Paged::from_items(out, &p, |(at, e)| format!("{at}.{}", e.event_id));
    Ok(Paged {
        items: page.items.into_iter().map(|(_, e)| e).collect(),
        next_cursor: page.next_cursor,
    })
}

/// The stored bodies of one request.
#[derive(Debug, Serialize)]
pub struct LogContent {
    /// The request-log entry they belong to.
    pub event_id: String,
    /// The client's request body (its first 32 KiB).
    pub request: String,
    /// The answer relayed to the client (its first 32 KiB).
    pub response: String,
    /// Whether either body was longer and was cut off.
    pub truncated: bool,
    /// When the retention job deletes them.
    pub expires_at: String,
}

/// `GET /api/organizations/{id}/logs/{event_id}/content` (admin+): the bodies an
/// org with `audit.store_content` kept; 404 when none were (or they expired).
pub async fn log_content(
    State(st): State<AppState>,
    actor: Actor,
    Path((org_id, event_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<LogContent>> {
    authorize_org(&st.db, &actor, &org_id, Perm::Manage).await?;
    let r = sqlx::query(
        "SELECT * FROM request_contents WHERE org_id = ? AND event_id = ? AND expires_at_ms > ?",
    )
    .bind(&org_id)
    .bind(&event_id)
    .bind(now_ms())
    .fetch_optional(&st.db)
    .await?
    .ok_or_else(|| ApiError::not_found("stored content"))?;
    Ok(axum::Json(LogContent {
        event_id: r.try_get("event_id")?,
        request: r.try_get("request")?,
        response: r.try_get("response")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
        expires_at: rfc3339(r.try_get("expires_at_ms")?),
    }))
}

/// How often expired bodies are looked for (a read; the delete only when some are).
const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Deletes the stored bodies whose retention ended by `now`; returns how many.
pub async fn delete_expired_content(
    pool: &AnyPool,
    writer: &Writer,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM request_contents WHERE expires_at_ms <= ? LIMIT 1")
            .bind(now)
            .fetch_optional(pool)
            .await?;
    if due.is_none() {
        return Ok(0);
    }
    let mut tx = writer.begin(pool).await?;
    let n = sqlx::query("DELETE FROM request_contents WHERE expires_at_ms <= ?")
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Spawns the retention job of stored bodies.
pub fn spawn_content_retention(pool: &AnyPool, writer: &Writer) -> JoinHandle<()> {
    let (pool, writer) = (pool.clone(), writer.clone());
    crate::jobs::every(RETENTION_INTERVAL, "expired request bodies", move || {
        let (pool, writer) = (pool.clone(), writer.clone());
        async move { delete_expired_content(&pool, &writer, now_ms()).await }
    })
}
