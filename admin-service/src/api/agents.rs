//! AI agents: each belongs to exactly one org (unassigned agents live in the
//! internal org) and may carry a custom billing rate.

use crate::AppState;
use crate::api::extract::{ApiJson, nullable, present};
use crate::api::paging::{self, PageParams, Paged};
use crate::auth::{Actor, Perm, Role, authorize_org, role_in};
use crate::billing;
use crate::billing::money::Cents;
use crate::billing::rate_history;
use crate::errors::{ApiError, ApiResult};
use crate::store::agents::{self, AgentRow, NewAgent};
use crate::store::db::{new_id, now_ms, rfc3339};
use crate::store::orgs::{self, INTERNAL_ORG_ID};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// An agent as returned by the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current organization.
    pub org_id: String,
    /// Custom monthly rate, or `null` to use the org's default.
    pub billing_rate: Option<Cents>,
    /// The rate that applies: custom if set, else the org's `billing_rate_per_agent`.
    pub effective_billing_rate: Cents,
    /// Suspended agents are denied at the edge.
    pub active: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

fn agent_view(row: AgentRow) -> AgentView {
    let rate = row.billing_rate_minor;
    AgentView {
        id: row.id,
        name: row.name,
        org_id: row.org_id,
        billing_rate: rate.map(|r| Cents(r as u64)),
        effective_billing_rate: Cents(rate.unwrap_or(row.org_rate_minor) as u64),
        active: row.active,
        created_at: rfc3339(row.created_at_ms),
        updated_at: rfc3339(row.updated_at_ms),
    }
}

/// The agents of one org.
pub async fn list_org_agents(st: &AppState, org_id: &str) -> ApiResult<Vec<AgentView>> {
    let rows = agents::of_org(&st.db, org_id).await?;
    Ok(rows.into_iter().map(agent_view).collect())
}

async fn fetch_agent(st: &AppState, id: &str) -> ApiResult<AgentView> {
    agents::get(&st.db, id)
        .await?
        .map(agent_view)
        .ok_or_else(|| ApiError::not_found("agent"))
}

/// Loads an agent and checks `perm` in its org; an agent in an org the caller cannot
/// see is 404.
async fn authorized_agent(
    st: &AppState,
    actor: &Actor,
    id: &str,
    perm: Perm,
) -> ApiResult<(AgentView, Role)> {
    let agent = fetch_agent(st, id).await?;
    let access = authorize_org(&st.db, actor, &agent.org_id, perm)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found("agent")
            } else {
                e
            }
        })?;
    Ok((agent, access.role))
}

/// Query of `GET /api/agents`.
#[derive(Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentFilter {
    #[serde(default)]
    org_id: Option<String>,
    /// Page size (1-1000).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `x-next-cursor` of the previous page.
    #[serde(default)]
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// `GET /api/agents`: agents the caller can see, optionally of one org.
#[utoipa::path(
    get,
    path = "/api/agents",
    tag = "agents",
    summary = "List visible agents; ?org_id= filters.",
    params(AgentFilter),
    responses((status = 200, description = "One page; more follow while the `x-next-cursor` header is present", body = Vec<AgentView>, headers(("x-next-cursor" = String, description = "Cursor of the next page (absent on the last page)")))),
    security(("bearer" = [])),
)]
pub async fn list_agents(
    State(st): State<AppState>,
    actor: Actor,
    filter: Result<Query<AgentFilter>, QueryRejection>,
) -> ApiResult<Paged<AgentView>> {
    let Query(filter) = paging::query(filter)?;
    let page = PageParams::new(filter.limit, filter.cursor)?;
    let after = page.after_rowid()?;
    if let Some(org) = &filter.org_id {
        authorize_org(&st.db, &actor, org, Perm::View).await?;
    }
    let member = if actor.platform_admin {
        None
    } else {
        Some(actor.user_id.as_deref().unwrap_or(""))
    };
    let rows = agents::list(
        &st.db,
        member,
        filter.org_id.as_deref(),
        after,
        page.fetch(),
    )
    .await?;
    Ok(Paged::from_items(rows, &page, |r| r.page_key.to_string()).map(agent_view))
}

