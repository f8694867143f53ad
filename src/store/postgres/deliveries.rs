//! The outbox queue: claims with `FOR UPDATE SKIP LOCKED` and leases, transitions, lists, and the `LISTEN` that wakes the outbox (see the SQLite store's `deliveries.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn claim_due(
    store: &PgStore,
    now: i64,
    limit: u32,
    lease_owner: &str,
    lease_for_ms: i64,
) -> Result<Vec<ClaimedDelivery>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::claim_due: not yet ported",
    ))
}

pub(super) async fn mark_delivered(
    store: &PgStore,
    lease: Lease,
    receipt: Vec<u8>,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::mark_delivered: not yet ported",
    ))
}

pub(super) async fn retry_later(
    store: &PgStore,
    lease: Lease,
    error: DeliveryError,
    next_attempt_at: i64,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::retry_later: not yet ported",
    ))
}

pub(super) async fn mark_failed(
    store: &PgStore,
    lease: Lease,
    error: DeliveryError,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::mark_failed: not yet ported",
    ))
}

pub(super) async fn reject_delivery(
    store: &PgStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::reject_delivery: not yet ported",
    ))
}

pub(super) async fn cancel_delivery(
    store: &PgStore,
    delivery_id: i64,
    reason: &str,
    actor: &str,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::cancel_delivery: not yet ported",
    ))
}

pub(super) async fn operator_retry(
    store: &PgStore,
    delivery_id: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "deliveries::operator_retry: not yet ported",
    ))
}

pub(super) async fn delivery(store: &PgStore, id: i64) -> Result<DeliveryInfo> {
    Err(Error::internal(
        "postgres store",
        "deliveries::delivery: not yet ported",
    ))
}

pub(super) async fn delivery_receipt(store: &PgStore, id: i64) -> Result<Option<Vec<u8>>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::delivery_receipt: not yet ported",
    ))
}

pub(super) async fn list_deliveries(
    store: &PgStore,
    filter: &DeliveryFilter,
) -> Result<Vec<DeliveryInfo>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::list_deliveries: not yet ported",
    ))
}

pub(super) async fn attempts(store: &PgStore, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::attempts: not yet ported",
    ))
}

pub(super) async fn delivery_counts(store: &PgStore) -> Result<BTreeMap<DeliveryState, u64>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::delivery_counts: not yet ported",
    ))
}

pub(super) async fn oldest_pending_age(store: &PgStore, now: i64) -> Result<Option<i64>> {
    Err(Error::internal(
        "postgres store",
        "deliveries::oldest_pending_age: not yet ported",
    ))
}

/// Listens on `QUEUE_CHANNEL` and wakes the outbox on every notification.
pub(super) fn spawn_queue_listener(
    pool: sqlx::PgPool,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = (pool, wake);
    })
}
