//! API errors: one JSON shape, `{"error":{"message","type","code","field"}}`, with
//! the status that tells the client what to fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error returned by a handler, rendered as the API's JSON error body.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Broad class (`invalid_request_error`, `not_found_error`, ...).
    pub kind: &'static str,
    /// Machine-readable reason.
    pub code: &'static str,
    /// Human-readable message; names the field when one is at fault.
    pub message: String,
    /// Path of the offending field (`ip_allow[2]`, `config.budgets.period`).
    pub field: Option<String>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        ApiError {
            status,
            kind,
            code,
            message,
            field: None,
        }
    }

    /// Attaches the field at fault; the message names it too, for clients that show
    /// only the message.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        if !self.message.contains(&field) {
            self.message = format!("{field}: {}", self.message);
        }
        self.field = Some(field);
        self
    }

    /// 400: the body is not JSON at all.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "malformed_json",
            message.into(),
        )
    }

    /// 413: the body is larger than the API accepts.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            message.into(),
        )
    }

    /// 422: a field has an invalid value.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "invalid_value",
            format!("{field}: {}", message.into()),
        )
        .with_field(field)
    }

    /// 422 with a specific code (`unknown_field`, `invalid_type`, `immutable`, ...).
    pub fn unprocessable(code: &'static str, field: impl Into<String>, message: String) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            code,
            message,
        )
        .with_field(field)
    }

    /// 401: no or unknown bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_token",
            message.into(),
        )
    }

    /// 403: the caller can see the object but its role may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "forbidden",
            message.into(),
        )
    }

    /// 403 naming the field only a platform admin may set this way.
    pub fn platform_admin_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "platform_admin_required",
            message.into(),
        )
        .with_field(field)
    }

    /// 404: no such object, or one the caller may not know exists.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409: the request conflicts with current state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict_error", code, message.into())
    }

    /// 410: the object existed but can no longer be used.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GONE,
            "invalid_request_error",
            "expired",
            message.into(),
        )
    }

    /// 429: too many attempts from this client; retry later.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "too_many_attempts",
            message.into(),
        )
    }

    /// 502: a service we depend on (the SMTP server) failed; nothing was stored.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "api_error",
            "upstream_unavailable",
            message.into(),
        )
    }

    /// 503: the service lacks something its operator must provide (a key); the
    /// message says what, and nothing was stored.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            code,
            message.into(),
        )
    }

    /// 500: something on our side; details go to the log, not the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "internal error".into(),
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        ApiError::internal()
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        // Only reached for documents we wrote ourselves: a stored value is corrupt.
        tracing::error!(error = %e, "stored JSON is unreadable");
        ApiError::internal()
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Human-readable message; names the field when one is at fault.
    pub message: String,
    /// Broad class: `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `conflict_error`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Machine-readable reason (`invalid_value`, `duplicate`, ...).
    pub code: &'static str,
    /// Path of the offending field (`ip_allow[2]`, `config.budgets.period`), or `null`.
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.message,
                kind: self.kind,
                code: self.code,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// Whether a database error is a UNIQUE constraint violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A statement's outcome, with a UNIQUE violation turned into 409 `duplicate`
/// naming `field` (its message built only then).
pub fn unique_or_conflict<T>(
    res: Result<T, sqlx::Error>,
    field: &str,
    message: impl FnOnce() -> String,
) -> Result<T, ApiError> {
    match res {
        Err(e) if is_unique_violation(&e) => {
            Err(ApiError::conflict("duplicate", message()).with_field(field))
        }
        r => Ok(r?),
    }
}
