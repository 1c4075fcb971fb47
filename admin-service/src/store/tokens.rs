//! Admin API tokens: stored as SHA-256 hashes with a recognisable prefix, their
//! expiry and revocation, and when each was last used.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::store::db::Db;

/// A token as stored (never the secret).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Name given at issue.
    pub name: String,
    /// First characters of the token.
    pub token_prefix: String,
    /// The user it authenticates; `None` for platform-admin tokens.
    pub user_id: Option<String>,
    /// A platform-admin token.
    pub platform_admin: bool,
    /// The bootstrap token.
    pub bootstrap: bool,
    /// Issue time (Unix ms).
    pub created_at_ms: i64,
    /// Last use (minute resolution).
    pub last_used_at_ms: Option<i64>,
    /// Expiry.
    pub expires_at_ms: Option<i64>,
    /// Revocation time.
    pub revoked_at_ms: Option<i64>,
}

const SELECT: &str = "SELECT t.rowid AS page_key, t.id, t.name, t.token_prefix, t.user_id,
    t.platform_admin, t.bootstrap, t.created_at_ms, t.expires_at_ms, t.revoked_at_ms,
    u.last_used_at_ms
    FROM api_tokens t LEFT JOIN api_token_usage u ON u.token_id = t.id";

// By hand: the 0/1 flags decode as integers (PostgreSQL stores them as BIGINT).
impl FromRow<'_, AnyRow> for TokenRow {
    fn from_row(r: &AnyRow) -> Result<TokenRow, sqlx::Error> {
        Ok(TokenRow {
            page_key: r.try_get("page_key")?,
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            token_prefix: r.try_get("token_prefix")?,
            user_id: r.try_get("user_id")?,
            platform_admin: r.try_get::<i64, _>("platform_admin")? != 0,
            bootstrap: r.try_get::<i64, _>("bootstrap")? != 0,
            created_at_ms: r.try_get("created_at_ms")?,
            last_used_at_ms: r.try_get("last_used_at_ms")?,
            expires_at_ms: r.try_get("expires_at_ms")?,
            revoked_at_ms: r.try_get("revoked_at_ms")?,
        })
    }
}

/// One token.
pub async fn get(db: &Db, id: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Up to `limit` tokens of `user_id` (`None`: every token) after row `after`, oldest first.
pub async fn list(
    db: &Db,
    user_id: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<TokenRow>, sqlx::Error> {
    match user_id {
        Some(uid) => {
            sqlx::query_as(&format!(
                "{SELECT} WHERE t.user_id = $1 AND t.rowid > $2 ORDER BY t.rowid LIMIT $3"
            ))
            .bind(uid)
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await
        }
        None => {
            sqlx::query_as(&format!(
                "{SELECT} WHERE t.rowid > $1 ORDER BY t.rowid LIMIT $2"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(db)
            .await
        }
    }
}

/// The owner of a token: `None` when there is no such token, `Some(None)` for a
/// platform-admin token.
pub async fn owner(db: &Db, id: &str) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM api_tokens WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A new token's fields.
#[derive(Debug)]
pub struct NewToken<'a> {
    /// Id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// SHA-256 hex of the secret.
    pub token_hash: &'a str,
    /// Recognisable start of the secret.
    pub token_prefix: &'a str,
    /// The user it authenticates (`None`: platform admin).
    pub user_id: Option<&'a str>,
    /// A platform-admin token.
    pub platform_admin: bool,
    /// The bootstrap token.
    pub bootstrap: bool,
    /// Expiry.
    pub expires_at_ms: Option<i64>,
    /// Issue time (Unix ms).
    pub now_ms: i64,
}

/// Stores a token.
pub async fn insert(conn: &mut AnyConnection, t: &NewToken<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, token_hash, token_prefix, user_id, platform_admin,
            bootstrap, expires_at_ms, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id)
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.token_prefix)
    .bind(t.user_id)
    .bind(i64::from(t.platform_admin))
    .bind(i64::from(t.bootstrap))
    .bind(t.expires_at_ms)
    .bind(t.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes a token (a revoked one keeps its revocation time).
pub async fn revoke(conn: &mut AnyConnection, id: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL")
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A live (unrevoked, unexpired) token, as authentication needs it.
#[derive(Debug, Clone)]
pub struct LiveToken {
    /// Id.
    pub id: String,
    /// The user it authenticates.
    pub user_id: Option<String>,
    /// A platform-admin token.
    pub platform_admin: bool,
}

/// The live token whose secret hashes to `token_hash`.
pub async fn live_by_hash(
    db: &Db,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<LiveToken>, sqlx::Error> {
    let Some(r) = sqlx::query(
        "SELECT id, user_id, platform_admin FROM api_tokens WHERE token_hash = $1
         AND revoked_at_ms IS NULL AND (expires_at_ms IS NULL OR expires_at_ms > $2)",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(LiveToken {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        platform_admin: r.try_get::<i64, _>("platform_admin")? != 0,
    }))
}

/// Records a use of the token unless one within `granularity_ms` is already recorded.
pub async fn touch(db: &Db, id: &str, now_ms: i64, granularity_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_token_usage (token_id, last_used_at_ms) VALUES ($1, $2)
         ON CONFLICT (token_id) DO UPDATE SET last_used_at_ms = excluded.last_used_at_ms
         WHERE api_token_usage.last_used_at_ms < excluded.last_used_at_ms - $3",
    )
    .bind(id)
    .bind(now_ms)
    .bind(granularity_ms)
    .execute(db)
    .await?;
    Ok(())
}

/// Live platform-admin tokens.
pub async fn live_admin_count(conn: &mut AnyConnection, now_ms: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_tokens WHERE platform_admin = 1 AND revoked_at_ms IS NULL
         AND (expires_at_ms IS NULL OR expires_at_ms > $1)",
    )
    .bind(now_ms)
    .fetch_one(conn)
    .await
}

/// Revokes every live bootstrap token but the one hashing to `keep_hash`.
pub async fn revoke_other_bootstrap(
    conn: &mut AnyConnection,
    keep_hash: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_tokens SET revoked_at_ms = $1
         WHERE bootstrap = 1 AND token_hash <> $2 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(keep_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the operator's bootstrap token, or makes it live again (unrevoked, no
/// expiry) when it is already the bootstrap token.
pub async fn upsert_bootstrap(
    conn: &mut AnyConnection,
    t: &NewToken<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, token_hash, token_prefix, platform_admin, bootstrap, created_at_ms)
         VALUES ($1, $2, $3, $4, 1, 1, $5)
         ON CONFLICT (token_hash) DO UPDATE SET revoked_at_ms = NULL, expires_at_ms = NULL
         WHERE api_tokens.bootstrap = 1",
    )
    .bind(t.id)
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.token_prefix)
    .bind(t.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}
