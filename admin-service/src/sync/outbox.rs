//! The outbox pusher: one task per sink drains the outbox in id order, compiles the
//! affected records and writes them to the sink, retrying with backoff until it
//! acknowledges. Positions are stored per sink, so a sink that was down catches up
//! and a restart loses nothing.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::auth::Actor;
use crate::errors::ApiResult;
use crate::store::db::{now_ms, rfc3339};
use crate::sync::compile::{OutboxEntry, compile};
use crate::sync::sinks::Sink;
use crate::vault::Vault;

/// Outbox rows compiled and pushed per batch.
const BATCH: i64 = 256;
/// Even without a wake-up, look for work this often.
const IDLE_POLL: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Wakes every pusher after a commit that enqueued work.
#[derive(Debug, Default)]
pub struct Signal {
    wakers: Vec<Arc<Notify>>,
}

impl Signal {
    /// A signal with one waker per sink.
    pub fn new(sinks: usize) -> Self {
        Signal {
            wakers: (0..sinks).map(|_| Arc::new(Notify::new())).collect(),
        }
    }

    /// Wakes all pushers (a wake-up with no waiter is kept for the next wait).
    pub fn notify(&self) {
        for w in &self.wakers {
            w.notify_one();
        }
    }
}

/// Registers the sinks and spawns one pusher task per sink.
pub async fn spawn_pushers(
    pool: &AnyPool,
    sinks: Vec<Arc<dyn Sink>>,
    signal: &Signal,
    vault: &Arc<Vault>,
) -> Result<Vec<JoinHandle<()>>, sqlx::Error> {
    let mut handles = Vec::new();
    for (sink, waker) in sinks.into_iter().zip(signal.wakers.iter().cloned()) {
        sqlx::query("INSERT OR IGNORE INTO sink_positions (sink, position) VALUES (?, 0)")
            .bind(sink.name())
            .execute(pool)
            .await?;
        handles.push(tokio::spawn(run(pool.clone(), sink, waker, vault.clone())));
    }
    Ok(handles)
}

async fn run(pool: AnyPool, sink: Arc<dyn Sink>, waker: Arc<Notify>, vault: Arc<Vault>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match drain_once(&pool, sink.as_ref(), &vault).await {
            Ok(true) => backoff = MIN_BACKOFF,
            Ok(false) => {
                backoff = MIN_BACKOFF;
                tokio::select! {
                    _ = waker.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(sink = sink.name(), error = %e, retry_in_ms = backoff.as_millis() as u64, "push failed");
                let recorded = sqlx::query(
                    "UPDATE sink_positions SET last_error = ?, last_error_at_ms = ? WHERE sink = ?",
                )
                .bind(&e)
                .bind(now_ms())
                .bind(sink.name())
                .execute(&pool)
                .await;
                if let Err(db) = recorded {
                    tracing::warn!(error = %db, "could not record sink error");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Pushes the next batch to `sink`; `Ok(false)` when it was already up to date.
pub async fn drain_once(pool: &AnyPool, sink: &dyn Sink, vault: &Vault) -> Result<bool, String> {
    let position: i64 = sqlx::query_scalar("SELECT position FROM sink_positions WHERE sink = ?")
        .bind(sink.name())
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
    let rows =
        sqlx::query("SELECT id, kind, entity_id FROM outbox WHERE id > ? ORDER BY id LIMIT ?")
            .bind(position)
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(false);
    }
    let entries = rows
        .iter()
        .map(|r| {
            Ok(OutboxEntry {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                entity_id: r.try_get("entity_id")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(|e| e.to_string())?;
    let last = entries.last().map_or(position, |e| e.id);
    let writes = compile(pool, vault, &entries)
        .await
        .map_err(|e| e.to_string())?;
    sink.apply(&writes).await.map_err(|e| e.to_string())?;
    sqlx::query("UPDATE sink_positions SET position = ?, last_error = NULL, last_success_at_ms = ? WHERE sink = ?")
        .bind(last)
        .bind(now_ms())
        .bind(sink.name())
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        sink = sink.name(),
        position = last,
        writes = writes.len(),
        "pushed"
    );
    Ok(true)
}

/// Replication state of one sink.
#[derive(Debug, Serialize)]
pub struct SinkStatus {
    /// Sink name (`sqlite:<path>`).
    pub name: String,
    /// Last outbox id the sink acknowledged.
    pub position: i64,
    /// Outbox entries not yet acknowledged.
    pub pending: i64,
    /// The last push error, cleared by the next success.
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<String>,
    /// When the last batch was acknowledged.
    pub last_success_at: Option<String>,
}

/// `GET /api/sync/status` body.
#[derive(Debug, Serialize)]
pub struct SyncStatus {
    /// Newest outbox id.
    pub outbox_head: i64,
    /// Per-sink state.
    pub sinks: Vec<SinkStatus>,
}

/// `GET /api/sync/status`: platform admins see each sink's lag.
pub async fn sync_status(State(st): State<AppState>, actor: Actor) -> ApiResult<Json<SyncStatus>> {
    actor.require_platform_admin()?;
    status(&st).await.map(Json)
}

/// Each sink's position and lag behind the outbox head.
pub async fn status(st: &AppState) -> ApiResult<SyncStatus> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox")
        .fetch_one(&st.db)
        .await?;
    let mut sinks = Vec::new();
    for name in st.sinks.iter() {
        let Some(r) = sqlx::query("SELECT * FROM sink_positions WHERE sink = ?")
            .bind(name)
            .fetch_optional(&st.db)
            .await?
        else {
            continue;
        };
        let position: i64 = r.try_get("position")?;
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE id > ?")
            .bind(position)
            .fetch_one(&st.db)
            .await?;
        sinks.push(SinkStatus {
            name: name.clone(),
            position,
            pending,
            last_error: r.try_get("last_error")?,
            last_error_at: r
                .try_get::<Option<i64>, _>("last_error_at_ms")?
                .map(rfc3339),
            last_success_at: r
                .try_get::<Option<i64>, _>("last_success_at_ms")?
                .map(rfc3339),
        });
    }
    Ok(SyncStatus {
        outbox_head: head,
        sinks,
    })
}
