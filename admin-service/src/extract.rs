//! The JSON body extractor: syntax errors are 400, anything serde rejects is 422,
//! and every message names the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::errors::ApiError;

/// A JSON request body, deserialized with field-naming errors.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::malformed(format!("could not read the body: {e}")))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a body: 400 when it is not JSON, 422 naming the field when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed(
            "request body is empty; expected a JSON object",
        ));
    }
    // Syntax first, so a truncated document is a 400 and never a confusing 422.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed(format!("request body is not valid JSON: {e}")))?;
    from_value(value, "")
}

/// Deserializes a JSON value into `T`; field paths in errors are prefixed with `prefix`.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        classify(prefix, &path, &inner)
    })
}

fn join(prefix: &str, path: &str) -> String {
    let path = if path == "." { "" } else { path };
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// The name between the first pair of backticks in a serde message.
fn quoted(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn classify(prefix: &str, path: &str, inner: &str) -> ApiError {
    // serde_json appends " at line 1 column 5" only when parsing text; values have none.
    let msg = inner.split(" at line ").next().unwrap_or(inner);
    let base = join(prefix, path);
    let child = |name: &str| {
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}.{name}")
        }
    };
    if msg.starts_with("unknown field") {
        let name = quoted(msg).unwrap_or("?");
        // serde_path_to_error already ends the path with the unknown key itself.
        let field = if base == name || base.ends_with(&format!(".{name}")) {
            base.clone()
        } else {
            child(name)
        };
        return ApiError::unprocessable("unknown_field", &field, format!("{field}: {msg}"));
    }
    if msg.starts_with("missing field") {
        let name = quoted(msg).unwrap_or("?");
        let field = child(name);
        return ApiError::unprocessable("missing_field", &field, format!("{field}: is required"));
    }
    let field = if base.is_empty() {
        "body".to_string()
    } else {
        base
    };
    if msg.starts_with("invalid type") || msg.starts_with("invalid length") {
        return ApiError::unprocessable("invalid_type", &field, format!("{field}: {msg}"));
    }
    ApiError::unprocessable("invalid_value", &field, format!("{field}: {msg}"))
}

/// For PATCH bodies: distinguishes an absent field (`None`) from `null` (`Some(None)`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<u32>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rpm: u64,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<Body>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err("{").status, 400);
        assert_eq!(err("").status, 400);
        let e = err(r#"{"name":"a","tags":[],"bogus":1}"#);
        assert_eq!(
            (e.status.as_u16(), e.field.as_deref()),
            (422, Some("bogus"))
        );
        let e = err(r#"{"name":"a","tags":[1,"x"]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("tags[1]"))
        );
        let e = err(r#"{"tags":[]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("name"))
        );
        let e = err(r#"{"name":"a","tags":[],"inner":{"rpm":1,"x":2}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.x"));
        let e = err(r#"{"name":"a","tags":[],"inner":{"rpm":-1}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.rpm"));
        assert!(e.message.contains("inner.rpm"), "{}", e.message);
    }
}
