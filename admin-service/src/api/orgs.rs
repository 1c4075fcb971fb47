//! Organizations: the tenants. Endpoints as in the AgenticMail organizations doc.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::api::agents::{AgentView, list_org_agents};
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::api::platform_owned;
use crate::auth::{Actor, Perm, Role, authorize_org};
use crate::billing;
use crate::billing::fx;
use crate::billing::money::{Cents, check_currency};
use crate::billing::rate_history;
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{new_id, now_ms, rfc3339};

/// Id of the internal org that holds unassigned agents.
pub const INTERNAL_ORG_ID: &str = "org_internal";

/// An organization as returned by the API.
#[derive(Debug, Serialize)]
pub struct OrgView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Immutable URL-safe identifier.
    pub slug: String,
    /// Primary contact.
    pub contact_name: Option<String>,
    /// Primary contact email.
    pub contact_email: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Default monthly rate per agent, a decimal string (`"99.00"`).
    pub billing_rate_per_agent: Cents,
    /// ISO 4217 code.
    pub currency: String,
    /// Inactive orgs are suspended at the edge.
    pub active: bool,
    /// Whether this is the internal org of unassigned agents.
    pub is_internal: bool,
    /// Number of agents assigned.
    pub agent_count: i64,
    /// Number of teams (the admin UI's team count).
    pub team_count: i64,
    /// The caller's role here (`owner` for platform admins).
    pub role: Option<Role>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Linked agents (detail view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<AgentView>>,
}

const ORG_SELECT: &str = "SELECT o.rowid AS page_key, o.*, (SELECT COUNT(*) FROM agents a WHERE a.org_id = o.id) AS agent_count, (SELECT COUNT(*) FROM teams t WHERE t.org_id = o.id) AS team_count FROM organizations o";

fn org_view(row: &AnyRow, role: Option<Role>) -> Result<OrgView, ApiError> {
    Ok(OrgView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        slug: row.try_get("slug")?,
        contact_name: row.try_get("contact_name")?,
        contact_email: row.try_get("contact_email")?,
        description: row.try_get("description")?,
        billing_rate_per_agent: Cents(row.try_get::<i64, _>("billing_rate_minor")? as u64),
        currency: row.try_get("currency")?,
        active: row.try_get::<i64, _>("active")? != 0,
        is_internal: row.try_get::<i64, _>("is_internal")? != 0,
        agent_count: row.try_get("agent_count")?,
        team_count: row.try_get("team_count")?,
        role,
        created_at: rfc3339(row.try_get("created_at_ms")?),
        updated_at: rfc3339(row.try_get("updated_at_ms")?),
        agents: None,
    })
}

/// Loads one org view (no access check).
pub async fn fetch_org(st: &AppState, id: &str, role: Option<Role>) -> ApiResult<OrgView> {
    let row = sqlx::query(&format!("{ORG_SELECT} WHERE o.id = ?"))
        .bind(id)
        .fetch_optional(&st.db)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    org_view(&row, role)
}

/// A URL-safe slug from a display name: lower-case ASCII letters and digits joined by `-`.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_end_matches('-').chars().take(64).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// A plausible email address: one `@`, a dotted domain, no spaces.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    Ok(())
}

/// Body of `POST /api/organizations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    name: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    contact_name: Option<String>,
    #[serde(default)]
    contact_email: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    billing_rate_per_agent: Cents,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

/// Body of `PATCH /api/organizations/{id}`; `null` clears an optional field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    contact_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    contact_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    billing_rate_per_agent: Option<Cents>,
    /// First day (UTC, this month) the new `billing_rate_per_agent` bills at.
    #[serde(default, deserialize_with = "present")]
    billing_rate_effective_from: Option<String>,
    #[serde(default, deserialize_with = "present")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "present")]
    active: Option<bool>,
}

/// `GET /api/organizations`: every org for platform admins, else the caller's orgs.
pub async fn list_orgs(
    State(st): State<AppState>,
    actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<OrgView>> {
    let page = PageParams::from_query(page)?;
    if actor.platform_admin {
        // Row order puts the internal org (created by the first migration) first.
        let rows = sqlx::query(&format!(
            "{ORG_SELECT} WHERE o.rowid > ? ORDER BY o.rowid LIMIT ?"
        ))
        .bind(page.after_rowid()?)
        .bind(page.fetch())
        .fetch_all(&st.db)
        .await?;
        return Paged::from_rows(rows, &page, |r| org_view(r, Some(Role::Owner)));
    }
    let rows = sqlx::query(
        "SELECT o.rowid AS page_key, o.*, m.role AS role,
            (SELECT COUNT(*) FROM agents a WHERE a.org_id = o.id) AS agent_count,
            (SELECT COUNT(*) FROM teams t WHERE t.org_id = o.id) AS team_count
         FROM organizations o JOIN memberships m ON m.org_id = o.id
         WHERE m.user_id = ? AND o.is_internal = 0 AND o.rowid > ? ORDER BY o.rowid LIMIT ?",
    )
    .bind(actor.user_id.as_deref().unwrap_or(""))
    .bind(page.after_rowid()?)
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, |r| {
        let role = r
            .try_get::<String, _>("role")
            .ok()
            .as_deref()
            .and_then(Role::parse);
        org_view(r, role)
    })
}

