//! The số sequences per agency and year (see the SQLite store's `numbering.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn last_number(store: &PgStore, agency: &str, year: i32) -> Result<u32> {
    Err(Error::internal(
        "postgres store",
        "numbering::last_number: not yet ported",
    ))
}
