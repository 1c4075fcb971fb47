//! SQLite file backend in Spin's own `spin_key_value` layout, so the admin
//! service (another process) and a real Spin runtime read and write the same file.
//!
//! No cache: every read is a fresh autocommit statement, so a record another
//! process commits is visible to the very next request (WAL readers see every
//! committed transaction). Read-modify-write operations run in `BEGIN IMMEDIATE`
//! transactions, which take SQLite's write lock up front and so are atomic
//! across connections and processes.
//!
//! Statements run inline on the async worker (they take microseconds); only a
//! wait on another writer's lock moves off it (see `SqliteKv::run`).
//!
//! Counters expire [`COUNTER_TTL`] after creation, as in Redis. Spin's table is
//! left as Spin defines it: expiries live in a side table of this edge's own,
//! and a periodic sweep deletes expired counters from both (giving counters
//! another writer created, such as Spin itself, an expiry first).

use std::future::ready;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    COUNTER_TTL, KvBackend, KvError, KvFuture, SweepSchedule, add_counter, decode_counter,
    is_counter,
};

mod writer;

use writer::GroupWriter;

/// Spin's schema, verbatim.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
)";
const GET: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SET: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";
const EXISTS: &str = "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2";
const LIST: &str = "SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key";

/// This edge's counter expiries (Unix ms), beside Spin's table.
const EXPIRY_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS tollgate_counter_expiry (
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (store, key)
)";
const SET_EXPIRY: &str = "INSERT INTO tollgate_counter_expiry (store, key, expires_at_ms)
    VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms";
const CLEAR_EXPIRY: &str = "DELETE FROM tollgate_counter_expiry WHERE store = ?1 AND key = ?2";
/// Counters without an expiry (written before this edge ran, or by another
/// writer) get one from now. `ctr;` is the first string after every `ctr:...`.
const BACKFILL_EXPIRY: &str =
    "INSERT OR IGNORE INTO tollgate_counter_expiry (store, key, expires_at_ms)
    SELECT store, key, ?1 FROM spin_key_value WHERE key >= 'ctr:' AND key < 'ctr;'";
const DELETE_EXPIRED: &str = "DELETE FROM spin_key_value WHERE (store, key) IN
    (SELECT store, key FROM tollgate_counter_expiry WHERE expires_at_ms <= ?1)";
const FORGET_EXPIRED: &str = "DELETE FROM tollgate_counter_expiry WHERE expires_at_ms <= ?1";

/// Connections kept open: enough that a writer waiting on another process's
/// lock does not stall this process's readers, few enough to stay cheap.
const POOL_SIZE: usize = 4;
/// Writes of more entries than this run on a connection of their own
/// ([`SqliteKv::bulk`]).
const BULK_ENTRIES: usize = 256;
/// How long a writer waits for another connection's or process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite-file key-value store.
pub struct SqliteKv {
    path: PathBuf,
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    ttl: Duration,
    sweeps: SweepSchedule,
    /// Commits `update`s, in groups.
    writer: GroupWriter,
    _checkpoints: Checkpointer,
}

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                KvError::Busy
            }
            _ => KvError::Backend(e.to_string()),
        }
    }
}

impl SqliteKv {
    /// Opens (creating if needed) the file and its parent directory.
    pub fn open(path: &Path) -> Result<SqliteKv, KvError> {
        SqliteKv::open_with_counter_ttl(path, COUNTER_TTL)
    }

