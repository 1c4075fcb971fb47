//! `GET /api/organizations/{id}/usage`: recorded usage grouped and filtered
//! (viewer+); the totals are computed in `billing::usage`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{Actor, Perm, authorize_org};
use crate::billing::usage::{GroupBy, UsageReport, report};
use crate::errors::{ApiError, ApiResult};
use crate::store::usage::UsageFilter;

/// Query of `GET /api/organizations/{id}/usage`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day included, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    #[param(format = Date)]
    from: Option<String>,
    /// Last day included, `YYYY-MM-DD` (UTC).
    #[serde(default)]
    #[param(format = Date)]
    to: Option<String>,
    #[serde(default)]
    group_by: GroupBy,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

fn check_day(field: &str, v: &Option<String>) -> Result<(), ApiError> {
    let Some(d) = v else { return Ok(()) };
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(d, &format)
        .map(|_| ())
        .map_err(|_| ApiError::invalid(field, format!("{d:?} is not a date (YYYY-MM-DD)")))
}

/// `GET /api/organizations/{id}/usage`: usage per day, model, key, agent or team,
/// filtered by day range, key, agent, team and model (viewer+).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/usage",
    tag = "usage",
    summary = "Usage per day, model, key, agent or team; ?from=&to= (YYYY-MM-DD, UTC), ?group_by=, ?key_id=&agent_id=&team_id=&model= (viewer+).",
    params(("id" = String, Path, description = "id"), UsageQuery),
    responses((status = 200, description = "OK", body = UsageReport)),
    security(("bearer" = [])),
)]
pub async fn org_usage(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Json<UsageReport>> {
    authorize_org(&st.db, &actor, &org_id, Perm::View).await?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    check_day("from", &q.from)?;
    check_day("to", &q.to)?;
    let filter = UsageFilter {
        from_day: q.from.as_deref(),
        to_day: q.to.as_deref(),
        key_id: q.key_id.as_deref(),
        agent_id: q.agent_id.as_deref(),
        team_id: q.team_id.as_deref(),
        model: q.model.as_deref(),
    };
    Ok(Json(report(&st.db, &org_id, q.group_by, &filter).await?))
}
