//! Revocation evidence of received messages on PostgreSQL (see the SQLite store's
//! `revocation.rs`): written in the ingest transaction, read by the clerk and admin APIs.

use sqlx::PgConnection;

use super::{PgStore, col, db_err};
use crate::error::Result;
use crate::store::RevocationEvidence;

/// Columns of one evidence row, in the order [`insert`] binds them.
const COLUMNS: usize = 16;

/// Inserts the evidence rows of `message_id` (inside the caller's write), all in one statement:
/// it runs for every package received. (PostgreSQL takes no binds in a multi-statement string,
/// so unlike SQLite's there is no variant that rides with the caller's statements.)
pub(super) async fn insert(
    conn: &mut PgConnection,
    message_id: i64,
    rows: &[RevocationEvidence],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(rows.len());
    // Only placeholders are generated: the values are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
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
    q.execute(&mut *conn).await.map_err(db_err)?;
    Ok(())
}

/// The statement that inserts `rows` evidence rows ($1..$16 the first, and so on).
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO revocation_evidence (message_id, position, subject, serial, fingerprint, \
         policy, status, kind, source, der, this_update, next_update, produced_at, note, \
         flagged, checked_at) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(i * COLUMNS + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// The evidence rows of `message_id`, signer first.
pub(super) async fn list(store: &PgStore, message_id: i64) -> Result<Vec<RevocationEvidence>> {
    let rows = sqlx::query(
        "SELECT subject, serial, fingerprint, policy, status, kind, source, der, this_update, \
         next_update, produced_at, note, flagged, checked_at \
         FROM revocation_evidence WHERE message_id = $1 ORDER BY position",
    )
    .bind(message_id)
    .fetch_all(store.pool())
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

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_column_of_every_row() {
        let sql = super::insert_sql(2);
        assert!(sql.ends_with(
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16), \
             ($17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
        ));
    }
}
