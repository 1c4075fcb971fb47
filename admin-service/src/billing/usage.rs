//! Usage accounting: the org's recorded usage (drained from the edge by
//! `sync::drain`) totalled per day, model, key, agent or team.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::billing::money::Micros;
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::Db;
pub use crate::store::usage::GroupBy;
use crate::store::usage::UsageFilter;

/// `YYYY-MM-DD` (UTC) of a Unix-ms instant.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// Totals of one group.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// The org's recorded usage matching `filter`, one row per `group_by` value, with
/// totals; 404 for an unknown org.
pub async fn report(
    pool: &Db,
    org_id: &str,
    group_by: GroupBy,
    filter: &UsageFilter<'_>,
) -> ApiResult<UsageReport> {
    let mut totals = UsageRow::default();
    // Ordered in Rust: PostgreSQL's collation may order text differently.
    let mut out = BTreeMap::new();
    for g in store::usage::totals_by(pool, org_id, group_by, filter).await? {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        let row = UsageRow {
            group: g.group,
            requests: n(g.requests),
            cached_requests: n(g.cached),
            denied: n(g.denied),
            input_tokens: n(g.input_tokens),
            output_tokens: n(g.output_tokens),
            cost: Micros(n(g.cost_micros)),
        };
        totals.requests += row.requests;
        totals.cached_requests += row.cached_requests;
        totals.denied += row.denied;
        totals.input_tokens += row.input_tokens;
        totals.output_tokens += row.output_tokens;
        totals.cost.0 += row.cost.0;
        out.insert(row.group.clone(), row);
    }
    let currency = store::billing::org_currency(pool, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(UsageReport {
        org_id: org_id.to_string(),
        currency,
        group_by,
        rows: out.into_values().collect(),
        totals,
    })
}
