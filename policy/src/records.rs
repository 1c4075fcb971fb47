//! The compiled records: what the admin service writes and the edge reads.
//!
//! Records are self-contained: every grant is already intersected, every group
//! resolved and every CIDR parsed, so the edge only looks things up.

use serde::{Deserialize, Serialize};

use crate::acl::IpAcl;
use crate::limits::{Budget, Limits};
use crate::models::{ModelPattern, ModelSet};
use crate::pricing::ModelPrice;
use crate::routing::Routing;

/// Version of the record schema; the edge denies records of any other version.
pub const SCHEMA_VERSION: u32 = 1;

/// Errors decoding a record read from the key-value store.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bytes are not a record of this kind.
    #[error("record is not valid: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The record was written for another schema version.
    #[error("record has schema_version {found}, this edge reads {SCHEMA_VERSION}")]
    Version {
        /// The version the record carries.
        found: u32,
    },
}

/// Decodes a record and checks its schema version (fail closed on anything else).
pub fn decode<T: for<'de> Deserialize<'de> + Versioned>(bytes: &[u8]) -> Result<T, RecordError> {
    let record: T = serde_json::from_slice(bytes)?;
    match record.schema_version() {
        SCHEMA_VERSION => Ok(record),
        found => Err(RecordError::Version { found }),
    }
}

/// Encodes a record for the key-value store.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).expect("records serialize infallibly")
}

/// A record that carries a schema version.
pub trait Versioned {
    /// The `schema_version` field.
    fn schema_version(&self) -> u32;
}

macro_rules! versioned {
    ($($t:ty),*) => {$(
        impl Versioned for $t {
            fn schema_version(&self) -> u32 {
                self.schema_version
            }
        }
    )*};
}
versioned!(KeyRecord, OrgRecord, TeamRecord, AgentRecord);

/// Whether a virtual key may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Usable until `expires_at_ms`.
    Active,
    /// Revoked by an operator; never usable again.
    Revoked,
}

/// A virtual key, stored under `key:<sha256 hex of the full key>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable id of the key (not the secret).
    pub key_id: String,
    /// Owning organization.
    pub org_id: String,
    /// Team the key belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// Agent the key is bound to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Active or revoked.
    pub status: KeyStatus,
    /// Unix time in milliseconds after which the key is expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// Effective model set: org ∩ team ∩ key grants, groups resolved.
    pub models: ModelSet,
    /// Effective IP ACL of the key.
    #[serde(default)]
    pub ip_acl: IpAcl,
    /// Key-scope rate limits.
    #[serde(default)]
    pub limits: Limits,
    /// Key-scope budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Route groups of the org (sorted) of which the key may call at least one
    /// member: the names it may send as `model`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_groups: Vec<String>,
}

/// An upstream provider of an organization.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderRoute {
    /// Operator-chosen provider name (e.g. `openai`).
    pub name: String,
    /// OpenAI-compatible base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Credential sent upstream as `Authorization: Bearer`, sealed under the edge
    /// key ([`crate::sealed`], associated data
    /// [`crate::sealed::provider_credential_aad`]); the edge opens it only for the
    /// outgoing call and refuses the request when it does not open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Models this provider serves: exact names or `*` patterns.
    pub models: Vec<ModelPattern>,
    /// Share of requests under the `weighted` strategy (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

impl std::fmt::Debug for ProviderRoute {
    // The credential never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRoute")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("models", &self.models)
            .field("weight", &self.weight)
            .finish()
    }
}