/// `POST /api/organizations`: platform admins create tenants.
pub async fn create_org(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<OrgView>)> {
    actor.require_platform_admin()?;
    check_name(&body.name)?;
    let slug = match &body.slug {
        Some(s) if !valid_slug(s) => {
            return Err(ApiError::invalid(
                "slug",
                "must be lower-case letters and digits separated by single '-' (max 64)",
            ));
        }
        Some(s) => s.clone(),
        None => {
            let s = slugify(&body.name);
            if s.is_empty() {
                return Err(ApiError::invalid(
                    "slug",
                    "cannot be derived from the name; give one explicitly",
                ));
            }
            s
        }
    };
    if let Some(e) = &body.contact_email
        && !valid_email(e)
    {
        return Err(ApiError::invalid(
            "contact_email",
            "is not a valid email address",
        ));
    }
    let currency = body.currency.clone().unwrap_or_else(|| "USD".into());
    check_currency("currency", &currency)?;
    let id = new_id("org");
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let res = sqlx::query(
        "INSERT INTO organizations (id, name, slug, contact_name, contact_email, description,
            billing_rate_minor, currency, active, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(body.name.trim())
    .bind(&slug)
    .bind(&body.contact_name)
    .bind(&body.contact_email)
    .bind(&body.description)
    .bind(body.billing_rate_per_agent.0 as i64)
    .bind(&currency)
    .bind(body.active.unwrap_or(true))
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await;
    unique_or_conflict(res, "slug", || format!("slug {slug:?} is already taken"))?;
    rate_history::set_org_rate(
        tx.conn(),
        &id,
        rate_history::SINCE_ALWAYS,
        body.billing_rate_per_agent.0 as i64,
    )
    .await?;
    fx::check_convertible(tx.conn(), "currency").await?;
    tx.enqueue("org", &id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %id, slug = %slug, "organization created");
    Ok((
        StatusCode::CREATED,
        Json(fetch_org(&st, &id, Some(Role::Owner)).await?),
    ))
}

/// `GET /api/organizations/{id}`: detail with linked agents.
pub async fn get_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgView>> {
    let access = authorize_org(&st.db, &actor, &id, Perm::View).await?;
    let mut view = fetch_org(&st, &id, Some(access.role)).await?;
    view.agents = Some(list_org_agents(&st, &id).await?);
    Ok(Json(view))
}

/// `PATCH /api/organizations/{id}`: admins edit identity and contact; billing and
/// activation are the owner's.
pub async fn update_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> ApiResult<Json<OrgView>> {
    let access = authorize_org(&st.db, &actor, &id, Perm::Manage).await?;
    let owner_fields =
        body.billing_rate_per_agent.is_some() || body.currency.is_some() || body.active.is_some();
    if owner_fields && access.role > Role::Owner {
        return Err(ApiError::forbidden(
            "billing rate, currency and activation are changed by owners only",
        ));
    }
    let current = fetch_org(&st, &id, None).await?;
    if let Some(rate) = body.billing_rate_per_agent
        && !access.platform_admin
    {
        platform_owned::check_billing_rate(current.billing_rate_per_agent, rate)?;
    }
    if let Some(slug) = &body.slug
        && *slug != current.slug
    {
        return Err(ApiError::unprocessable(
            "immutable",
            "slug",
            "slug: is immutable after creation".into(),
        ));
    }
    if let Some(n) = &body.name {
        check_name(n)?;
    }
    if let Some(Some(e)) = &body.contact_email
        && !valid_email(e)
    {
        return Err(ApiError::invalid(
            "contact_email",
            "is not a valid email address",
        ));
    }
    if let Some(c) = &body.currency {
        check_currency("currency", c)?;
    }
    if body.billing_rate_effective_from.is_some() && body.billing_rate_per_agent.is_none() {
        return Err(ApiError::invalid(
            "billing_rate_effective_from",
            "applies only together with billing_rate_per_agent",
        ));
    }
    let now = now_ms();
    let rate_day = rate_history::effective_day(
        "billing_rate_effective_from",
        body.billing_rate_effective_from.as_deref(),
        now,
    )?;
    if current.is_internal && body.active == Some(false) {
        return Err(ApiError::invalid(
            "active",
            "the internal organization cannot be deactivated",
        ));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    sqlx::query(
        "UPDATE organizations SET
            name = COALESCE(?, name),
            contact_name = CASE WHEN ? THEN ? ELSE contact_name END,
            contact_email = CASE WHEN ? THEN ? ELSE contact_email END,
            description = CASE WHEN ? THEN ? ELSE description END,
            currency = COALESCE(?, currency),
            active = COALESCE(?, active),
            updated_at_ms = ?
         WHERE id = ?",
    )
    .bind(body.name.as_deref().map(str::trim))
    .bind(body.contact_name.is_some())
    .bind(body.contact_name.clone().flatten())
    .bind(body.contact_email.is_some())
    .bind(body.contact_email.clone().flatten())
    .bind(body.description.is_some())
    .bind(body.description.clone().flatten())
    .bind(&body.currency)
    .bind(body.active)
    .bind(now)
    .bind(&id)
    .execute(tx.conn())
    .await?;
    if let Some(rate) = body.billing_rate_per_agent {
        rate_history::set_org_rate(tx.conn(), &id, &rate_day, rate.0 as i64).await?;
    }
    if let Some(c) = body.currency.as_ref().filter(|c| **c != current.currency) {
        // Recorded costs and billed rates are amounts in the old currency.
        if billing::has_history(tx.conn(), &id).await? {
            return Err(ApiError::conflict(
                "currency_mismatch",
                format!(
                    "the organization has usage or billing history in {}; its currency cannot \
                     change to {c} without mixing currencies",
                    current.currency
                ),
            )
            .with_field("currency"));
        }
        fx::check_convertible(tx.conn(), "currency").await?;
    }
    tx.enqueue("org", &id).await?;
    tx.commit().await?;
    fetch_org(&st, &id, Some(access.role)).await.map(Json)
}

/// `DELETE /api/organizations/{id}`: owners; only with zero agents; never the internal org.
pub async fn delete_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    authorize_org(&st.db, &actor, &id, Perm::Own).await?;
    if id == INTERNAL_ORG_ID {
        return Err(ApiError::conflict(
            "internal_org",
            "the internal organization cannot be deleted",
        ));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    let agents: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE org_id = ?")
        .bind(&id)
        .fetch_one(tx.conn())
        .await?;
    if agents > 0 {
        return Err(ApiError::conflict(
            "has_agents",
            format!("organization has {agents} assigned agent(s); unassign them first"),
        ));
    }
    let confirmed = match q.confirm.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "confirm",
                format!("{other:?} is not true or false"),
            ));
        }
    };
    if billing::has_history(tx.conn(), &id).await? {
        if !confirmed {
            return Err(ApiError::conflict(
                "billing_history",
                format!(
                    "organization has billing history that deletion loses; export it from \
                     GET /api/organizations/{id}/billing.csv, then repeat with ?confirm=true"
                ),
            ));
        }
        billing::delete_history(tx.conn(), &id).await?;
    }
    // Keys and teams disappear with the org: remove their records from the edge too.
    let hashes: Vec<String> = sqlx::query_scalar(
        "SELECT key_hash FROM virtual_keys WHERE org_id = ?
             UNION ALL SELECT g.key_hash FROM key_grace_hashes g
             JOIN virtual_keys k ON k.id = g.key_id WHERE k.org_id = ?",
    )
    .bind(&id)
    .bind(&id)
    .fetch_all(tx.conn())
    .await?;
    let teams: Vec<String> = sqlx::query_scalar("SELECT id FROM teams WHERE org_id = ?")
        .bind(&id)
        .fetch_all(tx.conn())
        .await?;
    sqlx::query("DELETE FROM organizations WHERE id = ?")
        .bind(&id)
        .execute(tx.conn())
        .await?;
    for h in hashes {
        tx.enqueue("kvdel", &format!("{}{h}", policy::kv::KEY_PREFIX))
            .await?;
    }
    for t in teams {
        tx.enqueue("kvdel", &policy::kv::team_key(&t)).await?;
    }
    tx.enqueue("kvdel", &policy::kv::org_key(&id)).await?;
    tx.commit().await?;
    tracing::info!(org_id = %id, "organization deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `DELETE /api/organizations/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteQuery {
    /// `true` confirms that billing history is deleted with the org.
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /api/organizations/{id}/toggle`: owners flip active/inactive; the edge
/// suspends the org's keys and agents at once.
pub async fn toggle_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgView>> {
    let access = authorize_org(&st.db, &actor, &id, Perm::Own).await?;
    if id == INTERNAL_ORG_ID {
        return Err(ApiError::conflict(
            "internal_org",
            "the internal organization cannot be deactivated",
        ));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    sqlx::query("UPDATE organizations SET active = 1 - active, updated_at_ms = ? WHERE id = ?")
        .bind(now_ms())
        .bind(&id)
        .execute(tx.conn())
        .await?;
    tx.enqueue("org", &id).await?;
    tx.commit().await?;
    fetch_org(&st, &id, Some(access.role)).await.map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_emails() {
        assert_eq!(slugify("AgenticMail"), "agenticmail");
        assert_eq!(slugify("  Acme, Inc. (EU) "), "acme-inc-eu");
        assert_eq!(slugify("!!!"), "");
        assert!(
            valid_slug("acme-eu-2")
                && !valid_slug("Acme")
                && !valid_slug("a--b")
                && !valid_slug("-a")
        );
        assert!(
            valid_email("ope@agenticmail.com") && !valid_email("nope") && !valid_email("a b@c.d")
        );
    }
}
