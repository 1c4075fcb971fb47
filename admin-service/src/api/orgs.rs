//! Organizations: the tenants. Endpoints as in the AgenticMail organizations doc.

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
use crate::store::db::{new_id, now_ms, random_hex, rfc3339};
use crate::store::orgs::{self, INTERNAL_ORG_ID, OrgRow};
use crate::store::teams;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// An organization as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

fn org_view(row: OrgRow, role: Option<Role>) -> OrgView {
    OrgView {
        id: row.id,
        name: row.name,
        slug: row.slug,
        contact_name: row.contact_name,
        contact_email: row.contact_email,
        description: row.description,
        billing_rate_per_agent: Cents(row.billing_rate_minor as u64),
        currency: row.currency,
        active: row.active,
        is_internal: row.is_internal,
        agent_count: row.agent_count,
        team_count: row.team_count,
        role,
        created_at: rfc3339(row.created_at_ms),
        updated_at: rfc3339(row.updated_at_ms),
        agents: None,
    }
}

/// Loads one org view (no access check).
pub async fn fetch_org(st: &AppState, id: &str, role: Option<Role>) -> ApiResult<OrgView> {
    let row = orgs::get(&st.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(org_view(row, role))
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
        && s.chars().count() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    Ok(())
}

/// Body of `POST /api/organizations`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::slug_or_null)]
    slug: Option<String>,
    #[serde(default)]
    contact_name: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::email_or_null)]
    contact_email: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    billing_rate_per_agent: Cents,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::currency_or_null)]
    currency: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

/// Body of `PATCH /api/organizations/{id}`; `null` clears an optional field.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(schema_with = crate::model::schemas::slug)]
    slug: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    contact_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::model::schemas::email_or_null)]
    contact_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    billing_rate_per_agent: Option<Cents>,
    /// First day (UTC, this month) the new `billing_rate_per_agent` bills at.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(format = Date)]
    billing_rate_effective_from: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(schema_with = crate::model::schemas::currency)]
    currency: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    active: Option<bool>,
}

/// `GET /api/organizations`: every org for platform admins, else the caller's orgs.
#[utoipa::path(
    get,
    path = "/api/organizations",
    tag = "organizations",
    summary = "List organizations (platform admin: all; users: their own).",
    params(PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<OrgView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_orgs(
    State(st): State<AppState>,
    actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<OrgView>> {
    let page = PageParams::from_query(page)?;
    if actor.platform_admin {
        // Row order puts the internal org (created by the first migration) first.
        let rows = orgs::list_all(&st.db, page.after_rowid()?, page.fetch()).await?;
        return Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string())
            .map(|r| org_view(r, Some(Role::Owner))));
    }
    let user_id = actor.user_id.as_deref().unwrap_or("");
    let rows = orgs::list_for_user(&st.db, user_id, page.after_rowid()?, page.fetch()).await?;
    Ok(
        Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(|r| {
            let role = r.role.as_deref().and_then(Role::parse);
            org_view(r, role)
        }),
    )
}

/// `POST /api/organizations`: platform admins create tenants.
#[utoipa::path(
    post,
    path = "/api/organizations",
    tag = "organizations",
    summary = "Create an organization (platform admin). Slug is derived from the name unless given.",
    request_body = CreateOrg,
    responses((status = 201, description = "Created", body = OrgView)),
    security(("bearer" = [])),
)]
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
                // Nothing ASCII to derive from (`"東京"`): a random slug, changeable never
                // (slugs are immutable), so clients wanting a readable one send `slug`.
                format!("org-{}", random_hex(4))
            } else {
                s
            }
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
    let org = orgs::NewOrg {
        id: &id,
        name: body.name.trim(),
        slug: &slug,
        contact_name: body.contact_name.as_deref(),
        contact_email: body.contact_email.as_deref(),
        description: body.description.as_deref(),
        billing_rate_minor: body.billing_rate_per_agent.0 as i64,
        currency: &currency,
        active: body.active.unwrap_or(true),
        now_ms: now,
    };
    let res = orgs::insert(tx.conn(), &org).await;
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
#[utoipa::path(
    get,
    path = "/api/organizations/{id}",
    tag = "organizations",
    summary = "Organization detail with linked agents (viewer+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = OrgView)),
    security(("bearer" = [])),
)]
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
#[utoipa::path(
    patch,
    path = "/api/organizations/{id}",
    tag = "organizations",
    summary = "Update organization fields (admin+; billing_rate_per_agent with billing_rate_effective_from, currency, active: owner). Slug is immutable; the currency is fixed once the org has usage or agents.",
    params(("id" = String, Path, description = "id")),
    request_body = UpdateOrg,
    responses((status = 200, description = "OK", body = OrgView)),
    security(("bearer" = [])),
)]
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
    let patch = orgs::OrgPatch {
        name: body.name.as_deref().map(str::trim),
        contact_name: body.contact_name.as_ref().map(Option::as_deref),
        contact_email: body.contact_email.as_ref().map(Option::as_deref),
        description: body.description.as_ref().map(Option::as_deref),
        currency: body.currency.as_deref(),
        active: body.active,
    };
    orgs::update(tx.conn(), &id, &patch, now).await?;
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
#[utoipa::path(
    delete,
    path = "/api/organizations/{id}",
    tag = "organizations",
    summary = "Delete an organization with 0 agents (owner).",
    params(("id" = String, Path, description = "id"), DeleteQuery),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn delete_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(q) = crate::api::paging::query(q)?;
    authorize_org(&st.db, &actor, &id, Perm::Own).await?;
    if id == INTERNAL_ORG_ID {
        return Err(ApiError::conflict(
            "internal_org",
            "the internal organization cannot be deleted",
        ));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    let agents = orgs::agent_count(tx.conn(), &id).await?;
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
    let hashes = orgs::key_hashes(tx.conn(), &id).await?;
    let teams = teams::ids_of_org(tx.conn(), &id).await?;
    orgs::delete(tx.conn(), &id).await?;
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `true` confirms that billing history is deleted with the org.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    confirm: Option<String>,
}

/// `POST /api/organizations/{id}/toggle`: owners flip active/inactive; the edge
/// suspends the org's keys and agents at once.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/toggle",
    tag = "organizations",
    summary = "Toggle active/inactive; inactive suspends its keys and agents at the edge (owner).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = OrgView)),
    security(("bearer" = [])),
)]
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
    orgs::toggle_active(tx.conn(), &id, now_ms()).await?;
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
