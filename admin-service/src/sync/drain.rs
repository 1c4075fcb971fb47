//! The usage drain: one task per sink moves the events the edge spooled into the
//! admin database, then deletes them from the spool.
//!
//! Exactly once, across restarts and replicas: the event id is the primary key (a
//! re-drained event is a no-op), and on PostgreSQL only the replica holding the
//! sink's drain turn reads and deletes its spool, so the edge's spool counter drops
//! once per event. A replica that dies between commit and delete leaves the events
//! spooled; the next turn inserts nothing for them and deletes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use policy::usage::UsageEvent;
use tokio::task::JoinHandle;

use crate::billing::usage::utc_day;
use crate::store::db::{Db, Writer, now_ms};
use crate::store::sync::{self as store, ContentRow, Job, SinkTurn};
use crate::sync::compile::KvWrite;
use crate::sync::sinks::Sink;

/// Spool entries moved per transaction.
const BATCH: usize = 500;
/// How often an idle drainer looks at its spool.
const POLL: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const DAY_MS: i64 = 86_400_000;

/// Spawns one drainer per sink.
pub fn spawn_drainers(pool: &Db, writer: &Writer, sinks: &[Arc<dyn Sink>]) -> Vec<JoinHandle<()>> {
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
                        // A full batch: more is waiting, so go on at once.
                        Ok(BATCH) => backoff = POLL,
                        // Otherwise let events gather: each pass has a fixed cost (the
                        // turn, two transactions), which a busy edge then pays once
                        // per poll rather than once per handful of requests.
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
/// many spool entries were consumed (0 also while another replica drains it). Safe
/// to repeat after a crash at any point.
pub async fn drain_once(pool: &Db, writer: &Writer, sink: &dyn Sink) -> Result<usize, String> {
    let text = |e: sqlx::Error| e.to_string();
    let Some(turn) = SinkTurn::take(pool, Job::Drain, sink.name())
        .await
        .map_err(text)?
    else {
        return Ok(0);
    };
    let spooled = sink.spooled_usage(BATCH).await.map_err(|e| e.0)?;
    if spooled.is_empty() {
        return Ok(0);
    }
    let mut events = Vec::with_capacity(spooled.len());
    let mut rejects = Vec::new();
    for (key, raw) in &spooled {
        match UsageEvent::decode(raw) {
            Ok(e) => {
                let day = utc_day(i64::try_from(e.at_ms).unwrap_or(i64::MAX));
                events.push((e, day));
            }
            Err(err) => rejects.push((key, raw, err)),
        }
    }
    let mut tx = writer.begin(pool).await.map_err(text)?;
    store::insert_usage(tx.conn(), &events)
        .await
        .map_err(text)?;
    // Per org in this batch: how many days it keeps request bodies, if it does.
    let mut retention: HashMap<String, Option<i64>> = HashMap::new();
    for (e, _) in &events {
        let Some(c) = &e.content else { continue };
        let days = match retention.get(&e.org_id) {
            Some(days) => *days,
            None => {
                let config = store::org_config(tx.conn(), &e.org_id)
                    .await
                    .map_err(text)?;
                let days = config.as_deref().and_then(content_retention_days);
                retention.insert(e.org_id.clone(), days);
                days
            }
        };
        // Kept only while the org still stores content (it may have turned it off
        // since the edge spooled this), until its retention from the request.
        if let Some(days) = days {
            let at_ms = i64::try_from(e.at_ms).unwrap_or(i64::MAX);
            let row = ContentRow {
                event_id: &e.event_id,
                org_id: &e.org_id,
                at_ms,
                expires_at_ms: at_ms.saturating_add(days.saturating_mul(DAY_MS)),
                request: &c.request,
                response: &c.response,
                truncated: c.truncated,
            };
            store::insert_content(tx.conn(), &row).await.map_err(text)?;
        }
    }
    for (key, raw, err) in rejects {
        tracing::error!(sink = sink.name(), key = %key, error = %err, "unreadable usage event kept in usage_rejects");
        store::insert_reject(tx.conn(), sink.name(), key, raw, &err.to_string(), now_ms())
            .await
            .map_err(text)?;
    }
    tx.commit().await.map_err(text)?;
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
    turn.finish().await.map_err(text)?;
    Ok(drained)
}

/// Days an org keeps request bodies, from its stored config: `Some` only while
/// `audit.store_content` is on with a positive `audit.retention_days`.
fn content_retention_days(config: &str) -> Option<i64> {
    let doc: serde_json::Value = serde_json::from_str(config).ok()?;
    let audit = doc.get("audit")?;
    if audit.get("store_content")? != &serde_json::Value::Bool(true) {
        return None;
    }
    audit
        .get("retention_days")?
        .as_i64()
        .filter(|days| *days > 0)
}

#[cfg(test)]
mod tests {
    use super::content_retention_days;

    #[test]
    fn contents_are_kept_only_while_the_org_stores_them_for_some_days() {
        let on = r#"{"audit": {"store_content": true, "retention_days": 7}}"#;
        assert_eq!(content_retention_days(on), Some(7));
        for off in [
            r#"{"audit": {"store_content": false, "retention_days": 7}}"#,
            r#"{"audit": {"store_content": true, "retention_days": 0}}"#,
            r#"{"audit": {"store_content": true}}"#,
            r#"{"audit": {"store_content": 1, "retention_days": 7}}"#,
            r#"{}"#,
            "not json",
        ] {
            assert_eq!(content_retention_days(off), None, "{off}");
        }
    }
}
