//! In-process key-value backend for tests and throwaway runs.
//!
//! Counters expire [`COUNTER_TTL`] after their creation, as in Redis: an
//! expired counter reads as absent and is swept out periodically.

use std::collections::{BTreeMap, HashMap};
use std::future::ready;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{
    COUNTER_TTL, KvBackend, KvError, KvFuture, SweepSchedule, add_counter, decode_counter,
    is_counter,
};

type Stores = HashMap<String, BTreeMap<String, Vec<u8>>>;

#[derive(Default)]
struct Data {
    stores: Stores,
    /// Expiry of each live counter, by (store, key).
    expires: HashMap<(String, String), Instant>,
}

impl Data {
    /// Removes `key` if it is a counter past its expiry.
    fn expire(&mut self, st: &str, key: &str, now: Instant) {
        if !is_counter(key) {
            return;
        }
        let id = (st.to_string(), key.to_string());
        if self.expires.get(&id).is_some_and(|at| *at <= now) {
            self.expires.remove(&id);
            if let Some(m) = self.stores.get_mut(st) {
                m.remove(key);
            }
        }
    }

    /// Sets `key`; as Redis's SET, a counter written this way no longer expires.
    fn set(&mut self, st: &str, key: &str, value: &[u8]) {
        if is_counter(key) {
            self.expires.remove(&(st.to_string(), key.to_string()));
        }
        store(&mut self.stores, st).insert(key.to_string(), value.to_vec());
    }

    /// Adds `delta` to the counter at `key` (a zero delta only reads).
    fn increment(
        &mut self,
        st: &str,
        key: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<i64, KvError> {
        let m = store(&mut self.stores, st);
        let current = match m.get(key) {
            Some(v) => Some(decode_counter(key, v)?),
            None => None,
        };
        if delta == 0 {
            return Ok(current.unwrap_or(0));
        }
        let new = add_counter(key, current.unwrap_or(0), delta)?;
        m.insert(key.to_string(), new.to_le_bytes().to_vec());
        if current.is_none() && is_counter(key) {
            // Created now: expires a TTL from now, as Redis's EXPIRE on a first INCRBY.
            self.expires
                .insert((st.to_string(), key.to_string()), Instant::now() + ttl);
        }
        Ok(new)
    }

    /// Removes every expired counter.
    fn sweep(&mut self, now: Instant) {
        let stores = &mut self.stores;
        self.expires.retain(|(st, key), at| {
            let live = *at > now;
            if !live && let Some(m) = stores.get_mut(st) {
                m.remove(key);
            }
            live
        });
    }
}

/// Keys and values in a mutex-guarded map; every operation is atomic.
pub struct MemoryKv {
    data: Mutex<Data>,
    ttl: Duration,
    sweeps: SweepSchedule,
}

impl Default for MemoryKv {
    fn default() -> Self {
        MemoryKv::with_counter_ttl(COUNTER_TTL)
    }
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// An empty store whose counters expire `ttl` after creation (tests use a
    /// short one to watch expiry happen).
    pub fn with_counter_ttl(ttl: Duration) -> MemoryKv {
        MemoryKv {
            data: Mutex::default(),
            ttl,
            sweeps: SweepSchedule::new(ttl),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave a map half-updated (each
        // operation is a single insert/remove), so poisoning is ignored.
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the data, `key` already expired if due (and everything
    /// expired swept, once per sweep interval).
    fn with<T: Send + 'static>(
        &self,
        st: &str,
        key: Option<&str>,
        f: impl FnOnce(&mut Data) -> Result<T, KvError>,
    ) -> KvFuture<'static, T> {
        let now = Instant::now();
        let mut data = self.lock();
        if self.sweeps.due() {
            data.sweep(now);
        } else if let Some(key) = key {
            data.expire(st, key, now);
        }
        Box::pin(ready(f(&mut data)))
    }
}

fn store<'s>(stores: &'s mut Stores, name: &str) -> &'s mut BTreeMap<String, Vec<u8>> {
    stores.entry(name.to_string()).or_default()
}

impl KvBackend for MemoryKv {
    fn get<'a>(&'a self, st: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.with(st, Some(key), |d| {
            Ok(d.stores.get(st).and_then(|m| m.get(key)).cloned())
        })
    }

    fn set<'a>(&'a self, st: &'a str, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        self.with(st, Some(key), |d| {
            d.set(st, key, value);
            Ok(())
        })
    }

    fn delete<'a>(&'a self, st: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        self.with(st, Some(key), |d| {
            if is_counter(key) {
                d.expires.remove(&(st.to_string(), key.to_string()));
            }
            if let Some(m) = d.stores.get_mut(st) {
                m.remove(key);
            }
            Ok(())
        })
    }

    fn list_keys<'a>(&'a self, st: &'a str) -> KvFuture<'a, Vec<String>> {
        let now = Instant::now();
        let mut data = self.lock();
        data.sweep(now);
        Box::pin(ready(Ok(data
            .stores
            .get(st)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())))
    }

    fn increment<'a>(&'a self, st: &'a str, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        let ttl = self.ttl;
        self.with(st, Some(key), move |d| d.increment(st, key, delta, ttl))
    }

    fn update<'a>(
        &'a self,
        st: &'a str,
        deltas: &'a [(String, i64)],
        values: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, Vec<i64>> {
        let ttl = self.ttl;
        self.with(st, None, move |d| {
            let now = Instant::now();
            for (key, _) in values {
                d.expire(st, key, now);
            }
            // Every counter is checked before anything is written, so one that
            // cannot move leaves the store as it was (no snapshot to put back).
            let mut moved: Vec<(&str, i64)> = Vec::with_capacity(deltas.len());
            for (key, delta) in deltas {
                d.expire(st, key, now);
                let current = match moved.iter().rev().find(|(k, _)| *k == key) {
                    Some(&(_, counted)) => Some(counted),
                    None => match values.iter().rev().find(|(k, _)| k == key) {
                        Some((_, value)) => Some(decode_counter(key, value)?),
                        None => match d.stores.get(st).and_then(|m| m.get(key)) {
                            Some(value) => Some(decode_counter(key, value)?),
                            None => None,
                        },
                    },
                };
                let counted = match delta {
                    0 => current.unwrap_or(0),
                    _ => add_counter(key, current.unwrap_or(0), *delta)?,
                };
                moved.push((key, counted));
            }
            for (key, value) in values {
                d.set(st, key, value);
            }
            deltas
                .iter()
                .map(|(key, delta)| d.increment(st, key, *delta, ttl))
                .collect()
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        st: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> KvFuture<'a, bool> {
        self.with(st, Some(key), |d| {
            let m = store(&mut d.stores, st);
            if m.get(key).map(Vec::as_slice) != expected {
                return Ok(false);
            }
            m.insert(key.to_string(), new.to_vec());
            Ok(true)
        })
    }

    fn set_many<'a>(&'a self, st: &'a str, entries: &'a [(String, Vec<u8>)]) -> KvFuture<'a, ()> {
        self.with(st, None, |d| {
            for (k, _) in entries.iter().filter(|(k, _)| is_counter(k)) {
                d.expires.remove(&(st.to_string(), k.clone()));
            }
            let m = store(&mut d.stores, st);
            for (k, v) in entries {
                m.insert(k.clone(), v.clone());
            }
            Ok(())
        })
    }
}
