//! The route table: one list drives both the router and the OpenAPI document, so
//! the document lists every endpoint by construction.

use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde_json::Value;

use crate::{
    AppState, api::agents, api::audit, api::billing, api::catalog, api::config, api::explain,
    api::fx, api::invitations, api::keys, api::logs, api::members, api::openapi, api::orgs,
    api::rotation, api::team_members, api::teams, api::tokens, api::usage, sync::outbox, vault,
};

pub use crate::api::openapi::Endpoint;

/// `GET /api/openapi.json`: the document of [`ENDPOINTS`]. Served from here so
/// the document depends on the route table only through its argument.
async fn serve_openapi() -> Json<Value> {
    openapi::serve(ENDPOINTS)
}

macro_rules! endpoints {
    ($( $method:ident $path:literal => $handler:path, $tag:literal, $body:literal, $auth:literal, $summary:literal; )*) => {
        /// Every endpoint of the API.
        pub const ENDPOINTS: &[Endpoint] = &[ $( Endpoint {
            method: stringify!($method),
            path: $path,
            tag: $tag,
            summary: $summary,
            body: $body,
            auth: $auth,
        } ),* ];

        /// The router of every endpoint (state still to be provided).
        pub fn router() -> Router<AppState> {
            Router::new() $( .route($path, $method($handler)) )*
        }
    };
}

