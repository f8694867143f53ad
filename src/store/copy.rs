//! `lienthong store copy --from URL --to URL`: a node's whole history moved to another store,
//! SQLite to PostgreSQL or back, so that the audit chain still verifies on the target and ends
//! at the same head.
//!
//! Row level, not through [`Store`](super::Store): the history is what it is (leases, attempts,
//! drafts half-decided), so every row of every table is copied as it stands, ids included, in
//! id order (or key order for tables keyed otherwise), a page at a time. What differs between
//! the backends is translated on the way:
//!
//! - a SQLite package kept as a file (`messages.file`, `<db>.packages/`) becomes
//!   `package_chunks` rows (`messages.chunked`) on PostgreSQL, and a chunked package becomes a
//!   file on SQLite — streamed one chunk at a time, hashed on the way and checked against the
//!   row's SHA-256, so a 100 MB package is never held whole;
//! - `revocation_evidence.flagged` is 0/1 on SQLite, a BOOLEAN on PostgreSQL;
//! - `mail_log.draft_ref` and `drafts.mail_log_id` name each other: `mail_log` is copied
//!   without `draft_ref`, which is set once `drafts` is in;
//! - afterwards PostgreSQL's identities are moved past the copied ids and `audit_head` set to
//!   the last record (SQLite's `sqlite_sequence` follows the copied `seq` by itself).
//!
//! Safety: the target must be empty (every table, after its migrations); it is written in ONE
//! transaction, so a copy that fails leaves it empty again (on SQLite, package files already
//! written are orphans the node removes at its first start). The source is read in one
//! snapshot (a read transaction) and never written; it must have every migration of this build
//! (`lienthong migrate` first), and no node may be using it: a SQLite source's node lock is
//! taken for the copy; for PostgreSQL stop every replica (nothing can check that here). The
//! source's audit chain must not have lost its last records (its high-water mark must be its
//! last record), because the target could not say so any more.
//!
//! Afterwards the target is opened as a node would open it and [`Store::verify_store`]
//! (super::Store::verify_store) runs on it: the caller prints the verdict and compares its
//! head with the source's.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use super::{AnyStore, Backend, NodeLock, SqliteOptions, Store, StoreOptions, StoreVerdict};
use crate::audit::ChainHead;
use crate::error::{Code, Error, Result};

/// Packages of this size or more are files on SQLite (`sqlite/files.rs`, `FILE_THRESHOLD`) and
/// chunks of this size on PostgreSQL (`postgres::CHUNK`): the same 1 MiB on both.
const LARGE: usize = super::postgres::CHUNK;

/// Rows read per page (and inserted per statement) for tables without packages.
const PAGE: i64 = 500;

/// Rows per page of `messages`: each may carry a BLOB just under [`LARGE`], so a page holds at
/// most this many MiB.
const MESSAGE_PAGE: i64 = 16;

/// Rows per page of `draft_files` (attachments of mailed drafts, BLOBs).
const DRAFT_FILE_PAGE: i64 = 8;

/// A column's type as both backends hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// INTEGER / BIGINT, nullable.
    Int,
    /// TEXT, nullable.
    Text,
    /// BLOB / BYTEA, nullable.
    Blob,
    /// 0/1 on SQLite, BOOLEAN on PostgreSQL, NOT NULL.
    Bool,
}

/// One value in transit.
#[derive(Debug, Clone)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Bool(bool),
}

/// How a table is paged: by its one integer key (keyset), or by its composite key (offset).
#[derive(Debug, Clone, Copy)]
enum Order {
    Id(&'static str),
    Key(&'static str),
}

/// A table copied as it stands.
struct Table {
    name: &'static str,
    order: Order,
    page: i64,
    cols: &'static [(&'static str, Ty)],
}

use Ty::{Blob, Bool, Int, Text};

/// The columns of `messages` both backends have (the package itself — `bytes`, with SQLite's
/// `file` or PostgreSQL's `chunked` — is handled by [`copy_messages`]).
const MESSAGE_COLS: &[(&str, Ty)] = &[
    ("id", Int),
    ("direction", Text),
    ("kind", Text),
    ("sender", Text),
    ("document_id", Text),
    ("business_type", Int),
    ("status_code", Int),
    ("code_number", Text),
    ("code_notation", Text),
    ("code_year", Int),
    ("subject", Text),
    ("sha256", Text),
    ("size", Int),
    ("signer_subject", Text),
    ("signer_fingerprint", Text),
    ("header_json", Text),
    ("peer", Text),
    ("actor", Text),
    ("created_at", Int),
    ("receipt", Blob),
    ("signed_content", Text),
    ("channel", Text),
    ("channel_signature", Text),
];

