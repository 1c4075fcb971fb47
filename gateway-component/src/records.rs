//! Loading the compiled records a key resolves to from the edge key-value store:
//! one `get` for the key, then one `get` each for its org, team and agent.
//!
//! Single `get`s only: Spin 4.1's Redis store answers `batch.get-many` with a
//! `KEYS` command and panics, so batch reads are not portable across hosts.

use policy::records::{Versioned, decode};
use policy::{AgentRecord, Denial, Facts, KeyRecord, OrgRecord, Subject, TeamRecord, kv};
use serde::Deserialize;

use crate::bindings::wasi::keyvalue::store;
use crate::errors::GatewayError;

/// The key-value store the admin service pushes records into.
pub const STORE: &str = "default";

/// The records behind one presented key.
#[derive(Debug)]
pub struct Records {
    /// The key's record.
    pub key: KeyRecord,
    /// Its organization.
    pub org: OrgRecord,
    team: Option<TeamRecord>,
    agent: Option<AgentRecord>,
}

impl Records {
    /// The records as the policy engine sees them.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            key: &self.key,
            org: &self.org,
            team: self.team.as_ref(),
            agent: self.agent.as_ref(),
        }
    }

    /// Runs the policy engine on these records.
    pub fn authorize(&self, facts: &Facts<'_>) -> Result<(), Denial> {
        policy::authorize(&self.subject(), facts)
    }
}

/// Opens the edge store (records, counters and the usage spool live in one).
pub fn open() -> Result<store::Bucket, GatewayError> {
    store::open(STORE).map_err(|_| GatewayError::StoreUnavailable)
}

/// Reads and decodes the records of `secret`. An absent key record is an unknown
/// key; anything else missing or unreadable denies (fail closed).
pub fn load(bucket: &store::Bucket, secret: &str) -> Result<Records, GatewayError> {
    load_named(bucket, kv::KeyName::of(secret).as_str())
}

/// Like [`load`] for the key record named `name` (`key:<sha256 hex>`).
pub fn load_named(bucket: &store::Bucket, name: &str) -> Result<Records, GatewayError> {
    let get = |name: &str| bucket.get(name).map_err(|_| GatewayError::StoreUnavailable);
    let key_bytes = get(name)?.ok_or(Denial::UnknownKey)?;
    let key: KeyRecord = decode_or_deny(&key_bytes, "key record unreadable")?;
    let org = get(&kv::org_key(&key.org_id))?;
    let team = match key.team_id.as_deref() {
        Some(id) => get(&kv::team_key(id))?,
        None => None,
    };
    let agent = match key.agent_id.as_deref() {
        Some(id) => get(&kv::agent_key(id))?,
        None => None,
    };
    Ok(assemble(key, org, team, agent)?)
}

/// Decodes the org, team and agent records read for `key`. A named team or agent
/// whose record is absent reaches `authorize` as `None`, which denies it as
/// missing; an absent org denies here.
fn assemble(
    key: KeyRecord,
    org: Option<Vec<u8>>,
    team: Option<Vec<u8>>,
    agent: Option<Vec<u8>>,
) -> Result<Records, Denial> {
    let org = org.ok_or(Denial::RecordUnavailable("organization record missing"))?;
    let org = decode_or_deny(&org, "organization record unreadable")?;
    let team = team
        .filter(|_| key.team_id.is_some())
        .map(|b| decode_or_deny(&b, "team record unreadable"))
        .transpose()?;
    let agent = agent
        .filter(|_| key.agent_id.is_some())
        .map(|b| decode_or_deny(&b, "agent record unreadable"))
        .transpose()?;
    Ok(Records {
        key,
        org,
        team,
        agent,
    })
}

fn decode_or_deny<T: for<'de> Deserialize<'de> + Versioned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, Denial> {
    decode(bytes).map_err(|_| Denial::RecordUnavailable(what))
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::records::{SCHEMA_VERSION, encode};
    use policy::{IpAcl, KeyStatus, Limits, ModelSet};

    fn key(team: Option<&str>, agent: Option<&str>) -> KeyRecord {
        KeyRecord {
            schema_version: SCHEMA_VERSION,
            key_id: "k1".into(),
            org_id: "o1".into(),
            team_id: team.map(Into::into),
            agent_id: agent.map(Into::into),
            status: KeyStatus::Active,
            expires_at_ms: None,
            models: ModelSet::all(),
            ip_acl: IpAcl::default(),
            limits: Limits::default(),
            budget: None,
            route_groups: Vec::new(),
        }
    }

    fn org() -> Vec<u8> {
        encode(&OrgRecord {
            schema_version: SCHEMA_VERSION,
            org_id: "o1".into(),
            slug: "o1".into(),
            active: true,
            providers: vec![],
            limits: Limits::default(),
            budget: None,
            client_ip_header: None,
            prices: Vec::new(),
            max_in_flight: None,
            allowed_upstreams: Vec::new(),
            default_max_output_tokens: None,
            cache_ttl_seconds: None,
            store_content: false,
            routing: policy::Routing::default(),
        })
    }

    fn team() -> Vec<u8> {
        encode(&TeamRecord {
            schema_version: SCHEMA_VERSION,
            team_id: "t1".into(),
            org_id: "o1".into(),
            limits: Limits::default(),
            budget: None,
        })
    }

    fn agent() -> Vec<u8> {
        encode(&AgentRecord {
            schema_version: SCHEMA_VERSION,
            agent_id: "a1".into(),
            org_id: "o1".into(),
            active: true,
        })
    }

    fn facts() -> Facts<'static> {
        Facts {
            now_ms: 0,
            client_ip: None,
            model: None,
        }
    }

    #[test]
    fn assembles_org_team_agent() {
        let records = assemble(
            key(Some("t1"), Some("a1")),
            Some(org()),
            Some(team()),
            Some(agent()),
        )
        .unwrap();
        assert_eq!(records.authorize(&facts()), Ok(()));
    }

    #[test]
    fn missing_or_bad_records_deny() {
        let k = key(None, None);
        let missing = assemble(k.clone(), None, None, None).unwrap_err();
        assert_eq!(
            (missing.status(), missing.code()),
            (403, "policy_unavailable")
        );
        let bad = assemble(k.clone(), Some(b"{}".to_vec()), None, None);
        assert!(matches!(bad, Err(Denial::RecordUnavailable(_))));
        let mut old: serde_json::Value = serde_json::from_slice(&org()).unwrap();
        old["schema_version"] = 2.into();
        let old = serde_json::to_vec(&old).unwrap();
        let stale = assemble(k, Some(old), None, None);
        assert!(matches!(stale, Err(Denial::RecordUnavailable(_))));
    }

    #[test]
    fn absent_team_or_agent_denies_through_the_engine() {
        let k = key(Some("t1"), Some("a1"));
        let no_team = assemble(k.clone(), Some(org()), None, Some(agent())).unwrap();
        assert!(matches!(
            no_team.authorize(&facts()),
            Err(Denial::RecordUnavailable(_))
        ));
        let no_agent = assemble(k, Some(org()), Some(team()), None).unwrap();
        assert!(matches!(
            no_agent.authorize(&facts()),
            Err(Denial::RecordUnavailable(_))
        ));
        let garbled = assemble(
            key(Some("t1"), None),
            Some(org()),
            Some(b"x".to_vec()),
            None,
        );
        assert!(matches!(garbled, Err(Denial::RecordUnavailable(_))));
    }
}
