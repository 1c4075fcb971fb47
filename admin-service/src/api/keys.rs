//! Virtual keys: `sk-tg-…` secrets shown once, stored as SHA-256 only, with model
//! grants (narrowing org and team), IP ACLs, limits, budget and expiry.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{PageParams, PageQuery, Paged};
use crate::api::team_members::check_key_team;
use crate::api::teams::{fetch_team_row, org_model_set};
use crate::auth::{Actor, OrgAccess, Perm, Role, authorize_org};
use crate::errors::{ApiError, ApiResult};
use crate::model::catalog::Catalog;
use crate::model::config::BudgetInput;
use crate::model::keys::KeyRow;
use crate::store::db::{WriteTx, new_id, now_ms, parse_rfc3339, random_hex, rfc3339};
use crate::store::keys::{self as stored, KeyFields, NewKey};
use policy::Limits;

/// Prefix of every virtual key.
pub const KEY_SECRET_PREFIX: &str = "sk-tg-";
/// Characters of the key shown in listings (`sk-tg-` plus 6 hex digits).
pub const KEY_PREFIX_LEN: usize = 12;

/// A key as returned by the API (never the secret, except `key` at creation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Id (used to revoke).
    pub id: String,
    /// Owning org.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// First characters of the key, to recognise it.
    pub key_prefix: String,
    /// The full key: only in the creation response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Team.
    pub team_id: Option<String>,
    /// Bound agent.
    pub agent_id: Option<String>,
    /// Model grants; `null` inherits team and org.
    pub allowed_models: Option<Vec<String>>,
    /// CIDRs allowed (empty: any).
    pub ip_allow: Vec<String>,
    /// CIDRs denied.
    pub ip_deny: Vec<String>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<u64>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<u64>,
    /// Requests per hour.
    pub rate_limit_rph: Option<u64>,
    /// Requests per day.
    pub rate_limit_rpd: Option<u64>,
    /// Tokens per day.
    pub rate_limit_tpd: Option<u64>,
    /// Key budget.
    pub budget: Option<BudgetInput>,
    /// Expiry.
    pub expires_at: Option<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// Creation time.
    pub created_at: String,
    /// The user who created the key (members may edit, rotate and revoke only
    /// their own); `null` for keys made with a platform-admin token.
    pub created_by: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
}

fn key_view(r: &stored::KeyRow) -> Result<KeyView, ApiError> {
    let k = KeyRow::decode(r)?;
    Ok(KeyView {
        id: k.id,
        org_id: k.org_id,
        name: r.name.clone(),
        key_prefix: r.key_prefix.clone(),
        key: None,
        team_id: k.team_id,
        agent_id: k.agent_id,
        allowed_models: k.allowed_models,
        ip_allow: k.ip_allow,
        ip_deny: k.ip_deny,
        rate_limit_rpm: k.limits.rpm,
        rate_limit_tpm: k.limits.tpm,
        rate_limit_rph: k.limits.rph,
        rate_limit_rpd: k.limits.rpd,
        rate_limit_tpd: k.limits.tpd,
        budget: k.budget,
        expires_at: k.expires_at_ms.map(rfc3339),
        status: k.status,
        created_at: rfc3339(r.created_at_ms),
        revoked_at: r.revoked_at_ms.map(rfc3339),
        created_by: k.created_by,
    })
}

/// The key's current view (after a write).
pub async fn fetch_key_view(st: &AppState, id: &str) -> ApiResult<KeyView> {
    let row = stored::get(&st.db, id)
        .await?
        .ok_or_else(ApiError::internal)?;
    key_view(&row)
}

/// Body of `POST /api/organizations/{id}/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::model_patterns_or_null)]
    allowed_models: Option<Vec<String>>,
    #[serde(default)]
    ip_allow: Vec<String>,
    #[serde(default)]
    ip_deny: Vec<String>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpm: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpm: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rph: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpd: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpd: Option<u64>,
    #[serde(default)]
    budget: Option<BudgetInput>,
    #[serde(default)]
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

fn check_cidrs(field: &str, items: &[String]) -> Result<Vec<String>, ApiError> {
    policy::acl::parse_cidrs(items)
        .map(|nets| nets.iter().map(ToString::to_string).collect())
        .map_err(|(i, text)| {
            ApiError::invalid(
                format!("{field}[{i}]"),
                format!("{text:?} is not a CIDR or IP address"),
            )
        })
}

