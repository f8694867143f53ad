//! A fresh store for a test, on the backend the test run names.
//!
//! `LIENTHONG_TEST_BACKEND` picks it: `sqlite` (the default) or `postgres`. For PostgreSQL,
//! `LIENTHONG_TEST_POSTGRES` is an administrator's URL (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`, which `scripts/test.sh` sets when PostgreSQL
//! answers there); every store is a new database `lt_t_<pid>_<counter>_<random>` on that server,
//! so tests running at once never see each other's rows. The databases are not dropped by the
//! tests (a failed test's database is worth looking at); `scripts/test.sh` drops every `lt_t_%`
//! database before it runs.
//!
//! Backend asked for but not configured (`postgres` without `LIENTHONG_TEST_POSTGRES`) is a
//! misconfigured run and panics; a PostgreSQL-only test on a run without PostgreSQL calls
//! [`postgres_url_or_skip`], which says loudly that it was skipped (on stderr and in
//! `target/skipped-postgres.txt`, printed as a banner at the end of `scripts/test.sh`).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use lienthong::store::{AnyStore, PgOptions, PgStore, SqliteStore};
use sqlx::Connection as _;

/// The environment variable naming the backend of the run.
pub const BACKEND_VAR: &str = "LIENTHONG_TEST_BACKEND";
/// The environment variable holding the PostgreSQL administrator's URL.
pub const POSTGRES_VAR: &str = "LIENTHONG_TEST_POSTGRES";

/// The backend this test run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// The backend `LIENTHONG_TEST_BACKEND` names (`sqlite` when unset or empty). Anything else
/// panics: a typo must not silently test SQLite again.
pub fn backend() -> TestBackend {
    match std::env::var(BACKEND_VAR).unwrap_or_default().as_str() {
        "" | "sqlite" => TestBackend::Sqlite,
        "postgres" | "postgresql" => TestBackend::Postgres,
        other => panic!("{BACKEND_VAR}={other:?}: expected `sqlite` or `postgres`"),
    }
}

/// True when this run tests PostgreSQL.
pub fn is_postgres() -> bool {
    backend() == TestBackend::Postgres
}

/// The administrator's URL of the PostgreSQL run; panics when it is not set (a run asked for
/// PostgreSQL without saying where it is).
fn admin_url() -> String {
    match std::env::var(POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "\n\n*** {BACKEND_VAR}=postgres but {POSTGRES_VAR} is not set: \
             set it to an administrator's URL, e.g. postgres://postgres@127.0.0.1:5432/test \
             (scripts/test.sh does when PostgreSQL answers on 127.0.0.1:5432) ***\n\n"
        ),
    }
}

/// A store of the run's backend, empty and migrated. SQLite: a private in-memory database
/// (every package a BLOB); PostgreSQL: a new database. Use [`fresh_db`] when the test needs the
/// URL (to reopen it, or for a spawned process) or SQLite's package files.
pub async fn fresh() -> AnyStore {
    match backend() {
        TestBackend::Sqlite => AnyStore::Sqlite(
            SqliteStore::open("sqlite::memory:")
                .await
                .expect("opening an in-memory SQLite store"),
        ),
        TestBackend::Postgres => open_postgres(&new_postgres_database().await).await,
    }
}

/// A store with its URL and what keeps it alive: the SQLite file's folder (dropped with it).
pub struct TestDb {
    pub store: AnyStore,
    /// The store's URL: reopen it with `AnyStore::open(&db.url)`.
    pub url: String,
    /// The SQLite database's folder; `None` on PostgreSQL.
    pub dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestDb {
    type Target = AnyStore;
    fn deref(&self) -> &AnyStore {
        &self.store
    }
}

/// A file-backed store of the run's backend: SQLite `node.db` in a new temporary folder
/// (packages of the file threshold or more in files beside it), or a new PostgreSQL database.
pub async fn fresh_db() -> TestDb {
    let url = fresh_url();
    let store = open(&url.url).await;
    TestDb {
        store,
        url: url.url,
        dir: url.dir,
    }
}

/// The URL of a new, empty store and the folder that keeps a SQLite one alive.
pub struct TestUrl {
    pub url: String,
    pub dir: Option<tempfile::TempDir>,
}

/// The URL of a new store of the run's backend, not opened yet: for a node's configuration
/// (`store = …`), a spawned `lienthong serve`, or a test that opens it itself. SQLite:
/// `sqlite://<tmp>/node.db?mode=rwc`; PostgreSQL: a new (empty, unmigrated) database.
///
/// Synchronous so that it can fill a configuration written before a runtime exists; on
/// PostgreSQL it creates the database on a thread of its own.
pub fn fresh_url() -> TestUrl {
    match backend() {
        TestBackend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            TestUrl {
                url: sqlite_url_in(dir.path()),
                dir: Some(dir),
            }
        }
        TestBackend::Postgres => TestUrl {
            url: block_on_own_thread(new_postgres_database()),
            dir: None,
        },
    }
}

/// The URL of a store in `dir` on the run's backend: SQLite `dir/node.db` (created when
/// opened), or a new PostgreSQL database (`dir` then unused). For tests that already have a
/// folder for the node's other files.
pub fn store_url_in(dir: &std::path::Path) -> String {
    match backend() {
        TestBackend::Sqlite => sqlite_url_in(dir),
        TestBackend::Postgres => block_on_own_thread(new_postgres_database()),
    }
}

