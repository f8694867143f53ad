//! Documents: submitting (with deliveries and idempotency), receiving (with deduplication and the
//! inbox), and the reads over them. The port of the SQLite store's `messages.rs`: the same
//! checks in the same order, the same codes and words, the same audit records.
//!
//! What is PostgreSQL's own:
//!
//! - Writes run in this replica's group writer (`group.rs`), whose transaction holds the chain
//!   head's lock: the writes of every replica run one group at a time, so the checks made in a
//!   write (an idempotency key, a follow-up, the number, a duplicate) see every write committed
//!   before — as SQLite's one writer does. The unique indexes (`messages_in_document`,
//!   `messages_out_number`, `idempotency_keys`' key) back them: `ON CONFLICT DO NOTHING` turns a
//!   conflict into "nothing inserted", and the holder is then looked up.
//! - A package of [`CHUNK`](super::CHUNK) bytes or more is stored as `package_chunks` rows
//!   (`packages.rs`), inserted right after its message row, in the same write.

use serde_json::{Value as Json, json};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::{
    PgStore, audit, check_page, col, col_int, col_opt_int, db_err, deliveries, invalid, not_found,
    numbering, packages, require, sha256_hex,
};
use crate::audit::AuditEntry;
use crate::edxml::document_id::normalize_code_number;
use crate::error::{Code, Error, Result};
use crate::store::{
    ChannelTrust, Direction, DocumentMeta, InboxFilter, InboxItem, IngestOutcome, Kind,
    MessageInfo, NewDelivery, NewIncoming, NewOutgoing, Numbering, OutgoingFilter, OutgoingItem,
    Pending, Receipt, ReceptionCounts, RequestFingerprint, SignedPackage, Submitted,
    SubmittedDelivery, Turn, UnverifiedSignature,
};

/// The columns [`message_from_row`] reads, from `messages m`.
macro_rules! message_columns {
    () => {
        "m.id, m.direction, m.kind, m.sender, m.document_id, m.business_type, m.status_code,
         m.code_number, m.code_notation, m.code_year, m.subject, m.sha256, m.size,
         m.signer_subject, m.signer_fingerprint, m.header_json, m.peer, m.actor, m.created_at,
         m.channel, m.channel_signature"
    };
}

/// Longest accepted idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;

