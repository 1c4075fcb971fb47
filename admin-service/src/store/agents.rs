//! AI agents: each in exactly one org, with an optional custom billing rate.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, FromRow, Row};

use crate::store::db::Db;
use crate::store::query::Sql;

/// An agent with its org's default rate.
#[derive(Debug, Clone)]
pub struct AgentRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current organization.
    pub org_id: String,
    /// Custom monthly rate in minor units.
    pub billing_rate_minor: Option<i64>,
    /// The org's default rate in minor units.
    pub org_rate_minor: i64,
    /// Suspended agents are denied at the edge.
    pub active: bool,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

const SELECT: &str = "SELECT a.rowid AS page_key, a.id, a.name, a.org_id, a.billing_rate_minor,
    a.active, a.created_at_ms, a.updated_at_ms, o.billing_rate_minor AS org_rate
    FROM agents a JOIN organizations o ON o.id = a.org_id";

// By hand: the 0/1 flag decodes as an integer (PostgreSQL stores it as BIGINT).
impl FromRow<'_, AnyRow> for AgentRow {
    fn from_row(r: &AnyRow) -> Result<AgentRow, sqlx::Error> {
        Ok(AgentRow {
            page_key: r.try_get("page_key")?,
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            org_id: r.try_get("org_id")?,
            billing_rate_minor: r.try_get("billing_rate_minor")?,
            org_rate_minor: r.try_get("org_rate")?,
            active: r.try_get::<i64, _>("active")? != 0,
            created_at_ms: r.try_get("created_at_ms")?,
            updated_at_ms: r.try_get("updated_at_ms")?,
        })
    }
}

/// One agent.
pub async fn get(db: &Db, id: &str) -> Result<Option<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Every agent of an org, oldest first.
pub async fn of_org(db: &Db, org_id: &str) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE a.org_id = $1 ORDER BY a.created_at_ms, a.id"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Up to `limit` agents after row `after`: of the orgs `member` belongs to (`None`:
/// of every org), of `org_id` only when given.
pub async fn list(
    db: &Db,
    member: Option<&str>,
    org_id: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    let mut sql = Sql::new(SELECT);
    if let Some(user) = member {
        sql.push(" JOIN memberships m ON m.org_id = a.org_id AND m.user_id = ")
            .bind(user.to_string());
    }
    sql.push(" WHERE a.rowid > ").bind(after);
    if let Some(org) = org_id {
        sql.push(" AND a.org_id = ").bind(org.to_string());
    }
    sql.push(" ORDER BY a.rowid LIMIT ").bind(limit);
    sql.fetch_all(db)
        .await?
        .iter()
        .map(AgentRow::from_row)
        .collect()
}

/// A new agent's fields.
#[derive(Debug)]
pub struct NewAgent<'a> {
    /// Id.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Organization.
    pub org_id: &'a str,
    /// Custom monthly rate in minor units.
    pub billing_rate_minor: Option<i64>,
    /// Active at the edge.
    pub active: bool,
    /// Creation time (Unix ms).
    pub now_ms: i64,
}

/// Stores an agent.
pub async fn insert(conn: &mut AnyConnection, a: &NewAgent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agents (id, name, org_id, billing_rate_minor, active, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(a.id)
    .bind(a.name)
    .bind(a.org_id)
    .bind(a.billing_rate_minor)
    .bind(i64::from(a.active))
    .bind(a.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Renames and/or (de)activates an agent; `None` keeps a field.
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    name: Option<&str>,
    active: Option<bool>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agents SET name = COALESCE($1, name), active = COALESCE($2, active),
            updated_at_ms = $3 WHERE id = $4",
    )
    .bind(name)
    .bind(active.map(i64::from))
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves an agent to another org.
pub async fn set_org(
    conn: &mut AnyConnection,
    id: &str,
    org_id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE agents SET org_id = $1, updated_at_ms = $2 WHERE id = $3")
        .bind(org_id)
        .bind(now_ms)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
