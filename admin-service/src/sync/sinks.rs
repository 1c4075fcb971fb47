//! Edge KV sinks: where compiled records are pushed and usage spools are drained. A
//! SQLite file in Spin's key-value schema (what Spin and the local edge host read), or
//! a Redis server in Spin's Redis layout (plain keys), shared by many edge nodes.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tokio::sync::Mutex;

use crate::sync::compile::KvWrite;

/// The Spin key-value store records are written to.
pub const SPIN_STORE: &str = "default";

/// Why a sink did not acknowledge a batch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A boxed future returned by [`Sink::apply`].
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Spooled usage entries: (KV key, raw value).
pub type Spooled = Vec<(String, Vec<u8>)>;

/// A boxed future returned by [`Sink::spooled_usage`].
pub type SpoolFuture<'a> = Pin<Box<dyn Future<Output = Result<Spooled, SinkError>> + Send + 'a>>;

/// A boxed future returned by [`Sink::counter_keys`].
pub type KeysFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, SinkError>> + Send + 'a>>;

/// An edge key-value store that accepts batches of writes atomically.
pub trait Sink: Send + Sync + 'static {
    /// Stable name; the pusher keeps this sink's outbox position under it.
    fn name(&self) -> &str;
    /// Applies all writes or none; `Ok` means durably acknowledged.
    fn apply<'a>(&'a self, writes: &'a [KvWrite]) -> SinkFuture<'a>;
    /// Up to `limit` usage events the edge spooled in this store (`usage:*`), left
    /// in place: the drainer deletes them (via [`Sink::apply`]) once stored.
    fn spooled_usage(&self, limit: usize) -> SpoolFuture<'_>;
    /// The names of every counter in this store (`ctr:*`), for the sweep of past windows.
    fn counter_keys(&self) -> KeysFuture<'_>;
    /// Every response-cache entry in this store (`cache:*`) with the first
    /// [`policy::cache::EXPIRY_PREFIX_BYTES`] bytes of its value (which hold its
    /// expiry), for the sweep of expired entries.
    fn cache_expiries(&self) -> SpoolFuture<'_>;
}

/// Where a sink lives: `sqlite:<path>` (or a bare path) or `redis://host:port[/db]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// A Spin-schema SQLite file.
    Sqlite(PathBuf),
    /// A Redis server.
    Redis(String),
}

impl std::str::FromStr for SinkTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            redis::Client::open(s).map_err(|e| format!("invalid Redis URL {s:?}: {e}"))?;
            return Ok(SinkTarget::Redis(s.to_string()));
        }
        let path = s.strip_prefix("sqlite:").unwrap_or(s);
        if path.is_empty() {
            return Err("expected `sqlite:<path>`, a path, or `redis://host:port`".into());
        }
        Ok(SinkTarget::Sqlite(PathBuf::from(path)))
    }
}

impl SinkTarget {
    /// The sink writing to this target.
    pub fn open(&self) -> Arc<dyn Sink> {
        match self {
            SinkTarget::Sqlite(p) => Arc::new(SpinSqliteSink::new(p)),
            SinkTarget::Redis(url) => Arc::new(RedisSink::new(url)),
        }
    }
}

/// A SQLite file with Spin's `spin_key_value` table, store `default`.
pub struct SpinSqliteSink {
    name: String,
    path: PathBuf,
    pool: Mutex<Option<SqlitePool>>,
}

