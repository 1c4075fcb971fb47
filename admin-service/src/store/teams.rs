//! Teams and team memberships. Grants, limits and budget are stored as JSON text;
//! the API layer owns their shapes.

use sqlx::{Any, AnyConnection, Executor};

use crate::store::db::Db;
use crate::store::query::org_page;

/// A stored team, its JSON columns undecoded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRecord {
    /// Paging key (the row id; 0 when not selected).
    #[sqlx(default)]
    pub page_key: i64,
    /// Id.
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Name, unique in the org.
    pub name: String,
    /// JSON array of model grants; `None` inherits the org's.
    pub allowed_models: Option<String>,
    /// JSON limits object.
    pub limits: String,
    /// JSON budget object.
    pub budget: Option<String>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

const SELECT: &str = "SELECT rowid AS page_key, id, org_id, name, allowed_models, limits, budget,
    created_at_ms, updated_at_ms FROM teams";

/// The team with `id`.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<TeamRecord>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// Up to `limit` teams of an org after row `after`, oldest first.
pub async fn list(
    db: &Db,
    org_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<TeamRecord>, sqlx::Error> {
    org_page(db, SELECT, org_id, after, limit).await
}

/// The ids of the org's teams.
pub async fn ids_of_org(
    conn: &mut AnyConnection,
    org_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM teams WHERE org_id = $1")
        .bind(org_id)
        .fetch_all(conn)
        .await
}

/// A team's stored fields, JSON already encoded.
#[derive(Debug)]
pub struct TeamFields<'a> {
    /// Name (unique in the org); `None` keeps it on update.
    pub name: Option<&'a str>,
    /// JSON grants, `None` = inherit.
    pub allowed_models: Option<String>,
    /// JSON limits.
    pub limits: String,
    /// JSON budget.
    pub budget: Option<String>,
}

/// Inserts a team (a taken name in the org is a unique violation).
pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    org_id: &str,
    fields: &TeamFields<'_>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO teams (id, org_id, name, allowed_models, limits, budget, created_at_ms, updated_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(fields.name.unwrap_or_default())
    .bind(fields.allowed_models.as_deref())
    .bind(fields.limits.as_str())
    .bind(fields.budget.as_deref())
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rewrites a team's fields (a taken name in the org is a unique violation).
pub async fn update(
    conn: &mut AnyConnection,
    id: &str,
    fields: &TeamFields<'_>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE teams SET name = COALESCE($1, name), allowed_models = $2, limits = $3, budget = $4,
            updated_at_ms = $5 WHERE id = $6",
    )
    .bind(fields.name)
    .bind(fields.allowed_models.as_deref())
    .bind(fields.limits.as_str())
    .bind(fields.budget.as_deref())
    .bind(now_ms)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Active keys in the team.
pub async fn active_key_count(conn: &mut AnyConnection, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM virtual_keys WHERE team_id = $1 AND status = 'active'")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// Deletes a team (its memberships cascade).
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the org has any team.
pub async fn org_has_teams(db: &Db, org_id: &str) -> Result<bool, sqlx::Error> {
    let any: Option<String> = sqlx::query_scalar("SELECT id FROM teams WHERE org_id = $1 LIMIT 1")
        .bind(org_id)
        .fetch_optional(db)
        .await?;
    Ok(any.is_some())
}

/// A member of a team, with their email and org role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamMemberRow {
    /// Paging key (the row id).
    pub page_key: i64,
    /// Team.
    pub team_id: String,
    /// User.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// The user's stored role in the team's org.
    pub role: String,
    /// When they joined the team (Unix ms).
    pub created_at_ms: i64,
}

const MEMBER_SELECT: &str =
    "SELECT tm.rowid AS page_key, tm.team_id, tm.user_id, u.email, m.role, tm.created_at_ms
     FROM team_members tm
     JOIN teams t ON t.id = tm.team_id
     JOIN users u ON u.id = tm.user_id
     JOIN memberships m ON m.user_id = tm.user_id AND m.org_id = t.org_id";

/// One member of a team.
pub async fn member(
    db: &Db,
    team_id: &str,
    user_id: &str,
) -> Result<Option<TeamMemberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE tm.team_id = $1 AND tm.user_id = $2"
    ))
    .bind(team_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Up to `limit` members of a team after row `after`, in joining order.
pub async fn list_members(
    db: &Db,
    team_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<TeamMemberRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{MEMBER_SELECT} WHERE tm.team_id = $1 AND tm.rowid > $2 ORDER BY tm.rowid LIMIT $3"
    ))
    .bind(team_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Whether the user belongs to the team.
pub async fn is_member(db: &Db, team_id: &str, user_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(team_id)
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Adds a user to a team (an existing membership is a unique violation).
pub async fn add_member(
    conn: &mut AnyConnection,
    team_id: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO team_members (team_id, user_id, created_at_ms) VALUES ($1, $2, $3)")
        .bind(team_id)
        .bind(user_id)
        .bind(now_ms)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a user from a team; whether they were a member.
pub async fn remove_member(
    conn: &mut AnyConnection,
    team_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(team_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