/// Every other table, parents before children (foreign keys are checked row by row).
const TABLES: &[Table] = &[
    Table {
        name: "inbox",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("message_id", Int),
            ("recipient", Text),
            ("current_status", Int),
            ("current_status_at", Int),
            ("revoked", Int),
            ("created_at", Int),
            ("receipt", Blob),
        ],
    },
    Table {
        name: "deliveries",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("message_id", Int),
            ("recipient", Text),
            ("route", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("current_attempt_id", Int),
            ("last_error_code", Text),
            ("last_error_message", Text),
            ("delivered_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("receipt", Blob),
            ("retry_from", Int),
        ],
    },
    Table {
        name: "attempts",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("delivery_id", Int),
            ("number", Int),
            ("route", Text),
            ("lease_owner", Text),
            ("started_at", Int),
            ("finished_at", Int),
            ("outcome", Text),
            ("error_code", Text),
            ("error_message", Text),
            ("reply", Text),
        ],
    },
    Table {
        name: "statuses",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("document_sender", Text),
            ("document_id", Text),
            ("reporter", Text),
            ("code", Int),
            ("description", Text),
            ("reported_at", Int),
            ("recorded_at", Int),
            ("direction", Text),
            ("message_id", Int),
            ("on_type", Int),
        ],
    },
    Table {
        name: "number_sequences",
        order: Order::Key("agency, year"),
        page: PAGE,
        cols: &[("agency", Text), ("year", Int), ("last_number", Int)],
    },
    Table {
        name: "idempotency_keys",
        order: Order::Key("agency, key"),
        page: PAGE,
        cols: &[
            ("agency", Text),
            ("key", Text),
            ("message_id", Int),
            ("created_at", Int),
            ("request_sha256", Text),
            ("request", Text),
        ],
    },
    Table {
        name: "audit",
        order: Order::Id("seq"),
        page: PAGE,
        cols: &[
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("entity_kind", Text),
            ("entity_id", Text),
            ("detail", Text),
            ("prev_hash", Text),
            ("hash", Text),
        ],
    },
    Table {
        name: "agency_registry",
        order: Order::Key("code"),
        page: PAGE,
        cols: &[
            ("code", Text),
            ("name", Text),
            ("search_folded", Text),
            ("added_by", Text),
            ("added_at", Int),
            ("updated_by", Text),
            ("updated_at", Int),
        ],
    },
    Table {
        name: "agency_registry_rules",
        order: Order::Key("code, position"),
        page: PAGE,
        cols: &[
            ("code", Text),
            ("position", Int),
            ("kind", Text),
            ("sha256", Text),
            ("issuer_sha256", Text),
            ("issuer", Text),
            ("attribute", Text),
            ("value", Text),
            ("note", Text),
        ],
    },
    Table {
        name: "revocation_evidence",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("message_id", Int),
            ("position", Int),
            ("subject", Text),
            ("serial", Text),
            ("fingerprint", Text),
            ("policy", Text),
            ("status", Text),
            ("kind", Text),
            ("source", Text),
            ("der", Blob),
            ("this_update", Text),
            ("next_update", Text),
            ("produced_at", Text),
            ("note", Text),
            ("flagged", Bool),
            ("checked_at", Int),
        ],
    },
    Table {
        name: "mail_checkpoints",
        order: Order::Key("mailbox"),
        page: PAGE,
        cols: &[
            ("mailbox", Text),
            ("uidvalidity", Int),
            ("last_uid", Int),
            ("updated_at", Int),
        ],
    },
    // `draft_ref` is left out here and set after `drafts` (the two name each other).
    Table {
        name: "mail_log",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("mailbox", Text),
            ("uidvalidity", Int),
            ("uid", Int),
            ("return_path", Text),
            ("from_addr", Text),
            ("subject", Text),
            ("message_id", Text),
            ("size", Int),
            ("outcome", Text),
            ("code", Text),
            ("reason", Text),
            ("message_ref", Int),
            ("delivery_ref", Int),
            ("replied", Int),
            ("taken_at", Int),
        ],
    },
    Table {
        name: "drafts",
        order: Order::Id("id"),
        page: PAGE,
        cols: &[
            ("id", Int),
            ("agency", Text),
            ("state", Text),
            ("code_number", Text),
            ("code_notation", Text),
            ("summary", Text),
            ("body", Text),
            ("created_at", Int),
            ("decided_at", Int),
            ("decided_by", Text),
            ("reason", Text),
            ("message_id", Int),
            ("mail_log_id", Int),
        ],
    },
    Table {
        name: "draft_files",
        order: Order::Key("draft_id, idx"),
        page: DRAFT_FILE_PAGE,
        cols: &[
            ("draft_id", Int),
            ("idx", Int),
            ("name", Text),
            ("content_type", Text),
            ("size", Int),
            ("sha256", Text),
            ("bytes", Blob),
        ],
    },
    Table {
        name: "mail_replies",
        order: Order::Key("address"),
        page: PAGE,
        cols: &[("address", Text), ("last_reply_at", Int)],
    },
];

/// The PostgreSQL tables whose ids are identities, with their id column.
const IDENTITIES: &[(&str, &str)] = &[
    ("messages", "id"),
    ("inbox", "id"),
    ("deliveries", "id"),
    ("attempts", "id"),
    ("statuses", "id"),
    ("audit", "seq"),
    ("revocation_evidence", "id"),
    ("mail_log", "id"),
    ("drafts", "id"),
];

