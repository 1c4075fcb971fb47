//! Every way the gateway answers with an error, in OpenAI's error shape.

use std::borrow::Cow;

use policy::Denial;
use serde::Serialize;

/// A request the gateway refuses or cannot complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The policy engine (or record loading) denied the request.
    Denied(Denial),
    /// The key-value store could not be read; the request is denied (fail closed).
    StoreUnavailable,
    /// The org's provider credential does not open with the edge's keys (missing
    /// or wrong `edge_keys`, a tampered or misplaced blob); nothing is sent.
    CredentialUnavailable,
    /// The request body is not JSON, or not a JSON object.
    InvalidJson(&'static str),
    /// The body names no model, or not as a string.
    MissingModel,
    /// A member the gateway acts on has the wrong type or is repeated: (member, why).
    InvalidParameter(&'static str, &'static str),
    /// A string member that would be stored is longer than
    /// [`crate::request_body::MAX_SPOOLED_STRING`] bytes.
    TooLong(&'static str),
    /// The provider's origin is not among those compiled into the org record.
    UpstreamNotAllowed,
    /// The usage spool holds as many events as the edge is configured to keep
    /// until the admin service drains it; nothing is forwarded unaccounted.
    SpoolFull,
    /// The body exceeds [`crate::request_body::MAX_BODY_BYTES`].
    BodyTooLarge,
    /// The request body could not be read from the client.
    BodyUnreadable,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists with another method; carries the `Allow` header value.
    MethodNotAllowed(&'static str),
    /// The provider could not be reached or failed before answering.
    UpstreamError,
    /// The provider did not answer in time.
    UpstreamTimeout,
    /// Every provider that could serve the request is cooling down after
    /// consecutive failures; the first cooldown ends in `retry_after_secs`.
    ProvidersCoolingDown {
        /// Seconds until the first cooldown ends.
        retry_after_secs: u64,
    },
}

impl From<Denial> for GatewayError {
    fn from(d: Denial) -> Self {
        GatewayError::Denied(d)
    }
}

impl GatewayError {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Denied(d) => d.status(),
            // 503, not 403: the store being down is not the client's fault and is
            // transient, so OpenAI clients retry it; still a denial (fail closed).
            GatewayError::StoreUnavailable | GatewayError::CredentialUnavailable => 503,
            GatewayError::InvalidJson(_)
            | GatewayError::MissingModel
            | GatewayError::InvalidParameter(..)
            | GatewayError::TooLong(_) => 400,
            GatewayError::UpstreamNotAllowed => 403,
            GatewayError::SpoolFull => 503,
            GatewayError::BodyUnreadable => 400,
            GatewayError::BodyTooLarge => 413,
            GatewayError::NotFound => 404,
            GatewayError::MethodNotAllowed(_) => 405,
            GatewayError::UpstreamError => 502,
            GatewayError::UpstreamTimeout => 504,
            GatewayError::ProvidersCoolingDown { .. } => 503,
        }
    }

    /// OpenAI error `type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            GatewayError::Denied(d) => d.error_type(),
            GatewayError::StoreUnavailable
            | GatewayError::CredentialUnavailable
            | GatewayError::UpstreamError
            | GatewayError::UpstreamTimeout
            | GatewayError::ProvidersCoolingDown { .. }
            | GatewayError::SpoolFull => "server_error",
            GatewayError::UpstreamNotAllowed => "permission_error",
            _ => "invalid_request_error",
        }
    }

    /// Machine-readable error `code`.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::Denied(d) => d.code(),
            // Same code as a missing record: both mean "policy could not be verified".
            GatewayError::StoreUnavailable | GatewayError::CredentialUnavailable => {
                "policy_unavailable"
            }
            GatewayError::InvalidJson(_) => "invalid_json",
            GatewayError::MissingModel => "missing_required_parameter",
            GatewayError::InvalidParameter(..) => "invalid_parameter",
            GatewayError::TooLong(_) => "string_above_max_length",
            GatewayError::UpstreamNotAllowed => "upstream_not_allowed",
            GatewayError::SpoolFull => "usage_spool_full",
            GatewayError::BodyTooLarge => "request_too_large",
            GatewayError::BodyUnreadable => "invalid_request_body",
            GatewayError::NotFound => "unknown_url",
            GatewayError::MethodNotAllowed(_) => "method_not_allowed",
            GatewayError::UpstreamError => "upstream_error",
            GatewayError::UpstreamTimeout => "upstream_timeout",
            GatewayError::ProvidersCoolingDown { .. } => "providers_cooling_down",
        }
    }

    /// Human-readable message.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            GatewayError::Denied(d) => d.message(),
            GatewayError::StoreUnavailable => {
                "The gateway's policy store is unavailable; access is denied. Retry later.".into()
            }
            GatewayError::CredentialUnavailable => {
                "The organization's provider credential cannot be used on this edge; \
                 the request was not sent."
                    .into()
            }
            GatewayError::InvalidJson(why) => {
                format!("The request body is not valid JSON: {why}.").into()
            }
            GatewayError::MissingModel => {
                "The request body must name the `model` to use, as a string.".into()
            }
            GatewayError::InvalidParameter(member, why) => format!("`{member}` {why}.").into(),
            GatewayError::TooLong(member) => format!(
                "`{member}` is longer than {} bytes.",
                crate::request_body::MAX_SPOOLED_STRING
            )
            .into(),
            GatewayError::UpstreamNotAllowed => {
                "The organization's provider points at a host its configuration does not \
                 allow; the request was not sent."
                    .into()
            }
            GatewayError::SpoolFull => {
                "The gateway's usage log is full until the control plane collects it; \
                 retry later."
                    .into()
            }
            GatewayError::BodyTooLarge => format!(
                "The request body exceeds the limit of {} bytes.",
                crate::request_body::MAX_BODY_BYTES
            )
            .into(),
            GatewayError::BodyUnreadable => "The request body could not be read.".into(),
            GatewayError::NotFound => "Unknown request URL.".into(),
            GatewayError::MethodNotAllowed(allow) => {
                format!("Method not allowed for this URL; use {allow}.").into()
            }
            GatewayError::UpstreamError => "The model provider could not be reached.".into(),
            GatewayError::UpstreamTimeout => "The model provider did not answer in time.".into(),
            GatewayError::ProvidersCoolingDown { .. } => {
                "Every provider serving this model failed repeatedly and is paused for a \
                 while; retry later."
                    .into()
            }
        }
    }

    /// Seconds for `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            GatewayError::Denied(d) => d.retry_after_secs(),
            GatewayError::ProvidersCoolingDown { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The OpenAI-shaped JSON body: `{"error":{"message","type","code","param":null}}`.
    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            code: &'a str,
            param: Option<&'a str>,
        }
        let message = self.message();
        serde_json::to_vec(&Body {
            error: Inner {
                message: &message,
                kind: self.error_type(),
                code: self.code(),
                param: match self {
                    GatewayError::InvalidParameter(member, _) | GatewayError::TooLong(member) => {
                        Some(*member)
                    }
                    _ => None,
                },
            },
        })
        .expect("error bodies serialize infallibly")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn openai_shape_with_null_param() {
        let body: Value =
            serde_json::from_slice(&GatewayError::Denied(Denial::UnknownKey).body()).unwrap();
        assert_eq!(
            body,
            json!({"error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "param": null,
            }})
        );
    }

    #[test]
    fn statuses_and_codes() {
        let cases = [
            (GatewayError::StoreUnavailable, 503, "policy_unavailable"),
            (
                GatewayError::CredentialUnavailable,
                503,
                "policy_unavailable",
            ),
            (GatewayError::InvalidJson("x"), 400, "invalid_json"),
            (
                GatewayError::MissingModel,
                400,
                "missing_required_parameter",
            ),
            (GatewayError::BodyTooLarge, 413, "request_too_large"),
            (GatewayError::NotFound, 404, "unknown_url"),
            (
                GatewayError::MethodNotAllowed("POST"),
                405,
                "method_not_allowed",
            ),
            (GatewayError::UpstreamError, 502, "upstream_error"),
            (GatewayError::UpstreamTimeout, 504, "upstream_timeout"),
            (
                GatewayError::ProvidersCoolingDown {
                    retry_after_secs: 3,
                },
                503,
                "providers_cooling_down",
            ),
            (
                GatewayError::Denied(Denial::RecordUnavailable("x")),
                403,
                "policy_unavailable",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code()), (status, code), "{err:?}");
        }
        assert!(GatewayError::MissingModel.message().contains("`model`"));
    }

    #[test]
    fn budget_denial_carries_retry_after() {
        let err = GatewayError::Denied(Denial::BudgetExceeded {
            scope: policy::Scope::Org,
            retry_after_secs: 42,
        });
        assert_eq!((err.status(), err.retry_after_secs()), (429, Some(42)));
    }
}
