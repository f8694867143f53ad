//! The audit table on PostgreSQL: appending inside a group's transaction, reading, verifying.
//!
//! Every write group of every replica begins by locking the one row of `audit_head`
//! (`SELECT … FOR UPDATE`, [`lock_head`]): that row is both the lock that keeps the chain one
//! chain with many writers and the high-water mark that shows records deleted from the end.
//! Appends within the group link to the head kept in [`GROUP`] (a task-local of the writer),
//! and the group writes the new head back before its `COMMIT` ([`store_head`]).

use std::cell::RefCell;

use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::{PgStore, col, db_err, invalid};
use crate::audit::hash::parse_hex32;
use crate::audit::{AuditBreak, AuditEntry, AuditRecord, BreakKind, ChainHead, ChainVerifier};
use crate::error::{Code, Error, Result};
use crate::store::{AuditBrowse, AuditQuery, AuditVerdict};

/// Records read per query while verifying.
const VERIFY_PAGE: i64 = 2000;

/// The audit side of one group transaction.
///
/// Records are not inserted one by one: each write's records wait here, in chain order, and
/// the group inserts them all with one statement just before its `COMMIT` ([`insert_pending`],
/// which also moves `audit_head`) — the same transaction, so a change and its record still
/// commit or vanish together, for one statement per group instead of one per record. A write
/// whose savepoint rolls back drops its records, so nothing ever links to an undone record.
#[derive(Debug, Default)]
pub(super) struct GroupAudit {
    /// The head as locked by the transaction's `SELECT … FOR UPDATE` (`None` before).
    base: Option<ChainHead>,
    /// Records of the group's writes so far, in chain order, not yet inserted.
    pending: Vec<AuditRecord>,
    /// `pending.len()` when the current write began.
    mark: usize,
}

impl GroupAudit {
    /// A new transaction that holds the head's lock and read `head`.
    pub(super) fn begin(&mut self, head: ChainHead) {
        *self = GroupAudit {
            base: Some(head),
            pending: Vec::new(),
            mark: 0,
        };
    }

    /// The head the next record links to (`None` outside a locked transaction).
    fn head(&self) -> Option<ChainHead> {
        match self.pending.last() {
            Some(r) => Some(ChainHead {
                seq: r.seq,
                hash: r.hash,
            }),
            None => self.base,
        }
    }

    pub(super) fn write_begins(&mut self) {
        self.mark = self.pending.len();
    }

    /// The current write's savepoint was rolled back: so are its records.
    pub(super) fn write_rolled_back(&mut self) {
        self.pending.truncate(self.mark);
    }

    /// The records to insert before `COMMIT`; afterwards nothing is pending.
    pub(super) fn take_pending(&mut self) -> Vec<AuditRecord> {
        self.mark = 0;
        std::mem::take(&mut self.pending)
    }

    pub(super) fn reset(&mut self) {
        *self = GroupAudit::default();
    }
}

tokio::task_local! {
    /// The audit state of the group writer's open transaction ([`GroupAudit`]).
    pub(super) static GROUP: RefCell<GroupAudit>;
}

/// Runs `f` on the group's audit state; `None` outside the group writer.
pub(super) fn with_group<T>(f: impl FnOnce(&mut GroupAudit) -> T) -> Option<T> {
    GROUP.try_with(|g| f(&mut g.borrow_mut())).ok()
}

/// Appends the record for `entry` at `now` after the current head: kept with the group and
/// inserted by its commit ([`GroupAudit`]). Only inside a write of the group writer
/// (`PgStore::write`), whose transaction holds the head's lock.
pub(super) fn append(entry: AuditEntry, now: i64) -> Result<AuditRecord> {
    let head = with_group(|g| g.head()).flatten().ok_or_else(|| {
        Error::internal(
            "audit append",
            "an audit record appended outside a write group (no lock on the chain's head)",
        )
    })?;
    let record = AuditRecord::next(head, now, entry);
    with_group(|g| g.pending.push(record.clone()));
    Ok(record)
}

