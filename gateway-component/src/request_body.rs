//! The inference request body: read under a size limit, checked for a JSON object
//! with a string `model`, and amended to ask for streamed usage.

use std::borrow::Cow;
use std::fmt;

use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
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
    /// Completions the answer may hold: the larger of `n` and `best_of` (1 when
    /// neither is a count), each of which may use the output cap.
    pub choices: u64,
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
            // `null` is replaced on the rewrite: the member is set, not spliced twice.
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
    /// Applies the amendment to a body [`inspect`] accepted (which guarantees the
    /// re-serialisation succeeds: every string and number in it was decoded).
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

/// The body with its `model` replaced: what a route group's member is called
/// with. Re-serialised, which [`inspect`] guarantees succeeds for a body it
/// accepted (every string and number in it was decoded).
pub fn with_model(body: &[u8], model: &str) -> Vec<u8> {
    let Ok(mut object) = serde_json::from_slice::<serde_json::Map<String, Value>>(body) else {
        return body.to_vec();
    };
    object.insert("model".into(), Value::String(model.to_string()));
    serde_json::to_vec(&object).unwrap_or_else(|_| body.to_vec())
}

/// Longest `model` or `user` accepted: both end up in the usage spool and the
/// billing database, so they are bounded like every other stored string.
pub const MAX_SPOOLED_STRING: usize = policy::models::MAX_MODEL_LEN;

/// Checks the body is a JSON object naming a string `model`, that every string and
/// number in it decodes (no lone surrogate escape, no number beyond `f64`: a body
/// the gateway could not re-encode is not forwarded either), and that the members
/// the gateway acts on have the types the provider will read them as.
pub fn inspect(body: &[u8]) -> Result<Inspected<'_>, GatewayError> {
    let head: Head<'_> = serde_json::from_slice(body).map_err(|e| {
        GatewayError::InvalidJson(if e.is_data() {
            "the body must be a JSON object"
        } else {
            "malformed JSON, a lone surrogate escape or a number out of range"
        })
    })?;
    if let Some(member) = head.duplicate {
        return Err(GatewayError::InvalidParameter(
            member,
            "must appear only once in the body",
        ));
    }
    let stream = match head.stream {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(GatewayError::InvalidParameter(
                "stream",
                "must be a boolean",
            ));
        }
    };
    match &head.stream_options {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            if !matches!(
                o.get("include_usage"),
                None | Some(Value::Bool(_) | Value::Null)
            ) {
                return Err(GatewayError::InvalidParameter(
                    "stream_options.include_usage",
                    "must be a boolean",
                ));
            }
        }
        Some(_) => {
            return Err(GatewayError::InvalidParameter(
                "stream_options",
                "must be an object",
            ));
        }
    }
    if head.user.is_some_and(|u| u > MAX_SPOOLED_STRING) {
        return Err(GatewayError::TooLong("user"));
    }
    let count = |v: &Option<Value>| v.as_ref().and_then(Value::as_u64).unwrap_or(1);
    match head.model {
        Some(ModelValue::Text(model)) if model.len() > MAX_SPOOLED_STRING => {
            Err(GatewayError::TooLong("model"))
        }
        Some(ModelValue::Text(model)) => Ok(Inspected {
            model,
            stream,
            // The newer name wins, as at OpenAI, which deprecates `max_tokens`.
            max_output_tokens: head
                .max_completion_tokens
                .as_ref()
                .and_then(Value::as_u64)
                .or_else(|| head.max_tokens.as_ref().and_then(Value::as_u64)),
            choices: count(&head.n).max(count(&head.best_of)),
            stream_options: head.stream_options,
        }),
        _ => Err(GatewayError::MissingModel),
    }
}

/// The members of the body the gateway reads; a visitor rather than a derive so
/// that only objects are accepted (serde would take an array for a struct), the
/// model string is borrowed, and repeated members are noticed.
struct Head<'a> {
    model: Option<ModelValue<'a>>,
    stream: Option<Value>,
    stream_options: Option<Value>,
    max_tokens: Option<Value>,
    max_completion_tokens: Option<Value>,
    n: Option<Value>,
    best_of: Option<Value>,
    /// Length of a string `user` (another type is the provider's to refuse).
    user: Option<usize>,
    /// A member the gateway acts on that appeared twice: parsers disagree on
    /// which one counts, so the provider might read another than the gateway did.
    duplicate: Option<&'static str>,
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
                    n: None,
                    best_of: None,
                    user: None,
                    duplicate: None,
                };
                while let Some(field) = map.next_key::<Field>()? {
                    let (slot, name) = match field {
                        Field::Model => {
                            let seen = head.model.replace(map.next_value()?).is_some();
                            note_duplicate(&mut head.duplicate, seen, "model");
                            continue;
                        }
                        Field::User => {
                            let user: Decoded = map.next_value()?;
                            let seen = head.user.replace(user.text_len).is_some();
                            note_duplicate(&mut head.duplicate, seen, "user");
                            continue;
                        }
                        Field::Other => {
                            map.next_value::<Decoded>()?;
                            continue;
                        }
                        Field::Stream => (&mut head.stream, "stream"),
                        Field::StreamOptions => (&mut head.stream_options, "stream_options"),
                        Field::MaxTokens => (&mut head.max_tokens, "max_tokens"),
                        Field::MaxCompletionTokens => {
                            (&mut head.max_completion_tokens, "max_completion_tokens")
                        }
                        Field::N => (&mut head.n, "n"),
                        Field::BestOf => (&mut head.best_of, "best_of"),
                    };
                    let seen = slot.replace(map.next_value()?).is_some();
                    note_duplicate(&mut head.duplicate, seen, name);
                }
                Ok(head)
            }
        }
        d.deserialize_map(HeadVisitor)
    }
}

