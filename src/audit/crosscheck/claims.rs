//! What each kind of audit record says about the rows it created or changed.
//!
//! | action | entity | attests |
//! |---|---|---|
//! | `document.submit` | message | the outgoing row; its deliveries created `queued` |
//! | `document.receive` | message | the incoming row |
//! | `status.record` | status | the status row, its package's message row, deliveries created for it, deliveries rejected by a 02 |
//! | `delivery.claim`, `.delivered`, `.retry`, `.fail`, `.reject`, `.cancel`, `.operator_retry` | delivery | its state after the change |
//! | `registry.set`, `registry.remove` | agency_registry | the entry (name, rules, who and when) or its absence |
//! | `mail.take` | mail | the mail log row; the mailbox's checkpoint; the reply's rate-limit row (when it replied); a draft and its files (outcome `draft`) |
//! | `delivery.relayed`, `delivery.bounce` | delivery | a mail delivery the relay accepted; one a bounce failed |
//! | `draft.approve`, `draft.discard` | draft | the draft's state after the clerk's decision |
//!
//! A field an older record does not carry (records written before the cross-check existed lack
//! the subject's hash, for example) is `None`: not checked, never guessed.

use serde_json::Value as Json;

use super::fields::{Attested, Value};
use super::rows::{C, D, DR, F, L, M, R, S, Y};
use crate::audit::AuditRecord;

/// The message row a record created: `(message id, attested fields)`.
pub(crate) fn message(r: &AuditRecord, detail: &Json) -> Option<(i64, Attested<M>)> {
    let at = |k: &str| Value::from_json(detail, k);
    let (id, direction, kind, sender, business, status, code, year, subject, receipt, peer) =
        match r.action.as_str() {
            "document.submit" | "document.receive" => {
                let out = r.action == "document.submit";
                (
                    r.entity_id.parse().ok()?,
                    Some(Value::text(if out { "out" } else { "in" })),
                    "document",
                    at("sender"),
                    at("business_type"),
                    Some(Value::Null),
                    at("code"),
                    at("year"),
                    at("subject_sha256"),
                    // A sent document has no receipt in its row, nor a peer it came from.
                    if out {
                        Some(Value::Null)
                    } else {
                        at("receipt_sha256")
                    },
                    if out { Some(Value::Null) } else { at("peer") },
                )
            }
            "status.record" => (
                detail.get("message_id")?.as_i64()?,
                at("direction"),
                "status",
                at("reporter"),
                Some(Value::Null),
                status_code(detail),
                Some(Value::Null),
                Some(Value::Null),
                Some(Value::Null),
                Some(Value::Null),
                at("peer"),
            ),
            _ => return None,
        };
    let sha256 = at("sha256");
    // A received document has one inbox row per local recipient; nothing else has any. A record
    // that lists each recipient's receipt (migration 0010) attests it with the row.
    let inbox = if r.action == "document.receive" {
        let receipts = detail.get("receipts").and_then(Json::as_object);
        detail
            .get("recipients")
            .and_then(Json::as_array)
            .map(|list| {
                let rows: Vec<String> = list
                    .iter()
                    .filter_map(Json::as_str)
                    .map(|recipient| {
                        match receipts
                            .and_then(|m| m.get(recipient))
                            .and_then(Json::as_str)
                        {
                            Some(sha) => format!("{recipient}={sha}"),
                            None => recipient.to_owned(),
                        }
                    })
                    .collect();
                super::rows::inbox(rows.iter().map(String::as_str))
            })
    } else {
        Some(Value::text(""))
    };
    Some((
        id,
        [
            direction,
            Some(Value::text(kind)),
            sender,
            at("document_id"),
            business,
            status,
            code,
            year,
            subject,
            sha256.clone(),
            at("size"),
            at("signer"),
            at("signer_fingerprint"),
            at("header_sha256"),
            peer,
            Some(Value::text(&r.actor)),
            Some(Value::Int(r.at)),
            receipt,
            sha256,
            inbox,
        ],
    ))
}