/// Inserts `records` (the group's, in chain order) and writes the new head — the last of
/// them — in one statement: the group's last before `COMMIT`. Arrays, not a row per bind,
/// so the statement's text is the same for any group size and is prepared once.
pub(super) async fn insert_pending(conn: &mut PgConnection, records: &[AuditRecord]) -> Result<()> {
    let Some(last) = records.last() else {
        return Ok(());
    };
    let mut cols = PendingColumns::default();
    for r in records {
        cols.seq.push(r.seq);
        cols.at.push(r.at);
        cols.actor.push(&r.actor);
        cols.action.push(&r.action);
        cols.entity_kind.push(&r.entity_kind);
        cols.entity_id.push(&r.entity_id);
        cols.detail.push(&r.detail);
        cols.prev_hash.push(hex::encode(r.prev_hash));
        cols.hash.push(hex::encode(r.hash));
    }
    sqlx::query(
        "WITH ins AS (
             INSERT INTO audit (seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                  $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[]))
         UPDATE audit_head SET seq = $10, hash = $11 WHERE id = 1",
    )
    .bind(&cols.seq)
    .bind(&cols.at)
    .bind(&cols.actor)
    .bind(&cols.action)
    .bind(&cols.entity_kind)
    .bind(&cols.entity_id)
    .bind(&cols.detail)
    .bind(&cols.prev_hash)
    .bind(&cols.hash)
    .bind(last.seq)
    .bind(hex::encode(last.hash))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The columns of a group's records, one array each ([`insert_pending`]).
#[derive(Default)]
struct PendingColumns<'a> {
    seq: Vec<i64>,
    at: Vec<i64>,
    actor: Vec<&'a str>,
    action: Vec<&'a str>,
    entity_kind: Vec<&'a str>,
    entity_id: Vec<&'a str>,
    detail: Vec<&'a str>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

/// The head from the rows of the group's first round trip (`BEGIN; SELECT seq, hash FROM
/// audit_head … FOR UPDATE; SAVEPOINT w`): the lock every write group of every replica waits for.
pub(super) fn head_from_rows(rows: &[PgRow]) -> Result<ChainHead> {
    let Some(row) = rows.first() else {
        return Err(Error::store(
            Code::AuditBroken,
            "audit_head: its one row is missing (deleted?)",
        ));
    };
    parse_head((col(row, "seq")?, col(row, "hash")?))
}

fn parse_head((seq, hash): (i64, String)) -> Result<ChainHead> {
    if seq == 0 {
        return Ok(ChainHead::GENESIS);
    }
    let hash = parse_hex32(&hash).ok_or_else(|| {
        Error::store(
            Code::AuditBroken,
            format!("audit_head: edited: the hash of record {seq} is not 64 hex digits"),
        )
    })?;
    Ok(ChainHead { seq, hash })
}

/// A stored row as a record. A hash that is not hex is reported as a break of that record, not as
/// a store failure: it is exactly what an edited row looks like.
pub(super) fn record_from_row(row: &PgRow) -> Result<std::result::Result<AuditRecord, AuditBreak>> {
    let seq: i64 = col(row, "seq")?;
    let prev: String = col(row, "prev_hash")?;
    let hash: String = col(row, "hash")?;
    let (Some(prev_hash), Some(hash)) = (parse_hex32(&prev), parse_hex32(&hash)) else {
        return Ok(Err(AuditBreak {
            seq,
            kind: BreakKind::Edited,
            message: "a stored hash is not 64 hex digits".into(),
        }));
    };
    Ok(Ok(AuditRecord {
        seq,
        at: col(row, "at")?,
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        entity_kind: col(row, "entity_kind")?,
        entity_id: col(row, "entity_id")?,
        detail: col(row, "detail")?,
        prev_hash,
        hash,
    }))
}

