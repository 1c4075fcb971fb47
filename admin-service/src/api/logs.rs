//! Request logs: every usage event the edge spooled (forwarded requests, and those
//! denied after their key resolved), newest first, filtered and paged.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::AppState;
use crate::api::paging::{PageParams, Paged, query};
use crate::auth::audit::time_filter;
use crate::auth::{Actor, Perm, authorize_org};
use crate::billing::money::Micros;
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::{Db, Writer, now_ms, rfc3339};
use crate::store::logs::{LogFilter, LogRow};

/// One request as the edge logged it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// RFC 3339, inclusive.
    #[serde(default)]
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339, exclusive.
    #[serde(default)]
    #[param(format = DateTime)]
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
    #[param(minimum = 0, maximum = 65535)]
    status: Option<u16>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    cached: Option<bool>,
    #[serde(default)]
    denied: Option<bool>,
    /// Page size (1-1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    #[param(pattern = r"^[0-9]{1,18}\.")]
    cursor: Option<String>,
}

fn entry(r: LogRow) -> LogEntry {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    LogEntry {
        event_id: r.event_id,
        at: rfc3339(r.at_ms),
        key_id: r.key_id,
        team_id: r.team_id,
        agent_id: r.agent_id,
        model: r.model,
        route_group: r.route_group,
        provider: r.provider,
        status: u16::try_from(r.status).unwrap_or(0),
        code: r.code,
        denied: r.denied,
        cached: r.cached,
        latency_ms: n(r.latency_ms),
        input_tokens: n(r.input_tokens),
        output_tokens: n(r.output_tokens),
        cost: Micros(n(r.cost_micros)),
    }
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
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/logs",
    tag = "usage",
    summary = "Request logs, newest first: every forwarded request and every request denied after its key resolved (time, key, team, agent, model, provider, status, code, latency, tokens, cost, cache); ?from=&to= (RFC 3339), ?key_id=&team_id=&agent_id=&model=&provider=&status=&code=&cached=&denied=, ?limit= (≤1000) &cursor= (viewer+).",
    params(("id" = String, Path, description = "id"), LogQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<LogEntry>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
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
    let before = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let filter = LogFilter {
        key_id: q.key_id.as_deref(),
        team_id: q.team_id.as_deref(),
        agent_id: q.agent_id.as_deref(),
        model: q.model.as_deref(),
        provider: q.provider.as_deref(),
        code: q.code.as_deref(),
        status: q.status,
        cached: q.cached,
        denied: q.denied,
        from_ms: from,
        to_ms: to,
        before,
    };
    let out: Vec<_> = store::logs::page(&st.db, &org_id, &filter, p.fetch())
        .await?
        .into_iter()
        .map(|r| (r.at_ms, entry(r)))
        .collect();
    let page = Paged::from_items(out, &p, |(at, e)| format!("{at}.{}", e.event_id));
    Ok(Paged {
        items: page.items.into_iter().map(|(_, e)| e).collect(),
        next_cursor: page.next_cursor,
    })
}

/// The stored bodies of one request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/logs/{event_id}/content",
    tag = "usage",
    summary = "The request and response bodies kept for one log entry while config.audit.store_content is on, until its retention_days end (admin+).",
    params(("id" = String, Path, description = "id"), ("event_id" = String, Path, description = "event id")),
    responses((status = 200, description = "OK", body = LogContent)),
    security(("bearer" = [])),
)]
pub async fn log_content(
    State(st): State<AppState>,
    actor: Actor,
    Path((org_id, event_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<LogContent>> {
    authorize_org(&st.db, &actor, &org_id, Perm::Manage).await?;
    let r = store::logs::content(&st.db, &org_id, &event_id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found("stored content"))?;
    Ok(axum::Json(LogContent {
        event_id: r.event_id,
        request: r.request,
        response: r.response,
        truncated: r.truncated,
        expires_at: rfc3339(r.expires_at_ms),
    }))
}

/// How often expired bodies are looked for (a read; the delete only when some are).
const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Deletes the stored bodies whose retention ended by `now`; returns how many.
pub async fn delete_expired_content(
    pool: &Db,
    writer: &Writer,
    now: i64,
) -> Result<u64, sqlx::Error> {
    if !store::logs::any_expired(pool, now).await? {
        return Ok(0);
    }
    let mut tx = writer.begin(pool).await?;
    let n = store::logs::delete_expired(tx.conn(), now).await?;
    tx.commit().await?;
    Ok(n)
}

/// Spawns the retention job of stored bodies.
pub fn spawn_content_retention(pool: &Db, writer: &Writer) -> JoinHandle<()> {
    let (pool, writer) = (pool.clone(), writer.clone());
    crate::jobs::every(RETENTION_INTERVAL, "expired request bodies", move || {
        let (pool, writer) = (pool.clone(), writer.clone());
        async move { delete_expired_content(&pool, &writer, now_ms()).await }
    })
}
