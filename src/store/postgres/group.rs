//! Group commit on PostgreSQL: this replica's writes queued meanwhile share one transaction.
//!
//! Every write appends to the audit chain, and the chain's head is one row locked by each
//! group until its `COMMIT` (`audit.rs`): so the writes of all replicas run one group at a time,
//! and a commit waits for the WAL flush (and, with a synchronous standby, for the standby)
//! while holding it. One transaction per write would cap the whole cluster at one write per
//! flush; a group pays one flush for up to [`MAX_GROUP`] writes. As in the SQLite store:
//!
//! - **Nothing is acknowledged before its commit:** callers are answered after `COMMIT`
//!   returned; if it fails — the server gone, a failover — every write of the group gets
//!   `STORE_UNAVAILABLE` and none is acknowledged.
//! - **A failed write leaves nothing:** its savepoint is rolled back (with its audit records and
//!   the head it moved); the others of the group are unaffected.
//! - **Order:** this replica's writes run in the order they were queued, one at a time on the
//!   writer's connection, each seeing the ones before it.
//! - **Cancellation-safe:** writes run on the writer's task, not the caller's.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Executor as _, PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};

use super::PgMetrics;
use super::audit::{self, GroupAudit};
use crate::error::{Code, Error, Result};
use crate::fault::Point;

/// Most writes in one transaction: bounds the time the first of them waits for the commit.
const MAX_GROUP: usize = 128;
/// Writes waiting for the writer before callers wait to queue.
const QUEUE: usize = 1024;
/// A group that takes longer than this is logged with where its time went.
const SLOW_GROUP: Duration = Duration::from_millis(500);

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// Told the commit outcome (`None`: committed), answers the caller.
type Finisher = Box<dyn FnOnce(Option<&str>) + Send>;
/// One queued write: runs on the connection, says whether it succeeded, and how to answer.
type Job = Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, (bool, Finisher)> + Send>;

/// The handle callers queue writes on. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer task on `pool`.
    pub(crate) fn start(pool: PgPool, metrics: Arc<PgMetrics>) -> GroupWriter {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(
            audit::GROUP.scope(RefCell::new(GroupAudit::default()), run(pool, rx, metrics)),
        );
        GroupWriter { jobs }
    }

    /// Runs `write` in the next group and returns its result once the group has committed.
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.queue(write).await?.await
    }

    /// Queues `write` and returns what answers with its result once its group has committed.
    pub(crate) async fn queue<T, F>(
        &self,
        write: F,
    ) -> Result<impl Future<Output = Result<T>> + Send + 'static + use<T, F>>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
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
        Ok(async move {
            rx.await
                .map_err(|_| unavailable("the store's writer stopped before committing"))?
        })
    }
}

fn unavailable(why: &str) -> Error {
    Error::store(Code::StoreUnavailable, format!("store: {why}"))
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>, metrics: Arc<PgMetrics>) {
    while let Some(first) = rx.recv().await {
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                fail(first, &mut rx, &e.to_string());
                continue;
            }
        };
        let started = Instant::now();
        metrics.group_begins();
        if let Err(e) = begin(&mut conn).await {
            rollback_or_discard(&mut conn).await;
            metrics.group_ends();
            fail(first, &mut rx, &e.to_string());
            continue;
        }
        let locked = started.elapsed();
        let mut finishers: Vec<Finisher> = Vec::new();
        let mut outcome: std::result::Result<(), String> = Ok(());
        let mut job = first;
        loop {
            // The transaction is inside savepoint `w` here (opened by `begin` or below).
            audit::with_group(GroupAudit::write_begins);
            let (ok, finish) = job(&mut conn).await;
            finishers.push(finish);
            if !ok {
                audit::with_group(GroupAudit::write_rolled_back);
            }
            let next = if finishers.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
            // One round trip closes this write's savepoint and opens the next one's. After the
            // last write a successful savepoint is left open: `COMMIT` commits it.
            let end = match (ok, next.is_some()) {
                (true, true) => Some("RELEASE SAVEPOINT w; SAVEPOINT w"),
                (false, true) => Some("ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w; SAVEPOINT w"),
                (true, false) => None,
                (false, false) => Some("ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w"),
            };
            if let Some(end) = end
                && let Err(e) = conn.execute(end).await
            {
                outcome = Err(e.to_string());
                drop(next);
                break;
            }
            match next {
                Some(j) => job = j,
                None => break,
            }
        }
        let commit_started = Instant::now();
        if outcome.is_ok() {
            outcome = commit(&mut conn).await;
        }
        if outcome.is_err() {
            rollback_or_discard(&mut conn).await;
        }
        audit::with_group(GroupAudit::reset);
        drop(conn);
        let took = started.elapsed();
        metrics.group_ends();
        metrics.group(finishers.len(), locked, took);
        if took >= SLOW_GROUP {
            tracing::warn!(
                writes = finishers.len(),
                took_ms = took.as_millis() as u64,
                lock_wait_ms = locked.as_millis() as u64,
                commit_ms = commit_started.elapsed().as_millis() as u64,
                "slow store transaction"
            );
        }
        let commit_error = outcome.err();
        for finish in finishers {
            finish(commit_error.as_deref());
        }
    }
}

/// `BEGIN`, the lock on the chain's head (waiting for other replicas' groups) and the first
/// write's savepoint, in one round trip.
async fn begin(conn: &mut PgConnection) -> Result<()> {
    let rows = conn
        .fetch_all("BEGIN; SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE; SAVEPOINT w")
        .await
        .map_err(super::db_err)?;
    let head = audit::head_from_rows(&rows)?;
    audit::with_group(|g| g.begin(head));
    Ok(())
}

/// Inserts the group's audit records and moves the head (one statement), then `COMMIT`.
async fn commit(conn: &mut PgConnection) -> std::result::Result<(), String> {
    let records = audit::with_group(GroupAudit::take_pending).unwrap_or_default();
    if !records.is_empty() {
        audit::insert_pending(conn, &records)
            .await
            .map_err(|e| e.to_string())?;
        // Fault points (debug builds, `crate::fault`): only groups that change state count.
        crate::fault::crash(Point::BeforeCommit);
        if crate::fault::fails(Point::Commit) {
            return Err("fault point commit: the COMMIT failed".into());
        }
    }
    conn.execute("COMMIT").await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Ends a failed group's transaction; a connection whose ROLLBACK fails is closed instead.
async fn rollback_or_discard(conn: &mut PoolConnection<Postgres>) {
    if let Err(e) = conn.execute("ROLLBACK").await {
        tracing::warn!(error = %e, "ROLLBACK of a failed write group failed; the connection is discarded");
        conn.close_on_drop();
    }
}

/// Answers `first` and everything queued right now: their senders drop, so each caller hears
/// "stopped before committing" (`STORE_UNAVAILABLE`). Says why in the log.
fn fail(first: Job, rx: &mut mpsc::Receiver<Job>, why: &str) {
    tracing::error!(error = %why, "store writer cannot start a transaction");
    drop(first);
    while let Ok(job) = rx.try_recv() {
        drop(job);
    }
}
