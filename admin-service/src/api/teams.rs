//! Teams: groups of keys inside an org with their own limits, budget and model
//! grants. A team can only narrow what its org allows.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::model::catalog::Catalog;
use crate::model::config::{BudgetInput, OrgConfig};
use crate::model::teams::TeamRow;
use crate::store::db::{new_id, now_ms, rfc3339};
use crate::store::orgs;
use crate::store::teams::{self, TeamFields, TeamRecord};
use policy::Limits;

/// A team as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    /// Id.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Name, unique in the org.
    pub name: String,
    /// Model grants (names, patterns, route groups); `null` inherits the org's.
    pub allowed_models: Option<Vec<String>>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<u64>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<u64>,
    /// Requests per hour.
    pub rate_limit_rph: Option<u64>,
    /// Requests per day.
    pub rate_limit_rpd: Option<u64>,
    /// Tokens per day.
    pub rate_limit_tpd: Option<u64>,
    /// Team budget.
    pub budget: Option<BudgetInput>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

fn team_view(r: TeamRecord) -> Result<TeamView, ApiError> {
    let t = TeamRow::from_record(&r)?;
    Ok(TeamView {
        id: r.id,
        org_id: r.org_id,
        name: r.name,
        allowed_models: t.allowed_models,
        rate_limit_rpm: t.limits.rpm,
        rate_limit_tpm: t.limits.tpm,
        rate_limit_rph: t.limits.rph,
        rate_limit_rpd: t.limits.rpd,
        rate_limit_tpd: t.limits.tpd,
        budget: t.budget,
        created_at: rfc3339(r.created_at_ms),
        updated_at: rfc3339(r.updated_at_ms),
    })
}

/// Loads a team by id: decoded, and as stored.
pub async fn fetch_team_row(st: &AppState, id: &str) -> ApiResult<Option<(TeamRow, TeamRecord)>> {
    let Some(r) = teams::get(&st.db, id).await? else {
        return Ok(None);
    };
    Ok(Some((TeamRow::from_record(&r)?, r)))
}

/// The org's model universe, from its stored config.
pub async fn org_model_set(
    st: &AppState,
    catalog: &Catalog,
    org_id: &str,
) -> ApiResult<policy::ModelSet> {
    let text = orgs::config(&st.db, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(catalog.org_models(&OrgConfig::from_stored(&text)?))
}

/// Body of `POST /api/organizations/{id}/teams`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::model_patterns_or_null)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpm: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpm: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rph: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpd: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpd: Option<u64>,
    #[serde(default)]
    budget: Option<BudgetInput>,
}

/// Body of `PATCH /api/teams/{id}`; `null` clears (grants: back to inheriting).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::model::schemas::model_patterns_or_null)]
    allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rph: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget: Option<Option<BudgetInput>>,
}

fn check_team_name(n: &str) -> Result<(), ApiError> {
    if n.trim().is_empty() || n.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    Ok(())
}

/// `POST /api/organizations/{id}/teams`: admins.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/teams",
    tag = "teams",
    summary = "Create a team; grants must narrow the org's (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = CreateTeam,
    responses((status = 201, description = "Created", body = TeamView)),
    security(("bearer" = [])),
)]
pub async fn create_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateTeam>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    authorize_org(&st.db, &actor, &org_id, Perm::Manage).await?;
    check_team_name(&body.name)?;
    if let Some(b) = &body.budget {
        b.validate("budget")?;
    }
    let catalog = Catalog::load(&st.db).await?;
    if let Some(grants) = &body.allowed_models {
        let org = org_model_set(&st, &catalog, &org_id).await?;
        catalog.check_narrows("allowed_models", grants, &org, "organization")?;
    }
    let limits = Limits {
        rpm: body.rate_limit_rpm,
        rph: body.rate_limit_rph,
        rpd: body.rate_limit_rpd,
        tpm: body.rate_limit_tpm,
        tpd: body.rate_limit_tpd,
    };
    crate::model::keys::check_limits(&limits)?;
    let id = new_id("team");
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let fields = TeamFields {
        name: Some(body.name.trim()),
        allowed_models: body
            .allowed_models
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        limits: serde_json::to_string(&limits)?,
        budget: body
            .budget
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
    };
    let res = teams::insert(tx.conn(), &id, &org_id, &fields, now).await;
    unique_or_conflict(res, "name", || {
        "a team with this name exists in the organization".into()
    })?;
    tx.enqueue("team", &id).await?;
    tx.commit().await?;
    let (_, row) = fetch_team_row(&st, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(team_view(row)?)))
}

