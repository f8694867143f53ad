//! The harness of the PostgreSQL acceptance tests of issue 17 (`pg_replicas.rs`,
//! `pg_failover.rs`): real `lienthong serve` processes killed with SIGKILL, a database of the
//! test's own on the shared server (`LIENTHONG_TEST_POSTGRES`), and a primary with a synchronous
//! standby built with PostgreSQL's own tools (`initdb`, `pg_basebackup`) in a temporary folder.
//!
//! Included by those tests as `#[path = "common/pg_cluster.rs"] mod pg_cluster;` beside
//! `mod common;` (so that `common/mod.rs`, shared by every test, is not touched). Timing here
//! only bounds waits (deadlines); it decides no assertion.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::nodes::node_table;

/// How long a node or a PostgreSQL server may take to start.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

// --- the shared server ------------------------------------------------------------------------

/// `LIENTHONG_TEST_POSTGRES` (an administrator URL of a server the tests may create databases
/// on), or `None` after saying loudly that `test` is skipped.
pub fn test_postgres(test: &str) -> Option<String> {
    match std::env::var("LIENTHONG_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            eprintln!(
                "\n*** SKIPPED {test}: LIENTHONG_TEST_POSTGRES is unset (set it to a PostgreSQL \
                 URL, e.g. postgres://postgres@127.0.0.1:5432/test, to run it) ***\n"
            );
            None
        }
    }
}

/// `url` with its database (the path) replaced by `db`; the query string is kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // postgres://user@host:port/db: the path starts at the first '/' after the scheme's "//".
    let authority_at = base.find("//").map_or(0, |i| i + 2);
    let path_at = base[authority_at..]
        .find('/')
        .map_or(base.len(), |i| authority_at + i);
    let mut out = format!("{}/{db}", &base[..path_at]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database this test created on the shared server (named `lt_<what>_<random>`), dropped when
/// the value is dropped unless the test failed (then kept, and named, for a post-mortem).
pub struct TempDatabase {
    pub url: String,
    pub name: String,
    admin: String,
}

impl TempDatabase {
    pub async fn create(admin: &str, what: &str) -> TempDatabase {
        let name = format!("lt_{what}_{:016x}", fastrand::u64(..));
        let pool = connect(admin).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin}: {e}"));
        pool.close().await;
        TempDatabase {
            url: with_database(admin, &name),
            name,
            admin: admin.to_owned(),
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the database {} for a post-mortem", self.name);
            return;
        }
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Its own thread and runtime: the drop may happen inside the test's runtime.
        let _ = std::thread::spawn(move || {
            runtime().block_on(async {
                let pool = connect(&admin).await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&pool)
                .await;
                pool.close().await;
            })
        })
        .join();
    }
}

