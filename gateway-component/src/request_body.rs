//! The inference request body: read under a size limit, checked for a JSON object
//! with a string `model`, and amended to ask for streamed usage.

use std::borrow::Cow;
use std::fmt;

use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::errors::GatewayError;

/// Largest request body accepted (4 MiB); larger bodies are refused with 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Rejects a declared `Content-Length` over the limit before reading anything.
pub fn check_declared_length(content_length: Option<&[u8]>) -> Result<Option<usize>, GatewayError> {
    let Some(declared) = content_length
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return Ok(None);
    };
    match usize::try_from(declared) {
        Ok(n) if n <= MAX_BODY_BYTES => Ok(Some(n)),
        _ => Err(GatewayError::BodyTooLarge),
    }
}

/// Reads the body, refusing it as soon as it would exceed the limit: never more
/// than [`MAX_BODY_BYTES`] is held.
pub async fn read_limited<E>(
    mut chunks: impl Stream<Item = Result<Vec<u8>, E>> + Unpin,
    declared: Option<usize>,
) -> Result<Vec<u8>, GatewayError> {
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| GatewayError::BodyUnreadable)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(GatewayError::BodyTooLarge);
        }
        if body.is_empty() && body.capacity() == 0 {
            // No Content-Length: take the first chunk's buffer instead of copying it.
            body = chunk;
        } else {
            body.extend_from_slice(&chunk);
        }
    }
    Ok(body)
}

/// What the gateway needs from an inference body; everything else passes through.
#[derive(Debug)]
pub struct Inspected<'a> {
    /// The requested model (borrowed from the body unless it had escapes).
    pub model: Cow<'a, str>,
    /// `"stream": true`.
    pub stream: bool,
    /// `max_completion_tokens`, else `max_tokens`, when a non-negative integer: the
    /// most the answer may cost, for the budget reservation.
    pub max_output_tokens: Option<u64>,
    /// The `stream_options` member, when present.
    stream_options: Option<Value>,
}

impl Inspected<'_> {
    /// How the body must be amended so a streamed answer reports its usage, which
    /// token accounting depends on; `None` when it already asks or does not stream.
    pub fn usage_request(&self) -> Option<UsageRequest> {
        if !self.stream {
            return None;
        }
        match &self.stream_options {
            None => Some(UsageRequest::Splice),
            Some(o) if o.get("include_usage") == Some(&Value::Bool(true)) => None,
            Some(_) => Some(UsageRequest::Rewrite),
        }
    }
}

/// An amendment setting `stream_options.include_usage` to true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageRequest {
    /// No `stream_options`: splice the member in after `{`, so the rest of the body
    /// is forwarded byte for byte.
    Splice,
    /// `stream_options` without `include_usage: true`: set it and re-serialise.
    Rewrite,
}

impl UsageRequest {
    /// Applies the amendment to a body [`inspect`] accepted.
    pub fn apply(self, body: Vec<u8>) -> Vec<u8> {
        const MEMBER: &[u8] = br#""stream_options":{"include_usage":true},"#;
        match self {
            UsageRequest::Splice => {
                // `inspect` accepted an object with a `model`, so a member follows the
                // brace and the trailing comma is valid.
                let Some(open) = body.iter().position(|&b| b == b'{') else {
                    return body;
                };
                let mut out = Vec::with_capacity(body.len() + MEMBER.len());
                out.extend_from_slice(&body[..=open]);
                out.extend_from_slice(MEMBER);
                out.extend_from_slice(&body[open + 1..]);
                out
            }
            UsageRequest::Rewrite => {
                let Ok(mut object) =
                    serde_json::from_slice::<serde_json::Map<String, Value>>(&body)
                else {
                    return body;
                };
                match object.get_mut("stream_options") {
                    Some(Value::Object(options)) => {
                        options.insert("include_usage".into(), Value::Bool(true));
                    }
                    _ => {
                        object.insert(
                            "stream_options".into(),
                            serde_json::json!({"include_usage": true}),
                        );
                    }
                }
                serde_json::to_vec(&object).unwrap_or(body)
            }
        }
    }
}