/// The store of an in-process node built from `config`: on SQLite the one its `node.store`
/// names (the test's folder); on PostgreSQL the database it names, or, when it names a SQLite
/// file, a new database whose URL then replaces `node.store` — so that reopening
/// `config.node.store` finds the same store on both.
pub async fn node_store(config: &mut lienthong::config::Config) -> AnyStore {
    if is_postgres() && !config.node.store.starts_with("postgres") {
        config.node.store = new_postgres_database().await;
    }
    open(&config.node.store).await
}

/// `sqlite://dir/node.db?mode=rwc`.
pub fn sqlite_url_in(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("node.db").display())
}

/// Opens `url` (either backend); on PostgreSQL with a small pool, so that tests running at once
/// stay within the server's `max_connections`.
pub async fn open(url: &str) -> AnyStore {
    if url.starts_with("postgres") {
        open_postgres(url).await
    } else {
        AnyStore::open(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }
}

async fn open_postgres(url: &str) -> AnyStore {
    let options = PgOptions {
        max_connections: 4,
        ..PgOptions::default()
    };
    AnyStore::Postgres(
        PgStore::open_with(url, &options)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}")),
    )
}

/// For tests of SQLite's own things that run a node on the run's backend (package files beside
/// the database): false, said on stderr, on a PostgreSQL run. Such tests are named `sqlite_…`
/// and `scripts/test.sh` skips them on its PostgreSQL run.
pub fn sqlite_only(test: &str) -> bool {
    if is_postgres() {
        eprintln!("{test}: tests SQLite's own storage; not run on PostgreSQL");
        return false;
    }
    true
}

/// For PostgreSQL-only tests: the administrator's URL, or `None` after saying loudly that
/// `test` was skipped (stderr, and a line in `target/skipped-postgres.txt` that
/// `scripts/test.sh` prints at the end).
pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let line = format!("SKIPPED (no PostgreSQL): {test} — set {POSTGRES_VAR}");
            eprintln!("\n*** {line} ***\n");
            let path = skipped_file();
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
            {
                let _ = writeln!(f, "{line}");
            }
            None
        }
    }
}

/// For PostgreSQL-only tests: the URL of a new database, or `None` (said loudly) without
/// PostgreSQL.
pub async fn postgres_db_or_skip(test: &str) -> Option<String> {
    postgres_url_or_skip(test)?;
    Some(new_postgres_database().await)
}

/// `target/skipped-postgres.txt` (under `CARGO_TARGET_DIR` when set).
pub fn skipped_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("skipped-postgres.txt")
}

/// Creates a new database `lt_t_<pid>_<counter>_<random>` on the run's server and returns its
/// URL (the administrator's URL with the database replaced).
pub async fn new_postgres_database() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let name = format!(
        "lt_t_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to {POSTGRES_VAR} ({admin}): {e}"));
    // CREATE DATABASE copies template1 and fails while another session is connected to it
    // ("source database is being accessed by other users"): a moment later it succeeds.
    let mut tries = 0;
    loop {
        // The name is ours: lt_t_, digits and hex.
        let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""));
        match sqlx::query(create).execute(&mut conn).await {
            Ok(_) => break,
            Err(e) if tries < 20 && e.to_string().contains("being accessed by other users") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("CREATE DATABASE {name} on {admin}: {e}"),
        }
    }
    let _ = conn.close().await;
    with_database(&admin, &name)
}

/// `url` with its database (the path) replaced by `name`, its query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// Runs `f` to completion on a runtime of its own on a new thread: callable from synchronous
/// code and from inside another runtime alike.
fn block_on_own_thread<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A connection pool of the test's own on a store's database, for what the store's API does
/// not show (counting rows, a trigger that makes a write fail half-way, tampering). Write its
/// SQL with `$1`, `$2`… binds: SQLite reads them as PostgreSQL does.
#[derive(Debug, Clone)]
pub enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    /// A pool on the database at `url` (a file-backed SQLite or a PostgreSQL one; an
    /// in-memory SQLite database cannot be shared).
    pub async fn connect(url: &str) -> Raw {
        if url.starts_with("postgres") {
            Raw::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
            )
        } else {
            Raw::Sqlite(
                sqlx::SqlitePool::connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
            )
        }
    }

    /// [`connect`](Self::connect) on one connection that enforces no foreign keys (someone
    /// with the database need not): SQLite's `foreign_keys` off; on PostgreSQL
    /// `session_replication_role = replica`, which also leaves the tables' triggers unfired.
    pub async fn connect_unchecked(url: &str) -> Raw {
        use std::str::FromStr as _;
        if url.starts_with("postgres") {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .options([("session_replication_role", "replica")]);
            Raw::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
            )
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .foreign_keys(false);
            Raw::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {url}: {e}")),
            )
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Raw::Postgres(_))
    }

    /// `SELECT count(*) FROM <table>` (the table name is the test's own constant).
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM {table}")).await
    }

    /// The one integer `sql` (no binds) answers.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `sql` (one or more statements, no binds); the rows it changed.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(p) => sqlx::raw_sql(sql)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(p) => sqlx::raw_sql(sql)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
    }

    pub async fn close(&self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}

/// `$body` with `$pool` bound to the pool of whichever backend `$raw` holds: a query with binds
/// and typed rows, written once (`$1` binds), compiled for both.
#[macro_export]
macro_rules! on_raw {
    ($raw:expr, $pool:ident => $body:expr) => {
        match $raw {
            $crate::common::store::Raw::Sqlite($pool) => $body,
            $crate::common::store::Raw::Postgres($pool) => $body,
        }
    };
}
