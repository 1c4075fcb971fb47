//! Invitations by email: the secret goes only to the invited address (never to the
//! inviter), is stored hashed, expires, and is single use. Using it proves the
//! address: accepting verifies the account's email, creates the membership, and
//! returns a user API token to a newly created account.

use axum::Json;
use std::net::SocketAddr;

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::api::members::{check_email, check_grant};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::auth::{Actor, Perm, Role, authorize_org, hash_secret, issue_user_token};
use crate::errors::{ApiError, ApiResult};
use crate::mail::MailError;
use crate::store::db::{new_id, now_ms, random_hex, rfc3339};
use crate::store::invitations::{self, InvitationRow, NewInvitation};
use crate::store::{members, orgs};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Prefix of invitation tokens.
pub const INVITE_PREFIX: &str = "tg-inv-";
const DEFAULT_TTL_HOURS: u32 = 7 * 24;

/// An invitation as listed (never with its token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// Id.
    pub id: String,
    /// Organization.
    pub org_id: String,
    /// Invitee.
    pub email: String,
    /// Role granted on acceptance.
    pub role: Role,
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub status: &'static str,
    /// Expiry.
    pub expires_at: String,
    /// Creation time.
    pub created_at: String,
}

fn invitation_view(r: InvitationRow, now: i64) -> InvitationView {
    let status = if r.accepted_at_ms.is_some() {
        "accepted"
    } else if r.revoked_at_ms.is_some() {
        "revoked"
    } else if r.expires_at_ms <= now {
        "expired"
    } else {
        "pending"
    };
    InvitationView {
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
        id: r.id,
        org_id: r.org_id,
        email: r.email,
        status,
        expires_at: rfc3339(r.expires_at_ms),
        created_at: rfc3339(r.created_at_ms),
    }
}

/// Body of `POST /api/organizations/{id}/invitations`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    #[schema(schema_with = crate::model::schemas::email)]
    email: String,
    role: Role,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    expires_in_hours: Option<u32>,
}

/// `POST /api/organizations/{id}/invitations`: admins invite (owners may invite owners).
/// The secret is emailed to the invitee and never returned: whoever holds it gets the
/// address's account, so the inviter must not.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/invitations",
    tag = "members",
    summary = "Invite by email: the secret is emailed to the invitee, never returned (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = CreateInvitation,
    responses((status = 201, description = "Created", body = InvitationView)),
    security(("bearer" = [])),
)]
pub async fn create_invitation(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let access = authorize_org(&st.db, &actor, &org_id, Perm::ManageMembers).await?;
    check_grant(&access, body.role)?;
    let email = check_email("email", &body.email)?;
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_TTL_HOURS);
    if hours == 0 || hours > 90 * 24 {
        return Err(ApiError::invalid(
            "expires_in_hours",
            "must be between 1 and 2160",
        ));
    }
    let id = new_id("inv");
    let token = format!("{INVITE_PREFIX}{}", random_hex(24));
    let now = now_ms();
    let expires = now + i64::from(hours) * 3_600_000;
    let org_name = orgs::name(&st.db, &org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    // Sent before the row is stored and outside the writer lock: a slow or failing
    // SMTP server never blocks writers, and a failed send stores nothing (a sent
    // secret whose row never lands matches no invitation).
    match st
        .mailer
        .send_invitation(&email, &org_name, body.role.as_str(), &token)
        .await
    {
        Ok(()) => {}
        Err(MailError::Address { field: "email", .. }) => {
            return Err(ApiError::invalid(
                "email",
                "is not a deliverable email address",
            ));
        }
        Err(e) => {
            tracing::warn!(org_id = %org_id, error = %e, "invitation email failed");
            return Err(ApiError::bad_gateway(
                "could not send the invitation email; nothing was stored, try again",
            ));
        }
    }
    let mut tx = st.writer.begin(&st.db).await?;
    let invitation = NewInvitation {
        id: &id,
        org_id: &org_id,
        email: &email,
        role: body.role.as_str(),
        token_hash: &hash_secret(&token),
        expires_at_ms: expires,
        now_ms: now,
    };
    invitations::insert(tx.conn(), &invitation).await?;
    tx.commit().await?;
    tracing::info!(org_id = %org_id, invitation = %id, "invitation created");
    Ok((
        StatusCode::CREATED,
        Json(InvitationView {
            id,
            org_id,
            email,
            role: body.role,
            status: "pending",
            expires_at: rfc3339(expires),
            created_at: rfc3339(now),
        }),
    ))
}

