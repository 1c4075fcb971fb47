//! The Members & invitations tab.

use axum::Extension;
use axum::extract::Path;
use axum::http::Method;
use axum::response::{Html, Response};
use serde_json::{Value, json};

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// `GET /orgs/{id}/members`: members (viewer+) and pending invitations (admin+).
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "members").await?;
    let base = format!("/api/organizations/{}", segment(&id)?);
    ctx["members"] = api
        .get(&session.token_id, &format!("{base}/members?limit=500"))
        .await?;
    ctx["invitations"] = api
        .get_if_allowed(&session.token_id, &format!("{base}/invitations?limit=500"))
        .await?
        .unwrap_or(Value::Null);
    Ok(render("org_members.html", &ctx)?)
}

/// `POST /orgs/{id}/invitations`: the secret is emailed, never shown.
pub async fn invite(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let body = json!({"email": f.string("email"), "role": f.string("role")});
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/organizations/{}/invitations", segment(&id)?),
        Some(&body),
        &format!("/orgs/{id}/members"),
    )
    .await
}

/// `POST /orgs/{id}/members/{user}/role`: the API decides who may grant or touch
/// an owner, and keeps the last one.
pub async fn change_role(
    Extension(api): Extension<Api>,
    Path((id, user)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::PATCH,
        &format!(
            "/api/organizations/{}/members/{}",
            segment(&id)?,
            segment(&user)?
        ),
        Some(&json!({"role": f.string("role")})),
        &format!("/orgs/{id}/members"),
    )
    .await
}

/// `POST /orgs/{id}/members/{user}/remove`: their keys here are revoked, or handed
/// to the member chosen in `transfer_keys_to`.
pub async fn remove(
    Extension(api): Extension<Api>,
    Path((id, user)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let mut path = format!(
        "/api/organizations/{}/members/{}",
        segment(&id)?,
        segment(&user)?
    );
    if let Some(to) = f.text("transfer_keys_to") {
        path.push_str("?transfer_keys_to=");
        path.push_str(segment(to)?);
    }
    api.act(
        &session.token_id,
        Method::DELETE,
        &path,
        None,
        &format!("/orgs/{id}/members"),
    )
    .await
}
