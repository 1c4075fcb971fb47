//! Loading the compiled records a key resolves to from the edge key-value store:
//! one `get` for the key, then one `get-many` for its org, team and agent.

use policy::records::{Versioned, decode};
use policy::{AgentRecord, Denial, Facts, KeyRecord, OrgRecord, Subject, TeamRecord, kv};
use serde::Deserialize;

use crate::bindings::wasi::keyvalue::{batch, store};
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
    let name = kv::KeyName::of(secret);
    let key_bytes = bucket
        .get(name.as_str())
        .map_err(|_| GatewayError::StoreUnavailable)?
        .ok_or(Denial::UnknownKey)?;
    let key: KeyRecord = decode_or_deny(&key_bytes, "key record unreadable")?;
    let names = related_keys(&key);
    let entries = batch::get_many(bucket, &names).map_err(|_| GatewayError::StoreUnavailable)?;
    Ok(assemble(key, &names, entries)?)
}

/// `org:`, then `team:` and `agent:` when the key names them, in that order.
fn related_keys(key: &KeyRecord) -> Vec<String> {
    let mut names = Vec::with_capacity(3);
    names.push(kv::org_key(&key.org_id));
    names.extend(key.team_id.as_deref().map(kv::team_key));
    names.extend(key.agent_id.as_deref().map(kv::agent_key));
    names
}

/// Decodes the `get-many` answer, matched by name rather than position so a store
/// that reorders or omits entries still cannot mix records up.
fn assemble(
    key: KeyRecord,
    names: &[String],
    entries: Vec<(String, Option<Vec<u8>>)>,
) -> Result<Records, Denial> {
    let find = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    };
    let org = find(&names[0]).ok_or(Denial::RecordUnavailable("organization record missing"))?;
    let org = decode_or_deny(org, "organization record unreadable")?;
    let mut rest = names[1..].iter();
    // A named team or agent whose record is absent reaches `authorize` as `None`,
    // which denies it as missing.
    let team = match key.team_id {
        Some(_) => rest
            .next()
            .and_then(|n| find(n))
            .map(|b| decode_or_deny(b, "team record unreadable"))
            .transpose()?,
        None => None,
    };
    let agent = match key.agent_id {
        Some(_) => rest
            .next()
            .and_then(|n| find(n))
            .map(|b| decode_or_deny(b, "agent record unreadable"))
            .transpose()?,
        None => None,
    };
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
    fn names_org_team_agent_in_one_batch() {
        assert_eq!(related_keys(&key(None, None)), ["org:o1"]);
        assert_eq!(
            related_keys(&key(Some("t1"), Some("a1"))),
            ["org:o1", "team:t1", "agent:a1"]
        );
        assert_eq!(related_keys(&key(None, Some("a1"))), ["org:o1", "agent:a1"]);
    }

    #[test]
    fn assembles_in_any_order() {
        let k = key(Some("t1"), Some("a1"));
        let names = related_keys(&k);
        let entries = vec![
            ("agent:a1".into(), Some(agent())),
            ("org:o1".into(), Some(org())),
            ("team:t1".into(), Some(team())),
        ];
        let records = assemble(k, &names, entries).unwrap();
        assert_eq!(records.authorize(&facts()), Ok(()));
    }

    #[test]
    fn missing_or_bad_records_deny() {
        let k = key(None, None);
        let names = related_keys(&k);
        let missing = assemble(k.clone(), &names, vec![("org:o1".into(), None)]).unwrap_err();
        assert_eq!(
            (missing.status(), missing.code()),
            (403, "policy_unavailable")
        );
        assert!(assemble(k.clone(), &names, vec![]).is_err());
        let bad = assemble(
            k.clone(),
            &names,
            vec![("org:o1".into(), Some(b"{}".to_vec()))],
        );
        assert!(matches!(bad, Err(Denial::RecordUnavailable(_))));
        let mut old: serde_json::Value = serde_json::from_slice(&org()).unwrap();
        old["schema_version"] = 2.into();
        let old = serde_json::to_vec(&old).unwrap();
        let stale = assemble(k, &names, vec![("org:o1".into(), Some(old))]);
        assert!(matches!(stale, Err(Denial::RecordUnavailable(_))));
    }

    #[test]
    fn absent_team_or_agent_denies_through_the_engine() {
        let k = key(Some("t1"), Some("a1"));
        let names = related_keys(&k);
        let no_team = assemble(
            k.clone(),
            &names,
            vec![
                ("org:o1".into(), Some(org())),
                ("team:t1".into(), None),
                ("agent:a1".into(), Some(agent())),
            ],
        )
        .unwrap();
        assert!(matches!(
            no_team.authorize(&facts()),
            Err(Denial::RecordUnavailable(_))
        ));
        let no_agent = assemble(
            k,
            &names,
            vec![
                ("org:o1".into(), Some(org())),
                ("team:t1".into(), Some(team())),
            ],
        )
        .unwrap();
        assert!(matches!(
            no_agent.authorize(&facts()),
            Err(Denial::RecordUnavailable(_))
        ));
        let garbled = assemble(
            key(Some("t1"), None),
            &["org:o1".into(), "team:t1".into()],
            vec![
                ("org:o1".into(), Some(org())),
                ("team:t1".into(), Some(b"x".to_vec())),
            ],
        );
        assert!(matches!(garbled, Err(Denial::RecordUnavailable(_))));
    }
}
