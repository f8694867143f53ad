//! The audit table: appending inside the caller's transaction, reading for export, verifying.

use std::cell::RefCell;

use sqlx::SqliteConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{col, db_err, invalid};
use crate::audit::hash::parse_hex32;
use crate::audit::{AuditBreak, AuditEntry, AuditRecord, BreakKind, ChainHead, ChainVerifier};
use crate::error::{Code, Error, Result};
use crate::store::{AuditBrowse, AuditQuery, AuditVerdict};

/// Records read per query while verifying.
const VERIFY_PAGE: i64 = 2000;

/// Appends the record for `entry` at `now` after the current head. Must run inside the write
/// transaction of the change it records: with one writer, reading the head and inserting the
/// next record cannot interleave with another append.
///
/// Inside the group writer the record is not inserted here but kept with the group
/// ([`GROUP`]) and inserted, with the records of the group's other writes, by one statement just
/// before the group's `COMMIT`: the same transaction, so a change and its record still commit
/// (or not) together, for one statement per group instead of one per record.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    entry: AuditEntry,
    now: i64,
) -> Result<AuditRecord> {
    if let Ok(cached) = GROUP.try_with(|g| g.borrow().head()) {
        let head = match cached {
            Some(head) => head,
            None => {
                let head = head(conn).await?;
                GROUP.with(|g| g.borrow_mut().base = Some(head));
                head
            }
        };
        let record = AuditRecord::next(head, now, entry);
        GROUP.with(|g| g.borrow_mut().pending.push(record.clone()));
        return Ok(record);
    }
    let record = AuditRecord::next(head(conn).await?, now, entry);
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
    Ok(record)
}

/// Inserts the records of a JSON array of `[seq, at, actor, action, entity_kind, entity_id,
/// detail, prev_hash, hash]` arrays ([`GroupAudit::take_pending`]), in order: `insert_pending!()`,
/// the part the two commit strings below share. One fixed text, so
/// the driver prepares it once whatever the group's size.
macro_rules! insert_pending {
    () => {
        "INSERT INTO audit (seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash)
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6,
                value->>7, value->>8
         FROM json_each(?) ORDER BY key"
    };
}

/// The end of a group whose last write succeeded, with records pending (one bind: the JSON).
pub(super) const RELEASE_INSERT_COMMIT: &str =
    concat!("RELEASE grouped; ", insert_pending!(), "; COMMIT");
/// The end of a group whose last write failed, with records pending from the others.
pub(super) const ROLLBACK_INSERT_COMMIT: &str = concat!(
    "ROLLBACK TO grouped; RELEASE grouped; ",
    insert_pending!(),
    "; COMMIT"
);

/// The audit side of one group transaction (see [`append`]).
///
/// Sound because it lives for one transaction only and no record reaches the table before the
/// group's last statement: `group.rs` resets it when a transaction begins (other writers may
/// have appended in between; none can while we hold the write lock of `BEGIN IMMEDIATE`), marks
/// where each write starts, drops a write's records when its savepoint rolls back (the head
/// goes back with them, so a record that was undone is never linked to), and takes the rest for
/// the insert that precedes `COMMIT`. Plain transactions never see it.
#[derive(Debug, Default)]
pub(super) struct GroupAudit {
    /// The head in the table, read by the transaction's first append.
    base: Option<ChainHead>,
    /// Records of the group's writes so far, in chain order, not yet inserted.
    pending: Vec<AuditRecord>,
    /// `pending.len()` when the current write began.
    mark: usize,
}

impl GroupAudit {
    fn head(&self) -> Option<ChainHead> {
        match self.pending.last() {
            Some(r) => Some(ChainHead {
                seq: r.seq,
                hash: r.hash,
            }),
            None => self.base,
        }
    }

    /// A new transaction: nothing known of the head, nothing pending.
    pub(super) fn reset(&mut self) {
        *self = GroupAudit::default();
    }

    /// The next write starts here.
    pub(super) fn write_begins(&mut self) {
        self.mark = self.pending.len();
    }

    /// The current write's savepoint was rolled back: so are its records.
    pub(super) fn write_rolled_back(&mut self) {
        self.pending.truncate(self.mark);
    }

