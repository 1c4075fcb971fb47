//! The Teams tab: list, create (grants narrow the org's), delete.

use axum::Extension;
use axum::extract::Path;
use axum::http::Method;
use axum::response::{Html, Response};
use serde_json::json;

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::form::without_nulls;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// `GET /orgs/{id}/teams`.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "teams").await?;
    ctx["teams"] = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{}/teams?limit=500", segment(&id)?),
        )
        .await?;
    Ok(render("org_teams.html", &ctx)?)
}

/// `POST /orgs/{id}/teams`.
pub async fn create(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let body = without_nulls(json!({
        "name": f.string("name"),
        "allowed_models": f.list("allowed_models"),
        "rate_limit_rpm": f.count("rate_limit_rpm"),
    }));
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/organizations/{}/teams", segment(&id)?),
        Some(&body),
        &format!("/orgs/{id}/teams"),
    )
    .await
}

/// `POST /orgs/{id}/teams/{team}/delete`: the API refuses while the team has active keys.
pub async fn delete(
    Extension(api): Extension<Api>,
    Path((id, team)): Path<(String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::DELETE,
        &format!("/api/teams/{}", segment(&team)?),
        None,
        &format!("/orgs/{}/teams", segment(&id)?),
    )
    .await
}