endpoints! {
    get "/api/openapi.json" => serve_openapi, "meta", false, false, "This OpenAPI document.";
    get "/api/me" => members::me, "users", false, true, "The caller: platform admin or user, with memberships.";
    get "/api/organizations" => orgs::list_orgs, "organizations", false, true, "List organizations (platform admin: all; users: their own).";
    post "/api/organizations" => orgs::create_org, "organizations", true, true, "Create an organization (platform admin). Slug is derived from the name unless given.";
    get "/api/organizations/{id}" => orgs::get_org, "organizations", false, true, "Organization detail with linked agents (viewer+).";
    patch "/api/organizations/{id}" => orgs::update_org, "organizations", true, true, "Update organization fields (admin+; billing_rate_per_agent with billing_rate_effective_from, currency, active: owner). Slug is immutable; the currency is fixed once the org has usage or agents.";
    delete "/api/organizations/{id}" => orgs::delete_org, "organizations", false, true, "Delete an organization with 0 agents (owner).";
    post "/api/organizations/{id}/toggle" => orgs::toggle_org, "organizations", false, true, "Toggle active/inactive; inactive suspends its keys and agents at the edge (owner).";
    get "/api/organizations/{id}/config" => config::get_config, "config", false, true, "Org config; provider credentials are never returned, only api_key_set (member+).";
    patch "/api/organizations/{id}/config" => config::patch_config, "config", true, true, "Merge-patch the org config: {\"config\": {...}} (admin+).";
    put "/api/organizations/{id}/config" => config::put_config, "config", true, true, "Replace the org config: {\"config\": {...}} (admin+).";
    get "/api/organizations/{id}/members" => members::list_members, "members", false, true, "List members and roles (viewer+).";
    post "/api/organizations/{id}/members" => members::add_member, "members", true, true, "Add an existing user by user_id or email with a role (platform admin; org admins invite).";
    patch "/api/organizations/{id}/members/{user_id}" => members::update_member, "members", true, true, "Change a member's role (admin+; owners only by owners).";
    delete "/api/organizations/{id}/members/{user_id}" => members::remove_member, "members", false, true, "Remove a member at once (admin+; owners only by owners; never the last owner): the keys they created here are revoked, or handed to ?transfer_keys_to=<user_id>.";
    post "/api/organizations/{id}/invitations" => invitations::create_invitation, "members", true, true, "Invite by email: the secret is emailed to the invitee, never returned (admin+).";
    get "/api/organizations/{id}/invitations" => invitations::list_invitations, "members", false, true, "List invitations without tokens (admin+).";
    delete "/api/invitations/{id}" => invitations::revoke_invitation, "members", false, true, "Revoke a pending invitation (admin+).";
    post "/api/invitations/accept" => invitations::accept_invitation, "members", true, false, "Accept an invitation with the emailed secret (proof of the address): creates the membership; a new user gets an API token once, an existing user sends their own bearer token.";
    post "/api/organizations/{id}/teams" => teams::create_team, "teams", true, true, "Create a team; grants must narrow the org's (admin+).";
    get "/api/organizations/{id}/teams" => teams::list_teams, "teams", false, true, "List teams (viewer+).";
    get "/api/teams/{id}" => teams::get_team, "teams", false, true, "Team detail (viewer+).";
    patch "/api/teams/{id}" => teams::update_team, "teams", true, true, "Update a team (admin+).";
    delete "/api/teams/{id}" => teams::delete_team, "teams", false, true, "Delete a team without active keys (admin+).";
    get "/api/teams/{id}/members" => team_members::list_team_members, "teams", false, true, "Team members (viewer+).";
    post "/api/teams/{id}/members" => team_members::add_team_member, "teams", true, true, "Add an org member to the team: {\"user_id\"} (admin+). Members below admin create keys only in their teams once the org has teams.";
    delete "/api/teams/{id}/members/{user_id}" => team_members::remove_team_member, "teams", false, true, "Remove a user from the team (admin+).";
    post "/api/organizations/{id}/keys" => keys::create_key, "keys", true, true, "Create a virtual key; the full key is returned once (member+).";
    get "/api/organizations/{id}/keys" => keys::list_keys, "keys", false, true, "Key inventory: names and key_prefix, never keys (viewer+).";
    get "/api/keys/{id}" => keys::get_key, "keys", false, true, "Key detail without the secret (viewer+).";
    patch "/api/keys/{id}" => keys::update_key, "keys", true, true, "Edit a key: name, limits, models (within its team's or org's), IP lists, budget, expiry, team, agent; null clears (admin+, or the member who created it; revoked keys: 409).";
    post "/api/keys/{id}/rotate" => rotation::rotate_key, "keys", true, true, "Rotate a key: the new full key is returned once; {\"grace_seconds\": N} (default 0, at most 604800) keeps older secrets working N more seconds (admin+, or the member who created it).";
    delete "/api/keys/{id}" => keys::revoke_key, "keys", false, true, "Revoke a key (admin+, or the member who created it).";
    get "/api/agents" => agents::list_agents, "agents", false, true, "List visible agents; ?org_id= filters.";
    post "/api/agents" => agents::create_agent, "agents", true, true, "Create an agent (platform admin, or admin+ of org_id).";
    get "/api/agents/{id}" => agents::get_agent, "agents", false, true, "Agent detail (viewer+ of its org).";
    patch "/api/agents/{id}" => agents::update_agent, "agents", true, true, "Update an agent: billingRate from billingRateEffectiveFrom (owner), name, active (admin+).";
    post "/api/agents/{id}/assign-org" => agents::assign_org, "agents", true, true, "Assign the agent to org_id, moving it from its current org (admin+ of both).";
    post "/api/agents/{id}/unassign-org" => agents::unassign_org, "agents", false, true, "Return the agent to the internal org (admin+).";
    get "/api/users" => members::list_users, "users", false, true, "List users (platform admin).";
    post "/api/users" => members::create_user, "users", true, true, "Create a user by email (platform admin).";
    get "/api/users/{id}/tokens" => tokens::list_user_tokens, "tokens", false, true, "A user's API tokens: name, prefix, created, last used, expiry, status; never the secret (platform admin, or the user).";
    post "/api/users/{id}/tokens" => tokens::create_user_token, "tokens", true, true, "Issue a user API token, returned once; optional expires_at (platform admin, or the user).";
    get "/api/tokens" => tokens::list_tokens, "tokens", false, true, "The caller's API tokens (platform admins: every token); never the secret.";
    post "/api/tokens" => tokens::create_token, "tokens", true, true, "Issue a token for the caller, returned once; optional expires_at.";
    delete "/api/tokens/{id}" => tokens::revoke_token, "tokens", false, true, "Revoke a token; effective on the next request (its owner, or a platform admin).";
    get "/api/models" => catalog::list_models, "catalog", false, true, "Model catalog with access groups and prices per 1M tokens.";
    post "/api/models" => catalog::create_model, "catalog", true, true, "Add a catalog model (platform admin).";
    get "/api/models/{name}" => catalog::get_model, "catalog", false, true, "One catalog model.";
    patch "/api/models/{name}" => catalog::update_model, "catalog", true, true, "Update labels or prices (platform admin).";
    delete "/api/models/{name}" => catalog::delete_model, "catalog", false, true, "Remove a catalog model (platform admin).";
    get "/api/access-groups" => catalog::list_access_groups, "catalog", false, true, "Access groups and their member models.";
    get "/api/fx-rates" => fx::list_rates, "catalog", false, true, "Exchange rates that convert catalog prices into org currencies (any caller).";
    put "/api/fx-rates/{from}/{to}" => fx::set_rate, "catalog", true, true, "Set the rate {\"rate\": \"0.92\"} (units of `to` per `from`); prices compile at it from now on, recorded usage keeps its cost (platform admin).";
    delete "/api/fx-rates/{from}/{to}" => fx::delete_rate, "catalog", false, true, "Delete a rate no priced model needs (platform admin; 409 currency_mismatch otherwise).";
    get "/api/route-groups" => catalog::list_route_groups, "catalog", false, true, "Route groups.";
    post "/api/route-groups" => catalog::create_route_group, "catalog", true, true, "Create a route group (platform admin).";
    patch "/api/route-groups/{name}" => catalog::update_route_group, "catalog", true, true, "Replace a route group's models (platform admin).";
    delete "/api/route-groups/{name}" => catalog::delete_route_group, "catalog", false, true, "Delete an unused route group (platform admin).";
    get "/api/organizations/{id}/billing-summary" => billing::billing_summary, "billing", false, true, "Monthly revenue (agent rates pro-rated by days assigned), token cost, margin and margin %, per-agent breakdown; ?from=&to= (YYYY-MM) (owner).";
    get "/api/organizations/{id}/billing" => billing::billing_records, "billing", false, true, "Per-agent billing records: month, agent, rate, days, tokens in/out, cost, revenue, margin (owner).";
    get "/api/organizations/{id}/billing.csv" => billing::billing_csv, "billing", false, true, "The billing records as CSV, for export before deletion (owner).";
    get "/api/organizations/{id}/usage" => usage::org_usage, "usage", false, true, "Usage per day, model, key, agent or team; ?from=&to= (YYYY-MM-DD, UTC), ?group_by=, ?key_id=&agent_id=&team_id=&model= (viewer+).";
    get "/api/organizations/{id}/logs" => logs::org_logs, "usage", false, true, "Request logs, newest first: every forwarded request and every request denied after its key resolved (time, key, team, agent, model, provider, status, code, latency, tokens, cost, cache); ?from=&to= (RFC 3339), ?key_id=&team_id=&agent_id=&model=&provider=&status=&code=&cached=&denied=, ?limit= (≤1000) &cursor= (viewer+).";
    get "/api/organizations/{id}/logs/{event_id}/content" => logs::log_content, "usage", false, true, "The request and response bodies kept for one log entry while config.audit.store_content is on, until its retention_days end (admin+).";
    post "/api/organizations/{id}/explain" => explain::explain, "usage", true, true, "Why denied: {\"key_id\" | \"key_prefix\", \"model\", \"ip\"} -> {allowed, status, code, message}: the edge component's own policy decision against the records the edge holds; consumes no counter (admin+).";
    get "/api/organizations/{id}/audit-log" => audit::org_audit_log, "audit", false, true, "The org's audit log, newest first: actor, action, entity, before/after with secrets redacted; ?actor=&action=&from=&to= (RFC 3339), ?limit= (≤1000) &cursor= (admin+).";
    get "/api/audit-log" => audit::audit_log, "audit", false, true, "Every audit entry, platform-level ones included; same filters and paging (platform admin).";
    get "/api/platform/keys" => vault::get_keys, "keys-management", false, true, "Key ids of the master key and edge key rings, data keys per master key, and the edge key pushed records are sealed under; never key material (platform admin).";
    post "/api/platform/master-key/rotate" => vault::rotate_master_key, "keys-management", false, true, "Read the master key file again and re-wrap every org data key under its first key, while serving (platform admin).";
    post "/api/platform/edge-keys/rotate" => vault::rotate_edge_keys, "keys-management", false, true, "Read the edge key file again and re-seal and re-push every org record with a credential under its first key (platform admin).";
    get "/api/sync/status" => outbox::sync_status, "sync", false, true, "Per-sink push lag: outbox head, position, pending, last error (platform admin).";
}
