//! The Config tab: the org config as the API shows it (provider keys only as "set").

use axum::Extension;
use axum::extract::Path;
use axum::response::Html;

use crate::ui::client::Api;
use crate::ui::error::UiError;
use crate::ui::orgs::{org_context, segment};
use crate::ui::session::Session;
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
    render("org_config.html", &ctx)
}
