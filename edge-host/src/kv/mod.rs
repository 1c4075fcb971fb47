//! The edge key-value store the component imports as `wasi:keyvalue`.
//!
//! Backends implement [`KvBackend`]; [`Kv`] is the cheap, cloneable handle the
//! host and tests share. Values are opaque bytes except counters, which are
//! `i64` little-endian (8 bytes), the layout the component and Spin agree on.

mod memory;
mod redis_kv;
mod sqlite;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use memory::MemoryKv;
pub use redis_kv::RedisKv;
pub use sqlite::SqliteKv;

/// Counters (keys under [`policy::kv::COUNTER_PREFIX`]) expire this long after
/// their creation, in every backend: longer than any window or budget period
/// that reads them (a month plus the widest UTC offset), so finished windows do
/// not pile up forever.
pub const COUNTER_TTL: Duration = Duration::from_secs(35 * 24 * 3600);
/// Longest time between two sweeps of expired counters (embedded backends).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Whether `key` is a counter, which expires.
fn is_counter(key: &str) -> bool {
    key.starts_with(policy::kv::COUNTER_PREFIX)
}

/// When an embedded backend next removes expired counters: every
/// [`SWEEP_INTERVAL`], or sooner with a short test TTL.
struct SweepSchedule {
    every: Duration,
    next: Mutex<Instant>,
}

impl SweepSchedule {
    fn new(ttl: Duration) -> SweepSchedule {
        let every = ttl.min(SWEEP_INTERVAL);
        SweepSchedule {
            every,
            next: Mutex::new(Instant::now() + every),
        }
    }

    /// True at most once per interval (the caller then sweeps).
    fn due(&self) -> bool {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if now < *next {
            return false;
        }
        *next = now + self.every;
        true
    }
}

/// The store the component opens; the only one a default host configures.
pub const DEFAULT_STORE: &str = "default";

/// Errors of the key-value store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The store name is not configured.
    #[error("no such store")]
    NoSuchStore,
    /// A counter key holds a value that is not an 8-byte little-endian i64.
    #[error("value of {key:?} is not a 64-bit counter")]
    NotACounter {
        /// The offending key.
        key: String,
    },
    /// A counter would overflow i64.
    #[error("counter {key:?} would overflow")]
    Overflow {
        /// The offending key.
        key: String,
    },
    /// Another writer held the store's lock for longer than the edge waits
    /// (SQLite). Worded as SQLite words it, which the component recognises.
    #[error("database is locked")]
    Busy,
    /// The backend failed (I/O, SQLite, connection).
    #[error("key-value backend error: {0}")]
    Backend(String),
}

/// A boxed future returned by [`KvBackend`] methods, so the trait stays
/// object-safe and fits both blocking (SQLite) and async (Redis) backends.
pub type KvFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, KvError>> + Send + 'a>>;

/// A key-value backend. Every method is scoped to a store name; backends do not
/// check store names (the host does).
///
/// A blocking backend simply returns `Box::pin(std::future::ready(result))`.
pub trait KvBackend: Send + Sync + 'static {
    /// The value of `key`, if any.
    fn get<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Sets `key` to `value`.
    fn set<'a>(&'a self, store: &'a str, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()>;
    /// Deletes `key` (no error when absent).
    fn delete<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, ()>;
    /// Whether `key` exists.
    fn exists<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, bool> {
        Box::pin(async move { Ok(self.get(store, key).await?.is_some()) })
    }
    /// All keys of the store, sorted.
    fn list_keys<'a>(&'a self, store: &'a str) -> KvFuture<'a, Vec<String>>;
    /// Atomically adds `delta` to the counter at `key` (missing = 0) and returns
    /// the new value; atomic across tasks and, where the backend is shared, across
    /// processes. A zero `delta` only reads (and creates nothing), which is how
    /// counters are read whatever encoding the backend stores them in.
    fn increment<'a>(&'a self, store: &'a str, key: &'a str, delta: i64) -> KvFuture<'a, i64>;
    /// Sets each of `values`, then adds each delta to its counter as
    /// [`KvBackend::increment`] does, all or nothing (one transaction, one Redis
    /// script); returns the counters' new values in the order of `deltas`.
    /// `values` and `deltas` name different keys.
    fn update<'a>(
        &'a self,
        store: &'a str,
        deltas: &'a [(String, i64)],
        values: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, Vec<i64>>;
    /// Sets `key` to `new` only if its value still equals `expected`
    /// (`None` = absent); returns whether it swapped.
    fn compare_and_swap<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> KvFuture<'a, bool>;
    /// Values of many keys, in order.
    fn get_many<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(store, key).await?);
            }
            Ok(out)
        })
    }
    /// Sets many keys; backends that can make this all-or-nothing should.
    fn set_many<'a>(&'a self, store: &'a str, entries: &'a [(String, Vec<u8>)])
    -> KvFuture<'a, ()>;
    /// Deletes many keys.
    fn delete_many<'a>(&'a self, store: &'a str, keys: &'a [String]) -> KvFuture<'a, ()> {
        Box::pin(async move {
            for key in keys {
                self.delete(store, key).await?;
            }
            Ok(())
        })
    }
}

