//! `audit verify` over the PostgreSQL store (see the SQLite store's `crosscheck.rs`): the chain,
//! then every row against it ([`crate::audit::crosscheck`]), all in one `REPEATABLE READ, READ
//! ONLY` transaction — one snapshot of rows and records even while every replica writes — with
//! every package's bytes hashed: a chunked package chunk by chunk, never whole in memory.

use aws_lc_rs::digest;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::{PgStore, audit, col, db_err, sha256_hex};
use crate::audit::AuditRecord;
use crate::audit::crosscheck::{
    CheckpointRow, CrossCheck, DeliveryRow, DraftFileRow, DraftRow, MailRow, MessageRow,
    RegistryRow, ReplyRow, Report, RowCheck, StatusRow, explain_mail, explain_message,
    explain_status,
};
use crate::error::{Code, Error, Result};
use crate::store::StoreVerdict;

/// Rows per page. Message pages carry packages below `CHUNK` (1 MiB) inline, so they are short.
const MESSAGE_PAGE: i64 = 64;
const ROW_PAGE: i64 = 2000;
/// Draft files per page: their BLOBs are whole files from a mail (up to tens of MiB each).
const FILE_PAGE: i64 = 4;

/// Rows whose digest differs, kept to be explained from their record once all rows are read.
struct Pending<R> {
    seq: i64,
    row: R,
}

pub(super) async fn verify(store: &PgStore) -> Result<StoreVerdict> {
    // One snapshot for the chain and every row (as `audit::verify` does for the chain alone):
    // writes committed meanwhile by any replica are neither half seen nor reported.
    let mut conn = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut check = CrossCheck::new();
    let chain = match audit::verify_on(&mut conn, |r| check.record(r)).await? {
        Ok(summary) => summary,
        Err(b) => return Ok(Err(b)),
    };
    let mut report = Report {
        chain,
        checked: Default::default(),
        package_bytes: 0,
        differences: Vec::new(),
        unlisted: 0,
    };
    let messages = messages(&mut conn, &mut check, &mut report).await?;
    let statuses = statuses(&mut conn, &mut check, &mut report).await?;
    deliveries(&mut conn, &mut check, &mut report).await?;
    registry(&mut conn, &mut check, &mut report).await?;
    let mails = mail(&mut conn, &mut check, &mut report).await?;
    let (checked, missing) = check.finish();
    report.checked = checked;
    for p in messages {
        for d in explain_message(&record(&mut conn, p.seq).await?, &p.row) {
            report.push(d);
        }
    }
    for p in statuses {
        for d in explain_status(&record(&mut conn, p.seq).await?, &p.row) {
            report.push(d);
        }
    }
    for p in mails {
        for d in explain_mail(&record(&mut conn, p.seq).await?, &p.row) {
            report.push(d);
        }
    }
    for d in missing {
        report.push(d);
    }
    Ok(Ok(report))
}

/// Where a row's check leaves it: nothing when it matches, its difference in the report, or
/// in `pending` to be explained from its record once all rows are read.
fn keep<R>(checked: RowCheck, row: R, report: &mut Report, pending: &mut Vec<Pending<R>>) {
    match checked {
        RowCheck::Matches => {}
        RowCheck::Differs(d) => report.push(d),
        RowCheck::Explain { seq } => pending.push(Pending { seq, row }),
    }
}

/// Keyset paging over a table by `id`: `sql` selects `… WHERE id > $1 ORDER BY id LIMIT $2`
/// (with an `id` column), and each [`IdPages::next`] is its following page, so that no read
/// holds more than one page of rows.
struct IdPages {
    sql: &'static str,
    size: i64,
    after: i64,
}

impl IdPages {
    fn new(sql: &'static str, size: i64) -> Self {
        IdPages {
            sql,
            size,
            after: 0,
        }
    }

    /// The next page, or `None` after the last row.
    async fn next(&mut self, conn: &mut PgConnection) -> Result<Option<Vec<PgRow>>> {
        let rows = sqlx::query(self.sql)
            .bind(self.after)
            .bind(self.size)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = col(last, "id")?;
        Ok(Some(rows))
    }
}

/// Record `seq` again (it verified a moment ago, in this transaction).
async fn record(conn: &mut PgConnection, seq: i64) -> Result<AuditRecord> {
    let row = sqlx::query(
        "SELECT seq, at, actor, action, entity_kind, entity_id, detail, prev_hash, hash
         FROM audit WHERE seq = $1",
    )
    .bind(seq)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    audit::record_from_row(&row)?.map_err(crate::Error::from)
}