/// Body of `POST /api/agents`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: String,
    #[serde(default, alias = "orgId")]
    org_id: Option<String>,
    #[serde(default, alias = "billingRate")]
    billing_rate: Option<Cents>,
    #[serde(default)]
    active: Option<bool>,
}

/// `POST /api/agents`: platform admins (any org, default internal) or admins of the target org.
#[utoipa::path(
    post,
    path = "/api/agents",
    tag = "agents",
    summary = "Create an agent (platform admin, or admin+ of org_id).",
    request_body = CreateAgent,
    responses((status = 201, description = "Created", body = AgentView)),
    security(("bearer" = [])),
)]
pub async fn create_agent(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentView>)> {
    if body.name.trim().is_empty() || body.name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    let org_id = body
        .org_id
        .clone()
        .unwrap_or_else(|| INTERNAL_ORG_ID.to_string());
    let access = authorize_org(&st.db, &actor, &org_id, Perm::Manage).await?;
    if body.billing_rate.is_some() && access.role > Role::Owner {
        return Err(ApiError::forbidden("billing rates are set by owners only"));
    }
    let id = new_id("agt");
    let now = now_ms();
    let mut tx = st.writer.begin(&st.db).await?;
    let agent = NewAgent {
        id: &id,
        name: body.name.trim(),
        org_id: &org_id,
        billing_rate_minor: body.billing_rate.map(|c| c.0 as i64),
        active: body.active.unwrap_or(true),
        now_ms: now,
    };
    agents::insert(tx.conn(), &agent).await?;
    billing::record_assignment(tx.conn(), &id, &org_id, now).await?;
    rate_history::set_agent_rate(
        tx.conn(),
        &id,
        rate_history::SINCE_ALWAYS,
        body.billing_rate.map(|c| c.0 as i64),
    )
    .await?;
    tx.enqueue("agent", &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(fetch_agent(&st, &id).await?)))
}

/// `GET /api/agents/{id}`.
#[utoipa::path(
    get,
    path = "/api/agents/{id}",
    tag = "agents",
    summary = "Agent detail (viewer+ of its org).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = AgentView)),
    security(("bearer" = [])),
)]
pub async fn get_agent(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentView>> {
    Ok(Json(
        authorized_agent(&st, &actor, &id, Perm::View).await?.0,
    ))
}

/// Body of `PATCH /api/agents/{id}`: `billingRate` (as in the AgenticMail API; `null`
/// reverts to the org's default rate) from `billingRateEffectiveFrom` (a day of the
/// current UTC month, default today), `name`, `active`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(
        default,
        alias = "billing_rate",
        rename = "billingRate",
        deserialize_with = "nullable"
    )]
    billing_rate: Option<Option<Cents>>,
    #[serde(
        default,
        alias = "billing_rate_effective_from",
        rename = "billingRateEffectiveFrom",
        deserialize_with = "present"
    )]
    #[schema(nullable = false, format = Date)]
    billing_rate_effective_from: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    active: Option<bool>,
}

