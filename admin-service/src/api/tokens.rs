//! API tokens: list (never the secret), issue with an optional expiry, revoke.
//! Users manage their own; platform admins manage every token.

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, TokenOwner, issue_token};
use crate::errors::{ApiError, ApiResult};
use crate::store::db::{now_ms, parse_rfc3339, rfc3339};
use crate::store::members;
use crate::store::tokens::{self, TokenRow};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// A token as listed: who, what, when; never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// Id (used to revoke).
    pub id: String,
    /// Name given at issue.
    pub name: String,
    /// First characters of the token, to recognise it.
    pub prefix: String,
    /// The user it authenticates; `null` for platform-admin tokens.
    pub user_id: Option<String>,
    /// Whether it is a platform-admin token.
    pub platform_admin: bool,
    /// Whether it is the bootstrap token (`TOLLGATE_ADMIN_TOKEN` or the generated one).
    pub bootstrap: bool,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// Issue time.
    pub created_at: String,
    /// Last request made with it (minute resolution).
    pub last_used_at: Option<String>,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// The bearer secret: only in the issue response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn token_view(r: TokenRow, now: i64) -> TokenView {
    let status = if r.revoked_at_ms.is_some() {
        "revoked"
    } else if r.expires_at_ms.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    TokenView {
        id: r.id,
        name: r.name,
        prefix: r.token_prefix,
        user_id: r.user_id,
        platform_admin: r.platform_admin,
        bootstrap: r.bootstrap,
        status,
        created_at: rfc3339(r.created_at_ms),
        last_used_at: r.last_used_at_ms.map(rfc3339),
        expires_at: r.expires_at_ms.map(rfc3339),
        revoked_at: r.revoked_at_ms.map(rfc3339),
        token: None,
    }
}

async fn fetch_token(st: &AppState, id: &str) -> ApiResult<Option<TokenView>> {
    Ok(tokens::get(&st.db, id)
        .await?
        .map(|r| token_view(r, now_ms())))
}

/// Body of `POST /api/tokens` and `POST /api/users/{id}/tokens`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    /// RFC 3339 expiry; absent: never expires (revoke it instead).
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

impl CreateToken {
    fn checked(&self) -> Result<(&str, Option<i64>), ApiError> {
        let name = self.name.as_deref().map_or("api", str::trim);
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::invalid("name", "must be 1-200 characters"));
        }
        let expires = match &self.expires_at {
            None => None,
            Some(text) => {
                let ms = parse_rfc3339(text).ok_or_else(|| {
                    ApiError::invalid("expires_at", "must be an RFC 3339 timestamp")
                })?;
                if ms <= now_ms() {
                    return Err(ApiError::invalid("expires_at", "must be in the future"));
                }
                Some(ms)
            }
        };
        Ok((name, expires))
    }
}

async fn issue(
    st: &AppState,
    owner: TokenOwner<'_>,
    body: &CreateToken,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let (name, expires) = body.checked()?;
    let mut tx = st.writer.begin(&st.db).await?;
    if let TokenOwner::User(uid) = owner {
        let exists = members::user(tx.conn(), uid).await?;
        if exists.is_none() {
            return Err(ApiError::not_found("user"));
        }
    }
    let (id, token) = issue_token(tx.conn(), owner, name, expires).await?;
    tx.commit().await?;
    tracing::info!(token_id = %id, "API token issued");
    let mut view = fetch_token(st, &id).await?.ok_or_else(ApiError::internal)?;
    view.token = Some(token);
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/tokens`: the caller's tokens; platform admins see every token.
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "tokens",
    summary = "The caller's API tokens (platform admins: every token); never the secret.",
    params(PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<TokenView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_tokens(
    State(st): State<AppState>,
    actor: Actor,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TokenView>> {
    let page = PageParams::from_query(page)?;
    let owner = if actor.platform_admin {
        None
    } else {
        Some(actor.user_id.as_deref().unwrap_or(""))
    };
    list_page(&st, owner, &page).await
}

/// One page of the tokens of `user_id` (`None`: every token).
async fn list_page(
    st: &AppState,
    user_id: Option<&str>,
    page: &PageParams,
) -> ApiResult<Paged<TokenView>> {
    let rows = tokens::list(&st.db, user_id, page.after_rowid()?, page.fetch()).await?;
    let now = now_ms();
    Ok(Paged::from_items(rows, page, |r| r.page_key.to_string()).map(|r| token_view(r, now)))
}

/// `POST /api/tokens`: a new token for the caller (a platform admin gets a
/// platform-admin token, a user a token of their own).
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    summary = "Issue a token for the caller, returned once; optional expires_at.",
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = TokenView)),
    security(("bearer" = [])),
)]
pub async fn create_token(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    let owner = match &actor.user_id {
        Some(uid) => TokenOwner::User(uid),
        None => TokenOwner::PlatformAdmin,
    };
    issue(&st, owner, &body).await
}

/// `DELETE /api/tokens/{id}`: revokes one of the caller's tokens (platform admins:
/// any); effective on the next request. Idempotent.
#[utoipa::path(
    delete,
    path = "/api/tokens/{id}",
    tag = "tokens",
    summary = "Revoke a token; effective on the next request (its owner, or a platform admin).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = TokenView)),
    security(("bearer" = [])),
)]
pub async fn revoke_token(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenView>> {
    let owner = tokens::owner(&st.db, &id).await?;
    // Someone else's token is as good as unknown.
    match owner {
        Some(_) if actor.platform_admin => {}
        Some(Some(uid)) if actor.user_id.as_deref() == Some(uid.as_str()) => {}
        _ => return Err(ApiError::not_found("token")),
    }
    let mut tx = st.writer.begin(&st.db).await?;
    tokens::revoke(tx.conn(), &id, now_ms()).await?;
    tx.commit().await?;
    tracing::info!(token_id = %id, "API token revoked");
    fetch_token(&st, &id)
        .await?
        .ok_or_else(ApiError::internal)
        .map(Json)
}

/// The user `{id}` whose tokens the caller may manage: platform admins any, a user
/// only themself.
fn check_user_scope(actor: &Actor, user_id: &str) -> Result<(), ApiError> {
    if actor.platform_admin || actor.user_id.as_deref() == Some(user_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only platform admins manage other users' tokens",
        ))
    }
}

/// `GET /api/users/{id}/tokens`: a user's tokens (platform admin, or the user).
#[utoipa::path(
    get,
    path = "/api/users/{id}/tokens",
    tag = "tokens",
    summary = "A user's API tokens: name, prefix, created, last used, expiry, status; never the secret (platform admin, or the user).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<TokenView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_user_tokens(
    State(st): State<AppState>,
    actor: Actor,
    Path(user_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<TokenView>> {
    let page = PageParams::from_query(page)?;
    check_user_scope(&actor, &user_id)?;
    list_page(&st, Some(&user_id), &page).await
}

/// `POST /api/users/{id}/tokens`: issues a user a token, returned once (platform
/// admin, or the user).
#[utoipa::path(
    post,
    path = "/api/users/{id}/tokens",
    tag = "tokens",
    summary = "Issue a user API token, returned once; optional expires_at (platform admin, or the user).",
    params(("id" = String, Path, description = "id")),
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = TokenView)),
    security(("bearer" = [])),
)]
pub async fn create_user_token(
    State(st): State<AppState>,
    actor: Actor,
    Path(user_id): Path<String>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<TokenView>)> {
    check_user_scope(&actor, &user_id)?;
    issue(&st, TokenOwner::User(&user_id), &body).await
}