/// What a copy did.
#[derive(Debug)]
pub struct CopyReport {
    /// Rows copied per table, in the order copied (`messages` first).
    pub rows: Vec<(&'static str, u64)>,
    /// Large packages streamed (file → chunks, or chunks → file).
    pub large_packages: u64,
    /// Bytes of those.
    pub large_bytes: u64,
    /// The source's audit head (its last record; GENESIS for an empty chain).
    pub source_head: ChainHead,
    /// [`Store::verify_store`] on the target, opened afterwards; `Err` when it could not run.
    pub verdict: Result<StoreVerdict>,
}

impl CopyReport {
    /// Whether the target verified, with no differences, at the source's head.
    pub fn verified_at_source_head(&self) -> bool {
        matches!(&self.verdict, Ok(Ok(r)) if r.is_clean() && r.chain.head == self.source_head)
    }
}

/// The source, read in one snapshot.
enum Source {
    Sqlite {
        conn: SqliteConnection,
        files: PathBuf,
    },
    Postgres {
        conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    },
}

/// The target, written in one transaction (begun on `conn`).
enum Target {
    Sqlite {
        conn: SqliteConnection,
        files: PathBuf,
    },
    Postgres {
        conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    },
}

fn unavailable(what: impl std::fmt::Display) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::store(Code::StoreUnavailable, format!("{what}: {e}"))
}

fn io_err(what: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::store(Code::StoreUnavailable, format!("{}: {e}", what.display()))
}

/// Copies the whole store at `from` into the empty store at `to` (created and migrated if
/// need be), then verifies the target. See the module's documentation.
pub async fn copy(from: &str, to: &str) -> Result<CopyReport> {
    let (from_backend, to_backend) = (Backend::of(from)?, Backend::of(to)?);
    if from == to {
        return Err(Error::store(
            Code::ValueInvalid,
            "--from and --to name the same store",
        ));
    }
    for (flag, url, backend) in [("--from", from, from_backend), ("--to", to, to_backend)] {
        if backend == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory")) {
            return Err(Error::store(
                Code::ValueInvalid,
                format!("{flag} {url}: an in-memory store belongs to its process"),
            ));
        }
    }
    // No node on either SQLite store while it is copied (the lock of `serve`).
    let _from_lock = match from_backend {
        Backend::Sqlite => NodeLock::acquire(from)?,
        Backend::Postgres => None,
    };
    let _to_lock = match to_backend {
        Backend::Sqlite => NodeLock::acquire(to)?,
        Backend::Postgres => None,
    };
    super::migrate::require_current(from).await?;

    // The target: created (SQLite) and migrated as a node would, then checked empty.
    let options = StoreOptions::default();
    let target_store = AnyStore::open_with(to, &options).await?;
    let pg_target_pool = match &target_store {
        AnyStore::Postgres(s) => Some(s.pool().clone()),
        AnyStore::Sqlite(_) => None,
    };
    let mut target = match (to_backend, &pg_target_pool) {
        (Backend::Postgres, Some(pool)) => Target::Postgres {
            conn: pool.acquire().await.map_err(unavailable("--to"))?,
        },
        _ => {
            let options = SqliteConnectOptions::from_str(to)
                .map_err(|e| Error::store(Code::ValueInvalid, format!("--to {to}: {e}")))?
                .foreign_keys(true)
                .busy_timeout(std::time::Duration::from_secs(5));
            let files = packages_dir(options.get_filename());
            let conn = SqliteConnection::connect_with(&options)
                .await
                .map_err(unavailable("--to"))?;
            Target::Sqlite { conn, files }
        }
    };
    target.refuse_non_empty().await?;

    let mut source = Source::open(from, from_backend).await?;
    let copied = copy_all(&mut source, &mut target).await;
    let copied = match copied {
        Ok(c) => {
            target.commit().await?;
            c
        }
        Err(e) => {
            target.rollback().await;
            return Err(e);
        }
    };
    source.close().await;
    drop(target);
    if let Some(pool) = pg_target_pool {
        drop(pool);
    }
    target_store.close().await;

    // Opened afresh, as the node will open it.
    let verdict = match AnyStore::open_with(to, &options).await {
        Ok(store) => {
            let v = store.verify_store().await;
            store.close().await;
            v
        }
        Err(e) => Err(e),
    };
    Ok(CopyReport {
        rows: copied.rows,
        large_packages: copied.large_packages,
        large_bytes: copied.large_bytes,
        source_head: copied.head,
        verdict,
    })
}

/// `<db>.packages`, the folder of a SQLite store's package files (`sqlite/files.rs`).
fn packages_dir(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".packages");
    PathBuf::from(name)
}