/// Checks the body is a JSON object naming a string `model`.
pub fn inspect(body: &[u8]) -> Result<Inspected<'_>, GatewayError> {
    let head: Head<'_> = serde_json::from_slice(body).map_err(|e| {
        GatewayError::InvalidJson(if e.is_data() {
            "the body must be a JSON object"
        } else {
            "malformed JSON"
        })
    })?;
    match head.model {
        Some(ModelValue::Text(model)) => Ok(Inspected {
            model,
            stream: head.stream == Some(Value::Bool(true)),
            // The newer name wins, as at OpenAI, which deprecates `max_tokens`.
            max_output_tokens: head
                .max_completion_tokens
                .as_ref()
                .and_then(Value::as_u64)
                .or_else(|| head.max_tokens.as_ref().and_then(Value::as_u64)),
            stream_options: head.stream_options,
        }),
        _ => Err(GatewayError::MissingModel),
    }
}

/// The members of the body the gateway reads; a visitor rather than a derive so
/// that only objects are accepted (serde would take an array for a struct) and the
/// model string is borrowed.
struct Head<'a> {
    model: Option<ModelValue<'a>>,
    stream: Option<Value>,
    stream_options: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
}

enum ModelValue<'a> {
    Text(Cow<'a, str>),
    NotText,
}

impl<'de> Deserialize<'de> for Head<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeadVisitor;
        impl<'de> Visitor<'de> for HeadVisitor {
            type Value = Head<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head<'de>, A::Error> {
                let mut head = Head {
                    model: None,
                    stream: None,
                    stream_options: None,
                    max_tokens: None,
                    max_completion_tokens: None,
                };
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Model => head.model = Some(map.next_value()?),
                        Field::Stream => head.stream = Some(map.next_value()?),
                        Field::StreamOptions => head.stream_options = Some(map.next_value()?),
                        Field::MaxTokens => head.max_tokens = Some(map.next_value()?),
                        Field::MaxCompletionTokens => {
                            head.max_completion_tokens = Some(map.next_value()?)
                        }
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(head)
            }
        }
        d.deserialize_map(HeadVisitor)
    }
}