/// An organization, stored under `org:<org_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRecord {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Organization id.
    pub org_id: String,
    /// Immutable slug.
    pub slug: String,
    /// Inactive organizations are denied (403).
    pub active: bool,
    /// Providers in routing order: a model goes to the first that serves it.
    #[serde(default)]
    pub providers: Vec<ProviderRoute>,
    /// Org-scope rate limits, shared by all teams and keys of the org.
    #[serde(default)]
    pub limits: Limits,
    /// Org-scope budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Trusted forwarding header carrying the client IP (e.g. `x-forwarded-for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Model prices (per 1M tokens, in the org's currency) that price spend; an
    /// org default price comes last as the pattern `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<ModelPrice>,
    /// Requests of the org the edge host runs at once (streams included);
    /// absent: the host's default. Enforced before a guest instance is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Origins (`scheme://host:port`) the edge may call for this org: those of its
    /// providers. Anything else is refused, whatever a provider's `base_url` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_upstreams: Vec<String>,
    /// Output tokens reserved for a request that sets no `max_tokens`
    /// ([`crate::limits::DEFAULT_OUTPUT_TOKENS`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_output_tokens: Option<u64>,
    /// Seconds a cached answer is served for; absent: the response cache is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_ttl_seconds: Option<u32>,
    /// Usage events carry the request and response bodies (bounded) for the admin
    /// service to keep for the org's retention (`audit.store_content`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store_content: bool,
    /// Strategy, failover, cooldown and the route groups the org grants.
    #[serde(default, skip_serializing_if = "Routing::is_default")]
    pub routing: Routing,
}

impl OrgRecord {
    /// The first provider that serves `model`, in the org's order.
    pub fn route(&self, model: &str) -> Option<&ProviderRoute> {
        self.providers
            .iter()
            .find(|p| p.models.iter().any(|m| m.matches(model)))
    }

    /// Whether the edge may call `base_url` for this org: its origin is one the
    /// admin service compiled in (fail closed on anything unparseable).
    pub fn may_call(&self, base_url: &str) -> bool {
        crate::upstream::origin(base_url).is_some_and(|o| self.allowed_upstreams.contains(&o))
    }
}

/// A team, stored under `team:<team_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRecord {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Team id.
    pub team_id: String,
    /// Owning organization.
    pub org_id: String,
    /// Team-scope rate limits, shared by the team's keys.
    #[serde(default)]
    pub limits: Limits,
    /// Team-scope budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// An AI agent, stored under `agent:<agent_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRecord {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Agent id.
    pub agent_id: String,
    /// Organization the agent is currently assigned to.
    pub org_id: String,
    /// Suspended agents are denied (403).
    pub active: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgRecord {
        OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: "o1".into(),
            slug: "acme".into(),
            active: true,
            providers: vec![
                ProviderRoute {
                    name: "a".into(),
                    base_url: "http://a".into(),
                    api_key: Some("sk-secret".into()),
                    models: vec!["gpt-4o".parse().unwrap()],
                    weight: None,
                },
                ProviderRoute {
                    name: "b".into(),
                    base_url: "http://b".into(),
                    api_key: None,
                    models: vec!["gpt-*".parse().unwrap()],
                    weight: Some(2),
                },
            ],
            limits: Limits::default(),
            budget: None,
            client_ip_header: None,
            prices: Vec::new(),
            max_in_flight: None,
            allowed_upstreams: vec!["http://a:80".into()],
            default_max_output_tokens: None,
            cache_ttl_seconds: None,
            store_content: false,
            routing: Routing::default(),
        }
    }

    #[test]
    fn routes_to_first_provider_serving_the_model() {
        let org = org();
        assert_eq!(org.route("gpt-4o").unwrap().name, "a");
        assert_eq!(org.route("gpt-4o-mini").unwrap().name, "b");
        assert!(org.route("claude-3").is_none());
    }

    #[test]
    fn only_compiled_origins_may_be_called() {
        let org = org();
        assert!(org.may_call("http://a/v1"));
        assert!(org.may_call("HTTP://A:80"));
        assert!(!org.may_call("http://b"));
        assert!(!org.may_call("http://a:81"));
        assert!(!org.may_call("https://a"));
        assert!(!org.may_call("not a url"));
    }

    #[test]
    fn round_trips_and_rejects_other_versions() {
        let org = org();
        let bytes = encode(&org);
        assert_eq!(decode::<OrgRecord>(&bytes).unwrap(), org);
        let mut old = org.clone();
        old.schema_version = 0;
        assert!(matches!(
            decode::<OrgRecord>(&encode(&old)),
            Err(RecordError::Version { found: 0 })
        ));
        assert!(matches!(
            decode::<OrgRecord>(b"{not json"),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn debug_never_shows_the_provider_credential() {
        let shown = format!("{:?}", org());
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
