//! Users, their API tokens, and memberships: a user has one role per organization
//! and may belong to several.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::orgs::valid_email;
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, OrgAccess, Perm, Role, authorize_org};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{new_id, now_ms, rfc3339};
use crate::store::members::{self, MemberRow, UserRow};

/// A user as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email (lower-cased).
    pub email: String,
    /// Creation time.
    pub created_at: String,
}

/// Body of `POST /api/users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(schema_with = crate::model::schemas::email)]
    email: String,
}

fn user_view(u: UserRow) -> UserView {
    UserView {
        id: u.id,
        email: u.email,
        created_at: rfc3339(u.created_at_ms),
    }
}

/// Validates and normalizes an email field.
pub fn check_email(field: &str, email: &str) -> Result<String, ApiError> {
    let e = email.to_lowercase();
    if valid_email(&e) {
        Ok(e)
    } else {
        Err(ApiError::invalid(field, "is not a valid email address"))
    }
}

/// `POST /api/users`: platform admins.
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "users",
    summary = "Create a user by email (platform admin).",
    request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserView)),
    security(("bearer" = [])),
)]
pub async fn create_user(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    actor.require_platform_admin()?;
    let email = check_email("email", &body.email)?;
    let id = new_id("usr");
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let res = members::insert_user(tx.conn(), &id, &email, now).await;
    unique_or_conflict(res, "email", || "a user with this email exists".into())?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            id,
            email,
            created_at: rfc3339(now),
        }),
    ))
}

/// `GET /api/users`: platform admins.
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    summary = "List users (platform admin).",
    params(PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<UserView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_users(
    State(st): State<AppState>,
    actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<UserView>> {
    let page = PageParams::from_query(page)?;
    actor.require_platform_admin()?;
    let rows = members::list_users(&st.db, page.after_rowid()?, page.fetch()).await?;
    Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(user_view))
}

/// One membership of the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyMembership {
    /// Organization id.
    pub org_id: String,
    /// Organization slug.
    pub slug: String,
    /// Role there.
    pub role: Role,
}

/// `GET /api/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// Whether the token is a platform admin's.
    pub platform_admin: bool,
    /// The user, for user tokens.
    pub user: Option<UserView>,
    /// The user's memberships.
    pub memberships: Vec<MyMembership>,
}

/// `GET /api/me`: who the token belongs to.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "users",
    summary = "The caller: platform admin or user, with memberships.",
    responses((status = 200, description = "OK", body = Me)),
    security(("bearer" = [])),
)]
pub async fn me(State(st): State<AppState>, actor: Actor) -> ApiResult<Json<Me>> {
    let mut out = Me {
        platform_admin: actor.platform_admin,
        user: None,
        memberships: Vec::new(),
    };
    if let Some(uid) = &actor.user_id {
        out.user = members::user(&st.db, uid).await?.map(user_view);
        for m in members::memberships_of(&st.db, uid).await? {
            out.memberships.push(MyMembership {
                role: Role::parse(&m.role).unwrap_or(Role::Viewer),
                org_id: m.org_id,
                slug: m.slug,
            });
        }
    }
    Ok(Json(out))
}

/// A member of an organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: String,
    /// User email.
    pub email: String,
    /// Role in this org.
    pub role: Role,
    /// When the membership started.
    pub created_at: String,
}

fn member_view(m: MemberRow) -> MemberView {
    MemberView {
        role: Role::parse(&m.role).unwrap_or(Role::Viewer),
        user_id: m.user_id,
        email: m.email,
        created_at: rfc3339(m.created_at_ms),
    }
}

async fn fetch_member(st: &AppState, org_id: &str, user_id: &str) -> ApiResult<MemberView> {
    members::member(&st.db, org_id, user_id)
        .await?
        .map(member_view)
        .ok_or_else(|| ApiError::not_found("member"))
}

/// `GET /api/organizations/{id}/members`.
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/members",
    tag = "members",
    summary = "List members and roles (viewer+).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<MemberView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_members(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<MemberView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &id, Perm::View).await?;
    let rows = members::list_members(&st.db, &id, page.after_rowid()?, page.fetch()).await?;
    Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(member_view))
}