async fn messages(
    conn: &mut PgConnection,
    check: &mut CrossCheck,
    report: &mut Report,
) -> Result<Vec<Pending<MessageRow>>> {
    let mut pending = Vec::new();
    // The inbox rows as text (`recipient`, or `recipient=<hex of its receipt>`), as SQLite's
    // query builds them; a chunked package's `bytes` is empty and its chunks are read below.
    let mut pages = IdPages::new(
        "SELECT id, direction, kind, sender, document_id, business_type, status_code,
                code_number, code_notation, code_year, subject, sha256, size, signer_subject,
                signer_fingerprint, header_json, peer, actor, created_at, receipt, chunked,
                bytes,
                ARRAY(SELECT CASE WHEN receipt IS NULL THEN recipient
                                  ELSE recipient || '=' || encode(receipt, 'hex') END
                      FROM inbox i WHERE i.message_id = m.id) AS inbox
         FROM messages m WHERE id > $1 ORDER BY id LIMIT $2",
        MESSAGE_PAGE,
    );
    while let Some(rows) = pages.next(&mut *conn).await? {
        for row in &rows {
            let bytes_sha256 = if col::<bool>(row, "chunked")? {
                let (hashed, read) = chunks_sha256(&mut *conn, col(row, "id")?).await?;
                report.package_bytes += read;
                hashed
            } else {
                let bytes: Vec<u8> = col(row, "bytes")?;
                report.package_bytes += bytes.len() as u64;
                Ok(sha256_hex(&bytes))
            };
            let m = message_row(row, bytes_sha256)?;
            keep(check.message(&m), m, report, &mut pending);
        }
    }
    Ok(pending)
}

/// The SHA-256 of a chunked package (its `package_chunks` rows in order of `n`), read one chunk
/// per query so that no more than one chunk is in memory; or why it cannot be read (a chunk
/// missing, none stored). With the bytes read.
async fn chunks_sha256(
    conn: &mut PgConnection,
    message_id: i64,
) -> Result<(std::result::Result<String, String>, u64)> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut read = 0u64;
    let mut expected: i32 = 0;
    loop {
        let chunk: Option<(i32, Vec<u8>)> = sqlx::query_as(
            "SELECT n, bytes FROM package_chunks WHERE message_id = $1 AND n >= $2
             ORDER BY n LIMIT 1",
        )
        .bind(message_id)
        .bind(expected)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        let Some((n, bytes)) = chunk else { break };
        if n != expected {
            return Ok((
                Err(format!("chunk {expected} of the package is missing")),
                read,
            ));
        }
        ctx.update(&bytes);
        read += bytes.len() as u64;
        expected = expected.saturating_add(1);
    }
    if expected == 0 {
        return Ok((Err("chunked, but no chunk is stored".into()), read));
    }
    Ok((Ok(hex::encode(ctx.finish())), read))
}

fn message_row(
    row: &PgRow,
    bytes_sha256: std::result::Result<String, String>,
) -> Result<MessageRow> {
    let receipt: Option<Vec<u8>> = col(row, "receipt")?;
    Ok(MessageRow {
        id: col(row, "id")?,
        direction: col(row, "direction")?,
        kind: col(row, "kind")?,
        sender: col(row, "sender")?,
        document_id: col(row, "document_id")?,
        business_type: col(row, "business_type")?,
        status_code: col(row, "status_code")?,
        code_number: col(row, "code_number")?,
        code_notation: col(row, "code_notation")?,
        code_year: col(row, "code_year")?,
        subject: col(row, "subject")?,
        sha256: col(row, "sha256")?,
        size: col(row, "size")?,
        signer_subject: col(row, "signer_subject")?,
        signer_fingerprint: col(row, "signer_fingerprint")?,
        header_json: col(row, "header_json")?,
        peer: col(row, "peer")?,
        actor: col(row, "actor")?,
        created_at: col(row, "created_at")?,
        receipt_sha256: receipt.as_deref().map(sha256_hex),
        bytes_sha256,
        inbox: inbox_rows(col::<Vec<String>>(row, "inbox")?)?,
    })
}

