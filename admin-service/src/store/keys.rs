//! Virtual keys and the grace hashes of rotated-out secrets: the `virtual_keys` and
//! `key_grace_hashes` tables. JSON columns come back as text; the API layer decodes them.

use sqlx::{Any, AnyConnection, Executor, FromRow};

use crate::store::db::Db;
use crate::store::query::org_page;

/// Columns of a `virtual_keys` row.
const KEY_COLUMNS: &str = "id, org_id, team_id, agent_id, name, key_prefix, key_hash, \
    allowed_models, ip_allow, ip_deny, limits, budget, expires_at_ms, status, created_by, \
    created_at_ms, revoked_at_ms";

/// A `virtual_keys` row as stored.
#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    /// Id.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Team.
    pub team_id: Option<String>,
    /// Bound agent.
    pub agent_id: Option<String>,
    /// Display name.
    pub name: String,
    /// First characters of the secret.
    pub key_prefix: String,
    /// SHA-256 hex of the secret.
    pub key_hash: String,
    /// JSON array of grants; `None` inherits.
    pub allowed_models: Option<String>,
    /// JSON array of allowed CIDRs.
    pub ip_allow: String,
    /// JSON array of denied CIDRs.
    pub ip_deny: String,
    /// JSON `policy::Limits`.
    pub limits: String,
    /// JSON budget, if any.
    pub budget: Option<String>,
    /// Expiry (Unix ms).
    pub expires_at_ms: Option<i64>,
    /// `active` or `revoked`.
    pub status: String,
    /// Creator (user id; `None` for platform admins).
    pub created_by: Option<String>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Revocation time (Unix ms).
    pub revoked_at_ms: Option<i64>,
}

/// A key's row with the id its listing pages by.
#[derive(Debug, FromRow)]
pub struct PagedKeyRow {
    /// The `rowid` cursor.
    pub page_key: i64,
    /// The key.
    #[sqlx(flatten)]
    pub key: KeyRow,
}

/// A key's settings as they are written (JSON columns already encoded).
#[derive(Debug)]
pub struct KeyFields<'a> {
    /// Display name.
    pub name: &'a str,
    /// Team.
    pub team_id: Option<&'a str>,
    /// Bound agent.
    pub agent_id: Option<&'a str>,
    /// JSON array of grants, `None` to inherit.
    pub allowed_models: Option<String>,
    /// JSON array of allowed CIDRs.
    pub ip_allow: String,
    /// JSON array of denied CIDRs.
    pub ip_deny: String,
    /// JSON limits.
    pub limits: String,
    /// JSON budget.
    pub budget: Option<String>,
    /// Expiry (Unix ms).
    pub expires_at_ms: Option<i64>,
}

/// A new key: its settings and who made it with which secret.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// Id.
    pub id: &'a str,
    /// Owning org.
    pub org_id: &'a str,
    /// First characters of the secret.
    pub key_prefix: &'a str,
    /// SHA-256 hex of the secret.
    pub key_hash: &'a str,
    /// Creator.
    pub created_by: Option<&'a str>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// The settings.
    pub fields: KeyFields<'a>,
}