/// `GET /api/organizations/{id}/invitations`: admins.
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/invitations",
    tag = "members",
    summary = "List invitations without tokens (admin+).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<InvitationView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_invitations(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<InvitationView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &org_id, Perm::ManageMembers).await?;
    let rows = invitations::list(&st.db, &org_id, page.after_rowid()?, page.fetch()).await?;
    let now = now_ms();
    Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(|r| invitation_view(r, now)))
}

/// `DELETE /api/invitations/{id}`: admins of the invitation's org revoke it.
#[utoipa::path(
    delete,
    path = "/api/invitations/{id}",
    tag = "members",
    summary = "Revoke a pending invitation (admin+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 204, description = "Done; no body")),
    security(("bearer" = [])),
)]
pub async fn revoke_invitation(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let org_id = invitations::org_of(&st.db, &id).await?;
    let org_id = org_id.ok_or_else(|| ApiError::not_found("invitation"))?;
    authorize_org(&st.db, &actor, &org_id, Perm::ManageMembers)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("invitation")
            } else {
                e
            }
        })?;
    let mut tx = st.writer.begin(&st.db).await?;
    invitations::revoke(tx.conn(), &id, now_ms()).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/invitations/accept`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    token: String,
}

/// Result of accepting: the membership and a user API token, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The (possibly new) user.
    pub user_id: String,
    /// Their email.
    pub email: String,
    /// The organization joined.
    pub org_id: String,
    /// The role granted.
    pub role: Role,
    /// For a user created by this acceptance: a bearer token (`tg-user-…`), shown
    /// only now. Existing users accept with their own token and get none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /api/invitations/accept`: the emailed secret is the credential for a new
/// user (it proves the address); an existing user must also present their own
/// bearer token. Either way the account's email counts as verified from now on.
#[utoipa::path(
    post,
    path = "/api/invitations/accept",
    tag = "members",
    summary = "Accept an invitation with the emailed secret (proof of the address): creates the membership; a new user gets an API token once, an existing user sends their own bearer token.",
    request_body = AcceptInvitation,
    responses((status = 200, description = "OK", body = Accepted)),
)]
pub async fn accept_invitation(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    actor: Option<Actor>,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> ApiResult<Json<Accepted>> {
    let now = now_ms();
    if !st.accept_attempts.allowed(&client.ip(), now) {
        return Err(ApiError::too_many(
            "too many failed invitation attempts from this address; retry in a minute",
        ));
    }
    // The token is checked before the writer lock: guesses never queue writers.
    let hash = hash_secret(body.token.trim());
    if !invitations::token_hash_known(&st.db, &hash).await? {
        st.accept_attempts.count(client.ip(), now);
        return Err(ApiError::not_found("invitation"));
    }
    let mut tx = st.writer.begin(&st.db).await?;
    let row = invitations::by_token_hash(tx.conn(), &hash)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let inv = invitation_view(row, now);
    match inv.status {
        "pending" => {}
        "expired" => return Err(ApiError::gone("invitation has expired")),
        // Used or revoked tokens are as good as unknown.
        _ => return Err(ApiError::not_found("invitation")),
    }
    let known = members::user_by_email(tx.conn(), &inv.email)
        .await?
        .map(|u| u.id);
    // The inviter also holds the invitation token: for an existing account it must not
    // mint that account a token (a way into the user's other organizations).
    let new_user = known.is_none();
    if let Some(uid) = &known {
        match &actor {
            None => {
                return Err(ApiError::unauthorized(
                    "this email already has an account: accept with that user's bearer token",
                ));
            }
            Some(a) if a.user_id.as_deref() != Some(uid.as_str()) => {
                return Err(ApiError::forbidden(
                    "the invitation is for another user's email",
                ));
            }
            Some(_) => {}
        }
    }
    let user_id = members::upsert_user(tx.conn(), &inv.email).await?;
    members::mark_email_verified(tx.conn(), &user_id, now).await?;
    let existing = members::role(tx.conn(), &inv.org_id, &user_id).await?;
    // An invitation only ever raises a role: lowering one (an owner's above all) is
    // PATCH on the membership, with its owner rules.
    let role = existing
        .as_deref()
        .and_then(Role::parse)
        .map_or(inv.role, |r| r.min(inv.role));
    members::upsert_membership(tx.conn(), &inv.org_id, &user_id, role.as_str(), now).await?;
    // Single use: the conditional update makes a concurrent second accept a no-op.
    invitations::mark_accepted(tx.conn(), &inv.id, now).await?;
    let token = if new_user {
        Some(issue_user_token(tx.conn(), &user_id, "invitation").await?.1)
    } else {
        None
    };
    tx.commit().await?;
    Ok(Json(Accepted {
        user_id,
        email: inv.email,
        org_id: inv.org_id,
        role,
        token,
    }))
}
