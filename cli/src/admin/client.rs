//! The admin API over HTTP, as the command line uses it: bearer token, JSON in and
//! out, lists followed page by page, errors turned into exit codes.

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Response header holding the next page's cursor.
const NEXT_CURSOR: &str = "x-next-cursor";

/// Why a command failed; each kind has its own exit code.
#[derive(Debug)]
pub enum CliError {
    /// The API refused the request (its message names the field at fault).
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The API's message.
        message: String,
    },
    /// The API could not be reached.
    Connection {
        /// The API root.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The command line itself is wrong in a way the parser cannot see.
    Usage(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Api { status, message } => write!(f, "{status}: {message}"),
            CliError::Connection { url, reason } => {
                write!(f, "cannot reach the admin API at {url}: {reason}")
            }
            CliError::Usage(m) => f.write_str(m),
        }
    }
}

impl CliError {
    /// 1: the API refused; 2: bad usage (as clap's own errors); 3: no connection.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Api { .. } => ExitCode::from(1),
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Connection { .. } => ExitCode::from(3),
        }
    }
}

/// A client of one admin API with one token.
pub struct Api {
    http: reqwest::Client,
    root: String,
    token: String,
}

impl Api {
    /// `root` with or without `/api`.
    pub fn new(root: &str, token: String) -> Api {
        let root = root.trim_end_matches('/');
        let root = root.strip_suffix("/api").unwrap_or(root).to_string();
        Api {
            http: reqwest::Client::new(),
            root,
            token,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.root))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| CliError::Connection {
            url: self.root.clone(),
            // reqwest's text names the URL, never headers: the token stays out.
            reason: e.without_url().to_string(),
        })?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("the API answered with an error")
            .to_string();
        Err(CliError::Api { status, message })
    }

    /// One call; `Value::Null` when the API answers without a body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let res = self.send(method, path, query, body).await?;
        if res.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        res.json().await.map_err(|e| CliError::Connection {
            url: self.root.clone(),
            reason: format!("unreadable answer: {e}"),
        })
    }

    /// Every item of a list, following `x-next-cursor` page by page.
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, CliError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let res = self.send(Method::GET, path, &q, None).await?;
            let next = res
                .headers()
                .get(NEXT_CURSOR)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let page: Vec<Value> = res.json().await.map_err(|e| CliError::Connection {
                url: self.root.clone(),
                reason: format!("unreadable answer: {e}"),
            })?;
            out.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}