/// `GET /api/organizations/{id}/teams`.
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/teams",
    tag = "teams",
    summary = "List teams (viewer+).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<TeamView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_teams(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TeamView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let rows = teams::list(&st.db, &org_id, page.after_rowid()?, page.fetch()).await?;
    Paged::from_items(rows, &page, |r| r.page_key.to_string()).try_map(team_view)
}

/// Loads a team and checks `perm` in its org; a team of an org the caller cannot see is 404.
pub async fn authorized_team(
    st: &AppState,
    actor: &Actor,
    id: &str,
    perm: Perm,
) -> ApiResult<(TeamRow, TeamRecord)> {
    let (team, row) = fetch_team_row(st, id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    authorize_org(&st.db, actor, &team.org_id, perm)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("team")
            } else {
                e
            }
        })?;
    Ok((team, row))
}

/// `GET /api/teams/{id}`.
#[utoipa::path(
    get,
    path = "/api/teams/{id}",
    tag = "teams",
    summary = "Team detail (viewer+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = TeamView)),
    security(("bearer" = [])),
)]
pub async fn get_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<TeamView>> {
    let (_, row) = authorized_team(&st, &actor, &id, Perm::View).await?;
    team_view(row).map(Json)
}

/// `PATCH /api/teams/{id}`: admins.
#[utoipa::path(
    patch,
    path = "/api/teams/{id}",
    tag = "teams",
    summary = "Update a team (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = UpdateTeam,
    responses((status = 200, description = "OK", body = TeamView)),
    security(("bearer" = [])),
)]
pub async fn update_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateTeam>,
) -> ApiResult<Json<TeamView>> {
    let (org_team, _) = authorized_team(&st, &actor, &id, Perm::Manage).await?;
    if let Some(n) = &body.name {
        check_team_name(n)?;
    }
    if let Some(Some(b)) = &body.budget {
        b.validate("budget")?;
    }
    let catalog = Catalog::load(&st.db).await?;
    if let Some(Some(grants)) = &body.allowed_models {
        let org = org_model_set(&st, &catalog, &org_team.org_id).await?;
        catalog.check_narrows("allowed_models", grants, &org, "organization")?;
    }
    // Read-modify-write in one transaction: fields this PATCH leaves alone keep what
    // a concurrent PATCH just wrote.
    let mut tx = st.writer.begin(&st.db).await?;
    let row = teams::get(tx.conn(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    let team = TeamRow::from_record(&row)?;
    let pick = |new: Option<Option<u64>>, old: Option<u64>| new.unwrap_or(old);
    let limits = Limits {
        rpm: pick(body.rate_limit_rpm, team.limits.rpm),
        rph: pick(body.rate_limit_rph, team.limits.rph),
        rpd: pick(body.rate_limit_rpd, team.limits.rpd),
        tpm: pick(body.rate_limit_tpm, team.limits.tpm),
        tpd: pick(body.rate_limit_tpd, team.limits.tpd),
    };
    crate::model::keys::check_limits(&limits)?;
    let allowed = body.allowed_models.unwrap_or(team.allowed_models);
    let budget = body.budget.unwrap_or(team.budget);
    let fields = TeamFields {
        name: body.name.as_deref().map(str::trim),
        allowed_models: allowed.as_ref().map(serde_json::to_string).transpose()?,
        limits: serde_json::to_string(&limits)?,
        budget: budget.as_ref().map(serde_json::to_string).transpose()?,
    };
    let res = teams::update(tx.conn(), &id, &fields, now_ms()).await;
    unique_or_conflict(res, "name", || {
        "a team with this name exists in the organization".into()
    })?;
    // The team's keys carry the team's grants in their effective model sets.
    tx.enqueue("team", &id).await?;
    tx.commit().await?;
    let (_, row) = fetch_team_row(&st, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    team_view(row).map(Json)
}

/// `DELETE /api/teams/{id}`: admins; refused while the team has active keys.
#[utoipa::path(
    delete,
    path = "/api/teams/{id}",
    tag = "teams",
    summary = "Delete a team without active keys (admin+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn delete_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    authorized_team(&st, &actor, &id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let active = teams::active_key_count(tx.conn(), &id).await?;
    if active > 0 {
        return Err(ApiError::conflict(
            "has_keys",
            format!("team has {active} active key(s); revoke them first"),
        ));
    }
    teams::delete(tx.conn(), &id).await?;
    tx.enqueue("kvdel", &policy::kv::team_key(&id)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