fn parse_expiry(text: &str, now: i64) -> ApiResult<i64> {
    let ms = parse_rfc3339(text)
        .ok_or_else(|| ApiError::invalid("expires_at", "must be an RFC 3339 timestamp"))?;
    if ms <= now {
        return Err(ApiError::invalid("expires_at", "must be in the future"));
    }
    Ok(ms)
}

/// A key's settings as they are to be stored; [`check_settings`] validates them.
struct KeySettings {
    name: String,
    team_id: Option<String>,
    agent_id: Option<String>,
    allowed_models: Option<Vec<String>>,
    ip_allow: Vec<String>,
    ip_deny: Vec<String>,
    limits: Limits,
    budget: Option<BudgetInput>,
    expires_at_ms: Option<i64>,
}

impl KeySettings {
    /// The settings as columns.
    fn fields(&self) -> ApiResult<KeyFields<'_>> {
        Ok(KeyFields {
            name: &self.name,
            team_id: self.team_id.as_deref(),
            agent_id: self.agent_id.as_deref(),
            allowed_models: self
                .allowed_models
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
            ip_allow: serde_json::to_string(&self.ip_allow)?,
            ip_deny: serde_json::to_string(&self.ip_deny)?,
            limits: serde_json::to_string(&self.limits)?,
            budget: self
                .budget
                .as_ref()
                .map(serde_json::to_string)
                .transpose()?,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

/// Which settings a write changes (a create: all). Only those are checked against
/// the org's current state, so renaming a key never fails on a grant the org has
/// narrowed since (the compiler intersects anyway).
#[derive(Clone, Copy)]
struct Changed {
    team: bool,
    agent: bool,
    models: bool,
}

/// Validates and normalizes `s` for a key of `access.org_id` (create and PATCH
/// share it): 422 naming the field, 403 for a member's team outside theirs.
async fn check_settings(
    st: &AppState,
    access: &OrgAccess,
    actor: &Actor,
    s: &mut KeySettings,
    changed: Changed,
) -> ApiResult<()> {
    let org_id = access.org_id.as_str();
    crate::model::keys::check_limits(&s.limits)?;
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    s.ip_allow = check_cidrs("ip_allow", &s.ip_allow)?;
    s.ip_deny = check_cidrs("ip_deny", &s.ip_deny)?;
    if let Some(b) = &s.budget {
        b.validate("budget")?;
    }
    if changed.team || changed.models {
        let catalog = Catalog::load(&st.db).await?;
        let mut parent = org_model_set(st, &catalog, org_id).await?;
        if let Some(team_id) = &s.team_id {
            let team = fetch_team_row(st, team_id)
                .await?
                .filter(|(t, _)| t.org_id == org_id);
            let Some((team, _)) = team else {
                return Err(ApiError::invalid(
                    "team_id",
                    "no such team in this organization",
                ));
            };
            parent = parent.intersect(&catalog.grant_set(team.allowed_models.as_deref()));
        }
        if let Some(grants) = &s.allowed_models {
            let whose = if s.team_id.is_some() {
                "team"
            } else {
                "organization"
            };
            catalog.check_narrows("allowed_models", grants, &parent, whose)?;
        }
    }
    if changed.team {
        check_key_team(st, access, actor, s.team_id.as_deref()).await?;
    }
    if changed.agent
        && let Some(agent_id) = &s.agent_id
    {
        let agent_org = stored::agent_org(&st.db, agent_id).await?;
        if agent_org.as_deref() != Some(org_id) {
            return Err(ApiError::invalid(
                "agent_id",
                "no such agent in this organization",
            ));
        }
    }
    Ok(())
}

/// `POST /api/organizations/{id}/keys`: members and above; returns the key once.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/keys",
    tag = "keys",
    summary = "Create a virtual key; the full key is returned once (member+).",
    params(("id" = String, Path, description = "id")),
    request_body = CreateKey,
    responses((status = 201, description = "Created", body = KeyView)),
    security(("bearer" = [])),
)]
pub async fn create_key(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<KeyView>)> {
    let access = authorize_org(&st.db, &actor, &org_id, Perm::CreateKey).await?;
    let now = now_ms();
    let mut k = KeySettings {
        name: body.name,
        team_id: body.team_id,
        agent_id: body.agent_id,
        allowed_models: body.allowed_models,
        ip_allow: body.ip_allow,
        ip_deny: body.ip_deny,
        limits: Limits {
            rpm: body.rate_limit_rpm,
            rph: body.rate_limit_rph,
            rpd: body.rate_limit_rpd,
            tpm: body.rate_limit_tpm,
            tpd: body.rate_limit_tpd,
        },
        budget: body.budget,
        expires_at_ms: body
            .expires_at
            .as_deref()
            .map(|t| parse_expiry(t, now))
            .transpose()?,
    };
    let all = Changed {
        team: true,
        agent: true,
        models: true,
    };
    check_settings(&st, &access, &actor, &mut k, all).await?;
    let (secret, prefix) = new_secret();
    let id = new_id("key");
    let mut tx = st.writer.begin(&st.db).await?;
    stored::insert(
        tx.conn(),
        &NewKey {
            id: &id,
            org_id: &org_id,
            key_prefix: &prefix,
            key_hash: &policy::kv::key_hash_hex(&secret),
            created_by: actor.user_id.as_deref(),
            created_at_ms: now,
            fields: k.fields()?,
        },
    )
    .await?;
    tx.enqueue("key", &id).await?;
    tx.commit().await?;
    tracing::info!(org_id = %org_id, key_id = %id, key_prefix = %prefix, "virtual key created");
    let mut view = fetch_key_view(&st, &id).await?;
    view.key = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

/// A fresh secret and its listing prefix.
pub fn new_secret() -> (String, String) {
    let secret = format!("{KEY_SECRET_PREFIX}{}", random_hex(24));
    let prefix = secret[..KEY_PREFIX_LEN].to_string();
    (secret, prefix)
}

/// Body of `PATCH /api/keys/{id}`: the create fields; `null` clears (grants: back
/// to inheriting the team's or org's).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    team_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    agent_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::model::schemas::model_patterns_or_null)]
    allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    ip_allow: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    ip_deny: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpm: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rph: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_rpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(maximum = 9007199254740991_u64)]
    rate_limit_tpd: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    budget: Option<Option<BudgetInput>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    expires_at: Option<Option<String>>,
}