/// Where the edge keeps its key-value data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvConfig {
    /// In process memory; gone when the process exits (tests).
    Memory,
    /// A SQLite file in Spin's own `spin_key_value` layout.
    Sqlite(PathBuf),
    /// A Redis server (`redis://host:port[/db]`) in Spin's Redis layout:
    /// plain keys, counters as Redis integers; the store for many edge nodes.
    Redis(String),
}

impl std::str::FromStr for KvConfig {
    type Err = String;

    /// `memory`, `sqlite:<path>` or `redis://host:port[/db]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            return Ok(KvConfig::Memory);
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            // Checked here so a typo fails at the command line, not at first use.
            return redis_kv::check_url(s).map(|()| KvConfig::Redis(s.to_string()));
        }
        match s.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => Ok(KvConfig::Sqlite(PathBuf::from(path))),
            // The value is not echoed: a Redis URL may carry a password.
            _ => Err("expected `memory`, `sqlite:<path>` or `redis://host:port`".to_string()),
        }
    }
}

/// A shared handle to the edge store: what the host serves and tests seed.
#[derive(Clone)]
pub struct Kv {
    backend: Arc<dyn KvBackend>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kv")
    }
}

impl Kv {
    /// Opens an embedded backend (creating the SQLite file and its directory);
    /// Redis needs [`Kv::connect`].
    pub fn open(config: &KvConfig) -> Result<Kv, KvError> {
        Ok(match config {
            KvConfig::Memory => Kv::new(MemoryKv::new()),
            KvConfig::Sqlite(path) => Kv::new(SqliteKv::open(path)?),
            KvConfig::Redis(_) => {
                return Err(KvError::Backend(
                    "a Redis store is opened with Kv::connect".into(),
                ));
            }
        })
    }

    /// Opens any backend: connects to Redis (failing if it cannot be reached), or
    /// opens an embedded one off the async workers (a SQLite file may wait on
    /// another process's lock).
    pub async fn connect(config: &KvConfig) -> Result<Kv, KvError> {
        match config {
            KvConfig::Memory => Kv::open(config),
            KvConfig::Sqlite(_) => {
                let c = config.clone();
                tokio::task::spawn_blocking(move || Kv::open(&c))
                    .await
                    .map_err(|e| KvError::Backend(e.to_string()))?
            }
            KvConfig::Redis(url) => Ok(Kv::new(RedisKv::connect(url).await?)),
        }
    }

    /// Wraps a backend.
    pub fn new(backend: impl KvBackend) -> Kv {
        Kv {
            backend: Arc::new(backend),
        }
    }

    /// The backend, for store-scoped calls.
    pub fn backend(&self) -> &dyn KvBackend {
        &*self.backend
    }

    /// Value of `key` in the default store.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.backend.get(DEFAULT_STORE, key).await
    }

    /// Sets `key` in the default store.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        self.backend.set(DEFAULT_STORE, key, value).await
    }

    /// Deletes `key` from the default store.
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.backend.delete(DEFAULT_STORE, key).await
    }

    /// All keys of the default store, sorted.
    pub async fn list_keys(&self) -> Result<Vec<String>, KvError> {
        self.backend.list_keys(DEFAULT_STORE).await
    }

    /// Adds `delta` to the counter `key` of the default store.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.backend.increment(DEFAULT_STORE, key, delta).await
    }

    /// Reads the counter `key` of the default store (missing = 0), in whatever
    /// encoding the backend keeps counters.
    pub async fn counter(&self, key: &str) -> Result<i64, KvError> {
        self.increment(key, 0).await
    }

    /// Sets many keys of the default store at once.
    pub async fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        self.backend.set_many(DEFAULT_STORE, entries).await
    }

    /// Stores a compiled record (JSON) under `key` in the default store.
    pub async fn put_record<T: serde::Serialize>(
        &self,
        key: &str,
        record: &T,
    ) -> Result<(), KvError> {
        self.set(key, &policy::records::encode(record)).await
    }

    /// Stores a key record under `key:<sha256(secret)>`, as the admin service does.
    pub async fn put_key(&self, secret: &str, record: &policy::KeyRecord) -> Result<(), KvError> {
        self.put_record(policy::kv::KeyName::of(secret).as_str(), record)
            .await
    }
}

/// Decodes an i64 little-endian counter value.
pub fn decode_counter(key: &str, bytes: &[u8]) -> Result<i64, KvError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| KvError::NotACounter {
        key: key.to_string(),
    })?;
    Ok(i64::from_le_bytes(raw))
}

/// `current + delta`, or the overflow error naming `key`.
fn add_counter(key: &str, current: i64, delta: i64) -> Result<i64, KvError> {
    current.checked_add(delta).ok_or_else(|| KvError::Overflow {
        key: key.to_string(),
    })
}
