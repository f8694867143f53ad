//! The delivery queue: creating deliveries, claiming them with leases, the state transitions,
//! and the reads and metrics over them.
//!
//! Every transition reads the delivery's current state inside the write transaction and refuses
//! (`INVALID_TRANSITION`, nothing written, no audit record) unless the move is allowed from it.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use sqlx::SqliteConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::{
    SqliteStore, audit, check_page, col, col_int, col_opt_int, db_err, invalid, not_found, require,
    sha256_hex,
};
use crate::audit::AuditEntry;
use crate::error::{Code, Error, Result};
use crate::store::{
    AttemptInfo, AttemptOutcome, CLAIM_WITH_BYTES, ClaimedDelivery, DeliveryError, DeliveryFilter,
    DeliveryInfo, DeliveryState, Kind, Lease, NewDelivery, SubmittedDelivery, types::corrupt,
};

/// Most deliveries one claim may take.
const MAX_CLAIM: u32 = 1000;

/// The columns [`delivery_from_row`] reads: the delivery, its message's identity, and the latest
/// status the recipient reported on the document: the one reported last by the recipient's clock
/// (seconds, as the status package says), ties broken by progression (03 < 04 < 05 < 06; 02 is
/// final like 06), since statuses of one second may arrive in any order.
macro_rules! delivery_select {
    () => {
        "SELECT d.id, d.message_id, m.kind, m.sender, m.document_id, d.recipient, d.route, d.state,
                d.attempts, d.next_attempt_at, d.lease_owner, d.lease_until, d.last_error_code,
                d.last_error_message, d.delivered_at, d.created_at, d.updated_at, d.retry_from,
                (SELECT s.code FROM statuses s
                 WHERE m.kind = 'document' AND s.document_sender = m.sender
                   AND s.document_id = m.document_id AND s.reporter = d.recipient
                 ORDER BY s.reported_at DESC, CASE s.code WHEN 2 THEN 6 ELSE s.code END DESC, s.id DESC
                 LIMIT 1) AS latest_status,
                (SELECT s.reported_at FROM statuses s
                 WHERE m.kind = 'document' AND s.document_sender = m.sender
                   AND s.document_id = m.document_id AND s.reporter = d.recipient
                 ORDER BY s.reported_at DESC, CASE s.code WHEN 2 THEN 6 ELSE s.code END DESC, s.id DESC
                 LIMIT 1) AS latest_status_at
         FROM deliveries d JOIN messages m ON m.id = d.message_id"
    };
}

fn state_from_row(row: &SqliteRow) -> Result<DeliveryState> {
    let s: String = col(row, "state")?;
    DeliveryState::parse(&s).ok_or_else(|| corrupt("deliveries.state", &s))
}

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryInfo> {
    let code: Option<String> = col(row, "last_error_code")?;
    let message: Option<String> = col(row, "last_error_message")?;
    Ok(DeliveryInfo {
        id: col(row, "id")?,
        message_id: col(row, "message_id")?,
        kind: Kind::from_stored(&col::<String>(row, "kind")?)?,
        sender: col(row, "sender")?,
        document_id: col(row, "document_id")?,
        recipient: col(row, "recipient")?,
        route: col(row, "route")?,
        state: state_from_row(row)?,
        attempts: col_int(row, "attempts")?,
        next_attempt_at: col(row, "next_attempt_at")?,
        lease_owner: col(row, "lease_owner")?,
        lease_until: col(row, "lease_until")?,
        last_error: code.map(|code| DeliveryError {
            code,
            message: message.unwrap_or_default(),
        }),
        delivered_at: col(row, "delivered_at")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        retry_from: col(row, "retry_from")?,
        latest_status: col_opt_int(row, "latest_status")?,
        latest_status_at: col(row, "latest_status_at")?,
    })
}

