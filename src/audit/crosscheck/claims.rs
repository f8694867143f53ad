//! What each kind of audit record says about the rows it created or changed.
//!
//! | action | entity | attests |
//! |---|---|---|
//! | `document.submit` | message | the outgoing row; its deliveries created `queued` |
//! | `document.receive` | message | the incoming row |
//! | `status.record` | status | the status row, its package's message row, deliveries created for it, deliveries rejected by a 02 |
//! | `delivery.claim`, `.delivered`, `.retry`, `.fail`, `.reject`, `.cancel`, `.operator_retry` | delivery | its state after the change |
//! | `registry.set`, `registry.remove` | agency_registry | the entry (name, rules, who and when) or its absence |
//!
//! A field an older record does not carry (records written before the cross-check existed lack
//! the subject's hash, for example) is `None`: not checked, never guessed.

use serde_json::Value as Json;

use super::fields::{Attested, Value};
use super::rows::{D, M, R, S};
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