struct Copied {
    rows: Vec<(&'static str, u64)>,
    large_packages: u64,
    large_bytes: u64,
    head: ChainHead,
}

async fn copy_all(source: &mut Source, target: &mut Target) -> Result<Copied> {
    target.begin().await?;
    let head = source.audit_head().await?;
    let mut rows = Vec::new();
    let (messages, large_packages, large_bytes) = copy_messages(source, target).await?;
    rows.push(("messages", messages));
    for table in TABLES {
        let n = copy_table(source, target, table).await?;
        rows.push((table.name, n));
    }
    // mail_log.draft_ref, now that every draft is in.
    let refs = source
        .read_pairs("SELECT id, draft_ref FROM mail_log WHERE draft_ref IS NOT NULL ORDER BY id")
        .await?;
    target.set_draft_refs(&refs).await?;
    target.finish(head).await?;
    Ok(Copied {
        rows,
        large_packages,
        large_bytes,
        head,
    })
}

/// A SELECT of `cols` (with `extra` columns after them) from `table`, one page.
fn select(table: &str, cols: &[(&str, Ty)], extra: &str, order: Order) -> String {
    let list: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
    let list = format!("{}{extra}", list.join(", "));
    match order {
        Order::Id(id) => {
            format!("SELECT {list} FROM {table} WHERE {id} > $1 ORDER BY {id} LIMIT $2")
        }
        Order::Key(key) => format!("SELECT {list} FROM {table} ORDER BY {key} LIMIT $2 OFFSET $1"),
    }
}

/// A multi-row INSERT of `rows` rows of `cols` into `table`.
fn insert(table: &str, cols: &[(&str, Ty)], rows: usize) -> String {
    let list: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", list.join(", "));
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    sql
}

async fn copy_table(source: &mut Source, target: &mut Target, table: &Table) -> Result<u64> {
    let sql = select(table.name, table.cols, "", table.order);
    let mut copied = 0u64;
    let mut after = 0i64;
    loop {
        let rows = source.page(&sql, table.cols, after, table.page).await?;
        let Some(last) = rows.last() else { break };
        after = match table.order {
            Order::Id(_) => match last.first() {
                Some(Value::Int(Some(id))) => *id,
                _ => {
                    return Err(Error::store(
                        Code::StoreCorrupt,
                        format!("{}: a row without its id", table.name),
                    ));
                }
            },
            Order::Key(_) => after + rows.len() as i64,
        };
        copied += rows.len() as u64;
        target
            .insert_rows(
                &insert(table.name, table.cols, rows.len()),
                table.cols,
                rows,
            )
            .await?;
    }
    Ok(copied)
}

/// `messages`, with each package: small ones as they are, large ones streamed.
async fn copy_messages(source: &mut Source, target: &mut Target) -> Result<(u64, u64, u64)> {
    let extra = match source {
        Source::Sqlite { .. } => ", bytes, file",
        Source::Postgres { .. } => ", bytes, chunked",
    };
    let sql = select("messages", MESSAGE_COLS, extra, Order::Id("id"));
    let mut cols = MESSAGE_COLS.to_vec();
    cols.push(("bytes", Blob));
    match source {
        Source::Sqlite { .. } => cols.push(("file", Text)),
        Source::Postgres { .. } => cols.push(("chunked", Bool)),
    }
    let (mut copied, mut large, mut large_bytes) = (0u64, 0u64, 0u64);
    let mut after = 0i64;
    loop {
        let rows = source.page(&sql, &cols, after, MESSAGE_PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for mut row in rows {
            let (id, sha256) = match (&row[0], &row[11]) {
                (Value::Int(Some(id)), Value::Text(Some(sha))) => (*id, sha.clone()),
                _ => {
                    return Err(Error::store(
                        Code::StoreCorrupt,
                        "messages: a row without its id or sha256",
                    ));
                }
            };
            after = id;
            let kept = row.pop();
            let bytes = match row.pop() {
                Some(Value::Blob(Some(b))) => b,
                _ => Vec::new(),
            };
            let package = match (kept, &*source) {
                (Some(Value::Text(Some(file))), Source::Sqlite { files, .. }) => {
                    Package::File(files.join(checked_file_name(&file)?))
                }
                (Some(Value::Bool(true)), Source::Postgres { .. }) => Package::Chunks,
                _ => Package::Bytes(bytes),
            };
            let streamed = !matches!(package, Package::Bytes(ref b) if b.len() < LARGE);
            let size = copy_message(source, target, row, id, &sha256, package).await?;
            copied += 1;
            if streamed {
                large += 1;
                large_bytes += size;
            }
        }
    }
    Ok((copied, large, large_bytes))
}

/// Where a source message's package is.
enum Package {
    Bytes(Vec<u8>),
    /// A SQLite package file.
    File(PathBuf),
    /// PostgreSQL `package_chunks` rows.
    Chunks,
}

/// The name a SQLite row gives its package file, refused if it is anything the store could
/// not have written (a path, a hidden file).
fn checked_file_name(name: &str) -> Result<&str> {
    let plain = name.ends_with(".edxml")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if plain {
        Ok(name)
    } else {
        Err(Error::store(
            Code::StoreCorrupt,
            format!("the store names a package file {name:?} it cannot have written"),
        ))
    }
}

/// One message: its row into the target with the package as the target keeps it. Returns the
/// package's size.
async fn copy_message(
    source: &mut Source,
    target: &mut Target,
    row: Vec<Value>,
    id: i64,
    sha256: &str,
    package: Package,
) -> Result<u64> {
    let mut cols = MESSAGE_COLS.to_vec();
    cols.push(("bytes", Blob));
    let mut row = row;
    // Small packages travel in the row.
    if let Package::Bytes(bytes) = &package
        && bytes.len() < LARGE
    {
        let size = bytes.len() as u64;
        check_sha(id, sha256, &sha256_of(bytes))?;
        let Package::Bytes(bytes) = package else {
            return Ok(size);
        };
        row.push(Value::Blob(Some(bytes)));
        match target {
            Target::Postgres { .. } => {
                cols.push(("chunked", Bool));
                row.push(Value::Bool(false));
            }
            Target::Sqlite { .. } => {}
        }
        target
            .insert_rows(&insert("messages", &cols, 1), &cols, vec![row])
            .await?;
        return Ok(size);
    }
    // Large packages: the row first (empty bytes), then the package beside it.
    row.push(Value::Blob(Some(Vec::new())));
    let mut sink = match target {
        Target::Postgres { .. } => {
            cols.push(("chunked", Bool));
            row.push(Value::Bool(true));
            target
                .insert_rows(&insert("messages", &cols, 1), &cols, vec![row])
                .await?;
            Sink::Chunks { n: 0 }
        }
        Target::Sqlite { files, .. } => {
            let name = format!("{}.edxml", uuid::Uuid::new_v4().simple());
            let file = PackageWriter::create(files, &name).await?;
            cols.push(("file", Text));
            row.push(Value::Text(Some(name)));
            // The row is inserted once its file is whole and synced (below).
            Sink::File {
                file,
                row: Some((cols, row)),
            }
        }
    };
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut size = 0u64;
    match package {
        Package::Bytes(bytes) => {
            for chunk in bytes.chunks(LARGE) {
                ctx.update(chunk);
                size += chunk.len() as u64;
                sink.put(target, id, chunk.to_vec()).await?;
            }
        }
        Package::File(path) => {
            let mut reader = ChunkReader::open(path).await?;
            while let Some(chunk) = reader.next().await? {
                ctx.update(&chunk);
                size += chunk.len() as u64;
                sink.put(target, id, chunk).await?;
            }
        }
        Package::Chunks => {
            let mut n = 0i32;
            while let Some(chunk) = source.chunk(id, n).await? {
                ctx.update(&chunk);
                size += chunk.len() as u64;
                sink.put(target, id, chunk).await?;
                n += 1;
            }
        }
    }
    check_sha(id, sha256, &hex::encode(ctx.finish()))?;
    sink.finish(target).await?;
    Ok(size)
}

fn sha256_of(bytes: &[u8]) -> String {
    super::shared::sha256_hex(bytes)
}

/// A package that does not hash to its row's SHA-256 is not copied: `audit verify` on the
/// source names it.
fn check_sha(id: i64, want: &str, got: &str) -> Result<()> {
    if want == got {
        Ok(())
    } else {
        Err(Error::store(
            Code::StoreCorrupt,
            format!(
                "message {id}: the package hashes to {got}, its row says {want}; \
                 `lienthong audit verify` on the source says more"
            ),
        ))
    }
}

/// A message row with its columns, waiting for its package file.
type PendingRow = (Vec<(&'static str, Ty)>, Vec<Value>);

/// Where a large package goes on the target.
enum Sink {
    /// `package_chunks` rows, numbered from 0.
    Chunks { n: i32 },
    /// A SQLite package file, and the message row to insert once it is whole.
    File {
        file: PackageWriter,
        row: Option<PendingRow>,
    },
}

impl Sink {
    async fn put(&mut self, target: &mut Target, id: i64, chunk: Vec<u8>) -> Result<()> {
        match self {
            Sink::Chunks { n } => {
                let Target::Postgres { conn } = target else {
                    return Err(Error::internal("store copy", "chunks for a SQLite target"));
                };
                sqlx::query(
                    "INSERT INTO package_chunks (message_id, n, bytes) VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(*n)
                .bind(chunk)
                .execute(&mut **conn)
                .await
                .map_err(unavailable("--to: package_chunks"))?;
                *n += 1;
                Ok(())
            }
            Sink::File { file, .. } => file.write(chunk).await,
        }
    }

    async fn finish(self, target: &mut Target) -> Result<()> {
        match self {
            Sink::Chunks { .. } => Ok(()),
            Sink::File { file, row } => {
                file.finish().await?;
                if let Some((cols, row)) = row {
                    target
                        .insert_rows(&insert("messages", &cols, 1), &cols, vec![row])
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// A package file being written: `<name>.tmp`, synced, renamed to `<name>`, folder synced (as
/// `sqlite/files.rs` writes them), one chunk at a time on a blocking thread.
struct PackageWriter {
    file: Option<std::fs::File>,
    dir: PathBuf,
    tmp: PathBuf,
    path: PathBuf,
}

impl PackageWriter {
    async fn create(dir: &Path, name: &str) -> Result<PackageWriter> {
        let dir = dir.to_path_buf();
        let tmp = dir.join(format!("{name}.tmp"));
        let path = dir.join(name);
        let (d, t) = (dir.clone(), tmp.clone());
        let file = blocking(move || {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
            std::fs::File::create(&t).map_err(io_err(&t))
        })
        .await?;
        Ok(PackageWriter {
            file: Some(file),
            dir,
            tmp,
            path,
        })
    }

    async fn write(&mut self, chunk: Vec<u8>) -> Result<()> {
        use std::io::Write as _;
        let Some(mut file) = self.file.take() else {
            return Err(Error::internal("store copy", "package file already closed"));
        };
        let tmp = self.tmp.clone();
        let file = blocking(move || {
            file.write_all(&chunk).map_err(io_err(&tmp))?;
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }

    async fn finish(mut self) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Err(Error::internal("store copy", "package file already closed"));
        };
        let (dir, tmp, path) = (self.dir.clone(), self.tmp.clone(), self.path.clone());
        blocking(move || {
            file.sync_all().map_err(io_err(&tmp))?;
            drop(file);
            std::fs::rename(&tmp, &path).map_err(io_err(&tmp))?;
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&dir))
        })
        .await
    }
}

/// A package file read [`LARGE`] bytes at a time.
struct ChunkReader {
    file: Option<std::fs::File>,
    path: PathBuf,
}

impl ChunkReader {
    async fn open(path: PathBuf) -> Result<ChunkReader> {
        let p = path.clone();
        let file = blocking(move || std::fs::File::open(&p).map_err(io_err(&p))).await?;
        Ok(ChunkReader {
            file: Some(file),
            path,
        })
    }

    async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        let Some(mut file) = self.file.take() else {
            return Ok(None);
        };
        let path = self.path.clone();
        let (file, chunk) = blocking(move || {
            let mut buf = vec![0u8; LARGE];
            let mut filled = 0;
            while filled < buf.len() {
                let n = file.read(&mut buf[filled..]).map_err(io_err(&path))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            Ok((file, buf))
        })
        .await?;
        if chunk.is_empty() {
            return Ok(None);
        }
        self.file = Some(file);
        Ok(Some(chunk))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::store(Code::StoreUnavailable, format!("store copy: {e}")))?
}

fn decode_err(table: &str) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |e| Error::store(Code::StoreCorrupt, format!("--from: {table}: {e}"))
}

impl Source {
    async fn open(url: &str, backend: Backend) -> Result<Source> {
        match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| Error::store(Code::ValueInvalid, format!("--from {url}: {e}")))?
                    .read_only(true)
                    .create_if_missing(false)
                    .busy_timeout(SqliteOptions::default().busy_timeout);
                let files = packages_dir(options.get_filename());
                let mut conn = SqliteConnection::connect_with(&options)
                    .await
                    .map_err(unavailable(format!("--from {url}")))?;
                // One snapshot for every page (WAL: readers see the commit they began at).
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .map_err(unavailable("--from"))?;
                Ok(Source::Sqlite { conn, files })
            }
            Backend::Postgres => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| {
                    Error::store(
                        Code::ValueInvalid,
                        format!("--from {}: {e}", Backend::shown(url)),
                    )
                })?;
                let pool: PgPool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .map_err(unavailable(format!("--from {}", Backend::shown(url))))?;
                let mut conn = pool.acquire().await.map_err(unavailable("--from"))?;
                sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *conn)
                    .await
                    .map_err(unavailable("--from"))?;
                Ok(Source::Postgres { conn })
            }
        }
    }

    async fn close(self) {
        match self {
            Source::Sqlite { mut conn, .. } => {
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let _ = conn.close().await;
            }
            Source::Postgres { mut conn } => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            }
        }
    }

