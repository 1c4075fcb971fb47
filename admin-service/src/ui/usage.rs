//! The Usage tab: requests and cost by day, model, key and team, charted and tabled.

use axum::Extension;
use axum::extract::Path;
use axum::response::Html;
use serde_json::{Value, json};

use crate::ui::charts::{Series, chart};
use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::Session;
use crate::ui::templates::render;

/// The groupings shown, with their headings.
const GROUPS: &[(&str, &str)] = &[
    ("day", "By day"),
    ("model", "By model"),
    ("key", "By key"),
    ("team", "By team"),
];

/// A money or count field of the API as a number for the chart.
pub fn number(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

/// `GET /orgs/{id}/usage`: the last 30 days.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "usage").await?;
    let today = time::OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(29);
    let base = format!("/api/organizations/{}/usage", segment(&id)?);
    let mut sections = Vec::new();
    for (group, heading) in GROUPS {
        let report = api
            .get(
                &session.token_id,
                &format!("{base}?group_by={group}&from={from}&to={today}"),
            )
            .await?;
        let rows = report["rows"].as_array().cloned().unwrap_or_default();
        let labels: Vec<String> = rows
            .iter()
            .map(|r| r["group"].as_str().unwrap_or("(none)").to_string())
            .collect();
        let values = rows.iter().map(|r| number(&r["requests"])).collect();
        let svg = chart(
            &format!("Requests {}", heading.to_lowercase()),
            &labels,
            &[Series {
                name: "requests",
                values,
            }],
        )
        .map_err(|e| UiError::Internal(e.to_string()))?;
        sections.push(json!({
            "group": group, "heading": heading, "report": report, "chart": svg,
        }));
    }
    ctx["sections"] = Value::from(sections);
    ctx["from"] = Value::from(from.to_string());
    ctx["to"] = Value::from(today.to_string());
    Ok(render("org_usage.html", &ctx)?)
}
