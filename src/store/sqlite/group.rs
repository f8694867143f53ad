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

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sqlx::{Executor as _, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::audit::{self, GroupAudit};
use crate::error::{Code, Error, Result};
use crate::fault::Point;

/// Most writes in one transaction: bounds the time the first of them waits for the commit.
const MAX_GROUP: usize = 128;
/// Writes waiting for the writer before callers wait to queue.
const QUEUE: usize = 1024;
/// A group that takes longer than this is logged with where its time went.
const SLOW_GROUP: Duration = Duration::from_millis(500);

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
    /// Starts the writer on `pool` (the one-connection write pool), on a thread of its own.
    ///
    /// Why its own thread: a group is a chain of round trips to the driver's thread, one after
    /// the other, and the whole node waits on that chain. As a task among the node's others it
    /// waited, at every step, behind every request and delivery ready to run on the same two
    /// workers; on a thread of its own (a current-thread runtime) it runs as soon as the
    /// driver answers. Falls back to a task if the thread cannot be started.
    ///
    /// The runtime has a timer but no I/O driver: nothing on this thread does network or file
    /// I/O (packages are spilled to files before their write is queued), and without an I/O
    /// driver an idle runtime parks on a futex, which the driver's thread wakes more cheaply than
    /// through epoll and an eventfd — it is woken at least once per statement. In A/B runs of
    /// `lienthong bench` CPU per document fell from 2.71 to 2.58 ms (means of three alternating
    /// runs each; the ranges overlap, the VM being noisy).
    pub(super) fn start(pool: SqlitePool) -> GroupWriter {
        let (jobs, rx) = mpsc::channel(QUEUE);
        // Handed to the thread through a slot, so that a thread that cannot be started gives
        // them back for the fallback task (a failed `spawn` drops its closure).
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some((pool, rx))));
        let theirs = std::sync::Arc::clone(&slot);
        let started = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .and_then(|runtime| {
                std::thread::Builder::new()
                    .name("store-writer".into())
                    .spawn(move || {
                        let parts = theirs.lock().ok().and_then(|mut s| s.take());
                        if let Some((pool, rx)) = parts {
                            runtime.block_on(run(pool, rx));
                        }
                    })
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "store writer: no thread of its own; a task instead");
            if let Some((pool, rx)) = slot.lock().ok().and_then(|mut s| s.take()) {
                tokio::spawn(run(pool, rx));
            }
        }
        GroupWriter { jobs }
    }

    /// Runs `write` in the next group and returns its result once the group has committed.
    /// `write` must not commit or roll back itself; an `Err` rolls back its own changes only.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.queue(write).await?.await
    }

    /// Queues `write` (writes run in the order they were queued) and returns what answers with
    /// its result once its group has committed.
    pub(super) async fn queue<T, F>(
        &self,
        write: F,
    ) -> Result<impl Future<Output = Result<T>> + Send + 'static + use<T, F>>
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
        Ok(async move {
            rx.await
                .map_err(|_| unavailable("the store's writer stopped before committing"))?
        })
    }
}

fn unavailable(why: &str) -> Error {
    Error::store(Code::StoreUnavailable, format!("store: {why}"))
}

async fn run(pool: SqlitePool, rx: mpsc::Receiver<Job>) {
    audit::GROUP
        .scope(RefCell::new(GroupAudit::default()), run_groups(pool, rx))
        .await;
}

/// The control statements of a group travel together (`BEGIN IMMEDIATE; SAVEPOINT grouped` with
/// the read of the audit head, `RELEASE grouped; SAVEPOINT grouped` between two writes, `RELEASE
/// grouped`, the insert of the group's audit records and `COMMIT` after the last): the driver
/// runs each string in one round trip to its worker thread (two thread hand-offs). Measured
/// 2026-11-26 under load, a round trip costs the sender about 7 µs of CPU: worth saving where
/// it is free, not worth weakening the savepoint per write for (README, Performance).
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
        audit::with_group(GroupAudit::reset);
        if let Err(e) = audit::begin_group(&mut conn).await {
            rollback_or_discard(&mut conn).await;
            fail(first, &mut rx, &e.to_string());
            continue;
        }
        let mut finishers: Vec<Finisher> = Vec::new();
        let mut outcome: std::result::Result<(), String> = Ok(());
        let mut job = first;
        let started = Instant::now();
        let mut in_jobs = Duration::ZERO;
        let mut last_control;
        loop {
            let job_started = Instant::now();
            audit::with_group(GroupAudit::write_begins);
            let (ok, finish) = job(&mut conn).await;
            in_jobs += job_started.elapsed();
            finishers.push(finish);
            if !ok {
                // Its savepoint is rolled back below, and with it any record it appended.
                audit::with_group(GroupAudit::write_rolled_back);
            }
            let next = if finishers.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
            let control_started = Instant::now();
            // The group's audit records go in with its last statement, before `COMMIT`.
            let pending = match next {
                Some(_) => None,
                None => audit::with_group(GroupAudit::take_pending).flatten(),
            };
            // Fault points (debug builds, `crate::fault`): only groups that change state count.
            if pending.is_some() {
                crate::fault::crash(Point::BeforeCommit);
            }
            let commit_fails = pending.is_some() && crate::fault::fails(Point::Commit);
            let pending = match pending {
                Some(records) if crate::fault::fails(Point::AuditInsert) => {
                    Some(refused_by_sqlite(records))
                }
                other => other,
            };
            let control_result = match (ok, next.is_some(), pending) {
                (_, false, Some(records)) if commit_fails => {
                    // Everything but the COMMIT runs; then the COMMIT "fails".
                    let end = if ok {
                        audit::RELEASE_INSERT_COMMIT
                    } else {
                        audit::ROLLBACK_INSERT_COMMIT
                    };
                    let upto = end.strip_suffix("; COMMIT").unwrap_or(end);
                    match sqlx::query(upto).bind(records).execute(&mut *conn).await {
                        Ok(_) => Err(sqlx::Error::Protocol(
                            "fault point commit: the COMMIT failed".into(),
                        )),
                        Err(e) => Err(e),
                    }
                }
                (true, true, _) => conn.execute("RELEASE grouped; SAVEPOINT grouped").await,
                (false, true, _) => {
                    conn.execute("ROLLBACK TO grouped; RELEASE grouped; SAVEPOINT grouped")
                        .await
                }
                (true, false, None) => conn.execute("RELEASE grouped; COMMIT").await,
                (false, false, None) => {
                    conn.execute("ROLLBACK TO grouped; RELEASE grouped; COMMIT")
                        .await
                }
                (true, false, Some(records)) => {
                    sqlx::query(audit::RELEASE_INSERT_COMMIT)
                        .bind(records)
                        .execute(&mut *conn)
                        .await
                }
                (false, false, Some(records)) => {
                    sqlx::query(audit::ROLLBACK_INSERT_COMMIT)
                        .bind(records)
                        .execute(&mut *conn)
                        .await
                }
            };
            last_control = control_started.elapsed();
            if let Err(e) = control_result {
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
            audit::with_group(GroupAudit::reset);
            rollback_or_discard(&mut conn).await;
        }
        drop(conn);
        let took = started.elapsed();
        if took >= SLOW_GROUP {
            // Every caller of the group waited this long: say where it went (the commit
            // includes SQLite's WAL checkpoint and the sync of the disk).
            tracing::warn!(
                writes = finishers.len(),
                took_ms = took.as_millis() as u64,
                writes_ms = in_jobs.as_millis() as u64,
                commit_ms = last_control.as_millis() as u64,
                "slow store transaction"
            );
        }
        let commit_error = outcome.err();
        for finish in finishers {
            finish(commit_error.as_deref());
        }
    }
}

