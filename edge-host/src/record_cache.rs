//! Records (keys, orgs, teams, agents) kept across requests. Each is valid while
//! the store's records version ([`RECORDS_VERSION_KEY`], which the admin service
//! bumps after every push of records) is the one it was read under. A request
//! reads the version first, one point read in place of two to four record reads,
//! so the next request after a push (a revocation) reads afresh, exactly as
//! without the cache. Where nothing bumps the version (records written by a
//! records file or by hand), it reads 0 and nothing is kept.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most records kept; past it the cache starts over (unknown keys are kept too,
/// so a flood of them must not grow it without bound).
const CAPACITY: usize = 65_536;

/// A record as read (`None`: absent) and the version it was read under.
type Entry = (i64, Option<Vec<u8>>);

/// The records of one edge process.
#[derive(Default)]
pub(crate) struct RecordCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
}

impl RecordCache {
    /// The records version read from the store, if records may be kept under it
    /// (0: nothing bumps it, so nothing is kept).
    pub(crate) fn usable_version(read: i64) -> Option<i64> {
        (read != 0).then_some(read)
    }

    /// `key` as read under `version`, if kept (`Some(None)`: known absent).
    pub(crate) fn get(&self, key: &str, version: i64) -> Option<Option<Vec<u8>>> {
        let entries = self.lock();
        match entries.get(key) {
            Some((read_under, value)) if *read_under == version => Some(value.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, read for `key` under `version` (read before the record).
    pub(crate) fn put(&self, key: &str, version: i64, value: Option<&[u8]>) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.into(), (version, value.map(<[u8]>::to_vec)));
    }

    /// Drops `key` (written by a guest: its own write must win).
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Entry>> {
        // Every operation is one map call: a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
