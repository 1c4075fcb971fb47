//! Organization cards, the create/edit dialog (limits, budget, asset access), toggle,
//! delete, and the Overview tab; also the context every org tab starts from.

use axum::Extension;
use axum::extract::{Path, Query};
use axum::http::Method;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::form::{Fields, without_nulls};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// What a role may do, so pages show only the controls it may use (the API decides anyway).
pub fn abilities(role: &str) -> Value {
    let admin = matches!(role, "owner" | "admin");
    json!({
        "own": role == "owner",
        "manage": admin,
        "members": admin,
        "create_key": admin || role == "member",
        "view_config": admin || role == "member",
    })
}

/// Path segments the UI puts in API paths must stay one segment.
pub fn segment(id: &str) -> Result<&str, UiError> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(UiError::Api {
            status: axum::http::StatusCode::NOT_FOUND,
            message: "organization not found".into(),
        })
    }
}

/// The org (as the API shows it to the caller), the caller's abilities, the tab.
pub async fn org_context(
    api: &Api,
    session: &Session,
    org_id: &str,
    tab: &str,
) -> Result<Value, UiError> {
    let org = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{}", segment(org_id)?),
        )
        .await?;
    let role = org["role"].as_str().unwrap_or("viewer").to_string();
    Ok(session.context(json!({"org": org, "can": abilities(&role), "tab": tab})))
}

/// Whether the caller is a platform admin (only they create organizations).
async fn platform_admin(api: &Api, session: &Session) -> Result<bool, UiError> {
    let me = api.get(&session.token_id, "/api/me").await?;
    Ok(me["platform_admin"].as_bool().unwrap_or(false))
}

/// `GET /`: the caller's organizations as cards.
pub async fn list(
    Extension(api): Extension<Api>,
    session: Session,
) -> Result<Html<String>, UiError> {
    let orgs = api
        .get(&session.token_id, "/api/organizations?limit=500")
        .await?;
    let cards: Vec<Value> = orgs
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let mut card = o.clone();
            card["can"] = abilities(o["role"].as_str().unwrap_or("viewer"));
            card
        })
        .collect();
    let admin = platform_admin(&api, &session).await?;
    Ok(render(
        "orgs.html",
        &session.context(json!({"orgs": cards, "platform_admin": admin})),
    )?)
}

/// The org fields of the dialog, as the API's org body.
fn org_body(f: &Fields, creating: bool) -> Value {
    let mut body = json!({
        "name": f.string("name"),
        "currency": f.string("currency"),
        "billing_rate_per_agent": f.string("billing_rate_per_agent"),
        "contact_email": f.string("contact_email"),
    });
    if creating {
        body["slug"] = f.string("slug");
    }
    without_nulls(body)
}

/// The limits, budget and asset access of the dialog, as a config merge patch; a blank
/// field clears its setting (`null`).
fn config_patch(f: &Fields) -> Value {
    let budgets = match f.text("budget_limit") {
        None => Value::Null,
        Some(limit) => json!({
            "limit": limit,
            "period": f.text("budget_period").unwrap_or("monthly"),
        }),
    };
    let access = match f.list("access_models") {
        None => Value::Null,
        Some(models) => json!({"models": models}),
    };
    json!({"config": {
        "rate_limiting": {
            "rpm": f.count("rpm"),
            "tpm": f.count("tpm"),
            "rpd": f.count("rpd"),
            "tpd": f.count("tpd"),
        },
        "budgets": budgets,
        "access": access,
    }})
}

/// `POST /orgs`: creates the org, then applies its limits; if the API refuses those,
/// the new org is deleted again so nothing half-made remains.
pub async fn create(
    Extension(api): Extension<Api>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let org = api
        .call(
            &session.token_id,
            Method::POST,
            "/api/organizations",
            Some(&org_body(&f, true)),
        )
        .await?;
    let id = org["id"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/organizations/{id}");
    let patched = api
        .call(
            &session.token_id,
            Method::PATCH,
            &format!("{path}/config"),
            Some(&config_patch(&f)),
        )
        .await;
    if let Err(e) = patched {
        api.call(&session.token_id, Method::DELETE, &path, None)
            .await?;
        return Err(e);
    }
    Ok(Redirect::to(&format!("/orgs/{id}")).into_response())
}

/// `POST /orgs/{id}`: edits the org and its limits, budget and access.
pub async fn update(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, fields: f }: Posted,
) -> Result<Response, UiError> {
    let path = format!("/api/organizations/{}", segment(&id)?);
    // Config first: it is the part most likely refused, and the org fields stay as they were.
    api.call(
        &session.token_id,
        Method::PATCH,
        &format!("{path}/config"),
        Some(&config_patch(&f)),
    )
    .await?;
    let mut body = org_body(&f, false);
    // Rate and currency are the owner's; others' forms do not carry them.
    if !f.0.contains_key("billing_rate_per_agent") {
        body.as_object_mut().map(|m| m.remove("currency"));
    }
    api.act(
        &session.token_id,
        Method::PATCH,
        &path,
        Some(&body),
        &format!("/orgs/{id}"),
    )
    .await
}

/// `POST /orgs/{id}/toggle`.
pub async fn toggle(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::POST,
        &format!("/api/organizations/{}/toggle", segment(&id)?),
        None,
        "/",
    )
    .await
}

/// `POST /orgs/{id}/delete`: the API refuses while agents are assigned.
pub async fn delete(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted,
) -> Result<Response, UiError> {
    api.act(
        &session.token_id,
        Method::DELETE,
        &format!("/api/organizations/{}", segment(&id)?),
        None,
        "/",
    )
    .await
}

/// Query of the Overview tab.
#[derive(Debug, serde::Deserialize)]
pub struct OverviewQuery {
    /// Opens the edit dialog on load.
    #[serde(default)]
    edit: Option<String>,
}

/// `GET /orgs/{id}`: limits and budget next to this month's usage.
pub async fn overview(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<OverviewQuery>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "overview").await?;
    let base = format!("/api/organizations/{}", segment(&id)?);
    ctx["config"] = api
        .get_if_allowed(&session.token_id, &format!("{base}/config"))
        .await?
        .map_or(Value::Null, |c| c["config"].clone());
    let today = time::OffsetDateTime::now_utc().date();
    let from = today.replace_day(1).unwrap_or(today);
    ctx["usage"] = api
        .get(
            &session.token_id,
            &format!("{base}/usage?group_by=model&from={from}&to={today}"),
        )
        .await?;
    ctx["month"] = Value::from(format!("{}-{:02}", today.year(), u8::from(today.month())));
    ctx["edit"] = Value::from(q.edit.is_some());
    Ok(render("org_overview.html", &ctx)?)
}
