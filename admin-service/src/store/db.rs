//! The admin database: connection, migrations, ids, clocks and the write transaction
//! that couples every mutation with its outbox entries.

use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// Default database: a file under `.tollgate/` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.tollgate/admin.db";

/// The admin database pool; the backend is chosen by the URL's scheme.
pub type Db = AnyPool;

/// Which SQL engine holds the admin state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (the `tollgate up` default).
    Sqlite,
    /// A PostgreSQL server shared by one or more admin replicas.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if it is one we run on.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':').map(|(s, _)| s)?;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    /// The backend behind an open pool.
    pub fn of(db: &Db) -> Backend {
        Backend::of_url(db.connect_options().database_url.as_str()).unwrap_or(Backend::Sqlite)
    }
}

/// A database URL naming no backend we run on.
#[derive(Debug, thiserror::Error)]
#[error(
    "DATABASE_URL (--database-url) must be sqlite://<path> or postgres://[user[:password]@]host[:port]/<database>, got {0:?}"
)]
pub struct BadDatabaseUrl(String);

/// The backend of `url`, or an error naming `DATABASE_URL` (the URL's credentials,
/// if any, are not repeated).
pub fn backend_of_url(url: &str) -> Result<Backend, BadDatabaseUrl> {
    Backend::of_url(url).ok_or_else(|| BadDatabaseUrl(redacted_url(url)))
}

/// `url` with any password replaced by `***`, for logs and errors.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not URL-shaped: show no more than the part before any `@`.
        return url.rsplit('@').next().unwrap_or_default().to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`), creating a
/// SQLite file if needed, and runs that backend's migrations.
pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend =
        backend_of_url(url).map_err(|e| sqlx::Error::Configuration(e.to_string().into()))?;
    let pool = match backend {
        Backend::Sqlite => {
            let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)?;
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
            let url = with_create_mode(url);
            AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect_with(url.parse::<AnyConnectOptions>()?)
                .await?
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?
        }
    };
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
    }
    Ok(pool)
}

/// Adds `mode=rwc` so a missing SQLite file is created.
fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Checks that the database answers (readiness).
pub async fn ping(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(db).await?;
    Ok(())
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

/// Wakes every pusher after a commit that enqueued work.
#[derive(Debug, Default)]
pub struct Signal {
    wakers: Vec<Arc<Notify>>,
}

impl Signal {
    /// A signal with one waker per sink.
    pub fn new(sinks: usize) -> Self {
        Signal {
            wakers: (0..sinks).map(|_| Arc::new(Notify::new())).collect(),
        }
    }

    /// The wakers, one per sink, in sink order.
    pub fn wakers(&self) -> &[Arc<Notify>] {
        &self.wakers
    }

    /// Wakes all pushers (a wake-up with no waiter is kept for the next wait).
    pub fn notify(&self) {
        for w in &self.wakers {
            w.notify_one();
        }
    }
}

/// The actor of writes outside any request.
const SYSTEM: &str = "system";

/// Serializes writers and pairs each mutation with outbox entries.
#[derive(Clone)]
pub struct Writer {
    lock: Arc<Mutex<()>>,
    signal: Arc<Signal>,
    actor: fn() -> String,
}

impl Writer {
    /// A writer that wakes `signal` after each commit; its writes are the system's.
    pub fn new(signal: Arc<Signal>) -> Self {
        Writer {
            lock: Arc::new(Mutex::new(())),
            signal,
            actor: || SYSTEM.to_string(),
        }
    }

    /// The same writer, attributing each transaction's writes to `actor()` (the
    /// request's actor; the auth layer knows it, the store does not).
    pub fn with_actor(self, actor: fn() -> String) -> Self {
        Writer { actor, ..self }
    }

    /// Starts a write transaction. Writers take turns, across replicas too, so a
    /// check-then-write (the last owner, a budget, a slug) never races another writer.
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front (a deferred transaction
    /// that reads first fails with SQLITE_BUSY when a pusher commits in between).
    /// PostgreSQL: a transaction-scoped advisory lock shared by every replica.
    /// The audit triggers attribute the transaction's changes to the request's actor.
    pub async fn begin(&self, pool: &Db) -> Result<WriteTx, sqlx::Error> {
        let guard = self.lock.clone().lock_owned().await;
        let mut tx = match Backend::of(pool) {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        set_audit_actor(&mut tx, &(self.actor)()).await?;
        Ok(WriteTx {
            tx,
            _guard: guard,
            signal: self.signal.clone(),
            enqueued: false,
        })
    }
}

/// The advisory-lock key that serializes admin writers on PostgreSQL ("tgwr").
const WRITER_LOCK: i64 = 0x7467_7772;

/// A write transaction; changes and outbox entries commit together or not at all.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    _guard: OwnedMutexGuard<()>,
    signal: Arc<Signal>,
    enqueued: bool,
}

impl WriteTx {
    /// The connection to run statements on.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Records that the edge must recompile `kind`/`entity_id` after this commit.
    pub async fn enqueue(&mut self, kind: &str, entity_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO outbox (kind, entity_id, created_at_ms) VALUES ($1, $2, $3)")
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
pub async fn set_audit_actor(conn: &mut AnyConnection, actor: &str) -> Result<(), sqlx::Error> {
    match conn.backend_name() {
        // One writer at a time: a one-row table the triggers read.
        "SQLite" => sqlx::query("UPDATE audit_context SET actor = $1 WHERE id = 1"),
        // Concurrent writers: a setting local to this transaction.
        _ => sqlx::query("SELECT set_config('tollgate.actor', $1, true)"),
    }
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Backend, backend_of_url, redacted_url};

    #[test]
    fn urls_name_their_backend_or_a_clear_error_without_the_password() {
        assert_eq!(backend_of_url("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            backend_of_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            backend_of_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        for bad in ["mysql://u:hunter2@h/db", "admin.db", "u:hunter2@h", ""] {
            let e = backend_of_url(bad).unwrap_err().to_string();
            assert!(e.contains("DATABASE_URL"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn only_the_password_is_redacted() {
        assert_eq!(
            redacted_url("postgres://tg:s3cret@db.example:5432/admin"),
            "postgres://tg:***@db.example:5432/admin"
        );
        assert_eq!(redacted_url("postgres://db/admin"), "postgres://db/admin");
        assert_eq!(
            redacted_url("sqlite://.tollgate/admin.db"),
            "sqlite://.tollgate/admin.db"
        );
    }
}