/// Admins manage members except owners: they may neither grant `owner` nor touch one.
pub fn check_grant(access: &OrgAccess, granted: Role) -> Result<(), ApiError> {
    if granted == Role::Owner && access.role != Role::Owner {
        return Err(ApiError::forbidden("only owners may grant the owner role"));
    }
    Ok(())
}

fn check_target(access: &OrgAccess, target: Role) -> Result<(), ApiError> {
    if target == Role::Owner && access.role != Role::Owner {
        return Err(ApiError::forbidden(
            "only owners may change or remove an owner",
        ));
    }
    Ok(())
}

/// Body of `POST /api/organizations/{id}/members`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::email_or_null)]
    email: Option<String>,
    role: Role,
}

/// `POST /api/organizations/{id}/members`: adds an existing user (by id or email) directly.
/// By email only an account that proved the address (used an emailed secret) qualifies.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/members",
    tag = "members",
    summary = "Add an existing user by user_id or email with a role (platform admin; org admins invite).",
    params(("id" = String, Path, description = "id")),
    request_body = AddMember,
    responses((status = 201, description = "Created", body = MemberView)),
    security(("bearer" = [])),
)]
pub async fn add_member(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    let access = authorize_org(&st.db, &actor, &id, Perm::ManageMembers).await?;
    // Users are global: adding one by id or email without their consent would tell an
    // org admin who has accounts in other tenants. Org admins invite instead.
    actor.require_platform_admin()?;
    check_grant(&access, body.role)?;
    let mut tx = st.writer.begin(&st.db).await?;
    let user_id = match (&body.user_id, &body.email) {
        (Some(uid), _) => {
            let found = members::user(tx.conn(), uid).await?;
            found
                .map(|u| u.id)
                .ok_or_else(|| ApiError::invalid("user_id", "no such user"))?
        }
        (None, Some(email)) => {
            let email = check_email("email", email)?;
            let found = members::user_by_email(tx.conn(), &email)
                .await?
                .map(|u| (u.id, u.email_verified_at_ms));
            match found {
                None => {
                    return Err(ApiError::invalid(
                        "email",
                        "no user with this email; send an invitation instead",
                    ));
                }
                // Whoever created that account may not own the address: a grant
                // addressed to the email goes only to an account that proved it.
                Some((_, None)) => {
                    return Err(ApiError::conflict(
                        "email_unverified",
                        "this user never verified the address; send an invitation instead",
                    )
                    .with_field("email"));
                }
                Some((uid, Some(_))) => uid,
            }
        }
        (None, None) => {
            return Err(ApiError::unprocessable(
                "missing_field",
                "user_id",
                "user_id: or email is required".into(),
            ));
        }
    };
    let res =
        members::insert_membership(tx.conn(), &id, &user_id, body.role.as_str(), now_ms()).await;
    unique_or_conflict(res, "user_id", || {
        "already a member; PATCH the membership to change the role".into()
    })?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(fetch_member(&st, &id, &user_id).await?),
    ))
}

/// Body of `PATCH /api/organizations/{id}/members/{user_id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    role: Role,
}

/// The member's role, read inside the write transaction so that a concurrent change
/// cannot slip between the check and the write.
async fn role_for_update(conn: &mut AnyConnection, org_id: &str, user_id: &str) -> ApiResult<Role> {
    let role = members::role(conn, org_id, user_id).await?;
    role.as_deref()
        .and_then(Role::parse)
        .ok_or_else(|| ApiError::not_found("member"))
}

