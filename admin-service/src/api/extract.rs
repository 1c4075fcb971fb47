//! The JSON body extractor: syntax errors are 400, anything serde rejects is 422,
//! and every message names the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use crate::errors::ApiError;

/// Largest request body accepted (axum's default limit, applied by `Bytes`).
pub const BODY_LIMIT: usize = 2 << 20;

/// A JSON request body, deserialized with field-naming errors.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!("request body is larger than {BODY_LIMIT} bytes"))
            } else {
                ApiError::malformed(format!("could not read the body: {e}"))
            }
        })?;
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
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed(format!("request body is not valid JSON: {e}")))?;
    integral_floats_as_integers(&mut value);
    from_value(value, "")
}

/// JSON has one number type: `983.0` is the integer 983 (as JSON Schema says), so
/// integer fields accept it. Only exactly integral values within ±2^53 change.
fn integral_floats_as_integers(v: &mut serde_json::Value) {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT) {
                // In range and integral, so the cast is exact.
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Deserializes a JSON value into `T`; field paths in errors are prefixed with `prefix`.
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        classify(prefix, &path, &inner)
    })
}

/// A `serde_json::Value` deserializer that only builds structs from JSON objects:
/// serde's derive also accepts an array of the fields in order, which would let
/// `["x"]` pass for `{"name":"x"}` and `[5,"daily"]` for a budget.
struct Strict(serde_json::Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Strict {
    type Deserializer = Strict;

    fn into_deserializer(self) -> Strict {
        self
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        use serde_json::Value;
        match self.0 {
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Strict));
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Value::Object(map) => {
                let mut map = MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Strict(v))));
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if self.0.is_object() {
            self.deserialize_any(visitor)
        } else {
            Err(de::Error::invalid_type(
                unexpected(&self.0),
                &"a JSON object",
            ))
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            serde_json::Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // Our enums are unit variants named by strings; serde_json's rules apply.
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// How a JSON value is named in a type error.
fn unexpected(v: &serde_json::Value) -> de::Unexpected<'_> {
    use serde_json::Value;
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
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

/// For PATCH bodies, on fields that cannot be cleared: absent is `None`, and `null`
/// is a type error naming the field instead of being taken for "no change".
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
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

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Vec<u32>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize, utoipa::ToSchema)]
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
        // Arrays never stand in for objects, at the top or nested.
        let e = err(r#"["a",[]]"#);
        assert_eq!((e.code, e.field.as_deref()), ("invalid_type", Some("body")));
        let e = err(r#"{"name":"a","tags":[],"inner":[1]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("inner"))
        );
        let e = err(r#"{"name":"a","tags":[],"inner":{"rpm":-1}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.rpm"));
        assert!(e.message.contains("inner.rpm"), "{}", e.message);
    }
}
