//! The agency registry (see the SQLite store's `registry.rs`).
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn list(store: &PgStore) -> Result<Vec<RegistryEntry>> {
    Err(Error::internal(
        "postgres store",
        "registry::list: not yet ported",
    ))
}

pub(super) async fn entry(store: &PgStore, code: &str) -> Result<Option<RegistryEntry>> {
    Err(Error::internal(
        "postgres store",
        "registry::entry: not yet ported",
    ))
}

pub(super) async fn binding(store: &PgStore, code: &str, sha256: &str) -> Result<RegistryBinding> {
    Err(Error::internal(
        "postgres store",
        "registry::binding: not yet ported",
    ))
}

pub(super) async fn set(
    store: &PgStore,
    entry: NewRegistryEntry,
    actor: &str,
    now: i64,
) -> Result<(RegistryEntry, bool)> {
    Err(Error::internal(
        "postgres store",
        "registry::set: not yet ported",
    ))
}

pub(super) async fn remove(store: &PgStore, code: &str, actor: &str, now: i64) -> Result<()> {
    Err(Error::internal(
        "postgres store",
        "registry::remove: not yet ported",
    ))
}

pub(super) async fn import(
    store: &PgStore,
    entries: Vec<NewRegistryEntry>,
    replace_all: bool,
    actor: &str,
    now: i64,
) -> Result<ImportOutcome> {
    Err(Error::internal(
        "postgres store",
        "registry::import: not yet ported",
    ))
}
