//! The host side of `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) and of
//! its extension `tollgate:gateway/counters` over a [`Kv`] backend, plus the
//! `tollgate:gateway/policy` export bindings.

use std::sync::Arc;

use wasmtime::component::{HasData, Resource, ResourceTable};

use crate::admission::Prefetched;
use crate::kv::{DEFAULT_STORE, Kv, KvError};
use crate::metrics::{KvOp, kv_timed};
use crate::record_cache::RecordCache;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tollgate:gateway/gateway-core-edge",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

pub use bindings::GatewayCoreEdgePre as GatewayCorePre;
pub use bindings::exports::tollgate::gateway::policy::{Decision, KeyRef, RequestFacts};
use bindings::tollgate::gateway::counters;
use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket: the store name it was opened with.
pub struct Bucket {
    store: Arc<str>,
}

/// A compare-and-swap handle: the value the key had when the handle was made.
pub struct Cas {
    store: Arc<str>,
    key: String,
    current: Option<Vec<u8>>,
}

/// The key-value configuration shared by every instance: backend and the store
/// names a guest may open.
#[derive(Clone)]
pub struct KvHost {
    kv: Kv,
    stores: Arc<[Arc<str>]>,
    /// Records kept across requests (the default store's).
    records: Arc<RecordCache>,
}

impl KvHost {
    /// Serves `kv` under the given store names.
    pub fn new(kv: Kv, stores: &[&str]) -> KvHost {
        KvHost {
            kv,
            stores: stores.iter().map(|s| Arc::from(*s)).collect(),
            records: Arc::default(),
        }
    }

    /// The backend handle.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    /// The records kept across requests, which admission shares.
    pub(crate) fn records(&self) -> &Arc<RecordCache> {
        &self.records
    }
}

/// The counter increments one instance made, net per key, so that a request
/// whose guest trapped or was interrupted can be taken back out of rate-limit
/// windows and budget spend (the guest never got to settle it itself).
#[derive(Default)]
pub struct CounterJournal {
    entries: Vec<(Arc<str>, String, i64)>,
}

impl CounterJournal {
    /// Notes a move of `key` by `delta`; only counters (rate windows, budget
    /// spend) are taken back.
    fn record(&mut self, store: &Arc<str>, key: &str, delta: i64) {
        if delta == 0 || !key.starts_with(policy::kv::COUNTER_PREFIX) {
            return;
        }
        // A request touches a handful of counters: a scan beats hashing.
        match self
            .entries
            .iter_mut()
            .find(|(s, k, _)| s == store && k == key)
        {
            Some((_, _, net)) => *net = net.saturating_add(delta),
            None => self.entries.push((store.clone(), key.to_string(), delta)),
        }
    }

    /// Applies the inverse of every net increment; returns how many counters moved.
    pub async fn roll_back(self, kv: &Kv) -> Result<usize, KvError> {
        let mut moved = 0;
        for (store, key, net) in self.entries {
            if net != 0 {
                kv.backend().increment(&store, &key, -net).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }
}

/// What the generated `Host` traits are implemented on: a borrow of the
/// instance's resource table, its counter journal and the shared store.
pub struct KvView<'a> {
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
    /// The instance's counter increments.
    pub journal: &'a mut CounterJournal,
    /// Records admission read for this request, served to the guest's first read.
    pub(crate) prefetched: &'a mut Prefetched,
    /// The shared store.
    pub host: &'a KvHost,
}

/// [`HasData`] marker for the keyvalue bindings.
pub struct WasiKeyValue;

impl HasData for WasiKeyValue {
    type Data<'a> = KvView<'a>;
}

/// Adds the three keyvalue interfaces and `counters` to `linker` (a component
/// built for plain `wasi:keyvalue` does not import `counters`, and links too).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, WasiKeyValue>(linker, get)?;
    atomics::add_to_linker::<T, WasiKeyValue>(linker, get)?;
    batch::add_to_linker::<T, WasiKeyValue>(linker, get)?;
    counters::add_to_linker::<T, WasiKeyValue>(linker, get)?;
    Ok(())
}

/// `key` of `store` from the backend.
async fn read(host: &KvHost, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
    kv_timed(KvOp::Get, host.kv.backend().get(store, key)).await
}

fn to_wit(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchStore => store::Error::NoSuchStore,
        other => store::Error::Other(other.to_string()),
    }
}

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