    /// The chain's head: its last record's seq and hash — refused when the store's high-water
    /// mark says records were cut off its end (the target could not tell any more).
    async fn audit_head(&mut self) -> Result<ChainHead> {
        let (last, high): (Option<(i64, String)>, i64) = match self {
            Source::Sqlite { conn, .. } => {
                let last = sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(decode_err("audit"))?;
                let high: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(decode_err("sqlite_sequence"))?;
                (last, high.unwrap_or(0))
            }
            Source::Postgres { conn } => {
                let last = sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&mut **conn)
                    .await
                    .map_err(decode_err("audit"))?;
                let high: Option<i64> =
                    sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
                        .fetch_optional(&mut **conn)
                        .await
                        .map_err(decode_err("audit_head"))?;
                (last, high.unwrap_or(0))
            }
        };
        let head = match last {
            None => ChainHead::GENESIS,
            Some((seq, hash)) => {
                let bytes = hex::decode(&hash)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                let Some(hash) = bytes else {
                    return Err(Error::store(
                        Code::AuditBroken,
                        format!("audit record {seq}: its hash {hash:?} is not 32 bytes in hex"),
                    ));
                };
                ChainHead { seq, hash }
            }
        };
        if high > head.seq {
            return Err(Error::store(
                Code::AuditBroken,
                format!(
                    "the source's audit chain has lost its last records (its high-water mark is \
                     {high}, its last record {}): `lienthong audit verify` on it says more; \
                     a copy would hide that",
                    head.seq
                ),
            ));
        }
        Ok(head)
    }

    /// One page of `sql` (`$1` the key after which, or the offset; `$2` the limit).
    async fn page(
        &mut self,
        sql: &str,
        cols: &[(&str, Ty)],
        after: i64,
        limit: i64,
    ) -> Result<Vec<Vec<Value>>> {
        let q = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Source::Sqlite { conn, .. } => {
                let rows = sqlx::query(q)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(unavailable("--from"))?;
                rows.iter().map(|r| sqlite_values(r, cols)).collect()
            }
            Source::Postgres { conn } => {
                let rows = sqlx::query(q)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&mut **conn)
                    .await
                    .map_err(unavailable("--from"))?;
                rows.iter().map(|r| pg_values(r, cols)).collect()
            }
        }
    }

    /// Pairs of integers (`mail_log`'s id and draft_ref).
    async fn read_pairs(&mut self, sql: &'static str) -> Result<Vec<(i64, i64)>> {
        match self {
            Source::Sqlite { conn, .. } => sqlx::query_as(sql).fetch_all(&mut *conn).await,
            Source::Postgres { conn } => sqlx::query_as(sql).fetch_all(&mut **conn).await,
        }
        .map_err(decode_err("mail_log"))
    }

    /// Chunk `n` of message `id` (PostgreSQL only), `None` past the last.
    async fn chunk(&mut self, id: i64, n: i32) -> Result<Option<Vec<u8>>> {
        match self {
            Source::Postgres { conn } => sqlx::query_scalar(
                "SELECT bytes FROM package_chunks WHERE message_id = $1 AND n = $2",
            )
            .bind(id)
            .bind(n)
            .fetch_optional(&mut **conn)
            .await
            .map_err(decode_err("package_chunks")),
            Source::Sqlite { .. } => Ok(None),
        }
    }
}

