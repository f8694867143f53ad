//! Revocation evidence stored with received messages.
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn list(store: &PgStore, message_id: i64) -> Result<Vec<RevocationEvidence>> {
    Err(Error::internal(
        "postgres store",
        "revocation::list: not yet ported",
    ))
}
