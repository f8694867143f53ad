//! Group commit: the hot writes share one transaction and one WAL sync.
//!
//! With `synchronous=FULL` every commit waits for the disk (about 2 ms on the machines we
//! measured), so one commit per write caps a node at a few hundred writes per second whatever the
//! CPU. Here a writer task takes the writes queued while the previous group was committing, runs
//! each in its own `SAVEPOINT` inside one `BEGIN IMMEDIATE` transaction, commits once, and only
//! then answers every caller. So:
//!
//! - **Invariant 1 holds:** no caller hears `Ok` before the `COMMIT` that holds its write has
//!   returned; if the commit fails, every write of the group gets `STORE_UNAVAILABLE` and none of
//!   them is acknowledged.
//! - **A failed write leaves nothing:** its savepoint is rolled back; the others of the group are
//!   unaffected (invariant 5 per write, as before).
//! - **Order and isolation are as before:** writes still run one at a time on the one writer
//!   connection, each seeing the writes before it (the audit chain is appended in order).
//! - **Cancellation-safe:** the write runs in the writer task, so a caller that goes away (a
//!   client hanging up) does not abandon a half-done transaction; its write completes or rolls
//!   back as a whole.
//!
//! Writes that are rare (operator actions, migrations) still use a plain transaction on the same
//! one-connection pool; the pool serialises them with the groups.

use std::future::Future;
use std::pin::Pin;

use sqlx::{Executor as _, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Code, Error, Result};

/// Most writes in one transaction: bounds the time the first of them waits for the commit.
const MAX_GROUP: usize = 128;
/// Writes waiting for the writer before callers wait to queue.
const QUEUE: usize = 1024;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// Told the commit outcome (`None`: committed), answers the caller.
type Finisher = Box<dyn FnOnce(Option<&str>) + Send>;
/// One queued write: runs on the connection, says whether it succeeded, and how to answer.
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finisher)> + Send>;

/// The handle callers queue writes on. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task on `pool` (the one-connection write pool).
    pub(super) fn start(pool: SqlitePool) -> GroupWriter {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        GroupWriter { jobs }
    }

    /// Runs `write` in the next group and returns its result once the group has committed.
    /// `write` must not commit or roll back itself; an `Err` rolls back its own changes only.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let ok = result.is_ok();
                let finish: Finisher = Box::new(move |commit_error| {
                    let answer = match (result, commit_error) {
                        (Err(e), _) => Err(e),
                        (Ok(_), Some(why)) => Err(unavailable(why)),
                        (Ok(v), None) => Ok(v),
                    };
                    let _ = tx.send(answer);
                });
                (ok, finish)
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| unavailable("the store's writer has stopped"))?;
        rx.await
            .map_err(|_| unavailable("the store's writer stopped before committing"))?
    }
}

fn unavailable(why: &str) -> Error {
    Error::store(Code::StoreUnavailable, format!("store: {why}"))
}

async fn run(pool: SqlitePool, rx: mpsc::Receiver<Job>) {
    super::audit::GROUP_HEAD
        .scope(std::cell::Cell::new(None), run_groups(pool, rx))
        .await;
}

/// The control statements of a group travel in pairs (`RELEASE grouped; SAVEPOINT grouped`
/// between two writes, `RELEASE grouped; COMMIT` after the last): the driver runs each string in
/// one round trip to its worker thread, and those round trips, not SQLite, are what a write costs.
async fn run_groups(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                fail(first, &mut rx, &e.to_string());
                continue;
            }
        };
        // Another writer may have appended since the last group; none can until we commit.
        super::audit::forget_group_head();
        if let Err(e) = conn.execute("BEGIN IMMEDIATE; SAVEPOINT grouped").await {
            let _ = conn.execute("ROLLBACK").await;
            fail(first, &mut rx, &e.to_string());
            continue;
        }
        let mut finishers: Vec<Finisher> = Vec::new();
        let mut outcome: std::result::Result<(), String> = Ok(());
        let mut job = first;
        loop {
            let (ok, finish) = job(&mut conn).await;
            finishers.push(finish);
            if !ok {
                // Its savepoint is rolled back below, and with it any record it appended.
                super::audit::forget_group_head();
            }
            let next = if finishers.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
            let control = match (ok, next.is_some()) {
                (true, true) => "RELEASE grouped; SAVEPOINT grouped",
                (true, false) => "RELEASE grouped; COMMIT",
                (false, true) => "ROLLBACK TO grouped; RELEASE grouped; SAVEPOINT grouped",
                (false, false) => "ROLLBACK TO grouped; RELEASE grouped; COMMIT",
            };
            if let Err(e) = conn.execute(control).await {
                // A failure here fails the whole group, the commit included. A next job is
                // dropped unrun: its caller hears that the writer stopped before committing.
                outcome = Err(e.to_string());
                break;
            }
            match next {
                Some(j) => job = j,
                None => break,
            }
        }
        if outcome.is_err() {
            // Leave the connection clean for the next group (or a plain transaction).
            super::audit::forget_group_head();
            let _ = conn.execute("ROLLBACK").await;
        }
        drop(conn);
        let commit_error = outcome.err();
        for finish in finishers {
            finish(commit_error.as_deref());
        }
    }
}

/// Answers `first` and everything queued right now with `why`.
fn fail(first: Job, rx: &mut mpsc::Receiver<Job>, why: &str) {
    // A job answers only through its finisher, which needs it run; unrun, its sender drops and
    // the caller hears "stopped before committing". Say why in the log.
    tracing::error!(error = %why, "store writer cannot start a transaction");
    drop(first);
    while let Ok(job) = rx.try_recv() {
        drop(job);
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::AuditEntry;
    use crate::error::{Code, Error};
    use crate::store::Store;
    use crate::store::sqlite::{SqliteStore, audit};

    fn entry(n: i64) -> AuditEntry {
        AuditEntry::new(
            "test",
            "test.append",
            "test",
            n,
            &serde_json::json!({ "n": n }),
        )
    }

    /// Three writes in one group, the middle one appending an audit record and then failing:
    /// its record is rolled back, so the cached head must not be used by the third; the chain
    /// verifies and holds exactly the two records that were committed, in order.
    #[tokio::test]
    async fn a_rolled_back_append_does_not_leave_a_stale_head() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let before = store.verify_audit().await.unwrap().unwrap();

        let append = |n: i64, fail: bool| {
            store.grouped(move |tx| {
                Box::pin(async move {
                    let r = audit::append(&mut *tx, entry(n), 1_000 + n).await?;
                    if fail {
                        return Err(Error::store(Code::InvalidTransition, "refused"));
                    }
                    Ok(r.seq)
                })
            })
        };
        // On this (current-thread) runtime all three are queued before the writer runs, so they
        // share one transaction.
        let (a, b, c) = tokio::join!(append(1, false), append(2, true), append(3, false));
        let (a, c) = (a.unwrap(), c.unwrap());
        assert_eq!(b.unwrap_err().code(), Code::InvalidTransition);
        assert_eq!(
            (a, c),
            (before.records as i64 + 1, before.records as i64 + 2)
        );

        let after = store.verify_audit().await.unwrap().unwrap();
        assert_eq!(after.records, before.records + 2);
        // And a later group (a fresh transaction) links to the same head.
        let d = append(4, false).await.unwrap();
        assert_eq!(d, c + 1);
        assert_eq!(
            store.verify_audit().await.unwrap().unwrap().records,
            before.records + 3
        );
    }
}