pub(super) fn message_from_row(row: &PgRow) -> Result<MessageInfo> {
    Ok(MessageInfo {
        id: col(row, "id")?,
        direction: Direction::from_stored(&col::<String>(row, "direction")?)?,
        kind: Kind::from_stored(&col::<String>(row, "kind")?)?,
        sender: col(row, "sender")?,
        document_id: col(row, "document_id")?,
        business_type: col_opt_int(row, "business_type")?,
        status_code: col_opt_int(row, "status_code")?,
        code_number: col(row, "code_number")?,
        code_notation: col(row, "code_notation")?,
        code_year: col_opt_int(row, "code_year")?,
        subject: col(row, "subject")?,
        sha256: col(row, "sha256")?,
        size: col_int(row, "size")?,
        signer_subject: col(row, "signer_subject")?,
        signer_fingerprint: col(row, "signer_fingerprint")?,
        channel: match (
            col::<Option<String>>(row, "channel")?,
            col::<Option<String>>(row, "channel_signature")?,
        ) {
            (Some(channel), Some(sig)) => Some(ChannelTrust {
                channel,
                xml_signature: UnverifiedSignature::from_stored(&sig)?,
            }),
            _ => None,
        },
        header_json: col(row, "header_json")?,
        peer: col(row, "peer")?,
        actor: col(row, "actor")?,
        created_at: col(row, "created_at")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Validation shared by documents and status packages
// ---------------------------------------------------------------------------------------------

pub(super) fn check_package(p: &SignedPackage) -> Result<()> {
    if p.bytes.is_empty() {
        return Err(invalid("package: no bytes"));
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(&p.header_json).is_err() {
        return Err(invalid("package.header_json: not JSON"));
    }
    Ok(())
}

fn check_document(d: &DocumentMeta) -> Result<()> {
    require("document.sender", &d.sender)?;
    require("document.document_id", &d.document_id)?;
    if d.business_type > 3 {
        return Err(invalid(format!(
            "document.business_type: {} is not 0-3",
            d.business_type
        )));
    }
    Ok(())
}

/// At least one delivery, each with a recipient and a route, no recipient twice.
pub(super) fn check_deliveries(deliveries: &[NewDelivery], what: &str) -> Result<()> {
    if deliveries.is_empty() {
        return Err(invalid(format!("{what}: no recipients")));
    }
    check_recipients(deliveries.iter().map(|d| d.recipient.as_str()), what)?;
    for (i, d) in deliveries.iter().enumerate() {
        require(&format!("{what}[{i}].route"), &d.route)?;
    }
    Ok(())
}

fn check_recipients<'a>(recipients: impl Iterator<Item = &'a str>, what: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in recipients.enumerate() {
        require(&format!("{what}[{i}]"), r)?;
        if !seen.insert(r) {
            return Err(invalid(format!("{what}[{i}]: {r} is listed twice")));
        }
    }
    Ok(())
}

/// The insert of a package row ($1–$24); `ON CONFLICT DO NOTHING` covers the deduplication and
/// numbering indexes.
macro_rules! insert_message_sql {
    () => {
        "INSERT INTO messages (direction, kind, sender, document_id, business_type, status_code,
             code_number, code_notation, code_year, subject, sha256, size, signer_subject,
             signer_fingerprint, header_json, peer, actor, created_at, bytes, receipt, chunked,
             signed_content, channel, channel_signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21, $22, $23, $24)
         ON CONFLICT DO NOTHING
         RETURNING id"
    };
}

/// Inserts a package row, and the chunks of a large package after it (`packages.rs`);
/// `RETURNING id`. For an incoming document a conflict on the deduplication key inserts nothing
/// and returns `None`; so does an outgoing document whose số is taken.
///
/// An outgoing numbered document (business type 0 or 3 with a numeric số) first moves its
/// agency's yearly sequence up to its number, in the same statement (a data-modifying `WITH`,
/// which runs whatever the insert does), so the sequence never offers a number a clerk typed
/// (`numbering.rs`); if the row then conflicts the caller's savepoint undoes that too. Not when
/// `bump_sequence` is false: a number the same write took with `numbering::take_next` is the
/// sequence's last already, and moving it again would only write the row a second time.
#[allow(clippy::too_many_arguments)] // the columns of one row
pub(super) async fn insert_message(
    conn: &mut PgConnection,
    direction: Direction,
    kind: Kind,
    document: Option<&DocumentMeta>,
    status: Option<(&str, &str, u8)>,
    package: &SignedPackage,
    sha256: &str,
    peer: Option<&str>,
    receipt: Option<&[u8]>,
    actor: &str,
    now: i64,
    bump_sequence: bool,
) -> Result<Option<i64>> {
    // (sender, document_id) of a document, or (reporter, document_id) of a status package.
    let (sender, document_id) = match (document, status) {
        (Some(d), _) => (d.sender.as_str(), d.document_id.as_str()),
        (None, Some((reporter, document_id, _))) => (reporter, document_id),
        (None, None) => return Err(invalid("a package is a document or a status")),
    };
    let bump = match (direction, kind, document) {
        (Direction::Out, Kind::Document, Some(d))
            if bump_sequence && matches!(d.business_type, 0 | 3) =>
        {
            d.code_number
                .parse::<u32>()
                .ok()
                .map(|n| (d.sender.as_str(), i64::from(d.code_year), i64::from(n)))
        }
        _ => None,
    };
    let chunked = packages::is_chunked(package.bytes.len());
    let query = match bump {
        Some(_) => sqlx::query_scalar(concat!(
            "WITH bump AS (
                 INSERT INTO number_sequences AS s (agency, year, last_number)
                 VALUES ($25, $26, $27)
                 ON CONFLICT (agency, year)
                 DO UPDATE SET last_number = GREATEST(s.last_number, EXCLUDED.last_number)) ",
            insert_message_sql!()
        )),
        None => sqlx::query_scalar(insert_message_sql!()),
    };
    let query = query
        .bind(direction.as_str())
        .bind(kind.as_str())
        .bind(sender)
        .bind(document_id)
        .bind(document.map(|d| i64::from(d.business_type)))
        .bind(status.map(|(_, _, code)| i64::from(code)))
        .bind(document.map(|d| d.code_number.as_str()))
        .bind(document.map(|d| d.code_notation.as_str()))
        .bind(document.map(|d| i64::from(d.code_year)))
        .bind(document.map(|d| d.subject.as_str()))
        .bind(sha256)
        .bind(i64::try_from(package.bytes.len()).unwrap_or(i64::MAX))
        .bind(package.signer_subject.as_deref())
        .bind(package.signer_fingerprint.as_deref())
        .bind(&package.header_json)
        .bind(peer)
        .bind(actor)
        .bind(now)
        // A chunked package is bound chunk by chunk below, never whole.
        .bind(if chunked { &[][..] } else { &package.bytes[..] })
        .bind(receipt)
        .bind(chunked)
        .bind(package.signed_content.as_deref())
        .bind(package.channel.as_ref().map(|c| c.channel.as_str()))
        .bind(package.channel.as_ref().map(|c| c.xml_signature.as_str()));
    let query = match bump {
        Some((agency, year, number)) => query.bind(agency).bind(year).bind(number),
        None => query,
    };
    let id: Option<i64> = query.fetch_optional(&mut *conn).await.map_err(db_err)?;
    if let (Some(id), true) = (id, chunked) {
        packages::insert_chunks(&mut *conn, id, &package.bytes).await?;
    }
    Ok(id)
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// The submission an earlier request with `key` created, if any; `IDEMPOTENCY_KEY_REUSED` when
/// `request` is given and the key was used for another request (a key stored without a
/// fingerprint, as by SQLite before its migration 0011 and copied here, is not compared).
pub(super) async fn find_submission(
    conn: &mut PgConnection,
    agency: &str,
    key: &str,
    request: Option<&RequestFingerprint>,
) -> Result<Option<Submitted>> {
    let found: Option<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT k.message_id, m.document_id, k.request_sha256, k.request FROM idempotency_keys k
         JOIN messages m ON m.id = k.message_id WHERE k.agency = $1 AND k.key = $2",
    )
    .bind(agency)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some((message_id, document_id, stored_sha256, stored_parts)) = found else {
        return Ok(None);
    };
    if let Some(request) = request {
        let stored = stored_sha256.map(|sha256| RequestFingerprint {
            sha256,
            parts: stored_parts.unwrap_or_default(),
        });
        request.check_reuse(
            key,
            &format!("document {document_id} (message {message_id})"),
            stored.as_ref(),
        )?;
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT recipient, id FROM deliveries WHERE message_id = $1 ORDER BY id")
            .bind(message_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    Ok(Some(Submitted {
        message_id,
        document_id,
        deliveries: rows
            .into_iter()
            .map(|(recipient, delivery_id)| SubmittedDelivery {
                recipient,
                delivery_id,
            })
            .collect(),
        existing: true,
        warnings: Vec::new(),
    }))
}

pub(super) async fn queue_outgoing(
    store: &PgStore,
    mut new: NewOutgoing,
    now: i64,
    turn: Turn,
) -> Result<Pending<Submitted>> {
    check_document(&new.document)?;
    require("document.code_number", &new.document.code_number)?;
    require("document.code_notation", &new.document.code_notation)?;
    numbering::check_year(new.document.code_year)?;
    check_package(&new.package)?;
    check_deliveries(&new.deliveries, "deliveries")?;
    require("actor", &new.actor)?;
    if let Some(key) = &new.idempotency_key
        && (key.trim().is_empty() || key.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(invalid(format!(
            "idempotency_key: must be 1-{MAX_IDEMPOTENCY_KEY} bytes"
        )));
    }
    let next = match new.numbering {
        Numbering::Given => None,
        Numbering::Next => Some(
            new.document
                .code_number
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|_| matches!(new.document.business_type, 0 | 3))
                .ok_or_else(|| {
                    invalid("document.code_number: numbering `next` needs a numbered new document")
                })?,
        ),
    };
    new.document.code_number = normalize_code_number(&new.document.code_number);
    new.document.code_notation = new.document.code_notation.trim().to_owned();
    let sha256 = sha256_hex(&new.package.bytes);
    // The wait is for the write numbered before this one to be queued.
    turn.await;

    let queued = store
        .write_queued(move |tx| Box::pin(async move { submit(tx, new, next, sha256, now).await }))
        .await?;
    Ok(Box::pin(queued))
}

/// The write of [`queue_outgoing`], in the group's transaction.
async fn submit(
    tx: &mut PgConnection,
    new: NewOutgoing,
    next: Option<u32>,
    sha256: String,
    now: i64,
) -> Result<Submitted> {
    let doc = &new.document;
    if let Some(key) = &new.idempotency_key
        && let Some(existing) =
            find_submission(&mut *tx, &doc.sender, key, new.request.as_ref()).await?
    {
        // Nothing written; the savepoint is released empty. (A key reused for another request
        // is refused above, by the same check the node made before numbering and signing.)
        return Ok(existing);
    }
    // A revocation or update: at most one of each, and no update once revoked
    // (edxml::processing::check_follow_up), checked in this write so that two concurrent
    // requests — to any replica — cannot both pass.
    if matches!(doc.business_type, 1 | 2) {
        let sent: Vec<i64> = sqlx::query_scalar(
            "SELECT business_type FROM messages
             WHERE direction = 'out' AND kind = 'document' AND sender = $1 AND document_id = $2",
        )
        .bind(&doc.sender)
        .bind(&doc.document_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let sent: Vec<u8> = sent
            .into_iter()
            .filter_map(|t| u8::try_from(t).ok())
            .collect();
        crate::edxml::processing::check_follow_up(&sent, doc.business_type).map_err(|why| {
            Error::store(
                Code::FollowUpExists,
                format!("document {} of {}: {why}", doc.document_id, doc.sender),
            )
        })?;
    }
    // A document approved from a draft: the draft must be the sending agency's and still
    // waiting, checked before the number is taken (a refusal takes none).
    if let Some(draft) = new.from_draft {
        super::mail::check_approvable(&mut *tx, &doc.sender, draft).await?;
    }
    // The number is taken here, in the write that stores its document: a refusal or a crash
    // before the commit leaves the sequence as it was.
    if let Some(number) = next {
        numbering::take_next(&mut *tx, &doc.sender, doc.code_year, number).await?;
    }
    // The number's uniqueness is the unique index `messages_out_number`: the insert does
    // nothing when it is taken, and only then is the holder looked up for the message.
    let inserted = insert_message(
        &mut *tx,
        Direction::Out,
        Kind::Document,
        Some(doc),
        None,
        &new.package,
        &sha256,
        None,
        None,
        &new.actor,
        now,
        next.is_none(),
    )
    .await?;
    let Some(message_id) = inserted else {
        let holder: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM messages
             WHERE direction = 'out' AND kind = 'document' AND business_type IN (0, 3)
               AND sender = $1 AND code_year = $2 AND code_number = $3 AND code_notation = $4",
        )
        .bind(&doc.sender)
        .bind(i64::from(doc.code_year))
        .bind(&doc.code_number)
        .bind(&doc.code_notation)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let by = holder.map_or_else(String::new, |id| format!(" (message {id})"));
        return Err(Error::store(
            Code::NumberTaken,
            format!(
                "{}/{} of {} is already used by {}{by}",
                doc.code_number, doc.code_notation, doc.code_year, doc.sender
            ),
        ));
    };
    let created = deliveries::insert_deliveries(&mut *tx, message_id, &new.deliveries, now).await?;
    if let Some(key) = &new.idempotency_key {
        sqlx::query(
            "INSERT INTO idempotency_keys (agency, key, message_id, created_at, request_sha256,
             request) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&doc.sender)
        .bind(key)
        .bind(message_id)
        .bind(now)
        .bind(new.request.as_ref().map(|r| &r.sha256))
        .bind(new.request.as_ref().map(|r| &r.parts))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    let detail = json!({
        "sender": doc.sender,
        "document_id": doc.document_id,
        "business_type": doc.business_type,
        "code": format!("{}/{}", doc.code_number, doc.code_notation),
        "year": doc.code_year,
        "sha256": sha256,
        "size": new.package.bytes.len(),
        "idempotency_key": new.idempotency_key,
        "numbering": new.numbering,
        // What `lienthong audit verify` cross-checks the row against (audit/crosscheck.rs).
        "subject_sha256": sha256_hex(doc.subject.as_bytes()),
        "signer": new.package.signer_subject,
        "signer_fingerprint": new.package.signer_fingerprint,
        "header_sha256": sha256_hex(new.package.header_json.as_bytes()),
        "deliveries": created.iter().zip(&new.deliveries).map(|(c, d)| json!({
            "id": c.delivery_id, "recipient": c.recipient, "route": d.route,
        })).collect::<Vec<_>>(),
    });
    let mut detail = detail;
    if let Some(draft) = new.from_draft {
        detail["from_draft"] = json!(draft);
    }
    audit::append(
        AuditEntry::new(
            &new.actor,
            "document.submit",
            "message",
            message_id,
            &detail,
        ),
        now,
    )?;
    // The draft becomes this document in the same write (its own record).
    if let Some(draft) = new.from_draft {
        super::mail::approve(&mut *tx, &doc.sender, draft, message_id, &new.actor, now).await?;
    }
    Ok(Submitted {
        message_id,
        document_id: doc.document_id.clone(),
        deliveries: created,
        existing: false,
        warnings: Vec::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------------------

pub(super) async fn ingest_incoming(
    store: &PgStore,
    new: NewIncoming,
    now: i64,
) -> Result<IngestOutcome> {
    check_document(&new.document)?;
    check_package(&new.package)?;
    if new.local_recipients.is_empty() {
        return Err(invalid("local_recipients: none"));
    }
    check_recipients(
        new.local_recipients.iter().map(String::as_str),
        "local_recipients",
    )?;
    if new.receipts.len() != new.local_recipients.len() {
        return Err(invalid(format!(
            "receipts: {} for {} local recipients (one each)",
            new.receipts.len(),
            new.local_recipients.len()
        )));
    }
    if let Some(i) = new.receipts.iter().position(Vec::is_empty) {
        return Err(invalid(format!("receipts[{i}]: no bytes")));
    }
    require("actor", &new.actor)?;
    let sha256 = sha256_hex(&new.package.bytes);
    store
        .write(move |tx| Box::pin(async move { receive(tx, new, sha256, now).await }))
        .await
}

/// The write of [`ingest_incoming`], in the group's transaction.
///
/// The same package pushed to two replicas at once: their writes run one after the other (the
/// chain head's lock), so the second one's insert meets the first one's committed row in
/// `messages_in_document` and inserts nothing, and it answers with the first one's receipts.
async fn receive(
    tx: &mut PgConnection,
    new: NewIncoming,
    sha256: String,
    now: i64,
) -> Result<IngestOutcome> {
    let doc = &new.document;
    let inserted = insert_message(
        &mut *tx,
        Direction::In,
        Kind::Document,
        Some(doc),
        None,
        &new.package,
        &sha256,
        new.peer.as_deref(),
        // The first recipient's, as SQLite's before its migration 0010 (what older audit
        // records attest).
        new.receipts.first().map(Vec::as_slice),
        &new.actor,
        now,
        false,
    )
    .await?;
    let Some(message_id) = inserted else {
        // Already stored: a repeat (the same signed content, whatever its bytes) or a conflict
        // (other signed content under the same id). Nothing is written either way.
        let row: Option<StoredDocument> = sqlx::query_as(
            "SELECT id, sha256, signed_content, receipt FROM messages
             WHERE direction = 'in' AND kind = 'document'
               AND sender = $1 AND document_id = $2 AND business_type = $3",
        )
        .bind(&doc.sender)
        .bind(&doc.document_id)
        .bind(i64::from(doc.business_type))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some((id, stored_sha, stored_signed, receipt)) = row else {
            return Err(Error::store(
                Code::StoreUnavailable,
                "store: the document conflicted on insert but cannot be found",
            ));
        };
        let same = same_package(
            (&stored_sha, stored_signed.as_deref()),
            (&sha256, new.package.signed_content.as_deref()),
        )
        .or_else(|differs| {
            // A row without an identity kept the bytes as received: compare those too.
            match (&stored_signed, &new.received_sha256) {
                (None, Some(received)) if *received == stored_sha => Ok(()),
                _ => Err(differs),
            }
        });
        if let Err((what, stored, this)) = same {
            return Err(Error::store(
                Code::DuplicateConflict,
                format!(
                    "{} from {} was already received (message {id}) with different {what} \
                     (stored {stored}, this one {this})",
                    doc.document_id, doc.sender
                ),
            ));
        }
        let receipts = stored_receipts(&mut *tx, id, receipt).await?;
        return Ok(IngestOutcome::Duplicate {
            message_id: id,
            receipts,
        });
    };
    // The inbox rows in one statement, in the order of the recipients (their ids keep it).
    let sql = inbox_insert_sql(new.local_recipients.len());
    // Only placeholders are generated: the values are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(message_id)
        .bind(now);
    for (recipient, receipt) in new.local_recipients.iter().zip(&new.receipts) {
        q = q.bind(recipient).bind(&receipt[..]);
    }
    q.execute(&mut *tx).await.map_err(db_err)?;
    super::revocation::insert(&mut *tx, message_id, &new.revocation).await?;
    let detail = json!({
        "sender": doc.sender,
        "document_id": doc.document_id,
        "business_type": doc.business_type,
        "code": format!("{}/{}", doc.code_number, doc.code_notation),
        "sha256": sha256,
        "signed_content": new.package.signed_content,
        "size": new.package.bytes.len(),
        "signer": new.package.signer_subject,
        "peer": new.peer,
        "recipients": new.local_recipients,
        // What `lienthong audit verify` cross-checks the row against (audit/crosscheck.rs).
        "year": doc.code_year,
        "subject_sha256": sha256_hex(doc.subject.as_bytes()),
        "signer_fingerprint": new.package.signer_fingerprint,
        "header_sha256": sha256_hex(new.package.header_json.as_bytes()),
        "receipt_sha256": new.receipts.first().map(|r| sha256_hex(r)),
        // Each local recipient's own 01, by recipient.
        "receipts": new
            .local_recipients
            .iter()
            .zip(&new.receipts)
            .map(|(r, b)| (r.clone(), Json::String(sha256_hex(b))))
            .collect::<serde_json::Map<String, Json>>(),
    });
    let detail = super::with_channel(detail, new.package.channel.as_ref());
    audit::append(
        AuditEntry::new(
            &new.actor,
            "document.receive",
            "message",
            message_id,
            &detail,
        ),
        now,
    )?;
    Ok(IngestOutcome::Inserted { message_id })
}

/// The insert of `rows` inbox rows: `$1` the message, `$2` the time, then recipient and receipt
/// of each row. Only placeholders are generated.
fn inbox_insert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO inbox (message_id, recipient, created_at, receipt) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        let b = 3 + 2 * i;
        sql.push_str(&format!("($1, ${b}, $2, ${})", b + 1));
    }
    sql
}

/// The receipts a received document was answered with, by inbox row: each recipient's own; a
/// row without one (copied from a SQLite store of before its migration 0010) has none, and its
/// document's one receipt (`messages.receipt`, signed by the first recipient) stands for the
/// first row.
async fn stored_receipts(
    conn: &mut PgConnection,
    message_id: i64,
    message_receipt: Option<Vec<u8>>,
) -> Result<Vec<Receipt>> {
    let rows: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT recipient, receipt FROM inbox WHERE message_id = $1 ORDER BY id")
            .bind(message_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    let mut out: Vec<Receipt> = Vec::with_capacity(rows.len());
    let mut message_receipt = message_receipt;
    for (i, (recipient, receipt)) in rows.into_iter().enumerate() {
        let bytes = match receipt {
            Some(b) => Some(b),
            None if i == 0 => message_receipt.take(),
            None => None,
        };
        if let Some(bytes) = bytes.filter(|b| !b.is_empty()) {
            out.push(Receipt { recipient, bytes });
        }
    }
    Ok(out)
}

/// The stored row a received document conflicted with: id, SHA-256, signed content, receipt.
type StoredDocument = (i64, String, Option<String>, Option<Vec<u8>>);

/// Whether a received document is the one stored under its id: the same signed content when
/// both rows know it (bytes the signature does not cover may differ), else the same bytes.
/// `Err` names what differs and the two values.
fn same_package<'a>(
    stored: (&'a str, Option<&'a str>),
    this: (&'a str, Option<&'a str>),
) -> std::result::Result<(), (&'static str, &'a str, &'a str)> {
    match (stored, this) {
        ((_, Some(a)), (_, Some(b))) if a == b => Ok(()),
        ((_, Some(a)), (_, Some(b))) => Err(("signed content (SignedInfo SHA-256)", a, b)),
        ((a, _), (b, _)) if a == b => Ok(()),
        ((a, _), (b, _)) => Err(("content (SHA-256)", a, b)),
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

pub(super) async fn message(store: &PgStore, id: i64) -> Result<MessageInfo> {
    let row = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages m WHERE m.id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("no message {id} on this node")))?;
    message_from_row(&row)
}

pub(super) async fn find_documents(
    store: &PgStore,
    direction: Direction,
    sender: &str,
    document_id: &str,
) -> Result<Vec<MessageInfo>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages m
         WHERE m.direction = $1 AND m.kind = 'document' AND m.sender = $2 AND m.document_id = $3
         ORDER BY m.id"
    ))
    .bind(direction.as_str())
    .bind(sender)
    .bind(document_id)
    .fetch_all(store.pool())
    .await
    .map_err(db_err)?;
    rows.iter().map(message_from_row).collect()
}

