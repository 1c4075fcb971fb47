//! Teams: groups of keys inside an org with their own limits, budget and model
//! grants. A team can only narrow what its org allows.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::api::catalog::Catalog;
use crate::api::config::{BudgetInput, OrgConfig};
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{new_id, now_ms, rfc3339};
use policy::Limits;

/// A team as returned by the API.
#[derive(Debug, Serialize)]
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

/// Stored team row, decoded.
#[derive(Debug, Clone)]
pub struct TeamRow {
    /// Id.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Grants, `None` = inherit.
    pub allowed_models: Option<Vec<String>>,
    /// Team limits.
    pub limits: Limits,
    /// Team budget.
    pub budget: Option<BudgetInput>,
}

impl TeamRow {
    /// Decodes a `teams` row.
    pub fn from_row(r: &AnyRow) -> Result<TeamRow, ApiError> {
        Ok(TeamRow {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            allowed_models: r
                .try_get::<Option<String>, _>("allowed_models")?
                .map(|s| serde_json::from_str(&s))
                .transpose()?,
            limits: serde_json::from_str(r.try_get("limits")?)?,
            budget: r
                .try_get::<Option<String>, _>("budget")?
                .map(|s| serde_json::from_str(&s))
                .transpose()?,
        })
    }
}

fn team_view(r: &AnyRow) -> Result<TeamView, ApiError> {
    let t = TeamRow::from_row(r)?;
    Ok(TeamView {
        id: t.id,
        org_id: t.org_id,
        name: r.try_get("name")?,
        allowed_models: t.allowed_models,
        rate_limit_rpm: t.limits.rpm,
        rate_limit_tpm: t.limits.tpm,
        rate_limit_rph: t.limits.rph,
        rate_limit_rpd: t.limits.rpd,
        rate_limit_tpd: t.limits.tpd,
        budget: t.budget,
        created_at: rfc3339(r.try_get("created_at_ms")?),
        updated_at: rfc3339(r.try_get("updated_at_ms")?),
    })
}

/// Loads a team row by id.
pub async fn fetch_team_row(st: &AppState, id: &str) -> ApiResult<Option<(TeamRow, AnyRow)>> {
    let Some(r) = sqlx::query("SELECT * FROM teams WHERE id = ?")
        .bind(id)
        .fetch_optional(&st.db)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((TeamRow::from_row(&r)?, r)))
}

/// The org's model universe, from its stored config.
pub async fn org_model_set(
    st: &AppState,
    catalog: &Catalog,
    org_id: &str,
) -> ApiResult<policy::ModelSet> {
    let text: String = sqlx::query_scalar("SELECT config FROM organizations WHERE id = ?")
        .bind(org_id)
        .fetch_one(&st.db)
        .await?;
    Ok(catalog.org_models(&OrgConfig::from_stored(&text)?))
}

/// Body of `POST /api/organizations/{id}/teams`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    name: String,
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    rate_limit_rpm: Option<u64>,
    #[serde(default)]
    rate_limit_tpm: Option<u64>,
    #[serde(default)]
    rate_limit_rph: Option<u64>,
    #[serde(default)]
    rate_limit_rpd: Option<u64>,
    #[serde(default)]
    rate_limit_tpd: Option<u64>,
    #[serde(default)]
    budget: Option<BudgetInput>,
}

/// Body of `PATCH /api/teams/{id}`; `null` clears (grants: back to inheriting).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_rph: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_rpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit_tpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget: Option<Option<BudgetInput>>,
}

fn check_team_name(n: &str) -> Result<(), ApiError> {
    if n.trim().is_empty() || n.len() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    Ok(())
}

/// `POST /api/organizations/{id}/teams`: admins.
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
    let id = new_id("team");
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let res = sqlx::query(
        "INSERT INTO teams (id, org_id, name, allowed_models, limits, budget, created_at_ms, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&org_id)
    .bind(body.name.trim())
    .bind(body.allowed_models.as_ref().map(serde_json::to_string).transpose()?)
    .bind(serde_json::to_string(&limits)?)
    .bind(body.budget.as_ref().map(serde_json::to_string).transpose()?)
    .bind(now)
    .bind(now)
    .execute(tx.conn())
    .await;
    unique_or_conflict(res, "name", || {
        "a team with this name exists in the organization".into()
    })?;
    tx.enqueue("team", &id).await?;
    tx.commit().await?;
    let (_, row) = fetch_team_row(&st, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(team_view(&row)?)))
}

/// `GET /api/organizations/{id}/teams`.
pub async fn list_teams(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TeamView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let rows = sqlx::query(
        "SELECT rowid AS page_key, * FROM teams WHERE org_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
    )
    .bind(&org_id)
    .bind(page.after_rowid()?)
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, team_view)
}

/// Loads a team and checks `perm` in its org; a team of an org the caller cannot see is 404.
pub async fn authorized_team(
    st: &AppState,
    actor: &Actor,
    id: &str,
    perm: Perm,
) -> ApiResult<(TeamRow, AnyRow)> {
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
pub async fn get_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<TeamView>> {
    let (_, row) = authorized_team(&st, &actor, &id, Perm::View).await?;
    team_view(&row).map(Json)
}

/// `PATCH /api/teams/{id}`: admins.
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
    let row = sqlx::query("SELECT * FROM teams WHERE id = ?")
        .bind(&id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| ApiError::not_found("team"))?;
    let team = TeamRow::from_row(&row)?;
    let pick = |new: Option<Option<u64>>, old: Option<u64>| new.unwrap_or(old);
    let limits = Limits {
        rpm: pick(body.rate_limit_rpm, team.limits.rpm),
        rph: pick(body.rate_limit_rph, team.limits.rph),
        rpd: pick(body.rate_limit_rpd, team.limits.rpd),
        tpm: pick(body.rate_limit_tpm, team.limits.tpm),
        tpd: pick(body.rate_limit_tpd, team.limits.tpd),
    };
    let allowed = body.allowed_models.unwrap_or(team.allowed_models);
    let budget = body.budget.unwrap_or(team.budget);
    let res = sqlx::query(
        "UPDATE teams SET name = COALESCE(?, name), allowed_models = ?, limits = ?, budget = ?, updated_at_ms = ? WHERE id = ?",
    )
    .bind(body.name.as_deref().map(str::trim))
    .bind(allowed.as_ref().map(serde_json::to_string).transpose()?)
    .bind(serde_json::to_string(&limits)?)
    .bind(budget.as_ref().map(serde_json::to_string).transpose()?)
    .bind(now_ms())
    .bind(&id)
    .execute(tx.conn())
    .await;
    unique_or_conflict(res, "name", || {
        "a team with this name exists in the organization".into()
    })?;
    // The team's keys carry the team's grants in their effective model sets.
    tx.enqueue("team", &id).await?;
    tx.commit().await?;
    let (_, row) = fetch_team_row(&st, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    team_view(&row).map(Json)
}

/// `DELETE /api/teams/{id}`: admins; refused while the team has active keys.
pub async fn delete_team(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    authorized_team(&st, &actor, &id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM virtual_keys WHERE team_id = ? AND status = 'active'",
    )
    .bind(&id)
    .fetch_one(tx.conn())
    .await?;
    if active > 0 {
        return Err(ApiError::conflict(
            "has_keys",
            format!("team has {active} active key(s); revoke them first"),
        ));
    }
    sqlx::query("DELETE FROM teams WHERE id = ?")
        .bind(&id)
        .execute(tx.conn())
        .await?;
    tx.enqueue("kvdel", &policy::kv::team_key(&id)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
