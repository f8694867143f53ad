//! The store on one SQLite file: WAL, `synchronous=FULL`, foreign keys on, one writer.
//!
//! Two pools on the same file. Writes go through a pool of exactly **one** connection, each in a
//! `BEGIN IMMEDIATE` transaction: writes are serialised in the process (so "read the audit head,
//! append the next record" and "check for a duplicate, insert" cannot interleave) and a second
//! process writing the file waits on the busy timeout instead of failing half-way. Reads go
//! through a pool of read-only connections, which WAL lets run beside the writer.
//! `synchronous=FULL` makes every commit durable (the WAL is synced) before it returns, which is
//! what lets the node acknowledge after a write (invariant 1).
//!
//! The schema is `migrations/sqlite/`, embedded and applied at open.
//!
//! Split by concern: `messages` (documents, inbox, idempotency), `deliveries` (the queue and its
//! transitions), `statuses`, `numbering`, `audit` (append and verify), `mail` (the mail
//! bridge's checkpoints, mail log, drafts and reply limits).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::{
    AttemptInfo, AuditQuery, AuditVerdict, ClaimedDelivery, DeliveryError, DeliveryFilter,
    DeliveryInfo, DeliveryState, Direction, InboxFilter, InboxItem, IngestOutcome, Lease,
    MessageInfo, NewIncoming, NewOutgoing, NewStatus, OutgoingFilter, OutgoingItem, Pending,
    ReceptionCounts, RequestFingerprint, StatusOutcome, StatusRecord, Store, Submitted, Turn,
};
use crate::audit::{AuditEntry, AuditRecord};
use crate::error::{Code, Error, Result};
pub(super) use crate::store::shared::with_channel;
use crate::store::shared::{check_blob, check_page, invalid, not_found, require, sha256_hex};

mod audit;
mod crosscheck;
mod deliveries;
mod files;
mod group;
mod lock;
mod mail;
mod messages;
mod numbering;
mod registry;
mod revocation;
mod statuses;

pub use lock::NodeLock;

/// The embedded migrations of `migrations/sqlite/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

type Tx = Transaction<'static, Sqlite>;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Connections for reads (the writer is always one).
    pub read_connections: u32,
    /// How long a statement waits for a lock held by another connection or process.
    pub busy_timeout: Duration,
    /// Open an existing database for reading only: no migrations, no writer; every write
    /// returns `STORE_UNAVAILABLE`. For tools such as `audit verify` that must not change what
    /// they inspect.
    pub read_only: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            read_connections: 4,
            busy_timeout: Duration::from_secs(5),
            read_only: false,
        }
    }
}

/// The SQLite store. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// `None` when opened read-only.
    write: Option<SqlitePool>,
    /// The group-commit writer over `write` (see `group.rs`); `None` when opened read-only.
    group: Option<group::GroupWriter>,
    read: SqlitePool,
    /// Where packages of `files::FILE_THRESHOLD` bytes or more are kept; `None` for an
    /// in-memory database, whose packages are all BLOBs.
    files: Option<files::PackageFiles>,
}

/// The durability settings a connection actually runs with (for start-up logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    /// `PRAGMA journal_mode`: `wal` on a file database.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is FULL.
    pub synchronous: i64,
    /// `PRAGMA foreign_keys`.
    pub foreign_keys: bool,
}