fn note_duplicate(slot: &mut Option<&'static str>, seen: bool, name: &'static str) {
    if seen && slot.is_none() {
        *slot = Some(name);
    }
}

/// Any JSON value, walked to the end so every string escape and number is decoded
/// (serde's `IgnoredAny` skips them unchecked); only a string's length is kept.
struct Decoded {
    text_len: usize,
}

impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DecodedVisitor;
        impl<'de> Visitor<'de> for DecodedVisitor {
            type Value = Decoded;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Decoded, E> {
                Ok(Decoded { text_len: v.len() })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Decoded, E> {
                Ok(Decoded { text_len: 0 })
            }
            fn visit_i64<E>(self, _: i64) -> Result<Decoded, E> {
                Ok(Decoded { text_len: 0 })
            }
            fn visit_u64<E>(self, _: u64) -> Result<Decoded, E> {
                Ok(Decoded { text_len: 0 })
            }
            fn visit_f64<E>(self, _: f64) -> Result<Decoded, E> {
                Ok(Decoded { text_len: 0 })
            }
            fn visit_unit<E>(self) -> Result<Decoded, E> {
                Ok(Decoded { text_len: 0 })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Decoded, A::Error> {
                while seq.next_element::<Decoded>()?.is_some() {}
                Ok(Decoded { text_len: 0 })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
                while map.next_entry::<Decoded, Decoded>()?.is_some() {}
                Ok(Decoded { text_len: 0 })
            }
        }
        d.deserialize_any(DecodedVisitor)
    }
}

enum Field {
    Model,
    Stream,
    StreamOptions,
    MaxTokens,
    MaxCompletionTokens,
    N,
    BestOf,
    User,
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
                    "n" => Field::N,
                    "best_of" => Field::BestOf,
                    "user" => Field::User,
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
                while seq.next_element::<Decoded>()?.is_some() {}
                Ok(ModelValue::NotText)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Decoded, Decoded>()?.is_some() {}
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
    fn with_model_names_the_member_and_keeps_the_rest() {
        let body =
            br#"{"model":"fast","messages":[{"role":"user","content":"h\u00e9"}],"n":2,"x":1.5e3}"#;
        let out: Value = serde_json::from_slice(&with_model(body, "gpt-4o-mini")).unwrap();
        let mut expected: Value = serde_json::from_slice(body).unwrap();
        expected["model"] = "gpt-4o-mini".into();
        assert_eq!(out, expected);
        // A second rewrite (the next attempt) replaces, never duplicates, the member.
        let twice = with_model(&with_model(body, "a"), "b");
        assert_eq!(inspect(&twice).unwrap().model, "b");
    }

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
        assert_eq!(needs(br#"{"model":"m","stream":null}"#), None);
        assert_eq!(
            needs(br#"{"model":"m","stream":true,"stream_options":null}"#),
            Some(UsageRequest::Rewrite)
        );
    }

    #[test]
    fn refuses_what_the_provider_could_read_differently() {
        let refused = |b: &[u8]| inspect(b).unwrap_err();
        for body in [
            &br#"{"model":"m","stream":"true"}"#[..],
            br#"{"model":"m","stream":1}"#,
            br#"{"model":"m","stream":true,"stream_options":[]}"#,
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":"true"}}"#,
            br#"{"model":"m","stream":false,"stream":true}"#,
            br#"{"model":"m","model":"n"}"#,
            br#"{"model":"m","n":1,"n":100}"#,
        ] {
            let err = refused(body);
            assert_eq!(
                (err.status(), err.code()),
                (400, "invalid_parameter"),
                "{body:?}"
            );
        }
        // Everything is decoded, not skipped: bodies that could not be re-encoded.
        for body in [
            &br#"{"model":"m","x":"\ud800"}"#[..],
            br#"{"model":"m","x":[{"y":1e400}]}"#,
            br#"{"model":"m","x":{"\udfff":1}}"#,
        ] {
            assert_eq!(refused(body).code(), "invalid_json", "{body:?}");
        }
        // A valid surrogate pair and large but finite numbers are fine.
        assert!(inspect(br#"{"model":"m","x":"\ud83d\ude00","y":1e300}"#).is_ok());
    }

    #[test]
    fn spooled_strings_are_bounded() {
        let long = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_SPOOLED_STRING + 1));
        assert_eq!(
            inspect(long.as_bytes()).unwrap_err(),
            GatewayError::TooLong("model")
        );
        let user = format!(
            r#"{{"model":"m","user":"{}"}}"#,
            "u".repeat(MAX_SPOOLED_STRING + 1)
        );
        assert_eq!(
            inspect(user.as_bytes()).unwrap_err(),
            GatewayError::TooLong("user")
        );
        let ok = format!(r#"{{"model":"{}"}}"#, "m".repeat(MAX_SPOOLED_STRING));
        assert!(inspect(ok.as_bytes()).is_ok());
    }

    #[test]
    fn counts_the_completions_asked_for() {
        let choices = |b: &[u8]| inspect(b).unwrap().choices;
        assert_eq!(choices(br#"{"model":"m"}"#), 1);
        assert_eq!(choices(br#"{"model":"m","n":4}"#), 4);
        assert_eq!(choices(br#"{"model":"m","n":2,"best_of":5}"#), 5);
        assert_eq!(choices(br#"{"model":"m","n":"9"}"#), 1);
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
