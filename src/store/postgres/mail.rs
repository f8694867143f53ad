//! The mail bridge's tables on PostgreSQL (`migrations/postgres/0001_store.sql`, the port of
//! `migrations/sqlite/0012_mail.sql`): mailbox checkpoints, the mail log (whose `quarantined`
//! rows are the quarantine), drafts and their files, the automatic replies' rate limit, and the
//! relay's answer kept on a mail delivery's attempt.
//!
//! The port of the SQLite store's `mail.rs`, with the same checks, codes, messages and audit
//! records (the detail JSON is built by the same code, so `audit verify`'s cross-check and
//! `store copy` see the same chain on both backends). Every write runs in the group writer
//! (`group.rs`): the chain's head is locked by the group, so a write sees every earlier write
//! of every replica, and its checks-then-inserts hold as on SQLite's one writer. `take_mail`
//! keeps the checkpoint, the log row and what the mail produced in one savepoint, so a crash
//! — or another replica reading the same mailbox — leaves the mail either wholly taken in or
//! not at all; the `UNIQUE (mailbox, uidvalidity, uid)` of the log backs the "taken in before"
//! check. Text that came in a mail is checked once more here, whatever the reader did: a
//! one-line field never holds a control, line-separator or bidirectional character (it may end
//! up in a header of a reply or a notification), a draft file's name is one `edxml::file_name`
//! leaves as it is.
//!
//! What differs from SQLite is only how a statement is written: several statements joined by
//! `changes()` or `last_insert_rowid()` are one statement with data-modifying CTEs here (one
//! round trip each, as there), a JSON array of ids is a `BIGINT[]`, `mail_log.replied` is a
//! BIGINT 0/1.

use serde_json::{Value as Json, json};
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::statuses::{self, Mode, Recorded};
use super::{PgStore, audit, col, col_int, db_err, deliveries};
use crate::audit::AuditEntry;
use crate::edxml::file_name::{first_duplicate, safe_file_name, unsafe_to_send};
use crate::error::{Code, Error, Result};
use crate::store::shared::{check_page, invalid, not_found, require, sha256_hex};
use crate::store::{
    AttemptOutcome, DeliveryState, Direction, DraftFile, DraftFileInfo, DraftFilter, DraftItem,
    DraftState, Lease, MailCheckpoint, MailEffect, MailLogFilter, MailLogItem, NewDraft, SentMail,
    TakeOutcome, TakenMail, types::corrupt,
};

// ---------------------------------------------------------------------------------------------
// Bounds (characters unless said otherwise): the reader's are tighter; these keep a caller's
// mistake from filling the store.
// ---------------------------------------------------------------------------------------------

/// A mailbox key (`user@host/folder`).
const MAX_MAILBOX: usize = 500;
/// A mail address (64 for the local part, 255 for the domain, and the `@`).
const MAX_ADDRESS: usize = 320;
/// `Subject:` and `Message-ID:` as the reader keeps them.
const MAX_SUBJECT: usize = 300;
const MAX_MESSAGE_ID: usize = 300;
/// A reason code (`MAIL_TOO_LARGE`).
const MAX_CODE: usize = 64;
/// A reason, a discard's reason, a bounce's diagnostic.
const MAX_REASON: usize = 2000;
/// A relay's answer (multi-line SMTP replies included), an outcome of a mail sent.
const MAX_REPLY: usize = 4000;
/// A draft's prefilled number and notation, its summary (trích yếu's soft limit), a file's
/// content type.
const MAX_CODE_NUMBER: usize = 50;
const MAX_CODE_NOTATION: usize = 100;
const MAX_SUMMARY: usize = 500;
const MAX_CONTENT_TYPE: usize = 255;
/// A draft's body, in bytes of UTF-8 (the reader keeps at most 64 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Files of one draft, and their bytes together.
const MAX_DRAFT_FILES: usize = 100;
const MAX_DRAFT_BYTES: usize = 256 * 1024 * 1024;
/// Addresses of one mail sent.
const MAX_RECIPIENTS: usize = 100;
/// What a bounce's log row says when the delivery moved, and when it was left as it was.
const BOUNCED: &str = "MAIL_BOUNCED";

/// Characters that change how the text around them is shown without being seen: the
/// bidirectional embeddings, overrides and isolates and the directional marks. In a subject or
/// an address they can make a reply's header or a clerk's list read otherwise than it is.
fn is_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// How a text field may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// One line: no control character, no line or paragraph separator, no bidirectional
    /// control (what may reach a header).
    Line,
    /// Several lines: line breaks and tabs, but no other control character.
    Lines,
}

/// Refuses `value` in `field` when it holds a character `form` excludes or is longer than
/// `max` characters (`VALUE_INVALID`, naming the field and the character's position).
fn text(field: &str, value: &str, form: Form, max: usize) -> Result<()> {
    for (i, c) in value.chars().enumerate() {
        let refused = match form {
            Form::Line => c.is_control() || is_bidi(c) || matches!(c, '\u{2028}' | '\u{2029}'),
            Form::Lines => c.is_control() && !matches!(c, '\n' | '\r' | '\t'),
        };
        if refused {
            return Err(invalid(format!(
                "{field}: character {} (U+{:04X}) is not allowed here{}",
                i + 1,
                u32::from(c),
                if form == Form::Line {
                    " (one line, no control or direction characters)"
                } else {
                    ""
                }
            )));
        }
        if i >= max {
            return Err(invalid(format!("{field}: longer than {max} characters")));
        }
    }
    Ok(())
}

/// A required one-line field.
fn line(field: &str, value: &str, max: usize) -> Result<()> {
    require(field, value)?;
    text(field, value, Form::Line, max)
}

/// A count or size as the store's integer.
fn as_i64(field: &str, n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| invalid(format!("{field}: {n} is too large")))
}

/// The key an automatic reply's address is rate-limited under: trimmed and lowercase, so
/// `Xa-IaKha@GiaLai.gov.vn` and `xa-iakha@gialai.gov.vn` are one sender (erring towards fewer
/// replies, the safe side of a loop).
fn reply_key(address: &str) -> String {
    address.trim().to_lowercase()
}

fn check_taken(m: &TakenMail) -> Result<()> {
    line("mailbox", &m.mailbox, MAX_MAILBOX)?;
    if m.uid == 0 {
        return Err(invalid("uid: 0 is not a UID (they start at 1)"));
    }
    text("return_path", &m.return_path, Form::Line, MAX_ADDRESS)?;
    text("from", &m.from, Form::Line, MAX_ADDRESS)?;
    text("subject", &m.subject, Form::Line, MAX_SUBJECT)?;
    if let Some(id) = &m.message_id {
        line("message_id", id, MAX_MESSAGE_ID)?;
    }
    as_i64("size", m.size)?;
    line("actor", &m.actor, MAX_MAILBOX + 5)?;
    match &m.effect {
        MailEffect::Document {
            message_id,
            receipts,
            ..
        } => {
            if *message_id <= 0 {
                return Err(invalid(format!("message_id: {message_id} is not an id")));
            }
            for (i, r) in receipts.iter().enumerate() {
                let at = |what: &str| format!("receipts[{i}].{what}");
                statuses::check_new_status(r)
                    .map_err(|e| invalid(format!("receipts[{i}]: {e}")))?;
                if r.direction != Direction::Out || r.code != 1 {
                    return Err(invalid(format!(
                        "{}: a receipt is an outgoing status 01, not {} {:02}",
                        at("code"),
                        r.direction.as_str(),
                        r.code
                    )));
                }
            }
            if let Some((a, b)) = first_reporter_twice(receipts) {
                return Err(invalid(format!(
                    "receipts[{b}]: {} already has receipts[{a}]",
                    receipts[b].reporter
                )));
            }
        }
        MailEffect::Status { message_id } => {
            if message_id.is_some_and(|id| id <= 0) {
                return Err(invalid("message_id: not an id"));
            }
        }
        MailEffect::Draft(d) => check_draft(d)?,
        MailEffect::Bounce { reason, .. } => {
            require("reason", reason)?;
            text("reason", reason, Form::Lines, MAX_REASON)?;
        }
        MailEffect::Quarantined {
            code,
            reason,
            reply_to,
        } => {
            require("code", code)?;
            if code.len() > MAX_CODE
                || !code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(format!(
                    "code: {code:?} is not a reason code (A-Z, 0-9 and _, at most {MAX_CODE})"
                )));
            }
            require("reason", reason)?;
            text("reason", reason, Form::Lines, MAX_REASON)?;
            if let Some(to) = reply_to {
                line("reply_to", to, MAX_ADDRESS)?;
                if !to.contains('@') {
                    return Err(invalid(format!("reply_to: {to:?} is not a mail address")));
                }
            }
        }
    }
    Ok(())
}

