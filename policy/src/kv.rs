//! The edge key-value layout: which record lives under which key.
//!
//! Keys are built on the stack where the inference path needs them, so a lookup
//! costs no allocation.

use sha2::{Digest, Sha256};

use crate::limits::{Metric, Scope};

/// Prefix of virtual-key records: `key:<sha256 hex of the full key>`.
pub const KEY_PREFIX: &str = "key:";
/// Prefix of organization records: `org:<org_id>`.
pub const ORG_PREFIX: &str = "org:";
/// Prefix of team records: `team:<team_id>`.
pub const TEAM_PREFIX: &str = "team:";
/// Prefix of agent records: `agent:<agent_id>`.
pub const AGENT_PREFIX: &str = "agent:";

/// A counter the admin service adds 1 to with every push of records, after the
/// records: an edge may keep a record it read while this version stands. Absent
/// (0) where nothing announces its writes (a records file, tests): nothing is kept.
/// Not under [`COUNTER_PREFIX`], so it never expires.
pub const RECORDS_VERSION_KEY: &str = "records:version";

/// Whether `key` names a record (a key, org, team or agent).
pub fn is_record(key: &str) -> bool {
    [KEY_PREFIX, ORG_PREFIX, TEAM_PREFIX, AGENT_PREFIX]
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// Prefix of every counter (rate-limit windows and budget spend); a store may
/// expire these once no window or period that reads them can still be current.
pub const COUNTER_PREFIX: &str = "ctr:";

const KEY_NAME_LEN: usize = KEY_PREFIX.len() + 64;

/// SHA-256 of a presented virtual key: the only form in which keys are stored.
pub fn key_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Lower-case hex of a key hash.
pub fn key_hash_hex(secret: &str) -> String {
    let name = KeyName::of(secret);
    name.as_str()[KEY_PREFIX.len()..].to_string()
}

/// The KV key of a virtual key's record, built without allocating.
#[derive(Clone, Copy)]
pub struct KeyName([u8; KEY_NAME_LEN]);

impl KeyName {
    /// `key:<sha256 hex>` of the presented secret.
    pub fn of(secret: &str) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; KEY_NAME_LEN];
        buf[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX.as_bytes());
        for (i, b) in key_hash(secret).iter().enumerate() {
            buf[KEY_PREFIX.len() + 2 * i] = HEX[usize::from(b >> 4)];
            buf[KEY_PREFIX.len() + 2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        KeyName(buf)
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII prefix and hex digits are ever written.
        std::str::from_utf8(&self.0).expect("ascii")
    }
}

/// `org:<id>`.
pub fn org_key(org_id: &str) -> String {
    format!("{ORG_PREFIX}{org_id}")
}

/// `team:<id>`.
pub fn team_key(team_id: &str) -> String {
    format!("{TEAM_PREFIX}{team_id}")
}

/// `agent:<id>`.
pub fn agent_key(agent_id: &str) -> String {
    format!("{AGENT_PREFIX}{agent_id}")
}

/// `ctr:<scope>:<id>:<metric>:<window>`: the counter of one scope in one window.
pub fn counter_key(scope: Scope, id: &str, metric: Metric, window_index: u64) -> String {
    format!(
        "{COUNTER_PREFIX}{}:{id}:{}:{window_index}",
        scope.as_str(),
        metric.as_str()
    )
}

/// `ctr:<scope>:<id>:spend:<period_start_ms>`: spend (and reservations in flight)
/// of one scope's budget period, in micro-units.
pub fn spend_key(scope: Scope, id: &str, period_start_ms: u64) -> String {
    format!(
        "{COUNTER_PREFIX}{}:{id}:spend:{period_start_ms}",
        scope.as_str()
    )
}

/// Prefix of provider cooldown states: `cool:<org_id>:<provider name>`, holding
/// the provider's failure streak and the time its cooldown ends.
pub const COOLDOWN_PREFIX: &str = "cool:";

/// `cool:<org_id>:<provider>`: a provider's cooldown state (plain bytes, `set`).
pub fn cooldown_key(org_id: &str, provider: &str) -> String {
    format!("{COOLDOWN_PREFIX}{org_id}:{provider}")
}

/// `ctr:fail:<org_id>:<provider>`: consecutive failed calls of a provider, counted
/// atomically across edge nodes.
pub fn failures_key(org_id: &str, provider: &str) -> String {
    format!("{COUNTER_PREFIX}fail:{org_id}:{provider}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_name_is_prefix_and_sha256_hex() {
        // sha256("abc"), a published test vector.
        assert_eq!(
            KeyName::of("abc").as_str(),
            "key:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(key_hash_hex("abc"), &KeyName::of("abc").as_str()[4..]);
    }

    #[test]
    fn record_and_counter_keys() {
        assert_eq!(org_key("o1"), "org:o1");
        assert_eq!(team_key("t1"), "team:t1");
        assert_eq!(agent_key("a1"), "agent:a1");
        assert_eq!(
            counter_key(Scope::Org, "o1", Metric::Rpm, 7),
            "ctr:org:o1:rpm:7"
        );
        assert_eq!(
            spend_key(Scope::Team, "t1", 86_400_000),
            "ctr:team:t1:spend:86400000"
        );
        assert_eq!(cooldown_key("o1", "openai"), "cool:o1:openai");
        assert_eq!(failures_key("o1", "openai"), "ctr:fail:o1:openai");
    }
}
