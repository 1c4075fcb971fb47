//! Users and their memberships: one role per user and organization.

use sqlx::{Any, AnyConnection, Executor};

use crate::store::db::{Db, new_id, now_ms};

/// A user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Email (lower-cased).
    pub email: String,
    /// When the user proved the address, if ever.
    pub email_verified_at_ms: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
}

const USER_SELECT: &str =
    "SELECT rowid AS page_key, id, email, email_verified_at_ms, created_at_ms FROM users";

/// The user with `id`.
pub async fn user<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{USER_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// The user with `email` (lower-cased).
pub async fn user_by_email<'e>(
    ex: impl Executor<'e, Database = Any>,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("{USER_SELECT} WHERE email = $1"))
        .bind(email)
        .fetch_optional(ex)
        .await
}

/// Up to `limit` users after row `after`, in creation order.
pub async fn list_users(db: &Db, after: i64, limit: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{USER_SELECT} WHERE rowid > $1 ORDER BY rowid LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Inserts a user (a taken email is a unique violation).
pub async fn insert_user(
    conn: &mut AnyConnection,
    id: &str,
    email: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO users (id, email, created_at_ms) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(email)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Finds or creates the user with `email`; returns its id.
pub async fn upsert_user(conn: &mut AnyConnection, email: &str) -> Result<String, sqlx::Error> {
    if let Some(u) = user_by_email(&mut *conn, email).await? {
        return Ok(u.id);
    }
    let id = new_id("usr");
    insert_user(conn, &id, email, now_ms()).await?;
    Ok(id)
}

/// Records that the user proved their address (the first proof counts).
pub async fn mark_email_verified(
    conn: &mut AnyConnection,
    user_id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET email_verified_at_ms = $1 WHERE id = $2 AND email_verified_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A membership with the member's email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// User id.
    pub user_id: String,
    /// User email.
    pub email: String,
    /// Stored role name.
    pub role: String,
    /// When the membership started (Unix ms).
    pub created_at_ms: i64,
}

const MEMBER_SELECT: &str =
    "SELECT m.rowid AS page_key, m.user_id, u.email, m.role, m.created_at_ms
     FROM memberships m JOIN users u ON u.id = m.user_id";

/// One member of an org.
pub async fn member(
    db: &Db,
    org_id: &str,
    user_id: &str,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Up to `limit` members of an org after row `after`, in joining order.
pub async fn list_members(
    db: &Db,
    org_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE m.org_id = $1 AND m.rowid > $2 ORDER BY m.rowid LIMIT $3"
    ))
    .bind(org_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One of a user's memberships, with the org's slug.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    /// Organization id.
    pub org_id: String,
    /// Organization slug.
    pub slug: String,
    /// Stored role name.
    pub role: String,
}

/// Every membership of a user, by org slug.
pub async fn memberships_of(db: &Db, user_id: &str) -> Result<Vec<MembershipRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.org_id, o.slug, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id
         WHERE m.user_id = $1 ORDER BY o.slug",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// The stored role of `user_id` in `org_id`, if a member.
pub async fn role<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// Owners of the org.
pub async fn owner_count(conn: &mut AnyConnection, org_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
        .bind(org_id)
        .fetch_one(conn)
        .await
}

/// Adds a membership (an existing one is a unique violation).
pub async fn insert_membership(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role, created_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(org_id)
    .bind(role)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a membership or sets the role of the existing one.
pub async fn upsert_membership(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role, created_at_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role",
    )
    .bind(user_id)
    .bind(org_id)
    .bind(role)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets a member's role.
pub async fn set_role(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
        .bind(role)
        .bind(org_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a membership and the user's memberships of the org's teams.
pub async fn remove(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM team_members WHERE user_id = $1 AND team_id IN (SELECT id FROM teams WHERE org_id = $2)",
    )
    .bind(user_id)
    .bind(org_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The ids of the active keys `user_id` created in the org.
pub async fn active_keys_created_by(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM virtual_keys WHERE org_id = $1 AND created_by = $2 AND status = 'active' ORDER BY id",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Hands the active keys `from` created in the org to `to`.
pub async fn transfer_keys(
    conn: &mut AnyConnection,
    org_id: &str,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE virtual_keys SET created_by = $1 WHERE org_id = $2 AND created_by = $3 AND status = 'active'",
    )
    .bind(to)
    .bind(org_id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes the active keys `user_id` created in the org.
pub async fn revoke_keys_created_by(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE virtual_keys SET status = 'revoked', revoked_at_ms = $1 WHERE org_id = $2 AND created_by = $3 AND status = 'active'",
    )
    .bind(now_ms)
    .bind(org_id)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}
