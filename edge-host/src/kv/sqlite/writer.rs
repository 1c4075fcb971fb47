//! The SQLite store's one writer of `update`s, committing them in groups: every
//! update that arrives while the previous commit runs goes into the next
//! transaction, each in a savepoint of its own (one that fails is rolled back
//! alone), so concurrent requests share one write lock, one append of the pages
//! they touch to the WAL, and one commit. A caller is answered after the commit,
//! so nothing is acknowledged that a crash of the process could lose; waits on
//! another process's lock happen on this thread, never on a serving thread.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{BUSY_TIMEOUT, apply_update, open_retrying};
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
}

impl GroupWriter {
    /// Opens the writer's own connection to `path` and starts its thread.
    pub(super) fn start(path: &Path, ttl: Duration) -> Result<GroupWriter, KvError> {
        let conn = open_retrying(path, false)
            .map_err(|e| KvError::Backend(format!("opening {}: {e}", path.display())))?;
        // This thread may wait for another process's lock; requests wait on it.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let (jobs, inbox) = mpsc::channel();
        std::thread::Builder::new()
            .name("tollgate-kv-writer".into())
            .spawn(move || write_groups(conn, &inbox, ttl))
            .map_err(|e| KvError::Backend(format!("starting the SQLite writer: {e}")))?;
        Ok(GroupWriter { jobs })
    }

    /// Commits the update with whatever others arrive meanwhile; its own outcome.
    pub(super) async fn update(
        &self,
        store: &str,
        deltas: &[(String, i64)],
        values: &[(String, Vec<u8>)],
    ) -> Result<Vec<i64>, KvError> {
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

fn write_groups(mut conn: Connection, inbox: &mpsc::Receiver<Job>, ttl: Duration) {
    while let Ok(first) = inbox.recv() {
        let group: Vec<Job> = std::iter::once(first)
            .chain(inbox.try_iter().take(MAX_GROUP - 1))
            .collect();
        match commit(&mut conn, &group, ttl) {
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

/// Applies every job of `group` in one transaction, each all or nothing; the
/// outcome of each, or the error that failed the whole transaction.
fn commit(
    conn: &mut Connection,
    group: &[Job],
    ttl: Duration,
) -> Result<Vec<Result<Vec<i64>, KvError>>, KvError> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for job in group {
        let savepoint = tx.savepoint()?;
        let outcome = apply_update(&savepoint, &job.store, &job.deltas, &job.values, ttl);
        if outcome.is_ok() {
            savepoint.commit()?;
        }
        // Dropped uncommitted, a savepoint rolls back what its job wrote.
        outcomes.push(outcome);
    }
    tx.commit()?;
    Ok(outcomes)
}
