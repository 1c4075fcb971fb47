//! The Config tab: providers with write-only keys, routing and caching (limits and
//! budget are in the org dialog).

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

/// `GET /orgs/{id}/config` (members and above; viewers are told so).
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "config").await?;
    ctx["config"] = api
        .get_if_allowed(
            &session.token_id,
            &format!("/api/organizations/{}/config", segment(&id)?),
        )
        .await?
        .map_or(serde_json::Value::Null, |c| c["config"].clone());
    Ok(render("org_config.html", &ctx)?)
}

/// `POST /orgs/{id}/config/providers`: adds a provider, or replaces the one of that
/// name. The key is write-only: blank keeps the stored one (the API carries it over
/// to the same origin only).
pub async fn save_provider(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let path = format!("/api/organizations/{}/config", segment(&id)?);
    let current = api.get(&session.token_id, &path).await?;
    let mut providers = current["config"]["providers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name = f.string("name");
    let entry = without_nulls(json!({
        "name": name,
        "base_url": f.string("base_url"),
        "api_key": f.string("api_key"),
        "models": f.list("models").unwrap_or_default(),
        "weight": f.count("weight"),
    }));
    match providers.iter_mut().find(|p| p["name"] == name) {
        Some(old) => *old = entry,
        None => providers.push(entry),
    }
    let body = json!({"config": {"providers": providers}});
    api.act(
        &session.token_id,
        Method::PATCH,
        &path,
        Some(&body),
        &format!("/orgs/{id}/config"),
    )
    .await
}

/// `POST /orgs/{id}/config`: routing (strategy, order, attempts, cooldown) and caching.
pub async fn save_settings(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    // A merge patch: a blank field sends `null`, which unsets that setting.
    let routing = json!({
        "strategy": f.text("strategy").unwrap_or("priority"),
        "provider_order": f.list("provider_order"),
        "max_attempts": f.count("max_attempts"),
        "cooldown_failures": f.count("cooldown_failures"),
        "cooldown_seconds": f.count("cooldown_seconds"),
    });
    let body = json!({"config": {
        "routing": routing,
        "caching": {"enabled": f.text("caching") == Some("on"), "ttl_seconds": f.count("ttl_seconds")},
    }});
    api.act(
        &session.token_id,
        Method::PATCH,
        &format!("/api/organizations/{}/config", segment(&id)?),
        Some(&body),
        &format!("/orgs/{id}/config"),
    )
    .await
}