/// Ends a failed group's transaction. A ROLLBACK that fails with the transaction still open
/// would hand the next group a connection inside this one: the connection is then closed
/// instead (the pool opens a new one). "No transaction is active" is the normal case of a
/// COMMIT that failed after ending it.
async fn rollback_or_discard(conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    if let Err(e) = conn.execute("ROLLBACK").await
        && !e.to_string().contains("no transaction is active")
    {
        tracing::error!(error = %e, "ROLLBACK of a failed write failed; the connection is discarded");
        conn.close_on_drop();
    }
}

/// The group's audit records with the first one repeated: SQLite refuses the insert (the
/// `seq` is taken), as the `audit-insert` fault point wants.
fn refused_by_sqlite(records: String) -> String {
    match serde_json::from_str::<serde_json::Value>(&records) {
        Ok(serde_json::Value::Array(mut rows)) if !rows.is_empty() => {
            rows.push(rows[0].clone());
            serde_json::Value::Array(rows).to_string()
        }
        _ => records,
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

    /// A store in a temporary folder (kept for as long as the folder is).
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("g.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        (dir, store)
    }

    /// Three writes in one group, the middle one appending an audit record and then failing:
    /// its record is rolled back, so the cached head must not be used by the third; the chain
    /// verifies and holds exactly the two records that were committed, in order.
    #[tokio::test]
    async fn a_rolled_back_append_does_not_leave_a_stale_head() {
        let (_dir, store) = fresh_store().await;
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

    /// The records of a group reach the table through JSON (`audit::RELEASE_INSERT_COMMIT`): every
    /// field must come back exactly as it was hashed, whatever characters it holds, in order,
    /// and none may be inserted for a write that failed.
    #[tokio::test]
    async fn grouped_records_are_stored_exactly_as_hashed() {
        let (_dir, store) = fresh_store().await;
        let before = store.verify_audit().await.unwrap().unwrap();

        let odd = [
            "Văn thư Sở Thông tin và Truyền thông, nul \u{0} inside",
            "quote \" backslash \\ slash / tab \t",
            "line\nbreak\r\u{1}\u{1f}\u{7f}",
            "emoji 📄 and U+2028 \u{2028} U+FEFF \u{feff}",
            "",
        ];
        let append = |i: usize, fail: bool| {
            let text = odd[i % odd.len()];
            store.grouped(move |tx| {
                Box::pin(async move {
                    let e = AuditEntry::new(
                        text,
                        format!("test.{text}"),
                        text,
                        text,
                        &serde_json::json!({ "text": text, "i": i }),
                    );
                    let a = audit::append(&mut *tx, e, 1_000).await?;
                    let b = audit::append(&mut *tx, entry(i as i64), i64::MAX).await?;
                    if fail {
                        return Err(Error::store(Code::InvalidTransition, "refused"));
                    }
                    Ok(vec![a, b])
                })
            })
        };
        let (r0, r1, r2, r3, r4, r5) = tokio::join!(
            append(0, false),
            append(1, false),
            append(2, true),
            append(3, false),
            append(4, false),
            append(5, true)
        );
        assert_eq!(r2.unwrap_err().code(), Code::InvalidTransition);
        assert_eq!(r5.unwrap_err().code(), Code::InvalidTransition);
        let written: Vec<_> = [r0, r1, r3, r4]
            .into_iter()
            .flat_map(Result::unwrap)
            .collect();

        let after = store.verify_audit().await.unwrap().unwrap();
        assert_eq!(after.records, before.records + 8);
        let stored = store
            .audit_records(&crate::store::AuditQuery {
                after_seq: Some(before.records as i64),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stored, written);
    }
}
