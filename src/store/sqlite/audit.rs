//! The audit table: appending inside the caller's transaction, reading for export, verifying.

use std::cell::Cell;

use sqlx::SqliteConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{col, db_err, invalid};
use crate::audit::hash::parse_hex32;
use crate::audit::{AuditBreak, AuditEntry, AuditRecord, BreakKind, ChainHead, ChainVerifier};
use crate::error::{Code, Error, Result};
use crate::store::{AuditQuery, AuditVerdict};

/// Records read per query while verifying.
const VERIFY_PAGE: i64 = 2000;

/// Appends the record for `entry` at `now` after the current head. Must run inside the write
/// transaction of the change it records: with one writer, reading the head and inserting the
/// next record cannot interleave with another append.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    entry: AuditEntry,
    now: i64,
) -> Result<AuditRecord> {
    let head = match GROUP_HEAD.try_with(Cell::get).ok().flatten() {
        Some(head) => head,
        None => head(conn).await?,
    };
    let record = AuditRecord::next(head, now, entry);
    sqlx::query(
        "INSERT INTO audit (seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(record.seq)
    .bind(record.at)
    .bind(&record.actor)
    .bind(&record.action)
    .bind(&record.entity_kind)
    .bind(&record.entity_id)
    .bind(&record.detail)
    .bind(hex::encode(record.prev_hash))
    .bind(hex::encode(record.hash))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    // Outside the group writer `try_with` fails and nothing is cached.
    let _ = GROUP_HEAD.try_with(|h| {
        h.set(Some(ChainHead {
            seq: record.seq,
            hash: record.hash,
        }))
    });
    Ok(record)
}

tokio::task_local! {
    /// The audit head as the group writer's open transaction last left it, so that the hot
    /// writes do not read it back before every append (one statement, two thread hand-offs in
    /// the driver). Sound because it lives for one transaction only: `group.rs` clears it when
    /// a transaction begins (other writers may have appended in between; none can while we
    /// hold the write lock of `BEGIN IMMEDIATE`) and whenever a savepoint or the transaction
    /// rolls back (an append may have been undone). Plain transactions never see it.
    pub(super) static GROUP_HEAD: Cell<Option<ChainHead>>;
}

/// Forgets the cached head (see [`GROUP_HEAD`]); a no-op outside the group writer.
pub(super) fn forget_group_head() {
    let _ = GROUP_HEAD.try_with(|h| h.set(None));
}

async fn head(conn: &mut SqliteConnection) -> Result<ChainHead> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    match row {
        None => Ok(ChainHead::GENESIS),
        Some((seq, hash)) => {
            let hash = parse_hex32(&hash).ok_or_else(|| {
                Error::store(
                    Code::AuditBroken,
                    format!("record {seq}: edited: stored hash is not 64 hex digits"),
                )
            })?;
            Ok(ChainHead { seq, hash })
        }
    }
}

/// A stored row as a record. A hash that is not hex is reported as a break of that record, not as
/// a store failure: it is exactly what an edited row looks like.
fn record_from_row(row: &SqliteRow) -> Result<std::result::Result<AuditRecord, AuditBreak>> {
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

/// Records in seq order, filtered by time and position.
pub(super) async fn records(pool: &SqlitePool, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 || q.limit > 10_000 {
        return Err(invalid(format!("limit: {} is outside 1-10000", q.limit)));
    }
    let rows = sqlx::query(
        "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit
         WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2) AND seq > coalesce(?3, 0)
         ORDER BY seq LIMIT ?4",
    )
    .bind(q.since)
    .bind(q.until)
    .bind(q.after_seq)
    .bind(i64::from(q.limit))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| record_from_row(r)?.map_err(Error::from))
        .collect()
}

/// Verifies the whole chain page by page, then checks that no records were cut off the end: the
/// table's AUTOINCREMENT high-water mark (`sqlite_sequence`) must equal the last seq.
///
/// All pages are read in one read transaction, so records appended meanwhile do not matter.
pub(super) async fn verify(pool: &SqlitePool) -> Result<AuditVerdict> {
    let mut conn = pool.begin().await.map_err(db_err)?;
    let mut verifier = ChainVerifier::new();
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
             FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
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
        }
    }
    let summary = match verifier.finish() {
        Ok(s) => s,
        Err(b) => return Ok(Err(b)),
    };
    let high: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
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
