//! Emailed one-time dashboard sign-in links: the hash of each link's secret, whose
//! account it signs in, until when, whether it was used, and the token it minted.

use sqlx::AnyConnection;

use crate::store::db::Db;

/// How long a link's row outlives the link: longer than the session it may start
/// (whose sign-out asks [`minted`]), so the table stays bounded.
const KEPT_MS: i64 = 24 * 3600 * 1000;

/// Stores a new link (and drops links that ended more than [`KEPT_MS`] ago).
pub async fn create(
    db: &Db,
    secret_hash: &str,
    user_id: &str,
    now: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sign_in_links WHERE expires_at_ms <= $1")
        .bind(now - KEPT_MS)
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sign_in_links (secret_hash, user_id, created_at_ms, expires_at_ms)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(secret_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at_ms)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks the unused, unexpired link with this hash used; its user, or `None` when
/// there is no such link (unknown, used or expired). One statement, so two
/// concurrent uses cannot both succeed.
pub async fn consume(
    conn: &mut AnyConnection,
    secret_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE ui_sign_in_links SET used_at_ms = $2
         WHERE secret_hash = $1 AND used_at_ms IS NULL AND expires_at_ms > $2
         RETURNING user_id",
    )
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// Records the API token a used link minted for its session.
pub async fn set_token(
    conn: &mut AnyConnection,
    secret_hash: &str,
    token_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE ui_sign_in_links SET api_token_id = $2 WHERE secret_hash = $1")
        .bind(secret_hash)
        .bind(token_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `token_id` was minted by a sign-in link (so it lives only as long as
/// its session).
pub async fn minted(db: &Db, token_id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM ui_sign_in_links WHERE api_token_id = $1")
            .bind(token_id)
            .fetch_one(db)
            .await?;
    Ok(n > 0)
}
