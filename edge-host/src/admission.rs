//! Admission control: the per-org in-flight cap, taken from the presented key
//! before any guest instance is, and the instance pool every admitted request
//! waits on. One tenant's flood then costs it its own cap, never the others' slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use policy::credentials::{AUTHORIZATION, X_API_KEY, presented_key};
use policy::kv::{KeyName, RECORDS_VERSION_KEY, org_key};
use policy::usage::SPOOL_PENDING_KEY;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error_response::HostError;
use crate::kv::{DEFAULT_STORE, Kv};
use crate::record_cache::RecordCache;

/// How long an admitted request waits for a free guest instance before a 503.
const INSTANCE_WAIT: Duration = Duration::from_secs(5);

/// The edge's resource limits (CLI flags of `tollgate-edge serve`).
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Open client connections; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Guest instances alive at once (the pooling allocator's size).
    pub max_instances: u32,
    /// Threads serving connections, each a single-threaded runtime; by default
    /// one per core.
    pub serving_threads: usize,
    /// Time for a request head to arrive (also how long an idle keep-alive
    /// connection stays open); a late head gets 408 and the connection closes.
    pub header_read_timeout: Duration,
    /// Time for a whole request body to arrive; a late body gets 408.
    pub body_read_timeout: Duration,
    /// In-flight requests per org whose record sets no `max_in_flight`.
    pub org_max_in_flight: u32,
    /// In-flight requests, all together, that present no known key (the guest
    /// answers them 401).
    pub anonymous_max_in_flight: u32,
    /// Time a request's guest may spend executing (its own CPU, not waits).
    pub guest_cpu_limit: Duration,
    /// Time from a guest's start until it must have answered with a response
    /// head; bounds how long one request holds an instance before answering.
    pub guest_response_deadline: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            max_connections: 4096,
            max_instances: 256,
            serving_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            org_max_in_flight: 64,
            anonymous_max_in_flight: 32,
            guest_cpu_limit: Duration::from_secs(2),
            // Longer than the default connect plus first-byte timeouts, so only a
            // guest stuck past every upstream timeout hits it.
            guest_response_deadline: Duration::from_secs(330),
        }
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Tenant {
    Org(Arc<str>),
    /// No key, or one the store does not know.
    Anonymous,
}

/// The fields of a key record admission reads.
#[derive(Deserialize)]
struct KeyOrg {
    org_id: String,
}

/// The fields of an org record admission reads.
#[derive(Deserialize)]
struct OrgCap {
    #[serde(default)]
    max_in_flight: Option<u32>,
}

/// Shared admission state of one server.
pub(crate) struct Admission {
    kv: Kv,
    /// Records kept across requests, shared with the guests' reads.
    cache: Arc<RecordCache>,
    org_default: u32,
    anonymous: u32,
    in_flight: Mutex<HashMap<Tenant, u32>>,
    instances: Arc<Semaphore>,
    /// The pool's size (all permits of `instances`).
    instance_count: u32,
}

/// A request's place under its tenant's cap; freed on drop.
pub(crate) struct Slot {
    admission: Arc<Admission>,
    tenant: Tenant,
    /// The records admission read, handed to the guest (see [`Prefetched`]).
    prefetched: Prefetched,
}

impl Slot {
    /// The records read to admit the request, for its guest.
    pub(crate) fn take_prefetched(&mut self) -> Prefetched {
        std::mem::take(&mut self.prefetched)
    }

    /// The org the request counts against, if its key is known.
    pub(crate) fn org(&self) -> Option<Arc<str>> {
        match &self.tenant {
            Tenant::Org(id) => Some(id.clone()),
            Tenant::Anonymous => None,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.admission.lock();
        if let Some(n) = map.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                // Only tenants with requests in flight keep an entry.
                map.remove(&self.tenant);
            }
        }
    }
}

/// What an admitted request holds until its guest is done: its tenant slot and
/// its guest instance.
/// Records of the default store admission read for one request (the key
/// record and its org's, or the key's absence), served to that request's guest
/// instead of reading them again: a snapshot taken a moment before the guest
/// starts, which is what the guest would have read at that moment. Never shared
/// between requests, so a record changed or revoked is seen by the next one.
#[derive(Debug, Default)]
pub(crate) struct Prefetched {
    records: Vec<(Box<str>, Option<Vec<u8>>)>,
    /// The records version read for this request: records read under it may be
    /// served from, and kept in, the [`RecordCache`]; none: every read goes to
    /// the store.
    pub(crate) version: Option<i64>,
    /// The usage spool's pending count, read with the version in the same store
    /// call: every guest reads it before forwarding (the spool's room), and a
    /// key without limits reads nothing else. Like any read of it, a moment old
    /// by the time it is checked; concurrent requests could always pass the cap
    /// together, by as many as are in flight.
    pending: Option<i64>,
}

impl Prefetched {
    /// The value read for `key`, if it was read (`Some(None)`: read, absent);
    /// served once, a second read goes to the store.
    pub(crate) fn take(&mut self, key: &str) -> Option<Option<Vec<u8>>> {
        let i = self.records.iter().position(|(k, _)| **k == *key)?;
        Some(self.records.swap_remove(i).1)
    }

