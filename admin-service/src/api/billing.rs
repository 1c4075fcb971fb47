//! Billing endpoints (owners): monthly summaries, per-agent records and their CSV
//! export. The figures are computed in `billing`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Actor, Perm, authorize_org};
use crate::billing::{AgentBilling, Billing, MonthRange, MonthSummary, compute, to_csv};
use crate::errors::{ApiError, ApiResult};

/// Body of `GET /api/organizations/{id}/billing-summary`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingSummary {
    /// The organization.
    pub org_id: String,
    /// Currency of every amount.
    pub currency: String,
    /// Months, oldest first.
    pub months: Vec<MonthSummary>,
}

/// Body of `GET /api/organizations/{id}/billing`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingRecords {
    /// The organization.
    pub org_id: String,
    /// Currency of every amount.
    pub currency: String,
    /// One record per agent and month, oldest month first.
    pub records: Vec<AgentBilling>,
}

type RangeQuery = Result<Query<MonthRange>, axum::extract::rejection::QueryRejection>;

async fn billing_of(
    st: &AppState,
    actor: &Actor,
    org_id: &str,
    q: RangeQuery,
) -> ApiResult<Billing> {
    authorize_org(&st.db, actor, org_id, Perm::Own).await?;
    let Query(range) = q.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    compute(&st.db, org_id, &range).await
}

/// `GET /api/organizations/{id}/billing-summary`: monthly revenue, token cost and
/// margin with a per-agent breakdown (owners).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/billing-summary",
    tag = "billing",
    summary = "Monthly revenue (agent rates pro-rated by days assigned), token cost, margin and margin %, per-agent breakdown; ?from=&to= (YYYY-MM) (owner).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = BillingSummary)),
    security(("bearer" = [])),
)]
pub async fn billing_summary(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    q: RangeQuery,
) -> ApiResult<Json<BillingSummary>> {
    let b = billing_of(&st, &actor, &org_id, q).await?;
    Ok(Json(BillingSummary {
        org_id,
        currency: b.currency,
        months: b.months,
    }))
}

/// `GET /api/organizations/{id}/billing`: per-agent billing records (owners).
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/billing",
    tag = "billing",
    summary = "Per-agent billing records: month, agent, rate, days, tokens in/out, cost, revenue, margin (owner).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "OK", body = BillingRecords)),
    security(("bearer" = [])),
)]
pub async fn billing_records(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    q: RangeQuery,
) -> ApiResult<Json<BillingRecords>> {
    let b = billing_of(&st, &actor, &org_id, q).await?;
    Ok(Json(BillingRecords {
        org_id,
        currency: b.currency,
        records: b.months.into_iter().flat_map(|m| m.agents).collect(),
    }))
}

/// `GET /api/organizations/{id}/billing.csv`: the billing records as CSV (owners),
/// for export before deleting an organization.
#[utoipa::path(
    get,
    path = "/api/organizations/{id}/billing.csv",
    tag = "billing",
    summary = "The billing records as CSV, for export before deletion (owner).",
    params(("id" = String, Path, description = "id")),
    responses((status = 200, description = "CSV", content_type = "text/csv", body = String)),
    security(("bearer" = [])),
)]
pub async fn billing_csv(
    State(st): State<AppState>,
    actor: Actor,
    Path(org_id): Path<String>,
    q: RangeQuery,
) -> ApiResult<Response> {
    let b = billing_of(&st, &actor, &org_id, q).await?;
    let body = to_csv(&b, &org_id)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"billing-{org_id}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