fn inbox_from_row(row: &PgRow) -> Result<InboxItem> {
    Ok(InboxItem {
        inbox_id: col(row, "inbox_id")?,
        recipient: col(row, "recipient")?,
        message: message_from_row(row)?,
        received_at: col(row, "received_at")?,
        current_status: col_opt_int(row, "current_status")?,
        current_status_at: col(row, "current_status_at")?,
        revoked: col::<i64>(row, "revoked")? != 0,
    })
}

/// The received documents the agency has not received (tiếp nhận) yet, on `inbox i`: the
/// first two terms are `inbox_awaiting`'s condition; the third settles the rows whose latest
/// status is a take-back answer (07–16), whose processing code is further back in the history.
macro_rules! awaiting_inbox {
    () => {
        "i.revoked = 0
         AND (i.current_status IS NULL OR i.current_status NOT BETWEEN 2 AND 6)
         AND (i.current_status IS NULL OR i.current_status = 1 OR NOT EXISTS (
             SELECT 1 FROM messages am JOIN statuses s
               ON s.document_sender = am.sender AND s.document_id = am.document_id
             WHERE am.id = i.message_id AND s.reporter = i.recipient AND s.code BETWEEN 2 AND 6))"
    };
}

/// One page of an agency's inbox, newest first. The page bound is `id < coalesce($6, max)`
/// so the planner walks `inbox_recipient` (or `inbox_awaiting`) from it.
macro_rules! list_inbox {
    ($awaiting:expr) => {
        concat!(
            "SELECT ",
            message_columns!(),
            ", i.id AS inbox_id, i.recipient, i.current_status, i.current_status_at, i.revoked,
               i.created_at AS received_at
             FROM inbox i JOIN messages m ON m.id = i.message_id
             WHERE i.recipient = $1
               AND ($2::BIGINT IS NULL OR ($2 = 0 AND i.current_status IS NULL) OR i.current_status = $2)
               AND ($3::BIGINT IS NULL OR i.revoked = $3)
               AND ($4::BIGINT IS NULL OR i.created_at >= $4)
               AND ($5::BIGINT IS NULL OR i.created_at < $5)
               AND i.id < coalesce($6::BIGINT, 9223372036854775807)",
            $awaiting,
            " ORDER BY i.id DESC LIMIT $7"
        )
    };
}

