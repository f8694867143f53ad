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

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                fail(first, &mut rx, &e.to_string());
                continue;
            }
        };
        if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
            fail(first, &mut rx, &e.to_string());
            continue;
        }
        let mut finishers: Vec<Finisher> = Vec::new();
        let mut broken: Option<String> = None;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            if let Err(e) = conn.execute("SAVEPOINT grouped").await {
                broken = Some(e.to_string());
                // The job is dropped unanswered: its caller hears that the writer stopped.
                break;
            }
            let (ok, finish) = job(&mut conn).await;
            finishers.push(finish);
            let rolled_back = if ok {
                Ok(())
            } else {
                conn.execute("ROLLBACK TO grouped").await.map(|_| ())
            };
            if let Err(e) = rolled_back.and(conn.execute("RELEASE grouped").await.map(|_| ())) {
                broken = Some(e.to_string());
                break;
            }
            if finishers.len() < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        let outcome = match broken {
            Some(why) => Err(why),
            None => conn
                .execute("COMMIT")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if outcome.is_err() {
            // Leave the connection clean for the next group (or a plain transaction).
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
