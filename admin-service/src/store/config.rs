//! Org config documents: the `config` column of `organizations`, stored as JSON text
//! (credentials sealed); the API layer parses it.

use sqlx::AnyConnection;

/// The config text of org `org_id` and when it last changed (Unix ms).
pub async fn get(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT config, updated_at_ms FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(conn)
        .await
}

/// Every org's id and config text, by id.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, config FROM organizations ORDER BY id")
        .fetch_all(conn)
        .await
}

/// Replaces the config of org `org_id`, changed at `now`.
pub async fn set(
    conn: &mut AnyConnection,
    org_id: &str,
    config: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET config = $1, updated_at_ms = $2 WHERE id = $3")
        .bind(config)
        .bind(now)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the config of org `org_id` without counting it as an edit (the same
/// settings, re-encoded: credentials sealed on start).
pub async fn reseal(
    conn: &mut AnyConnection,
    org_id: &str,
    config: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET config = $1 WHERE id = $2")
        .bind(config)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether a team or active key of org `org_id` has a budget (the org's own is in
/// its config).
pub async fn member_budget_exists(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<bool, sqlx::Error> {
    // A 0/1 integer: booleans do not decode alike on both backends.
    let exists: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM teams WHERE org_id = $1 AND budget IS NOT NULL)
             OR EXISTS (SELECT 1 FROM virtual_keys WHERE org_id = $1 AND budget IS NOT NULL
                        AND status = 'active') THEN 1 ELSE 0 END",
    )
    .bind(org_id)
    .fetch_one(conn)
    .await?;
    Ok(exists != 0)
}
