//! The dashboard (issue 13): server-rendered pages over the JSON API. Every page is an
//! API client in process: it calls the same router the network reaches, as the
//! signed-in token, so the API's rules are the dashboard's rules.

pub mod agents;
pub mod assets;
pub mod billing;
pub mod charts;
pub mod client;
pub mod config;
pub mod error;
pub mod explain;
pub mod form;
pub mod keys;
pub mod logs;
pub mod members;
pub mod orgs;
pub mod session;
pub mod teams;
pub mod templates;
pub mod usage;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::AppState;
use crate::ui::client::Api;

/// The dashboard's routes, mounted at `/` beside `/api`.
pub fn router(state: &AppState) -> Router<AppState> {
    let api = Api::new(
        crate::api::routes::router()
            .layer(axum::middleware::from_fn(crate::auth::audit::actor_scope))
            .with_state(state.clone()),
    );
    Router::new()
        .route("/", get(orgs::list))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-in/email", post(session::request_link))
        .route(
            "/sign-in/email/{secret}",
            get(session::link_page).post(session::sign_in_by_link),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/orgs", post(orgs::create))
        .route("/orgs/{id}", get(orgs::overview).post(orgs::update))
        .route("/orgs/{id}/toggle", post(orgs::toggle))
        .route("/orgs/{id}/delete", post(orgs::delete))
        .route("/orgs/{id}/keys", get(keys::page).post(keys::create))
        .route("/orgs/{id}/keys/{key}/edit", post(keys::edit))
        .route("/orgs/{id}/keys/{key}/rotate", post(keys::rotate))
        .route("/orgs/{id}/keys/{key}/revoke", post(keys::revoke))
        .route("/orgs/{id}/members", get(members::page))
        .route("/orgs/{id}/members/{user}/role", post(members::change_role))
        .route("/orgs/{id}/members/{user}/remove", post(members::remove))
        .route("/orgs/{id}/invitations", post(members::invite))
        .route("/orgs/{id}/usage", get(usage::page))
        .route("/orgs/{id}/billing", get(billing::page))
        .route("/orgs/{id}/billing.csv", get(billing::csv))
        .route("/orgs/{id}/logs", get(logs::page))
        .route(
            "/orgs/{id}/explain",
            get(explain::page).post(explain::explain),
        )
        .route("/orgs/{id}/teams", get(teams::page).post(teams::create))
        .route("/orgs/{id}/teams/{team}/delete", post(teams::delete))
        .route("/orgs/{id}/teams/{team}/members", post(teams::add_member))
        .route(
            "/orgs/{id}/teams/{team}/members/{user}/remove",
            post(teams::remove_member),
        )
        .route("/orgs/{id}/agents/{agent}/edit", post(agents::edit))
        .route("/orgs/{id}/agents", get(agents::page).post(agents::assign))
        .route("/orgs/{id}/agents/{agent}/unassign", post(agents::unassign))
        .route(
            "/orgs/{id}/config",
            get(config::page).post(config::save_settings),
        )
        .route("/orgs/{id}/config/providers", post(config::save_provider))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(page_headers))
        .layer(Extension(api))
}

/// Pages are never cached (a new key is shown once) nor framed, and run only our scripts.
async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}