fn sqlite_values(row: &sqlx::sqlite::SqliteRow, cols: &[(&str, Ty)]) -> Result<Vec<Value>> {
    cols.iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let err = |e: sqlx::Error| {
                Error::store(Code::StoreCorrupt, format!("--from: column {name}: {e}"))
            };
            Ok(match ty {
                Int => Value::Int(row.try_get(i).map_err(err)?),
                Text => Value::Text(row.try_get(i).map_err(err)?),
                Blob => Value::Blob(row.try_get(i).map_err(err)?),
                Bool => Value::Bool(row.try_get::<i64, _>(i).map_err(err)? != 0),
            })
        })
        .collect()
}

fn pg_values(row: &sqlx::postgres::PgRow, cols: &[(&str, Ty)]) -> Result<Vec<Value>> {
    cols.iter()
        .enumerate()
        .map(|(i, (name, ty))| {
            let err = |e: sqlx::Error| {
                Error::store(Code::StoreCorrupt, format!("--from: column {name}: {e}"))
            };
            Ok(match ty {
                Int => Value::Int(row.try_get(i).map_err(err)?),
                Text => Value::Text(row.try_get(i).map_err(err)?),
                Blob => Value::Blob(row.try_get(i).map_err(err)?),
                Bool => Value::Bool(row.try_get(i).map_err(err)?),
            })
        })
        .collect()
}

