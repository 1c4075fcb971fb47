//! Usage events: one per forwarded request, and one per request denied after its
//! key resolved to an org (the request log), spooled in the edge KV under
//! `usage:<event_id>` and drained by the admin service, which stores each event id
//! once (so a drain repeated after a crash counts nothing twice).

use serde::{Deserialize, Serialize};

use crate::records::RecordError;

/// Prefix of spooled usage events in the edge KV.
pub const USAGE_PREFIX: &str = "usage:";
/// Counter of usage events spooled and not yet drained: the edge adds one per
/// event it writes, the admin drain subtracts what it removed. Outside the
/// `usage:` range the drain scans, and outside `ctr:`, which a store may expire.
pub const SPOOL_PENDING_KEY: &str = "spool:pending";
/// Spooled events the edge keeps before refusing new requests (503
/// `usage_spool_full`): about 300 MB of events if the admin drain stops.
pub const MAX_SPOOLED_EVENTS: u64 = 1_000_000;
/// Spooled events above which the edge stops logging denied requests (and counts
/// them under [`DENIALS_DROPPED_KEY`] instead): a flood of denials can fill at
/// most half the spool, so it never makes forwarded requests `usage_spool_full`.
pub const MAX_PENDING_FOR_DENIALS: u64 = MAX_SPOOLED_EVENTS / 2;
/// Counter of denied requests not logged because the spool was past
/// [`MAX_PENDING_FOR_DENIALS`]; outside `usage:` and `ctr:` like the pending count.
pub const DENIALS_DROPPED_KEY: &str = "spool:denials_dropped";

/// One request as the edge saw it: forwarded, or denied after its key resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    /// Unique id (random, 128-bit hex): the idempotency key of the drain.
    pub event_id: String,
    /// Organization charged.
    pub org_id: String,
    /// Team of the key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Virtual key id.
    pub key_id: String,
    /// Agent the key belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Model requested.
    pub model: String,
    /// Prompt tokens reported by the upstream (the edge's estimate when a
    /// successful answer reported none).
    pub input_tokens: u64,
    /// Completion tokens reported by the upstream (or the estimate, as above).
    pub output_tokens: u64,
    /// Cost in micro-units of the org's currency (0 when the model has no price).
    pub cost_micros: u64,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Time from request to the last byte relayed, in milliseconds.
    pub latency_ms: u64,
    /// When the request arrived, Unix milliseconds.
    pub at_ms: u64,
    /// Provider (the org config's name) that served the request; absent when no
    /// provider was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Route group the client named, when `model` is the group member that served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_group: Option<String>,
    /// Answered from the edge's response cache: no provider call, cost 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// OpenAI-style error code of a denied or failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Refused by the edge before any provider call (no tokens, no cost): a
    /// request-log entry that usage totals and billing leave out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
    /// The request and response bodies, for orgs that store content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

/// Bytes of a request or response body an event keeps; the rest is cut off.
pub const MAX_CONTENT_BYTES: usize = 32 * 1024;

/// The bodies of one request, as relayed (bounded by [`MAX_CONTENT_BYTES`] each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// The client's request body (UTF-8; invalid sequences replaced).
    pub request: String,
    /// The answer relayed to the client: JSON, or the SSE text of a stream.
    pub response: String,
    /// Whether either body was longer than the bound and was cut off.
    pub truncated: bool,
}

impl Content {
    /// The bounded, lossily decoded bodies.
    pub fn of(request: &[u8], response: &[u8]) -> Content {
        let cut =
            |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(MAX_CONTENT_BYTES)]).into_owned();
        Content {
            request: cut(request),
            response: cut(response),
            truncated: request.len() > MAX_CONTENT_BYTES || response.len() > MAX_CONTENT_BYTES,
        }
    }
}

impl UsageEvent {
    /// The KV key this event is spooled under.
    pub fn kv_key(&self) -> String {
        format!("{USAGE_PREFIX}{}", self.event_id)
    }

    /// Encodes the event for the KV spool.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("usage events serialize infallibly")
    }

    /// Decodes a spooled event.
    pub fn decode(bytes: &[u8]) -> Result<UsageEvent, RecordError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_fields() {
        let e = UsageEvent {
            event_id: "0123456789abcdef0123456789abcdef".into(),
            org_id: "org_1".into(),
            team_id: None,
            key_id: "key_1".into(),
            agent_id: Some("agent_1".into()),
            model: "gpt-4o".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost_micros: 75,
            status: 200,
            latency_ms: 12,
            at_ms: 1_700_000_000_000,
            provider: Some("openai".into()),
            route_group: None,
            cached: false,
            code: None,
            denied: false,
            content: Some(Content::of(b"{}", b"{}")),
        };
        assert_eq!(e.kv_key(), "usage:0123456789abcdef0123456789abcdef");
        assert_eq!(UsageEvent::decode(&e.encode()).unwrap(), e);
        let mut v: serde_json::Value = serde_json::from_slice(&e.encode()).unwrap();
        v["surprise"] = 1.into();
        assert!(UsageEvent::decode(v.to_string().as_bytes()).is_err());
    }

    #[test]
    fn content_is_cut_at_the_bound_and_says_so() {
        let big = vec![b'a'; MAX_CONTENT_BYTES + 1];
        let c = Content::of(&big, b"ok");
        assert_eq!(
            (c.request.len(), c.response.as_str()),
            (MAX_CONTENT_BYTES, "ok")
        );
        assert!(c.truncated);
        let whole = Content::of(&big[..MAX_CONTENT_BYTES], b"\xff");
        assert!(!whole.truncated);
        assert_eq!(
            whole.response, "\u{fffd}",
            "invalid UTF-8 is replaced, not refused"
        );
    }
}