/// The inbox rows of a message, from the list the query builds: `recipient`, or
/// `recipient=<hex of its receipt>` for a row that keeps its own receipt (SQLite's migration
/// 0010), which becomes `recipient=<SHA-256 of the receipt>` as the audit record attests it.
fn inbox_rows(entries: Vec<String>) -> Result<Vec<String>> {
    let bad = |e: String| Error::store(Code::StoreUnavailable, format!("store: inbox: {e}"));
    entries
        .into_iter()
        .map(|e| match e.split_once('=') {
            None => Ok(e),
            Some((recipient, receipt)) => {
                let bytes = hex::decode(receipt).map_err(|e| bad(e.to_string()))?;
                Ok(format!("{recipient}={}", sha256_hex(&bytes)))
            }
        })
        .collect()
}

async fn statuses(
    conn: &mut PgConnection,
    check: &mut CrossCheck,
    report: &mut Report,
) -> Result<Vec<Pending<StatusRow>>> {
    let mut pending = Vec::new();
    let mut pages = IdPages::new(
        "SELECT id, document_sender, document_id, reporter, code, description, reported_at,
                recorded_at, direction, message_id
         FROM statuses WHERE id > $1 ORDER BY id LIMIT $2",
        ROW_PAGE,
    );
    while let Some(rows) = pages.next(&mut *conn).await? {
        for row in &rows {
            let s = StatusRow {
                id: col(row, "id")?,
                document_sender: col(row, "document_sender")?,
                document_id: col(row, "document_id")?,
                reporter: col(row, "reporter")?,
                code: col(row, "code")?,
                description: col(row, "description")?,
                reported_at: col(row, "reported_at")?,
                recorded_at: col(row, "recorded_at")?,
                direction: col(row, "direction")?,
                message_id: col(row, "message_id")?,
            };
            keep(check.status(&s), s, report, &mut pending);
        }
    }
    Ok(pending)
}

async fn deliveries(
    conn: &mut PgConnection,
    check: &mut CrossCheck,
    report: &mut Report,
) -> Result<()> {
    let mut pages = IdPages::new(
        "SELECT id, message_id, recipient, route, state, attempts, lease_owner, lease_until,
                current_attempt_id, next_attempt_at, last_error_code, last_error_message,
                delivered_at, receipt, retry_from, created_at, updated_at
         FROM deliveries WHERE id > $1 ORDER BY id LIMIT $2",
        ROW_PAGE,
    );
    while let Some(rows) = pages.next(&mut *conn).await? {
        for row in &rows {
            let receipt: Option<Vec<u8>> = col(row, "receipt")?;
            let d = DeliveryRow {
                id: col(row, "id")?,
                message_id: col(row, "message_id")?,
                recipient: col(row, "recipient")?,
                route: col(row, "route")?,
                state: col(row, "state")?,
                attempts: col(row, "attempts")?,
                lease_owner: col(row, "lease_owner")?,
                lease_until: col(row, "lease_until")?,
                current_attempt_id: col(row, "current_attempt_id")?,
                next_attempt_at: col(row, "next_attempt_at")?,
                last_error_code: col(row, "last_error_code")?,
                last_error_message: col(row, "last_error_message")?,
                delivered_at: col(row, "delivered_at")?,
                receipt_sha256: receipt.as_deref().map(sha256_hex),
                retry_from: col(row, "retry_from")?,
                created_at: col(row, "created_at")?,
                updated_at: col(row, "updated_at")?,
            };
            for diff in check.delivery(&d) {
                report.push(diff);
            }
        }
    }
    Ok(())
}

async fn registry(
    conn: &mut PgConnection,
    check: &mut CrossCheck,
    report: &mut Report,
) -> Result<()> {
    // A registry holds hundreds of entries, not millions: read whole.
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM agency_registry ORDER BY code")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    for code in codes {
        let Some(e) = super::registry::entry_on(&mut *conn, &code).await? else {
            continue;
        };
        let row = RegistryRow {
            rules: serde_json::to_value(&e.rules)
                .map_err(|e| Error::store(Code::StoreUnavailable, format!("store: rules: {e}")))?,
            code: e.code,
            name: e.name,
            added_by: e.added_by,
            added_at: e.added_at,
            updated_by: e.updated_by,
            updated_at: e.updated_at,
        };
        for d in check.registry(&row) {
            report.push(d);
        }
    }
    Ok(())
}

