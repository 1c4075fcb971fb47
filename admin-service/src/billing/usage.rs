//! Usage accounting: drains the usage events the edge spools in each sink's KV into
//! `usage_events` exactly once (the event id is the primary key, and spool entries
//! are deleted only after the insert committed), and answers usage queries.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use sqlx::{Any, QueryBuilder, Row};

use crate::AppState;
use crate::auth::{Actor, Perm, authorize_org};
use crate::billing::money::Micros;
use crate::errors::{ApiError, ApiResult};

/// `YYYY-MM-DD` (UTC) of a Unix-ms instant.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// What usage rows are grouped by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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

/// Query of `GET /api/organizations/{id}/usage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day included, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    from: Option<String>,
    /// Last day included, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    group_by: GroupBy,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// Totals of one group.
#[derive(Debug, Default, Serialize)]
pub struct UsageRow {
    /// The group's value (day, model, key id, agent id, team id; `null` if none).
    pub group: Option<String>,
    /// Forwarded requests (denied ones are not requests here; see `denied`).
    pub requests: u64,
    /// Of those, requests answered from the response cache (cost 0, no tokens).
    pub cached_requests: u64,
    /// Requests the edge denied after their key resolved (no tokens, no cost).
    pub denied: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in the org's currency.
    pub cost: Micros,
}

/// Body of `GET /api/organizations/{id}/usage`.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    /// The organization.
    pub org_id: String,
    /// Currency of `cost`.
    pub currency: String,
    /// Grouping of `rows`.
    pub group_by: GroupBy,
    /// One row per group, ordered by group.
    pub rows: Vec<UsageRow>,
    /// Sum of all rows.
    pub totals: UsageRow,
}

fn check_day(field: &str, v: &Option<String>) -> Result<(), ApiError> {
    let Some(d) = v else { return Ok(()) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(d, &format)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(field, format!("{d:?} is not a date (YYYY-MM-DD)")))
}

/// `GET /api/organizations/{id}/usage`: usage per day, model, key, agent or team,
/// filtered by day range, key, agent, team and model (viewer+).
pub async fn org_usage(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<UsageReport>> {
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    check_day("from", &q.from)?;
    check_day("to", &q.to)?;
    let col = q.group_by.column();
    let mut sql: QueryBuilder<Any> = QueryBuilder::new(format!(
        "SELECT {col} AS grp, COUNT(*) - SUM(denied) AS requests, SUM(denied) AS denied,
                SUM(input_tokens) AS input_tokens,
                SUM(output_tokens) AS output_tokens, SUM(cost_micros) AS cost,
                SUM(cached) AS cached_requests
         FROM usage_events WHERE org_id = "
    ));
    sql.push_bind(&org_id);
    let filters = [
        ("day >= ", &q.from),
        ("day <= ", &q.to),
        ("key_id = ", &q.key_id),
        ("agent_id = ", &q.agent_id),
        ("team_id = ", &q.team_id),
        ("model = ", &q.model),
    ];
    for (clause, value) in filters {
        if let Some(v) = value {
            sql.push(" AND ").push(clause).push_bind(v);
        }
    }
    sql.push(format!(" GROUP BY {col} ORDER BY {col}"));
    let rows = sql.build().fetch_all(&st.db).await?;
    let mut totals = UsageRow::default();
    let mut out = BTreeMap::new();
    for r in rows {
        let get = |c: &str| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        let row = UsageRow {
            group: r.try_get("grp")?,
            requests: get("requests")?,
            cached_requests: get("cached_requests")?,
            denied: get("denied")?,
            input_tokens: get("input_tokens")?,
            output_tokens: get("output_tokens")?,
            cost: Micros(get("cost")?),
        };
        totals.requests += row.requests;
        totals.cached_requests += row.cached_requests;
        totals.denied += row.denied;
        totals.input_tokens += row.input_tokens;
        totals.output_tokens += row.output_tokens;
        totals.cost.0 += row.cost.0;
        out.insert(row.group.clone(), row);
    }
    let currency: String = sqlx::query_scalar("SELECT currency FROM organizations WHERE id = ?")
        .bind(&org_id)
        .fetch_one(&st.db)
        .await?;
    Ok(Json(UsageReport {
        org_id,
        currency,
        group_by: q.group_by,
        rows: out.into_values().collect(),
        totals,
    }))
}
