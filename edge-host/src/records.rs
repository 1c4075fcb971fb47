//! The quick-start records file: orgs, teams, agents and keys loaded into the
//! edge store at startup, validated as a whole before anything is written.

use std::collections::HashSet;
use std::path::Path;

use policy::kv::{KeyName, agent_key, org_key, team_key};
use policy::records::encode;
use policy::{AgentRecord, KeyRecord, OrgRecord, SCHEMA_VERSION, TeamRecord};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The prefix every virtual key carries.
pub const SECRET_PREFIX: &str = "sk-tg-";

/// A records file that cannot be loaded; names the file and the entry.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The file could not be read.
    #[error("reading records file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file or one of its entries is invalid.
    #[error("records file {path}: {entry}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Which entry, e.g. `keys[2]` or `the file`.
        entry: String,
        /// What is wrong with it.
        message: String,
    },
}

/// The file's top level; each section is parsed entry by entry so an error can
/// name the entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    orgs: Vec<Value>,
    #[serde(default)]
    teams: Vec<Value>,
    #[serde(default)]
    agents: Vec<Value>,
    #[serde(default)]
    keys: Vec<Value>,
}

/// A key entry: the plaintext secret (hashed before storing) and its record.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    secret: String,
    record: KeyRecord,
}

/// Reads and validates a records file into the KV entries it stands for.
pub fn load_file(path: &Path) -> Result<Entries, RecordsError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|Invalid { entry, message }| RecordsError::Invalid {
        path: path.display().to_string(),
        entry,
        message,
    })
}

/// KV entries a records file stands for: `(key, encoded record)`.
pub type Entries = Vec<(String, Vec<u8>)>;

/// One invalid entry: which (`keys[2] (k1)`, `the file`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct Invalid {
    /// The entry.
    pub entry: String,
    /// What is wrong with it.
    pub message: String,
}

fn entry<T: DeserializeOwned>(section: &str, i: usize, v: Value) -> Result<T, Invalid> {
    serde_json::from_value(v).map_err(|e| Invalid {
        entry: format!("{section}[{i}]"),
        message: e.to_string(),
    })
}

fn check(
    ok: bool,
    at: impl FnOnce() -> String,
    message: impl FnOnce() -> String,
) -> Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            entry: at(),
            message: message(),
        })
    }
}

/// Validates the file's text into KV entries; the error names the entry.
pub fn parse(text: &str) -> Result<Entries, Invalid> {
    let raw: RawFile = serde_json::from_str(text).map_err(|e| Invalid {
        entry: "the file".to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    let version =
        |found: u32| format!("schema_version is {found}, this edge reads {SCHEMA_VERSION}");

    let mut orgs = HashSet::new();
    for (i, v) in raw.orgs.into_iter().enumerate() {
        let org: OrgRecord = entry("orgs", i, v)?;
        let at = || format!("orgs[{i}] ({})", org.org_id);
        check(org.schema_version == SCHEMA_VERSION, at, || {
            version(org.schema_version)
        })?;
        check(!org.org_id.is_empty(), at, || "org_id is empty".into())?;
        check(orgs.insert(org.org_id.clone()), at, || {
            "duplicate org_id".into()
        })?;
        out.push((org_key(&org.org_id), encode(&org)));
    }

    let mut teams = HashSet::new();
    for (i, v) in raw.teams.into_iter().enumerate() {
        let team: TeamRecord = entry("teams", i, v)?;
        let at = || format!("teams[{i}] ({})", team.team_id);
        check(team.schema_version == SCHEMA_VERSION, at, || {
            version(team.schema_version)
        })?;
        check(!team.team_id.is_empty(), at, || "team_id is empty".into())?;
        check(orgs.contains(&team.org_id), at, || {
            format!("org {:?} is not in orgs", team.org_id)
        })?;
        check(teams.insert(team.team_id.clone()), at, || {
            "duplicate team_id".into()
        })?;
        out.push((team_key(&team.team_id), encode(&team)));
    }

    let mut agents = HashSet::new();
    for (i, v) in raw.agents.into_iter().enumerate() {
        let agent: AgentRecord = entry("agents", i, v)?;
        let at = || format!("agents[{i}] ({})", agent.agent_id);
        check(agent.schema_version == SCHEMA_VERSION, at, || {
            version(agent.schema_version)
        })?;
        check(!agent.agent_id.is_empty(), at, || {
            "agent_id is empty".into()
        })?;
        check(orgs.contains(&agent.org_id), at, || {
            format!("org {:?} is not in orgs", agent.org_id)
        })?;
        check(agents.insert(agent.agent_id.clone()), at, || {
            "duplicate agent_id".into()
        })?;
        out.push((agent_key(&agent.agent_id), encode(&agent)));
    }

    let mut key_ids = HashSet::new();
    let mut secrets = HashSet::new();
    for (i, v) in raw.keys.into_iter().enumerate() {
        let KeyEntry { secret, record } = entry("keys", i, v)?;
        // The secret never appears in an error: name the entry by its key_id.
        let at = || format!("keys[{i}] ({})", record.key_id);
        check(record.schema_version == SCHEMA_VERSION, at, || {
            version(record.schema_version)
        })?;
        check(!record.key_id.is_empty(), at, || "key_id is empty".into())?;
        check(
            secret.starts_with(SECRET_PREFIX) && secret.len() > SECRET_PREFIX.len(),
            at,
            || format!("secret must start with {SECRET_PREFIX:?}"),
        )?;
        check(orgs.contains(&record.org_id), at, || {
            format!("org {:?} is not in orgs", record.org_id)
        })?;
        if let Some(team) = &record.team_id {
            check(teams.contains(team), at, || {
                format!("team {team:?} is not in teams")
            })?;
        }
        if let Some(agent) = &record.agent_id {
            check(agents.contains(agent), at, || {
                format!("agent {agent:?} is not in agents")
            })?;
        }
        check(key_ids.insert(record.key_id.clone()), at, || {
            "duplicate key_id".into()
        })?;
        check(secrets.insert(secret.clone()), at, || {
            "duplicate secret".into()
        })?;
        out.push((KeyName::of(&secret).as_str().to_string(), encode(&record)));
    }
    Ok(out)
}
