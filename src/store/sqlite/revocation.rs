//! Revocation evidence of received messages: written in the ingest transaction, read by the
//! clerk and admin APIs.

use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool};
use sqlx::{Sqlite, SqliteConnection};

use super::{col, db_err};
use crate::error::Result;
use crate::store::RevocationEvidence;

/// Inserts the evidence rows of `message_id` (inside the caller's transaction), all in one
/// statement: it runs for every package received.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    message_id: i64,
    rows: &[RevocationEvidence],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::new();
    push_insert(&mut sql, rows.len());
    // Only placeholders are generated: the values are bound.
    bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)), message_id, rows)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Appends to `sql` the statement that inserts `rows` evidence rows (nothing for none), for a
/// caller that sends it with its own statements in one round trip; [`bind_rows`] binds it.
/// Only placeholders are generated.
pub(super) fn push_insert(sql: &mut String, rows: usize) {
    if rows == 0 {
        return;
    }
    if !sql.is_empty() {
        sql.push_str("; ");
    }
    sql.push_str(
        "INSERT INTO revocation_evidence (message_id, position, subject, serial, fingerprint, \
         policy, status, kind, source, der, this_update, next_update, produced_at, note, \
         flagged, checked_at) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
}

/// Binds the values of [`push_insert`]'s statement, in its order.
pub(super) fn bind_rows<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments>,
    message_id: i64,
    rows: &'q [RevocationEvidence],
) -> Query<'q, Sqlite, SqliteArguments> {
    for (position, e) in rows.iter().enumerate() {
        q = q
            .bind(message_id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(&e.subject)
            .bind(&e.serial)
            .bind(&e.fingerprint)
            .bind(&e.policy)
            .bind(&e.status)
            .bind(&e.kind)
            .bind(&e.source)
            .bind(&e.der)
            .bind(&e.this_update)
            .bind(&e.next_update)
            .bind(&e.produced_at)
            .bind(&e.note)
            .bind(e.flagged)
            .bind(e.checked_at);
    }
    q
}

/// The evidence rows of `message_id`, signer first.
pub(super) async fn list(pool: &SqlitePool, message_id: i64) -> Result<Vec<RevocationEvidence>> {
    let rows = sqlx::query(
        "SELECT subject, serial, fingerprint, policy, status, kind, source, der, this_update, \
         next_update, produced_at, note, flagged, checked_at \
         FROM revocation_evidence WHERE message_id = ? ORDER BY position",
    )
    .bind(message_id)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(RevocationEvidence {
                subject: col(r, "subject")?,
                serial: col(r, "serial")?,
                fingerprint: col(r, "fingerprint")?,
                policy: col(r, "policy")?,
                status: col(r, "status")?,
                kind: col(r, "kind")?,
                source: col(r, "source")?,
                der: col(r, "der")?,
                this_update: col(r, "this_update")?,
                next_update: col(r, "next_update")?,
                produced_at: col(r, "produced_at")?,
                note: col(r, "note")?,
                flagged: col(r, "flagged")?,
                checked_at: col(r, "checked_at")?,
            })
        })
        .collect()
}
