//! Processing statuses (01–16): the history, and what a status changes elsewhere — the
//! recipient's inbox status (and `revoked` on 15), and a 02 rejecting the deliveries to the
//! reporter.
//!
//! History is kept per business document (sender OrganId, DocumentId) rather than per stored
//! message: a revocation or update repeats the original's DocumentId, and a status answers the
//! document, not one particular package of it.
//!
//! Every status is checked against that history (`edxml::processing`: who may report which
//! code, after what, on which package, and when) inside the transaction that records it; a
//! refused status writes nothing.
//!
//! On PostgreSQL (a port of the SQLite store's `statuses.rs`, same checks, codes and audit
//! records) the check and the writes are one write of the group writer: its transaction holds
//! the lock on the chain's head, so the writes of every replica run one after the other and the
//! history read here includes every status committed before, whichever replica recorded it.

use serde_json::json;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::messages::{check_deliveries, check_package, insert_message};
use super::{
    PgStore, audit, col, col_int, db_err, deliveries, invalid, not_found, require, sha256_hex,
};
use crate::audit::AuditEntry;
use crate::edxml::StatusCode;
use crate::edxml::processing::{
    self, Addressed, Effects, History, Refusal, Report, Reported, Request,
};
use crate::error::{Code, Error, Result};
use crate::store::{Direction, Kind, NewStatus, StatusOutcome, StatusRecord, SubmittedDelivery};

pub(super) async fn record_status(
    store: &PgStore,
    new: NewStatus,
    now: i64,
) -> Result<StatusOutcome> {
    check_new_status(&new)?;
    store
        .write(move |conn| {
            Box::pin(async move {
                match record_in(&mut *conn, &new, now, Mode::Report).await? {
                    Recorded::Status(outcome) => Ok(outcome),
                    // Only an arrival receipt is ever skipped.
                    Recorded::Skipped { why, .. } => Err(Error::internal("record_status", why)),
                }
            })
        })
        .await
}