/// The key `id` (on the pool, or inside a transaction).
pub async fn get<'e, E>(executor: E, id: &str) -> Result<Option<KeyRow>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM virtual_keys WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Up to `limit` keys of `org_id` after the row id `after`, in creation order.
pub async fn list_in_org(
    db: &Db,
    org_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<PagedKeyRow>, sqlx::Error> {
    let select = format!("SELECT rowid AS page_key, {KEY_COLUMNS} FROM virtual_keys");
    org_page(db, &select, org_id, after, limit).await
}

/// How the policy explainer names a key.
#[derive(Debug, Clone, Copy)]
pub enum KeyName<'a> {
    /// By id.
    Id(&'a str),
    /// By the listing prefix (may match several).
    Prefix(&'a str),
}

/// Id and secret hash of up to two keys of `org_id` that `name` matches (two: ambiguous).
pub async fn find_in_org(
    db: &Db,
    org_id: &str,
    name: KeyName<'_>,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let (column, value) = match name {
        KeyName::Id(v) => ("id", v),
        KeyName::Prefix(v) => ("key_prefix", v),
    };
    sqlx::query_as(&format!(
        "SELECT id, key_hash FROM virtual_keys WHERE org_id = $1 AND {column} = $2 LIMIT 2"
    ))
    .bind(org_id)
    .bind(value)
    .fetch_all(db)
    .await
}

/// The org of agent `agent_id`, if it exists.
pub async fn agent_org(db: &Db, agent_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT org_id FROM agents WHERE id = $1")
        .bind(agent_id)
        .fetch_optional(db)
        .await
}

/// Stores a new active key.
pub async fn insert(conn: &mut AnyConnection, k: &NewKey<'_>) -> Result<(), sqlx::Error> {
    let f = &k.fields;
    sqlx::query(
        "INSERT INTO virtual_keys (id, org_id, team_id, agent_id, name, key_prefix, key_hash,
            allowed_models, ip_allow, ip_deny, limits, budget, expires_at_ms, status, created_by,
            created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active', $14, $15)",
    )
    .bind(k.id)
    .bind(k.org_id)
    .bind(f.team_id)
    .bind(f.agent_id)
    .bind(f.name)
    .bind(k.key_prefix)
    .bind(k.key_hash)
    .bind(f.allowed_models.as_deref())
    .bind(f.ip_allow.as_str())
    .bind(f.ip_deny.as_str())
    .bind(f.limits.as_str())
    .bind(f.budget.as_deref())
    .bind(f.expires_at_ms)
    .bind(k.created_by)
    .bind(k.created_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the settings of key `id`.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    f: &KeyFields<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE virtual_keys SET name = $1, team_id = $2, agent_id = $3, allowed_models = $4,
            ip_allow = $5, ip_deny = $6, limits = $7, budget = $8, expires_at_ms = $9
         WHERE id = $10",
    )
    .bind(f.name)
    .bind(f.team_id)
    .bind(f.agent_id)
    .bind(f.allowed_models.as_deref())
    .bind(f.ip_allow.as_str())
    .bind(f.ip_deny.as_str())
    .bind(f.limits.as_str())
    .bind(f.budget.as_deref())
    .bind(f.expires_at_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes key `id` at `now` unless it already is.
pub async fn revoke(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE virtual_keys SET status = 'revoked', revoked_at_ms = $1
         WHERE id = $2 AND status <> 'revoked'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives key `id` a new secret.
pub async fn set_secret(
    conn: &mut AnyConnection,
    id: &str,
    key_hash: &str,
    key_prefix: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE virtual_keys SET key_hash = $1, key_prefix = $2 WHERE id = $3")
        .bind(key_hash)
        .bind(key_prefix)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends every grace of key `id` by `ends_at_ms` at the latest.
pub async fn cap_graces(
    conn: &mut AnyConnection,
    id: &str,
    ends_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE key_grace_hashes SET grace_ends_at_ms =
            CASE WHEN grace_ends_at_ms < $1 THEN grace_ends_at_ms ELSE $1 END
         WHERE key_id = $2",
    )
    .bind(ends_at_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keeps a rotated-out secret of key `id` working until `ends_at_ms`.
pub async fn add_grace(
    conn: &mut AnyConnection,
    key_hash: &str,
    id: &str,
    key_prefix: &str,
    ends_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO key_grace_hashes (key_hash, key_id, key_prefix, grace_ends_at_ms)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(key_hash)
    .bind(id)
    .bind(key_prefix)
    .bind(ends_at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether any grace ended by `now`.
pub async fn graces_ended(db: &Db, now: i64) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM key_grace_hashes WHERE grace_ends_at_ms <= $1 LIMIT 1")
            .bind(now)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Deletes the graces that ended by `now`; their secrets' hashes.
pub async fn delete_ended_graces(
    conn: &mut AnyConnection,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM key_grace_hashes WHERE grace_ends_at_ms <= $1 RETURNING key_hash",
    )
    .bind(now)
    .fetch_all(conn)
    .await
}
