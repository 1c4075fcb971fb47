//! Users, their API tokens, and memberships: a user has one role per organization
//! and may belong to several.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::orgs::valid_email;
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, OrgAccess, Perm, Role, authorize_org};
use crate::errors::{ApiError, ApiResult, unique_or_conflict};
use crate::store::db::{new_id, now_ms, rfc3339};

/// A user as returned by the API.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email (lower-cased).
    pub email: String,
    /// Creation time.
    pub created_at: String,
}

/// Body of `POST /api/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    email: String,
}

/// Finds or creates the user with `email` inside a transaction; returns its id.
pub async fn upsert_user(conn: &mut AnyConnection, email: &str) -> Result<String, sqlx::Error> {
    let existing: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = ?")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = existing {
        return Ok(id);
    }
    let id = new_id("usr");
    sqlx::query("INSERT INTO users (id, email, created_at_ms) VALUES (?, ?, ?)")
        .bind(&id)
        .bind(email)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(id)
}

/// Validates and normalizes an email field.
pub fn check_email(field: &str, email: &str) -> Result<String, ApiError> {
    let e = email.trim().to_lowercase();
    if valid_email(&e) {
        Ok(e)
    } else {
        Err(ApiError::invalid(field, "is not a valid email address"))
    }
}

/// `POST /api/users`: platform admins.
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
    let res = sqlx::query("INSERT INTO users (id, email, created_at_ms) VALUES (?, ?, ?)")
        .bind(&id)
        .bind(&email)
        .bind(now)
        .execute(tx.conn())
        .await;
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
pub async fn list_users(
    State(st): State<AppState>,
    actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<UserView>> {
    let page = PageParams::from_query(page)?;
    actor.require_platform_admin()?;
    let rows = sqlx::query(
        "SELECT rowid AS page_key, * FROM users WHERE rowid > ? ORDER BY rowid LIMIT ?",
    )
    .bind(page.after_rowid()?)
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, |r| {
        Ok(UserView {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            created_at: rfc3339(r.try_get("created_at_ms")?),
        })
    })
}

/// One membership of the caller.
#[derive(Debug, Serialize)]
pub struct MyMembership {
    /// Organization id.
    pub org_id: String,
    /// Organization slug.
    pub slug: String,
    /// Role there.
    pub role: Role,
}

/// `GET /api/me`.
#[derive(Debug, Serialize)]
pub struct Me {
    /// Whether the token is a platform admin's.
    pub platform_admin: bool,
    /// The user, for user tokens.
    pub user: Option<UserView>,
    /// The user's memberships.
    pub memberships: Vec<MyMembership>,
}

/// `GET /api/me`: who the token belongs to.
pub async fn me(State(st): State<AppState>, actor: Actor) -> ApiResult<Json<Me>> {
    let mut out = Me {
        platform_admin: actor.platform_admin,
        user: None,
        memberships: Vec::new(),
    };
    if let Some(uid) = &actor.user_id {
        if let Some(r) = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(uid)
            .fetch_optional(&st.db)
            .await?
        {
            out.user = Some(UserView {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                created_at: rfc3339(r.try_get("created_at_ms")?),
            });
        }
        let rows = sqlx::query(
            "SELECT m.org_id, o.slug, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id
             WHERE m.user_id = ? ORDER BY o.slug",
        )
        .bind(uid)
        .fetch_all(&st.db)
        .await?;
        for r in rows {
            out.memberships.push(MyMembership {
                org_id: r.try_get("org_id")?,
                slug: r.try_get("slug")?,
                role: Role::parse(r.try_get("role")?).unwrap_or(Role::Viewer),
            });
        }
    }
    Ok(Json(out))
}

/// A member of an organization.
#[derive(Debug, Serialize)]
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

async fn fetch_member(st: &AppState, org_id: &str, user_id: &str) -> ApiResult<MemberView> {
    let r = sqlx::query(
        "SELECT m.user_id, u.email, m.role, m.created_at_ms FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ? AND m.user_id = ?",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(&st.db)
    .await?
    .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(MemberView {
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        role: Role::parse(r.try_get("role")?).unwrap_or(Role::Viewer),
        created_at: rfc3339(r.try_get("created_at_ms")?),
    })
}

/// `GET /api/organizations/{id}/members`.
pub async fn list_members(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<MemberView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &id, Perm::View).await?;
    let rows = sqlx::query(
        "SELECT m.rowid AS page_key, m.user_id, u.email, m.role, m.created_at_ms
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ? AND m.rowid > ? ORDER BY m.rowid LIMIT ?",
    )
    .bind(&id)
    .bind(page.after_rowid()?)
    .bind(page.fetch())
    .fetch_all(&st.db)
    .await?;
    Paged::from_rows(rows, &page, |r| {
        Ok(MemberView {
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            role: Role::parse(r.try_get("role")?).unwrap_or(Role::Viewer),
            created_at: rfc3339(r.try_get("created_at_ms")?),
        })
    })
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

async fn owner_count(conn: &mut AnyConnection, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = ? AND role = 'owner'")
        .bind(org_id)
        .fetch_one(conn)
        .await
}

/// Body of `POST /api/organizations/{id}/members`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    role: Role,
}

