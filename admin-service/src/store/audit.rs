//! The audit log's rows (written by triggers; read here).

use sqlx::FromRow;

use crate::store::db::Db;
use crate::store::query::Sql;

/// One audit entry as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    /// Sequence number.
    pub id: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What: `<entity>.<create|update|delete>`.
    pub action: String,
    /// The entity's id.
    pub entity_id: Option<String>,
    /// Its organization.
    pub org_id: Option<String>,
    /// JSON of the entity before.
    pub before: Option<String>,
    /// JSON of the entity after.
    pub after: Option<String>,
}

/// Which entries to read; `None` filters nothing.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    /// Of this org only.
    pub org_id: Option<&'a str>,
    /// By this actor.
    pub actor: Option<&'a str>,
    /// This action.
    pub action: Option<&'a str>,
    /// At or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Before (Unix ms).
    pub to_ms: Option<i64>,
    /// Older than this entry id (the cursor).
    pub before_id: Option<i64>,
}

/// Up to `limit` entries matching `f`, newest first.
pub async fn list(db: &Db, f: &AuditFilter<'_>, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT id, at_ms, actor, action, entity_id, org_id, before, after FROM audit_log WHERE 1 = 1",
    );
    if let Some(org) = f.org_id {
        sql.push(" AND org_id = ").bind(org.to_string());
    }
    if let Some(a) = f.actor {
        sql.push(" AND actor = ").bind(a.to_string());
    }
    if let Some(a) = f.action {
        sql.push(" AND action = ").bind(a.to_string());
    }
    if let Some(t) = f.from_ms {
        sql.push(" AND at_ms >= ").bind(t);
    }
    if let Some(t) = f.to_ms {
        sql.push(" AND at_ms < ").bind(t);
    }
    if let Some(c) = f.before_id {
        sql.push(" AND id < ").bind(c);
    }
    sql.push(" ORDER BY id DESC LIMIT ").bind(limit);
    sql.fetch_all(db)
        .await?
        .iter()
        .map(AuditRow::from_row)
        .collect()
}