/// The mail bridge's rows (migration 0012): the mail log (paged), drafts, their files (paged,
/// each file hashed), checkpoints and reply rows (a few per node: read whole).
async fn mail(
    conn: &mut PgConnection,
    check: &mut CrossCheck,
    report: &mut Report,
) -> Result<Vec<Pending<MailRow>>> {
    let mut pending = Vec::new();
    let mut pages = IdPages::new(
        "SELECT id, mailbox, uidvalidity, uid, return_path, from_addr, subject, message_id,
                size, outcome, code, reason, message_ref, draft_ref, delivery_ref, replied,
                taken_at
         FROM mail_log WHERE id > $1 ORDER BY id LIMIT $2",
        ROW_PAGE,
    );
    while let Some(rows) = pages.next(&mut *conn).await? {
        for row in &rows {
            let m = MailRow {
                id: col(row, "id")?,
                mailbox: col(row, "mailbox")?,
                uidvalidity: col(row, "uidvalidity")?,
                uid: col(row, "uid")?,
                return_path: col(row, "return_path")?,
                from: col(row, "from_addr")?,
                subject: col(row, "subject")?,
                message_id: col(row, "message_id")?,
                size: col(row, "size")?,
                outcome: col(row, "outcome")?,
                code: col(row, "code")?,
                reason: col(row, "reason")?,
                message_ref: col(row, "message_ref")?,
                draft_ref: col(row, "draft_ref")?,
                delivery_ref: col(row, "delivery_ref")?,
                // BIGINT 0/1 here as in SQLite.
                replied: col::<i64>(row, "replied")? != 0,
                taken_at: col(row, "taken_at")?,
            };
            keep(check.mail(&m), m, report, &mut pending);
        }
    }

    let mut pages = IdPages::new(
        "SELECT id, agency, state, code_number, code_notation, summary, body, created_at,
                decided_at, decided_by, reason, message_id, mail_log_id
         FROM drafts WHERE id > $1 ORDER BY id LIMIT $2",
        ROW_PAGE,
    );
    while let Some(rows) = pages.next(&mut *conn).await? {
        for row in &rows {
            let d = DraftRow {
                id: col(row, "id")?,
                agency: col(row, "agency")?,
                state: col(row, "state")?,
                code_number: col(row, "code_number")?,
                code_notation: col(row, "code_notation")?,
                summary: col(row, "summary")?,
                body: col(row, "body")?,
                created_at: col(row, "created_at")?,
                decided_at: col(row, "decided_at")?,
                decided_by: col(row, "decided_by")?,
                reason: col(row, "reason")?,
                message_id: col(row, "message_id")?,
                mail_log_id: col(row, "mail_log_id")?,
            };
            for diff in check.draft(&d) {
                report.push(diff);
            }
        }
    }

    let (mut after_draft, mut after_index) = (0i64, -1i64);
    loop {
        let rows = sqlx::query(
            "SELECT draft_id, idx, name, content_type, size, sha256, bytes FROM draft_files
             WHERE (draft_id, idx) > ($1, $2) ORDER BY draft_id, idx LIMIT $3",
        )
        .bind(after_draft)
        .bind(after_index)
        .bind(FILE_PAGE)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        let Some(last) = rows.last() else { break };
        (after_draft, after_index) = (col(last, "draft_id")?, col(last, "idx")?);
        for row in &rows {
            let bytes: Vec<u8> = col(row, "bytes")?;
            let f = DraftFileRow {
                draft_id: col(row, "draft_id")?,
                index: col(row, "idx")?,
                name: col(row, "name")?,
                content_type: col(row, "content_type")?,
                size: col(row, "size")?,
                sha256: col(row, "sha256")?,
                bytes_sha256: sha256_hex(&bytes),
            };
            for diff in check.draft_file(&f) {
                report.push(diff);
            }
        }
    }

    let checkpoints: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT mailbox, uidvalidity, last_uid, updated_at FROM mail_checkpoints ORDER BY mailbox",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    for (mailbox, uidvalidity, last_uid, updated_at) in checkpoints {
        let row = CheckpointRow {
            mailbox,
            uidvalidity,
            last_uid,
            updated_at,
        };
        for diff in check.checkpoint(&row) {
            report.push(diff);
        }
    }

    let replies: Vec<(String, i64)> =
        sqlx::query_as("SELECT address, last_reply_at FROM mail_replies ORDER BY address")
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    for (address, last_reply_at) in replies {
        for diff in check.reply(&ReplyRow {
            address,
            last_reply_at,
        }) {
            report.push(diff);
        }
    }
    Ok(pending)
}
