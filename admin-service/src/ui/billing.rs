//! The Billing tab: monthly revenue vs token cost, margin, per-agent table, CSV.

use axum::Extension;
use axum::extract::Path;
use axum::http::{HeaderValue, Method, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::ui::charts::{Series, chart};
use crate::ui::client::{Api, Caller};
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::Session;
use crate::ui::templates::render;
use crate::ui::usage::number;

/// `GET /orgs/{id}/billing` (owners; others see that it is theirs to read).
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "billing").await?;
    let summary = api
        .get_if_allowed(
            &session.token_id,
            &format!("/api/organizations/{}/billing-summary", segment(&id)?),
        )
        .await?;
    if let Some(summary) = &summary {
        let months = summary["months"].as_array().cloned().unwrap_or_default();
        let labels: Vec<String> = months
            .iter()
            .map(|m| m["month"].as_str().unwrap_or_default().to_string())
            .collect();
        let series = |name, field: &str| Series {
            name,
            values: months.iter().map(|m| number(&m[field])).collect(),
        };
        let svg = chart(
            "Monthly revenue vs token cost",
            &labels,
            &[
                series("revenue", "revenue"),
                series("token cost", "token_cost"),
            ],
        )
        .map_err(|e| UiError::Internal(e.to_string()))?;
        ctx["chart"] = Value::from(svg);
        ctx["latest"] = months.last().cloned().unwrap_or(Value::Null);
    }
    ctx["billing"] = summary.unwrap_or(Value::Null);
    Ok(render("org_billing.html", &ctx)?)
}

/// `GET /orgs/{id}/billing.csv`: the API's CSV, as a download.
pub async fn csv(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let reply = api
        .send(
            Caller::Session(&session.token_id),
            Method::GET,
            &format!("/api/organizations/{}/billing.csv", segment(&id)?),
            None,
        )
        .await?;
    if !reply.status.is_success() {
        return Err(reply.ok().err().unwrap_or(UiError::SignIn));
    }
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"billing-{id}.csv\""))
        .map_err(|e| UiError::Internal(e.to_string()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                reply
                    .content_type
                    .unwrap_or(HeaderValue::from_static("text/csv")),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        reply.body,
    )
        .into_response())
}
