//! Team memberships: which org members belong to which team. When an org has teams,
//! a member (below admin) creates keys only in a team they belong to, so the team's
//! models, limits and budget bind them.

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::api::teams::authorized_team;
use crate::auth::{Actor, OrgAccess, Perm, Role};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{now_ms, rfc3339};
use crate::store::members;
use crate::store::teams::{self, TeamMemberRow};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A member of a team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

fn team_member_view(r: TeamMemberRow) -> TeamMemberView {
    TeamMemberView {
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
        team_id: r.team_id,
        user_id: r.user_id,
        email: r.email,
        created_at: rfc3339(r.created_at_ms),
    }
}

/// `GET /api/teams/{id}/members` (viewer+).
#[utoipa::path(
    get,
    path = "/api/teams/{id}/members",
    tag = "teams",
    summary = "Team members (viewer+).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<TeamMemberView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_team_members(
    State(st): State<AppState>,
    actor: Actor,
    Path(team_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TeamMemberView>> {
    let page = PageParams::from_query(page)?;
    team_org(&st, &actor, &team_id, Perm::View).await?;
    let rows = teams::list_members(&st.db, &team_id, page.after_rowid()?, page.fetch()).await?;
    Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(team_member_view))
}

/// Body of `POST /api/teams/{id}/members`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTeamMember {
    user_id: String,
}

/// `POST /api/teams/{id}/members`: adds a member of the team's org (admin+).
#[utoipa::path(
    post,
    path = "/api/teams/{id}/members",
    tag = "teams",
    summary = "Add an org member to the team: {\"user_id\"} (admin+). Members below admin create keys only in their teams once the org has teams.",
    params(("id" = String, Path, description = "id")),
    request_body = AddTeamMember,
    responses((status = 201, description = "Created", body = TeamMemberView)),
    security(("bearer" = [])),
)]
pub async fn add_team_member(
    State(st): State<AppState>,
    actor: Actor,
    Path(team_id): Path<String>,
    ApiJson(body): ApiJson<AddTeamMember>,
) -> ApiResult<(StatusCode, Json<TeamMemberView>)> {
    let org_id = team_org(&st, &actor, &team_id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let member = members::role(tx.conn(), &org_id, &body.user_id).await?;
    if member.is_none() {
        return Err(ApiError::not_found("member of the team's organization").with_field("user_id"));
    }
    let res = teams::add_member(tx.conn(), &team_id, &body.user_id, now_ms()).await;
    unique_or_conflict(res, "user_id", || "already a member of this team".into())?;
    tx.commit().await?;
    let view = teams::member(&st.db, &team_id, &body.user_id)
        .await?
        .map(team_member_view)
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /api/teams/{id}/members/{user_id}` (admin+). Their keys stay in the team
/// (an admin revokes them if need be).
#[utoipa::path(
    delete,
    path = "/api/teams/{id}/members/{user_id}",
    tag = "teams",
    summary = "Remove a user from the team (admin+).",
    params(("id" = String, Path, description = "id"), ("user_id" = String, Path, description = "user id")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn remove_team_member(
    State(st): State<AppState>,
    actor: Actor,
    Path((team_id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    team_org(&st, &actor, &team_id, Perm::Manage).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    if !teams::remove_member(tx.conn(), &team_id, &user_id).await? {
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
    if !teams::org_has_teams(&st.db, &access.org_id).await? {
        return Ok(());
    }
    let Some(team_id) = team_id else {
        return Err(ApiError::forbidden(
            "team_id: this organization has teams; members create keys in a team they belong to",
        )
        .with_field("team_id"));
    };
    let user_id = actor.user_id.as_deref().unwrap_or("");
    if !teams::is_member(&st.db, team_id, user_id).await? {
        return Err(ApiError::forbidden(
            "team_id: members create keys only in teams they belong to",
        )
        .with_field("team_id"));
    }
    Ok(())
}