const LIST_INBOX: &str = list_inbox!("");
const LIST_INBOX_AWAITING: &str = list_inbox!(concat!(" AND ", awaiting_inbox!()));

pub(super) async fn list_inbox(
    store: &PgStore,
    agency: &str,
    f: &InboxFilter,
) -> Result<Vec<InboxItem>> {
    check_page(&f.page)?;
    let sql = if f.awaiting {
        LIST_INBOX_AWAITING
    } else {
        LIST_INBOX
    };
    let rows = sqlx::query(sql)
        .bind(agency)
        .bind(f.status.map(i64::from))
        .bind(f.revoked.map(i64::from))
        .bind(f.since)
        .bind(f.until)
        .bind(f.page.before)
        .bind(i64::from(f.page.limit))
        .fetch_all(store.pool())
        .await
        .map_err(db_err)?;
    rows.iter().map(inbox_from_row).collect()
}

/// Chờ tiếp nhận and Chậm tiếp nhận (received side) of one agency, or (`$1` NULL) of all.
const COUNT_AWAITING: &str = concat!(
    "SELECT count(*), count(*) FILTER (WHERE i.created_at < $2) FROM inbox i
     WHERE ($1::TEXT IS NULL OR i.recipient = $1) AND ",
    awaiting_inbox!()
);

