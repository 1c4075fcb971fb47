//! Usage accounting: drains the usage events the edge spools in each sink's KV into
//! `usage_events` exactly once (the event id is the primary key, and spool entries
//! are deleted only after the insert committed), and answers usage queries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use crate::billing::money::Micros;
use crate::errors::{ApiError, ApiResult};
use crate::store;
use crate::store::db::{Db, Writer, now_ms};
pub use crate::store::usage::GroupBy;
use crate::store::usage::UsageFilter;
use crate::sync::compile::KvWrite;
use crate::sync::sinks::Sink;
use policy::UsageEvent;

/// Spooled events taken per batch.
const BATCH: usize = 500;
/// How often an idle drainer looks at its spool.
const POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Spawns one drainer per sink.
pub fn spawn_drainers(
    pool: &AnyPool,
    writer: &Writer,
    sinks: &[Arc<dyn Sink>],
) -> Vec<JoinHandle<()>> {
    sinks
        .iter()
        .map(|sink| {
            let (pool, writer, sink) = (pool.clone(), writer.clone(), sink.clone());
            tokio::spawn(async move {
                let mut backoff = POLL;
                loop {
                    let drained = drain_once(&pool, &writer, sink.as_ref()).await;
                    if let Ok(n) = drained {
                        crate::metrics::drained(sink.name(), n);
                    }
                    match drained {
                        Ok(n) if n > 0 => backoff = POLL,
                        Ok(_) => {
                            backoff = POLL;
                            tokio::time::sleep(POLL).await;
                        }
                        Err(e) => {
                            tracing::warn!(sink = sink.name(), error = %e, "usage drain failed");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            })
        })
        .collect()
}

/// Moves one batch of spooled events from `sink` into the database; returns how
/// many spool entries were consumed. Safe to repeat after a crash at any point.
pub async fn drain_once(pool: &AnyPool, writer: &Writer, sink: &dyn Sink) -> Result<usize, String> {
    let spooled = sink.spooled_usage(BATCH).await.map_err(|e| e.0)?;
    if spooled.is_empty() {
        return Ok(0);
    }
    let mut tx = writer.begin(pool).await.map_err(|e| e.to_string())?;
    for (key, raw) in &spooled {
        match UsageEvent::decode(raw) {
            Ok(e) => insert(tx.conn(), &e).await.map_err(|e| e.to_string())?,
            Err(err) => {
                tracing::error!(sink = sink.name(), key = %key, error = %err, "unreadable usage event kept in usage_rejects");
                sqlx::query(
                    "INSERT OR IGNORE INTO usage_rejects (sink, kv_key, raw, reason, at_ms) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(sink.name())
                .bind(key)
                .bind(raw)
                .bind(err.to_string())
                .bind(now_ms())
                .execute(tx.conn())
                .await
                .map_err(|e| e.to_string())?;
            }
        }
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    // Only now forget them at the edge: a crash before this line re-drains, and the
    // primary key turns the second insert into a no-op.
    let drained = spooled.len();
    // In the same batch, the edge's count of spooled events drops by as many, so
    // the spool's bound (`usage_spool_full`) frees up exactly what was drained.
    let writes: Vec<KvWrite> = spooled
        .into_iter()
        .map(|(key, _)| KvWrite::Delete { key })
        .chain([KvWrite::AddToCounter {
            key: policy::usage::SPOOL_PENDING_KEY.to_string(),
            delta: -i64::try_from(drained).unwrap_or(i64::MAX),
        }])
        .collect();
    sink.apply(&writes).await.map_err(|e| e.0)?;
    Ok(drained)
}

async fn insert(conn: &mut sqlx::AnyConnection, e: &UsageEvent) -> Result<(), sqlx::Error> {
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT OR IGNORE INTO usage_events (event_id, org_id, team_id, key_id, agent_id, model,
            input_tokens, output_tokens, cost_micros, status, latency_ms, at_ms, day,
            provider, route_group, cached, code, denied)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.event_id)
    .bind(&e.org_id)
    .bind(&e.team_id)
    .bind(&e.key_id)
    .bind(&e.agent_id)
    .bind(&e.model)
    .bind(as_i64(e.input_tokens))
    .bind(as_i64(e.output_tokens))
    .bind(as_i64(e.cost_micros))
    .bind(i64::from(e.status))
    .bind(as_i64(e.latency_ms))
    .bind(as_i64(e.at_ms))
    .bind(utc_day(as_i64(e.at_ms)))
    .bind(&e.provider)
    .bind(&e.route_group)
    .bind(e.cached)
    .bind(&e.code)
    .bind(e.denied)
    .execute(&mut *conn)
    .await?;
    if let Some(c) = &e.content {
        // Kept only while the org still stores content (it may have turned it off
        // since the edge spooled this), until its retention from the request time.
        sqlx::query(
            "INSERT OR IGNORE INTO request_contents
                (event_id, org_id, at_ms, expires_at_ms, request, response, truncated)
             SELECT ?1, id, ?2, ?2 + 86400000 * json_extract(config, '$.audit.retention_days'),
                    ?3, ?4, ?5
             FROM organizations
             WHERE id = ?6 AND json_extract(config, '$.audit.store_content') = 1
               AND json_extract(config, '$.audit.retention_days') > 0",
        )
        .bind(&e.event_id)
        .bind(as_i64(e.at_ms))
        .bind(&c.request)
        .bind(&c.response)
        .bind(c.truncated)
        .bind(&e.org_id)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// `YYYY-MM-DD` (UTC) of a Unix-ms instant.
pub fn utc_day(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
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
