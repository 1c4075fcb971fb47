//! Organizations: the tenants' rows, their counts, and what deleting one removes.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, FromRow, Row};

use crate::store::db::Db;

/// Id of the internal org that holds unassigned agents (created by the first migration).
pub const INTERNAL_ORG_ID: &str = "org_internal";

/// An organization with its agent and team counts.
#[derive(Debug, Clone)]
pub struct OrgRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Immutable URL-safe identifier.
    pub slug: String,
    /// Primary contact.
    pub contact_name: Option<String>,
    /// Primary contact email.
    pub contact_email: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Default monthly rate per agent, in minor units.
    pub billing_rate_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Inactive orgs are suspended at the edge.
    pub active: bool,
    /// The internal org of unassigned agents.
    pub is_internal: bool,
    /// Agents assigned.
    pub agent_count: i64,
    /// Teams.
    pub team_count: i64,
    /// The listing user's stored role (only in [`list_for_user`]; `None` elsewhere).
    pub role: Option<String>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

const SELECT: &str = "SELECT o.rowid AS page_key, o.id, o.name, o.slug, o.contact_name,
    o.contact_email, o.description, o.billing_rate_minor, o.currency, o.active, o.is_internal,
    o.created_at_ms, o.updated_at_ms,
    (SELECT COUNT(*) FROM agents a WHERE a.org_id = o.id) AS agent_count,
    (SELECT COUNT(*) FROM teams t WHERE t.org_id = o.id) AS team_count";

// By hand: the 0/1 flags decode as integers (PostgreSQL stores them as BIGINT).
impl FromRow<'_, AnyRow> for OrgRow {
    fn from_row(r: &AnyRow) -> Result<OrgRow, sqlx::Error> {
        Ok(OrgRow {
            page_key: r.try_get("page_key")?,
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            slug: r.try_get("slug")?,
            contact_name: r.try_get("contact_name")?,
            contact_email: r.try_get("contact_email")?,
            description: r.try_get("description")?,
            billing_rate_minor: r.try_get("billing_rate_minor")?,
            currency: r.try_get("currency")?,
            active: r.try_get::<i64, _>("active")? != 0,
            is_internal: r.try_get::<i64, _>("is_internal")? != 0,
            agent_count: r.try_get("agent_count")?,
            team_count: r.try_get("team_count")?,
            role: r.try_get("role").or_else(|e| match e {
                sqlx::Error::ColumnNotFound(_) => Ok(None),
                e => Err(e),
            })?,
            created_at_ms: r.try_get("created_at_ms")?,
            updated_at_ms: r.try_get("updated_at_ms")?,
        })
    }
}

/// One organization.
pub async fn get(db: &Db, id: &str) -> Result<Option<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} FROM organizations o WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Up to `limit` organizations after row `after`, in creation order (the internal org first).
pub async fn list_all(db: &Db, after: i64, limit: i64) -> Result<Vec<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} FROM organizations o WHERE o.rowid > $1 ORDER BY o.rowid LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Up to `limit` tenant organizations `user_id` belongs to, after row `after`, with the
/// user's role in each.
pub async fn list_for_user(
    db: &Db,
    user_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<OrgRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT}, m.role FROM organizations o JOIN memberships m ON m.org_id = o.id
         WHERE m.user_id = $1 AND o.is_internal = 0 AND o.rowid > $2 ORDER BY o.rowid LIMIT $3"
    ))
    .bind(user_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Whether the org is the internal one; `None` when it does not exist.
pub async fn is_internal(db: &Db, id: &str) -> Result<Option<bool>, sqlx::Error> {
    let flag: Option<i64> =
        sqlx::query_scalar("SELECT is_internal FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(flag.map(|f| f != 0))
}

/// Whether the organization exists.
pub async fn exists(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    Ok(is_internal(db, id).await?.is_some())
}

/// The org's display name.
pub async fn name(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The org's stored config document.
pub async fn config(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT config FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A new organization's fields.
#[derive(Debug)]
pub struct NewOrg<'a> {
    /// Id.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// URL-safe identifier (unique).
    pub slug: &'a str,
    /// Primary contact.
    pub contact_name: Option<&'a str>,
    /// Primary contact email.
    pub contact_email: Option<&'a str>,
    /// Description.
    pub description: Option<&'a str>,
    /// Default monthly rate per agent, in minor units.
    pub billing_rate_minor: i64,
    /// ISO 4217 code.
    pub currency: &'a str,
    /// Active at the edge.
    pub active: bool,
    /// Creation time (Unix ms).
    pub now_ms: i64,
}

/// Inserts an organization (a taken slug is a unique violation).
pub async fn insert(conn: &mut AnyConnection, org: &NewOrg<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO organizations (id, name, slug, contact_name, contact_email, description,
            billing_rate_minor, currency, active, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(org.id)
    .bind(org.name)
    .bind(org.slug)
    .bind(org.contact_name)
    .bind(org.contact_email)
    .bind(org.description)
    .bind(org.billing_rate_minor)
    .bind(org.currency)
    .bind(i64::from(org.active))
    .bind(org.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// A change of an organization: `None` keeps a field; `Some(None)` clears an optional one.
#[derive(Debug, Default)]
pub struct OrgPatch<'a> {
    /// New display name.
    pub name: Option<&'a str>,
    /// New contact.
    pub contact_name: Option<Option<&'a str>>,
    /// New contact email.
    pub contact_email: Option<Option<&'a str>>,
    /// New description.
    pub description: Option<Option<&'a str>>,
    /// New currency.
    pub currency: Option<&'a str>,
    /// New activation.
    pub active: Option<bool>,
}

/// Applies `patch` to the organization.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    patch: &OrgPatch<'_>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    // The flags are 0/1 integers compared explicitly: PostgreSQL wants a boolean in WHEN.
    sqlx::query(
        "UPDATE organizations SET
            name = COALESCE($1, name),
            contact_name = CASE WHEN $2 = 1 THEN $3 ELSE contact_name END,
            contact_email = CASE WHEN $4 = 1 THEN $5 ELSE contact_email END,
            description = CASE WHEN $6 = 1 THEN $7 ELSE description END,
            currency = COALESCE($8, currency),
            active = COALESCE($9, active),
            updated_at_ms = $10
         WHERE id = $11",
    )
    .bind(patch.name)
    .bind(i64::from(patch.contact_name.is_some()))
    .bind(patch.contact_name.flatten())
    .bind(i64::from(patch.contact_email.is_some()))
    .bind(patch.contact_email.flatten())
    .bind(i64::from(patch.description.is_some()))
    .bind(patch.description.flatten())
    .bind(patch.currency)
    .bind(patch.active.map(i64::from))
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Flips the organization between active and inactive.
pub async fn toggle_active(
    conn: &mut AnyConnection,
    id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE organizations SET active = 1 - active, updated_at_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Agents assigned to the organization.
pub async fn agent_count<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE org_id = $1")
        .bind(id)
        .fetch_one(ex)
        .await
}

/// The hashes of every key of the org, grace hashes of rotated keys included: the
/// edge records that go when the org goes.
pub async fn key_hashes(conn: &mut AnyConnection, id: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT key_hash FROM virtual_keys WHERE org_id = $1
         UNION ALL SELECT g.key_hash FROM key_grace_hashes g
         JOIN virtual_keys k ON k.id = g.key_id WHERE k.org_id = $1",
    )
    .bind(id)
    .fetch_all(conn)
    .await
}

/// Deletes the organization (its keys, teams and memberships cascade).
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
