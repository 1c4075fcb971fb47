//! The dashboard's API client: requests go through the API router in process, as the
//! session's token, and come back as the API's status and JSON.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::SessionToken;
use crate::ui::error::UiError;

/// Largest API answer a page reads.
const MAX_BODY: usize = 16 << 20;

/// The API router, called in process.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// As whom a request is made.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A pasted token, at sign-in only.
    Bearer(&'a str),
    /// A signed-in session's token id.
    Session(&'a str),
}

/// An API answer.
#[derive(Debug)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its body.
    pub body: Bytes,
    /// Its content type.
    pub content_type: Option<HeaderValue>,
}

impl Reply {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The JSON body of a 2xx answer; the API's error otherwise.
    pub fn ok(self) -> Result<Value, UiError> {
        if self.status.is_success() {
            return Ok(self.json());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            return Err(UiError::SignIn);
        }
        let body = self.json();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("the API refused the request")
            .to_string();
        Err(UiError::Api {
            status: self.status,
            message,
        })
    }
}

impl Api {
    /// A client of `router` (the API with its state).
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    /// Sends one request.
    pub async fn send(
        &self,
        caller: Caller<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, UiError> {
        let mut req = Request::builder().method(method).uri(path);
        match caller {
            Caller::Bearer(token) => {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            Caller::Session(token_id) => {
                req = req.extension(SessionToken {
                    token_id: token_id.to_string(),
                });
            }
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let req = req
            .body(body)
            .map_err(|e| UiError::Internal(format!("request to {path}: {e}")))?;
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| UiError::Internal(format!("{path}: {e}")))?;
        let status = res.status();
        let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::to_bytes(res.into_body(), MAX_BODY)
            .await
            .map_err(|e| UiError::Internal(format!("{path}: {e}")))?;
        Ok(Reply {
            status,
            body,
            content_type,
        })
    }

    /// Sends as the session's token; the JSON of a 2xx answer.
    pub async fn call(
        &self,
        token_id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, UiError> {
        self.send(Caller::Session(token_id), method, path, body)
            .await?
            .ok()
    }

    /// One mutation as the session's token; on success the browser is sent to `back`
    /// (a fresh GET, so a reload does not post again).
    pub async fn act(
        &self,
        token_id: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        back: &str,
    ) -> Result<Response, UiError> {
        self.call(token_id, method, path, body).await?;
        Ok(Redirect::to(back).into_response())
    }

    /// `GET` as the session's token.
    pub async fn get(&self, token_id: &str, path: &str) -> Result<Value, UiError> {
        self.call(token_id, Method::GET, path, None).await
    }

    /// `GET` as the session's token; `None` when the role may not read it (403).
    pub async fn get_if_allowed(
        &self,
        token_id: &str,
        path: &str,
    ) -> Result<Option<Value>, UiError> {
        match self.get(token_id, path).await {
            Ok(v) => Ok(Some(v)),
            Err(UiError::Api { status, .. }) if status == StatusCode::FORBIDDEN => Ok(None),
            Err(e) => Err(e),
        }
    }
}