/// Sent documents delivered before `$2` that a recipient has not taken in: reads
/// `deliveries_awaiting` (the late ones only).
const COUNT_LATE_OUT: &str = "SELECT count(DISTINCT d.message_id)
     FROM deliveries d JOIN messages m ON m.id = d.message_id
     WHERE d.state = 'delivered' AND d.awaiting = 1 AND d.delivered_at < $2
       AND m.direction = 'out' AND m.kind = 'document' AND ($1::TEXT IS NULL OR m.sender = $1)";

pub(super) async fn reception_counts(
    store: &PgStore,
    agency: Option<&str>,
    late_before: i64,
) -> Result<ReceptionCounts> {
    let (awaiting, late_incoming): (i64, i64) = sqlx::query_as(COUNT_AWAITING)
        .bind(agency)
        .bind(late_before)
        .fetch_one(store.pool())
        .await
        .map_err(db_err)?;
    let late_outgoing: i64 = sqlx::query_scalar(COUNT_LATE_OUT)
        .bind(agency)
        .bind(late_before)
        .fetch_one(store.pool())
        .await
        .map_err(db_err)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(ReceptionCounts {
        awaiting: n(awaiting),
        late_incoming: n(late_incoming),
        late_outgoing: n(late_outgoing),
    })
}

pub(super) async fn inbox_item(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<InboxItem> {
    let row = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        ", i.id AS inbox_id, i.recipient, i.current_status, i.current_status_at, i.revoked,
           i.created_at AS received_at
         FROM inbox i JOIN messages m ON m.id = i.message_id
         WHERE i.recipient = $1 AND i.message_id = $2"
    ))
    .bind(agency)
    .bind(message_id)
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("no document {message_id} in the inbox of {agency}")))?;
    inbox_from_row(&row)
}