impl SpinSqliteSink {
    /// A sink writing to the SQLite file at `path` (created if its directory exists).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        SpinSqliteSink {
            name: format!("sqlite:{}", path.display()),
            path,
            pool: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<SqlitePool, sqlx::Error> {
        let opts = SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            // WAL lets the edge read while we write; busy_timeout waits out its locks.
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            )",
        )
        .execute(&pool)
        .await?;
        Ok(pool)
    }

    async fn write(&self, pool: &SqlitePool, writes: &[KvWrite]) -> Result<(), sqlx::Error> {
        let mut tx = pool.begin().await?;
        // A drained batch deletes hundreds of spooled events: a run of deletes is
        // one statement, not one round trip each.
        let deletes = |a: &KvWrite, b: &KvWrite| {
            matches!((a, b), (KvWrite::Delete { .. }, KvWrite::Delete { .. }))
        };
        for run in writes.chunk_by(deletes) {
            match &run[0] {
                KvWrite::Put { key, value } => {
                    sqlx::query(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(SPIN_STORE)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                }
                KvWrite::Delete { .. } => {
                    let keys: Vec<&str> = run
                        .iter()
                        .filter_map(|w| match w {
                            KvWrite::Delete { key } => Some(key.as_str()),
                            _ => None,
                        })
                        .collect();
                    sqlx::query(
                        "DELETE FROM spin_key_value WHERE store = ?
                           AND key IN (SELECT value FROM json_each(?))",
                    )
                    .bind(SPIN_STORE)
                    .bind(serde_json::to_string(&keys).map_err(|e| sqlx::Error::Encode(e.into()))?)
                    .execute(&mut *tx)
                    .await?;
                }
                KvWrite::AddToCounter { key, delta } => {
                    // The edge's SQLite counters are 8-byte little-endian integers.
                    let current: Option<Vec<u8>> = sqlx::query_scalar(
                        "SELECT value FROM spin_key_value WHERE store = ? AND key = ?",
                    )
                    .bind(SPIN_STORE)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let current = current
                        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                        .map_or(0, i64::from_le_bytes);
                    sqlx::query(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?, ?, ?)
                         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(SPIN_STORE)
                    .bind(key)
                    .bind(&current.saturating_add(*delta).to_le_bytes()[..])
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await
    }

    async fn spooled(&self, pool: &SqlitePool, limit: usize) -> Result<Spooled, sqlx::Error> {
        // `usage;` is the first key after every `usage:…` one: a range scan on the primary key.
        sqlx::query_as(
            "SELECT key, value FROM spin_key_value
             WHERE store = ? AND key >= 'usage:' AND key < 'usage;' ORDER BY key LIMIT ?",
        )
        .bind(SPIN_STORE)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
    }

    async fn counters(&self, pool: &SqlitePool) -> Result<Vec<String>, sqlx::Error> {
        // `ctr;` is the first key after every `ctr:…` one.
        sqlx::query_scalar(
            "SELECT key FROM spin_key_value WHERE store = ? AND key >= 'ctr:' AND key < 'ctr;'",
        )
        .bind(SPIN_STORE)
        .fetch_all(pool)
        .await
    }

    async fn cache_entries(&self, pool: &SqlitePool) -> Result<Spooled, sqlx::Error> {
        // `cache;` is the first key after every `cache:…` one.
        sqlx::query_as(
            "SELECT key, CAST(substr(value, 1, ?) AS BLOB) FROM spin_key_value
             WHERE store = ? AND key >= 'cache:' AND key < 'cache;'",
        )
        .bind(i64::try_from(policy::cache::EXPIRY_PREFIX_BYTES).unwrap_or(i64::MAX))
        .bind(SPIN_STORE)
        .fetch_all(pool)
        .await
    }

    /// Runs `op` on the (lazily opened) pool; a failure drops the pool so the next
    /// call reconnects (the file may have been replaced or remounted).
    async fn with_pool<T>(
        &self,
        what: &str,
        op: impl AsyncFnOnce(&SqlitePool) -> Result<T, sqlx::Error>,
    ) -> Result<T, SinkError> {
        let mut guard = self.pool.lock().await;
        if guard.is_none() {
            *guard = Some(
                self.connect()
                    .await
                    .map_err(|e| SinkError(format!("connect {}: {e}", self.path.display())))?,
            );
        }
        let pool = guard.as_ref().expect("connected above");
        match op(pool).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *guard = None;
                Err(SinkError(format!("{what} {}: {e}", self.path.display())))
            }
        }
    }
}

impl Sink for SpinSqliteSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, writes: &'a [KvWrite]) -> SinkFuture<'a> {
        Box::pin(self.with_pool("write", async |pool| self.write(pool, writes).await))
    }

    fn spooled_usage(&self, limit: usize) -> SpoolFuture<'_> {
        Box::pin(self.with_pool("read usage spool", async move |pool| {
            self.spooled(pool, limit).await
        }))
    }

    fn counter_keys(&self) -> KeysFuture<'_> {
        Box::pin(self.with_pool("list counters", async |pool| self.counters(pool).await))
    }

    fn cache_expiries(&self) -> SpoolFuture<'_> {
        Box::pin(self.with_pool("list cache entries", async |pool| {
            self.cache_entries(pool).await
        }))
    }
}

/// Keys scanned per `SCAN` round trip when collecting the usage spool.
const SCAN_COUNT: usize = 1000;
/// Redis answers slower than this count as a failed push (retried).
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis server in Spin's Redis key-value layout: records under their plain keys.
pub struct RedisSink {
    name: String,
    url: String,
    conn: Mutex<Option<ConnectionManager>>,
}

