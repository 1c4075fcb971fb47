//! Reads of recorded usage: totals per group for the usage report, per month and
//! agent for billing.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::db::Db;
use crate::store::query::Sql;

/// What usage rows are grouped by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// UTC calendar day.
    #[default]
    Day,
    /// Model requested.
    Model,
    /// Virtual key.
    Key,
    /// Agent (`null` for keys without one).
    Agent,
    /// Team (`null` for keys without one).
    Team,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Model => "model",
            GroupBy::Key => "key_id",
            GroupBy::Agent => "agent_id",
            GroupBy::Team => "team_id",
        }
    }
}

/// Which events a usage report counts; `None` filters nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsageFilter<'a> {
    /// First UTC day included, `YYYY-MM-DD`.
    pub from_day: Option<&'a str>,
    /// Last UTC day included, `YYYY-MM-DD`.
    pub to_day: Option<&'a str>,
    /// Virtual key.
    pub key_id: Option<&'a str>,
    /// Agent.
    pub agent_id: Option<&'a str>,
    /// Team.
    pub team_id: Option<&'a str>,
    /// Model requested.
    pub model: Option<&'a str>,
}

/// Totals of one group of usage events.
#[derive(Debug)]
pub struct GroupTotals {
    /// The group's value (`None` for keys without an agent or team).
    pub group: Option<String>,
    /// Forwarded (not denied) events.
    pub requests: i64,
    /// Events answered from the cache.
    pub cached: i64,
    /// Denied events.
    pub denied: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Cost in micros.
    pub cost_micros: i64,
}

/// The org's usage totals per `group`, in no particular order.
pub async fn totals_by(
    db: &Db,
    org_id: &str,
    group: GroupBy,
    f: &UsageFilter<'_>,
) -> Result<Vec<GroupTotals>, sqlx::Error> {
    let col = group.column();
    // SUM is NUMERIC on PostgreSQL, which the Any driver cannot decode.
    let mut sql = Sql::new(format!(
        "SELECT {col} AS grp, CAST(COUNT(*) - SUM(denied) AS BIGINT) AS requests,
                CAST(SUM(denied) AS BIGINT) AS denied,
                CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
                CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
                CAST(SUM(cost_micros) AS BIGINT) AS cost,
                CAST(SUM(cached) AS BIGINT) AS cached_requests
         FROM usage_events WHERE org_id = "
    ));
    sql.bind(org_id.to_string());
    let filters = [
        ("day >= ", f.from_day),
        ("day <= ", f.to_day),
        ("key_id = ", f.key_id),
        ("agent_id = ", f.agent_id),
        ("team_id = ", f.team_id),
        ("model = ", f.model),
    ];
    for (clause, value) in filters {
        if let Some(v) = value {
            sql.push(" AND ").push(clause).bind(v.to_string());
        }
    }
    sql.push(&format!(" GROUP BY {col}"));
    sql.fetch_all(db)
        .await?
        .iter()
        .map(|r| {
            Ok(GroupTotals {
                group: r.try_get("grp")?,
                requests: r.try_get("requests")?,
                cached: r.try_get("cached_requests")?,
                denied: r.try_get("denied")?,
                input_tokens: r.try_get("input_tokens")?,
                output_tokens: r.try_get("output_tokens")?,
                cost_micros: r.try_get("cost")?,
            })
        })
        .collect()
}

/// Usage of one agent (or of agent-less keys) in one month.
#[derive(Debug)]
pub struct MonthUsage {
    /// `YYYY-MM`.
    pub month: String,
    /// The agent, `None` for keys bound to none.
    pub agent_id: Option<String>,
    /// The agent's name, if it still exists.
    pub agent_name: Option<String>,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Cost in micros.
    pub cost_micros: i64,
}

/// The org's forwarded usage in `[start_ms, end_ms)` per UTC month and agent.
pub async fn by_month_and_agent(
    db: &Db,
    org_id: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<MonthUsage>, sqlx::Error> {
    // `g.name` depends on `u.agent_id` alone; PostgreSQL wants it grouped anyway.
    sqlx::query(
        "SELECT substr(u.day, 1, 7) AS month, u.agent_id, g.name,
                CAST(SUM(u.input_tokens) AS BIGINT) AS input,
                CAST(SUM(u.output_tokens) AS BIGINT) AS output,
                CAST(SUM(u.cost_micros) AS BIGINT) AS cost
         FROM usage_events u LEFT JOIN agents g ON g.id = u.agent_id
         WHERE u.org_id = $1 AND u.at_ms >= $2 AND u.at_ms < $3 AND u.denied = 0
         GROUP BY substr(u.day, 1, 7), u.agent_id, g.name",
    )
    .bind(org_id)
    .bind(start_ms)
    .bind(end_ms)
    .fetch_all(db)
    .await?
    .iter()
    .map(month_usage)
    .collect()
}

fn month_usage(r: &AnyRow) -> Result<MonthUsage, sqlx::Error> {
    Ok(MonthUsage {
        month: r.try_get("month")?,
        agent_id: r.try_get("agent_id")?,
        agent_name: r.try_get("name")?,
        input_tokens: r.try_get("input")?,
        output_tokens: r.try_get("output")?,
        cost_micros: r.try_get("cost")?,
    })
}

/// Unix ms of the org's first forwarded usage or agent assignment, if any.
pub async fn first_activity_ms(db: &Db, org_id: &str) -> Result<Option<i64>, sqlx::Error> {
    // PostgreSQL 15 requires an alias on a subquery in FROM.
    sqlx::query_scalar(
        "SELECT MIN(t) FROM (
            SELECT MIN(from_ms) AS t FROM agent_assignments WHERE org_id = $1
            UNION ALL SELECT MIN(at_ms) FROM usage_events WHERE org_id = $1 AND denied = 0
         ) AS firsts",
    )
    .bind(org_id)
    .fetch_one(db)
    .await
}