    /// As [`SqliteKv::open`], counters expiring `ttl` after creation (tests use
    /// a short one to watch expiry happen).
    pub fn open_with_counter_ttl(path: &Path, ttl: Duration) -> Result<SqliteKv, KvError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| KvError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        let conns = (0..POOL_SIZE)
            .map(|i| open_retrying(path, i == 0).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| KvError::Backend(format!("opening {}: {e}", path.display())))?;
        let checkpoints = Checkpointer::start(path)?;
        let writer = GroupWriter::start(path, ttl)?;
        Ok(SqliteKv {
            path: path.to_path_buf(),
            conns,
            next: AtomicUsize::new(0),
            ttl,
            sweeps: SweepSchedule::new(ttl),
            writer,
            _checkpoints: checkpoints,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A free connection, if one is.
    fn free_conn(&self) -> Option<MutexGuard<'_, Connection>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.conns.len())
            .find_map(|i| self.conns[(start + i) % self.conns.len()].try_lock().ok())
    }

    /// The next connection in turn, waiting for it.
    fn next_conn(&self) -> MutexGuard<'_, Connection> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        // A statement that panicked leaves no open transaction behind (rusqlite
        // rolls back on drop), so a poisoned connection is still usable.
        self.conns[start % self.conns.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a pooled connection. Statements take microseconds, so they run
    /// inline on the calling task, never waiting: connections have no busy
    /// timeout. Only when every connection is taken or another writer holds the
    /// lock does `f` run again, waiting up to [`BUSY_TIMEOUT`], and then (on a
    /// multi-threaded runtime) in `block_in_place`, so the wait does not stall
    /// the worker's other tasks. Handing the worker off costs a thread switch,
    /// which is why it is not done for every statement. `f` is all-or-nothing
    /// (one transaction) or idempotent, so running it again is safe.
    fn run<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Connection) -> Result<T, KvError>,
    ) -> KvFuture<'static, T> {
        if let Some(mut conn) = self.free_conn() {
            match f(&mut conn) {
                Err(KvError::Busy) => {}
                done => return Box::pin(ready(done)),
            }
        }
        let wait = || {
            let mut conn = self.next_conn();
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let result = f(&mut conn);
            conn.busy_timeout(Duration::ZERO)?;
            result
        };
        Box::pin(ready(off_the_worker(wait)))
    }

    /// Runs a large write `f` on a connection of its own, closed after. A pooled
    /// connection that held thousands of pages in one transaction keeps a page
    /// cache that large, and every other writer's commit then makes its next
    /// transaction walk all of it: a million-key load once made requests 2×
    /// slower for as long as the edge ran.
    /// Removes expired counters when a sweep is due (at most once per interval).
    fn sweep_if_due(&self, conn: &mut Connection) -> Result<(), KvError> {
        if self.sweeps.due() {
            self.sweep(conn)?;
        }
        Ok(())
    }

    /// Removes expired counters now.
    fn sweep(&self, conn: &mut Connection) -> Result<(), KvError> {
        let removed = sweep(conn, self.ttl)?;
        tracing::debug!(removed, "expired counters swept");
        Ok(())
    }

    fn bulk<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, KvError>,
    ) -> KvFuture<'static, T> {
        let load = || {
            let mut conn = open_retrying(&self.path, false)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            f(&mut conn)
        };
        Box::pin(ready(off_the_worker(load)))
    }
}