/// One `queued` delivery per recipient, due `now`. Part of the caller's transaction.
pub(super) async fn insert_deliveries(
    conn: &mut SqliteConnection,
    message_id: i64,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<Vec<SubmittedDelivery>> {
    let mut out = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (message_id, recipient, route, state, next_attempt_at,
                 created_at, updated_at)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?4, ?4) RETURNING id",
        )
        .bind(message_id)
        .bind(&d.recipient)
        .bind(&d.route)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
        out.push(SubmittedDelivery {
            recipient: d.recipient.clone(),
            delivery_id: id,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

pub(super) async fn claim_due(
    store: &SqliteStore,
    now: i64,
    limit: u32,
    owner: &str,
    lease_for_ms: i64,
) -> Result<Vec<ClaimedDelivery>> {
    if limit == 0 || limit > MAX_CLAIM {
        return Err(invalid(format!("limit: {limit} is outside 1-{MAX_CLAIM}")));
    }
    require("lease_owner", owner)?;
    if lease_for_ms <= 0 {
        return Err(invalid("lease_for_ms: must be positive"));
    }
    let lease_until = now.saturating_add(lease_for_ms);
    let owner = owner.to_owned();
    let claimed: Vec<(ClaimedDelivery, String)> = store
        .grouped(move |tx| {
            Box::pin(async move {
                let owner = owner.as_str();

                let rows = sqlx::query(
                    "SELECT d.id, d.message_id, d.recipient, d.route, d.state, d.attempts,
                d.current_attempt_id, d.lease_owner, m.kind, m.sender, m.document_id, m.size,
                m.file IS NOT NULL AS in_file, m.sha256,
                CASE WHEN m.file IS NULL AND m.size <= ?3 THEN m.bytes END AS package,
                CASE WHEN d.state = 'sending' THEN d.lease_until ELSE d.next_attempt_at END AS due
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE (d.state IN ('queued', 'retrying') AND d.next_attempt_at <= ?1)
            OR (d.state = 'sending' AND d.lease_until <= ?1)
         ORDER BY due, d.id LIMIT ?2",
                )
                .bind(now)
                .bind(i64::from(limit))
                .bind(CLAIM_WITH_BYTES as i64)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;

                let mut claimed = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = col(row, "id")?;
                    let state = state_from_row(row)?;
                    let previous: u32 = col_int(row, "attempts")?;
                    let attempt = previous.saturating_add(1);
                    let route: String = col(row, "route")?;
                    let expired_attempt: Option<i64> = col(row, "current_attempt_id")?;
                    let expired_owner: Option<String> = col(row, "lease_owner")?;
                    if state == DeliveryState::Sending {
                        // The previous worker's lease ran out: its attempt ends here.
                        sqlx::query(
                            "UPDATE attempts SET finished_at = ?, outcome = 'expired'
                 WHERE id = ? AND finished_at IS NULL",
                        )
                        .bind(now)
                        .bind(expired_attempt)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                    // The attempt and the lease in one round trip to the driver's thread.
                    let attempt_id: i64 = sqlx::query_scalar(
                        "INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at)
                         VALUES (?1, ?2, ?3, ?4, ?5);
                         UPDATE deliveries
                         SET state = 'sending', attempts = ?2, lease_owner = ?4, lease_until = ?6,
                             current_attempt_id = last_insert_rowid(), next_attempt_at = NULL,
                             updated_at = ?5
                         WHERE id = ?1
                         RETURNING current_attempt_id",
                    )
                    .bind(id)
                    .bind(i64::from(attempt))
                    .bind(&route)
                    .bind(owner)
                    .bind(now)
                    .bind(lease_until)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let mut detail = json!({
                        "from": state.as_str(),
                        "to": "sending",
                        "attempt": attempt,
                        "attempt_id": attempt_id,
                        "route": route,
                        "lease_until": lease_until,
                    });
                    if state == DeliveryState::Sending {
                        detail["expired_lease_owner"] = json!(expired_owner);
                        detail["expired_attempt_id"] = json!(expired_attempt);
                    }
                    audit::append(
                        &mut *tx,
                        AuditEntry::new(owner, "delivery.claim", "delivery", id, &detail),
                        now,
                    )
                    .await?;
                    let sha256: String = col(row, "sha256")?;
                    claimed.push((
                        ClaimedDelivery {
                            lease: Lease {
                                delivery_id: id,
                                attempt_id,
                            },
                            message_id: col(row, "message_id")?,
                            kind: Kind::from_stored(&col::<String>(row, "kind")?)?,
                            sender: col(row, "sender")?,
                            document_id: col(row, "document_id")?,
                            recipient: col(row, "recipient")?,
                            route,
                            attempt,
                            lease_until,
                            size: u64::try_from(col::<i64>(row, "size")?).unwrap_or(0),
                            in_file: col(row, "in_file")?,
                            package: col(row, "package")?,
                        },
                        sha256,
                    ));
                }
                Ok(claimed)
            })
        })
        .await?;
    // A package that came with its claim is checked against its row's SHA-256 here, off the
    // group writer's thread. One that does not match is not handed on: the delivery then reads
    // it itself (`message_bytes`) and fails with `STORE_CORRUPT`, without holding up the others.
    Ok(claimed
        .into_iter()
        .map(|(mut c, sha256)| {
            if let Some(bytes) = &c.package
                && sha256_hex(bytes) != sha256
            {
                tracing::error!(
                    message = c.message_id,
                    delivery = c.lease.delivery_id,
                    "the package in the database no longer has its recorded SHA-256"
                );
                c.package = None;
            }
            c
        })
        .collect())
}

/// At the node's start, before its outbox claims anything: every delivery still `sending` was
/// leased by an earlier incarnation of the node, which died holding it (the node holds its
/// store alone — see `SqliteStore::take_back_leases`). Without this each waited out its whole
/// lease (`retry.lease`) before anyone tried it again. Each goes back to `retrying`, due `now`,
/// its attempt ended `expired`, with a `delivery.retry` record (`lease_taken_back`, and no
/// error: nothing was learnt about the peer), all in one transaction. Returns how many.
pub(super) async fn take_back_leases(store: &SqliteStore, actor: &str, now: i64) -> Result<u64> {
    require("actor", actor)?;
    let actor = actor.to_owned();
    store
        .grouped(move |tx| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT id, current_attempt_id, lease_owner, lease_until FROM deliveries
                     WHERE state = 'sending' ORDER BY id",
                )
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                for row in &rows {
                    let id: i64 = col(row, "id")?;
                    let attempt: Option<i64> = col(row, "current_attempt_id")?;
                    let owner: Option<String> = col(row, "lease_owner")?;
                    let until: Option<i64> = col(row, "lease_until")?;
                    sqlx::query(
                        "UPDATE attempts SET finished_at = ?1, outcome = 'expired'
                         WHERE id = ?2 AND finished_at IS NULL;
                         UPDATE deliveries
                         SET state = 'retrying', next_attempt_at = ?1, lease_owner = NULL,
                             lease_until = NULL, current_attempt_id = NULL, updated_at = ?1
                         WHERE id = ?3 AND state = 'sending'",
                    )
                    .bind(now)
                    .bind(attempt)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    let detail = json!({
                        "from": "sending", "to": "retrying", "attempt_id": attempt,
                        "next_attempt_at": now, "lease_taken_back": true,
                        "expired_lease_owner": owner, "expired_lease_until": until,
                    });
                    audit::append(
                        &mut *tx,
                        AuditEntry::new(actor.as_str(), "delivery.retry", "delivery", id, &detail),
                        now,
                    )
                    .await?;
                }
                Ok(rows.len() as u64)
            })
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------------

/// The parts of a delivery a transition decides on.
struct Current {
    state: DeliveryState,
    current_attempt_id: Option<i64>,
    lease_owner: Option<String>,
}

async fn current(conn: &mut SqliteConnection, delivery_id: i64) -> Result<Current> {
    let row =
        sqlx::query("SELECT state, current_attempt_id, lease_owner FROM deliveries WHERE id = ?")
            .bind(delivery_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| not_found(format!("no delivery {delivery_id} on this node")))?;
    Ok(Current {
        state: state_from_row(&row)?,
        current_attempt_id: col(&row, "current_attempt_id")?,
        lease_owner: col(&row, "lease_owner")?,
    })
}

fn refuse(delivery_id: i64, state: DeliveryState, what: &str, allowed: &str) -> Error {
    Error::store(
        Code::InvalidTransition,
        format!("delivery {delivery_id} is {state}; {what} needs {allowed}"),
    )
}

/// The delivery is `sending` and `lease` is its current attempt; returns the lease owner (the
/// actor of the outcome). An expired lease that nobody has re-claimed is still honoured.
pub(super) async fn check_lease(
    conn: &mut SqliteConnection,
    lease: Lease,
    what: &str,
) -> Result<String> {
    let cur = current(conn, lease.delivery_id).await?;
    if cur.state != DeliveryState::Sending {
        return Err(refuse(lease.delivery_id, cur.state, what, "sending"));
    }
    if cur.current_attempt_id != Some(lease.attempt_id) {
        return Err(Error::store(
            Code::InvalidTransition,
            format!(
                "delivery {}: attempt {} lost its lease (the current attempt is {})",
                lease.delivery_id,
                lease.attempt_id,
                cur.current_attempt_id
                    .map_or_else(|| "none".to_owned(), |a| a.to_string())
            ),
        ));
    }
    Ok(cur.lease_owner.unwrap_or_else(|| "outbox".to_owned()))
}

pub(super) async fn finish_attempt(
    conn: &mut SqliteConnection,
    attempt_id: i64,
    outcome: AttemptOutcome,
    error: Option<&DeliveryError>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET finished_at = ?, outcome = ?, error_code = ?, error_message = ?
         WHERE id = ?",
    )
    .bind(now)
    .bind(outcome.as_str())
    .bind(error.map(|e| e.code.as_str()))
    .bind(error.map(|e| e.message.as_str()))
    .bind(attempt_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

fn check_error(e: &DeliveryError) -> Result<()> {
    require("error.code", &e.code)
}

pub(super) async fn mark_delivered(
    store: &SqliteStore,
    lease: Lease,
    receipt: Vec<u8>,
    now: i64,
) -> Result<()> {
    store
        .grouped(move |tx| {
            Box::pin(async move {
                // A document is delivered only with the receipt that proves it; a status package has none.
                if receipt.is_empty() {
                    let kind: String = sqlx::query_scalar(
                        "SELECT m.kind FROM deliveries d JOIN messages m ON m.id = d.message_id
                         WHERE d.id = ?",
                    )
                    .bind(lease.delivery_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| {
                        not_found(format!("no delivery {} on this node", lease.delivery_id))
                    })?;
                    if kind == "document" {
                        return Err(invalid(
                            "receipt: a document is delivered only with its receipt",
                        ));
                    }
                }
                let receipt = (!receipt.is_empty()).then_some(receipt);
                // The lease check, the transition and the attempt's end in one round trip (the
                // hot path): the attempt is closed only if the delivery moved (`changes()`), and
                // its owner is the lease owner the claim recorded on both rows. When nothing
                // moved, `check_lease` says exactly why.
                let moved: Option<Option<String>> = sqlx::query_scalar(
                    "UPDATE deliveries
                     SET state = 'delivered', receipt = ?, delivered_at = ?, lease_owner = NULL,
                         lease_until = NULL, current_attempt_id = NULL, next_attempt_at = NULL,
                         updated_at = ?
                     WHERE id = ? AND state = 'sending' AND current_attempt_id = ?;
                     UPDATE attempts SET finished_at = ?, outcome = ? WHERE id = ? AND changes() = 1
                     RETURNING lease_owner",
                )
                .bind(&receipt)
                .bind(now)
                .bind(now)
                .bind(lease.delivery_id)
                .bind(lease.attempt_id)
                .bind(now)
                .bind(AttemptOutcome::Delivered.as_str())
                .bind(lease.attempt_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some(owner) = moved else {
                    check_lease(&mut *tx, lease, "delivered").await?;
                    return Err(Error::store(
                        Code::InvalidTransition,
                        format!("delivery {}: not delivered", lease.delivery_id),
                    ));
                };
                let proof = ("receipt_sha256", receipt.as_deref().map(sha256_hex).into());
                audit_delivered(&mut *tx, owner, lease, "delivery.delivered", proof, now).await
            })
        })
        .await
}

/// The audit record of a `sending → delivered` move (`mark_delivered`, `mark_relayed`):
/// written by the lease owner the moving statement returned (`outbox` when the claim recorded
/// none), with what proves the delivery (`proof`: its field and value) beside the transition.
pub(super) async fn audit_delivered(
    conn: &mut SqliteConnection,
    owner: Option<String>,
    lease: Lease,
    action: &str,
    proof: (&str, serde_json::Value),
    now: i64,
) -> Result<()> {
    let owner = owner.unwrap_or_else(|| "outbox".to_owned());
    let mut detail = json!({
        "from": "sending", "to": "delivered", "attempt_id": lease.attempt_id,
    });
    detail[proof.0] = proof.1;
    audit::append(
        conn,
        AuditEntry::new(owner, action, "delivery", lease.delivery_id, &detail),
        now,
    )
    .await?;
    Ok(())
}

pub(super) async fn retry_later(
    store: &SqliteStore,
    lease: Lease,
    error: DeliveryError,
    next_attempt_at: i64,
    now: i64,
) -> Result<()> {
    check_error(&error)?;
    store
        .grouped(move |tx| {
            Box::pin(async move {
                let owner = check_lease(&mut *tx, lease, "retry").await?;
                sqlx::query(
                    "UPDATE deliveries
         SET state = 'retrying', next_attempt_at = ?, last_error_code = ?,
             last_error_message = ?, lease_owner = NULL, lease_until = NULL,
             current_attempt_id = NULL, updated_at = ?
         WHERE id = ?",
                )
                .bind(next_attempt_at)
                .bind(&error.code)
                .bind(&error.message)
                .bind(now)
                .bind(lease.delivery_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                finish_attempt(
                    &mut *tx,
                    lease.attempt_id,
                    AttemptOutcome::Retry,
                    Some(&error),
                    now,
                )
                .await?;
                let detail = json!({
                    "from": "sending", "to": "retrying", "attempt_id": lease.attempt_id,
                    "error": error, "next_attempt_at": next_attempt_at,
                });
                audit::append(
                    &mut *tx,
                    AuditEntry::new(
                        owner,
                        "delivery.retry",
                        "delivery",
                        lease.delivery_id,
                        &detail,
                    ),
                    now,
                )
                .await?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn mark_failed(
    store: &SqliteStore,
    lease: Lease,
    error: DeliveryError,
    now: i64,
) -> Result<()> {
    check_error(&error)?;
    store.grouped(move |tx| Box::pin(async move {

    let owner = check_lease(&mut *tx, lease, "fail").await?;
    sqlx::query(
        "UPDATE deliveries
         SET state = 'failed', next_attempt_at = NULL, last_error_code = ?,
             last_error_message = ?, lease_owner = NULL, lease_until = NULL,
             current_attempt_id = NULL, updated_at = ?
         WHERE id = ?",
    )
    .bind(&error.code)
    .bind(&error.message)
    .bind(now)
    .bind(lease.delivery_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    finish_attempt(
        &mut *tx,
        lease.attempt_id,
        AttemptOutcome::Failed,
        Some(&error),
        now,
    )
    .await?;
    let detail = json!({
        "from": "sending", "to": "failed", "attempt_id": lease.attempt_id, "error": error,
    });
    audit::append(
        &mut *tx,
        AuditEntry::new(
            owner,
            "delivery.fail",
            "delivery",
            lease.delivery_id,
            &detail,
        ),
        now,
    )
    .await?;
    Ok(())
    })).await
}

/// States a delivery can be rejected from (the recipient's 02 can arrive at any point before an
/// operator gave up on it).
const REJECTABLE: [DeliveryState; 5] = [
    DeliveryState::Queued,
    DeliveryState::Sending,
    DeliveryState::Retrying,
    DeliveryState::Failed,
    DeliveryState::Delivered,
];

/// Moves a delivery to `rejected` if its state allows; returns the state it left, or `None` when
/// it was not rejectable. Ends an attempt in flight as superseded. No audit record: the caller
/// writes the one for the whole change.
pub(super) async fn set_rejected(
    conn: &mut SqliteConnection,
    delivery_id: i64,
    reason: &str,
    now: i64,
) -> Result<Option<DeliveryState>> {
    let cur = current(conn, delivery_id).await?;
    if !REJECTABLE.contains(&cur.state) {
        return Ok(None);
    }
    if let (DeliveryState::Sending, Some(attempt)) = (cur.state, cur.current_attempt_id) {
        finish_attempt(conn, attempt, AttemptOutcome::Superseded, None, now).await?;
    }
    sqlx::query(
        "UPDATE deliveries
         SET state = 'rejected', next_attempt_at = NULL, last_error_code = 'REJECTED',
             last_error_message = ?, lease_owner = NULL, lease_until = NULL,
             current_attempt_id = NULL, updated_at = ?
         WHERE id = ?",
    )
    .bind(reason)
    .bind(now)
    .bind(delivery_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(Some(cur.state))
}

pub(super) async fn reject_delivery(
    store: &SqliteStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    let mut tx = store.begin().await?;
    let Some(from) = set_rejected(&mut tx, delivery_id, reason, now).await? else {
        let cur = current(&mut tx, delivery_id).await?;
        return Err(refuse(
            delivery_id,
            cur.state,
            "reject",
            "queued, sending, retrying, failed or delivered",
        ));
    };
    let detail = json!({ "from": from.as_str(), "to": "rejected", "reason": reason });
    audit::append(
        &mut tx,
        AuditEntry::new(actor, "delivery.reject", "delivery", delivery_id, &detail),
        now,
    )
    .await?;
    tx.commit().await.map_err(db_err)
}

pub(super) async fn cancel_delivery(
    store: &SqliteStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    require("reason", reason)?;
    let mut tx = store.begin().await?;
    let cur = current(&mut tx, delivery_id).await?;
    if !matches!(
        cur.state,
        DeliveryState::Queued | DeliveryState::Retrying | DeliveryState::Failed
    ) {
        return Err(refuse(
            delivery_id,
            cur.state,
            "cancel",
            "queued, retrying or failed",
        ));
    }
    sqlx::query(
        "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL, updated_at = ?
         WHERE id = ?",
    )
    .bind(now)
    .bind(delivery_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let detail = json!({ "from": cur.state.as_str(), "to": "cancelled", "reason": reason });
    audit::append(
        &mut tx,
        AuditEntry::new(actor, "delivery.cancel", "delivery", delivery_id, &detail),
        now,
    )
    .await?;
    tx.commit().await.map_err(db_err)
}

pub(super) async fn operator_retry(
    store: &SqliteStore,
    delivery_id: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    let mut tx = store.begin().await?;
    let cur = current(&mut tx, delivery_id).await?;
    if !matches!(cur.state, DeliveryState::Failed | DeliveryState::Retrying) {
        return Err(refuse(
            delivery_id,
            cur.state,
            "retry",
            "failed or retrying",
        ));
    }
    sqlx::query(
        "UPDATE deliveries SET state = 'queued', next_attempt_at = ?, retry_from = ?, updated_at = ?
         WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(delivery_id)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let detail = json!({ "from": cur.state.as_str(), "to": "queued" });
    audit::append(
        &mut tx,
        AuditEntry::new(
            actor,
            "delivery.operator_retry",
            "delivery",
            delivery_id,
            &detail,
        ),
        now,
    )
    .await?;
    tx.commit().await.map_err(db_err)
}

// ---------------------------------------------------------------------------------------------
// Reads and metrics
// ---------------------------------------------------------------------------------------------

pub(super) async fn delivery(pool: &SqlitePool, id: i64) -> Result<DeliveryInfo> {
    let row = sqlx::query(concat!(delivery_select!(), " WHERE d.id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("no delivery {id} on this node")))?;
    delivery_from_row(&row)
}

pub(super) async fn delivery_receipt(pool: &SqlitePool, id: i64) -> Result<Option<Vec<u8>>> {
    let row: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT receipt FROM deliveries WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    row.map(|(r,)| r)
        .ok_or_else(|| not_found(format!("no delivery {id} on this node")))
}

/// The deliveries of each message in `ids`, in id order.
pub(super) async fn for_messages(
    pool: &SqlitePool,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<DeliveryInfo>>> {
    let mut out: HashMap<i64, Vec<DeliveryInfo>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids_json = serde_json::to_string(ids).map_err(|e| invalid(e.to_string()))?;
    let rows = sqlx::query(concat!(
        delivery_select!(),
        " WHERE d.message_id IN (SELECT value FROM json_each(?)) ORDER BY d.id"
    ))
    .bind(ids_json)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    for row in &rows {
        let d = delivery_from_row(row)?;
        out.entry(d.message_id).or_default().push(d);
    }
    Ok(out)
}

pub(super) async fn list_deliveries(
    pool: &SqlitePool,
    f: &DeliveryFilter,
) -> Result<Vec<DeliveryInfo>> {
    check_page(&f.page)?;
    // Only the predicates asked for, so SQLite can pick the index that serves them
    // (`deliveries_state`, `deliveries_recipient`) instead of filtering every row by id.
    let states = f.wanted_states();
    let limit = i64::from(f.page.limit);
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("");
    match states.as_deref() {
        Some(several) if several.len() > 1 => {
            // One index range per state (`deliveries_state`), each newest first and cut at the
            // page's size, then merged: a page of the union is among the first rows of its
            // parts, and nothing sorts more than a page per state — where `state IN (…)` sorts
            // every matching row (all of a long queue) to give fifty.
            q.push("SELECT * FROM (");
            for (i, s) in several.iter().enumerate() {
                if i > 0 {
                    q.push(" UNION ALL ");
                }
                q.push("SELECT * FROM (").push(delivery_select!());
                push_delivery_filter(&mut q, f, Some(std::slice::from_ref(s)));
                q.push(" ORDER BY d.id DESC LIMIT ")
                    .push_bind(limit)
                    .push(format!(") AS part{i}"));
            }
            q.push(") AS merged ORDER BY id DESC LIMIT ")
                .push_bind(limit);
        }
        _ => {
            q.push(delivery_select!());
            push_delivery_filter(&mut q, f, states.as_deref());
            q.push(" ORDER BY d.id DESC LIMIT ").push_bind(limit);
        }
    }
    let rows = q.build().fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(delivery_from_row).collect()
}

/// How many deliveries `f` matches (its page's `before` included, its `limit` not), counting
/// no further than `at_most`: a page says "more than 10 000" without counting millions.
pub(super) async fn count_deliveries(
    pool: &SqlitePool,
    f: &DeliveryFilter,
    at_most: u32,
) -> Result<u64> {
    let mut q =
        sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT count(*) FROM (SELECT 1 FROM deliveries d");
    // The message is needed only to filter by sender: counting should not join a row per row.
    if f.sender.is_some() {
        q.push(" JOIN messages m ON m.id = d.message_id");
    }
    push_delivery_filter(&mut q, f, f.wanted_states().as_deref());
    // Newest first, as the list: a filter on recent days meets its rows first.
    q.push(" ORDER BY d.id DESC LIMIT ")
        .push_bind(i64::from(at_most))
        .push(") AS matching");
    let n: i64 = q
        .build_query_scalar()
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The `WHERE` of [`list_deliveries`] and [`count_deliveries`].
/// `states`: `None` for any state, else any of these (none: nothing matches).
fn push_delivery_filter(
    q: &mut sqlx::QueryBuilder<sqlx::Sqlite>,
    f: &DeliveryFilter,
    states: Option<&[DeliveryState]>,
) {
    q.push(" WHERE 1 = 1");
    match states {
        None => {}
        Some([]) => {
            q.push(" AND 1 = 0");
        }
        Some([s]) => {
            q.push(" AND d.state = ").push_bind(s.as_str());
        }
        Some(several) => {
            q.push(" AND d.state IN (");
            let mut list = q.separated(", ");
            for s in several {
                list.push_bind(s.as_str());
            }
            q.push(")");
        }
    }
    if let Some(v) = f.sender.as_deref() {
        q.push(" AND m.sender = ").push_bind(v);
    }
    if let Some(v) = f.recipient.as_deref() {
        q.push(" AND d.recipient = ").push_bind(v);
    }
    if let Some(v) = f.route.as_deref() {
        q.push(" AND d.route = ").push_bind(v);
    }
    if let Some(v) = f.error_code.as_deref() {
        q.push(" AND d.last_error_code = ").push_bind(v);
    }
    if let Some(v) = f.since {
        q.push(" AND d.created_at >= ").push_bind(v);
    }
    if let Some(v) = f.until {
        q.push(" AND d.created_at < ").push_bind(v);
    }
    if let Some(v) = f.page.before {
        q.push(" AND d.id < ").push_bind(v);
    }
}

pub(super) async fn attempts(pool: &SqlitePool, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
    let mut conn = pool.begin().await.map_err(db_err)?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = ?")
        .bind(delivery_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if exists.is_none() {
        return Err(not_found(format!("no delivery {delivery_id} on this node")));
    }
    let rows = sqlx::query(
        "SELECT id, delivery_id, number, route, lease_owner, started_at, finished_at, outcome,
                error_code, error_message, reply
         FROM attempts WHERE delivery_id = ? ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let outcome: Option<String> = col(row, "outcome")?;
            let code: Option<String> = col(row, "error_code")?;
            let message: Option<String> = col(row, "error_message")?;
            Ok(AttemptInfo {
                id: col(row, "id")?,
                delivery_id: col(row, "delivery_id")?,
                number: col_int(row, "number")?,
                route: col(row, "route")?,
                lease_owner: col(row, "lease_owner")?,
                started_at: col(row, "started_at")?,
                finished_at: col(row, "finished_at")?,
                outcome: outcome
                    .as_deref()
                    .map(AttemptOutcome::from_stored)
                    .transpose()?,
                error: code.map(|code| DeliveryError {
                    code,
                    message: message.unwrap_or_default(),
                }),
                reply: col(row, "reply")?,
            })
        })
        .collect()
}

pub(super) async fn delivery_counts(pool: &SqlitePool) -> Result<BTreeMap<DeliveryState, u64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM deliveries GROUP BY state")
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
    let mut out: BTreeMap<DeliveryState, u64> =
        DeliveryState::ALL.into_iter().map(|s| (s, 0)).collect();
    for (state, n) in rows {
        let s = DeliveryState::parse(&state).ok_or_else(|| corrupt("deliveries.state", &state))?;
        out.insert(s, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

pub(super) async fn oldest_pending_age(pool: &SqlitePool, now: i64) -> Result<Option<i64>> {
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT min(created_at) FROM deliveries WHERE state IN ('queued', 'sending', 'retrying')",
    )
    .fetch_one(pool)
    .await
    .map_err(db_err)?;
    Ok(oldest.map(|t| now.saturating_sub(t).max(0)))
}