/// Below admin, a caller changes only the keys they created.
fn check_creator(access: &OrgAccess, actor: &Actor, key: &KeyRow, verb: &str) -> ApiResult<()> {
    if access.role > Role::Admin && (key.created_by.is_none() || key.created_by != actor.user_id) {
        return Err(ApiError::forbidden(format!(
            "members may {verb} only keys they created"
        )));
    }
    Ok(())
}

/// Loads a key for a change by the caller: admins change any key of the org,
/// members only the keys they created; revoked keys are final (409).
pub async fn key_for_change(
    st: &AppState,
    actor: &Actor,
    id: &str,
    verb: &str,
) -> ApiResult<(KeyRow, OrgAccess)> {
    let (row, access) = authorized_key(st, actor, id, Perm::CreateKey).await?;
    let key = KeyRow::decode(&row)?;
    check_creator(&access, actor, &key, verb)?;
    if key.status == "revoked" {
        return Err(ApiError::conflict(
            "revoked",
            format!("a revoked key cannot be {verb}d; create a new key"),
        ));
    }
    Ok((key, access))
}

/// Re-reads a key inside a write transaction; a key revoked since the checks is 409.
pub async fn active_key_in(tx: &mut WriteTx, id: &str) -> ApiResult<(KeyRow, stored::KeyRow)> {
    let row = stored::get(tx.conn(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    let key = KeyRow::decode(&row)?;
    if key.status == "revoked" {
        return Err(ApiError::conflict(
            "revoked",
            "the key was revoked meanwhile; create a new key",
        ));
    }
    Ok((key, row))
}

/// `PATCH /api/keys/{id}`: the create rules (grants only narrow the team's or org's
/// universe; members only their own keys, in their teams); live at the edge at once.
#[utoipa::path(
    patch,
    path = "/api/keys/{id}",
    tag = "keys",
    summary = "Edit a key: name, limits, models (within its team's or org's), IP lists, budget, expiry, team, agent; null clears (admin+, or the member who created it; revoked keys: 409).",
    params(("id" = String, Path, description = "id")),
    request_body = UpdateKey,
    responses((status = 200, description = "OK", body = KeyView)),
    security(("bearer" = [])),
)]
pub async fn update_key(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateKey>,
) -> ApiResult<Json<KeyView>> {
    let (_, access) = key_for_change(&st, &actor, &id, "edit").await?;
    let now = now_ms();
    let expires = match &body.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(parse_expiry(t, now)?)),
    };
    // Read-modify-write in one transaction: fields this PATCH leaves alone keep what
    // a concurrent PATCH just wrote.
    let mut tx = st.writer.begin(&st.db).await?;
    let (key, row) = active_key_in(&mut tx, &id).await?;
    let pick = |new: Option<Option<u64>>, old: Option<u64>| new.unwrap_or(old);
    let changed = Changed {
        team: body.team_id.is_some(),
        agent: body.agent_id.is_some(),
        models: body.allowed_models.is_some(),
    };
    let mut k = KeySettings {
        name: match body.name {
            Some(n) => n,
            None => row.name,
        },
        team_id: body.team_id.unwrap_or(key.team_id),
        agent_id: body.agent_id.unwrap_or(key.agent_id),
        allowed_models: body.allowed_models.unwrap_or(key.allowed_models),
        ip_allow: body.ip_allow.unwrap_or(key.ip_allow),
        ip_deny: body.ip_deny.unwrap_or(key.ip_deny),
        limits: Limits {
            rpm: pick(body.rate_limit_rpm, key.limits.rpm),
            rph: pick(body.rate_limit_rph, key.limits.rph),
            rpd: pick(body.rate_limit_rpd, key.limits.rpd),
            tpm: pick(body.rate_limit_tpm, key.limits.tpm),
            tpd: pick(body.rate_limit_tpd, key.limits.tpd),
        },
        budget: body.budget.unwrap_or(key.budget),
        expires_at_ms: expires.unwrap_or(key.expires_at_ms),
    };
    check_settings(&st, &access, &actor, &mut k, changed).await?;
    stored::update(tx.conn(), &id, &k.fields()?).await?;
    tx.enqueue("key", &id).await?;
    tx.commit().await?;
    tracing::info!(key_id = %id, "virtual key updated");
    fetch_key_view(&st, &id).await.map(Json)
}

