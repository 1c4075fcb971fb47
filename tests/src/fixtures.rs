//! Compiled records for the end-to-end tests, as KV entries (`(kv key, bytes)`), so
//! they can be loaded into any store the host offers.

use policy::records::{self, SCHEMA_VERSION};
use policy::{
    AgentRecord, IpAcl, KeyRecord, KeyStatus, Limits, ModelSet, OrgRecord, ProviderRoute, kv,
};

/// The credential the org holds for its provider; must reach the upstream, never a client.
pub const PROVIDER_KEY: &str = "sk-upstream-provider-secret";
/// The master key the admin service of the end-to-end tests runs with.
pub const MASTER_KEY: &str = "m-e2e:bWFzdGVyLWtleS1vZi10aGUtZTJlLXRlc3RzLTAwMDA=";
/// The edge key ring of the end-to-end tests (admin service and every edge).
pub const EDGE_KEYS: &str = "e-e2e:ZWRnZS1rZXktb2YtdGhlLWUyZS10ZXN0cy0wMDAwMDA=";

/// The edge key ring of the end-to-end tests.
pub fn edge_keys() -> policy::sealed::KeyRing {
    policy::sealed::KeyRing::parse(EDGE_KEYS).expect("test edge keys")
}

/// [`PROVIDER_KEY`] sealed as the admin service seals it into the record of
/// `provider` of `org_id`.
pub fn sealed_provider_key(org_id: &str, provider: &str) -> String {
    let mut nonce = [0u8; policy::sealed::NONCE_LEN];
    getrandom::fill(&mut nonce).expect("random nonce");
    edge_keys()
        .seal(
            nonce,
            PROVIDER_KEY.as_bytes(),
            &policy::sealed::provider_credential_aad(org_id, provider),
        )
        .expect("seal")
}
/// Models the test org's provider serves.
pub const SERVED: [&str; 4] = [
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "slow-model",
];

/// An active org whose single provider is `base_url` and serves [`SERVED`].
pub fn org(org_id: &str, base_url: &str) -> OrgRecord {
    OrgRecord {
        schema_version: SCHEMA_VERSION,
        org_id: org_id.into(),
        slug: org_id.into(),
        active: true,
        providers: vec![ProviderRoute {
            name: "mock".into(),
            base_url: base_url.into(),
            api_key: Some(sealed_provider_key(org_id, "mock")),
            models: SERVED
                .iter()
                .map(|m| m.parse().expect("model name"))
                .collect(),
            weight: None,
        }],
        limits: Limits::default(),
        budget: None,
        client_ip_header: None,
        prices: Vec::new(),
        max_in_flight: None,
        allowed_upstreams: policy::upstream::origin(base_url).into_iter().collect(),
        default_max_output_tokens: None,
        cache_ttl_seconds: None,
        store_content: false,
        routing: policy::Routing::default(),
    }
}

/// An active key of `org_id` allowed to call `models`.
pub fn key(key_id: &str, org_id: &str, models: &[&str]) -> KeyRecord {
    KeyRecord {
        schema_version: SCHEMA_VERSION,
        key_id: key_id.into(),
        org_id: org_id.into(),
        team_id: None,
        agent_id: None,
        status: KeyStatus::Active,
        expires_at_ms: None,
        models: ModelSet::from_patterns(models.iter().map(|m| m.parse().expect("model pattern"))),
        ip_acl: IpAcl::default(),
        limits: Limits::default(),
        budget: None,
        route_groups: Vec::new(),
    }
}

/// An agent record.
pub fn agent(agent_id: &str, org_id: &str, active: bool) -> AgentRecord {
    AgentRecord {
        schema_version: SCHEMA_VERSION,
        agent_id: agent_id.into(),
        org_id: org_id.into(),
        active,
    }
}

/// The KV entry of an org record.
pub fn org_entry(org: &OrgRecord) -> (String, Vec<u8>) {
    (kv::org_key(&org.org_id), records::encode(org))
}

/// The KV entry of a key record, stored under the hash of `secret`.
pub fn key_entry(secret: &str, key: &KeyRecord) -> (String, Vec<u8>) {
    (
        kv::KeyName::of(secret).as_str().to_string(),
        records::encode(key),
    )
}

/// The KV entry of an agent record.
pub fn agent_entry(agent: &AgentRecord) -> (String, Vec<u8>) {
    (kv::agent_key(&agent.agent_id), records::encode(agent))
}

/// A team record of `org_id` with no limits or budget.
pub fn team(team_id: &str, org_id: &str) -> policy::TeamRecord {
    policy::TeamRecord {
        schema_version: SCHEMA_VERSION,
        team_id: team_id.into(),
        org_id: org_id.into(),
        limits: Limits::default(),
        budget: None,
    }
}

/// The KV entry of a team record.
pub fn team_entry(team: &policy::TeamRecord) -> (String, Vec<u8>) {
    (kv::team_key(&team.team_id), records::encode(team))
}

/// A price for `model` in micro-units per million input and output tokens.
pub fn price(
    model: &str,
    input_per_mtok_micros: u64,
    output_per_mtok_micros: u64,
) -> policy::ModelPrice {
    policy::ModelPrice {
        model: model.parse().expect("model pattern"),
        input_per_mtok_micros,
        output_per_mtok_micros,
    }
}
