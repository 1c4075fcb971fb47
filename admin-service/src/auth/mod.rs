//! Admin authentication and role-based access: bearer tokens (hashed at rest),
//! platform admins, and per-organization roles.

pub mod attempts;
pub mod audit;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use sqlx::AnyConnection;

use crate::AppState;
use crate::errors::ApiError;
use crate::store::db::{Db, Writer, new_id, now_ms, random_hex};
use crate::store::{members, orgs, tokens};

/// Prefix of platform-admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "tg-admin-";
/// Prefix of user tokens.
pub const USER_TOKEN_PREFIX: &str = "tg-user-";

/// SHA-256 hex of a secret: the only form in which tokens are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Characters of a token kept in clear to recognise it in listings (`tg-user-1a2b`).
pub const TOKEN_PREFIX_LEN: usize = 13;

/// The recognisable start of a token; the rest is secret.
pub fn token_prefix(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX_LEN).collect()
}

/// Ensures a platform-admin token exists. Returns the token when one was generated
/// (the caller prints it once). A token from the environment replaces every other
/// bootstrap token, so changing `TOLLGATE_ADMIN_TOKEN` and restarting rotates it.
pub async fn bootstrap(pool: &Db, from_env: Option<&str>) -> Result<Option<String>, sqlx::Error> {
    let now = now_ms();
    // A writer of its own: start-up runs before the service's writer exists, and its
    // transaction still takes the cross-replica write lock (outside a request the
    // audit actor is `system`).
    let mut tx = Writer::new(Arc::default()).begin(pool).await?;
    if let Some(token) = from_env {
        let hash = hash_secret(token);
        tokens::revoke_other_bootstrap(tx.conn(), &hash, now).await?;
        // The operator chose this token again: it is the bootstrap token, live.
        tokens::upsert_bootstrap(
            tx.conn(),
            &tokens::NewToken {
                id: &new_id("tok"),
                name: "bootstrap (env)",
                token_hash: &hash,
                token_prefix: &token_prefix(token),
                user_id: None,
                platform_admin: true,
                bootstrap: true,
                expires_at_ms: None,
                now_ms: now,
            },
        )
        .await?;
        tx.commit().await?;
        return Ok(None);
    }
    if tokens::live_admin_count(tx.conn(), now).await? > 0 {
        return Ok(None);
    }
    let token = format!("{ADMIN_TOKEN_PREFIX}{}", random_hex(24));
    tokens::insert(
        tx.conn(),
        &tokens::NewToken {
            id: &new_id("tok"),
            name: "bootstrap",
            token_hash: &hash_secret(&token),
            token_prefix: &token_prefix(&token),
            user_id: None,
            platform_admin: true,
            bootstrap: true,
            expires_at_ms: None,
            now_ms: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Who a new token is for.
#[derive(Debug, Clone, Copy)]
pub enum TokenOwner<'a> {
    /// A user's token (`tg-user-…`).
    User(&'a str),
    /// A platform-admin token (`tg-admin-…`).
    PlatformAdmin,
}

/// Issues a token inside a transaction; returns (token id, token).
pub async fn issue_token(
    conn: &mut AnyConnection,
    owner: TokenOwner<'_>,
    name: &str,
    expires_at_ms: Option<i64>,
) -> Result<(String, String), sqlx::Error> {
    let id = new_id("tok");
    let (prefix, user_id, admin) = match owner {
        TokenOwner::User(uid) => (USER_TOKEN_PREFIX, Some(uid), false),
        TokenOwner::PlatformAdmin => (ADMIN_TOKEN_PREFIX, None, true),
    };
    let token = format!("{prefix}{}", random_hex(24));
    tokens::insert(
        conn,
        &tokens::NewToken {
            id: &id,
            name,
            token_hash: &hash_secret(&token),
            token_prefix: &token_prefix(&token),
            user_id,
            platform_admin: admin,
            bootstrap: false,
            expires_at_ms,
            now_ms: now_ms(),
        },
    )
    .await?;
    Ok((id, token))
}

/// Issues a new token for a user inside a transaction; returns (token id, token).
pub async fn issue_user_token(
    conn: &mut AnyConnection,
    user_id: &str,
    name: &str,
) -> Result<(String, String), sqlx::Error> {
    issue_token(conn, TokenOwner::User(user_id), name, None).await
}

/// Who is calling: resolved from the bearer token.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user behind the token; `None` for platform-admin tokens.
    pub user_id: Option<String>,
    /// Platform admins see and manage every organization.
    pub platform_admin: bool,
    /// The token the request came with.
    pub token_id: String,
}

/// The API token behind a dashboard session (issue 13): a request extension set only
/// by the UI's in-process API calls, accepted by the [`Actor`] extractor.
#[derive(Debug, Clone)]
pub struct SessionToken {
    /// The session's API token id.
    pub token_id: String,
}

/// How stale a token's "last used" may get: one write a minute per token, not one per request.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

impl Actor {
    /// 403 unless the caller is a platform admin.
    pub fn require_platform_admin(&self) -> Result<(), ApiError> {
        if self.platform_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("only platform admins may do this"))
        }
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // --- dashboard sessions (issue 13) ---
        // The UI's in-process API calls carry the session's token id as an extension,
        // which no network request can set; the token is re-checked like a bearer.
        if let Some(session) = parts.extensions.get::<SessionToken>() {
            let token =
                crate::store::ui_sessions::live_token(&state.db, &session.token_id, now_ms())
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("unknown, revoked or expired token"))?;
            crate::auth::audit::record_actor(token.user_id.as_deref().unwrap_or(&session.token_id));
            return Ok(Actor {
                user_id: token.user_id,
                platform_admin: token.platform_admin,
                token_id: session.token_id.clone(),
            });
        }
        // --- end dashboard sessions ---
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))?;
        let now = now_ms();
        // Checked on every request: a revoked or expired token fails the next call.
        let live = tokens::live_by_hash(&state.db, &hash_secret(token), now)
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown, revoked or expired token"))?;
        tokens::touch(&state.db, &live.id, now, LAST_USED_GRANULARITY_MS).await?;
        crate::auth::audit::record_actor(live.user_id.as_deref().unwrap_or(&live.id));
        Ok(Actor {
            user_id: live.user_id,
            platform_admin: live.platform_admin,
            token_id: live.id,
        })
    }
}