/// One page of an agency's sent documents, newest first. The page bound is written
/// `id < coalesce($4, max)`, not `($4 IS NULL OR id < $4)`, so the planner can walk
/// `messages_sender` from the bound instead of reading and sorting the agency's whole history.
macro_rules! list_outgoing {
    ($late:expr) => {
        concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages m
             WHERE m.direction = 'out' AND m.kind = 'document' AND m.sender = $1
               AND ($2::BIGINT IS NULL OR m.created_at >= $2)
               AND ($3::BIGINT IS NULL OR m.created_at < $3)
               AND m.id < coalesce($4::BIGINT, 9223372036854775807)",
            $late,
            " ORDER BY m.id DESC LIMIT $5"
        )
    };
}

const LIST_OUTGOING: &str = list_outgoing!("");
/// Chậm tiếp nhận: the documents among the late deliveries (`deliveries_awaiting`, few).
const LIST_OUTGOING_LATE: &str = list_outgoing!(
    " AND m.id IN (SELECT d.message_id FROM deliveries d
                   WHERE d.state = 'delivered' AND d.awaiting = 1 AND d.delivered_at < $6)"
);

/// A state filter's candidates: documents on which some recipient reported the code.
const LIST_OUTGOING_WITH_STATUS: &str = list_outgoing!(
    " AND EXISTS (SELECT 1 FROM statuses s
                  WHERE s.document_sender = m.sender AND s.document_id = m.document_id
                    AND s.code = $6::BIGINT)"
);