/// `"02"` → 2.
fn status_code(detail: &Json) -> Option<Value> {
    match detail.get("code")? {
        Json::String(s) => s.parse().ok().map(Value::Int),
        other => Some(Value::of_json(other)),
    }
}

/// The status row a `status.record` created.
pub(crate) fn status(r: &AuditRecord, detail: &Json) -> Option<(i64, Attested<S>)> {
    if r.action != "status.record" {
        return None;
    }
    let at = |k: &str| Value::from_json(detail, k);
    Some((
        r.entity_id.parse().ok()?,
        [
            at("document_sender"),
            at("document_id"),
            at("reporter"),
            status_code(detail),
            at("description_sha256"),
            at("reported_at"),
            Some(Value::Int(r.at)),
            at("direction"),
            at("message_id"),
        ],
    ))
}

/// A delivery a record created: `(delivery id, attested fields)`, all of them known.
pub(crate) fn created_deliveries(r: &AuditRecord, detail: &Json) -> Vec<(i64, Attested<D>)> {
    let message_id = match r.action.as_str() {
        "document.submit" => r.entity_id.parse().ok(),
        "status.record" => detail.get("message_id").and_then(Json::as_i64),
        _ => None,
    };
    let (Some(message_id), Some(list)) = (
        message_id,
        detail.get("deliveries").and_then(Json::as_array),
    ) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|d| {
            let id = d.get("id")?.as_i64()?;
            Some((
                id,
                [
                    Some(Value::Int(message_id)),
                    Value::from_json(d, "recipient"),
                    Value::from_json(d, "route"),
                    Some(Value::text("queued")),
                    Some(Value::Int(0)),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Int(r.at)),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Null),
                    Some(Value::Int(r.at)),
                    Some(Value::Int(r.at)),
                ],
            ))
        })
        .collect()
}

/// Field indexes in [`super::rows::DELIVERY_FIELDS`].
mod f {
    pub const STATE: usize = 3;
    pub const ATTEMPTS: usize = 4;
    pub const LEASE_OWNER: usize = 5;
    pub const LEASE_UNTIL: usize = 6;
    pub const ATTEMPT_ID: usize = 7;
    pub const NEXT: usize = 8;
    pub const ERROR_CODE: usize = 9;
    pub const ERROR_MESSAGE: usize = 10;
    pub const DELIVERED_AT: usize = 11;
    pub const RECEIPT: usize = 12;
    pub const RETRY_FROM: usize = 13;
    pub const UPDATED_AT: usize = 15;
}

