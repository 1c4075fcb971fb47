//! In-process key-value backend for tests and throwaway runs.

use std::collections::{BTreeMap, HashMap};
use std::future::ready;
use std::sync::{Mutex, MutexGuard};

use super::{KvBackend, KvError, KvFuture, add_counter, decode_counter};

type Stores = HashMap<String, BTreeMap<String, Vec<u8>>>;

/// Keys and values in a mutex-guarded map; every operation is atomic.
#[derive(Default)]
pub struct MemoryKv {
    stores: Mutex<Stores>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    fn lock(&self) -> MutexGuard<'_, Stores> {
        // A panic while holding the lock cannot leave a map half-updated (each
        // operation is a single insert/remove), so poisoning is ignored.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Stores) -> Result<T, KvError>,
    ) -> KvFuture<'static, T> {
        Box::pin(ready(f(&mut self.lock())))
    }
}

fn store<'s>(stores: &'s mut Stores, name: &str) -> &'s mut BTreeMap<String, Vec<u8>> {
    stores.entry(name.to_string()).or_default()
}

impl KvBackend for MemoryKv {
    fn get<'a>(&'a self, st: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.with(|s| Ok(s.get(st).and_then(|m| m.get(key)).cloned()))
    }

    fn set<'a>(&'a self, st: &'a str, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        self.with(|s| {
            store(s, st).insert(key.to_string(), value.to_vec());
            Ok(())
        })
    }

    fn delete<'a>(&'a self, st: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        self.with(|s| {
            if let Some(m) = s.get_mut(st) {
                m.remove(key);
            }
            Ok(())
        })
    }

    fn list_keys<'a>(&'a self, st: &'a str) -> KvFuture<'a, Vec<String>> {
        self.with(|s| {
            Ok(s.get(st)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default())
        })
    }

    fn increment<'a>(&'a self, st: &'a str, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        self.with(|s| {
            let m = store(s, st);
            let current = match m.get(key) {
                Some(v) => decode_counter(key, v)?,
                None => 0,
            };
            if delta == 0 {
                return Ok(current);
            }
            let new = add_counter(key, current, delta)?;
            m.insert(key.to_string(), new.to_le_bytes().to_vec());
            Ok(new)
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        st: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> KvFuture<'a, bool> {
        self.with(|s| {
            let m = store(s, st);
            if m.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            m.insert(key.to_string(), new.to_vec());
            Ok(true)
        })
    }

    fn set_many<'a>(&'a self, st: &'a str, entries: &'a [(String, Vec<u8>)]) -> KvFuture<'a, ()> {
        self.with(|s| {
            let m = store(s, st);
            for (k, v) in entries {
                m.insert(k.clone(), v.clone());
            }
            Ok(())
        })
    }
}