/// Runs `wait`, which may block, in `block_in_place` on a multi-threaded runtime
/// (the worker's other tasks move on); elsewhere (a serving thread's
/// single-threaded runtime, no runtime) in place.
fn off_the_worker<T>(wait: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

/// Opens a connection, retrying while another opener holds the file: switching
/// a new file to WAL answers SQLITE_BUSY at once, without the busy handler, when
/// several processes open it together (`tollgate up`: admin and edge at start).
fn open_retrying(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match open_connection(path, create) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn open_connection(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block on the admin service's writes, and vice versa.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")?;
    // No memory map: every commit of another connection (each request's) makes
    // a reader drop its cache and, with a map, unmap and map the file again,
    // which cost more than reading the pages it needs.
    pragma(&conn, "PRAGMA mmap_size = 0")?;
    // No checkpoint on a request's commit (it would write back the WAL and sync
    // the file while a request waits): the `Checkpointer` thread does it.
    pragma(&conn, "PRAGMA wal_autocheckpoint = 0")?;
    if create {
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(EXPIRY_SCHEMA)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    // Statements do not wait on a lock: `SqliteKv::run` waits, off the worker.
    conn.busy_timeout(Duration::ZERO)?;
    Ok(conn)
}

/// Runs one statement without parameters (`BEGIN`, `COMMIT`, `SAVEPOINT`…),
/// prepared once per connection: rusqlite's `Transaction` parses them anew on
/// every use, which showed in the profile of every request.
fn statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `f` in a transaction opened with `begin` (`BEGIN` or `BEGIN
/// IMMEDIATE`): committed if `f` succeeds, rolled back otherwise.
fn in_transaction<T>(
    conn: &Connection,
    begin: &str,
    f: impl FnOnce(&Connection) -> Result<T, KvError>,
) -> Result<T, KvError> {
    statement(conn, begin)?;
    let done = f(conn).and_then(|v| {
        statement(conn, "COMMIT")?;
        Ok(v)
    });
    if done.is_err()
        && !conn.is_autocommit()
        && let Err(e) = statement(conn, "ROLLBACK")
    {
        tracing::warn!(error = %e, "SQLite rollback failed");
    }
    done
}

/// Runs a PRAGMA, whatever row it answers with.
fn pragma(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.query_row(sql, [], |_| Ok(())).optional()?;
    Ok(())
}

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// A thread of its own that checkpoints the WAL every [`CHECKPOINT_INTERVAL`]
/// (passive: it never waits for readers or writers), so the file sync a
/// checkpoint makes is never on a request's path; stopped on drop. Between
/// checkpoints the WAL holds the commits (a crash loses none of them: SQLite
/// replays the WAL on the next open).
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, KvError> {
        let conn = open_retrying(path, false)
            .map_err(|e| KvError::Backend(format!("opening {}: {e}", path.display())))?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("tollgate-kv-checkpoint".into())
            .spawn(move || {
                let (lock, wake) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*stopped {
                    stopped = wake
                        .wait_timeout(stopped, CHECKPOINT_INTERVAL)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    if let Err(e) = pragma(&conn, "PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| KvError::Backend(format!("starting the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_one();
    }
}

/// A stored value as bytes. Spin itself stores counters as SQLite integers;
/// those read back as the i64 little-endian bytes this edge uses.
fn value_bytes(v: ValueRef<'_>) -> Vec<u8> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Integer(i) => i.to_le_bytes().to_vec(),
        ValueRef::Real(f) => f.to_le_bytes().to_vec(),
        ValueRef::Null => Vec::new(),
    }
}

/// Unix milliseconds `after` from now.
fn unix_ms_in(after: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from((now + after).as_millis()).unwrap_or(i64::MAX)
}

/// Deletes every expired counter (after giving unexpiring ones an expiry), in
/// one write transaction.
fn sweep(conn: &mut Connection, ttl: Duration) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(BACKFILL_EXPIRY)?
        .execute(params![unix_ms_in(ttl)])?;
    let now = unix_ms_in(Duration::ZERO);
    let removed = tx.prepare_cached(DELETE_EXPIRED)?.execute(params![now])?;
    tx.prepare_cached(FORGET_EXPIRED)?.execute(params![now])?;
    tx.commit()?;
    Ok(removed)
}

fn get(conn: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(GET)?
        .query_row(params![store, key], |r| Ok(value_bytes(r.get_ref(0)?)))
        .optional()
}

/// Sets `key`; as Redis's SET, a counter written this way no longer expires.
fn set(conn: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(SET)?
        .execute(params![store, key, value])?;
    if is_counter(key) {
        conn.prepare_cached(CLEAR_EXPIRY)?
            .execute(params![store, key])?;
    }
    Ok(())
}

/// The counter at `key` (missing = 0).
fn read_counter(conn: &Connection, store: &str, key: &str) -> Result<i64, KvError> {
    Ok(stored_counter(conn, store, key)?.unwrap_or(0))
}

/// The counter stored at `key`, decoded as [`read_counters`] decodes it.
fn stored_counter(conn: &Connection, store: &str, key: &str) -> Result<Option<i64>, KvError> {
    let mut stmt = conn.prepare_cached(GET)?;
    let mut rows = stmt.query(params![store, key])?;
    match rows.next()? {
        Some(row) => Ok(Some(counter_value(key, row.get_ref(0)?)?)),
        None => Ok(None),
    }
}

/// Sets each of `values`, then moves each counter (a zero delta reads it), in
/// order, inside the caller's write transaction; the counters' new values. The
/// counters are read in one statement and each changed one written by one more
/// execution of a single prepared statement: per counter, a statement prepared
/// (from the cache) and run twice was most of a limited request's commit.
fn apply_update(
    conn: &Connection,
    store: &str,
    deltas: &[(String, i64)],
    values: &[(String, Vec<u8>)],
    ttl: Duration,
) -> Result<Vec<i64>, KvError> {
    for (key, value) in values {
        set(conn, store, key, value)?;
    }
    if deltas.is_empty() {
        return Ok(Vec::new());
    }
    let stored = read_counters(conn, store, deltas)?;
    // Each counter's value so far, kept at its key's first position (a key may
    // appear twice: the second move starts from the first's result).
    let mut now = stored.clone();
    let mut moved = vec![false; deltas.len()];
    let mut outcomes = Vec::with_capacity(deltas.len());
    for (i, (key, delta)) in deltas.iter().enumerate() {
        let at = first_position(deltas, i);
        let current = now[at].unwrap_or(0);
        let new = match delta {
            0 => current,
            _ => {
                let new = add_counter(key, current, *delta)?;
                now[at] = Some(new);
                moved[at] = true;
                new
            }
        };
        outcomes.push(new);
    }
    let mut write = conn.prepare_cached(SET)?;
    let mut created = false;
    for (at, (key, _)) in deltas.iter().enumerate().filter(|&(at, _)| moved[at]) {
        let value = now[at].unwrap_or(0).to_le_bytes();
        write.execute(params![store, key, &value[..]])?;
        created |= stored[at].is_none() && is_counter(key);
    }
    if created {
        // Created now: each expires a TTL from now, as Redis's EXPIRE on a first INCRBY.
        let mut expire = conn.prepare_cached(SET_EXPIRY)?;
        let expires_at = unix_ms_in(ttl);
        for (at, (key, _)) in deltas.iter().enumerate() {
            if moved[at] && stored[at].is_none() && is_counter(key) {
                expire.execute(params![store, key, expires_at])?;
            }
        }
    }
    Ok(outcomes)
}

/// The first position in `deltas` of the key at `i`.
fn first_position(deltas: &[(String, i64)], i: usize) -> usize {
    let key = &deltas[i].0;
    deltas[..i].iter().position(|(k, _)| k == key).unwrap_or(i)
}

/// Most keys one [`read_counters`] statement is prepared for; more are read
/// in several.
const READ_MANY: usize = 16;

/// `SELECT … WHERE store = ? AND key IN (?, …)` for `n` keys, built once per `n`.
fn select_counters(n: usize) -> &'static str {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (0..=READ_MANY)
            .map(|n| {
                let marks = vec!["?"; n].join(", ");
                format!(
                    "SELECT key, value FROM spin_key_value WHERE store = ? AND key IN ({marks})"
                )
            })
            .collect()
    });
    &texts[n]
}

/// The stored values of the counters named in `deltas` (missing = `None`), by
/// position, read in one statement per [`READ_MANY`] keys (one statement is a
/// consistent read of them all without a transaction).
fn read_counters(
    conn: &Connection,
    store: &str,
    deltas: &[(String, i64)],
) -> Result<Vec<Option<i64>>, KvError> {
    let mut found = vec![None; deltas.len()];
    for (part, chunk) in deltas.chunks(READ_MANY).enumerate() {
        let mut stmt = conn.prepare_cached(select_counters(chunk.len()))?;
        let keys = chunk.iter().map(|(k, _)| k.as_str());
        let mut rows = stmt.query(rusqlite::params_from_iter(
            std::iter::once(store).chain(keys),
        ))?;
        while let Some(row) = rows.next()? {
            let key = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            let value = counter_value(key, row.get_ref(1)?)?;
            for (at, (k, _)) in deltas
                .iter()
                .enumerate()
                .skip(part * READ_MANY)
                .take(chunk.len())
            {
                if k == key {
                    found[at] = Some(value);
                }
            }
        }
    }
    Ok(found)
}

/// A stored counter (this edge's 8 little-endian bytes, or Spin's SQLite integer).
fn counter_value(key: &str, value: ValueRef<'_>) -> Result<i64, KvError> {
    match value {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Blob(b) | ValueRef::Text(b) => decode_counter(key, b),
        _ => Err(KvError::NotACounter {
            key: key.to_string(),
        }),
    }
}

/// Adds `delta` to the counter at `key` inside the caller's write transaction.
fn move_counter(
    conn: &Connection,
    store: &str,
    key: &str,
    delta: i64,
    ttl: Duration,
) -> Result<i64, KvError> {
    let current = stored_counter(conn, store, key)?;
    let new = add_counter(key, current.unwrap_or(0), delta)?;
    conn.prepare_cached(SET)?
        .execute(params![store, key, &new.to_le_bytes()[..]])?;
    if current.is_none() && is_counter(key) {
        // Created now: expires a TTL from now, as Redis's EXPIRE on a first INCRBY.
        conn.prepare_cached(SET_EXPIRY)?
            .execute(params![store, key, unix_ms_in(ttl)])?;
    }
    Ok(new)
}

impl KvBackend for SqliteKv {
    fn get<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        self.run(|c| Ok(get(c, store, key)?))
    }

    fn set<'a>(&'a self, store: &'a str, key: &'a str, value: &'a [u8]) -> KvFuture<'a, ()> {
        self.run(|c| Ok(set(c, store, key, value)?))
    }

    fn delete<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, ()> {
        self.run(|c| {
            c.prepare_cached(DELETE)?.execute(params![store, key])?;
            if is_counter(key) {
                c.prepare_cached(CLEAR_EXPIRY)?
                    .execute(params![store, key])?;
            }
            Ok(())
        })
    }

    fn exists<'a>(&'a self, store: &'a str, key: &'a str) -> KvFuture<'a, bool> {
        self.run(|c| Ok(c.prepare_cached(EXISTS)?.exists(params![store, key])?))
    }

    fn list_keys<'a>(&'a self, store: &'a str) -> KvFuture<'a, Vec<String>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(LIST)?;
            let keys = stmt
                .query_map(params![store], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(keys)
        })
    }

    fn increment<'a>(&'a self, store: &'a str, key: &'a str, delta: i64) -> KvFuture<'a, i64> {
        self.run(|c| {
            if delta == 0 {
                // A read: no write lock, so reading counters never queues behind writers.
                return read_counter(c, store, key);
            }
            self.sweep_if_due(c)?;
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let new = move_counter(&tx, store, key, delta, self.ttl)?;
            tx.commit()?;
            Ok(new)
        })
    }

    fn update<'a>(
        &'a self,
        store: &'a str,
        deltas: &'a [(String, i64)],
        values: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, Vec<i64>> {
        if values.is_empty() && deltas.iter().all(|(_, d)| *d == 0) {
            // Only reads: one read transaction here, queued behind no writer
            // (one statement is one already).
            let read = |c: &Connection| -> Result<Vec<i64>, KvError> {
                let values = read_counters(c, store, deltas)?;
                Ok(values.into_iter().map(|v| v.unwrap_or(0)).collect())
            };
            return self.run(move |c| match deltas {
                [(key, _)] => Ok(vec![read_counter(c, store, key)?]),
                // Up to READ_MANY keys are one statement, a consistent read already.
                _ if deltas.len() <= READ_MANY => read(c),
                _ => in_transaction(c, "BEGIN", read),
            });
        }
        Box::pin(async move {
            if self.sweeps.due() {
                self.run(|c| self.sweep(c)).await?;
            }
            self.writer.update(store, deltas, values).await
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        expected: Option<&'a [u8]>,
        new: &'a [u8],
    ) -> KvFuture<'a, bool> {
        self.run(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if get(&tx, store, key)?.as_deref() != expected {
                return Ok(false);
            }
            tx.prepare_cached(SET)?.execute(params![store, key, new])?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn get_many<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> KvFuture<'a, Vec<Option<Vec<u8>>>> {
        self.run(|c| {
            // One read transaction: a consistent snapshot across the keys.
            in_transaction(c, "BEGIN", |c| {
                Ok(keys
                    .iter()
                    .map(|k| get(c, store, k))
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
        })
    }

    fn set_many<'a>(
        &'a self,
        store: &'a str,
        entries: &'a [(String, Vec<u8>)],
    ) -> KvFuture<'a, ()> {
        let load = move |c: &mut Connection| {
            // All or nothing: a records file never lands half-loaded.
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(SET)?;
                for (k, v) in entries {
                    stmt.execute(params![store, k, v])?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        if entries.len() > BULK_ENTRIES {
            self.bulk(load)
        } else {
            self.run(load)
        }
    }

    fn delete_many<'a>(&'a self, store: &'a str, keys: &'a [String]) -> KvFuture<'a, ()> {
        self.run(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut stmt = tx.prepare_cached(DELETE)?;
                for k in keys {
                    stmt.execute(params![store, k])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}