impl SqliteStore {
    /// Opens (creating if the URL says `mode=rwc`) the database at `url`, e.g.
    /// `sqlite:///var/lib/lienthong/node.db?mode=rwc`, and applies pending migrations.
    ///
    /// `sqlite::memory:` gives a private in-memory database on one connection, for tests only:
    /// nothing in it survives the process.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        SqliteStore::open_with(url, &SqliteOptions::default()).await
    }

    /// [`open`](Self::open) with options.
    pub async fn open_with(url: &str, options: &SqliteOptions) -> Result<SqliteStore> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::store(Code::ValueInvalid, format!("store URL {url:?}: {e}")))?
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let unavailable =
            |e: sqlx::Error| Error::store(Code::StoreUnavailable, format!("opening {url}: {e}"));

        if is_in_memory(url) {
            // One connection that never closes: a second one would see another database.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(base)
                .await
                .map_err(unavailable)?;
            let write = (!options.read_only).then(|| pool.clone());
            let store = SqliteStore {
                group: write.clone().map(group::GroupWriter::start),
                write,
                read: pool,
                files: None,
            };
            store.migrate().await?;
            return Ok(store);
        }

        let write = if options.read_only {
            None
        } else {
            // A node creates its store on first start; read-only users (audit) never do.
            let opts = base
                .clone()
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .map_err(unavailable)?;
            Some(pool)
        };
        let files = files::PackageFiles::beside(base.get_filename());
        let read = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(
                base.read_only(true)
                    .create_if_missing(false)
                    .synchronous(SqliteSynchronous::Full),
            )
            .await
            .map_err(unavailable)?;
        let store = SqliteStore {
            group: write.clone().map(group::GroupWriter::start),
            write,
            read,
            files: Some(files),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Takes back the leases an earlier incarnation of the node held when it died: every
    /// delivery still `sending` becomes `retrying`, due `now`, audited (`deliveries.rs`). Only
    /// the node calls this, at start, before its outbox claims: a SQLite store has one node,
    /// so at that moment no live worker holds a lease, and a lease that is still there is a
    /// dead process's. Returns how many were taken back.
    ///
    /// `held` is the proof that this process is that one node: the store's [`NodeLock`].
    pub async fn take_back_leases(&self, held: &NodeLock, actor: &str, now: i64) -> Result<u64> {
        self.check_held(held)?;
        deliveries::take_back_leases(self, actor, now).await
    }

    /// Refuses start-up work under a lock on another store (a bug, never an operator's doing).
    fn check_held(&self, held: &NodeLock) -> Result<()> {
        match &self.files {
            Some(files) if files.dir() != files::PackageFiles::beside(held.database()).dir() => {
                Err(Error::internal(
                    "store lock",
                    format!(
                        "the lock held is for {}, not this store",
                        held.database().display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Removes the package files no row names (see `files.rs`: writes that never committed) and
    /// returns how many. Only the node calls this, at start, before it serves: it is the one
    /// writer of package files, and a file written for a transaction still in flight is named
    /// by no row yet, so any other process (a CLI tool opening the store beside a running
    /// node) must never do it: `held`, the store's [`NodeLock`], is the proof that this process
    /// is the node (it is taken only by `serve`). A read-only store removes nothing.
    pub async fn remove_orphan_package_files(&self, held: &NodeLock) -> Result<usize> {
        self.check_held(held)?;
        let (Some(files), Some(write)) = (&self.files, &self.write) else {
            return Ok(0);
        };
        let referenced: std::collections::HashSet<String> =
            sqlx::query_scalar("SELECT file FROM messages WHERE file IS NOT NULL")
                .fetch_all(write)
                .await
                .map_err(db_err)?
                .into_iter()
                .collect();
        let files = files.clone();
        let removed = tokio::task::spawn_blocking(move || files.clean(&referenced))
            .await
            .map_err(|e| Error::store(Code::StoreUnavailable, e.to_string()))??;
        if removed > 0 {
            tracing::warn!(
                removed,
                "removed package files of writes that never committed"
            );
        }
        Ok(removed)
    }

    /// Writes a large package to its file before the transaction that names it (see
    /// `files.rs`); `None` when it stays a BLOB.
    async fn spill(&self, package: &mut super::SignedPackage) -> Result<Option<String>> {
        match &self.files {
            Some(f) => f.spill(package).await,
            None => Ok(None),
        }
    }

    /// Removes the file of a write that is known not to name it: `Ok(false)` (committed without
    /// it: a repeat), or a refusal of the write itself (rolled back). After `STORE_UNAVAILABLE`
    /// (perhaps a failed `COMMIT`) it is not known for certain that no row names the file, so it
    /// stays; the next open removes it if it is an orphan.
    async fn discard_unless_named(&self, file: Option<String>, named: Result<bool, &Error>) {
        let unnamed = match named {
            Ok(named) => !named,
            Err(e) => e.code() != Code::StoreUnavailable,
        };
        if let (Some(f), Some(name), true) = (&self.files, file, unnamed) {
            f.discard(&name).await;
        }
    }

    /// The bytes of `messages` row `id` as `(bytes, file, sha256)`: the BLOB, or the file it
    /// names, checked against the row's hash whatever its size (`STORE_CORRUPT`): bytes edited
    /// or damaged in the database are never handed on as the package.
    async fn unspill(
        &self,
        id: i64,
        (bytes, file, sha256): (Vec<u8>, Option<String>, String),
    ) -> Result<Vec<u8>> {
        match (file, &self.files) {
            (None, _) => {
                check_blob(id, &bytes, &sha256)?;
                Ok(bytes)
            }
            (Some(name), Some(f)) => f.read(&name, &sha256).await,
            (Some(name), None) => Err(Error::store(
                Code::StoreUnavailable,
                format!("message kept in file {name}, but this store has no package folder"),
            )),
        }
    }

    async fn migrate(&self) -> Result<()> {
        let Some(write) = &self.write else {
            return Ok(());
        };
        MIGRATOR.run(write).await.map_err(|e| {
            Error::store(
                Code::StoreUnavailable,
                format!("applying migrations/sqlite: {e}"),
            )
        })?;
        // What migration 0013 cannot do in SQL: the registry's folded names.
        let filled = registry::fill_folded(write).await?;
        if filled > 0 {
            tracing::info!(filled, "agency registry: folded names filled for searching");
        }
        Ok(())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        if let Some(w) = &self.write {
            w.close().await;
        }
        self.read.close().await;
    }

    /// The writer's journal mode, synchronous level and foreign-key enforcement (the reader's
    /// when opened read-only).
    pub async fn durability(&self) -> Result<Durability> {
        let pool = self.write.as_ref().unwrap_or(&self.read);
        let mut conn = pool.acquire().await.map_err(db_err)?;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        Ok(Durability {
            journal_mode: journal_mode.to_ascii_lowercase(),
            synchronous,
            foreign_keys: foreign_keys == 1,
        })
    }

    /// Runs `write` in the next group commit (see `group.rs`): the hot writes. It must not commit;
    /// its `Err` rolls back its own changes only.
    async fn grouped<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut sqlx::SqliteConnection,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>,
            > + Send
            + 'static,
    {
        let Some(group) = &self.group else {
            return Err(Error::store(
                Code::StoreUnavailable,
                "the store was opened read-only",
            ));
        };
        group.write(write).await
    }

    /// [`grouped`](Self::grouped) in two steps: queues `write` (writes run in the order they
    /// were queued) and returns what answers once its group committed.
    async fn grouped_queued<T, F>(
        &self,
        write: F,
    ) -> Result<impl std::future::Future<Output = Result<T>> + Send + 'static + use<T, F>>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut sqlx::SqliteConnection,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<T>> + Send + 'c>,
            > + Send
            + 'static,
    {
        let Some(group) = &self.group else {
            return Err(Error::store(
                Code::StoreUnavailable,
                "the store was opened read-only",
            ));
        };
        group.queue(write).await
    }

    /// A write transaction on the one writer connection (`BEGIN IMMEDIATE`: the write lock is
    /// taken at the start, so the transaction never fails half-way for want of it).
    async fn begin(&self) -> Result<Tx> {
        let Some(write) = &self.write else {
            return Err(Error::store(
                Code::StoreUnavailable,
                "the store was opened read-only",
            ));
        };
        write.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

// ---------------------------------------------------------------------------------------------
// Errors and row helpers shared by the submodules
// ---------------------------------------------------------------------------------------------

/// A database error as a store error: constraint violations are refused input (`VALUE_INVALID`;
/// the operations check the expected conflicts themselves and report them with their own codes
/// first), anything else is `STORE_UNAVAILABLE`.
pub(super) fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && (d.is_unique_violation() || d.is_check_violation() || d.is_foreign_key_violation())
    {
        return Error::store(Code::ValueInvalid, format!("refused by the store: {d}"));
    }
    Error::store(Code::StoreUnavailable, format!("store: {e}"))
}

/// A column, with a decoding failure reported as a store problem (it means the schema and the
/// code disagree).
fn col<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|e| Error::store(Code::StoreUnavailable, format!("store: column {name}: {e}")))
}

/// An integer column that must fit `T` (a code, a count).
fn col_int<T: TryFrom<i64>>(row: &SqliteRow, name: &str) -> Result<T> {
    let v: i64 = col(row, name)?;
    T::try_from(v).map_err(|_| super::types::corrupt(name, &v.to_string()))
}

fn col_opt_int<T: TryFrom<i64>>(row: &SqliteRow, name: &str) -> Result<Option<T>> {
    let v: Option<i64> = col(row, name)?;
    v.map(|v| T::try_from(v).map_err(|_| super::types::corrupt(name, &v.to_string())))
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// The trait, delegating to the submodules
// ---------------------------------------------------------------------------------------------

impl Store for SqliteStore {
    async fn last_number(&self, agency: &str, year: i32) -> Result<u32> {
        numbering::last_number(self, agency, year).await
    }

    async fn find_submission(
        &self,
        agency: &str,
        idempotency_key: &str,
        request: Option<&RequestFingerprint>,
    ) -> Result<Option<Submitted>> {
        let mut conn = self.read.acquire().await.map_err(db_err)?;
        messages::find_submission(&mut conn, agency, idempotency_key, request).await
    }

    async fn queue_outgoing(
        &self,
        new: NewOutgoing,
        now: i64,
        turn: Turn,
    ) -> Result<Pending<Submitted>> {
        messages::queue_outgoing(self, new, now, turn).await
    }

    async fn ingest_incoming(&self, new: NewIncoming, now: i64) -> Result<IngestOutcome> {
        messages::ingest_incoming(self, new, now).await
    }

    async fn record_status(&self, new: NewStatus, now: i64) -> Result<StatusOutcome> {
        statuses::record_status(self, new, now).await
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_owner: &str,
        lease_for_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        deliveries::claim_due(self, now, limit, lease_owner, lease_for_ms).await
    }

    async fn mark_delivered(&self, lease: Lease, receipt: Vec<u8>, now: i64) -> Result<()> {
        deliveries::mark_delivered(self, lease, receipt, now).await
    }

    async fn retry_later(
        &self,
        lease: Lease,
        error: DeliveryError,
        next_attempt_at: i64,
        now: i64,
    ) -> Result<()> {
        deliveries::retry_later(self, lease, error, next_attempt_at, now).await
    }

    async fn mark_failed(&self, lease: Lease, error: DeliveryError, now: i64) -> Result<()> {
        deliveries::mark_failed(self, lease, error, now).await
    }

    async fn reject_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        deliveries::reject_delivery(self, delivery_id, reason, actor, now).await
    }

    async fn cancel_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        deliveries::cancel_delivery(self, delivery_id, reason, actor, now).await
    }

    async fn operator_retry(&self, delivery_id: i64, actor: &str, now: i64) -> Result<()> {
        deliveries::operator_retry(self, delivery_id, actor, now).await
    }

    async fn record_admin_action(&self, entry: AuditEntry, now: i64) -> Result<i64> {
        require("actor", &entry.actor)?;
        require("action", &entry.action)?;
        let mut tx = self.begin().await?;
        let record = audit::append(&mut tx, entry, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record.seq)
    }

    async fn list_inbox(&self, agency: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>> {
        messages::list_inbox(&self.read, agency, filter).await
    }

    async fn inbox_item(&self, agency: &str, message_id: i64) -> Result<InboxItem> {
        messages::inbox_item(&self.read, agency, message_id).await
    }

    async fn list_outgoing(
        &self,
        agency: &str,
        filter: &OutgoingFilter,
    ) -> Result<Vec<OutgoingItem>> {
        messages::list_outgoing(&self.read, agency, filter).await
    }

    async fn outgoing_deliveries(
        &self,
        agency: &str,
        message_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<DeliveryInfo>>> {
        let all = deliveries::for_messages(&self.read, message_ids).await?;
        Ok(super::shared::documents_of(agency, all))
    }

    async fn outgoing_item(&self, agency: &str, message_id: i64) -> Result<OutgoingItem> {
        messages::outgoing_item(&self.read, agency, message_id).await
    }

    async fn package_bytes(&self, agency: &str, message_id: i64) -> Result<Vec<u8>> {
        messages::package_bytes(self, agency, message_id).await
    }

    async fn status_history(&self, agency: &str, message_id: i64) -> Result<Vec<StatusRecord>> {
        statuses::status_history(&self.read, agency, message_id).await
    }

    async fn revocation_evidence(
        &self,
        message_id: i64,
    ) -> Result<Vec<crate::store::RevocationEvidence>> {
        revocation::list(&self.read, message_id).await
    }

    async fn message(&self, id: i64) -> Result<MessageInfo> {
        messages::message(&self.read, id).await
    }

    async fn message_bytes(&self, id: i64) -> Result<Vec<u8>> {
        messages::message_bytes(self, id).await
    }

    async fn message_file(&self, id: i64) -> Result<Option<crate::store::PackageFile>> {
        let Some(files) = &self.files else {
            return Ok(None);
        };
        let row: Option<(Option<String>, String)> =
            sqlx::query_as("SELECT file, sha256 FROM messages WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
                .await
                .map_err(db_err)?;
        match row {
            None => Err(Error::store(
                Code::NotFound,
                format!("no message {id} on this node"),
            )),
            Some((None, _)) => Ok(None),
            Some((Some(name), sha256)) => Ok(Some(crate::store::PackageFile {
                path: files.path(&name)?,
                sha256,
            })),
        }
    }

    async fn find_documents(
        &self,
        direction: Direction,
        sender: &str,
        document_id: &str,
    ) -> Result<Vec<MessageInfo>> {
        messages::find_documents(&self.read, direction, sender, document_id).await
    }

    async fn delivery(&self, id: i64) -> Result<DeliveryInfo> {
        deliveries::delivery(&self.read, id).await
    }

    async fn delivery_receipt(&self, id: i64) -> Result<Option<Vec<u8>>> {
        deliveries::delivery_receipt(&self.read, id).await
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryInfo>> {
        deliveries::list_deliveries(&self.read, filter).await
    }

    async fn count_deliveries(&self, filter: &DeliveryFilter, at_most: u32) -> Result<u64> {
        deliveries::count_deliveries(&self.read, filter, at_most).await
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
        deliveries::attempts(&self.read, delivery_id).await
    }

    async fn delivery_counts(&self) -> Result<BTreeMap<DeliveryState, u64>> {
        deliveries::delivery_counts(&self.read).await
    }

    async fn oldest_pending_age(&self, now: i64) -> Result<Option<i64>> {
        deliveries::oldest_pending_age(&self.read, now).await
    }

    async fn reception_counts(
        &self,
        agency: Option<&str>,
        late_before: i64,
    ) -> Result<ReceptionCounts> {
        messages::reception_counts(&self.read, agency, late_before).await
    }

    async fn registry_list(&self) -> Result<Vec<super::RegistryEntry>> {
        registry::list(&self.read).await
    }

    async fn registry_entry(&self, code: &str) -> Result<Option<super::RegistryEntry>> {
        registry::entry(&self.read, code).await
    }

    async fn registry_search(&self, query: &str, limit: u32) -> Result<Vec<super::RegistryName>> {
        registry::search(&self.read, query, limit).await
    }

    async fn registry_binding(&self, code: &str, sha256: &str) -> Result<super::RegistryBinding> {
        registry::binding(&self.read, code, sha256).await
    }

    async fn registry_set(
        &self,
        entry: super::NewRegistryEntry,
        actor: &str,
        now: i64,
    ) -> Result<(super::RegistryEntry, bool)> {
        registry::set(self, entry, actor, now).await
    }

    async fn mark_relayed(&self, lease: Lease, reply: String, now: i64) -> Result<()> {
        mail::mark_relayed(self, lease, reply, now).await
    }

    async fn mail_checkpoint(&self, mailbox: &str) -> Result<Option<super::MailCheckpoint>> {
        mail::checkpoint(self, mailbox).await
    }

    async fn take_mail(
        &self,
        taken: super::TakenMail,
        reply_interval_ms: i64,
        now: i64,
    ) -> Result<super::TakeOutcome> {
        mail::take(self, taken, reply_interval_ms, now).await
    }

    async fn list_mail_log(
        &self,
        filter: &super::MailLogFilter,
    ) -> Result<Vec<super::MailLogItem>> {
        mail::list_log(self, filter).await
    }

    async fn mail_log_item(&self, id: i64) -> Result<super::MailLogItem> {
        mail::log_item(self, id).await
    }

    async fn mail_taken(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        message_id: Option<&str>,
    ) -> Result<Option<super::MailLogItem>> {
        mail::taken(self, mailbox, uidvalidity, uid, message_id).await
    }

    async fn record_mail_sent(&self, sent: super::SentMail, now: i64) -> Result<i64> {
        mail::record_sent(self, sent, now).await
    }

    async fn list_drafts(
        &self,
        agency: &str,
        filter: &super::DraftFilter,
    ) -> Result<Vec<super::DraftItem>> {
        mail::list_drafts(self, agency, filter).await
    }

    async fn draft(&self, agency: &str, id: i64) -> Result<super::DraftItem> {
        mail::draft(self, agency, id).await
    }

    async fn draft_file(&self, agency: &str, id: i64, index: u32) -> Result<super::DraftFile> {
        mail::draft_file(self, agency, id, index).await
    }

    async fn discard_draft(
        &self,
        agency: &str,
        id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        mail::discard_draft(self, agency, id, reason, actor, now).await
    }

    async fn registry_remove(&self, code: &str, actor: &str, now: i64) -> Result<()> {
        registry::remove(self, code, actor, now).await
    }

    async fn registry_import(
        &self,
        entries: Vec<super::NewRegistryEntry>,
        replace_all: bool,
        actor: &str,
        now: i64,
    ) -> Result<super::ImportOutcome> {
        registry::import(self, entries, replace_all, actor, now).await
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        audit::records(&self.read, query).await
    }

    async fn audit_browse(&self, query: &super::AuditBrowse) -> Result<Vec<AuditRecord>> {
        audit::browse(&self.read, query).await
    }

    async fn verify_audit(&self) -> Result<AuditVerdict> {
        audit::verify(&self.read).await
    }

    async fn verify_store(&self) -> Result<super::StoreVerdict> {
        crosscheck::verify(self).await
    }
}
