//! The outbox pusher: one task per sink drains the outbox in id order, compiles the
//! affected records and writes them to the sink, retrying with backoff until it
//! acknowledges. Positions are stored per sink, so a sink that was down catches up
//! and a restart loses nothing. With several replicas on one PostgreSQL database,
//! each sink is pushed by one replica at a time (its push turn); outbox ids follow
//! commit order because writers take turns too (`store::db::Writer`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::auth::Actor;
use crate::errors::ApiResult;
use crate::store::db::{Db, now_ms, rfc3339};
use crate::store::sync::{self as store, Job, SinkTurn};
use crate::sync::compile::{KvWrite, OutboxEntry, compile};
use crate::sync::sinks::Sink;
use crate::vault::Vault;

/// Outbox rows compiled and pushed per batch.
const BATCH: i64 = 256;
/// Even without a wake-up, look for work this often.
const IDLE_POLL: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The commit signal the pushers wait on (defined with the writer that raises it).
pub use crate::store::db::Signal;

/// Registers the sinks and spawns one pusher task per sink.
pub async fn spawn_pushers(
    pool: &Db,
    sinks: Vec<Arc<dyn Sink>>,
    signal: &Signal,
    vault: &Arc<Vault>,
) -> Result<Vec<JoinHandle<()>>, sqlx::Error> {
    let mut handles = Vec::new();
    for (sink, waker) in sinks.into_iter().zip(signal.wakers().iter().cloned()) {
        store::register_sink(pool, sink.name()).await?;
        handles.push(tokio::spawn(run(pool.clone(), sink, waker, vault.clone())));
    }
    Ok(handles)
}

async fn run(pool: Db, sink: Arc<dyn Sink>, waker: Arc<Notify>, vault: Arc<Vault>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match drain_once(&pool, sink.as_ref(), &vault).await {
            Ok(Pushed::Batch) => backoff = MIN_BACKOFF,
            Ok(Pushed::UpToDate) => {
                backoff = MIN_BACKOFF;
                tokio::select! {
                    _ = waker.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            // Another replica is pushing: it drains what this one committed too,
            // unless it had just read the outbox, so look again shortly.
            Ok(Pushed::Busy) => tokio::time::sleep(MIN_BACKOFF).await,
            Err(e) => {
                tracing::warn!(sink = sink.name(), error = %e, retry_in_ms = backoff.as_millis() as u64, "push failed");
                if let Err(db) = store::record_error(&pool, sink.name(), &e, now_ms()).await {
                    tracing::warn!(error = %db, "could not record sink error");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// What one [`drain_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A batch reached the sink; there may be more.
    Batch,
    /// The sink had everything.
    UpToDate,
    /// Another replica holds the sink's push turn.
    Busy,
}

/// Pushes the next batch to `sink`. The read of the position, the push and the
/// position's advance happen in one turn on the sink: a replica that dies midway
/// leaves the position where it was, and the next turn pushes the batch again
/// (pushes are idempotent writes of current state).
pub async fn drain_once(pool: &Db, sink: &dyn Sink, vault: &Vault) -> Result<Pushed, String> {
    let text = |e: sqlx::Error| e.to_string();
    let Some(mut turn) = SinkTurn::take(pool, Job::Push, sink.name())
        .await
        .map_err(text)?
    else {
        return Ok(Pushed::Busy);
    };
    let position = store::position(turn.conn(), sink.name())
        .await
        .map_err(text)?;
    let entries: Vec<OutboxEntry> = store::outbox_after(turn.conn(), position, BATCH)
        .await
        .map_err(text)?
        .into_iter()
        .map(|r| OutboxEntry {
            id: r.id,
            kind: r.kind,
            entity_id: r.entity_id,
        })
        .collect();
    let Some(last) = entries.last().map(|e| e.id) else {
        return Ok(Pushed::UpToDate);
    };
    let mut writes = compile(pool, vault, &entries)
        .await
        .map_err(|e| e.to_string())?;
    if !writes.is_empty() {
        // After the records, in the same push: an edge keeps what it read while the
        // version stands, so the next request after this push reads afresh.
        writes.push(KvWrite::AddToCounter {
            key: policy::kv::RECORDS_VERSION_KEY.to_string(),
            delta: 1,
        });
    }
    sink.apply(&writes).await.map_err(|e| e.to_string())?;
    store::advance(turn.conn(), sink.name(), last, now_ms())
        .await
        .map_err(text)?;
    turn.finish().await.map_err(text)?;
    tracing::debug!(
        sink = sink.name(),
        position = last,
        writes = writes.len(),
        "pushed"
    );
    Ok(Pushed::Batch)
}

/// Replication state of one sink.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Newest outbox id.
    pub outbox_head: i64,
    /// Per-sink state.
    pub sinks: Vec<SinkStatus>,
}

/// `GET /api/sync/status`: platform admins see each sink's lag.
#[utoipa::path(
    get,
    path = "/api/sync/status",
    tag = "sync",
    summary = "Per-sink push lag: outbox head, position, pending, last error (platform admin).",
    responses((status = 200, description = "OK", body = SyncStatus)),
    security(("bearer" = [])),
)]
pub async fn sync_status(State(st): State<AppState>, actor: Actor) -> ApiResult<Json<SyncStatus>> {
    actor.require_platform_admin()?;
    status(&st).await.map(Json)
}

/// Each sink's position and lag behind the outbox head.
pub async fn status(st: &AppState) -> ApiResult<SyncStatus> {
    let head = store::outbox_head(&st.db).await?;
    let mut sinks = Vec::new();
    for name in st.sinks.iter() {
        let Some(p) = store::sink_position(&st.db, name).await? else {
            continue;
        };
        sinks.push(SinkStatus {
            name: name.clone(),
            position: p.position,
            pending: store::pending(&st.db, p.position).await?,
            last_error: p.last_error,
            last_error_at: p.last_error_at_ms.map(rfc3339),
            last_success_at: p.last_success_at_ms.map(rfc3339),
        });
    }
    Ok(SyncStatus {
        outbox_head: head,
        sinks,
    })
}
