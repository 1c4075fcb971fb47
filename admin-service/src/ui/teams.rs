//! The Teams tab: list, create (grants narrow the org's), delete, and team membership.

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
    let org = segment(&id)?;
    let mut teams = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{org}/teams?limit=500"),
        )
        .await?;
    for team in teams.as_array_mut().into_iter().flatten() {
        let team_id = segment(team["id"].as_str().unwrap_or_default())?.to_string();
        team["members"] = api
            .get(
                &session.token_id,
                &format!("/api/teams/{team_id}/members?limit=500"),
            )
            .await?;
    }
    ctx["teams"] = teams;
    // The org's members, to add to a team (admins only see the form).
    ctx["org_members"] = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{org}/members?limit=500"),
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

/// `POST /orgs/{id}/teams/{team}/members`: adds an org member to the team.
pub async fn add_member(
    Extension(api): Extension<Api>,
    Path((id, team)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/teams/{}/members", segment(&team)?),
        Some(&json!({"user_id": f.string("user_id")})),
        &format!("/orgs/{}/teams", segment(&id)?),
    )
    .await
}

/// `POST /orgs/{id}/teams/{team}/members/{user}/remove`: their keys stay in the team.
pub async fn remove_member(
    Extension(api): Extension<Api>,
    Path((id, team, user)): Path<(String, String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::DELETE,
        &format!("/api/teams/{}/members/{}", segment(&team)?, segment(&user)?),
        None,
        &format!("/orgs/{}/teams", segment(&id)?),
    )
    .await
}
