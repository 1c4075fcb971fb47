//! The Logs tab: the newest request logs.

use axum::Extension;
use axum::extract::Path;
use axum::response::Html;

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::Session;
use crate::ui::templates::render;

/// `GET /orgs/{id}/logs`.
pub async fn page(
    Extension(api): Extension<Api>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, UiError> {
    let mut ctx = org_context(&api, &session, &id, "logs").await?;
    ctx["logs"] = api
        .get(
            &session.token_id,
            &format!("/api/organizations/{}/logs?limit=200", segment(&id)?),
        )
        .await?;
    Ok(render("org_logs.html", &ctx)?)
}