impl KvView<'_> {
    fn bucket(&self, b: &Resource<Bucket>) -> wasmtime::Result<Arc<str>> {
        Ok(self.table.get(b)?.store.clone())
    }

    /// Forgets what admission read for `key` in `store`, and any copy kept
    /// across requests: the guest's own write wins.
    fn wrote(&mut self, store: &str, key: &str) {
        if store == DEFAULT_STORE {
            self.prefetched.forget(key);
            if policy::kv::is_record(key) {
                self.host.records.forget(key);
            }
        }
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let Some(store) = self.host.stores.iter().find(|s| ***s == *identifier) else {
            return Ok(Err(store::Error::NoSuchStore));
        };
        let bucket = Bucket {
            store: store.clone(),
        };
        Ok(Ok(self.table.push(bucket)?))
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(&mut self, b: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let store = self.bucket(&b)?;
        if &*store != DEFAULT_STORE {
            return Ok(read(self.host, &store, &key).await.map_err(to_wit));
        }
        if let Some(value) = self.prefetched.take(&key) {
            return Ok(Ok(value));
        }
        let Some(version) = self
            .prefetched
            .version
            .filter(|_| policy::kv::is_record(&key))
        else {
            return Ok(read(self.host, &store, &key).await.map_err(to_wit));
        };
        if let Some(value) = self.host.records.get(&key, version) {
            return Ok(Ok(value));
        }
        let read = read(self.host, &store, &key).await;
        if let Ok(value) = &read {
            self.host.records.put(&key, version, value.as_deref());
        }
        Ok(read.map_err(to_wit))
    }

    async fn set(&mut self, b: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let store = self.bucket(&b)?;
        self.wrote(&store, &key);
        Ok(
            kv_timed(KvOp::Set, self.host.kv.backend().set(&store, &key, &value))
                .await
                .map_err(to_wit),
        )
    }

    async fn delete(&mut self, b: Resource<Bucket>, key: String) -> KvResult<()> {
        let store = self.bucket(&b)?;
        self.wrote(&store, &key);
        Ok(
            kv_timed(KvOp::Delete, self.host.kv.backend().delete(&store, &key))
                .await
                .map_err(to_wit),
        )
    }

    async fn exists(&mut self, b: Resource<Bucket>, key: String) -> KvResult<bool> {
        let store = self.bucket(&b)?;
        Ok(
            kv_timed(KvOp::Exists, self.host.kv.backend().exists(&store, &key))
                .await
                .map_err(to_wit),
        )
    }

    async fn list_keys(
        &mut self,
        b: Resource<Bucket>,
        cursor: Option<String>,
    ) -> KvResult<store::KeyResponse> {
        let store = self.bucket(&b)?;
        // One page holding every key after the cursor; the cursor is the last
        // key a previous page returned, so paging by keys stays correct.
        Ok(
            kv_timed(KvOp::ListKeys, self.host.kv.backend().list_keys(&store))
                .await
                .map(|keys| store::KeyResponse {
                    keys: match cursor {
                        Some(c) => keys.into_iter().filter(|k| *k > c).collect(),
                        None => keys,
                    },
                    cursor: None,
                })
                .map_err(to_wit),
        )
    }

    async fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(&mut self, b: Resource<Bucket>, key: String, delta: i64) -> KvResult<i64> {
        let store = self.bucket(&b)?;
        if delta == 0 {
            if &*store == DEFAULT_STORE
                && let Some(counted) = self.prefetched.take_counter(&key)
            {
                return Ok(Ok(counted));
            }
        } else {
            self.wrote(&store, &key);
        }
        let result = kv_timed(
            KvOp::Increment,
            self.host.kv.backend().increment(&store, &key, delta),
        )
        .await;
        if result.is_ok() {
            self.journal.record(&store, &key, delta);
        }
        Ok(result.map_err(to_wit))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas {
            store,
            key,
            current,
        } = self.table.delete(cas)?;
        let backend = self.host.kv.backend();
        match kv_timed(
            KvOp::CompareAndSwap,
            backend.compare_and_swap(&store, &key, current.as_deref(), &value),
        )
        .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Hand back a fresh handle holding the value that won, so the
                // guest can retry from it.
                let current = match backend.get(&store, &key).await {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(atomics::CasError::StoreError(to_wit(e)))),
                };
                let fresh = self.table.push(Cas {
                    store,
                    key,
                    current,
                })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(to_wit(e)))),
        }
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(&mut self, b: Resource<Bucket>, key: String) -> KvResult<Resource<Cas>> {
        let store = self.bucket(&b)?;
        let current = match self.host.kv.backend().get(&store, &key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            current,
        })?))
    }

    async fn current(&mut self, cas: Resource<Cas>) -> KvResult<Option<Vec<u8>>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        let store = self.bucket(&b)?;
        let values = match kv_timed(
            KvOp::GetMany,
            self.host.kv.backend().get_many(&store, &keys),
        )
        .await
        {
            Ok(v) => v,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        Ok(Ok(keys.into_iter().zip(values).collect()))
    }

    async fn set_many(
        &mut self,
        b: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let store = self.bucket(&b)?;
        for (key, _) in &key_values {
            self.wrote(&store, key);
        }
        Ok(kv_timed(
            KvOp::SetMany,
            self.host.kv.backend().set_many(&store, &key_values),
        )
        .await
        .map_err(to_wit))
    }

    async fn delete_many(&mut self, b: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let store = self.bucket(&b)?;
        for key in &keys {
            self.wrote(&store, key);
        }
        Ok(kv_timed(
            KvOp::DeleteMany,
            self.host.kv.backend().delete_many(&store, &keys),
        )
        .await
        .map_err(to_wit))
    }
}

impl counters::Host for KvView<'_> {
    async fn update(
        &mut self,
        b: Resource<Bucket>,
        deltas: Vec<(String, i64)>,
        values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<Vec<i64>> {
        let store = self.bucket(&b)?;
        if &*store == DEFAULT_STORE
            && values.is_empty()
            && let [(key, 0)] = &deltas[..]
            && let Some(counted) = self.prefetched.take_counter(key)
        {
            return Ok(Ok(vec![counted]));
        }
        for (key, _) in &values {
            self.wrote(&store, key);
        }
        for (key, _) in deltas.iter().filter(|(_, delta)| *delta != 0) {
            self.wrote(&store, key);
        }
        let result = kv_timed(
            KvOp::Update,
            self.host.kv.backend().update(&store, &deltas, &values),
        )
        .await;
        if result.is_ok() {
            for (key, delta) in &deltas {
                self.journal.record(&store, key, *delta);
            }
        }
        Ok(result.map_err(to_wit))
    }
}
