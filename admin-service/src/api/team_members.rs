//! Team memberships: which org members belong to which team. When an org has teams,
//! a member (below admin) creates keys only in a team they belong to, so the team's
//! models, limits and budget bind them.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::api::teams::authorized_team;
use crate::auth::{Actor, OrgAccess, Perm, Role};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{now_ms, rfc3339};

/// A member of a team.
#[derive(Debug, Serialize)]
pub struct TeamMemberView {
    /// Team.
    pub team_id: String,
    /// User.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// The user's role in the team's org.
    pub role: Role,
    /// When they joined the team.
    pub created_at: String,
}

/// The team's org, after checking the caller may do `perm` there (404 for a team of
/// an org the caller cannot see).
async fn team_org(st: &AppState, actor: &Actor, team_id: &str, perm: Perm) -> ApiResult<String> {
    Ok(authorized_team(st, actor, team_id, perm).await?.0.org_id)
}

async fn fetch_team_member(
    st: &AppState,
    team_id: &str,
    user_id: &str,
) -> ApiResult<Option<TeamMemberView>> {
    let row = sqlx::query(&format!("{SELECT} WHERE tm.team_id = ? AND tm.user_id = ?"))
        .bind(team_id)
        .bind(user_id)
        .fetch_optional(&st.db)
        .await?;
    row.as_ref().map(team_member_view).transpose()
}

const SELECT: &str =
    "SELECT tm.rowid AS page_key, tm.team_id, tm.user_id, u.email, m.role, tm.created_at_ms
     FROM team_members tm
     JOIN teams t ON t.id = tm.team_id
     JOIN users u ON u.id = tm.user_id
     JOIN memberships m ON m.user_id = tm.user_id AND m.org_id = t.org_id";

fn team_member_view(r: &AnyRow) -> Result<TeamMemberView, ApiError> {
    Ok(TeamMemberView {
        team_id: r.try_get("team_id")?,
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        role: Role::parse(r.try_get("role")?).unwrap_or(Role::Viewer),
        created_at: rfc3339(r.try_get("created_at_ms")?),
    })
}

/// `GET /api/teams/{id}/members` (viewer+).
pub async fn list_team_members(
    State(st): State<AppState>,
    actor: Actor,
    Path(team_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TeamMemberView>> {
    let page = PageParams::from_query(page)?;
    team_org(&st, &actor, &team_id, Perm::View).await?;
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE tm.team_id = ? AND tm.rowid > ? ORDER BY tm.rowid LIMIT ?"
    ))
    .bind(&team_id)
    .bind(page.after_rowid()?)
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, team_member_view)
}

/// Body of `POST /api/teams/{id}/members`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddTeamMember {
    user_id: String,
}

/// `POST /api/teams/{id}/members`: adds a member of the team's org (admin+).
pub async fn add_team_member(
    State(st): State<AppState>,
    actor: Actor,
    Path(team_id): Path<String>,
    ApiJson(body): ApiJson<AddTeamMember>,
) -> ApiResult<(StatusCode, Json<TeamMemberView>)> {
    let org_id = team_org(&st, &actor, &team_id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let member: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?")
            .bind(&org_id)
            .bind(&body.user_id)
            .fetch_optional(tx.conn())
            .await?;
    if member.is_none() {
        return Err(ApiError::invalid(
            "user_id",
            "must be a member of the team's organization",
        ));
    }
    let res =
        sqlx::query("INSERT INTO team_members (team_id, user_id, created_at_ms) VALUES (?, ?, ?)")
            .bind(&team_id)
            .bind(&body.user_id)
            .bind(now_ms())
            .execute(tx.conn())
            .await;
    unique_or_conflict(res, "user_id", || "already a member of this team".into())?;
    tx.commit().await?;
    let view = fetch_team_member(&st, &team_id, &body.user_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /api/teams/{id}/members/{user_id}` (admin+). Their keys stay in the team
/// (an admin revokes them if need be).
pub async fn remove_team_member(
    State(st): State<AppState>,
    actor: Actor,
    Path((team_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    team_org(&st, &actor, &team_id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let done = sqlx::query("DELETE FROM team_members WHERE team_id = ? AND user_id = ?")
        .bind(&team_id)
        .bind(&user_id)
        .execute(tx.conn())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("team member"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks a key's team for its creator: admins may use any team; below admin, when
/// the org has teams, the key must go into a team the caller belongs to.
pub async fn check_key_team(
    st: &AppState,
    access: &OrgAccess,
    actor: &Actor,
    team_id: Option<&str>,
) -> ApiResult<()> {
    if access.role <= Role::Admin {
        return Ok(());
    }
    let has_teams: Option<i64> = sqlx::query_scalar("SELECT 1 FROM teams WHERE org_id = ? LIMIT 1")
        .bind(&access.org_id)
        .fetch_optional(&st.db)
        .await?;
    if has_teams.is_none() {
        return Ok(());
    }
    let Some(team_id) = team_id else {
        return Err(ApiError::forbidden(
            "team_id: this organization has teams; members create keys in a team they belong to",
        )
        .with_field("team_id"));
    };
    let belongs: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM team_members WHERE team_id = ? AND user_id = ?")
            .bind(team_id)
            .bind(&actor.user_id)
            .fetch_optional(&st.db)
            .await?;
    if belongs.is_none() {
        return Err(ApiError::forbidden(
            "team_id: members create keys only in teams they belong to",
        )
        .with_field("team_id"));
    }
    Ok(())
}