/// `PATCH /api/organizations/{id}/members/{user_id}`: changes a role.
#[utoipa::path(
    patch,
    path = "/api/organizations/{id}/members/{user_id}",
    tag = "members",
    summary = "Change a member's role (admin+; owners only by owners).",
    params(("id" = String, Path, description = "id"), ("user_id" = String, Path, description = "user id")),
    request_body = UpdateMember,
    responses((status = 200, description = "OK", body = MemberView)),
    security(("bearer" = [])),
)]
pub async fn update_member(
    State(st): State<AppState>,
    actor: Actor,
    Path((id, user_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> ApiResult<Json<MemberView>> {
    let access = authorize_org(&st.db, &actor, &id, Perm::ManageMembers).await?;
    check_grant(&access, body.role)?;
    let mut tx = st.writer.begin(&st.db).await?;
    let current = role_for_update(tx.conn(), &id, &user_id).await?;
    check_target(&access, current)?;
    if current == Role::Owner
        && body.role != Role::Owner
        && members::owner_count(tx.conn(), &id).await? <= 1
    {
        return Err(
            ApiError::conflict("last_owner", "an organization keeps at least one owner")
                .with_field("role"),
        );
    }
    members::set_role(tx.conn(), &id, &user_id, body.role.as_str()).await?;
    tx.commit().await?;
    fetch_member(&st, &id, &user_id).await.map(Json)
}

/// Query of `DELETE /api/organizations/{id}/members/{user_id}`.
#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RemoveMember {
    /// A member who takes over the removed member's keys instead of their revocation.
    #[serde(default)]
    transfer_keys_to: Option<String>,
}

/// What removing a member did to the keys they created in the org.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Removed {
    /// The removed user.
    pub user_id: String,
    /// Keys revoked (the default).
    pub revoked_keys: Vec<String>,
    /// Keys handed to `transfer_keys_to`.
    pub transferred_keys: Vec<String>,
}

/// `DELETE /api/organizations/{id}/members/{user_id}`: removes a member at once,
/// with their team memberships; the keys they created there are revoked (the edge
/// refuses them once the push lands) or, with `?transfer_keys_to=`, handed to
/// another member.
#[utoipa::path(
    delete,
    path = "/api/organizations/{id}/members/{user_id}",
    tag = "members",
    summary = "Remove a member at once (admin+; owners only by owners; never the last owner): the keys they created here are revoked, or handed to ?transfer_keys_to=<user_id>.",
    params(("id" = String, Path, description = "id"), ("user_id" = String, Path, description = "user id"), RemoveMember),
    responses((status = 200, description = "OK", body = Removed)),
    security(("bearer" = [])),
)]
pub async fn remove_member(
    State(st): State<AppState>,
    actor: Actor,
    Path((id, user_id)): Path<(String, String)>,
    query: Result<Query<RemoveMember>, QueryRejection>,
) -> ApiResult<Json<Removed>> {
    let Query(query) = query.map_err(|e| {
        ApiError::unprocessable("invalid_value", "transfer_keys_to", format!("query: {e}"))
    })?;
    let access = authorize_org(&st.db, &actor, &id, Perm::ManageMembers).await?;
    let mut tx = st.writer.begin(&st.db).await?;
    let current = role_for_update(tx.conn(), &id, &user_id).await?;
    check_target(&access, current)?;
    if current == Role::Owner && members::owner_count(tx.conn(), &id).await? <= 1 {
        return Err(ApiError::conflict(
            "last_owner",
            "an organization keeps at least one owner",
        ));
    }
    if let Some(heir) = &query.transfer_keys_to {
        if heir == &user_id {
            return Err(ApiError::invalid(
                "transfer_keys_to",
                "must be another member of this organization",
            ));
        }
        // Named like a path id: someone not a member here is not found.
        if role_for_update(tx.conn(), &id, heir).await.is_err() {
            return Err(ApiError::not_found("member").with_field("transfer_keys_to"));
        }
    }
    let keys = members::active_keys_created_by(tx.conn(), &id, &user_id).await?;
    let mut out = Removed {
        user_id: user_id.clone(),
        revoked_keys: Vec::new(),
        transferred_keys: Vec::new(),
    };
    if let Some(heir) = &query.transfer_keys_to {
        members::transfer_keys(tx.conn(), &id, &user_id, heir).await?;
        out.transferred_keys = keys;
    } else {
        members::revoke_keys_created_by(tx.conn(), &id, &user_id, now_ms()).await?;
        for k in &keys {
            tx.enqueue("key", k).await?;
        }
        out.revoked_keys = keys;
    }
    members::remove(tx.conn(), &id, &user_id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %id, user_id = %user_id, revoked = out.revoked_keys.len(),
        transferred = out.transferred_keys.len(), "member removed");
    Ok(Json(out))
}
