//! The Agents tab: the org's agents, and a dropdown of every agent the caller sees to
//! assign here; agents in another organization are marked "[assigned elsewhere]".
//! Owners set an agent's billing rate; admins switch agents on and off.

use axum::Extension;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{Html, Response};
use serde_json::{Value, json};

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// `GET /orgs/{id}/agents`.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "agents").await?;
    let all = api.get(&session.token_id, "/api/agents?limit=500").await?;
    let orgs = api
        .get(&session.token_id, "/api/organizations?limit=500")
        .await?;
    // The internal org holds unassigned agents: those are free, not "elsewhere".
    let internal: Vec<&str> = orgs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["is_internal"].as_bool().unwrap_or(false))
        .filter_map(|o| o["id"].as_str())
        .collect();
    let (here, others): (Vec<Value>, Vec<Value>) = all
        .as_array()
        .into_iter()
        .flatten()
        .cloned()
        .partition(|a| a["org_id"].as_str() == Some(id.as_str()));
    let choices: Vec<Value> = others
        .into_iter()
        .map(|mut a| {
            let org = a["org_id"].as_str().unwrap_or_default();
            a["elsewhere"] = Value::from(!internal.contains(&org));
            a
        })
        .collect();
    ctx["agents"] = Value::from(here);
    ctx["choices"] = Value::from(choices);
    Ok(render("org_agents.html", &ctx)?)
}

/// `POST /orgs/{id}/agents`: moves the chosen agent here (admin+ of both orgs).
pub async fn assign(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let agent = segment(f.text("agent_id").unwrap_or_default())?;
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/agents/{agent}/assign-org"),
        Some(&json!({"org_id": segment(&id)?})),
        &format!("/orgs/{id}/agents"),
    )
    .await
}

/// `POST /orgs/{id}/agents/{agent}/unassign`: back to the internal org.
pub async fn unassign(
    Extension(api): Extension<Api>,
    Path((id, agent)): Path<(String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/agents/{}/unassign-org", segment(&agent)?),
        None,
        &format!("/orgs/{}/agents", segment(&id)?),
    )
    .await
}

/// `POST /orgs/{id}/agents/{agent}/edit`: owners set the agent's own billing rate
/// (blank: the org's rate applies), from a date in the open month if given; admins
/// switch it on or off. The API decides who may do which.
pub async fn edit(
    Extension(api): Extension<Api>,
    Path((id, agent)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let body = match f.text("change") {
        Some("rate") => {
            let mut body = json!({"billingRate": f.string("billing_rate")});
            if let Some(from) = f.text("effective_from") {
                body["billingRateEffectiveFrom"] = from.into();
            }
            body
        }
        Some("active") => json!({"active": f.text("active") == Some("true")}),
        _ => {
            return Err(UiError::Api {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: "change: must be rate or active".into(),
            });
        }
    };
    api.act(
        &session.token_id,
        Method::PATCH,
        &format!("/api/agents/{}", segment(&agent)?),
        Some(&body),
        &format!("/orgs/{}/agents", segment(&id)?),
    )
    .await
}