/// A small pool on `url` (panics naming the URL when the server cannot be reached).
pub async fn connect(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(20))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// `SELECT count(*) …` (or any one BIGINT) on `pool`.
pub async fn scalar(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// --- node processes ----------------------------------------------------------------------------

/// A `lienthong serve` process of the configuration `config`, its stdout and stderr appended to
/// `log` across restarts.
pub struct NodeProc {
    pub name: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    /// How many times [`NodeProc::start`] ran.
    pub starts: usize,
}

impl NodeProc {
    pub fn new(dir: &Path, name: &str, config: PathBuf) -> NodeProc {
        NodeProc {
            name: name.to_owned(),
            config,
            log: dir.join(format!("{name}.log")),
            child: None,
            starts: 0,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log, for a failure message.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the node and returns once it says `listening on` (it opened its store and
    /// bound both listeners), or panics with its log after [`START_DEADLINE`].
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // Counted before the spawn, so the new process's line is the one waited for.
        let before = self.log_text().matches("listening on").count();
        let child = Command::new(env!("CARGO_BIN_EXE_lienthong"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env_remove("LIENTHONG_FAIL_AT")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let start = Instant::now();
        while self.log_text().matches("listening on").count() <= before {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.child = None;
                panic!(
                    "{} exited at start ({status}):\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "{} did not start:\n{}",
                self.name,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// SIGTERM (the operator's `systemctl restart`), then SIGKILL if it has not stopped within
    /// `grace`. True if it stopped by itself.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < grace {
            if c.try_wait().ok().flatten().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Rewrites the configuration's `store = "…"` line to `store` (the next start uses it).
    pub fn set_store(&self, store: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("store = ") {
                    format!("store = \"{store}\"")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&self.config, text.join("\n") + "\n").unwrap();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes `dir/<file>.toml`: the node `name` listening on loopback `port` (its peer endpoint on
/// [`crate::common::nodes::peer_addr_for`] that port), its store `store`, quick retries (50 ms
/// to 500 ms, no breaker to speak of), `(push_timeout, lease)` as given, then `body`
/// (agencies, tokens, peers).
pub fn write_config(
    dir: &Path,
    file: &str,
    name: &str,
    port: u16,
    store: &str,
    (push_timeout, lease): (&str, &str),
    body: &str,
) -> PathBuf {
    let p = dir.join(format!("{file}.toml"));
    let text = node_table(name, &format!("127.0.0.1:{port}"), store)
        + &format!(
            "[retry]\ninitial_backoff = \"50ms\"\nmax_backoff = \"500ms\"\n\
             breaker_failures = 100000\npush_timeout = \"{push_timeout}\"\nlease = \"{lease}\"\n"
        )
        + body;
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `lienthong audit verify --store <url>`: (success, stdout and stderr).
pub fn audit_verify(url: &str) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_lienthong"))
        .args(["audit", "verify", "--store", url])
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs `f` on a read-only pool of the SQLite store at `path`.
pub fn sqlite_query<T>(path: &Path, f: impl AsyncFnOnce(&sqlx::SqlitePool) -> T) -> T {
    let url = format!("sqlite://{}?mode=ro", path.display());
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let out = f(&pool).await;
        pool.close().await;
        out
    })
}

/// One BIGINT from the SQLite store at `path`.
pub fn sqlite_scalar(path: &Path, sql: &str) -> i64 {
    let sql = sql.to_owned();
    sqlite_query(path, async move |pool| {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

// --- a primary and its synchronous standby ----------------------------------------------------

/// PostgreSQL's server binaries (`initdb`, `pg_ctl`, `pg_basebackup`, `postgres`) and the user
/// they run as: PostgreSQL refuses to run as root, so a root test runs them as `postgres`
/// (`runuser -u postgres --`) in folders it gives to that user.
pub struct PgBin {
    pub dir: PathBuf,
    /// `(uid, gid)` of `postgres` when this test runs as root.
    run_as: Option<(u32, u32)>,
}

impl PgBin {
    /// `LIENTHONG_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else the folder
    /// `pg_config --bindir` names, else the `PATH` — the first holding all four tools. `None`
    /// after saying loudly that `test` is skipped.
    pub fn find(test: &str) -> Option<PgBin> {
        let tools = ["initdb", "pg_ctl", "pg_basebackup", "postgres"];
        let has_all = |d: &Path| tools.iter().all(|t| d.join(t).is_file());
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(d) = std::env::var_os("LIENTHONG_PG_BIN") {
            candidates.push(PathBuf::from(d));
        }
        if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut versions: Vec<(u32, PathBuf)> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            candidates.extend(versions.into_iter().map(|(_, d)| d));
        }
        if let Ok(o) = Command::new("pg_config").arg("--bindir").output()
            && o.status.success()
        {
            candidates.push(PathBuf::from(
                String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            ));
        }
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path));
        }
        let Some(dir) = candidates.into_iter().find(|d| has_all(d)) else {
            eprintln!(
                "\n*** SKIPPED {test}: the PostgreSQL server binaries ({}) are not installed \
                 (apt-get install postgresql, or set LIENTHONG_PG_BIN) ***\n",
                tools.join(", ")
            );
            return None;
        };
        let run_as = if is_root() {
            let Some(ids) = user_ids("postgres") else {
                eprintln!(
                    "\n*** SKIPPED {test}: running as root and there is no `postgres` user to \
                     run the PostgreSQL servers as ***\n"
                );
                return None;
            };
            Some(ids)
        } else {
            None
        };
        Some(PgBin { dir, run_as })
    }

    /// The tool `name`, run as the servers' user.
    pub fn cmd(&self, name: &str) -> Command {
        match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(self.dir.join(name));
                c
            }
            None => Command::new(self.dir.join(name)),
        }
    }

    /// Gives `path` to the servers' user (when running as root).
    pub fn give(&self, path: &Path) {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    /// Runs `cmd`, panicking with its output if it fails.
    pub fn run(&self, mut cmd: Command, what: &str) {
        let o = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            o.status.success(),
            "{what} failed ({}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `(uid, gid)` of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The standby's `application_name`, which the primary's `synchronous_standby_names` names.
pub const STANDBY_NAME: &str = "standby1";

/// The database the node's store lives in, on the cluster.
pub const CLUSTER_DB: &str = "lienthong";

/// A primary on one loopback port and a streaming standby on another, both in `dir`, the
/// primary committing only once the standby has flushed the commit (`synchronous_commit = on`,
/// `synchronous_standby_names = 'standby1'`). Both servers are stopped (immediately) on drop.
pub struct PgCluster {
    pub bin: PgBin,
    pub dir: PathBuf,
    pub primary: PathBuf,
    pub standby: PathBuf,
    pub primary_port: u16,
    pub standby_port: u16,
}

impl PgCluster {
    /// initdb, start the primary, a replication role and slot and the node's database,
    /// `pg_basebackup -R` the standby, start it, then require it synchronous and wait until
    /// `pg_stat_replication` says `sync`.
    pub async fn start(bin: PgBin, dir: &Path) -> PgCluster {
        bin.give(dir);
        let primary = dir.join("primary");
        let standby = dir.join("standby");
        let primary_port = crate::common::nodes::reserve_port().port();
        let standby_port = crate::common::nodes::reserve_port().port();
        let mut c = bin.cmd("initdb");
        c.arg("-D")
            .arg(&primary)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        bin.run(c, "initdb");
        // Appended: the last setting of a name wins. Sockets in the test's folder, not the
        // system's; no `synchronous_standby_names` yet (with it and no standby, the role and
        // slot created below would wait forever).
        append(
            &primary.join("postgresql.conf"),
            &format!(
                "\n# pg_failover test\nport = {primary_port}\nlisten_addresses = '127.0.0.1'\n\
                 unix_socket_directories = '{dir}'\nshared_buffers = 32MB\nmax_connections = 60\n\
                 wal_level = replica\nmax_wal_senders = 4\nmax_replication_slots = 4\n\
                 synchronous_commit = on\nfsync = on\n",
                dir = dir.display()
            ),
        );
        let cluster = PgCluster {
            bin,
            dir: dir.to_owned(),
            primary,
            standby,
            primary_port,
            standby_port,
        };
        cluster.pg_ctl_start(&cluster.primary, "primary");
        let admin = connect(&cluster.url_of(primary_port, "postgres")).await;
        for sql in [
            "CREATE ROLE replicator WITH REPLICATION LOGIN".to_owned(),
            format!("SELECT 1 FROM pg_create_physical_replication_slot('{STANDBY_NAME}')"),
            format!("CREATE DATABASE {CLUSTER_DB}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let mut c = cluster.bin.cmd("pg_basebackup");
        c.args(["-h", "127.0.0.1", "-p", &primary_port.to_string()])
            .args(["-U", "replicator", "-D"])
            .arg(&cluster.standby)
            .args(["-R", "-S", STANDBY_NAME, "-X", "stream", "-c", "fast"]);
        cluster.bin.run(c, "pg_basebackup");
        // -R wrote primary_conninfo to postgresql.auto.conf: name the standby there (it is the
        // file read last). The standby runs without synchronous standbys of its own: promoted
        // alone, it must commit without waiting for one (docs/postgres-failover.md).
        append(
            &cluster.standby.join("postgresql.auto.conf"),
            &format!(
                "port = {standby_port}\n\
                 primary_conninfo = 'host=127.0.0.1 port={primary_port} user=replicator \
                 application_name={STANDBY_NAME}'\n\
                 primary_slot_name = '{STANDBY_NAME}'\nhot_standby = on\n\
                 synchronous_standby_names = ''\n"
            ),
        );
        cluster.pg_ctl_start(&cluster.standby, "standby");
        for sql in [
            format!("ALTER SYSTEM SET synchronous_standby_names = '{STANDBY_NAME}'"),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let start = Instant::now();
        loop {
            let state: Option<String> = sqlx::query_scalar(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1 \
                 AND state = 'streaming'",
            )
            .bind(STANDBY_NAME)
            .fetch_optional(&admin)
            .await
            .unwrap();
            if state.as_deref() == Some("sync") {
                break;
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "the standby never became synchronous (sync_state {state:?}):\n{}",
                cluster.log_tail("standby", 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        admin.close().await;
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url_of(&self, port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    /// The node's store on the primary.
    pub fn primary_url(&self) -> String {
        self.url_of(self.primary_port, CLUSTER_DB)
    }

    /// The node's store on the standby (the new primary once promoted).
    pub fn standby_url(&self) -> String {
        self.url_of(self.standby_port, CLUSTER_DB)
    }

    fn pg_ctl_start(&self, data: &Path, name: &str) {
        let mut c = self.bin.cmd("pg_ctl");
        c.arg("-D")
            .arg(data)
            .arg("-l")
            .arg(self.dir.join(format!("{name}.log")))
            .args(["-w", "-t", "60", "start"]);
        self.bin.run(c, &format!("pg_ctl start ({name})"));
    }

    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The machine of the primary dies: SIGKILL to its postmaster and, in the same `kill`, to
    /// every process it started (backends, WAL sender, checkpointer…), as a power cut would
    /// stop them — none of them gets to answer a client or send WAL afterwards. Returns the
    /// postmaster's pid once it is gone.
    pub fn kill_primary(&self) -> u32 {
        let pid = postmaster_pid(&self.primary).expect("the primary is running");
        let mut pids = vec![pid];
        pids.extend(children_of(pid));
        let mut c = Command::new("kill");
        c.arg("-KILL")
            .args(pids.iter().map(u32::to_string))
            .stderr(Stdio::null()); // a child that ended meanwhile: "No such process"
        let _ = c.status();
        let start = Instant::now();
        while alive(pid) {
            assert!(
                start.elapsed() < START_DEADLINE,
                "the primary's postmaster {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pid
    }

    /// `pg_ctl promote` the standby and wait until it takes writes.
    pub async fn promote(&self) {
        let mut c = self.bin.cmd("pg_ctl");
        c.arg("-D")
            .arg(&self.standby)
            .args(["-w", "-t", "60", "promote"]);
        self.bin.run(c, "pg_ctl promote");
        let pool = connect(&self.url_of(self.standby_port, "postgres")).await;
        let start = Instant::now();
        while sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&pool)
            .await
            .unwrap()
        {
            assert!(
                start.elapsed() < START_DEADLINE,
                "the promoted standby stays in recovery:\n{}",
                self.log_tail("standby", 30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool.close().await;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        for data in [&self.standby, &self.primary] {
            if postmaster_pid(data).is_some_and(alive) {
                let mut c = self.bin.cmd("pg_ctl");
                c.arg("-D")
                    .arg(data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let _ = c.status();
            }
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The postmaster's pid: the first line of `postmaster.pid` in the data folder.
fn postmaster_pid(data: &Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Alive: `/proc/<pid>` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pids whose parent is `parent` (from `/proc/*/stat`).
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<u32>().ok())
                })
                == Some(parent)
        })
        .collect()
}