/// One record by seq (`NOT_FOUND` if absent).
pub(super) async fn record(conn: &mut PgConnection, seq: i64) -> Result<AuditRecord> {
    let row = sqlx::query(
        "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit WHERE seq = $1",
    )
    .bind(seq)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| Error::store(Code::NotFound, format!("no audit record {seq}")))?;
    record_from_row(&row)?.map_err(Error::from)
}

/// Records in seq order, filtered by time and position.
pub(super) async fn records(store: &PgStore, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 || q.limit > 10_000 {
        return Err(invalid(format!("limit: {} is outside 1-10000", q.limit)));
    }
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit
         WHERE ($1::BIGINT IS NULL OR at >= $1) AND ($2::BIGINT IS NULL OR at < $2)
           AND seq > coalesce($3::BIGINT, 0)
         ORDER BY seq LIMIT $4",
    )
    .bind(q.since)
    .bind(q.until)
    .bind(q.after_seq)
    .bind(i64::from(q.limit))
    .fetch_all(store.pool())
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| record_from_row(r)?.map_err(Error::from))
        .collect()
}

/// Audit records newest first, for the console's Nhật ký kiểm toán: keyset on seq, filtered by
/// time, actor prefix and action (only the predicates asked for, so the primary key or `audit_at`
/// serves them).
pub(super) async fn browse(store: &PgStore, q: &AuditBrowse) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 || q.limit > 10_000 {
        return Err(invalid(format!("limit: {} is outside 1-10000", q.limit)));
    }
    let mut b = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit WHERE 1 = 1",
    );
    if let Some(v) = q.before_seq {
        b.push(" AND seq < ").push_bind(v);
    }
    if let Some(v) = q.since {
        b.push(" AND at >= ").push_bind(v);
    }
    if let Some(v) = q.until {
        b.push(" AND at < ").push_bind(v);
    }
    if let Some(v) = q.actor_prefix.as_deref() {
        // A prefix without LIKE's wildcards: `_` is common in actors (`quan_tri_he_thong`).
        b.push(" AND starts_with(actor, ").push_bind(v).push(")");
    }
    if let Some(v) = q.action.as_deref() {
        b.push(" AND action = ").push_bind(v);
    }
    b.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    let rows = b.build().fetch_all(store.pool()).await.map_err(db_err)?;
    rows.iter()
        .map(|r| record_from_row(r)?.map_err(Error::from))
        .collect()
}

/// Verifies the whole chain page by page, then checks that no records were cut off the end:
/// `audit_head` (written by every group that appends) must name the last record.
///
/// All pages are read in one `REPEATABLE READ` transaction, so records appended meanwhile do
/// not matter.
pub(super) async fn verify(store: &PgStore) -> Result<AuditVerdict> {
    let mut tx = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    verify_on(&mut tx, |_| {}).await
}

/// [`verify`] on the caller's (snapshot) transaction, showing each record, once it has
/// verified, to `seen`.
pub(super) async fn verify_on(
    conn: &mut PgConnection,
    mut seen: impl FnMut(&AuditRecord),
) -> Result<AuditVerdict> {
    let mut verifier = ChainVerifier::new();
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
             FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(VERIFY_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else { break };
        after = col(last, "seq")?;
        for row in &rows {
            let record = match record_from_row(row)? {
                Ok(r) => r,
                Err(b) => return Ok(Err(b)),
            };
            if let Err(b) = verifier.push(&record) {
                return Ok(Err(b));
            }
            seen(&record);
        }
    }
    let summary = match verifier.finish() {
        Ok(s) => s,
        Err(b) => return Ok(Err(b)),
    };
    let high: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let last = summary.head.seq;
    if let Some(high) = high
        && high > last
    {
        let message = if high == last + 1 {
            format!("missing: the last record (seq {high}) was deleted")
        } else {
            format!(
                "missing: records {}..{high} were deleted from the end",
                last + 1
            )
        };
        return Ok(Err(AuditBreak {
            seq: last + 1,
            kind: BreakKind::Deleted,
            message,
        }));
    }
    Ok(Ok(summary))
}
