//! The Keys tab: inventory with prefixes; create and rotate show the full key once;
//! edit; revoke.

use axum::Extension;
use axum::extract::Path;
use axum::http::Method;
use axum::response::{Html, Response};
use serde_json::{Value, json};

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::form::without_nulls;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// The tab, with `new_key` (a just-issued secret) when there is one to show once.
async fn render_page(
    api: &Api,
    session: &Session,
    org_id: &str,
    new_key: Value,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(api, session, org_id, "keys").await?;
    let mut keys = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{}/keys?limit=500", segment(org_id)?),
        )
        .await?;
    // Admins manage every key; members only those they created (as the API rules).
    let admin = ctx["can"]["manage"].as_bool().unwrap_or(false);
    let me = api.get(&session.token_id, "/api/me").await?;
    let my_id = me["user"]["id"].as_str().map(str::to_string);
    if let Some(list) = keys.as_array_mut() {
        for k in list {
            let mine = my_id.is_some() && k["created_by"].as_str() == my_id.as_deref();
            k["manage"] = Value::Bool(admin || mine);
        }
    }
    ctx["keys"] = keys;
    ctx["new_key"] = new_key;
    Ok(render("org_keys.html", &ctx)?)
}

/// `GET /orgs/{id}/keys`.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    render_page(&api, &session, &id, Value::Null).await
}

/// `POST /orgs/{id}/keys`: the new key is in this response and nowhere else.
pub async fn create(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Html<String>, UiError> {
    let body = without_nulls(json!({
        "name": f.string("name"),
        "allowed_models": f.list("allowed_models"),
        "rate_limit_rpm": f.count("rate_limit_rpm"),
        "expires_at": f.string("expires_at"),
    }));
    let key = api
        .call(
            &session.token_id,
            Method::POST,
            &format!("/api/organizations/{}/keys", segment(&id)?),
            Some(&body),
        )
        .await?;
    render_page(&api, &session, &id, key).await
}

/// `POST /orgs/{id}/keys/{key}/edit`: name and per-minute limit (blank clears it).
pub async fn edit(
    Extension(api): Extension<Api>,
    Path((id, key)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let body = json!({"name": f.string("name"), "rate_limit_rpm": f.count("rate_limit_rpm")});
    api.act(
        &session.token_id,
        Method::PATCH,
        &format!("/api/keys/{}", segment(&key)?),
        Some(&body),
        &format!("/orgs/{}/keys", segment(&id)?),
    )
    .await
}

/// `POST /orgs/{id}/keys/{key}/rotate`: the new secret is shown once.
pub async fn rotate(
    Extension(api): Extension<Api>,
    Path((id, key)): Path<(String, String)>,
    Posted { session, fields: f }: Posted,
) -> Result<Html<String>, UiError> {
    let body = without_nulls(json!({"grace_seconds": f.count("grace_seconds")}));
    let rotated = api
        .call(
            &session.token_id,
            Method::POST,
            &format!("/api/keys/{}/rotate", segment(&key)?),
            Some(&body),
        )
        .await?;
    render_page(&api, &session, &id, rotated).await
}

/// `POST /orgs/{id}/keys/{key}/revoke`.
pub async fn revoke(
    Extension(api): Extension<Api>,
    Path((id, key)): Path<(String, String)>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::DELETE,
        &format!("/api/keys/{}", segment(&key)?),
        None,
        &format!("/orgs/{}/keys", segment(&id)?),
    )
    .await
}