/// The deliveries a record changes, and how (`None` for an action that changes none).
pub(crate) fn delivery_changes(r: &AuditRecord, detail: &Json) -> Vec<i64> {
    match r.action.as_str() {
        "status.record" => detail
            .get("rejected_deliveries")
            .and_then(Json::as_array)
            .map(|ids| ids.iter().filter_map(Json::as_i64).collect())
            .unwrap_or_default(),
        a if a.starts_with("delivery.") => r.entity_id.parse().into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Applies what record `r` did to one delivery's expected fields (see the transitions in
/// `store/sqlite/deliveries.rs`).
pub(crate) fn apply(fields: &mut Attested<D>, r: &AuditRecord, detail: &Json) {
    let at = |k: &str| Value::from_json(detail, k);
    let error = detail.get("error");
    let err = |k: &str| error.and_then(|e| Value::from_json(e, k));
    let mut set = |i: usize, v: Option<Value>| fields[i] = v;
    let now = Some(Value::Int(r.at));
    let null = || Some(Value::Null);
    // Every transition but a claim ends the lease.
    let release = |set: &mut dyn FnMut(usize, Option<Value>)| {
        set(f::LEASE_OWNER, null());
        set(f::LEASE_UNTIL, null());
        set(f::ATTEMPT_ID, null());
    };
    match r.action.as_str() {
        "delivery.claim" => {
            set(f::STATE, Some(Value::text("sending")));
            set(f::ATTEMPTS, at("attempt"));
            set(f::LEASE_OWNER, Some(Value::text(&r.actor)));
            set(f::LEASE_UNTIL, at("lease_until"));
            set(f::ATTEMPT_ID, at("attempt_id"));
            set(f::NEXT, null());
        }
        "delivery.delivered" => {
            set(f::STATE, Some(Value::text("delivered")));
            set(f::RECEIPT, at("receipt_sha256"));
            set(f::DELIVERED_AT, now.clone());
            set(f::NEXT, null());
            release(&mut set);
        }
        "delivery.retry" => {
            set(f::STATE, Some(Value::text("retrying")));
            set(f::NEXT, at("next_attempt_at"));
            set(f::ERROR_CODE, err("code"));
            set(f::ERROR_MESSAGE, err("message"));
            release(&mut set);
        }
        "delivery.fail" => {
            set(f::STATE, Some(Value::text("failed")));
            set(f::NEXT, null());
            set(f::ERROR_CODE, err("code"));
            set(f::ERROR_MESSAGE, err("message"));
            release(&mut set);
        }
        "delivery.reject" | "status.record" => {
            set(f::STATE, Some(Value::text("rejected")));
            set(f::NEXT, null());
            set(f::ERROR_CODE, Some(Value::text("REJECTED")));
            // A 02's reason is its description, which the record holds only as a hash.
            set(
                f::ERROR_MESSAGE,
                if r.action == "delivery.reject" {
                    at("reason")
                } else {
                    None
                },
            );
            release(&mut set);
        }
        "delivery.relayed" => {
            // Delivered on the relay's word: no receipt (the reply is on the attempt).
            set(f::STATE, Some(Value::text("delivered")));
            set(f::RECEIPT, null());
            set(f::DELIVERED_AT, now.clone());
            set(f::NEXT, null());
            release(&mut set);
        }
        "delivery.bounce" => {
            set(f::STATE, Some(Value::text("failed")));
            set(f::ATTEMPTS, at("attempt"));
            set(f::NEXT, null());
            set(f::ERROR_CODE, err("code"));
            set(f::ERROR_MESSAGE, err("message"));
            release(&mut set);
        }
        "delivery.cancel" => {
            set(f::STATE, Some(Value::text("cancelled")));
            set(f::NEXT, null());
        }
        "delivery.operator_retry" => {
            set(f::STATE, Some(Value::text("queued")));
            set(f::NEXT, now.clone());
            set(f::RETRY_FROM, now.clone());
        }
        // An action this version does not know: what it changed is unknown from here on.
        _ => {
            for v in fields.iter_mut().skip(f::STATE) {
                *v = None;
            }
            return;
        }
    }
    fields[f::UPDATED_AT] = now;
}

/// What a `registry.set` or `registry.remove` record leaves for code `entity_id`: `Some(fields)`
/// for an entry, `None` for none. `previous` is what the records before it left (an entry keeps
/// who added it and when).
pub(crate) fn registry(
    r: &AuditRecord,
    detail: &Json,
    previous: Option<&Attested<R>>,
) -> Option<Attested<R>> {
    if r.action != "registry.set" {
        return None;
    }
    let actor = Some(Value::text(&r.actor));
    let at = Some(Value::Int(r.at));
    let (added_by, added_at) = match previous {
        Some(p) => (p[2].clone(), p[3].clone()),
        None => (actor.clone(), at.clone()),
    };
    Some([
        Value::from_json(detail, "name"),
        detail.get("rules").map(|v| Value::Text(v.to_string())),
        added_by,
        added_at,
        actor,
        at,
    ])
}

/// The mail log row a `mail.take` record created.
pub(crate) fn mail(r: &AuditRecord, detail: &Json) -> Option<(i64, Attested<L>)> {
    if r.action != "mail.take" {
        return None;
    }
    let at = |k: &str| Value::from_json(detail, k);
    Some((
        r.entity_id.parse().ok()?,
        [
            at("mailbox"),
            at("uidvalidity"),
            at("uid"),
            at("return_path"),
            at("from"),
            at("subject_sha256"),
            at("message_id"),
            at("size"),
            at("outcome"),
            at("code"),
            at("reason"),
            at("message_ref"),
            at("draft_ref"),
            at("delivery_ref"),
            detail
                .get("replied")
                .and_then(Json::as_bool)
                .map(|b| Value::Int(i64::from(b))),
            Some(Value::Int(r.at)),
        ],
    ))
}

/// A draft's files as a `mail.take` record lists them: `(index, fields)`.
pub(crate) type DraftFiles = Vec<(i64, Attested<F>)>;

/// The draft (and its files) a `mail.take` record created: `(draft id, fields, files)`.
pub(crate) fn draft_created(
    r: &AuditRecord,
    detail: &Json,
) -> Option<(i64, Attested<DR>, DraftFiles)> {
    if r.action != "mail.take" {
        return None;
    }
    let d = detail.get("draft")?;
    let at = |k: &str| Value::from_json(d, k);
    let id = d.get("id")?.as_i64()?;
    let files = d
        .get("files")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| {
                    let at = |k: &str| Value::from_json(f, k);
                    Some((
                        f.get("index")?.as_i64()?,
                        [
                            at("name"),
                            at("content_type"),
                            at("size"),
                            at("sha256"),
                            at("sha256"),
                        ],
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Some((
        id,
        [
            at("agency"),
            Some(Value::text("draft")),
            at("code_number"),
            at("code_notation"),
            at("summary_sha256"),
            at("body_sha256"),
            Some(Value::Int(r.at)),
            Some(Value::Null),
            Some(Value::Null),
            Some(Value::Null),
            Some(Value::Null),
            r.entity_id.parse().ok().map(Value::Int),
        ],
        files,
    ))
}

/// Field indexes in [`super::rows::DRAFT_FIELDS`].
mod df {
    pub const STATE: usize = 1;
    pub const DECIDED_AT: usize = 7;
    pub const DECIDED_BY: usize = 8;
    pub const REASON: usize = 9;
    pub const MESSAGE_ID: usize = 10;
}

/// Applies a clerk's decision (`draft.approve`, `draft.discard`) to a draft's expected fields.
pub(crate) fn draft_decided(fields: &mut Attested<DR>, r: &AuditRecord, detail: &Json) {
    let at = |k: &str| Value::from_json(detail, k);
    fields[df::DECIDED_AT] = Some(Value::Int(r.at));
    fields[df::DECIDED_BY] = Some(Value::text(&r.actor));
    match r.action.as_str() {
        "draft.approve" => {
            fields[df::STATE] = Some(Value::text("approved"));
            fields[df::MESSAGE_ID] = at("message_id");
        }
        "draft.discard" => {
            fields[df::STATE] = Some(Value::text("discarded"));
            fields[df::REASON] = at("reason");
        }
        // An action this version does not know: what it changed is unknown from here on.
        _ => {
            for i in [
                df::STATE,
                df::DECIDED_AT,
                df::DECIDED_BY,
                df::REASON,
                df::MESSAGE_ID,
            ] {
                fields[i] = None;
            }
        }
    }
}

/// The checkpoint a `mail.take` record leaves its mailbox at: `(mailbox, fields)`.
pub(crate) fn checkpoint(r: &AuditRecord, detail: &Json) -> Option<(String, Attested<C>)> {
    if r.action != "mail.take" {
        return None;
    }
    let at = |k: &str| Value::from_json(detail, k);
    Some((
        detail.get("mailbox")?.as_str()?.to_owned(),
        [at("uidvalidity"), at("uid"), Some(Value::Int(r.at))],
    ))
}

/// The reply rate-limit row a `mail.take` record that replied leaves: `(address, fields)`.
pub(crate) fn reply(r: &AuditRecord, detail: &Json) -> Option<(String, Attested<Y>)> {
    if r.action != "mail.take" || detail.get("replied")?.as_bool() != Some(true) {
        return None;
    }
    Some((
        detail.get("reply_to")?.as_str()?.to_owned(),
        [Some(Value::Int(r.at))],
    ))
}
