//! Billing history: agent assignments over time, org and agent rate history, and
//! the org's currency.

use sqlx::{AnyConnection, Row};

use crate::store::db::Db;

/// Records that `agent_id` belongs to `org_id` from `at_ms` on, closing its previous
/// assignment; runs inside the transaction that moves the agent.
pub async fn record_assignment(
    conn: &mut AnyConnection,
    agent_id: &str,
    org_id: &str,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE agent_assignments SET to_ms = $1 WHERE agent_id = $2 AND to_ms IS NULL")
        .bind(at_ms)
        .bind(agent_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO agent_assignments (agent_id, org_id, from_ms, to_ms)
         VALUES ($1, $2, $3, NULL)",
    )
    .bind(agent_id)
    .bind(org_id)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the org has usage or agent-assignment history that deleting it would lose.
pub async fn has_history(conn: &mut AnyConnection, org_id: &str) -> Result<bool, sqlx::Error> {
    let found: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM usage_events WHERE org_id = $1)
             OR EXISTS (SELECT 1 FROM agent_assignments WHERE org_id = $1) THEN 1 ELSE 0 END",
    )
    .bind(org_id)
    .fetch_one(conn)
    .await?;
    Ok(found != 0)
}

/// Deletes the org's billing history (with the org, after confirmation).
pub async fn delete_history(conn: &mut AnyConnection, org_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM usage_events WHERE org_id = $1")
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM agent_assignments WHERE org_id = $1")
        .bind(org_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The currency an org bills in; `None` for an unknown org.
pub async fn org_currency(db: &Db, org_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT currency FROM organizations WHERE id = $1")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

/// One stretch of time an agent belonged to an org.
#[derive(Debug)]
pub struct Assignment {
    /// The agent.
    pub agent_id: String,
    /// Its name.
    pub agent_name: String,
    /// Start, Unix ms.
    pub from_ms: i64,
    /// End (exclusive), Unix ms; `None` while it lasts.
    pub to_ms: Option<i64>,
}

/// The org's agent assignments overlapping `[start_ms, end_ms)`.
pub async fn assignments(
    db: &Db,
    org_id: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<Assignment>, sqlx::Error> {
    sqlx::query(
        "SELECT a.agent_id, a.from_ms, a.to_ms, g.name
         FROM agent_assignments a JOIN agents g ON g.id = a.agent_id
         WHERE a.org_id = $1 AND a.from_ms < $2 AND (a.to_ms IS NULL OR a.to_ms > $3)",
    )
    .bind(org_id)
    .bind(end_ms)
    .bind(start_ms)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(Assignment {
            agent_id: r.try_get("agent_id")?,
            agent_name: r.try_get("name")?,
            from_ms: r.try_get("from_ms")?,
            to_ms: r.try_get("to_ms")?,
        })
    })
    .collect()
}

/// Whose rate a rate-history entry sets.
#[derive(Clone, Copy)]
enum RateOf {
    Org,
    Agent,
}

impl RateOf {
    /// `(history table, its id column, table holding the rate in force)`.
    fn tables(self) -> (&'static str, &'static str, &'static str) {
        match self {
            RateOf::Org => ("org_rate_history", "org_id", "organizations"),
            RateOf::Agent => ("agent_rate_history", "agent_id", "agents"),
        }
    }
}

/// Records `rate_minor` from `day` on for `id`, then copies the latest entry into
/// the rate in force.
async fn set_rate(
    conn: &mut AnyConnection,
    of: RateOf,
    id: &str,
    day: &str,
    rate_minor: Option<i64>,
) -> Result<(), sqlx::Error> {
    let (history, column, current) = of.tables();
    sqlx::query(&format!(
        "INSERT INTO {history} ({column}, effective_day, rate_minor) VALUES ($1, $2, $3)
         ON CONFLICT ({column}, effective_day) DO UPDATE SET rate_minor = excluded.rate_minor"
    ))
    .bind(id)
    .bind(day)
    .bind(rate_minor)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE {current} SET billing_rate_minor = (SELECT rate_minor FROM {history}
            WHERE {column} = $1 ORDER BY effective_day DESC LIMIT 1) WHERE id = $1"
    ))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the org's default rate from `day` on and refreshes the rate in force.
pub async fn set_org_rate(
    conn: &mut AnyConnection,
    org_id: &str,
    day: &str,
    rate_minor: i64,
) -> Result<(), sqlx::Error> {
    set_rate(conn, RateOf::Org, org_id, day, Some(rate_minor)).await
}

/// Records the agent's own rate (`None`: its org's default) from `day` on and
/// refreshes the rate in force.
pub async fn set_agent_rate(
    conn: &mut AnyConnection,
    agent_id: &str,
    day: &str,
    rate_minor: Option<i64>,
) -> Result<(), sqlx::Error> {
    set_rate(conn, RateOf::Agent, agent_id, day, rate_minor).await
}

/// The org's default-rate history: `(effective_day, rate_minor)`, oldest first.
pub async fn org_rate_history(db: &Db, org_id: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT effective_day, rate_minor FROM org_rate_history WHERE org_id = $1
         ORDER BY effective_day",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("effective_day")?, r.try_get("rate_minor")?)))
    .collect()
}

/// One entry of an agent's own-rate history.
#[derive(Debug)]
pub struct AgentRate {
    /// The agent.
    pub agent_id: String,
    /// First UTC day it applies, `YYYY-MM-DD`.
    pub effective_day: String,
    /// Its own monthly rate in minor units; `None`: the org's default.
    pub rate_minor: Option<i64>,
}

/// The own-rate history of every agent ever assigned to or billed in the org,
/// by agent, oldest first.
pub async fn agent_rate_history(db: &Db, org_id: &str) -> Result<Vec<AgentRate>, sqlx::Error> {
    sqlx::query(
        "SELECT agent_id, effective_day, rate_minor FROM agent_rate_history
         WHERE agent_id IN (SELECT agent_id FROM agent_assignments WHERE org_id = $1
                            UNION SELECT agent_id FROM usage_events WHERE org_id = $1)
         ORDER BY agent_id, effective_day",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(AgentRate {
            agent_id: r.try_get("agent_id")?,
            effective_day: r.try_get("effective_day")?,
            rate_minor: r.try_get("rate_minor")?,
        })
    })
    .collect()
}
