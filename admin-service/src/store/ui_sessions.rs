//! Dashboard sessions: the hashed cookie id, the API token it acts as, its CSRF secret.

use sqlx::Row;

use crate::store::db::Db;

/// A live session: its token is neither revoked nor expired.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The API token the session acts as.
    pub token_id: String,
    /// The secret every form and htmx request of the session must echo.
    pub csrf_secret: String,
}

/// A live API token, as the actor extractor needs it.
#[derive(Debug, Clone)]
pub struct LiveToken {
    /// The token's user; `None` for platform-admin tokens.
    pub user_id: Option<String>,
    /// Whether the token is a platform-admin token.
    pub platform_admin: bool,
}

const LIVE: &str = "t.revoked_at_ms IS NULL AND (t.expires_at_ms IS NULL OR t.expires_at_ms > $2)";

/// The id of the live token with this hash.
pub async fn live_token_id(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT t.id FROM api_tokens t WHERE t.token_hash = $1 AND {LIVE}"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// The token with this id, when it is live.
pub async fn live_token(
    db: &Db,
    token_id: &str,
    now: i64,
) -> Result<Option<LiveToken>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT t.user_id, t.platform_admin FROM api_tokens t WHERE t.id = $1 AND {LIVE}"
    ))
    .bind(token_id)
    .bind(now)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(LiveToken {
            user_id: r.try_get("user_id")?,
            platform_admin: r.try_get::<i64, _>("platform_admin")? != 0,
        })
    })
    .transpose()
}

/// Stores a new session (and drops the expired ones).
pub async fn create(
    db: &Db,
    id_hash: &str,
    token_id: &str,
    csrf_secret: &str,
    now: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at_ms <= $1")
        .bind(now)
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sessions (id_hash, token_id, csrf_secret, created_at_ms, expires_at_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(token_id)
    .bind(csrf_secret)
    .bind(now)
    .bind(expires_at_ms)
    .execute(db)
    .await?;
    Ok(())
}

/// The session with this id hash, while it and its token are live.
pub async fn find(db: &Db, id_hash: &str, now: i64) -> Result<Option<SessionRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT s.token_id, s.csrf_secret FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id
         WHERE s.id_hash = $1 AND s.expires_at_ms > $2 AND {LIVE}"
    ))
    .bind(id_hash)
    .bind(now)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(SessionRow {
            token_id: r.try_get("token_id")?,
            csrf_secret: r.try_get("csrf_secret")?,
        })
    })
    .transpose()
}

/// Ends a session.
pub async fn delete(db: &Db, id_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(db)
        .await?;
    Ok(())
}
