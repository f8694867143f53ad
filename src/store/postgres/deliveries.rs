//! The delivery queue on PostgreSQL: creating deliveries, claiming them with leases
//! (`FOR UPDATE SKIP LOCKED`), the state transitions, the reads and metrics over them, and the
//! `LISTEN` that wakes the outbox when any replica queues a delivery. The port of the SQLite
//! store's `deliveries.rs`: same checks, same codes and messages, same audit records.
//!
//! Every transition reads the delivery's current state inside the write (the group writer's
//! transaction, which holds the audit head's lock, so it sees every earlier committed write of
//! every replica) and refuses (`INVALID_TRANSITION`, nothing written, no audit record) unless
//! the move is allowed from it.
//!
//! Replicas: a lease is (owner, until) on the row plus the attempt it started. A replica that
//! died holding leases needs no `take_back_leases` here (that is for the one process that owns
//! a SQLite file): any replica claims an expired lease again, ending the dead attempt as
//! `expired`; the dead replica's outcome, should it come back, names an attempt that is no
//! longer current and is refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use tokio::sync::Notify;

use super::{
    PgStore, QUEUE_CHANNEL, audit, check_page, col, col_int, col_opt_int, db_err, invalid,
    not_found, require, sha256_hex,
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

/// What makes a delivery due at `$1`: queued or retrying and its time has come, or `sending`
/// under a lease that ran out (its owner died or is stuck: any replica takes it over).
macro_rules! due_where {
    () => {
        "(d.state IN ('queued', 'retrying') AND d.next_attempt_at <= $1)
            OR (d.state = 'sending' AND d.lease_until <= $1)"
    };
}

fn state_from_row(row: &PgRow) -> Result<DeliveryState> {
    let s: String = col(row, "state")?;
    DeliveryState::parse(&s).ok_or_else(|| corrupt("deliveries.state", &s))
}

fn delivery_from_row(row: &PgRow) -> Result<DeliveryInfo> {
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

/// One `queued` delivery per recipient, due `now`. Part of the caller's write (the
/// `deliveries` trigger of migration 0002 notifies every replica's outbox at its commit).
pub(super) async fn insert_deliveries(
    conn: &mut PgConnection,
    message_id: i64,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<Vec<SubmittedDelivery>> {
    let mut out = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (message_id, recipient, route, state, next_attempt_at,
                 created_at, updated_at)
             VALUES ($1, $2, $3, 'queued', $4, $4, $4) RETURNING id",
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
    store: &PgStore,
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
    // A claim is a write group, and every group of every replica waits for the audit head's
    // lock: an idle outbox polling several times a second on each replica would hold it for
    // nothing. So first look, without a transaction, whether anything is due at all; what
    // became due after this look is found by the next poll or notification.
    let any_due: bool = sqlx::query_scalar(concat!(
        "SELECT EXISTS (SELECT 1 FROM deliveries d WHERE ",
        due_where!(),
        ")"
    ))
    .bind(now)
    .fetch_one(store.pool())
    .await
    .map_err(db_err)?;
    if !any_due {
        return Ok(Vec::new());
    }
    let lease_until = now.saturating_add(lease_for_ms);
    let owner = owner.to_owned();
    let claimed: Vec<(ClaimedDelivery, String)> = store
        .write(move |conn| {
            Box::pin(async move {
                let owner = owner.as_str();
                // SKIP LOCKED: a row another transaction holds is somebody else's claim in
                // progress (or a transition of it); leave it and take the next due one. The
                // group's lock on the audit head already orders the claims of all replicas,
                // so this matters only for a writer that does not take that lock first.
                let rows = sqlx::query(concat!(
                    "SELECT d.id, d.message_id, d.recipient, d.route, d.state, d.attempts,
                d.current_attempt_id, d.lease_owner, m.kind, m.sender, m.document_id, m.size,
                m.chunked AS in_file, m.sha256,
                CASE WHEN NOT m.chunked AND m.size <= $3 THEN m.bytes END AS package,
                CASE WHEN d.state = 'sending' THEN d.lease_until ELSE d.next_attempt_at END AS due
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE ",
                    due_where!(),
                    "
         ORDER BY due, d.id LIMIT $2
         FOR UPDATE OF d SKIP LOCKED"
                ))
                .bind(now)
                .bind(i64::from(limit))
                .bind(CLAIM_WITH_BYTES as i64)
                .fetch_all(&mut *conn)
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
                        // The previous worker's lease ran out (on another replica, perhaps one
                        // that died): its attempt ends here.
                        sqlx::query(
                            "UPDATE attempts SET finished_at = $1, outcome = 'expired'
                             WHERE id = $2 AND finished_at IS NULL",
                        )
                        .bind(now)
                        .bind(expired_attempt)
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    }
                    // The attempt and the lease in one round trip.
                    let attempt_id: i64 = sqlx::query_scalar(
                        "WITH a AS (
                             INSERT INTO attempts (delivery_id, number, route, lease_owner, started_at)
                             VALUES ($1, $2, $3, $4, $5) RETURNING id)
                         UPDATE deliveries
                         SET state = 'sending', attempts = $2, lease_owner = $4, lease_until = $6,
                             current_attempt_id = (SELECT id FROM a), next_attempt_at = NULL,
                             updated_at = $5
                         WHERE id = $1
                         RETURNING current_attempt_id",
                    )
                    .bind(id)
                    .bind(i64::from(attempt))
                    .bind(&route)
                    .bind(owner)
                    .bind(now)
                    .bind(lease_until)
                    .fetch_one(&mut *conn)
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
                    audit::append(AuditEntry::new(owner, "delivery.claim", "delivery", id, &detail),
                        now,
                    )?;
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
    // group writer's task. One that does not match is not handed on: the delivery then reads
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

// ---------------------------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------------------------

/// The parts of a delivery a transition decides on.
struct Current {
    state: DeliveryState,
    current_attempt_id: Option<i64>,
    lease_owner: Option<String>,
}

async fn current(conn: &mut PgConnection, delivery_id: i64) -> Result<Current> {
    let row =
        sqlx::query("SELECT state, current_attempt_id, lease_owner FROM deliveries WHERE id = $1")
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
/// actor of the outcome). An expired lease that nobody has re-claimed is still honoured; one
/// another replica took over has a new attempt, so the old one's outcome is refused here.
pub(super) async fn check_lease(
    conn: &mut PgConnection,
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
    conn: &mut PgConnection,
    attempt_id: i64,
    outcome: AttemptOutcome,
    error: Option<&DeliveryError>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET finished_at = $1, outcome = $2, error_code = $3, error_message = $4
         WHERE id = $5",
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
    store: &PgStore,
    lease: Lease,
    receipt: Vec<u8>,
    now: i64,
) -> Result<()> {
    store
        .write(move |conn| {
            Box::pin(async move {
                // A document is delivered only with the receipt that proves it; a status package has none.
                if receipt.is_empty() {
                    let kind: String = sqlx::query_scalar(
                        "SELECT m.kind FROM deliveries d JOIN messages m ON m.id = d.message_id
                         WHERE d.id = $1",
                    )
                    .bind(lease.delivery_id)
                    .fetch_optional(&mut *conn)
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
                // hot path): the attempt is closed only if the delivery moved (`d` returned its
                // row), and its owner is the lease owner the claim recorded on both rows. When
                // nothing moved, `check_lease` says exactly why.
                let moved: Option<Option<String>> = sqlx::query_scalar(
                    "WITH d AS (
                         UPDATE deliveries
                         SET state = 'delivered', receipt = $1, delivered_at = $2,
                             lease_owner = NULL, lease_until = NULL, current_attempt_id = NULL,
                             next_attempt_at = NULL, updated_at = $2
                         WHERE id = $3 AND state = 'sending' AND current_attempt_id = $4
                         RETURNING id),
                     a AS (
                         UPDATE attempts SET finished_at = $2, outcome = $5
                         WHERE id = $4 AND EXISTS (SELECT 1 FROM d)
                         RETURNING lease_owner)
                     SELECT lease_owner FROM a",
                )
                .bind(receipt.as_deref())
                .bind(now)
                .bind(lease.delivery_id)
                .bind(lease.attempt_id)
                .bind(AttemptOutcome::Delivered.as_str())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
                let Some(owner) = moved else {
                    check_lease(&mut *conn, lease, "delivered").await?;
                    return Err(Error::store(
                        Code::InvalidTransition,
                        format!("delivery {}: not delivered", lease.delivery_id),
                    ));
                };
                let proof = ("receipt_sha256", receipt.as_deref().map(sha256_hex).into());
                audit_delivered(owner, lease, "delivery.delivered", proof, now)
            })
        })
        .await
}

/// The audit record of a `sending → delivered` move (`mark_delivered`, `mark_relayed`):
/// written by the lease owner the moving statement returned (`outbox` when the claim recorded
/// none), with what proves the delivery (`proof`: its field and value) beside the transition.
pub(super) fn audit_delivered(
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
        AuditEntry::new(owner, action, "delivery", lease.delivery_id, &detail),
        now,
    )?;
    Ok(())
}

pub(super) async fn retry_later(
    store: &PgStore,
    lease: Lease,
    error: DeliveryError,
    next_attempt_at: i64,
    now: i64,
) -> Result<()> {
    check_error(&error)?;
    store
        .write(move |conn| {
            Box::pin(async move {
                let owner = check_lease(&mut *conn, lease, "retry").await?;
                sqlx::query(
                    "UPDATE deliveries
                     SET state = 'retrying', next_attempt_at = $1, last_error_code = $2,
                         last_error_message = $3, lease_owner = NULL, lease_until = NULL,
                         current_attempt_id = NULL, updated_at = $4
                     WHERE id = $5",
                )
                .bind(next_attempt_at)
                .bind(&error.code)
                .bind(&error.message)
                .bind(now)
                .bind(lease.delivery_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                finish_attempt(
                    &mut *conn,
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
                    AuditEntry::new(
                        owner,
                        "delivery.retry",
                        "delivery",
                        lease.delivery_id,
                        &detail,
                    ),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn mark_failed(
    store: &PgStore,
    lease: Lease,
    error: DeliveryError,
    now: i64,
) -> Result<()> {
    check_error(&error)?;
    store
        .write(move |conn| {
            Box::pin(async move {
                let owner = check_lease(&mut *conn, lease, "fail").await?;
                sqlx::query(
                    "UPDATE deliveries
                     SET state = 'failed', next_attempt_at = NULL, last_error_code = $1,
                         last_error_message = $2, lease_owner = NULL, lease_until = NULL,
                         current_attempt_id = NULL, updated_at = $3
                     WHERE id = $4",
                )
                .bind(&error.code)
                .bind(&error.message)
                .bind(now)
                .bind(lease.delivery_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                finish_attempt(
                    &mut *conn,
                    lease.attempt_id,
                    AttemptOutcome::Failed,
                    Some(&error),
                    now,
                )
                .await?;
                let detail = json!({
                    "from": "sending", "to": "failed", "attempt_id": lease.attempt_id, "error": error,
                });
                audit::append(AuditEntry::new(
                        owner,
                        "delivery.fail",
                        "delivery",
                        lease.delivery_id,
                        &detail,
                    ),
                    now,
                )?;
                Ok(())
            })
        })
        .await
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
    conn: &mut PgConnection,
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
             last_error_message = $1, lease_owner = NULL, lease_until = NULL,
             current_attempt_id = NULL, updated_at = $2
         WHERE id = $3",
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
    store: &PgStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    let (reason, actor) = (reason.to_owned(), actor.to_owned());
    store
        .write(move |conn| {
            Box::pin(async move {
                let Some(from) = set_rejected(&mut *conn, delivery_id, &reason, now).await? else {
                    let cur = current(&mut *conn, delivery_id).await?;
                    return Err(refuse(
                        delivery_id,
                        cur.state,
                        "reject",
                        "queued, sending, retrying, failed or delivered",
                    ));
                };
                let detail = json!({ "from": from.as_str(), "to": "rejected", "reason": reason });
                audit::append(
                    AuditEntry::new(actor, "delivery.reject", "delivery", delivery_id, &detail),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn cancel_delivery(
    store: &PgStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    require("reason", reason)?;
    let (reason, actor) = (reason.to_owned(), actor.to_owned());
    store
        .write(move |conn| {
            Box::pin(async move {
                let cur = current(&mut *conn, delivery_id).await?;
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
                    "UPDATE deliveries SET state = 'cancelled', next_attempt_at = NULL,
                         updated_at = $1
                     WHERE id = $2",
                )
                .bind(now)
                .bind(delivery_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                let detail =
                    json!({ "from": cur.state.as_str(), "to": "cancelled", "reason": reason });
                audit::append(
                    AuditEntry::new(actor, "delivery.cancel", "delivery", delivery_id, &detail),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

pub(super) async fn operator_retry(
    store: &PgStore,
    delivery_id: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    require("actor", actor)?;
    let actor = actor.to_owned();
    store
        .write(move |conn| {
            Box::pin(async move {
                let cur = current(&mut *conn, delivery_id).await?;
                if !matches!(cur.state, DeliveryState::Failed | DeliveryState::Retrying) {
                    return Err(refuse(
                        delivery_id,
                        cur.state,
                        "retry",
                        "failed or retrying",
                    ));
                }
                sqlx::query(
                    "UPDATE deliveries SET state = 'queued', next_attempt_at = $1, retry_from = $1,
                         updated_at = $1
                     WHERE id = $2",
                )
                .bind(now)
                .bind(delivery_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                let detail = json!({ "from": cur.state.as_str(), "to": "queued" });
                audit::append(
                    AuditEntry::new(
                        actor,
                        "delivery.operator_retry",
                        "delivery",
                        delivery_id,
                        &detail,
                    ),
                    now,
                )?;
                Ok(())
            })
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Reads and metrics
// ---------------------------------------------------------------------------------------------

pub(super) async fn delivery(store: &PgStore, id: i64) -> Result<DeliveryInfo> {
    let row = sqlx::query(concat!(delivery_select!(), " WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .map_err(db_err)?
        .ok_or_else(|| not_found(format!("no delivery {id} on this node")))?;
    delivery_from_row(&row)
}

pub(super) async fn delivery_receipt(store: &PgStore, id: i64) -> Result<Option<Vec<u8>>> {
    let row: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT receipt FROM deliveries WHERE id = $1")
            .bind(id)
            .fetch_optional(store.pool())
            .await
            .map_err(db_err)?;
    row.map(|(r,)| r)
        .ok_or_else(|| not_found(format!("no delivery {id} on this node")))
}

/// The deliveries of each message in `ids`, in id order.
pub(super) async fn for_messages(
    pool: &PgPool,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<DeliveryInfo>>> {
    let mut out: HashMap<i64, Vec<DeliveryInfo>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query(concat!(
        delivery_select!(),
        " WHERE d.message_id = ANY($1::BIGINT[]) ORDER BY d.id"
    ))
    .bind(ids)
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
    store: &PgStore,
    f: &DeliveryFilter,
) -> Result<Vec<DeliveryInfo>> {
    check_page(&f.page)?;
    // Only the predicates asked for, so the planner can pick the index that serves them
    // (`deliveries_state`, `deliveries_recipient`) instead of filtering every row by id.
    let states = f.wanted_states();
    let limit = i64::from(f.page.limit);
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new("");
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
    let rows = q.build().fetch_all(store.pool()).await.map_err(db_err)?;
    rows.iter().map(delivery_from_row).collect()
}

/// How many deliveries `f` matches (its page's `before` included, its `limit` not), counting
/// no further than `at_most`: a page says "more than 10 000" without counting millions.
pub(super) async fn count_deliveries(
    store: &PgStore,
    f: &DeliveryFilter,
    at_most: u32,
) -> Result<u64> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "SELECT count(*) FROM (SELECT 1 FROM deliveries d",
    );
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
        .fetch_one(store.pool())
        .await
        .map_err(db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The `WHERE` of [`list_deliveries`] and [`count_deliveries`].
/// `states`: `None` for any state, else any of these (none: nothing matches).
fn push_delivery_filter(
    q: &mut sqlx::QueryBuilder<sqlx::Postgres>,
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

pub(super) async fn attempts(store: &PgStore, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
    // One snapshot for the existence check and the rows.
    let mut tx = store.pool().begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = $1")
        .bind(delivery_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if exists.is_none() {
        return Err(not_found(format!("no delivery {delivery_id} on this node")));
    }
    let rows = sqlx::query(
        "SELECT id, delivery_id, number, route, lease_owner, started_at, finished_at, outcome,
                error_code, error_message, reply
         FROM attempts WHERE delivery_id = $1 ORDER BY id",
    )
    .bind(delivery_id)
    .fetch_all(&mut *tx)
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

pub(super) async fn delivery_counts(store: &PgStore) -> Result<BTreeMap<DeliveryState, u64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM deliveries GROUP BY state")
            .fetch_all(store.pool())
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

pub(super) async fn oldest_pending_age(store: &PgStore, now: i64) -> Result<Option<i64>> {
    let oldest: Option<i64> = sqlx::query_scalar(
        "SELECT min(created_at) FROM deliveries WHERE state IN ('queued', 'sending', 'retrying')",
    )
    .fetch_one(store.pool())
    .await
    .map_err(db_err)?;
    Ok(oldest.map(|t| now.saturating_sub(t).max(0)))
}

// ---------------------------------------------------------------------------------------------
// LISTEN: waking the outbox when any replica queues a delivery
// ---------------------------------------------------------------------------------------------

/// First wait before connecting again after the listener lost its connection.
const LISTEN_RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between reconnection attempts.
const LISTEN_RETRY_MAX: Duration = Duration::from_secs(10);
/// After this long without a notification the listener checks that its connection still
/// answers: a server that vanished without closing the TCP connection (a machine powered off,
/// a partition) would otherwise leave it waiting for ever on a dead socket.
const LISTEN_HEARTBEAT: Duration = Duration::from_secs(60);
/// How long that check may take before the connection is given up as dead.
const LISTEN_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Listens on [`QUEUE_CHANNEL`] and wakes the outbox (`wake.notify_one()`) on every
/// notification: the `deliveries` trigger (migration 0002) sends one at the commit of every
/// transaction that left a delivery queued or retrying, on whichever replica. Runs for the
/// life of the store, holding one connection of the pool; it ends when the pool is closed.
///
/// When the server goes away (restart, failover) the listener connects again with backoff
/// ([`LISTEN_RETRY_FIRST`] doubling up to [`LISTEN_RETRY_MAX`]), saying so once per outage
/// rather than once per attempt, and once more when it listens again. After each
/// (re)connection it wakes the outbox once: notifications sent while nobody listened are lost,
/// so the outbox looks for itself. The outbox's poll covers what a notification cannot (a
/// retry whose time came, an expired lease) and the outages.
pub(super) fn spawn_queue_listener(pool: PgPool, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = LISTEN_RETRY_FIRST;
        // Since when the listener has been down, if it is (the outage was logged then).
        let mut down: Option<std::time::Instant> = None;
        loop {
            let ended = listen(&pool, &wake, || {
                if let Some(since) = down.take() {
                    tracing::info!(
                        down_for_ms = since.elapsed().as_millis() as u64,
                        "the outbox listens for queued deliveries again"
                    );
                }
                delay = LISTEN_RETRY_FIRST;
            })
            .await;
            match ended {
                // The pool was closed: the store is going away, and so does its listener.
                Ok(()) => return,
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    if down.is_none() {
                        tracing::warn!(
                            error = %e,
                            "the outbox's LISTEN connection to the store is down; reconnecting \
                             with backoff (meanwhile the outbox polls)"
                        );
                        down = Some(std::time::Instant::now());
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(LISTEN_RETRY_MAX);
        }
    })
}

/// One connection's life: `LISTEN`, `listening()` once it listens, then a wake per
/// notification. `Ok(())` only when the pool was closed; `Err` when the connection could not
/// be made or was lost (the caller reconnects).
async fn listen(
    pool: &PgPool,
    wake: &Notify,
    listening: impl FnOnce(),
) -> std::result::Result<(), String> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(sqlx::Error::PoolClosed) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    // A lost connection is reported to us (`Ok(None)`) rather than replaced behind our back, so
    // that the backoff and the log line are ours.
    listener.eager_reconnect(false);
    listener
        .listen(QUEUE_CHANNEL)
        .await
        .map_err(|e| e.to_string())?;
    listening();
    // Whatever was queued while nobody listened.
    wake.notify_one();
    loop {
        // `try_recv` is cancel-safe: a timeout loses no notification.
        match tokio::time::timeout(LISTEN_HEARTBEAT, listener.try_recv()).await {
            Ok(Ok(Some(_))) => wake.notify_one(),
            Ok(Ok(None)) => return Err("the connection was closed".into()),
            Ok(Err(sqlx::Error::PoolClosed)) => return Ok(()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                let check = sqlx::query("SELECT 1").execute(&mut listener);
                match tokio::time::timeout(LISTEN_HEARTBEAT_TIMEOUT, check).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => {
                        return Err(format!(
                            "no answer within {LISTEN_HEARTBEAT_TIMEOUT:?} on an idle connection"
                        ));
                    }
                }
            }
        }
    }
}

/// Takes back the leases of dead replicas: every delivery `sending` under a lease whose owner
/// `is_dead` says is gone becomes `retrying`, due `now`, its attempt ended `expired`, with a
/// `delivery.retry` record (`lease_taken_back`) — as the SQLite store does at start, but only
/// for owners known to be dead: on a shared database other owners may be live replicas, whose
/// leases expire on their own if they are not. Returns how many were taken back.
pub(super) async fn take_back_leases(
    store: &PgStore,
    is_dead: impl Fn(&str) -> bool,
    actor: &str,
    now: i64,
) -> Result<u64> {
    require("actor", actor)?;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT lease_owner FROM deliveries
         WHERE state = 'sending' AND lease_owner IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await
    .map_err(db_err)?;
    let dead: Vec<String> = owners.into_iter().filter(|o| is_dead(o)).collect();
    if dead.is_empty() {
        return Ok(0);
    }
    let actor = actor.to_owned();
    store
        .write(move |conn| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT id, current_attempt_id, lease_owner, lease_until FROM deliveries
                     WHERE state = 'sending' AND lease_owner = ANY($1) ORDER BY id FOR UPDATE",
                )
                .bind(&dead)
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?;
                for row in &rows {
                    let id: i64 = col(row, "id")?;
                    let attempt: Option<i64> = col(row, "current_attempt_id")?;
                    let owner: Option<String> = col(row, "lease_owner")?;
                    let until: Option<i64> = col(row, "lease_until")?;
                    sqlx::query(
                        "UPDATE attempts SET finished_at = $1, outcome = 'expired'
                         WHERE id = $2 AND finished_at IS NULL",
                    )
                    .bind(now)
                    .bind(attempt)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    sqlx::query(
                        "UPDATE deliveries
                         SET state = 'retrying', next_attempt_at = $1, lease_owner = NULL,
                             lease_until = NULL, current_attempt_id = NULL, updated_at = $1
                         WHERE id = $2 AND state = 'sending'",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    let detail = json!({
                        "from": "sending", "to": "retrying", "attempt_id": attempt,
                        "next_attempt_at": now, "lease_taken_back": true,
                        "expired_lease_owner": owner, "expired_lease_until": until,
                    });
                    audit::append(
                        AuditEntry::new(actor.as_str(), "delivery.retry", "delivery", id, &detail),
                        now,
                    )?;
                }
                Ok(rows.len() as u64)
            })
        })
        .await
}
