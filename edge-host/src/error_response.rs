//! Answers the host gives itself, before or instead of the guest, in OpenAI's
//! error shape `{"error":{"message","type","code"}}` so clients parse them as
//! they parse the gateway's own.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// The response body type the server hands to hyper.
pub(crate) type Body = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// An error the host answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    /// The request body did not arrive within the body read deadline.
    BodyTimeout,
    /// The declared or received body is larger than the host accepts.
    BodyTooLarge,
    /// The request body could not be read (the client broke the framing).
    BodyUnreadable,
    /// The org (or, without a known key, all such requests) is at its in-flight cap.
    ConcurrencyLimit,
    /// No guest instance became free in time.
    Overloaded,
    /// The guest ran past its CPU or response deadline.
    GuestDeadline,
    /// The guest trapped or failed.
    Gateway,
}

impl HostError {
    fn parts(self) -> (StatusCode, &'static str, &'static str, &'static str) {
        match self {
            HostError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "request_timeout",
                "the request body was not received in time",
            ),
            HostError::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "request_too_large",
                "the request body is larger than the gateway accepts",
            ),
            HostError::BodyUnreadable => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "malformed_body",
                "the request body could not be read",
            ),
            HostError::ConcurrencyLimit => (
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                "concurrency_limit_exceeded",
                "too many requests of this organization are in flight; retry when one finishes",
            ),
            HostError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "server_overloaded",
                "the gateway is at capacity; retry shortly",
            ),
            HostError::GuestDeadline => (
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "gateway_timeout",
                "the gateway took too long to handle this request",
            ),
            HostError::Gateway => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                "gateway_error",
                "the gateway failed to handle this request",
            ),
        }
    }

    /// The error code of the answer (`concurrency_limit_exceeded`, ...).
    pub(crate) fn code(self) -> &'static str {
        self.parts().2
    }

    fn json(self) -> String {
        let (_, kind, code, message) = self.parts();
        serde_json::json!({"error": {"message": message, "type": kind, "code": code}}).to_string()
    }

    /// The response; details stay in the log, not the body.
    pub(crate) fn response(self) -> Response<Body> {
        let (status, ..) = self.parts();
        let mut builder = Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json");
        if matches!(self, HostError::ConcurrencyLimit | HostError::Overloaded) {
            builder = builder.header(RETRY_AFTER, "1");
        }
        builder
            .body(
                Full::new(Bytes::from(self.json()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .expect("static response parts are valid")
    }
}

/// The raw HTTP/1.1 408 written on a connection whose request head did not
/// arrive in time (hyper closes such connections without answering).
pub(crate) fn header_timeout_bytes() -> Vec<u8> {
    let body = HostError::BodyTimeout
        .json()
        .replace("request body", "request head");
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
