//! The audit log's endpoints: who changed what, when, with before/after (secrets
//! redacted), newest first.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::api::paging::{PageParams, Paged, query};
use crate::auth::audit::time_filter;
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult};
use crate::store::audit;
use crate::store::db::rfc3339;

/// One audit entry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    /// RFC 3339, inclusive.
    #[serde(default)]
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339, exclusive.
    #[serde(default)]
    #[param(format = DateTime)]
    to: Option<String>,
    /// Page size (1-1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// Newest first; the cursor is the id the previous page ended at.
async fn read(st: &AppState, org_id: Option<&str>, q: AuditQuery) -> ApiResult<Paged<AuditEntry>> {
    let p = PageParams::new(q.limit, q.cursor)?;
    let from = time_filter("from", q.from.as_deref())?;
    let to = time_filter("to", q.to.as_deref())?;
    let filter = audit::AuditFilter {
        org_id,
        actor: q.actor.as_deref(),
        action: q.action.as_deref(),
        from_ms: from,
        to_ms: to,
        before_id: p.cursor.is_some().then(|| p.after_rowid()).transpose()?,
    };
    let json = |text: Option<String>| -> Result<Option<Value>, ApiError> {
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    };
    let mut out = Vec::new();
    for r in audit::list(&st.db, &filter, p.fetch()).await? {
        out.push(AuditEntry {
            id: r.id,
            at: rfc3339(r.at_ms),
            actor: r.actor,
            action: r.action,
            entity_id: r.entity_id,
            org_id: r.org_id,
            before: json(r.before)?,
            after: json(r.after)?,
        });
    }
    Ok(Paged::from_items(out, &p, |e| e.id.to_string()))
}

/// `GET /api/organizations/{id}/audit-log` (admin+).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/audit-log",
    tag = "audit",
    summary = "The org's audit log, newest first: actor, action, entity, before/after with secrets redacted; ?actor=&action=&from=&to= (RFC 3339), ?limit= (≤1000) &cursor= (admin+).",
    params(("id" = String, Path, description = "id"), AuditQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<AuditEntry>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    get,
    path = "/api/audit-log",
    tag = "audit",
    summary = "Every audit entry, platform-level ones included; same filters and paging (platform admin).",
    params(AuditQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<AuditEntry>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn audit_log(
    State(st): State<AppState>,
    actor: Actor,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Paged<AuditEntry>> {
    actor.require_platform_admin()?;
    read(&st, None, query(q)?.0).await
}
