//! The bench's own PostgreSQL database: `--store postgres://USER@HOST/DB` names a server and
//! a database that exists there (DB, used only to create and drop the run's); each run gets a
//! fresh `lienthong_bench_<pid>_<random>` so its figures never include an earlier run's rows,
//! and drops it when done (unless `--dir` keeps the run).

use std::str::FromStr;

use lienthong::Error;
use lienthong::store::Backend;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use super::fail;

pub struct BenchDatabase {
    /// The URL the sender's replicas are given.
    pub url: String,
    /// The URL it was created through.
    admin: String,
    name: String,
}

impl BenchDatabase {
    pub async fn create(admin: &str) -> Result<BenchDatabase, Error> {
        let shown = Backend::shown(admin);
        let options =
            PgConnectOptions::from_str(admin).map_err(|e| fail(format!("--store {shown}: {e}")))?;
        let name = format!(
            "lienthong_bench_{}_{:08x}",
            std::process::id(),
            fastrand::u32(..)
        );
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| fail(format!("--store {shown}: {e}")))?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| fail(format!("--store {shown}: creating the run's database: {e}")))?;
        let _ = conn.close().await;
        eprintln!("the sender's store: database {name} on {shown}");
        Ok(BenchDatabase {
            url: with_database(admin, &name),
            admin: admin.to_owned(),
            name,
        })
    }

    /// Drops the run's database (its nodes have stopped; `WITH (FORCE)` ends any connection
    /// a killed node left behind). Best effort: a failure is said, not fatal.
    pub async fn drop_database(self) {
        let dropped = async {
            let mut conn = PgConnection::connect(&self.admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await?;
            conn.close().await
        }
        .await;
        if let Err(e) = dropped {
            eprintln!("could not drop the bench database {}: {e}", self.name);
        }
    }
}

/// `url` with its database (the path) replaced by `name`, its query kept.
fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let after = &rest[authority_end..];
    let query = after.find('?').map_or("", |q| &after[q..]);
    format!(
        "{}{}/{name}{query}",
        &url[..scheme_end],
        &rest[..authority_end]
    )
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/test", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