/// `PATCH /api/agents/{id}`: owners set the rate; admins rename and (de)activate.
#[utoipa::path(
    patch,
    path = "/api/agents/{id}",
    tag = "agents",
    summary = "Update an agent: billingRate from billingRateEffectiveFrom (owner), name, active (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = UpdateAgent,
    responses((status = 200, description = "OK", body = AgentView)),
    security(("bearer" = [])),
)]
pub async fn update_agent(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> ApiResult<Json<AgentView>> {
    let (_, role) = authorized_agent(&st, &actor, &id, Perm::Manage).await?;
    if body.billing_rate.is_some() && role > Role::Owner {
        return Err(ApiError::forbidden("billing rates are set by owners only"));
    }
    if let Some(n) = &body.name
        && (n.trim().is_empty() || n.chars().count() > 200)
    {
        return Err(ApiError::invalid("name", "must be 1-200 characters"));
    }
    if body.billing_rate_effective_from.is_some() && body.billing_rate.is_none() {
        return Err(ApiError::invalid(
            "billingRateEffectiveFrom",
            "applies only together with billingRate",
        ));
    }
    let now = now_ms();
    let rate_day = rate_history::effective_day(
        "billingRateEffectiveFrom",
        body.billing_rate_effective_from.as_deref(),
        now,
    )?;
    let mut tx = st.writer.begin(&st.db).await?;
    if let Some(rate) = body.billing_rate {
        rate_history::set_agent_rate(tx.conn(), &id, &rate_day, rate.map(|c| c.0 as i64)).await?;
    }
    agents::update(
        tx.conn(),
        &id,
        body.name.as_deref().map(str::trim),
        body.active,
        now,
    )
    .await?;
    tx.enqueue("agent", &id).await?;
    tx.commit().await?;
    fetch_agent(&st, &id).await.map(Json)
}

/// Body of `POST /api/agents/{id}/assign-org`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignOrg {
    #[serde(alias = "orgId")]
    org_id: String,
}

async fn move_agent(st: &AppState, id: &str, to: &str) -> ApiResult<AgentView> {
    let mut tx = st.writer.begin(&st.db).await?;
    let now = now_ms();
    agents::set_org(tx.conn(), id, to, now).await?;
    // Each org bills the agent for its days there.
    billing::record_assignment(tx.conn(), id, to, now).await?;
    // The agent record carries its org: keys bound to it in the old org stop working.
    tx.enqueue("agent", id).await?;
    tx.commit().await?;
    fetch_agent(st, id).await
}

/// `POST /api/agents/{id}/assign-org`: moves the agent (from any org) to `org_id`.
/// Needs admin in both the source and the target org (platform admins: anywhere).
#[utoipa::path(
    post,
    path = "/api/agents/{id}/assign-org",
    tag = "agents",
    summary = "Assign the agent to org_id, moving it from its current org (admin+ of both).",
    params(("id" = String, Path, description = "id")),
    request_body = AssignOrg,
    responses((status = 200, description = "OK", body = AgentView)),
    security(("bearer" = [])),
)]
pub async fn assign_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignOrg>,
) -> ApiResult<Json<AgentView>> {
    let (agent, _) = authorized_agent(&st, &actor, &id, Perm::Manage).await?;
    if body.org_id == INTERNAL_ORG_ID && !actor.platform_admin {
        return Err(ApiError::invalid(
            "org_id",
            "use unassign-org to return an agent to the internal org",
        ));
    }
    match role_in(&st.db, &actor, &body.org_id).await? {
        // Not a member: the target is as good as nonexistent to this caller.
        None => return Err(ApiError::not_found("organization").with_field("org_id")),
        Some(r) if r > Role::Admin => {
            return Err(ApiError::forbidden(
                "assigning agents needs `admin` in the target org",
            ));
        }
        Some(_) => {}
    }
    if !orgs::exists(&st.db, &body.org_id).await? {
        return Err(ApiError::not_found("organization").with_field("org_id"));
    }
    if agent.org_id == body.org_id {
        return Ok(Json(agent));
    }
    move_agent(&st, &id, &body.org_id).await.map(Json)
}

/// `POST /api/agents/{id}/unassign-org`: returns the agent to the internal org.
#[utoipa::path(
    post,
    path = "/api/agents/{id}/unassign-org",
    tag = "agents",
    summary = "Return the agent to the internal org (admin+).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = AgentView)),
    security(("bearer" = [])),
)]
pub async fn unassign_org(
    State(st): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentView>> {
    let (agent, _) = authorized_agent(&st, &actor, &id, Perm::Manage).await?;
    if agent.org_id == INTERNAL_ORG_ID {
        return Ok(Json(agent));
    }
    move_agent(&st, &id, INTERNAL_ORG_ID).await.map(Json)
}