/// `GET /api/organizations/{id}/keys`: the key inventory (prefixes, never secrets).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/keys",
    tag = "keys",
    summary = "Key inventory: names and key_prefix, never keys (viewer+).",
    params(("id" = String, Path, description = "id"), PageQuery),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<KeyView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_keys(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Paged<KeyView>> {
    let page = PageParams::from_query(page)?;
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let rows = stored::list_in_org(&st.db, &org_id, page.after_rowid()?, page.fetch()).await?;
    let page = Paged::from_items(rows, &page, |r| r.page_key.to_string());
    Ok(Paged {
        items: page
            .items
            .iter()
            .map(|r| key_view(&r.key))
            .collect::<ApiResult<_>>()?,
        next_cursor: page.next_cursor,
    })
}

async fn authorized_key(
    st: &AppState,
    actor: &Actor,
    id: &str,
    perm: Perm,
) -> ApiResult<(stored::KeyRow, OrgAccess)> {
    let row = stored::get(&st.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    let access = authorize_org(&st.db, actor, &row.org_id, perm)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("key")
            } else {
                e
            }
        })?;
    Ok((row, access))
}

/// `GET /api/keys/{id}`.
#[utoipa::path(
    get,
    path = "/api/keys/{id}",
    tag = "keys",
    summary = "Key detail without the secret (viewer+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = KeyView)),
    security(("bearer" = [])),
)]
pub async fn get_key(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyView>> {
    let (row, _) = authorized_key(&st, &actor, &id, Perm::View).await?;
    key_view(&row).map(Json)
}

/// `DELETE /api/keys/{id}`: revokes (soft). Admins revoke any key of the org,
/// members the keys they created. Idempotent.
#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "keys",
    summary = "Revoke a key (admin+, or the member who created it).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = KeyView)),
    security(("bearer" = [])),
)]
pub async fn revoke_key(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyView>> {
    let (row, access) = authorized_key(&st, &actor, &id, Perm::CreateKey).await?;
    let key = KeyRow::decode(&row)?;
    check_creator(&access, &actor, &key, "revoke")?;
    if key.status != "revoked" {
        let mut tx = st.writer.begin(&st.db).await?;
        stored::revoke(tx.conn(), &id, now_ms()).await?;
        tx.enqueue("key", &id).await?;
        tx.commit().await?;
        tracing::info!(key_id = %id, "virtual key revoked");
    }
    fetch_key_view(&st, &id).await.map(Json)
}
