//! Why denied: `POST /api/organizations/{id}/explain` runs the edge component's own
//! `tollgate:gateway/policy.decide` export (in wasmtime, via `edge_host::PolicyProbe`)
//! against the records in the edge store the admin service pushes to, so the API
//! and the edge cannot disagree. The key is named by its hash: the admin service
//! never has the secret.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Path, State};
use edge_host::{KeyRef, KvConfig, PolicyProbe, RequestFacts};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::AppState;
use crate::api::extract::ApiJson;
use crate::auth::{Actor, Perm, authorize_org};
use crate::errors::{ApiError, ApiResult};
use crate::store::keys::{self, KeyName};
use crate::sync::sinks::SinkTarget;

/// The policy runner over the first edge sink, compiled on first use and then
/// kept (compiling the component takes seconds; most admin processes never explain).
#[derive(Default)]
pub struct Explainer {
    store: Option<KvConfig>,
    probe: OnceCell<PolicyProbe>,
}

impl Explainer {
    /// Explains against the store of the first of `sinks` (none: explain answers 503).
    pub fn new(sinks: &[SinkTarget]) -> Explainer {
        let store = sinks.first().map(|s| match s {
            SinkTarget::Sqlite(path) => KvConfig::Sqlite(path.clone()),
            SinkTarget::Redis(url) => KvConfig::Redis(url.clone()),
        });
        Explainer {
            store,
            probe: OnceCell::new(),
        }
    }

    async fn probe(&self) -> Result<&PolicyProbe, ApiError> {
        let store = self.store.as_ref().ok_or_else(|| {
            ApiError::bad_gateway("no edge store is configured to explain decisions against")
        })?;
        self.probe
            .get_or_try_init(|| PolicyProbe::new(store))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "policy probe unavailable");
                ApiError::bad_gateway("the edge store or the policy component is unavailable")
            })
    }
}

/// Body of `POST /api/organizations/{id}/explain`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    /// The key's id; or
    #[serde(default)]
    key_id: Option<String>,
    /// its `key_prefix` (as the inventory shows it).
    #[serde(default)]
    key_prefix: Option<String>,
    /// The model the request would name.
    #[serde(default)]
    model: Option<String>,
    /// The client address the edge would see.
    #[serde(default)]
    #[schema(schema_with = crate::model::schemas::ip_address)]
    ip: Option<String>,
}

/// The edge's decision and the rule that made it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// Whether the edge would forward the request.
    pub allowed: bool,
    /// The HTTP status the edge answers with (200 when allowed).
    pub status: u16,
    /// The rule that denied, as the edge's error `code` (`model_not_allowed`,
    /// `ip_not_allowed`, `key_revoked`, …); `null` when allowed.
    pub code: Option<String>,
    /// The message the edge would give; `null` when allowed.
    pub message: Option<String>,
    /// The key asked about.
    pub key_id: String,
    /// The model asked about.
    pub model: Option<String>,
    /// The address asked about.
    pub ip: Option<String>,
}

/// `POST /api/organizations/{id}/explain` (admin+): what the edge decides for a
/// key of the org, a model and a client address; counters are not consumed.
#[utoipa::path(
    post,
    path = "/api/organizations/{id}/explain",
    tag = "usage",
    summary = "Why denied: {\"key_id\" | \"key_prefix\", \"model\", \"ip\"} -> {allowed, status, code, message}: the edge component's own policy decision against the records the edge holds; consumes no counter (admin+).",
    params(("id" = String, Path, description = "id")),
    request_body = ExplainRequest,
    responses((status = 200, description = "OK", body = Explanation)),
    security(("bearer" = [])),
)]
pub async fn explain(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<ExplainRequest>,
) -> ApiResult<Json<Explanation>> {
    authorize_org(&st.db, &actor, &org_id, Perm::Manage).await?;
    if let Some(ip) = &body.ip
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(ApiError::invalid("ip", "must be an IPv4 or IPv6 address"));
    }
    let name = match (&body.key_id, &body.key_prefix) {
        (Some(id), None) => KeyName::Id(id),
        (None, Some(prefix)) => KeyName::Prefix(prefix),
        _ => {
            return Err(ApiError::invalid(
                "key_id",
                "name the key by exactly one of key_id and key_prefix",
            ));
        }
    };
    let mut rows = keys::find_in_org(&st.db, &org_id, name).await?;
    if rows.len() > 1 {
        return Err(ApiError::invalid(
            "key_prefix",
            "names more than one key; use key_id",
        ));
    }
    // Another org's key is as absent as no key.
    let (key_id, hash) = rows.pop().ok_or_else(|| ApiError::not_found("key"))?;
    let decision = st
        .explainer
        .probe()
        .await?
        .decide(RequestFacts {
            key: KeyRef::Hash(hash),
            client_ip: body.ip.clone(),
            model: body.model.clone(),
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "policy decide failed");
            ApiError::bad_gateway("the policy component failed to decide")
        })?;
    let nonempty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Json(Explanation {
        allowed: decision.allowed,
        status: decision.status,
        code: nonempty(decision.code),
        message: nonempty(decision.message),
        key_id,
        model: body.model,
        ip: body.ip,
    }))
}