/// Binds every value of `rows` to `$q`, in order; a bool becomes 0/1 on SQLite.
macro_rules! bind_rows {
    ($q:expr, $rows:expr, |$b:ident| $bool:expr) => {{
        let mut q = $q;
        for row in $rows {
            for v in row {
                q = match v {
                    Value::Int(x) => q.bind(x),
                    Value::Text(x) => q.bind(x),
                    Value::Blob(x) => q.bind(x),
                    Value::Bool($b) => q.bind($bool),
                };
            }
        }
        q
    }};
}

impl Target {
    async fn conn_exec(&mut self, sql: &'static str) -> Result<()> {
        match self {
            Target::Sqlite { conn, .. } => sqlx::query(sql).execute(&mut *conn).await.map(drop),
            Target::Postgres { conn } => sqlx::query(sql).execute(&mut **conn).await.map(drop),
        }
        .map_err(unavailable(format!("--to: {sql}")))
    }

    async fn begin(&mut self) -> Result<()> {
        match self {
            Target::Sqlite { .. } => self.conn_exec("BEGIN IMMEDIATE").await,
            Target::Postgres { .. } => self.conn_exec("BEGIN").await,
        }
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn_exec("COMMIT").await
    }

    async fn rollback(&mut self) {
        let _ = self.conn_exec("ROLLBACK").await;
    }