enum Field {
    Model,
    Stream,
    StreamOptions,
    MaxTokens,
    MaxCompletionTokens,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "model" => Field::Model,
                    "stream" => Field::Stream,
                    "stream_options" => Field::StreamOptions,
                    "max_tokens" => Field::MaxTokens,
                    "max_completion_tokens" => Field::MaxCompletionTokens,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Deserialize<'de> for ModelValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModelVisitor;
        impl<'de> Visitor<'de> for ModelVisitor {
            type Value = ModelValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ModelValue::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ModelValue::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ModelValue::NotText)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ModelValue::NotText)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ModelValue::NotText)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ModelValue::NotText)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ModelValue::NotText)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ModelValue::NotText)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ModelValue::NotText)
            }
        }
        d.deserialize_any(ModelVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::stream;

    #[test]
    fn accepts_an_object_with_a_string_model() {
        let body = br#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o"}"#;
        let got = inspect(body).unwrap();
        assert_eq!(got.model, "gpt-4o");
        assert!(matches!(got.model, Cow::Borrowed(_)));
        assert!(!got.stream && got.usage_request().is_none());
        let escaped = inspect(br#"{"model":"gpt\u002d4o"}"#).unwrap();
        assert_eq!(escaped.model, "gpt-4o");
    }

    #[test]
    fn reads_the_output_cap() {
        let cap = |b: &[u8]| inspect(b).unwrap().max_output_tokens;
        assert_eq!(cap(br#"{"model":"m"}"#), None);
        assert_eq!(cap(br#"{"model":"m","max_tokens":7}"#), Some(7));
        assert_eq!(
            cap(br#"{"max_tokens":7,"model":"m","max_completion_tokens":9}"#),
            Some(9)
        );
        // Not a count: no cap (the provider will reject it, not the gateway).
        assert_eq!(cap(br#"{"model":"m","max_tokens":-1}"#), None);
        assert_eq!(cap(br#"{"model":"m","max_tokens":"7"}"#), None);
    }

    #[test]
    fn rejects_malformed_json_and_non_objects() {
        for body in [&b"{"[..], b"", b"{\"model\":\"a\"} x", b"nope"] {
            let err = inspect(body).unwrap_err();
            assert_eq!(err.code(), "invalid_json", "{body:?}");
        }
        for body in [&b"[\"gpt-4o\"]"[..], b"\"gpt-4o\"", b"null"] {
            assert_eq!(
                inspect(body).unwrap_err().code(),
                "invalid_json",
                "{body:?}"
            );
        }
    }

    #[test]
    fn missing_or_non_string_model_names_model() {
        for body in [
            &br#"{"messages":[]}"#[..],
            br#"{"model":null}"#,
            br#"{"model":4}"#,
            br#"{"model":["gpt-4o"]}"#,
            br#"{"model":{"id":"gpt-4o"}}"#,
        ] {
            let err = inspect(body).unwrap_err();
            assert_eq!(err, GatewayError::MissingModel, "{body:?}");
            assert_eq!(err.status(), 400);
            assert!(err.message().contains("model"));
        }
    }

    #[test]
    fn usage_is_requested_only_for_streams_that_lack_it() {
        let needs = |b: &[u8]| inspect(b).unwrap().usage_request();
        assert_eq!(
            needs(br#"{"model":"m","stream":true}"#),
            Some(UsageRequest::Splice)
        );
        assert_eq!(
            needs(br#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#),
            Some(UsageRequest::Rewrite)
        );
        assert_eq!(
            needs(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#),
            None
        );
        assert_eq!(needs(br#"{"model":"m","stream":false}"#), None);
        assert_eq!(needs(br#"{"model":"m","stream":"yes"}"#), None);
    }

    #[test]
    fn splices_stream_options_without_touching_the_rest() {
        let body = br#" { "model" : "m", "stream":true }"#.to_vec();
        let out = UsageRequest::Splice.apply(body);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#" {"stream_options":{"include_usage":true}, "model" : "m", "stream":true }"#
        );
        assert_eq!(inspect(&out).unwrap().usage_request(), None);
    }

    #[test]
    fn amends_existing_stream_options() {
        let body = br#"{"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}}"#;
        let out: Value =
            serde_json::from_slice(&UsageRequest::Rewrite.apply(body.to_vec())).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}})
        );
        let null = br#"{"model":"m","stream":true,"stream_options":null}"#;
        let out = UsageRequest::Rewrite.apply(null.to_vec());
        assert_eq!(inspect(&out).unwrap().usage_request(), None);
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_up_front() {
        assert_eq!(check_declared_length(None), Ok(None));
        assert_eq!(check_declared_length(Some(b"12")), Ok(Some(12)));
        assert_eq!(check_declared_length(Some(b"junk")), Ok(None));
        let over = (MAX_BODY_BYTES + 1).to_string();
        assert_eq!(
            check_declared_length(Some(over.as_bytes())),
            Err(GatewayError::BodyTooLarge)
        );
    }

    #[test]
    fn reading_stops_at_the_limit() {
        let chunk = vec![b'x'; 1024 * 1024];
        let ok = stream::iter((0..4).map(|_| Ok::<_, ()>(chunk.clone())));
        assert_eq!(
            block_on(read_limited(ok, None)).unwrap().len(),
            MAX_BODY_BYTES
        );
        // The fifth chunk is never appended, and the stream is not drained further.
        let mut pulled = 0;
        let over =
            stream::iter((0..100).map(|_| Ok::<_, ()>(chunk.clone()))).inspect(|_| pulled += 1);
        assert_eq!(
            block_on(read_limited(over, None)),
            Err(GatewayError::BodyTooLarge)
        );
        assert_eq!(pulled, 5);
        let broken = stream::iter([Ok(vec![1]), Err(())]);
        assert_eq!(
            block_on(read_limited(broken, Some(2))),
            Err(GatewayError::BodyUnreadable)
        );
    }
}