/// For endpoints whose credential may be something else (an invitation token): no
/// `Authorization` header is `None`, a bad one is still 401.
impl OptionalFromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(None);
        }
        <Actor as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// A member's role in one organization, most powerful first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Full access, including deleting the org and billing.
    Owner,
    /// Providers, keys, routing, budgets, teams and members (except owners).
    Admin,
    /// Views config and creates keys.
    Member,
    /// Read-only.
    Viewer,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// What an org-scoped request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// See the org, its agents, teams, members and key inventory.
    View,
    /// Read the org config (credentials are never readable).
    ViewConfig,
    /// Create virtual keys (and revoke the ones one created).
    CreateKey,
    /// Change config (providers, routing, limits, budgets, access), teams, any key, agents.
    Manage,
    /// Invite, change and remove members (owners only by owners).
    ManageMembers,
    /// Billing rate and currency, activation toggle, deletion.
    Own,
}

impl Perm {
    /// The least powerful role that has this permission (the seed's role table).
    pub fn min_role(self) -> Role {
        match self {
            Perm::View => Role::Viewer,
            Perm::ViewConfig | Perm::CreateKey => Role::Member,
            Perm::Manage | Perm::ManageMembers => Role::Admin,
            Perm::Own => Role::Owner,
        }
    }
}

/// The caller's standing in one organization, after the check passed.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    /// The organization id.
    pub org_id: String,
    /// The caller's role; platform admins act as owners.
    pub role: Role,
    /// Whether the caller is a platform admin.
    pub platform_admin: bool,
}

/// The caller's role in `org_id`: `None` when not a member (platform admins are owners).
pub async fn role_in(pool: &Db, actor: &Actor, org_id: &str) -> Result<Option<Role>, ApiError> {
    if actor.platform_admin {
        return Ok(Some(Role::Owner));
    }
    let Some(user_id) = &actor.user_id else {
        return Ok(None);
    };
    let role = members::role(pool, org_id, user_id).await?;
    Ok(role.as_deref().and_then(Role::parse))
}

/// Checks that the caller may do `perm` in `org_id`: 404 when the org does not exist
/// or the caller is not a member (other tenants' objects are invisible), 403 when the
/// role is too weak.
pub async fn authorize_org(
    pool: &Db,
    actor: &Actor,
    org_id: &str,
    perm: Perm,
) -> Result<OrgAccess, ApiError> {
    let Some(internal) = orgs::is_internal(pool, org_id).await? else {
        return Err(ApiError::not_found("organization"));
    };
    if internal && !actor.platform_admin {
        return Err(ApiError::not_found("organization"));
    }
    let role = role_in(pool, actor, org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if role > perm.min_role() {
        return Err(ApiError::forbidden(format!(
            "role `{}` may not do this; it needs `{}` or above",
            role.as_str(),
            perm.min_role().as_str()
        )));
    }
    Ok(OrgAccess {
        org_id: org_id.to_string(),
        role,
        platform_admin: actor.platform_admin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_by_power() {
        assert!(
            Role::Owner < Role::Admin && Role::Admin < Role::Member && Role::Member < Role::Viewer
        );
        assert!(Role::Viewer > Perm::ViewConfig.min_role());
        assert!(Role::Member <= Perm::CreateKey.min_role());
        assert_eq!(hash_secret("abc"), policy::kv::key_hash_hex("abc"));
    }
}