pub(super) async fn list_outgoing(
    store: &PgStore,
    agency: &str,
    f: &OutgoingFilter,
) -> Result<Vec<OutgoingItem>> {
    check_page(&f.page)?;
    let sql = match (f.late_before, f.with_status) {
        (Some(_), _) => LIST_OUTGOING_LATE,
        (None, Some(_)) => LIST_OUTGOING_WITH_STATUS,
        (None, None) => LIST_OUTGOING,
    };
    let mut query = sqlx::query(sql)
        .bind(agency)
        .bind(f.since)
        .bind(f.until)
        .bind(f.page.before)
        .bind(i64::from(f.page.limit));
    if let Some(late) = f.late_before {
        query = query.bind(late);
    } else if let Some(code) = f.with_status {
        query = query.bind(i64::from(code));
    }
    let rows = query.fetch_all(store.pool()).await.map_err(db_err)?;
    let messages = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<Vec<_>>>()?;
    if f.without_deliveries {
        return Ok(messages
            .into_iter()
            .map(|message| OutgoingItem {
                message,
                deliveries: Vec::new(),
            })
            .collect());
    }
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let mut by_message = deliveries::for_messages(store.pool(), &ids).await?;
    Ok(messages
        .into_iter()
        .map(|message| OutgoingItem {
            deliveries: by_message.remove(&message.id).unwrap_or_default(),
            message,
        })
        .collect())
}

pub(super) async fn outgoing_item(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<OutgoingItem> {
    let row = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages m
         WHERE m.id = $1 AND m.direction = 'out' AND m.kind = 'document' AND m.sender = $2"
    ))
    .bind(message_id)
    .bind(agency)
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("no document {message_id} sent by {agency}")))?;
    let message = message_from_row(&row)?;
    let mut by_message = deliveries::for_messages(store.pool(), &[message_id]).await?;
    Ok(OutgoingItem {
        deliveries: by_message.remove(&message_id).unwrap_or_default(),
        message,
    })
}

pub(super) async fn package_bytes(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<Vec<u8>> {
    let row: (Vec<u8>, bool, String, i64) = sqlx::query_as(
        "SELECT m.bytes, m.chunked, m.sha256, m.size FROM messages m
         WHERE m.id = $1
           AND ((m.direction = 'out' AND m.sender = $2)
                OR EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id AND i.recipient = $2))",
    )
    .bind(message_id)
    .bind(agency)
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| {
        not_found(format!(
            "no message {message_id} sent or received by {agency}"
        ))
    })?;
    packages::read(store, message_id, row).await
}
