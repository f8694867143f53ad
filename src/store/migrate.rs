//! `lienthong migrate`: the schema of a store brought up to this build's, saying what was done.
//!
//! Both stores apply their pending migrations when they open (`migrations/sqlite/`,
//! `migrations/postgres/`; sqlx records each in `_sqlx_migrations` and, on PostgreSQL, takes an
//! advisory lock so replicas starting together apply them once). This is the same opening, done
//! on its own so an operator can migrate before starting the new version (or before
//! `store copy`), with the list of what was applied read from `_sqlx_migrations` before and
//! after.

use std::str::FromStr;

use sqlx::Row;

use super::{AnyStore, Backend, StoreOptions};
use crate::error::{Code, Error, Result};

/// One migration: its version and description (`0005`, `package files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub description: String,
}

/// The migrations this build carries for `backend`, oldest first.
pub fn known(backend: Backend) -> Vec<Migration> {
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
    let migrator = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| Migration {
            version: m.version,
            description: m.description.to_string(),
        })
        .collect()
}

/// The migrations the store at `url` has applied, oldest first; none for a SQLite file that
/// does not exist yet (nothing is created here).
pub async fn applied(url: &str) -> Result<Vec<Migration>> {
    let shown = Backend::shown(url);
    let unavailable =
        |e: sqlx::Error| Error::store(Code::StoreUnavailable, format!("{shown}: {e}"));
    const APPLIED: &str =
        "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version";
    let rows = match Backend::of(url)? {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::store(Code::ValueInvalid, format!("store URL {url:?}: {e}")))?
                .read_only(true)
                .create_if_missing(false);
            if !options.get_filename().exists() {
                return Ok(Vec::new());
            }
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            let exists: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&pool)
            .await
            .map_err(unavailable)?;
            let rows = if exists > 0 {
                sqlx::query(APPLIED)
                    .fetch_all(&pool)
                    .await
                    .map_err(unavailable)?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<std::result::Result<Vec<(i64, String)>, sqlx::Error>>()
                    .map_err(unavailable)?
            } else {
                Vec::new()
            };
            pool.close().await;
            rows
        }
        Backend::Postgres => {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .map_err(|e| Error::store(Code::ValueInvalid, format!("store URL {shown}: {e}")))?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unavailable)?;
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&pool)
                    .await
                    .map_err(unavailable)?;
            let rows = if exists {
                sqlx::query(APPLIED)
                    .fetch_all(&pool)
                    .await
                    .map_err(unavailable)?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<std::result::Result<Vec<(i64, String)>, sqlx::Error>>()
                    .map_err(unavailable)?
            } else {
                Vec::new()
            };
            pool.close().await;
            rows
        }
    };
    Ok(rows
        .into_iter()
        .map(|(version, description)| Migration {
            version,
            description,
        })
        .collect())
}

/// What [`migrate`] found and did.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// Applied before this run.
    pub before: Vec<Migration>,
    /// Applied by this run, oldest first (empty: the store was up to date).
    pub applied: Vec<Migration>,
}

/// Applies the pending migrations of the store at `url` (creating a SQLite file that does not
/// exist, as the node does on its first start) and says which were applied.
pub async fn migrate(url: &str, options: &StoreOptions) -> Result<Migrated> {
    let before = applied(url).await?;
    let store = AnyStore::open_with(url, options).await?;
    store.close().await;
    let after = applied(url).await?;
    let applied = after
        .into_iter()
        .filter(|m| !before.iter().any(|b| b.version == m.version))
        .collect();
    Ok(Migrated { before, applied })
}

/// `Ok` when the store at `url` has applied every migration this build carries (what
/// `store copy` needs of its source, which it never changes); otherwise `STORE_UNAVAILABLE`
/// naming the first pending one and the command that applies it.
pub async fn require_current(url: &str) -> Result<()> {
    let done = applied(url).await?;
    let backend = Backend::of(url)?;
    match known(backend)
        .into_iter()
        .find(|k| !done.iter().any(|d| d.version == k.version))
    {
        None => Ok(()),
        Some(m) => Err(Error::store(
            Code::StoreUnavailable,
            format!(
                "{} lacks migration {:04} ({}): run `lienthong migrate --store …` on it first",
                Backend::shown(url),
                m.version,
                m.description
            ),
        )),
    }
}