/// Refuses a status that is not well formed (before any transaction).
pub(super) fn check_new_status(new: &NewStatus) -> Result<()> {
    require("document_sender", &new.document_sender)?;
    require("document_id", &new.document_id)?;
    require("reporter", &new.reporter)?;
    require("actor", &new.actor)?;
    if !(1..=16).contains(&new.code) {
        return Err(invalid(format!("code: {:02} is not 01-16", new.code)));
    }
    check_package(&new.package)?;
    match new.direction {
        Direction::Out => check_deliveries(&new.deliveries, "deliveries")?,
        Direction::In if !new.deliveries.is_empty() => {
            return Err(invalid("deliveries: a received status is not sent on"));
        }
        Direction::In => {}
    }
    match (new.direction, new.on_business_type) {
        (_, Some(t)) if t > 3 => {
            return Err(invalid(format!("on_business_type: {t} is not 0-3")));
        }
        (Direction::In, Some(_)) => {
            return Err(invalid(
                "on_business_type: a received status names no inbox item",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Whose status is being recorded, which decides how the processing order is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A clerk's report (`Out`) or a received status package (`In`): [`record_status`].
    Report,
    /// The 01 a local recipient sends back on a document's arrival, recorded as an outgoing
    /// status by `take_mail` (a mail has no synchronous answer to carry it, as a peer's push
    /// has). The processing order refuses a 01 that a clerk *reports* ("sent on arrival, not
    /// reported"); this is that arrival, so it is checked as the automatic receipt it is: no
    /// clerk's history precedes it, and it is about the arrival of a package, not a processing
    /// step of the package it names. It does not change the inbox's current status (a document
    /// that came by a peer, whose 01 travels in the push answer, has none either), and a 01 the
    /// document's history already excludes (the recipient has its 01, or has gone further) is
    /// skipped, not refused: the mail is taken in all the same.
    Arrival,
}

/// What [`record_in`] did.
#[derive(Debug)]
pub(super) enum Recorded {
    /// Recorded now, or the same report found recorded (`duplicate`).
    Status(StatusOutcome),
    /// An arrival receipt the history excludes: nothing written. `status_id` is the recipient's
    /// 01 already recorded, if that is why.
    Skipped { why: String, status_id: Option<i64> },
}

/// Records `new` on `tx`, inside the caller's write (the group writer's savepoint):
/// the history row, the status package, its deliveries and effects, and the `status.record`
/// audit record — or nothing, for a duplicate, a refusal or a skipped arrival receipt.
/// `new` must have passed [`check_new_status`].
pub(super) async fn record_in(
    tx: &mut PgConnection,
    new: &NewStatus,
    now: i64,
    mode: Mode,
) -> Result<Recorded> {
    let arrival = mode == Mode::Arrival;
    let sha256 = sha256_hex(&new.package.bytes);

    // A recipient arrives once: a second 01 (the same document taken in again by another
    // mail, or a follow-up package of it) has nothing to add to the history.
    if arrival {
        let earlier: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM statuses
             WHERE document_sender = $1 AND document_id = $2 AND reporter = $3 AND code = 1
             ORDER BY id LIMIT 1",
        )
        .bind(&new.document_sender)
        .bind(&new.document_id)
        .bind(&new.reporter)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Some(id) = earlier {
            return Ok(Recorded::Skipped {
                why: format!(
                    "{} already has its 01 on document {} of {} (status {id})",
                    new.reporter, new.document_id, new.document_sender
                ),
                status_id: Some(id),
            });
        }
    }

    // The same report again is recorded once and answered as the first: the same package (a
    // peer retrying, or our own status coming back through the local route, recorded by the
    // clerk's report with the milliseconds its package cannot carry), known by its hash whatever
    // the recorded time; or a clerk of ours reporting the same code with the same description on
    // the same item again (a retry after a lost answer, signed anew with a later time).
    let same: Option<(i64, i64)> = sqlx::query_as(
        "SELECT s.id, s.message_id FROM statuses s JOIN messages m ON m.id = s.message_id
         WHERE s.document_sender = $1 AND s.document_id = $2 AND s.reporter = $3 AND s.code = $4
           AND (m.sha256 = $5
                OR ($7::TEXT = 'out' AND s.direction = 'out' AND s.description = $8))
           AND (s.on_type IS NULL OR $6::BIGINT IS NULL OR s.on_type = $6)
         ORDER BY s.id LIMIT 1",
    )
    .bind(&new.document_sender)
    .bind(&new.document_id)
    .bind(&new.reporter)
    .bind(i64::from(new.code))
    .bind(&sha256)
    .bind(new.on_business_type.map(i64::from))
    .bind(new.direction.as_str())
    .bind(&new.description)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    if same.is_none() {
        // Another package with the same code in the same second (a peer's 15 on the update, then
        // its 15 on the revocation): a different report, which the history's key (document,
        // reporter, code, time) cannot hold. Refused rather than dropped; a second later it is
        // recorded.
        let clash: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM statuses
             WHERE document_sender = $1 AND document_id = $2 AND reporter = $3 AND code = $4
               AND reported_at = $5",
        )
        .bind(&new.document_sender)
        .bind(&new.document_id)
        .bind(&new.reporter)
        .bind(i64::from(new.code))
        .bind(new.reported_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if clash.is_some() {
            return Err(Error::store(
                Code::InvalidTransition,
                format!(
                    "status {:02} from {} on document {} was reported in this same second in \
                     another package; report it again",
                    new.code, new.reporter, new.document_id
                ),
            ));
        }
    }
    if let Some((status_id, message_id)) = same {
        // The same report again (a peer retrying, or our own status coming back through the
        // local route): nothing to write.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT recipient, id FROM deliveries WHERE message_id = $1 ORDER BY id",
        )
        .bind(message_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        return Ok(Recorded::Status(StatusOutcome {
            status_id,
            message_id,
            deliveries: rows
                .into_iter()
                .map(|(recipient, delivery_id)| SubmittedDelivery {
                    recipient,
                    delivery_id,
                })
                .collect(),
            rejected_deliveries: Vec::new(),
            duplicate: true,
        }));
    }

    // The document's processing order (edxml::processing), decided on the history read in this
    // same transaction: the group writer runs one write at a time, so two statuses on one
    // document cannot both pass against the same history.
    let effects = match check_processing(&mut *tx, new, now, mode).await? {
        Ok(effects) => effects,
        Err(Refusal::OutOfOrder(why)) if arrival => {
            return Ok(Recorded::Skipped {
                why: format!(
                    "01 from {} on document {} of {}: {why}",
                    new.reporter, new.document_id, new.document_sender
                ),
                status_id: None,
            });
        }
        Err(refusal) => return Err(refusal_error(new, refusal)),
    };

    let message_id = insert_message(
        &mut *tx,
        new.direction,
        Kind::Status,
        None,
        Some((&new.reporter, &new.document_id, new.code)),
        &new.package,
        &sha256,
        new.peer.as_deref(),
        None,
        &new.actor,
        now,
        false,
    )
    .await?
    .ok_or_else(|| invalid("the status package conflicts with one already stored"))?;
    super::revocation::insert(&mut *tx, message_id, &new.revocation).await?;
    let on_type = effects.answers.map(request_type).or(new.on_business_type);
    let status_id: i64 = sqlx::query_scalar(
        "INSERT INTO statuses (document_sender, document_id, reporter, code, description,
             reported_at, recorded_at, direction, message_id, on_type)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&new.document_sender)
    .bind(&new.document_id)
    .bind(&new.reporter)
    .bind(i64::from(new.code))
    .bind(&new.description)
    .bind(new.reported_at)
    .bind(now)
    .bind(new.direction.as_str())
    .bind(message_id)
    .bind(on_type.map(i64::from))
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;

    // The reporter's own copies of the document: latest status (a late-arriving older report
    // does not overwrite a newer one), and revoked on an accepted take-back (15). An arrival
    // receipt leaves them as a peer's arrival does (`Mode::Arrival`).
    let inbox_updated = if arrival {
        0
    } else {
        sqlx::query(
            "UPDATE inbox
         SET current_status = $1, current_status_at = $2
         WHERE recipient = $3
           AND message_id IN (SELECT id FROM messages
                              WHERE direction = 'in' AND kind = 'document'
                                AND sender = $4 AND document_id = $5)
           AND (current_status_at IS NULL OR current_status_at <= $2)",
        )
        .bind(i64::from(new.code))
        .bind(new.reported_at)
        .bind(&new.reporter)
        .bind(&new.document_sender)
        .bind(&new.document_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected()
    };
    // A 15 that answers a revocation (or a bare 13) cancels the reporter's copies; agreeing to
    // an update or a replacement cancels nothing (edxml::processing::Effects::revokes).
    if effects.revokes {
        sqlx::query(
            "UPDATE inbox SET revoked = 1
             WHERE recipient = $1 AND message_id IN (SELECT id FROM messages
                   WHERE direction = 'in' AND kind = 'document' AND sender = $2 AND document_id = $3)",
        )
        .bind(&new.reporter)
        .bind(&new.document_sender)
        .bind(&new.document_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }

    // A 02 from a recipient: our deliveries of the document to it are rejected.
    let mut rejected = Vec::new();
    if new.code == 2 {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT d.id FROM deliveries d JOIN messages m ON m.id = d.message_id
             WHERE m.direction = 'out' AND m.kind = 'document' AND m.sender = $1
               AND m.document_id = $2 AND d.recipient = $3
             ORDER BY d.id",
        )
        .bind(&new.document_sender)
        .bind(&new.document_id)
        .bind(&new.reporter)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for id in ids {
            if deliveries::set_rejected(&mut *tx, id, &new.description, now)
                .await?
                .is_some()
            {
                rejected.push(id);
            }
        }
    }

    let created = if new.direction == Direction::Out {
        deliveries::insert_deliveries(&mut *tx, message_id, &new.deliveries, now).await?
    } else {
        Vec::new()
    };

    let detail = json!({
        "direction": new.direction.as_str(),
        "document_sender": new.document_sender,
        "document_id": new.document_id,
        "reporter": new.reporter,
        "code": format!("{:02}", new.code),
        "reported_at": new.reported_at,
        "message_id": message_id,
        "sha256": sha256,
        "peer": new.peer,
        // What `lienthong audit verify` cross-checks the rows against (audit/crosscheck.rs).
        "description_sha256": sha256_hex(new.description.as_bytes()),
        "size": new.package.bytes.len(),
        "signer": new.package.signer_subject,
        "signer_fingerprint": new.package.signer_fingerprint,
        "header_sha256": sha256_hex(new.package.header_json.as_bytes()),
        "inbox_updated": inbox_updated,
        "on_type": on_type,
        "revokes": effects.revokes,
        "rejected_deliveries": rejected,
        "deliveries": created.iter().zip(&new.deliveries).map(|(c, d)| json!({
            "id": c.delivery_id, "recipient": c.recipient, "route": d.route,
        })).collect::<Vec<_>>(),
    });
    let detail = crate::store::shared::with_channel(detail, new.package.channel.as_ref());
    audit::append(
        AuditEntry::new(&new.actor, "status.record", "status", status_id, &detail),
        now,
    )?;
    Ok(Recorded::Status(StatusOutcome {
        status_id,
        message_id,
        deliveries: created,
        rejected_deliveries: rejected,
        duplicate: false,
    }))
}

/// The business type a take-back request is stored under (`statuses.on_type`).
fn request_type(r: Request) -> u8 {
    match r {
        Request::TakeBack => 0,
        Request::Revocation => 1,
        Request::Update => 2,
        Request::Replacement => 3,
    }
}

/// Reads the document's history at the reporter and asks [`processing::check_status`]. An
/// arrival receipt ([`Mode::Arrival`]) is asked as what it is: not a clerk's report on a
/// package (`complete`, `on`), but the automatic 01.
async fn check_processing(
    conn: &mut PgConnection,
    new: &NewStatus,
    now: i64,
    mode: Mode,
) -> Result<std::result::Result<Effects, Refusal>> {
    let code = StatusCode::from_number(new.code)
        .ok_or_else(|| invalid(format!("code: {:02} is not 01-16", new.code)))?;
    // Every package of the document, and whether it went to the reporter: a delivery (sent by
    // an agency of this node) or an inbox row (received for one). One per business type: on a
    // node serving both ends the same package is both.
    let packages: Vec<(i64, i64, bool)> = sqlx::query_as(
        "SELECT m.business_type, m.created_at,
                EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.recipient = $3)
                OR EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id AND i.recipient = $3)
         FROM messages m
         WHERE m.kind = 'document' AND m.sender = $1 AND m.document_id = $2
         ORDER BY m.created_at, m.id",
    )
    .bind(&new.document_sender)
    .bind(&new.document_id)
    .bind(&new.reporter)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut history = History {
        first_stored: packages.iter().map(|p| p.1).min(),
        ..History::default()
    };
    for (business_type, at, to_reporter) in packages {
        let business_type = u8::try_from(business_type).unwrap_or(u8::MAX);
        if to_reporter
            && !history
                .addressed
                .iter()
                .any(|a| a.business_type == business_type)
        {
            history.addressed.push(Addressed { business_type, at });
        }
    }
    let rows: Vec<(String, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT reporter, code, reported_at, on_type FROM statuses
         WHERE document_sender = $1 AND document_id = $2 AND (reporter = $3 OR code = 13)
         ORDER BY id",
    )
    .bind(&new.document_sender)
    .bind(&new.document_id)
    .bind(&new.reporter)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    for (reporter, code, at, on) in rows {
        let Some(code) = u8::try_from(code).ok().and_then(StatusCode::from_number) else {
            continue;
        };
        if code == StatusCode::TakeBackRequested {
            if reporter == new.document_sender {
                history.take_back_requests.push(at);
            }
            continue;
        }
        if reporter == new.reporter {
            history.reports.push(Reported {
                code,
                at,
                on: on.and_then(|t| u8::try_from(t).ok()),
            });
        }
    }
    let arrival = mode == Mode::Arrival;
    let report = Report {
        code,
        at: new.reported_at,
        by_sender: new.reporter == new.document_sender,
        on: if arrival { None } else { new.on_business_type },
        complete: new.direction == Direction::Out && !arrival,
        now,
    };
    Ok(processing::check_status(&history, &report))
}

/// A refusal of the processing order as an error with its code, naming the document and the
/// reporter.
fn refusal_error(new: &NewStatus, refusal: Refusal) -> Error {
    let about = format!(
        "status {:02} from {} on document {} of {}",
        new.code, new.reporter, new.document_id, new.document_sender
    );
    match refusal {
        Refusal::UnknownDocument => not_found(format!(
            "document {} from {} is not known to this node",
            new.document_id, new.document_sender
        )),
        Refusal::NotRecipient(why) => {
            Error::store(Code::StatusNotFromRecipient, format!("{about}: {why}"))
        }
        Refusal::Timestamp(why) => Error::store(Code::StatusTimeInvalid, format!("{about}: {why}")),
        Refusal::OutOfOrder(why) => {
            Error::store(Code::InvalidTransition, format!("{about}: {why}"))
        }
    }
}

fn status_from_row(row: &PgRow) -> Result<StatusRecord> {
    Ok(StatusRecord {
        id: col(row, "id")?,
        document_sender: col(row, "document_sender")?,
        document_id: col(row, "document_id")?,
        reporter: col(row, "reporter")?,
        code: col_int(row, "code")?,
        description: col(row, "description")?,
        reported_at: col(row, "reported_at")?,
        recorded_at: col(row, "recorded_at")?,
        direction: Direction::from_stored(&col::<String>(row, "direction")?)?,
        message_id: col(row, "message_id")?,
    })
}

pub(super) async fn status_history(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<Vec<StatusRecord>> {
    // The scope and the history from one snapshot, as SQLite's read transaction gives.
    let mut conn = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    // The sender sees every recipient's reports; a recipient sees its own and the sender's.
    let scope: Option<(String, String, String, bool)> = sqlx::query_as(
        "SELECT m.direction, m.sender, m.document_id,
                EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id AND i.recipient = $2)
         FROM messages m WHERE m.id = $1 AND m.kind = 'document'",
    )
    .bind(message_id)
    .bind(agency)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let visible_to_all = match &scope {
        Some((direction, sender, _, _)) if direction == "out" && sender == agency => true,
        Some((direction, _, _, true)) if direction == "in" => false,
        _ => {
            return Err(not_found(format!(
                "no document {message_id} sent or received by {agency}"
            )));
        }
    };
    let Some((_, sender, document_id, _)) = scope else {
        return Err(not_found(format!("no document {message_id} on this node")));
    };
    let rows = sqlx::query(
        "SELECT id, document_sender, document_id, reporter, code, description, reported_at,
                recorded_at, direction, message_id
         FROM statuses
         WHERE document_sender = $1 AND document_id = $2
           AND ($3 OR reporter = $4 OR reporter = $1)
         ORDER BY reported_at, id",
    )
    .bind(&sender)
    .bind(&document_id)
    .bind(visible_to_all)
    .bind(agency)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter().map(status_from_row).collect()
}
