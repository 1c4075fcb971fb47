//! Tollgate admin service: the control plane. REST API over organizations, members,
//! teams, virtual keys, agents and the model catalog; every mutation commits with an
//! outbox entry, and pushers compile records (policy's schema) into edge KV sinks.

pub mod api;
pub mod auth;
pub mod billing;
pub mod errors;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod store;
pub mod sync;
pub mod ui;
pub mod vault;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::explain::Explainer;
use crate::auth::attempts::AttemptLimiter;
use crate::errors::ApiError;
use crate::mail::Mailer;
use crate::store::db::Signal;
use crate::store::db::Writer;
use crate::sync::sinks::{Sink, SinkTarget};
use crate::vault::{KeySource, Vault, VaultError};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The admin database.
    pub db: AnyPool,
    /// Serialized writer that pairs mutations with outbox entries.
    pub writer: Writer,
    /// Names of the configured sinks (for the sync status).
    pub sinks: Arc<Vec<String>>,
    /// Failed invitation acceptances per client address.
    pub accept_attempts: Arc<AttemptLimiter>,
    /// Dashboard sign-in links asked for, per email address.
    pub sign_in_link_requests: Arc<AttemptLimiter<String>>,
    /// Sends invitation emails (logs them when no SMTP server is configured).
    pub mailer: Arc<Mailer>,
    /// The master and edge keys protecting provider credentials.
    pub vault: Arc<Vault>,
    /// Runs the edge's policy export for `explain`.
    pub explainer: Arc<Explainer>,
}

/// How to start the service.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The admin database: `sqlite://<path>` or `postgres://…` (see `store::db::connect`).
    pub database_url: String,
    /// Edge key-value stores to push compiled records to and drain usage from.
    pub edge_kv: Vec<SinkTarget>,
    /// Platform-admin token to register instead of generating one.
    pub admin_token: Option<String>,
    /// The master key wrapping each org's data key (none: credentials are refused).
    pub master_key: KeySource,
    /// The edge keys sealing credentials in pushed records, current first.
    pub edge_keys: KeySource,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Opening or migrating the database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Running migrations failed.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A key is malformed or unreadable, or does not open the stored data keys.
    #[error("keys: {0}")]
    Keys(#[from] VaultError),
}

/// A started service: state for the router, pushers running.
pub struct Started {
    /// Handler state.
    pub state: AppState,
    /// A platform-admin token generated on this start (print it once), if any.
    pub generated_admin_token: Option<String>,
    /// The background tasks: per sink, a pusher, a usage drainer and a counter sweeper;
    /// the clean-up of rotated-out key secrets.
    pub pushers: Vec<JoinHandle<()>>,
}

/// Opens the database, bootstraps the admin token and starts one pusher per sink.
pub async fn start(config: &Config) -> Result<Started, StartError> {
    let vault = Vault::load(config.master_key.clone(), config.edge_keys.clone())?;
    let db = store::db::connect(&config.database_url).await?;
    let generated_admin_token = auth::bootstrap(&db, config.admin_token.as_deref()).await?;
    let sinks: Vec<Arc<dyn Sink>> = config.edge_kv.iter().map(SinkTarget::open).collect();
    let mut started = start_with_sinks(db, sinks, generated_admin_token, Arc::new(vault)).await?;
    started.state.explainer = Arc::new(Explainer::new(&config.edge_kv));
    Ok(started)
}

/// Like [`start`] with an open database, arbitrary sinks (tests, other sink kinds)
/// and loaded keys.
pub async fn start_with_sinks(
    db: AnyPool,
    sinks: Vec<Arc<dyn Sink>>,
    generated_admin_token: Option<String>,
    vault: Arc<Vault>,
) -> Result<Started, StartError> {
    let names = sinks.iter().map(|s| s.name().to_string()).collect();
    let signal = Arc::new(Signal::new(sinks.len()));
    let writer = Writer::new(signal.clone()).with_actor(auth::audit::current_actor);
    // Before the pushers start, so what it queues goes out in their first batch.
    vault.prepare(&db, &writer).await?;
    let mut pushers = sync::drain::spawn_drainers(&db, &writer, &sinks);
    pushers.extend(sync::sweep::spawn_sweepers(&db, &sinks));
    pushers.push(api::rotation::spawn_grace_cleanup(&db, &writer));
    pushers.push(api::logs::spawn_content_retention(&db, &writer));
    pushers.extend(sync::outbox::spawn_pushers(&db, sinks, &signal, &vault).await?);
    Ok(Started {
        state: AppState {
            db,
            writer,
            sinks: Arc::new(names),
            accept_attempts: Arc::default(),
            sign_in_link_requests: Arc::new(AttemptLimiter::new(
                ui::session::LINKS_PER_ADDRESS,
                ui::session::LINK_TTL_MS,
            )),
            mailer: Arc::new(Mailer::log_only("http://127.0.0.1:8081")),
            vault,
            explainer: Arc::default(),
        },
        generated_admin_token,
        pushers,
    })
}

/// The HTTP API.
pub async fn app(state: AppState) -> Router {
    // Operator endpoints live beside /api, outside the documented API.
    api::routes::router()
        .route("/metrics", axum::routing::get(metrics::serve_metrics))
        .route("/healthz", axum::routing::get(metrics::healthz))
        .route("/readyz", axum::routing::get(metrics::readyz))
        .merge(api::docs::router())
        .merge(ui::router(&state))
        .fallback(|| async { ApiError::not_found("endpoint") })
        .method_not_allowed_fallback(|| async {
            let mut e = ApiError::not_found("method");
            e.status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
            e.code = "method_not_allowed";
            e.message = "method not allowed on this endpoint".into();
            e
        })
        .layer(axum::middleware::from_fn(auth::audit::actor_scope))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state).await;
    // Client addresses feed the unauthenticated-attempt limit.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
