//! The audit log: who changed what, when, with before/after (secrets redacted).
//! Rows are written by triggers (migration 0009) inside each write transaction;
//! the writer first names the actor, which requests carry in a task-local set by
//! the `Actor` extractor.

use std::cell::RefCell;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Any, QueryBuilder, Row};

use crate::AppState;
use crate::api::paging::{PageParams, Paged, query};
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult};
use crate::store::db::{parse_rfc3339, rfc3339};

/// The actor of writes made outside any request (start-up, pushers, drainers).
pub const SYSTEM: &str = "system";
/// The actor of unauthenticated requests (invitation acceptance).
pub const ANONYMOUS: &str = "anonymous";

tokio::task_local! {
    static REQUEST_ACTOR: RefCell<Option<String>>;
}

/// Middleware: gives each request a slot for its actor.
pub async fn actor_scope(req: Request, next: Next) -> Response {
    REQUEST_ACTOR.scope(RefCell::new(None), next.run(req)).await
}

/// Records the authenticated actor (a user id, or a platform admin's token id).
pub fn record_actor(actor: &str) {
    let _ = REQUEST_ACTOR.try_with(|a| *a.borrow_mut() = Some(actor.to_string()));
}

/// The actor to attribute the current task's writes to.
pub fn current_actor() -> String {
    match REQUEST_ACTOR.try_with(|a| a.borrow().clone()) {
        Ok(Some(actor)) => actor,
        Ok(None) => ANONYMOUS.to_string(),
        Err(_) => SYSTEM.to_string(),
    }
}

/// One audit entry.
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When.
    pub at: String,
    /// Who: a user id, a platform admin's token id, `anonymous` or `system`.
    pub actor: String,
    /// What: `<entity>.<create|update|delete>` (`key.update`, `member.delete`).
    pub action: String,
    /// The entity's id.
    pub entity_id: Option<String>,
    /// Its organization, if any.
    pub org_id: Option<String>,
    /// The entity before (secrets left out).
    pub before: Option<Value>,
    /// The entity after (secrets left out).
    pub after: Option<Value>,
}

/// Query of the audit-log endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    /// RFC 3339, inclusive.
    #[serde(default)]
    from: Option<String>,
    /// RFC 3339, exclusive.
    #[serde(default)]
    to: Option<String>,
    /// Page size (1-1000).
    #[serde(default)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// An RFC 3339 query bound as Unix ms; 422 naming `field` when unreadable.
pub fn time_filter(field: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    text.map(|t| {
        parse_rfc3339(t).ok_or_else(|| ApiError::invalid(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

/// Newest first; the cursor is the id the previous page ended at.
async fn read(st: &AppState, org_id: Option<&str>, q: AuditQuery) -> ApiResult<Paged<AuditEntry>> {
    let p = PageParams::new(q.limit, q.cursor)?;
    let from = time_filter("from", q.from.as_deref())?;
    let to = time_filter("to", q.to.as_deref())?;
    let cursor = p.cursor.is_some().then(|| p.after_rowid()).transpose()?;
    let mut sql: QueryBuilder<Any> = QueryBuilder::new("SELECT * FROM audit_log WHERE 1 = 1");
    if let Some(org) = org_id {
        sql.push(" AND org_id = ").push_bind(org);
    }
    if let Some(a) = &q.actor {
        sql.push(" AND actor = ").push_bind(a);
    }
    if let Some(a) = &q.action {
        sql.push(" AND action = ").push_bind(a);
    }
    if let Some(f) = from {
        sql.push(" AND at_ms >= ").push_bind(f);
    }
    if let Some(t) = to {
        sql.push(" AND at_ms < ").push_bind(t);
    }
    if let Some(c) = cursor {
        sql.push(" AND id < ").push_bind(c);
    }
    sql.push(" ORDER BY id DESC LIMIT ").push_bind(p.fetch());
    let rows = sql.build().fetch_all(&st.db).await?;
    let json = |text: Option<String>| -> Result<Option<Value>, ApiError> {
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(AuditEntry {
            id: r.try_get("id")?,
            at: rfc3339(r.try_get("at_ms")?),
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            entity_id: r.try_get("entity_id")?,
            org_id: r.try_get("org_id")?,
            before: json(r.try_get("before")?)?,
            after: json(r.try_get("after")?)?,
        });
    }
    Ok(Paged::from_items(out, &p, |e| e.id.to_string()))
}

/// `GET /api/organizations/{id}/audit-log` (admin+).
pub async fn org_audit_log(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Paged<AuditEntry>> {
    authorize_org(&st.db, &actor, &org_id, Perm::ManageMembers).await?;
    read(&st, Some(&org_id), query(q)?.0).await
}

/// `GET /api/audit-log` (platform admin): every entry, platform-level ones included.
pub async fn audit_log(
    State(st): State<AppState>,
    actor: Actor,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Paged<AuditEntry>> {
    actor.require_platform_admin()?;
    read(&st, None, query(q)?.0).await
}