    /// `VALUE_INVALID` unless every table the copy writes is empty.
    async fn refuse_non_empty(&mut self) -> Result<()> {
        let mut tables: Vec<&str> = vec!["messages"];
        tables.extend(TABLES.iter().map(|t| t.name));
        if let Target::Postgres { .. } = self {
            tables.push("package_chunks");
        }
        for table in tables {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {table})");
            let q = sqlx::AssertSqlSafe(sql);
            let any: bool = match self {
                Target::Sqlite { conn, .. } => sqlx::query_scalar(q).fetch_one(&mut *conn).await,
                Target::Postgres { conn } => sqlx::query_scalar(q).fetch_one(&mut **conn).await,
            }
            .map_err(unavailable("--to"))?;
            if any {
                return Err(Error::store(
                    Code::ValueInvalid,
                    format!(
                        "--to: the target store is not empty (table {table} has rows); \
                         store copy only fills a new store"
                    ),
                ));
            }
        }
        if let Target::Postgres { conn } = self {
            let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
                .fetch_optional(&mut **conn)
                .await
                .map_err(unavailable("--to"))?;
            if seq.unwrap_or(0) != 0 {
                return Err(Error::store(
                    Code::ValueInvalid,
                    "--to: the target's audit head is not at the start; store copy only fills a \
                     new store",
                ));
            }
        }
        Ok(())
    }

    async fn insert_rows(
        &mut self,
        sql: &str,
        cols: &[(&str, Ty)],
        rows: Vec<Vec<Value>>,
    ) -> Result<()> {
        // Rows per statement: well under either backend's limit of bound values.
        let per = (16_000 / cols.len().max(1)).max(1);
        let table = sql.split_whitespace().nth(2).unwrap_or("?").to_owned();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let batch: Vec<Vec<Value>> = rows.by_ref().take(per).collect();
            let text = if batch.len() == sql_rows(sql) {
                sql.to_owned()
            } else {
                insert(&table, cols, batch.len())
            };
            let q = sqlx::AssertSqlSafe(text);
            let done = match self {
                Target::Sqlite { conn, .. } => {
                    let q = bind_rows!(sqlx::query(q), batch, |b| i64::from(b));
                    q.execute(&mut *conn).await.map(drop)
                }
                Target::Postgres { conn } => {
                    let q = bind_rows!(sqlx::query(q), batch, |b| b);
                    q.execute(&mut **conn).await.map(drop)
                }
            };
            done.map_err(|e| Error::store(Code::StoreUnavailable, format!("--to: {table}: {e}")))?;
        }
        Ok(())
    }

    async fn set_draft_refs(&mut self, refs: &[(i64, i64)]) -> Result<()> {
        for (id, draft) in refs {
            const SQL: &str = "UPDATE mail_log SET draft_ref = $1 WHERE id = $2";
            match self {
                Target::Sqlite { conn, .. } => sqlx::query(SQL)
                    .bind(draft)
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map(drop),
                Target::Postgres { conn } => sqlx::query(SQL)
                    .bind(draft)
                    .bind(id)
                    .execute(&mut **conn)
                    .await
                    .map(drop),
            }
            .map_err(unavailable("--to: mail_log.draft_ref"))?;
        }
        Ok(())
    }

    /// PostgreSQL: identities past the copied ids, `audit_head` at the last record. SQLite:
    /// nothing (`sqlite_sequence` followed the copied `seq`; other ids are max + 1).
    async fn finish(&mut self, head: ChainHead) -> Result<()> {
        let Target::Postgres { conn } = self else {
            return Ok(());
        };
        finish_pg(conn, head).await
    }
}

async fn finish_pg(conn: &mut PgConnection, head: ChainHead) -> Result<()> {
    for (table, id) in IDENTITIES {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), max({id})) FROM {table}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .map_err(unavailable(format!("--to: the identity of {table}")))?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(hex::encode(head.hash))
        .execute(&mut *conn)
        .await
        .map_err(unavailable("--to: audit_head"))?;
    Ok(())
}

/// How many rows an INSERT built by [`insert`] has (its `(` groups after VALUES).
fn sql_rows(sql: &str) -> usize {
    sql.split_once(" VALUES ")
        .map(|(_, v)| v.matches('(').count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_built_per_table() {
        let cols = &[("a", Int), ("b", Text)];
        assert_eq!(
            insert("t", cols, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        assert_eq!(sql_rows(&insert("t", cols, 3)), 3);
        assert_eq!(
            select("t", cols, "", Order::Id("a")),
            "SELECT a, b FROM t WHERE a > $1 ORDER BY a LIMIT $2"
        );
        assert_eq!(
            select("t", cols, ", c", Order::Key("a, b")),
            "SELECT a, b, c FROM t ORDER BY a, b LIMIT $2 OFFSET $1"
        );
    }

    #[test]
    fn package_file_names_are_the_stores_own() {
        assert!(checked_file_name("0123abcd.edxml").is_ok());
        assert!(checked_file_name("../x.edxml").is_err());
        assert!(checked_file_name(".x.edxml").is_err());
        assert!(checked_file_name("x.txt").is_err());
    }
}
