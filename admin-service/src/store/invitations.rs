//! Invitations: a hashed single-use secret granting a role in an org to an email.

use sqlx::{Any, AnyConnection, Executor};

use crate::store::db::Db;
use crate::store::query::org_page;

/// An invitation (never with its secret; only the hash is stored).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Organization.
    pub org_id: String,
    /// Invitee.
    pub email: String,
    /// Stored role name granted on acceptance.
    pub role: String,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
    /// When it was accepted.
    pub accepted_at_ms: Option<i64>,
    /// When it was revoked.
    pub revoked_at_ms: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
}

const SELECT: &str = "SELECT rowid AS page_key, id, org_id, email, role, expires_at_ms,
    accepted_at_ms, revoked_at_ms, created_at_ms FROM invitations";

/// A new invitation's fields.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    /// Id.
    pub id: &'a str,
    /// Organization.
    pub org_id: &'a str,
    /// Invitee (lower-cased).
    pub email: &'a str,
    /// Stored role name.
    pub role: &'a str,
    /// SHA-256 hex of the secret.
    pub token_hash: &'a str,
    /// Expiry (Unix ms).
    pub expires_at_ms: i64,
    /// Creation time (Unix ms).
    pub now_ms: i64,
}

/// Stores an invitation.
pub async fn insert(conn: &mut AnyConnection, inv: &NewInvitation<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invitations (id, org_id, email, role, token_hash, expires_at_ms, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(inv.id)
    .bind(inv.org_id)
    .bind(inv.email)
    .bind(inv.role)
    .bind(inv.token_hash)
    .bind(inv.expires_at_ms)
    .bind(inv.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` invitations of an org after row `after`, oldest first.
pub async fn list(
    db: &Db,
    org_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<InvitationRow>, sqlx::Error> {
    org_page(db, SELECT, org_id, after, limit).await
}

/// The org of an invitation.
pub async fn org_of(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM invitations WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The invitation whose secret hashes to `token_hash`.
pub async fn by_token_hash<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(ex)
        .await
}

/// Whether an invitation's secret hashes to `token_hash` (no row is decoded).
pub async fn token_hash_known(db: &Db, token_hash: &str) -> Result<bool, sqlx::Error> {
    let id: Option<String> = sqlx::query_scalar("SELECT id FROM invitations WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(db)
        .await?;
    Ok(id.is_some())
}

/// Revokes a pending invitation (a used or revoked one stays as it is).
pub async fn revoke(conn: &mut AnyConnection, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invitations SET revoked_at_ms = $1
         WHERE id = $2 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the invitation used; a second accept changes nothing.
pub async fn mark_accepted(
    conn: &mut AnyConnection,
    id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE invitations SET accepted_at_ms = $1 WHERE id = $2 AND accepted_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}
