//! The admin database: connection, migrations, ids, clocks and the write transaction
//! that couples every mutation with its outbox entries.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::sync::outbox::Signal;

/// Default database: a file under `.tollgate/` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.tollgate/admin.db";

/// Opens (creating if needed) a SQLite database in WAL mode and runs the migrations.
pub async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    if let Some(dir) = opts.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// RFC 3339 text of a Unix-ms timestamp.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Parses RFC 3339 text into Unix ms.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `n` random bytes from the OS CSPRNG, as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

/// A new object id: a type prefix and 64 random bits (`org_1f2e…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_hex(8))
}

/// Serializes writers and pairs each mutation with outbox entries.
#[derive(Clone)]
pub struct Writer {
    lock: Arc<Mutex<()>>,
    signal: Arc<Signal>,
}

impl Writer {
    /// A writer that wakes `signal` after each commit.
    pub fn new(signal: Arc<Signal>) -> Self {
        Writer {
            lock: Arc::new(Mutex::new(())),
            signal,
        }
    }

    /// Starts a write transaction. Writers take turns: SQLite has one writer anyway.
    /// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that
    /// reads first fails with SQLITE_BUSY when a pusher commits in between.
    /// The audit triggers attribute the transaction's changes to the request's actor.
    pub async fn begin(&self, pool: &SqlitePool) -> Result<WriteTx, sqlx::Error> {
        let guard = self.lock.clone().lock_owned().await;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        set_audit_actor(&mut tx, &crate::auth::audit::current_actor()).await?;
        Ok(WriteTx {
            tx,
            _guard: guard,
            signal: self.signal.clone(),
            enqueued: false,
        })
    }
}

/// A write transaction; changes and outbox entries commit together or not at all.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _guard: OwnedMutexGuard<()>,
    signal: Arc<Signal>,
    enqueued: bool,
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Records that the edge must recompile `kind`/`entity_id` after this commit.
    pub async fn enqueue(&mut self, kind: &str, entity_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO outbox (kind, entity_id, created_at_ms) VALUES (?, ?, ?)")
            .bind(kind)
            .bind(entity_id)
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await?;
        self.enqueued = true;
        Ok(())
    }

    /// Commits, then wakes the pushers so the edge sees the change at once.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        if self.enqueued {
            self.signal.notify();
        }
        Ok(())
    }
}

/// Names who the audit triggers record for the writes of this transaction.
pub async fn set_audit_actor(conn: &mut SqliteConnection, actor: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE audit_context SET actor = ? WHERE id = 1")
        .bind(actor)
        .execute(conn)
        .await?;
    Ok(())
}
