//! Processing statuses (see the SQLite store's `statuses.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn record_status(
    store: &PgStore,
    new: NewStatus,
    now: i64,
) -> Result<StatusOutcome> {
    Err(Error::internal(
        "postgres store",
        "statuses::record_status: not yet ported",
    ))
}

pub(super) async fn status_history(
    store: &PgStore,
    agency: &str,
    message_id: i64,
) -> Result<Vec<StatusRecord>> {
    Err(Error::internal(
        "postgres store",
        "statuses::status_history: not yet ported",
    ))
}