/// The first receipt whose reporter an earlier one has (`(earlier, later)`).
fn first_reporter_twice(receipts: &[crate::store::NewStatus]) -> Option<(usize, usize)> {
    receipts.iter().enumerate().find_map(|(j, r)| {
        receipts[..j]
            .iter()
            .position(|e| e.reporter == r.reporter)
            .map(|i| (i, j))
    })
}

fn check_draft(d: &NewDraft) -> Result<()> {
    line("draft.agency", &d.agency, MAX_CODE_NUMBER)?;
    if let Some(n) = &d.code_number {
        line("draft.code_number", n, MAX_CODE_NUMBER)?;
    }
    if let Some(n) = &d.code_notation {
        line("draft.code_notation", n, MAX_CODE_NOTATION)?;
    }
    text("draft.summary", &d.summary, Form::Line, MAX_SUMMARY)?;
    if d.body.len() > MAX_BODY_BYTES {
        return Err(invalid(format!(
            "draft.body: {} bytes, more than {MAX_BODY_BYTES}",
            d.body.len()
        )));
    }
    text("draft.body", &d.body, Form::Lines, MAX_BODY_BYTES)?;
    if d.files.is_empty() {
        return Err(invalid(
            "draft.files: none (a draft is made from a mail's files)",
        ));
    }
    if d.files.len() > MAX_DRAFT_FILES {
        return Err(invalid(format!(
            "draft.files: {} files, more than {MAX_DRAFT_FILES}",
            d.files.len()
        )));
    }
    let mut total = 0usize;
    for (i, f) in d.files.iter().enumerate() {
        let field = |what: &str| format!("draft.files[{i}].{what}");
        require(&field("name"), &f.name)?;
        // The reader names files through edxml::file_name; a name it would still change, or
        // one the writer refuses to send, did not come that way.
        if safe_file_name(&f.name) != f.name {
            return Err(invalid(format!(
                "{}: {:?} is not a safe file name (edxml::file_name makes it {:?})",
                field("name"),
                f.name,
                safe_file_name(&f.name)
            )));
        }
        if let Some(why) = unsafe_to_send(&f.name) {
            return Err(invalid(format!("{}: {why}", field("name"))));
        }
        line(&field("content_type"), &f.content_type, MAX_CONTENT_TYPE)?;
        if f.bytes.is_empty() {
            return Err(invalid(format!("{}: no bytes", field("bytes"))));
        }
        total = total.saturating_add(f.bytes.len());
    }
    if total > MAX_DRAFT_BYTES {
        return Err(invalid(format!(
            "draft.files: {total} bytes in all, more than {MAX_DRAFT_BYTES}"
        )));
    }
    if let Some((a, b)) = first_duplicate(d.files.iter().map(|f| f.name.as_str())) {
        return Err(invalid(format!(
            "draft.files[{b}].name: {:?} is the same file name as draft.files[{a}] {:?}",
            d.files[b].name, d.files[a].name
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The relay accepted a mail delivery
// ---------------------------------------------------------------------------------------------

/// `sending → delivered` on the relay's word, for a delivery whose route is `mail:…` only: a
/// peer or local delivery is delivered with the receipt that proves it (`mark_delivered`), and
/// this must not be a way around that. The relay's answer stays on the attempt.
pub(super) async fn mark_relayed(
    store: &PgStore,
    lease: Lease,
    reply: String,
    now: i64,
) -> Result<()> {
    require("reply", &reply)?;
    text("reply", &reply, Form::Lines, MAX_REPLY)?;
    store
        .write(move |conn| {
            Box::pin(async move {
                // The transition and the attempt's end in one round trip, as `mark_delivered`:
                // the attempt is closed only if the delivery moved (SQLite's `changes() = 1`).
                let moved: Option<Option<String>> = sqlx::query_scalar(
                    "WITH moved AS (
                         UPDATE deliveries
                         SET state = 'delivered', delivered_at = $1, lease_owner = NULL,
                             lease_until = NULL, current_attempt_id = NULL,
                             next_attempt_at = NULL, updated_at = $1
                         WHERE id = $2 AND state = 'sending' AND current_attempt_id = $3
                           AND substr(route, 1, 5) = 'mail:'
                         RETURNING id)
                     UPDATE attempts SET finished_at = $1, outcome = 'delivered', reply = $4
                     WHERE id = $3 AND EXISTS (SELECT 1 FROM moved)
                     RETURNING lease_owner",
                )
                .bind(now)
                .bind(lease.delivery_id)
                .bind(lease.attempt_id)
                .bind(&reply)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
                let Some(owner) = moved else {
                    deliveries::check_lease(&mut *conn, lease, "relayed").await?;
                    let route: String =
                        sqlx::query_scalar("SELECT route FROM deliveries WHERE id = $1")
                            .bind(lease.delivery_id)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(db_err)?;
                    return Err(Error::store(
                        Code::InvalidTransition,
                        format!(
                            "delivery {} goes by {route}, not by mail: only a mail is delivered \
                             on the relay's word; any other delivery needs its receipt",
                            lease.delivery_id
                        ),
                    ));
                };
                let proof = ("reply", reply.into());
                deliveries::audit_delivered(owner, lease, "delivery.relayed", proof, now)
            })
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Taking a mail in
// ---------------------------------------------------------------------------------------------

/// Where `mailbox` has been read to: what the reader compares each UID with before fetching
/// it (a mail at or below it was taken in; after a crash it is only moved to its folder).
pub(super) async fn checkpoint(store: &PgStore, mailbox: &str) -> Result<Option<MailCheckpoint>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT uidvalidity, last_uid FROM mail_checkpoints WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(store.pool())
            .await
            .map_err(db_err)?;
    row.map(|(v, u)| {
        Ok(MailCheckpoint {
            uidvalidity: u32::try_from(v)
                .map_err(|_| corrupt("mail_checkpoints.uidvalidity", &v.to_string()))?,
            last_uid: u32::try_from(u)
                .map_err(|_| corrupt("mail_checkpoints.last_uid", &u.to_string()))?,
        })
    })
    .transpose()
}

/// One mail taken in: checked here (bounds, characters, file names) so that a refusal costs no
/// transaction, then [`take_in`] in the group writer, with the other hot writes of the moment.
pub(super) async fn take(
    store: &PgStore,
    mail: TakenMail,
    reply_interval_ms: i64,
    now: i64,
) -> Result<TakeOutcome> {
    check_taken(&mail)?;
    if reply_interval_ms < 0 {
        return Err(invalid(format!(
            "reply_interval_ms: {reply_interval_ms} is negative"
        )));
    }
    store
        .write(move |conn| {
            Box::pin(async move { take_in(conn, &mail, reply_interval_ms, now).await })
        })
        .await
}

/// What the bounce does to its delivery, decided from its state before anything is written.
struct Bounce {
    delivery_id: i64,
    from: DeliveryState,
    /// `None`: left as it is (already failed, rejected or cancelled).
    moves: Option<BounceMove>,
}

struct BounceMove {
    route: String,
    attempt: i64,
    /// The attempt in flight (`sending`), superseded by the bounce.
    in_flight: Option<i64>,
}

/// [`take`]'s write (a savepoint of the group writer's): refuses a mail taken in before, then
/// writes the checkpoint, the reply's rate-limit row, the log row and what the mail produced,
/// and the `mail.take` record last (a receipt's `status.record` and a bounce's
/// `delivery.bounce` before it).
async fn take_in(
    tx: &mut PgConnection,
    mail: &TakenMail,
    reply_interval_ms: i64,
    now: i64,
) -> Result<TakeOutcome> {
    let reply_to = match &mail.effect {
        MailEffect::Quarantined {
            reply_to: Some(to), ..
        } => Some(reply_key(to)),
        _ => None,
    };
    // The checkpoint, the mail's log row if any, and the last reply to its sender: one read.
    // The group holds the chain's head, so no other replica takes a mail in meanwhile.
    let (at_validity, at_uid, logged, last_reply): (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT (SELECT uidvalidity FROM mail_checkpoints WHERE mailbox = $1),
                (SELECT last_uid FROM mail_checkpoints WHERE mailbox = $1),
                (SELECT id FROM mail_log WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3),
                (SELECT last_reply_at FROM mail_replies WHERE address = $4::TEXT)",
    )
    .bind(&mail.mailbox)
    .bind(i64::from(mail.uidvalidity))
    .bind(i64::from(mail.uid))
    .bind(reply_to.as_deref())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let taken_before = match (at_validity, at_uid) {
        (Some(v), Some(last)) => v == i64::from(mail.uidvalidity) && i64::from(mail.uid) <= last,
        _ => false,
    };
    if taken_before || logged.is_some() {
        let at = match (at_validity, at_uid, logged) {
            (_, _, Some(id)) => format!("it is mail {id} of the log"),
            (Some(v), Some(last), None) => {
                format!("the checkpoint is at UID {last} (UIDVALIDITY {v})")
            }
            _ => "it is in the log".to_owned(),
        };
        return Err(Error::store(
            Code::InvalidTransition,
            format!(
                "mail UID {} (UIDVALIDITY {}) of {} was taken in before: {at}; nothing written",
                mail.uid, mail.uidvalidity, mail.mailbox
            ),
        ));
    }

    // Decisions that need reads, before anything is written.
    let mut message_ref = None;
    let mut delivery_ref = None;
    let mut bounce = None;
    match &mail.effect {
        MailEffect::Document {
            message_id,
            receipts,
            ..
        } => {
            let doc: Option<(String, String)> = sqlx::query_as(
                "SELECT sender, document_id FROM messages
                 WHERE id = $1 AND direction = 'in' AND kind = 'document'",
            )
            .bind(message_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            let Some((sender, document_id)) = doc else {
                return Err(not_found(format!(
                    "no received document {message_id} on this node"
                )));
            };
            if let Some((i, r)) = receipts
                .iter()
                .enumerate()
                .find(|(_, r)| r.document_sender != sender || r.document_id != document_id)
            {
                return Err(invalid(format!(
                    "receipts[{i}]: about {} of {}, not the mail's document {document_id} of \
                     {sender} (message {message_id})",
                    r.document_id, r.document_sender
                )));
            }
            message_ref = Some(*message_id);
        }
        MailEffect::Status {
            message_id: Some(id),
        } => {
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM messages WHERE id = $1 AND direction = 'in' AND kind = 'status'",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            if known.is_none() {
                return Err(not_found(format!(
                    "no received status package {id} on this node"
                )));
            }
            message_ref = Some(*id);
        }
        MailEffect::Bounce { delivery_id, .. } => {
            let row = sqlx::query(
                "SELECT state, route, attempts, current_attempt_id FROM deliveries WHERE id = $1",
            )
            .bind(delivery_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found(format!("no delivery {delivery_id} on this node")))?;
            let state: String = col(&row, "state")?;
            let from =
                DeliveryState::parse(&state).ok_or_else(|| corrupt("deliveries.state", &state))?;
            let route: String = col(&row, "route")?;
            if !route.starts_with("mail:") {
                // A bounce names a mail the node sent; a delivery by a peer never was one.
                return Err(Error::store(
                    Code::InvalidTransition,
                    format!(
                        "delivery {delivery_id} goes by {route}, not by mail: a bounce cannot \
                         fail it; nothing written"
                    ),
                ));
            }
            let moves = match from {
                DeliveryState::Failed | DeliveryState::Rejected | DeliveryState::Cancelled => None,
                DeliveryState::Queued
                | DeliveryState::Sending
                | DeliveryState::Retrying
                | DeliveryState::Delivered => Some(BounceMove {
                    route,
                    attempt: col::<i64>(&row, "attempts")?.saturating_add(1),
                    in_flight: if from == DeliveryState::Sending {
                        col(&row, "current_attempt_id")?
                    } else {
                        None
                    },
                }),
            };
            delivery_ref = Some(*delivery_id);
            bounce = Some(Bounce {
                delivery_id: *delivery_id,
                from,
                moves,
            });
        }
        MailEffect::Status { message_id: None }
        | MailEffect::Draft(_)
        | MailEffect::Quarantined { .. } => {}
    }
    // RFC 3834: one automatic reply per sender in the interval.
    let replied = reply_to.is_some()
        && last_reply.is_none_or(|at| now.saturating_sub(at) >= reply_interval_ms);
    let (code, reason) = match (&mail.effect, &bounce) {
        (MailEffect::Quarantined { code, reason, .. }, _) => {
            (Some(code.clone()), Some(reason.clone()))
        }
        (MailEffect::Bounce { reason, .. }, Some(b)) => match b.moves {
            Some(_) => (Some(BOUNCED.to_owned()), Some(reason.clone())),
            None => (
                Some(Code::InvalidTransition.as_str().to_owned()),
                Some(format!(
                    "delivery {} was already {}: left as it is; the bounce said: {reason}",
                    b.delivery_id, b.from
                )),
            ),
        },
        _ => (None, None),
    };

    // The checkpoint, the reply's row and the log row in one round trip (the CTEs run whatever
    // the main statement reads of them).
    let log_id: i64 = sqlx::query_scalar(
        "WITH checkpoint AS (
             INSERT INTO mail_checkpoints (mailbox, uidvalidity, last_uid, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity,
                 last_uid = excluded.last_uid, updated_at = excluded.updated_at),
         reply AS (
             INSERT INTO mail_replies (address, last_reply_at)
             SELECT $5::TEXT, $4::BIGINT WHERE $6::BIGINT = 1
             ON CONFLICT (address) DO UPDATE SET last_reply_at = excluded.last_reply_at)
         INSERT INTO mail_log (mailbox, uidvalidity, uid, return_path, from_addr, subject,
             message_id, size, outcome, code, reason, message_ref, delivery_ref, replied,
             taken_at)
         VALUES ($1, $2, $3, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $6, $4)
         RETURNING id",
    )
    .bind(&mail.mailbox)
    .bind(i64::from(mail.uidvalidity))
    .bind(i64::from(mail.uid))
    .bind(now)
    .bind(reply_to.as_deref())
    .bind(i64::from(replied))
    .bind(&mail.return_path)
    .bind(&mail.from)
    .bind(&mail.subject)
    .bind(mail.message_id.as_deref())
    .bind(as_i64("size", mail.size)?)
    .bind(mail.effect.outcome())
    .bind(code.as_deref())
    .bind(reason.as_deref())
    .bind(message_ref)
    .bind(delivery_ref)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;

    let mut detail = json!({
        "mailbox": mail.mailbox,
        "uidvalidity": mail.uidvalidity,
        "uid": mail.uid,
        "checkpoint_before": match (at_validity, at_uid) {
            (Some(v), Some(u)) => json!({ "uidvalidity": v, "last_uid": u }),
            _ => Json::Null,
        },
        "return_path": mail.return_path,
        "from": mail.from,
        // What `lienthong audit verify` cross-checks the row against (audit/crosscheck.rs).
        "subject_sha256": sha256_hex(mail.subject.as_bytes()),
        "message_id": mail.message_id,
        "size": mail.size,
        "outcome": mail.effect.outcome(),
        "code": code,
        "reason": reason,
        "message_ref": message_ref,
        "draft_ref": Json::Null,
        "delivery_ref": delivery_ref,
        "replied": replied,
        "reply_to": reply_to,
    });
    let mut outcome = TakeOutcome {
        log_id,
        reply_allowed: replied,
        draft_id: None,
        deliveries: Vec::new(),
    };

    match &mail.effect {
        MailEffect::Document {
            duplicate,
            receipts,
            ..
        } => {
            let mut recorded = Vec::with_capacity(receipts.len());
            for r in receipts {
                match statuses::record_in(&mut *tx, r, now, Mode::Arrival).await? {
                    Recorded::Status(s) => {
                        let created: Vec<i64> = if s.duplicate {
                            Vec::new()
                        } else {
                            s.deliveries.iter().map(|d| d.delivery_id).collect()
                        };
                        outcome.deliveries.extend(&created);
                        recorded.push(json!({
                            "reporter": r.reporter, "status_id": s.status_id,
                            "message_id": s.message_id, "recorded": !s.duplicate,
                            "deliveries": created,
                        }));
                    }
                    Recorded::Skipped { why, status_id } => recorded.push(json!({
                        "reporter": r.reporter, "status_id": status_id, "recorded": false,
                        "skipped": why,
                    })),
                }
            }
            detail["duplicate"] = json!(duplicate);
            detail["receipts"] = json!(recorded);
        }
        MailEffect::Draft(d) => {
            let (id, files) = insert_draft(&mut *tx, d, log_id, now).await?;
            outcome.draft_id = Some(id);
            detail["draft_ref"] = json!(id);
            detail["draft"] = json!({
                "id": id,
                "agency": d.agency,
                "code_number": d.code_number,
                "code_notation": d.code_notation,
                "summary_sha256": sha256_hex(d.summary.as_bytes()),
                "body_sha256": sha256_hex(d.body.as_bytes()),
                "files": files,
            });
        }
        MailEffect::Bounce { reason, .. } => {
            if let Some(b) = &bounce {
                apply_bounce(&mut *tx, b, reason, log_id, &mail.actor, now).await?;
            }
        }
        MailEffect::Status { .. } | MailEffect::Quarantined { .. } => {}
    }

    audit::append(
        AuditEntry::new(&mail.actor, "mail.take", "mail", log_id, &detail),
        now,
    )?;
    Ok(outcome)
}

/// The draft, its files and the log row's reference to it; returns its id and the files as
/// the `mail.take` record lists them.
async fn insert_draft(
    tx: &mut PgConnection,
    d: &NewDraft,
    log_id: i64,
    now: i64,
) -> Result<(i64, Vec<Json>)> {
    // The draft and the log row's reference in one statement (SQLite's `last_insert_rowid()`).
    let id: i64 = sqlx::query_scalar(
        "WITH draft AS (
             INSERT INTO drafts (agency, state, code_number, code_notation, summary, body,
                 created_at, mail_log_id)
             VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7)
             RETURNING id)
         UPDATE mail_log SET draft_ref = (SELECT id FROM draft) WHERE id = $7
         RETURNING draft_ref",
    )
    .bind(&d.agency)
    .bind(d.code_number.as_deref())
    .bind(d.code_notation.as_deref())
    .bind(&d.summary)
    .bind(&d.body)
    .bind(now)
    .bind(log_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    // The files in one statement; only placeholders are generated, the values are bound.
    let mut sql = String::from(
        "INSERT INTO draft_files (draft_id, idx, name, content_type, size, sha256, bytes) VALUES ",
    );
    for i in 0..d.files.len() {
        let n = i * 7;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7
        ));
    }
    let mut listed = Vec::with_capacity(d.files.len());
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (i, f) in d.files.iter().enumerate() {
        let sha256 = sha256_hex(&f.bytes);
        let size = as_i64("draft file size", f.bytes.len() as u64)?;
        listed.push(json!({
            "index": i, "name": f.name, "content_type": f.content_type, "size": size,
            "sha256": sha256,
        }));
        q = q
            .bind(id)
            .bind(i as i64)
            .bind(&f.name)
            .bind(&f.content_type)
            .bind(size)
            .bind(sha256)
            .bind(&f.bytes[..]);
    }
    q.execute(&mut *tx).await.map_err(db_err)?;
    Ok((id, listed))
}

/// `delivered | sending | retrying | queued → failed` for a bounce: an attempt row `failed`
/// with `MAIL_BOUNCED` and the reason (an attempt in flight is superseded, its lease ended),
/// and the `delivery.bounce` record. Earlier attempts stay as they were.
async fn apply_bounce(
    tx: &mut PgConnection,
    b: &Bounce,
    reason: &str,
    log_id: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    let Some(m) = &b.moves else {
        return Ok(());
    };
    if let Some(attempt) = m.in_flight {
        deliveries::finish_attempt(&mut *tx, attempt, AttemptOutcome::Superseded, None, now)
            .await?;
    }
    // The attempt and the delivery's move in one statement; the new attempt is the
    // delivery's latest (SQLite returns `max(id)` of its attempts, the same row).
    let attempt_id: i64 = sqlx::query_scalar(
        "WITH attempt AS (
             INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at,
                 finished_at, outcome, error_code, error_message)
             VALUES ($1, $2, $3, $4, $5, $5, 'failed', $6, $7)
             RETURNING id),
         moved AS (
             UPDATE deliveries
             SET state = 'failed', attempts = $2, next_attempt_at = NULL, lease_owner = NULL,
                 lease_until = NULL, current_attempt_id = NULL, last_error_code = $6,
                 last_error_message = $7, updated_at = $5
             WHERE id = $1)
         SELECT id FROM attempt",
    )
    .bind(b.delivery_id)
    .bind(m.attempt)
    .bind(&m.route)
    .bind(actor)
    .bind(now)
    .bind(BOUNCED)
    .bind(reason)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let detail = json!({
        "from": b.from.as_str(), "to": "failed", "attempt": m.attempt, "attempt_id": attempt_id,
        "superseded_attempt_id": m.in_flight,
        "error": { "code": BOUNCED, "message": reason },
        "mail_log_id": log_id,
    });
    audit::append(
        AuditEntry::new(actor, "delivery.bounce", "delivery", b.delivery_id, &detail),
        now,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The mail log
// ---------------------------------------------------------------------------------------------

macro_rules! log_columns {
    () => {
        "SELECT id, mailbox, uidvalidity, uid, return_path, from_addr, subject, message_id, size,
                outcome, code, reason, message_ref, draft_ref, delivery_ref, replied, taken_at
         FROM mail_log"
    };
}

/// The log, newest first, walking the primary key (no outcome) or `mail_log_outcome` from the
/// page bound: two statements so that each has its index.
const LIST_LOG: &str = concat!(
    log_columns!(),
    " WHERE id < coalesce($1, 9223372036854775807) ORDER BY id DESC LIMIT $2"
);
const LIST_LOG_BY_OUTCOME: &str = concat!(
    log_columns!(),
    " WHERE outcome = $3 AND id < coalesce($1, 9223372036854775807) ORDER BY id DESC LIMIT $2"
);

const OUTCOMES: [&str; 5] = ["document", "status", "draft", "bounce", "quarantined"];

fn log_from_row(row: &PgRow) -> Result<MailLogItem> {
    Ok(MailLogItem {
        id: col(row, "id")?,
        mailbox: col(row, "mailbox")?,
        uidvalidity: col_int(row, "uidvalidity")?,
        uid: col_int(row, "uid")?,
        return_path: col(row, "return_path")?,
        from: col(row, "from_addr")?,
        subject: col(row, "subject")?,
        message_id: col(row, "message_id")?,
        size: col_int(row, "size")?,
        outcome: col(row, "outcome")?,
        code: col(row, "code")?,
        reason: col(row, "reason")?,
        message_ref: col(row, "message_ref")?,
        draft_ref: col(row, "draft_ref")?,
        delivery_ref: col(row, "delivery_ref")?,
        replied: col::<i64>(row, "replied")? != 0,
        taken_at: col(row, "taken_at")?,
    })
}

pub(super) async fn list_log(store: &PgStore, f: &MailLogFilter) -> Result<Vec<MailLogItem>> {
    check_page(&f.page)?;
    // PostgreSQL refuses a bind its statement has no placeholder for: the outcome is bound
    // only to the statement that reads it.
    let query = sqlx::query(match f.outcome.as_deref() {
        None => LIST_LOG,
        Some(o) if OUTCOMES.contains(&o) => LIST_LOG_BY_OUTCOME,
        Some(o) => {
            return Err(invalid(format!(
                "outcome: {o:?} is not one of {}",
                OUTCOMES.join(", ")
            )));
        }
    })
    .bind(f.page.before)
    .bind(i64::from(f.page.limit));
    let query = match f.outcome.as_deref() {
        Some(o) => query.bind(o),
        None => query,
    };
    let rows = query.fetch_all(store.pool()).await.map_err(db_err)?;
    rows.iter().map(log_from_row).collect()
}

pub(super) async fn log_item(store: &PgStore, id: i64) -> Result<MailLogItem> {
    let row = sqlx::query(concat!(log_columns!(), " WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("no mail {id} in the mail log")))?;
    log_from_row(&row)
}

pub(super) async fn taken(
    store: &PgStore,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
    message_id: Option<&str>,
) -> Result<Option<MailLogItem>> {
    let at = sqlx::query(concat!(
        log_columns!(),
        " WHERE mailbox = $1 AND uidvalidity = $2 AND uid = $3"
    ))
    .bind(mailbox)
    .bind(i64::from(uidvalidity))
    .bind(i64::from(uid))
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?;
    let row = match (at, message_id) {
        (Some(row), _) => Some(row),
        (None, Some(mid)) => sqlx::query(concat!(
            log_columns!(),
            " WHERE mailbox = $1 AND message_id = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(mailbox)
        .bind(mid)
        .fetch_optional(store.pool())
        .await
        .map_err(db_err)?,
        (None, None) => None,
    };
    row.as_ref().map(log_from_row).transpose()
}

/// A mail sent outside the outbox, in the audit chain only (`mail.send`): the mail is gone
/// once sent, and the record is what shows it was. In the group writer, as every append.
pub(super) async fn record_sent(store: &PgStore, sent: SentMail, now: i64) -> Result<i64> {
    line("kind", &sent.kind, MAX_CODE)?;
    if sent.to.is_empty() || sent.to.len() > MAX_RECIPIENTS {
        return Err(invalid(format!(
            "to: {} addresses (1-{MAX_RECIPIENTS})",
            sent.to.len()
        )));
    }
    for (i, to) in sent.to.iter().enumerate() {
        line(&format!("to[{i}]"), to, MAX_ADDRESS)?;
    }
    line("message_id", &sent.message_id, MAX_MESSAGE_ID)?;
    text("outcome", &sent.outcome, Form::Lines, MAX_REPLY)?;
    let detail = json!({
        "kind": sent.kind, "to": sent.to, "message_id": sent.message_id,
        "sent": sent.sent, "outcome": sent.outcome,
    });
    store
        .write(move |_| {
            Box::pin(async move {
                let entry =
                    AuditEntry::new("node", "mail.send", "sent_mail", &sent.message_id, &detail);
                Ok(audit::append(entry, now)?.seq)
            })
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Drafts
// ---------------------------------------------------------------------------------------------

macro_rules! draft_columns {
    () => {
        "SELECT d.id, d.agency, d.state, l.from_addr, l.subject, d.code_number, d.code_notation,
                d.summary, d.body, d.created_at, d.decided_at, d.decided_by, d.reason,
                d.message_id, d.mail_log_id
         FROM drafts d JOIN mail_log l ON l.id = d.mail_log_id"
    };
}

/// An agency's drafts, newest first, walking `drafts_agency` or `drafts_agency_state` from the
/// page bound.
const LIST_DRAFTS: &str = concat!(
    draft_columns!(),
    " WHERE d.agency = $1 AND d.id < coalesce($2, 9223372036854775807)
      ORDER BY d.id DESC LIMIT $3"
);
const LIST_DRAFTS_BY_STATE: &str = concat!(
    draft_columns!(),
    " WHERE d.agency = $1 AND d.state = $4 AND d.id < coalesce($2, 9223372036854775807)
      ORDER BY d.id DESC LIMIT $3"
);

fn draft_state(s: &str) -> Result<DraftState> {
    Ok(match s {
        "draft" => DraftState::Draft,
        "approved" => DraftState::Approved,
        "discarded" => DraftState::Discarded,
        other => return Err(corrupt("drafts.state", other)),
    })
}

fn draft_from_row(row: &PgRow) -> Result<DraftItem> {
    Ok(DraftItem {
        id: col(row, "id")?,
        agency: col(row, "agency")?,
        state: draft_state(&col::<String>(row, "state")?)?,
        from: col(row, "from_addr")?,
        subject: col(row, "subject")?,
        code_number: col(row, "code_number")?,
        code_notation: col(row, "code_notation")?,
        summary: col(row, "summary")?,
        body: col(row, "body")?,
        files: Vec::new(),
        created_at: col(row, "created_at")?,
        decided_at: col(row, "decided_at")?,
        decided_by: col(row, "decided_by")?,
        reason: col(row, "reason")?,
        message_id: col(row, "message_id")?,
        mail_log_id: col(row, "mail_log_id")?,
    })
}

/// Fills in the files (without their bytes) of `drafts`, in one read. A draft's files are
/// written in the transaction that writes the draft and never change, so reading them after
/// the drafts (a later snapshot) finds exactly theirs.
async fn with_files(store: &PgStore, drafts: &mut [DraftItem]) -> Result<()> {
    if drafts.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = drafts.iter().map(|d| d.id).collect();
    let rows = sqlx::query(
        "SELECT draft_id, idx, name, content_type, size, sha256 FROM draft_files
         WHERE draft_id = ANY($1) ORDER BY draft_id, idx",
    )
    .bind(ids)
    .fetch_all(store.pool())
    .await
    .map_err(db_err)?;
    for row in &rows {
        let draft_id: i64 = col(row, "draft_id")?;
        if let Some(d) = drafts.iter_mut().find(|d| d.id == draft_id) {
            d.files.push(DraftFileInfo {
                index: col_int(row, "idx")?,
                name: col(row, "name")?,
                content_type: col(row, "content_type")?,
                size: col_int(row, "size")?,
                sha256: col(row, "sha256")?,
            });
        }
    }
    Ok(())
}

pub(super) async fn list_drafts(
    store: &PgStore,
    agency: &str,
    f: &DraftFilter,
) -> Result<Vec<DraftItem>> {
    check_page(&f.page)?;
    // As `list_log`: the state is bound only to the statement that reads it.
    let query = sqlx::query(match f.state {
        None => LIST_DRAFTS,
        Some(_) => LIST_DRAFTS_BY_STATE,
    })
    .bind(agency)
    .bind(f.page.before)
    .bind(i64::from(f.page.limit));
    let query = match f.state {
        Some(s) => query.bind(s.as_str()),
        None => query,
    };
    let rows = query.fetch_all(store.pool()).await.map_err(db_err)?;
    let mut drafts = rows
        .iter()
        .map(draft_from_row)
        .collect::<Result<Vec<_>>>()?;
    with_files(store, &mut drafts).await?;
    Ok(drafts)
}

pub(super) async fn draft(store: &PgStore, agency: &str, id: i64) -> Result<DraftItem> {
    let row = sqlx::query(concat!(
        draft_columns!(),
        " WHERE d.id = $1 AND d.agency = $2"
    ))
    .bind(id)
    .bind(agency)
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?
    .ok_or_else(|| not_found(format!("no draft {id} of {agency}")))?;
    let mut drafts = [draft_from_row(&row)?];
    with_files(store, &mut drafts).await?;
    let [d] = drafts;
    Ok(d)
}

/// A draft's file with its bytes, checked against the SHA-256 its row (and the `mail.take`
/// record) holds: bytes changed in the database are never handed to a clerk or signed.
pub(super) async fn draft_file(
    store: &PgStore,
    agency: &str,
    id: i64,
    index: u32,
) -> Result<DraftFile> {
    let row: Option<(String, String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT f.name, f.content_type, f.sha256, f.bytes
         FROM draft_files f JOIN drafts d ON d.id = f.draft_id
         WHERE d.id = $1 AND d.agency = $2 AND f.idx = $3",
    )
    .bind(id)
    .bind(agency)
    .bind(i64::from(index))
    .fetch_optional(store.pool())
    .await
    .map_err(db_err)?;
    let Some((name, content_type, sha256, bytes)) = row else {
        return Err(not_found(format!(
            "no file {index} of draft {id} of {agency}"
        )));
    };
    let actual = sha256_hex(&bytes);
    if actual != sha256 {
        return Err(Error::store(
            Code::StoreCorrupt,
            format!(
                "file {index} of draft {id}: SHA-256 {actual}, but its row records {sha256}: it \
                 was changed or damaged in the database"
            ),
        ));
    }
    Ok(DraftFile {
        name,
        content_type,
        bytes,
    })
}

pub(super) async fn discard_draft(
    store: &PgStore,
    agency: &str,
    id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    require("reason", reason)?;
    text("reason", reason, Form::Lines, MAX_REASON)?;
    let (agency, reason, actor) = (agency.to_owned(), reason.to_owned(), actor.to_owned());
    store
        .write(move |conn| {
            Box::pin(async move {
                let state = draft_state_for(&mut *conn, &agency, id).await?;
                if state != DraftState::Draft {
                    return Err(not_a_draft(id, state, "discarded"));
                }
                sqlx::query(
                    "UPDATE drafts SET state = 'discarded', decided_at = $1, decided_by = $2,
                         reason = $3
                     WHERE id = $4 AND state = 'draft'",
                )
                .bind(now)
                .bind(&actor)
                .bind(&reason)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                let detail = json!({
                    "agency": agency, "from": "draft", "to": "discarded", "reason": reason,
                });
                audit::append(
                    AuditEntry::new(&actor, "draft.discard", "draft", id, &detail),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

/// The state of draft `id` of `agency` (`NOT_FOUND` for none, or another agency's).
async fn draft_state_for(conn: &mut PgConnection, agency: &str, id: i64) -> Result<DraftState> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM drafts WHERE id = $1 AND agency = $2")
            .bind(id)
            .bind(agency)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    let state = state.ok_or_else(|| not_found(format!("no draft {id} of {agency}")))?;
    draft_state(&state)
}

fn not_a_draft(id: i64, state: DraftState, what: &str) -> Error {
    Error::store(
        Code::InvalidTransition,
        format!(
            "draft {id} is {}; only a draft waiting for a clerk can be {what}",
            state.as_str()
        ),
    )
}

/// Before a submission with `from_draft` takes its number: the draft is `agency`'s and still
/// a draft (`NOT_FOUND`, `INVALID_TRANSITION`). Inside the submission's write (the group
/// writer's savepoint); `messages.rs` calls it as the SQLite store's does.
pub(super) async fn check_approvable(conn: &mut PgConnection, agency: &str, id: i64) -> Result<()> {
    let state = draft_state_for(conn, agency, id).await?;
    if state != DraftState::Draft {
        return Err(not_a_draft(id, state, "approved"));
    }
    Ok(())
}

/// `draft → approved` as message `message_id`, with its `draft.approve` record: in the
/// submission's write, after [`check_approvable`] and the document's insert.
pub(super) async fn approve(
    conn: &mut PgConnection,
    agency: &str,
    id: i64,
    message_id: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    let moved = sqlx::query(
        "UPDATE drafts SET state = 'approved', decided_at = $1, decided_by = $2, message_id = $3
         WHERE id = $4 AND agency = $5 AND state = 'draft'",
    )
    .bind(now)
    .bind(actor)
    .bind(message_id)
    .bind(id)
    .bind(agency)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    if moved != 1 {
        let state = draft_state_for(conn, agency, id).await?;
        return Err(not_a_draft(id, state, "approved"));
    }
    let detail = json!({
        "agency": agency, "from": "draft", "to": "approved", "message_id": message_id,
    });
    audit::append(
        AuditEntry::new(actor, "draft.approve", "draft", id, &detail),
        now,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The port against its original: one scenario of mail writes and reads runs on a SQLite
    //! store and on a PostgreSQL one, and everything they answer — results, refusals with
    //! their codes and messages, and the audit chain record by record, hashes included — must
    //! be the same. Needs `LIENTHONG_TEST_POSTGRES` (an admin URL); says loudly when skipped.
    use super::{LIST_DRAFTS, LIST_DRAFTS_BY_STATE, LIST_LOG, LIST_LOG_BY_OUTCOME};
    use crate::store::{
        AuditQuery, DraftFile, DraftFilter, DraftState, Lease, MailEffect, MailLogFilter, NewDraft,
        Page, PgStore, SentMail, SqliteStore, Store, TakenMail,
    };
    use sqlx::{Connection, Executor};

    const MAILBOX: &str = "lienthong@mail.gialai.gov.vn/INBOX";
    const ACTOR: &str = "mail:lienthong@mail.gialai.gov.vn/INBOX";
    const SOYT: &str = "000.00.11.H21";
    const VALIDITY: u32 = 1_764_000_000;
    const NOW: i64 = 1_795_600_800_000;
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;

    /// A database of its own on the server of `LIENTHONG_TEST_POSTGRES`, dropped by
    /// [`PgDb::drop_db`]; `None` (and a loud line) without the variable.
    struct PgDb {
        admin: String,
        name: String,
        url: String,
    }

    impl PgDb {
        async fn create(test: &str) -> Option<PgDb> {
            let Ok(admin) = std::env::var("LIENTHONG_TEST_POSTGRES") else {
                eprintln!("SKIPPED (no PostgreSQL): {test} — set LIENTHONG_TEST_POSTGRES");
                return None;
            };
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("lt_t_mail_{}_{nanos}", std::process::id());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{name}");
            Some(PgDb { admin, name, url })
        }

        async fn drop_db(self) {
            let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
            conn.execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .unwrap();
        }
    }

    fn file(name: &str, bytes: &[u8]) -> DraftFile {
        DraftFile {
            name: name.to_owned(),
            content_type: "application/pdf".to_owned(),
            bytes: bytes.to_vec(),
        }
    }

    fn mail(validity: u32, uid: u32, effect: MailEffect) -> TakenMail {
        TakenMail {
            mailbox: MAILBOX.to_owned(),
            uidvalidity: validity,
            uid,
            return_path: "xa-iakha@gialai.gov.vn".to_owned(),
            from: "Xã Ia Kha <xa-iakha@gialai.gov.vn>".to_owned(),
            subject: format!("Công văn số {uid}"),
            message_id: Some(format!("<{uid}.{validity}@gialai.gov.vn>")),
            size: 1000 + u64::from(uid),
            effect,
            actor: ACTOR.to_owned(),
        }
    }

    fn draft(summary: &str, files: Vec<DraftFile>) -> MailEffect {
        MailEffect::Draft(NewDraft {
            agency: SOYT.to_owned(),
            code_number: Some("12".to_owned()),
            code_notation: Some("UBND-VP".to_owned()),
            summary: summary.to_owned(),
            body: "Kính gửi Sở Y tế,\r\n\tđề nghị ...\n".to_owned(),
            files,
        })
    }

    fn quarantined(reply_to: Option<&str>) -> MailEffect {
        MailEffect::Quarantined {
            code: "MAIL_NOT_UNDERSTOOD".to_owned(),
            reason: "no .edxml attachment\nand no draft agency".to_owned(),
            reply_to: reply_to.map(str::to_owned),
        }
    }

    /// Rows the mail writes refer to, inserted by hand in the same order on both backends (so
    /// with the same ids): an outgoing document and its deliveries by mail — `sending` (1,
    /// attempt 1), `sending` (2, attempt 2), `delivered` (3), `failed` (4) — and one by a peer
    /// (5, `sending`, attempt 3).
    const ROWS: [&str; 9] = [
        "INSERT INTO messages (direction, kind, sender, document_id, business_type, sha256, size,
             header_json, actor, created_at, bytes)
         VALUES ('out', 'document', '000.00.00.H21', 'doc-1', 0,
             'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 3, '{}', 'clerk',
             1, 'abc')",
        "INSERT INTO deliveries (message_id, recipient, route, state, attempts, lease_owner,
             lease_until, current_attempt_id, created_at, updated_at)
         VALUES (1, 'r1', 'mail:r1@x.gov.vn', 'sending', 1, 'outbox-a', 99999999999999, 1, 1, 1)",
        "INSERT INTO deliveries (message_id, recipient, route, state, attempts, lease_owner,
             lease_until, current_attempt_id, created_at, updated_at)
         VALUES (1, 'r2', 'mail:r2@x.gov.vn', 'sending', 1, 'outbox-a', 99999999999999, 2, 1, 1)",
        "INSERT INTO deliveries (message_id, recipient, route, state, attempts, delivered_at,
             created_at, updated_at)
         VALUES (1, 'r3', 'mail:r3@x.gov.vn', 'delivered', 1, 5, 1, 1)",
        "INSERT INTO deliveries (message_id, recipient, route, state, attempts, created_at,
             updated_at)
         VALUES (1, 'r4', 'mail:r4@x.gov.vn', 'failed', 3, 1, 1)",
        "INSERT INTO deliveries (message_id, recipient, route, state, attempts, lease_owner,
             lease_until, current_attempt_id, created_at, updated_at)
         VALUES (1, 'r5', 'peer:https://r5.gov.vn', 'sending', 1, 'outbox-a', 99999999999999, 3,
             1, 1)",
        "INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at)
         VALUES (1, 1, 'mail:r1@x.gov.vn', 'outbox-a', 1)",
        "INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at)
         VALUES (2, 1, 'mail:r2@x.gov.vn', 'outbox-a', 1)",
        "INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at)
         VALUES (5, 1, 'peer:https://r5.gov.vn', 'outbox-a', 1)",
    ];

    /// The scenario; returns what each step answered.
    async fn scenario<S: Store>(s: &S) -> Vec<String> {
        let mut out = Vec::new();
        macro_rules! step {
            ($e:expr) => {{
                let r = $e;
                out.push(format!("{}: {:?}", stringify!($e), r));
                r
            }};
        }
        let all = MailLogFilter::default();
        step!(s.mail_checkpoint(MAILBOX).await).unwrap();
        let mut t = NOW;
        let mut next = || {
            t += MINUTE;
            t
        };
        // The quarantine and its replies' rate limit (the key is the lowercase address).
        let q = quarantined(Some("Xa-IaKha@GiaLai.gov.vn"));
        step!(s.take_mail(mail(VALIDITY, 1, q), HOUR, next()).await).unwrap();
        let q = quarantined(Some("xa-iakha@gialai.gov.vn "));
        step!(s.take_mail(mail(VALIDITY, 2, q), HOUR, next()).await).unwrap();
        step!(
            s.take_mail(mail(VALIDITY, 3, quarantined(None)), HOUR, next())
                .await
        )
        .unwrap();
        let q = quarantined(Some("xa-iakha@gialai.gov.vn"));
        step!(s.take_mail(mail(VALIDITY, 4, q), 0, next()).await).unwrap();
        // Taken in before: by the log row, and by the checkpoint.
        let q = quarantined(None);
        step!(
            s.take_mail(mail(VALIDITY, 2, q.clone()), HOUR, next())
                .await
        )
        .unwrap_err();
        step!(
            s.take_mail(mail(VALIDITY, 4, q.clone()), HOUR, next())
                .await
        )
        .unwrap_err();
        // A status package (none named), drafts.
        let st = MailEffect::Status { message_id: None };
        step!(s.take_mail(mail(VALIDITY, 7, st), HOUR, next()).await).unwrap();
        let files = vec![
            file("to-trinh.pdf", b"%PDF-1.7 a"),
            file("phu-luc.pdf", b"%PDF b"),
        ];
        let d1 = step!(
            s.take_mail(mail(VALIDITY, 8, draft("Tờ trình", files)), HOUR, next())
                .await
        )
        .unwrap()
        .draft_id
        .unwrap();
        let files = vec![file("cv.pdf", b"%PDF c")];
        let d2 = step!(
            s.take_mail(mail(VALIDITY, 9, draft("Công văn", files)), HOUR, next())
                .await
        )
        .unwrap()
        .draft_id
        .unwrap();
        // Refused before any write.
        let mut m = mail(VALIDITY, 10, quarantined(None));
        m.subject = "a\u{202E}fdp.exe".to_owned();
        step!(s.take_mail(m, HOUR, next()).await).unwrap_err();
        let files = vec![file("a.pdf", b"1"), file("A.PDF", b"2")];
        step!(
            s.take_mail(mail(VALIDITY, 10, draft("x", files)), HOUR, next())
                .await
        )
        .unwrap_err();
        let files = vec![file("../a.pdf", b"1")];
        step!(
            s.take_mail(mail(VALIDITY, 10, draft("x", files)), HOUR, next())
                .await
        )
        .unwrap_err();
        step!(
            s.take_mail(mail(VALIDITY, 10, quarantined(None)), -1, next())
                .await
        )
        .unwrap_err();
        // What needs rows of other concerns, missing.
        let st = MailEffect::Status {
            message_id: Some(77),
        };
        step!(s.take_mail(mail(VALIDITY, 10, st), HOUR, next()).await).unwrap_err();
        let doc = MailEffect::Document {
            message_id: 77,
            duplicate: false,
            receipts: Vec::new(),
        };
        step!(s.take_mail(mail(VALIDITY, 10, doc), HOUR, next()).await).unwrap_err();
        let b = MailEffect::Bounce {
            delivery_id: 77,
            reason: "550 no such user".to_owned(),
        };
        step!(s.take_mail(mail(VALIDITY, 10, b), HOUR, next()).await).unwrap_err();
        // Bounces: in flight, delivered, already failed, not by mail.
        for (uid, delivery_id) in [(11, 2), (12, 3), (13, 4), (14, 5)] {
            let b = MailEffect::Bounce {
                delivery_id,
                reason: format!("550 5.1.1 <r{delivery_id}@x.gov.vn>: no such user"),
            };
            out.push(format!(
                "{:?}",
                s.take_mail(mail(VALIDITY, uid, b), HOUR, next()).await
            ));
        }
        // The relay's word: a mail's delivery; a peer's is refused; a lost lease.
        let relayed = |d, a| Lease {
            delivery_id: d,
            attempt_id: a,
        };
        let reply = "250 2.0.0 Ok: queued as 4F2".to_owned();
        step!(s.mark_relayed(relayed(1, 1), reply.clone(), next()).await).unwrap();
        step!(s.mark_relayed(relayed(1, 1), reply.clone(), next()).await).unwrap_err();
        step!(s.mark_relayed(relayed(5, 3), reply.clone(), next()).await).unwrap_err();
        step!(s.mark_relayed(relayed(5, 3), String::new(), next()).await).unwrap_err();
        // A new UIDVALIDITY starts the folder again.
        step!(
            s.take_mail(mail(VALIDITY + 1, 1, quarantined(None)), HOUR, next())
                .await
        )
        .unwrap();
        step!(s.mail_checkpoint(MAILBOX).await).unwrap();
        // Reads.
        step!(s.mail_taken(MAILBOX, VALIDITY, 8, None).await).unwrap();
        step!(
            s.mail_taken(MAILBOX, 5, 99, Some("<9.1764000000@gialai.gov.vn>"))
                .await
        )
        .unwrap();
        step!(s.mail_taken(MAILBOX, 5, 99, None).await).unwrap();
        step!(s.list_mail_log(&all).await).unwrap();
        let page = Page {
            limit: 2,
            before: Some(4),
        };
        step!(
            s.list_mail_log(&MailLogFilter {
                outcome: None,
                page
            })
            .await
        )
        .unwrap();
        for o in ["quarantined", "bounce", "draft", "document"] {
            let f = MailLogFilter {
                outcome: Some(o.to_owned()),
                page: Page::default(),
            };
            step!(s.list_mail_log(&f).await).unwrap();
        }
        let f = MailLogFilter {
            outcome: Some("spam".to_owned()),
            page: Page::default(),
        };
        step!(s.list_mail_log(&f).await).unwrap_err();
        step!(s.mail_log_item(3).await).unwrap();
        step!(s.mail_log_item(999).await).unwrap_err();
        // Drafts.
        step!(s.list_drafts(SOYT, &DraftFilter::default()).await).unwrap();
        step!(s.draft(SOYT, d1).await).unwrap();
        step!(s.draft("000.00.00.H21", d1).await).unwrap_err();
        step!(s.draft_file(SOYT, d1, 1).await).unwrap();
        step!(s.draft_file(SOYT, d1, 2).await).unwrap_err();
        step!(
            s.discard_draft(SOYT, d2, "gửi nhầm\nxin hủy", "clerk-1", next())
                .await
        )
        .unwrap();
        step!(s.discard_draft(SOYT, d2, "again", "clerk-1", next()).await).unwrap_err();
        step!(
            s.discard_draft("000.00.00.H21", d1, "x", "clerk-1", next())
                .await
        )
        .unwrap_err();
        for state in [
            DraftState::Draft,
            DraftState::Discarded,
            DraftState::Approved,
        ] {
            let f = DraftFilter {
                state: Some(state),
                page: Page::default(),
            };
            step!(s.list_drafts(SOYT, &f).await).unwrap();
        }
        let page = Page {
            limit: 1,
            before: Some(d2),
        };
        step!(
            s.list_drafts(SOYT, &DraftFilter { state: None, page })
                .await
        )
        .unwrap();
        // A mail sent outside the outbox.
        let sent = SentMail {
            kind: "auto_reply".to_owned(),
            to: vec!["xa-iakha@gialai.gov.vn".to_owned()],
            message_id: "<r1@lienthong.gialai.gov.vn>".to_owned(),
            outcome: "250 Ok".to_owned(),
            sent: true,
        };
        step!(s.record_mail_sent(sent.clone(), next()).await).unwrap();
        let bad = SentMail {
            to: Vec::new(),
            ..sent
        };
        step!(s.record_mail_sent(bad, next()).await).unwrap_err();
        out
    }

    #[tokio::test]
    async fn the_port_answers_and_records_as_sqlite_does() {
        let Some(db) =
            PgDb::create("postgres::mail::the_port_answers_and_records_as_sqlite_does").await
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
        let sqlite = SqliteStore::open(&sqlite_url).await.unwrap();
        let raw = sqlx::SqlitePool::connect(&sqlite_url).await.unwrap();
        let pg = PgStore::open(&db.url).await.unwrap();
        for sql in ROWS {
            sqlx::query(sql).execute(&raw).await.unwrap();
            sqlx::query(sql).execute(pg.pool()).await.unwrap();
        }

        let on_sqlite = scenario(&sqlite).await;
        let on_pg = scenario(&pg).await;
        for (a, b) in on_sqlite.iter().zip(&on_pg) {
            assert_eq!(a, b);
        }
        assert_eq!(on_sqlite.len(), on_pg.len());

        let q = AuditQuery::default();
        let chain_sqlite = sqlite.audit_records(&q).await.unwrap();
        let chain_pg = pg.audit_records(&q).await.unwrap();
        assert!(chain_sqlite.len() > 15, "{}", chain_sqlite.len());
        for (a, b) in chain_sqlite.iter().zip(&chain_pg) {
            assert_eq!(a, b);
        }
        assert_eq!(chain_sqlite.len(), chain_pg.len());
        pg.verify_audit().await.unwrap().unwrap();

        // Rows no record describes the same way on both: the attempts and deliveries moved.
        let q = "SELECT id, state, attempts, last_error_code, lease_owner, current_attempt_id
                 FROM deliveries ORDER BY id";
        type D = (
            i64,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let ds: Vec<D> = sqlx::query_as(q).fetch_all(&raw).await.unwrap();
        let dp: Vec<D> = sqlx::query_as(q).fetch_all(pg.pool()).await.unwrap();
        assert_eq!(ds, dp);
        let q = "SELECT id, delivery_id, number, outcome, error_code, reply FROM attempts
                 ORDER BY id";
        type A = (
            i64,
            i64,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let a_s: Vec<A> = sqlx::query_as(q).fetch_all(&raw).await.unwrap();
        let a_p: Vec<A> = sqlx::query_as(q).fetch_all(pg.pool()).await.unwrap();
        assert_eq!(a_s, a_p);

        // A draft file's bytes changed in the database are refused (`%PDF b` → `%PDF c`).
        sqlx::query("UPDATE draft_files SET bytes = '\\x255044462063' WHERE idx = 1")
            .execute(pg.pool())
            .await
            .unwrap();
        let e = pg.draft_file(SOYT, 1, 1).await.unwrap_err();
        assert_eq!(e.code(), crate::error::Code::StoreCorrupt, "{e}");

        pg.close().await;
        db.drop_db().await;
    }

    /// Each page of the mail log and of an agency's drafts is read from its index, from the
    /// page bound (with sequential and bitmap scans off: the tables are empty here).
    #[tokio::test]
    async fn the_lists_walk_an_index_from_the_page_bound() {
        let Some(db) = PgDb::create("postgres::mail::the_lists_walk_an_index").await else {
            return;
        };
        drop(PgStore::open(&db.url).await.unwrap());
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
            .await
            .unwrap();
        let cases: [(&str, &str, &str, &str); 4] = [
            (LIST_LOG, "(bigint, bigint)", "1000, 50", "mail_log_pkey"),
            (
                LIST_LOG_BY_OUTCOME,
                "(bigint, bigint, text)",
                "1000, 50, 'quarantined'",
                "mail_log_outcome",
            ),
            (
                LIST_DRAFTS,
                "(text, bigint, bigint)",
                "'000.00.11.H21', 1000, 50",
                "drafts_agency",
            ),
            (
                LIST_DRAFTS_BY_STATE,
                "(text, bigint, bigint, text)",
                "'000.00.11.H21', 1000, 50, 'draft'",
                "drafts_agency_state",
            ),
        ];
        for (i, (sql, types, args, index)) in cases.into_iter().enumerate() {
            conn.execute(sqlx::AssertSqlSafe(format!(
                "PREPARE p{i} {types} AS {sql}"
            )))
            .await
            .unwrap();
            let plan: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE p{i}({args})")))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("Index Scan Backward using {index} ")),
                "{plan}"
            );
            assert!(!plan.contains("Sort"), "{plan}");
        }
        drop(conn);
        db.drop_db().await;
    }
}
