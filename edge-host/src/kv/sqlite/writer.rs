//! The SQLite store's one writer of `update`s, committing them in groups: every
//! update that arrives while the previous commit runs goes into the next
//! transaction, each in a savepoint of its own (one that fails is rolled back
//! alone), so concurrent requests share one write lock, one append of the pages
//! they touch to the WAL, and one commit. A caller is answered after the commit,
//! so nothing is acknowledged that a crash of the process could lose; waits on
//! another process's lock happen on this thread, never on a serving thread.
//!
//! An update that arrives while no other is under way is committed at once on
//! the caller's thread instead, without waiting for any lock: alone, it has
//! nothing to share a commit with, and handing it to the writer thread and back
//! costs two thread wake-ups, more than the commit. Should the file's lock be
//! taken, it goes to the queue.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{BUSY_TIMEOUT, apply_update, open_retrying, statement};
use crate::kv::KvError;

/// Most updates committed together.
const MAX_GROUP: usize = 64;

/// One caller's update, and where its outcome goes.
struct Job {
    store: String,
    deltas: Vec<(String, i64)>,
    values: Vec<(String, Vec<u8>)>,
    done: oneshot::Sender<Result<Vec<i64>, KvError>>,
}

/// The writer thread's inbox; the thread ends once this is dropped and the
/// updates already sent are committed.
pub(super) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
    ttl: Duration,
    /// The writer's connection: the thread's, or an idle-time caller's.
    conn: Arc<Mutex<Connection>>,
    /// Updates under way (being committed here or queued for the thread).
    under_way: Arc<AtomicUsize>,
}

impl GroupWriter {
    /// Opens the writer's own connection to `path` and starts its thread.
    pub(super) fn start(path: &Path, ttl: Duration) -> Result<GroupWriter, KvError> {
        let conn = open_retrying(path, false)
            .map_err(|e| KvError::Backend(format!("opening {}: {e}", path.display())))?;
        // Commits on a caller's thread never wait for a lock; the writer
        // thread sets its own wait around each group.
        conn.busy_timeout(Duration::ZERO)?;
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, inbox) = mpsc::channel();
        let thread_conn = conn.clone();
        std::thread::Builder::new()
            .name("tollgate-kv-writer".into())
            .spawn(move || write_groups(&thread_conn, &inbox, ttl))
            .map_err(|e| KvError::Backend(format!("starting the SQLite writer: {e}")))?;
        Ok(GroupWriter {
            jobs,
            conn,
            under_way: Arc::default(),
            ttl,
        })
    }

    /// Commits the update with whatever others arrive meanwhile; its own outcome.
    pub(super) async fn update(
        &self,
        store: &str,
        deltas: &[(String, i64)],
        values: &[(String, Vec<u8>)],
    ) -> Result<Vec<i64>, KvError> {
        let under_way = UnderWay::enter(&self.under_way);
        if under_way.alone
            && let Ok(conn) = self.conn.try_lock()
        {
            let job = [(store, deltas, values)];
            match commit(&conn, &job, self.ttl) {
                Err(KvError::Busy) => {}
                Ok(mut outcomes) => return outcomes.pop().unwrap_or(Ok(Vec::new())),
                Err(e) => return Err(e),
            }
        }
        let stopped = || KvError::Backend("the SQLite writer stopped".into());
        let (done, outcome) = oneshot::channel();
        let job = Job {
            store: store.to_string(),
            deltas: deltas.to_vec(),
            values: values.to_vec(),
            done,
        };
        self.jobs.send(job).map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// One update under way, counted until it is answered or its caller gives up.
struct UnderWay<'a> {
    count: &'a AtomicUsize,
    /// No other update was under way when this one began.
    alone: bool,
}

impl UnderWay<'_> {
    fn enter(count: &AtomicUsize) -> UnderWay<'_> {
        let alone = count.fetch_add(1, Ordering::AcqRel) == 0;
        UnderWay { count, alone }
    }
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection, even if a panic left its mutex poisoned (a transaction a
/// panic interrupted is rolled back before the next one begins).
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
    if !conn.is_autocommit() {
        let _ = statement(&conn, "ROLLBACK");
    }
    conn
}

fn write_groups(conn: &Mutex<Connection>, inbox: &mpsc::Receiver<Job>, ttl: Duration) {
    while let Ok(first) = inbox.recv() {
        let group: Vec<Job> = std::iter::once(first)
            .chain(inbox.try_iter().take(MAX_GROUP - 1))
            .collect();
        let parts: Vec<_> = group
            .iter()
            .map(|j| (j.store.as_str(), &j.deltas[..], &j.values[..]))
            .collect();
        let committed = {
            let conn = lock(conn);
            // Here, and only here, waiting on another process's lock is fine.
            let _ = conn.busy_timeout(BUSY_TIMEOUT);
            let committed = commit(&conn, &parts, ttl);
            let _ = conn.busy_timeout(Duration::ZERO);
            committed
        };
        match committed {
            Ok(outcomes) => {
                for (job, outcome) in group.into_iter().zip(outcomes) {
                    // A caller that went away needs no answer.
                    let _ = job.done.send(outcome);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, updates = group.len(), "SQLite group commit failed");
                for job in group {
                    let _ = job.done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One update: its store, counter moves and values.
type Update<'a> = (&'a str, &'a [(String, i64)], &'a [(String, Vec<u8>)]);

/// Applies every update of `group` in one transaction, each all or nothing; the
/// outcome of each, or the error that failed the whole transaction (nothing of
/// it is then written).
fn commit(
    conn: &Connection,
    group: &[Update<'_>],
    ttl: Duration,
) -> Result<Vec<Result<Vec<i64>, KvError>>, KvError> {
    super::in_transaction(conn, "BEGIN IMMEDIATE", |conn| {
        let mut outcomes = Vec::with_capacity(group.len());
        for &(store, deltas, values) in group {
            statement(conn, "SAVEPOINT job")?;
            let outcome = apply_update(conn, store, deltas, values, ttl);
            if outcome.is_err() {
                statement(conn, "ROLLBACK TO job")?;
            }
            statement(conn, "RELEASE job")?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    })
}
