//! `audit verify` over the PostgreSQL store: the chain, then every row against it, in one snapshot.
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn verify(store: &PgStore) -> Result<StoreVerdict> {
    Err(Error::internal(
        "postgres store",
        "crosscheck::verify: not yet ported",
    ))
}