impl RedisSink {
    /// A sink writing to the Redis server at `url`; connects on first use, so a
    /// server that is down at start only delays the push.
    pub fn new(url: &str) -> Self {
        RedisSink {
            name: format!("redis:{}", redact_url(url)),
            url: url.to_string(),
            conn: Mutex::new(None),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, SinkError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let client = redis::Client::open(self.url.as_str()).map_err(|e| self.error("open", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| self.error("connect", e))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    fn error(&self, what: &str, e: redis::RedisError) -> SinkError {
        SinkError(format!("{what} {}: {e}", self.name))
    }

    async fn write(&self, writes: &[KvWrite]) -> Result<(), SinkError> {
        let mut conn = self.connection().await?;
        // MULTI/EXEC: the edge never sees half a batch.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for w in writes {
            match w {
                KvWrite::Put { key, value } => pipe.cmd("SET").arg(key).arg(value).ignore(),
                KvWrite::Delete { key } => pipe.cmd("DEL").arg(key).ignore(),
                // Spin's Redis store keeps counters as decimal strings: INCRBY's own.
                KvWrite::AddToCounter { key, delta } => {
                    pipe.cmd("INCRBY").arg(key).arg(*delta).ignore()
                }
            };
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error("write", e))
    }

    /// Up to `limit` keys starting with `prefix` (at least `limit` are scanned for
    /// before stopping), sorted and without repeats.
    async fn scan(
        &self,
        conn: &mut ConnectionManager,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, SinkError> {
        let mut keys: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(conn)
                .await
                .map_err(|e| self.error("scan", e))?;
            keys.extend(page);
            if next == 0 || keys.len() >= limit {
                break;
            }
            cursor = next;
        }
        // SCAN may repeat a key while Redis rehashes.
        keys.sort_unstable();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys)
    }

    async fn cache_entries(&self) -> Result<Spooled, SinkError> {
        let mut conn = self.connection().await?;
        let keys = self
            .scan(&mut conn, policy::cache::CACHE_PREFIX, usize::MAX)
            .await?;
        let last = isize::try_from(policy::cache::EXPIRY_PREFIX_BYTES).unwrap_or(isize::MAX) - 1;
        let mut heads = Vec::with_capacity(keys.len());
        for batch in keys.chunks(SCAN_COUNT) {
            let mut pipe = redis::pipe();
            for key in batch {
                pipe.cmd("GETRANGE").arg(key).arg(0).arg(last);
            }
            let values: Vec<Vec<u8>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| self.error("read cache", e))?;
            heads.extend(batch.iter().cloned().zip(values));
        }
        Ok(heads)
    }

    async fn spooled(&self, limit: usize) -> Result<Spooled, SinkError> {
        let mut conn = self.connection().await?;
        let keys = self
            .scan(&mut conn, policy::usage::USAGE_PREFIX, limit)
            .await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("read", e))?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}

/// `redis://user:secret@host` → `redis://host`: sink names are shown and logged.
fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_string(),
    }
}

impl Sink for RedisSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply<'a>(&'a self, writes: &'a [KvWrite]) -> SinkFuture<'a> {
        Box::pin(self.write(writes))
    }

    fn spooled_usage(&self, limit: usize) -> SpoolFuture<'_> {
        Box::pin(self.spooled(limit))
    }

    fn counter_keys(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            let mut conn = self.connection().await?;
            self.scan(&mut conn, policy::kv::COUNTER_PREFIX, usize::MAX)
                .await
        })
    }

    fn cache_expiries(&self) -> SpoolFuture<'_> {
        Box::pin(self.cache_entries())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_credentials_stay_out_of_names() {
        assert_eq!(
            "sqlite:.tollgate/edge-kv.db".parse(),
            Ok(SinkTarget::Sqlite(".tollgate/edge-kv.db".into()))
        );
        assert_eq!("kv.db".parse(), Ok(SinkTarget::Sqlite("kv.db".into())));
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse(),
            Ok(SinkTarget::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!("redis://127.0.0.1:notaport".parse::<SinkTarget>().is_err());
        assert!("sqlite:".parse::<SinkTarget>().is_err());
        assert_eq!(
            RedisSink::new("redis://:hunter2@cache:6379").name(),
            "redis:redis://cache:6379"
        );
    }
}
