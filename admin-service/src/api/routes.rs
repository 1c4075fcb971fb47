//! The route table: each handler's `#[utoipa::path]` annotation is the one source of
//! both its axum route and its entry in the OpenAPI document, so neither can list an
//! endpoint the other lacks.

use std::sync::OnceLock;

use axum::{Json, Router};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{
    AppState, api::agents, api::audit, api::billing, api::catalog, api::config, api::explain,
    api::fx, api::invitations, api::keys, api::logs, api::members, api::openapi, api::orgs,
    api::rotation, api::team_members, api::teams, api::tokens, api::usage, sync::outbox, vault,
};

pub use crate::api::openapi::Endpoint;

/// `GET /api/openapi.json`: the document of every route below.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document.",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
async fn serve_openapi() -> Json<&'static OpenApi> {
    Json(document())
}

/// Every endpoint of the API, with its documentation.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(serve_openapi))
        .routes(routes!(members::me))
        .routes(routes!(orgs::list_orgs))
        .routes(routes!(orgs::create_org))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::update_org))
        .routes(routes!(orgs::delete_org))
        .routes(routes!(orgs::toggle_org))
        .routes(routes!(config::get_config))
        .routes(routes!(config::patch_config))
        .routes(routes!(config::put_config))
        .routes(routes!(members::list_members))
        .routes(routes!(members::add_member))
        .routes(routes!(members::update_member))
        .routes(routes!(members::remove_member))
        .routes(routes!(invitations::create_invitation))
        .routes(routes!(invitations::list_invitations))
        .routes(routes!(invitations::revoke_invitation))
        .routes(routes!(invitations::accept_invitation))
        .routes(routes!(teams::create_team))
        .routes(routes!(teams::list_teams))
        .routes(routes!(teams::get_team))
        .routes(routes!(teams::update_team))
        .routes(routes!(teams::delete_team))
        .routes(routes!(team_members::list_team_members))
        .routes(routes!(team_members::add_team_member))
        .routes(routes!(team_members::remove_team_member))
        .routes(routes!(keys::create_key))
        .routes(routes!(keys::list_keys))
        .routes(routes!(keys::get_key))
        .routes(routes!(keys::update_key))
        .routes(routes!(rotation::rotate_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(agents::list_agents))
        .routes(routes!(agents::create_agent))
        .routes(routes!(agents::get_agent))
        .routes(routes!(agents::update_agent))
        .routes(routes!(agents::assign_org))
        .routes(routes!(agents::unassign_org))
        .routes(routes!(members::list_users))
        .routes(routes!(members::create_user))
        .routes(routes!(tokens::list_user_tokens))
        .routes(routes!(tokens::create_user_token))
        .routes(routes!(tokens::list_tokens))
        .routes(routes!(tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(catalog::list_models))
        .routes(routes!(catalog::create_model))
        .routes(routes!(catalog::get_model))
        .routes(routes!(catalog::update_model))
        .routes(routes!(catalog::delete_model))
        .routes(routes!(catalog::list_access_groups))
        .routes(routes!(fx::list_rates))
        .routes(routes!(fx::set_rate))
        .routes(routes!(fx::delete_rate))
        .routes(routes!(catalog::list_route_groups))
        .routes(routes!(catalog::create_route_group))
        .routes(routes!(catalog::update_route_group))
        .routes(routes!(catalog::delete_route_group))
        .routes(routes!(billing::billing_summary))
        .routes(routes!(billing::billing_records))
        .routes(routes!(billing::billing_csv))
        .routes(routes!(usage::org_usage))
        .routes(routes!(logs::org_logs))
        .routes(routes!(logs::log_content))
        .routes(routes!(explain::explain))
        .routes(routes!(audit::org_audit_log))
        .routes(routes!(audit::audit_log))
        .routes(routes!(vault::get_keys))
        .routes(routes!(vault::rotate_master_key))
        .routes(routes!(vault::rotate_edge_keys))
        .routes(routes!(outbox::sync_status))
}

/// The router of every endpoint (state still to be provided).
pub fn router() -> Router<AppState> {
    api().split_for_parts().0
}

/// The OpenAPI document of [`router`], built once (the routes are fixed for the life
/// of the process).
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| openapi::finish(api().split_for_parts().1))
}

/// Every endpoint as documented: method, path, whether it takes a body and a token.
pub fn endpoints() -> &'static [Endpoint] {
    static LIST: OnceLock<Vec<Endpoint>> = OnceLock::new();
    LIST.get_or_init(|| openapi::endpoints(document()))
}
