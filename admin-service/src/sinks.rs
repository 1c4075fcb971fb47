//! Edge KV sinks: where compiled records are pushed. Today a SQLite file in Spin's
//! key-value schema (what Spin and the local edge host read); Redis comes later.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use tokio::sync::Mutex;

use crate::compile::KvWrite;

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

/// An edge key-value store that accepts batches of writes atomically.
pub trait Sink: Send + Sync + 'static {
    /// Stable name; the pusher keeps this sink's outbox position under it.
    fn name(&self) -> &str;
    /// Applies all writes or none; `Ok` means durably acknowledged.
    fn apply<'a>(&'a self, writes: &'a [KvWrite]) -> SinkFuture<'a>;
    /// Up to `limit` usage events the edge spooled in this store (`usage:*`), left
    /// in place: the drainer deletes them (via [`Sink::apply`]) once stored.
    fn spooled_usage(&self, limit: usize) -> SpoolFuture<'_>;
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
        for w in writes {
            match w {
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
                KvWrite::Delete { key } => {
                    sqlx::query("DELETE FROM spin_key_value WHERE store = ? AND key = ?")
                        .bind(SPIN_STORE)
                        .bind(key)
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
}
