//! Key rotation: a new secret replaces a key's secret; the old one keeps working for
//! a grace period and is then refused. Rotated-out hashes live in
//! `key_grace_hashes`; the compiler pushes the key's record under each of them with
//! the grace end as expiry, and a periodic clean-up removes them once ended.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use sqlx::AnyPool;
use tokio::task::JoinHandle;

use crate::AppState;
use crate::api::extract::parse_json;
use crate::api::keys::{KeyView, active_key_in, fetch_key_view, key_for_change, new_secret};
use crate::auth::Actor;
use crate::errors::{ApiError, ApiResult};
use crate::store::db::{WriteTx, Writer, now_ms};
use crate::store::keys as stored;
use policy::kv::{KEY_PREFIX, key_hash_hex};

/// Longest grace a rotation may give the old secret: 7 days.
pub const MAX_GRACE_SECONDS: u64 = 7 * 86_400;
/// How often ended graces are removed from the database and the edge. The edge
/// refuses an ended grace by the record's expiry already; this only tidies up.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(30);

/// Body of `POST /api/keys/{id}/rotate` (optional: no body is a grace of 0).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    #[serde(default)]
    #[schema(maximum = 604800)]
    grace_seconds: u64,
}

/// `POST /api/keys/{id}/rotate`: admins, or the member who created the key. Returns
/// the new secret once. Every secret issued before this rotation works for at most
/// `grace_seconds` more (0: refused at once), never past its own earlier deadline.
#[utoipa::path(
    post,
    path = "/api/keys/{id}/rotate",
    tag = "keys",
    summary = "Rotate a key: the new full key is returned once; {\"grace_seconds\": N} (default 0, at most 604800) keeps older secrets working N more seconds (admin+, or the member who created it).",
    params(("id" = String, Path, description = "id")),
    request_body(content = Option<RotateKey>, description = "Optional: no body rotates without a grace period"),
    responses((status = 200, description = "OK", body = KeyView)),
    security(("bearer" = [])),
)]
pub async fn rotate_key(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<KeyView>> {
    // No body, or `null`, is a rotation without a grace period.
    let body: RotateKey =
        if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
            RotateKey::default()
        } else {
            parse_json(&body)?
        };
    if body.grace_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid(
            "grace_seconds",
            format!("must be at most {MAX_GRACE_SECONDS} (7 days)"),
        ));
    }
    key_for_change(&st, &actor, &id, "rotate").await?;
    let (secret, prefix) = new_secret();
    let now = now_ms();
    let grace_ends = now + body.grace_seconds as i64 * 1000;
    let mut tx = st.writer.begin(&st.db).await?;
    let (key, row) = active_key_in(&mut tx, &id).await?;
    let old_prefix = row.key_prefix;
    stored::set_secret(tx.conn(), &id, &key_hash_hex(&secret), &prefix).await?;
    // Earlier rotated-out secrets never outlive this rotation's grace either: a
    // rotation because a secret leaked must not leave an older one working.
    stored::cap_graces(tx.conn(), &id, grace_ends).await?;
    stored::add_grace(tx.conn(), &key.key_hash, &id, &old_prefix, grace_ends).await?;
    end_graces_in(&mut tx, now).await?;
    tx.enqueue("key", &id).await?;
    tx.commit().await?;
    tracing::info!(key_id = %id, key_prefix = %prefix, old_prefix = %old_prefix, grace_seconds = body.grace_seconds, "virtual key rotated");
    let mut view = fetch_key_view(&st, &id).await?;
    view.key = Some(secret);
    Ok(Json(view))
}

/// Deletes the graces that ended by `now` and queues their edge records' removal.
async fn end_graces_in(tx: &mut WriteTx, now: i64) -> Result<usize, sqlx::Error> {
    let ended = stored::delete_ended_graces(tx.conn(), now).await?;
    for hash in &ended {
        tx.enqueue("kvdel", &format!("{KEY_PREFIX}{hash}")).await?;
    }
    Ok(ended.len())
}

/// Removes every grace that ended by `now` from the database and the edge stores;
/// returns how many ended.
pub async fn end_graces(pool: &AnyPool, writer: &Writer, now: i64) -> Result<usize, sqlx::Error> {
    if !stored::graces_ended(pool, now).await? {
        return Ok(0);
    }
    let mut tx = writer.begin(pool).await?;
    let n = end_graces_in(&mut tx, now).await?;
    tx.commit().await?;
    Ok(n)
}

/// Spawns the periodic clean-up of ended graces.
pub fn spawn_grace_cleanup(pool: &AnyPool, writer: &Writer) -> JoinHandle<()> {
    let (pool, writer) = (pool.clone(), writer.clone());
    crate::jobs::every(CLEANUP_INTERVAL, "rotated-out key secrets", move || {
        let (pool, writer) = (pool.clone(), writer.clone());
        async move { end_graces(&pool, &writer, now_ms()).await.map(|n| n as u64) }
    })
}
