//! The vault's tables: each org's wrapped data key (`org_data_keys`) and the edge key
//! the pushed records were last sealed under (`edge_sealing`). Only ciphertext and
//! key ids are stored here; the crypto stays in the vault.

use sqlx::AnyConnection;

use crate::store::db::{Backend, Db};

/// The wrapped data key of org `org_id`, if it has one.
pub async fn data_key(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT wrapped FROM org_data_keys WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(conn)
        .await
}

/// Stores the first data key of org `org_id`, wrapped.
pub async fn insert_data_key(
    conn: &mut AnyConnection,
    org_id: &str,
    wrapped: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO org_data_keys (org_id, wrapped, created_at_ms) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(wrapped)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every org's id and wrapped data key.
pub async fn data_keys(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT org_id, wrapped FROM org_data_keys ORDER BY org_id")
        .fetch_all(conn)
        .await
}

/// Every wrapped data key (for the key status).
pub async fn wrapped_data_keys(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT wrapped FROM org_data_keys")
        .fetch_all(db)
        .await
}

/// Replaces org `org_id`'s data key with the same key wrapped again.
pub async fn rewrap_data_key(
    conn: &mut AnyConnection,
    org_id: &str,
    wrapped: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE org_data_keys SET wrapped = $1, rewrapped_at_ms = $2 WHERE org_id = $3")
        .bind(wrapped)
        .bind(now)
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The edge key id the pushed org records were last sealed under.
pub async fn edge_sealing<'e, E>(executor: E) -> Result<Option<String>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query_scalar("SELECT key_id FROM edge_sealing WHERE id = 1")
        .fetch_optional(executor)
        .await
}

/// Records that the org records are sealed under edge key `key_id`.
pub async fn set_edge_sealing(
    conn: &mut AnyConnection,
    key_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO edge_sealing (id, key_id, updated_at_ms) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET key_id = $1, updated_at_ms = $2",
    )
    .bind(key_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// SQLite: whether freed pages are zeroed, so replaced plaintext does not linger in
/// the file. PostgreSQL has no such switch (its old row versions go at VACUUM).
pub async fn secure_delete(conn: &mut AnyConnection, on: bool) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "SQLite" {
        let pragma = if on {
            "PRAGMA secure_delete = ON"
        } else {
            "PRAGMA secure_delete = OFF"
        };
        sqlx::query(pragma).execute(conn).await?;
    }
    Ok(())
}

/// SQLite: moves the write-ahead log into the file and truncates it, so old page
/// images (replaced plaintext) leave it too. Nothing to do on PostgreSQL.
pub async fn checkpoint(db: &Db) -> Result<(), sqlx::Error> {
    if Backend::of(db) == Backend::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(db)
            .await?;
    }
    Ok(())
}