/// `POST /api/organizations/{id}/members`: adds an existing user (by id or email) directly.
/// By email only an account that proved the address (used an emailed secret) qualifies.
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
            let found: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = ?")
                .bind(uid)
                .fetch_optional(tx.conn())
                .await?;
            found.ok_or_else(|| ApiError::invalid("user_id", "no such user"))?
        }
        (None, Some(email)) => {
            let email = check_email("email", email)?;
            let found: Option<(String, Option<i64>)> =
                sqlx::query_as("SELECT id, email_verified_at_ms FROM users WHERE email = ?")
                    .bind(&email)
                    .fetch_optional(tx.conn())
                    .await?;
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
                    return Err(ApiError::invalid(
                        "email",
                        "this user never verified the address; send an invitation instead",
                    ));
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
    let res = sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role, created_at_ms) VALUES (?, ?, ?, ?)",
    )
    .bind(&user_id)
    .bind(&id)
    .bind(body.role.as_str())
    .bind(now_ms())
    .execute(tx.conn())
    .await;
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    role: Role,
}

/// The member's role, read inside the write transaction so that a concurrent change
/// cannot slip between the check and the write.
async fn role_for_update(conn: &mut AnyConnection, org_id: &str, user_id: &str) -> ApiResult<Role> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    role.as_deref()
        .and_then(Role::parse)
        .ok_or_else(|| ApiError::not_found("member"))
}

/// `PATCH /api/organizations/{id}/members/{user_id}`: changes a role.
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
    if current == Role::Owner && body.role != Role::Owner && owner_count(tx.conn(), &id).await? <= 1
    {
        return Err(
            ApiError::conflict("last_owner", "an organization keeps at least one owner")
                .with_field("role"),
        );
    }
    sqlx::query("UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?")
        .bind(body.role.as_str())
        .bind(&id)
        .bind(&user_id)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    fetch_member(&st, &id, &user_id).await.map(Json)
}

/// Query of `DELETE /api/organizations/{id}/members/{user_id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveMember {
    /// A member who takes over the removed member's keys instead of their revocation.
    #[serde(default)]
    transfer_keys_to: Option<String>,
}

/// What removing a member did to the keys they created in the org.
#[derive(Debug, Serialize)]
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
    if current == Role::Owner && owner_count(tx.conn(), &id).await? <= 1 {
        return Err(ApiError::conflict(
            "last_owner",
            "an organization keeps at least one owner",
        ));
    }
    if let Some(heir) = &query.transfer_keys_to
        && (heir == &user_id || role_for_update(tx.conn(), &id, heir).await.is_err())
    {
        return Err(ApiError::invalid(
            "transfer_keys_to",
            "must be another member of this organization",
        ));
    }
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM virtual_keys WHERE org_id = ? AND created_by = ? AND status = 'active' ORDER BY id",
    )
    .bind(&id)
    .bind(&user_id)
    .fetch_all(tx.conn())
    .await?;
    let mut out = Removed {
        user_id: user_id.clone(),
        revoked_keys: Vec::new(),
        transferred_keys: Vec::new(),
    };
    if let Some(heir) = &query.transfer_keys_to {
        sqlx::query(
            "UPDATE virtual_keys SET created_by = ? WHERE org_id = ? AND created_by = ? AND status = 'active'",
        )
        .bind(heir)
        .bind(&id)
        .bind(&user_id)
        .execute(tx.conn())
        .await?;
        out.transferred_keys = keys;
    } else {
        sqlx::query(
            "UPDATE virtual_keys SET status = 'revoked', revoked_at_ms = ? WHERE org_id = ? AND created_by = ? AND status = 'active'",
        )
        .bind(now_ms())
        .bind(&id)
        .bind(&user_id)
        .execute(tx.conn())
        .await?;
        for k in &keys {
            tx.enqueue("key", k).await?;
        }
        out.revoked_keys = keys;
    }
    sqlx::query(
        "DELETE FROM team_members WHERE user_id = ? AND team_id IN (SELECT id FROM teams WHERE org_id = ?)",
    )
    .bind(&user_id)
    .bind(&id)
    .execute(tx.conn())
    .await?;
    sqlx::query("DELETE FROM memberships WHERE org_id = ? AND user_id = ?")
        .bind(&id)
        .bind(&user_id)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    tracing::info!(org_id = %id, user_id = %user_id, revoked = out.revoked_keys.len(),
        transferred = out.transferred_keys.len(), "member removed");
    Ok(Json(out))
}
