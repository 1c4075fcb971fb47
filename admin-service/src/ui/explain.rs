//! The "Why denied?" tab: the explain endpoint, answered in place with htmx.

use axum::Extension;
use axum::extract::Path;
use axum::http::{HeaderMap, Method};
use axum::response::Html;
use serde_json::json;

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::form::without_nulls;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::{Posted, Session};
use crate::ui::templates::render;

/// `GET /orgs/{id}/explain`.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let ctx = org_context(&api, &session, &id, "explain").await?;
    Ok(render("org_explain.html", &ctx)?)
}

/// `POST /orgs/{id}/explain`: the decision; htmx swaps in just the answer.
pub async fn explain(
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Posted { session, fields: f }: Posted,
) -> Result<Html<String>, UiError> {
    let body = without_nulls(json!({
        "key_prefix": f.string("key_prefix"),
        "model": f.string("model"),
        "ip": f.string("ip"),
    }));
    let answer = api
        .call(
            &session.token_id,
            Method::POST,
            &format!("/api/organizations/{}/explain", segment(&id)?),
            Some(&body),
        )
        .await;
    if headers.contains_key("hx-request") {
        // htmx swaps only 2xx answers: a refusal is shown in place as the answer.
        return match answer {
            Ok(answer) => Ok(render("explain_result.html", &json!({"answer": answer}))?),
            Err(UiError::Api { message, .. }) => {
                Ok(render("explain_result.html", &json!({"error": message}))?)
            }
            Err(e) => Err(e),
        };
    }
    let answer = answer?;
    let mut ctx = org_context(&api, &session, &id, "explain").await?;
    ctx["answer"] = answer;
    Ok(render("org_explain.html", &ctx)?)
}
