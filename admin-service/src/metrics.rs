//! The admin service's operator endpoints: Prometheus `/metrics` (platform
//! admins; HTTP latency by route, outbox lag per sink, usage drain progress),
//! `/healthz` (the process serves) and `/readyz` (the database answers). Labels
//! are route templates, sink names and statuses, never ids from paths or secrets.

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use telemetry::prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::AppState;
use crate::auth::Actor;
use crate::errors::ApiResult;
use crate::sync::outbox;

/// The process's admin metrics.
struct AdminMetrics {
    registry: Registry,
    http_seconds: HistogramVec,
    outbox_pending: IntGaugeVec,
    drain_last_success: GaugeVec,
    drained_events: IntCounterVec,
}

static METRICS: LazyLock<AdminMetrics> = LazyLock::new(|| {
    let http_seconds = HistogramVec::new(
        HistogramOpts::new(
            "tollgate_admin_http_request_duration_seconds",
            "Admin API latency by method, route template and status.",
        )
        .buckets(telemetry::LATENCY_BUCKETS.to_vec()),
        &["method", "route", "status"],
    )
    .expect("a valid histogram definition");
    let outbox_pending = IntGaugeVec::new(
        Opts::new(
            "tollgate_admin_outbox_pending",
            "Outbox entries a sink has not acknowledged yet (its push lag), as of the scrape.",
        ),
        &["sink"],
    )
    .expect("a valid gauge definition");
    let drain_last_success = GaugeVec::new(
        Opts::new(
            "tollgate_admin_usage_drain_last_success_timestamp_seconds",
            "When a sink's usage spool was last drained without error (lag: time() minus this).",
        ),
        &["sink"],
    )
    .expect("a valid gauge definition");
    let drained_events = IntCounterVec::new(
        Opts::new(
            "tollgate_admin_usage_drained_events_total",
            "Usage spool entries moved into the admin database, by sink.",
        ),
        &["sink"],
    )
    .expect("a valid counter definition");
    let registry = Registry::new();
    for c in [
        Box::new(http_seconds.clone()) as Box<dyn telemetry::prometheus::core::Collector>,
        Box::new(outbox_pending.clone()),
        Box::new(drain_last_success.clone()),
        Box::new(drained_events.clone()),
    ] {
        registry.register(c).expect("metric names are unique");
    }
    AdminMetrics {
        registry,
        http_seconds,
        outbox_pending,
        drain_last_success,
        drained_events,
    }
});

/// Records a successful drain pass of `sink` that moved `events` entries.
pub fn drained(sink: &str, events: usize) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    METRICS
        .drain_last_success
        .with_label_values(&[sink])
        .set(now);
    METRICS
        .drained_events
        .with_label_values(&[sink])
        .inc_by(events as u64);
}

/// Middleware: times every request under its route template (`/api/keys/{id}`),
/// or `unmatched` for paths no route knows (so scanners cannot grow the labels).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // A shared handle on the template, not a copy of it.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    METRICS
        .http_seconds
        .with_label_values(&[method.as_str(), route, response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: platform admins (a Prometheus scrape job with a bearer token).
pub async fn serve_metrics(State(st): State<AppState>, actor: Actor) -> ApiResult<Response> {
    actor.require_platform_admin()?;
    for sink in outbox::status(&st).await?.sinks {
        METRICS
            .outbox_pending
            .with_label_values(&[&sink.name])
            .set(sink.pending);
    }
    Ok((
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(&METRICS.registry),
    )
        .into_response())
}

/// `GET /healthz`: the process serves.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers (what every API call needs).
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match crate::store::db::ping(&st.db).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "database"})),
            )
        }
    }
}
