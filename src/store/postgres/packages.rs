//! Packages in the database: inline below `CHUNK` bytes, in `package_chunks` rows above, and this replica's local cache of large ones for streaming.
//!
//! PORT IN PROGRESS: every function below is replaced by the PostgreSQL port of its SQLite
//! counterpart before this module is merged.
#![allow(unused_variables, unused_imports, dead_code)]
use super::PgStore;
use crate::error::{Error, Result};
use crate::store::*;
use std::collections::BTreeMap;

pub(super) async fn message_bytes(store: &PgStore, id: i64) -> Result<Vec<u8>> {
    Err(Error::internal(
        "postgres store",
        "packages::message_bytes: not yet ported",
    ))
}

pub(super) async fn message_file(store: &PgStore, id: i64) -> Result<Option<PackageFile>> {
    Err(Error::internal(
        "postgres store",
        "packages::message_file: not yet ported",
    ))
}

/// This replica's folder of local copies of large packages (see the module's doc).
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    dir: std::path::PathBuf,
}

impl Cache {
    pub(crate) fn new(dir: Option<std::path::PathBuf>) -> Result<Cache> {
        let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("lienthong-package-cache"));
        Ok(Cache { dir })
    }
}
