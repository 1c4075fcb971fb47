//! What a page shows when something fails: sign-in, 403 for CSRF, the API's own answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

/// A page that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No live session: go and sign in.
    #[error("sign in first")]
    SignIn,
    /// The form's CSRF token is missing or wrong, or the post came from another site.
    #[error("the form is stale or came from another site; reload the page and try again")]
    Csrf,
    /// The API refused; its status and message are shown as they are.
    #[error("{message}")]
    Api {
        /// The API's status.
        status: StatusCode,
        /// The API's message (names the field at fault).
        message: String,
    },
    /// A failure of ours.
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for UiError {
    fn from(e: sqlx::Error) -> Self {
        UiError::Internal(format!("database: {e}"))
    }
}

impl From<minijinja::Error> for UiError {
    fn from(e: minijinja::Error) -> Self {
        UiError::Internal(format!("template: {e}"))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::SignIn => return Redirect::to("/sign-in").into_response(),
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::Api { status, .. } => *status,
            UiError::Internal(e) => {
                tracing::error!(error = %e, "dashboard page failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = self.to_string();
        let ctx = json!({"status": status.as_u16(), "message": message});
        match crate::ui::templates::render("error.html", &ctx) {
            Ok(html) => (status, html).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}