    /// The pending records as the JSON array the commit strings read, or `None` if there are
    /// none; afterwards nothing is pending.
    pub(super) fn take_pending(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let rows: Vec<serde_json::Value> = self
            .pending
            .drain(..)
            .map(|r| {
                serde_json::json!([
                    r.seq,
                    r.at,
                    r.actor,
                    r.action,
                    r.entity_kind,
                    r.entity_id,
                    r.detail,
                    hex::encode(r.prev_hash),
                    hex::encode(r.hash),
                ])
            })
            .collect();
        self.mark = 0;
        Some(serde_json::Value::Array(rows).to_string())
    }
}

tokio::task_local! {
    /// The audit state of the group writer's open transaction ([`GroupAudit`]).
    pub(super) static GROUP: RefCell<GroupAudit>;
}

/// Runs `f` on the group's audit state; a no-op outside the group writer.
pub(super) fn with_group<T>(f: impl FnOnce(&mut GroupAudit) -> T) -> Option<T> {
    GROUP.try_with(|g| f(&mut g.borrow_mut())).ok()
}

/// Starts a group transaction and reads the head in the same round trip to the driver's
/// thread, so the group's first append need not.
pub(super) async fn begin_group(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    let row: Option<(i64, String)> = sqlx::query_as(concat!(
        "BEGIN IMMEDIATE; SAVEPOINT grouped; ",
        "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
    ))
    .fetch_optional(&mut *conn)
    .await?;
    // A head that does not parse is left unread: the first append reads it again and fails
    // with the reason.
    if let Ok(head) = parse_head(row) {
        with_group(|g| g.base = Some(head));
    }
    Ok(())
}

async fn head(conn: &mut SqliteConnection) -> Result<ChainHead> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    parse_head(row)
}

fn parse_head(row: Option<(i64, String)>) -> Result<ChainHead> {
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
pub(super) fn record_from_row(
    row: &SqliteRow,
) -> Result<std::result::Result<AuditRecord, AuditBreak>> {
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

/// Audit records newest first, for the console's Nhật ký kiểm toán: keyset on seq, filtered by
/// time, actor prefix and action (only the predicates asked for, so the primary key or `audit_at`
/// serves them).
pub(super) async fn browse(pool: &SqlitePool, q: &AuditBrowse) -> Result<Vec<AuditRecord>> {
    if q.limit == 0 || q.limit > 10_000 {
        return Err(invalid(format!("limit: {} is outside 1-10000", q.limit)));
    }
    let rows = browse_query("", q)
        .build()
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| record_from_row(r)?.map_err(Error::from))
        .collect()
}

/// The statement of [`browse`], after `prefix` (the plan test puts `EXPLAIN QUERY PLAN` there).
fn browse_query(prefix: &str, q: &AuditBrowse) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut b = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
        "{prefix}SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit WHERE 1 = 1"
    ));
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
        b.push(" AND substr(actor, 1, ")
            .push_bind(i64::try_from(v.chars().count()).unwrap_or(i64::MAX))
            .push(") = ")
            .push_bind(v);
    }
    if let Some(v) = q.action.as_deref() {
        b.push(" AND action = ").push_bind(v);
    }
    b.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    b
}

/// Verifies the whole chain page by page, then checks that no records were cut off the end: the
/// table's AUTOINCREMENT high-water mark (`sqlite_sequence`) must equal the last seq.
///
/// All pages are read in one read transaction, so records appended meanwhile do not matter.
pub(super) async fn verify(pool: &SqlitePool) -> Result<AuditVerdict> {
    let mut conn = pool.begin().await.map_err(db_err)?;
    verify_on(&mut conn, |_| {}).await
}

/// [`verify`] on the caller's (read) transaction, showing each record, once it has verified, to
/// `seen` (the cross-check of `crosscheck.rs` takes in the chain this way, in the same pass).
pub(super) async fn verify_on(
    conn: &mut SqliteConnection,
    mut seen: impl FnMut(&AuditRecord),
) -> Result<AuditVerdict> {
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
            seen(&record);
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

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;

    /// Filtered by action, the audit page is an index range from its bound (`audit_action_seq`),
    /// not a walk of every newer record.
    #[tokio::test]
    async fn the_audit_page_by_action_reads_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        drop(SqliteStore::open(&url).await.unwrap());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let q = crate::store::AuditBrowse {
            before_seq: Some(1_000),
            action: Some("delivery.fail".into()),
            ..Default::default()
        };
        let rows: Vec<(i64, i64, i64, String)> = super::browse_query("EXPLAIN QUERY PLAN ", &q)
            .build_query_as()
            .fetch_all(&pool)
            .await
            .unwrap();
        let plan: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        assert!(
            plan.iter().any(|l| l.contains("audit_action_seq")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:?}");
    }
}