    /// Forgets `key` (the guest wrote it: its own write must win).
    pub(crate) fn forget(&mut self, key: &str) {
        self.records.retain(|(k, _)| **k != *key);
        if key == SPOOL_PENDING_KEY {
            self.pending = None;
        }
    }

    /// The counter read for `key`, if it was read; served once.
    pub(crate) fn take_counter(&mut self, key: &str) -> Option<i64> {
        if key == SPOOL_PENDING_KEY {
            self.pending.take()
        } else {
            None
        }
    }
}

pub(crate) struct Admitted {
    _slot: Slot,
    _instance: OwnedSemaphorePermit,
}

impl Admission {
    /// Admission over `kv` with `limits`; `instances` is the pool size; records
    /// are kept in `cache`.
    pub(crate) fn new(
        kv: Kv,
        limits: &EdgeLimits,
        instances: u32,
        cache: Arc<RecordCache>,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            kv,
            cache,
            org_default: limits.org_max_in_flight,
            anonymous: limits.anonymous_max_in_flight,
            in_flight: Mutex::new(HashMap::new()),
            instances: Arc::new(Semaphore::new(instances as usize)),
            instance_count: instances,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tenant, u32>> {
        // Each update is a single map operation: a poisoned map is still consistent.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot under the request's tenant cap, or refuses with 429.
    pub(crate) async fn admit(self: &Arc<Self>, headers: &HeaderMap) -> Result<Slot, HostError> {
        let mut prefetched = Prefetched::default();
        let (tenant, cap) = self.tenant(headers, &mut prefetched).await;
        let mut map = self.lock();
        let n = map.entry(tenant.clone()).or_insert(0);
        if *n >= cap {
            if *n == 0 {
                map.remove(&tenant);
            }
            return Err(HostError::ConcurrencyLimit);
        }
        *n += 1;
        drop(map);
        Ok(Slot {
            admission: self.clone(),
            tenant,
            prefetched,
        })
    }

    /// Waits until no guest holds an instance (every admitted request is done),
    /// or `deadline` passes; whether they all finished.
    pub(crate) async fn all_instances_free(&self, deadline: std::time::Instant) -> bool {
        let all = self.instances.acquire_many(self.instance_count);
        tokio::time::timeout_at(deadline.into(), all).await.is_ok()
    }

    /// Waits (briefly) for a guest instance for an admitted request.
    pub(crate) async fn instance(&self, slot: Slot) -> Result<Admitted, HostError> {
        match tokio::time::timeout(INSTANCE_WAIT, self.instances.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admitted {
                _slot: slot,
                _instance: permit,
            }),
            _ => Err(HostError::Overloaded),
        }
    }

    /// The tenant of the presented key and its cap: two point reads of records
    /// the guest reads anyway. Anything unknown or unreadable is anonymous.
    async fn tenant(&self, headers: &HeaderMap, prefetched: &mut Prefetched) -> (Tenant, u32) {
        let anonymous = (Tenant::Anonymous, self.anonymous);
        let Some(secret) = presented_key(
            headers.get(AUTHORIZATION).map(|v| v.as_bytes()),
            headers.get(X_API_KEY).map(|v| v.as_bytes()),
        ) else {
            return anonymous;
        };
        let name = KeyName::of(secret);
        self.read_counters(prefetched).await;
        let Some(key) = self.read::<KeyOrg>(name.as_str(), prefetched).await else {
            return anonymous;
        };
        let cap = self
            .read::<OrgCap>(&org_key(&key.org_id), prefetched)
            .await
            .and_then(|o| o.max_in_flight)
            .unwrap_or(self.org_default);
        (Tenant::Org(key.org_id.into()), cap)
    }

    /// Reads the records version and the spool's pending count in one store call
    /// (one SQLite read transaction, one Redis round trip). Unreadable: neither is
    /// kept, so the guest reads each itself (and fails closed if it cannot).
    async fn read_counters(&self, prefetched: &mut Prefetched) {
        let reads = [
            (RECORDS_VERSION_KEY.to_string(), 0),
            (SPOOL_PENDING_KEY.to_string(), 0),
        ];
        match self.kv.backend().update(DEFAULT_STORE, &reads, &[]).await {
            Ok(counted) => {
                if let [version, pending] = counted[..] {
                    prefetched.version = RecordCache::usable_version(version);
                    prefetched.pending = Some(pending);
                }
            }
            Err(e) => tracing::debug!(error = %e, "records version unreadable"),
        }
    }

    /// Reads and decodes `key` (from the cache when it holds it under the
    /// request's version), keeping what was read (present or absent) in
    /// `prefetched`.
    async fn read<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
        prefetched: &mut Prefetched,
    ) -> Option<T> {
        let kept = prefetched
            .version
            .and_then(|version| self.cache.get(key, version));
        let value = match kept {
            Some(value) => value,
            None => match self.kv.get(key).await {
                Ok(value) => {
                    if let Some(version) = prefetched.version {
                        self.cache.put(key, version, value.as_deref());
                    }
                    value
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admission could not read a record");
                    return None;
                }
            },
        };
        let decoded = value
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok());
        prefetched.records.push((key.into(), value));
        decoded
    }
}
