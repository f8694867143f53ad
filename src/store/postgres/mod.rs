//! The store on PostgreSQL: several node replicas sharing one database.
//!
//! Why PostgreSQL and not something of our own: a province that cannot accept that one disk
//! holds every signed receipt runs a primary with a synchronous standby; streaming replication
//! is how the node becomes highly available (README, "Running replicas on PostgreSQL").
//!
//! How the invariants of [`Store`] hold with many writers:
//!
//! - **Every write is one transaction with its audit records**, run by this replica's group
//!   writer (`group.rs`): the writes queued meanwhile share one transaction, each in its own
//!   savepoint, and one commit (group commit).
//! - **The audit chain stays one chain:** a group first locks the one row of `audit_head` (the
//!   chain's head, `audit.rs`) `FOR UPDATE`; the lock is released by its `COMMIT`. So groups
//!   of all replicas run one after the other, and each statement of a group (PostgreSQL's READ
//!   COMMITTED takes a new snapshot per statement) sees every write committed before it — as
//!   the SQLite store's one writer does. Reads never take the lock.
//! - **Claims** still use `FOR UPDATE SKIP LOCKED` with the lease (owner, until), so claims stay
//!   right without the lock's help, and an expired lease is taken over by any replica.
//! - **Deduplication** rests on unique constraints as well as on the checks made in the write.
//! - **Packages** of [`CHUNK`] bytes or more are stored in `package_chunks` rows, written in
//!   the transaction that names them and read back chunk by chunk (`packages.rs`); a replica
//!   keeps a copy of a large package it is pushing in its local cache folder
//!   ([`PgOptions::cache_dir`]), so any replica serves any request without holding a 100 MB
//!   package in memory.
//!
//! The schema is `migrations/postgres/`, embedded and applied at open (sqlx takes an advisory lock
//! for it, so replicas starting together apply it once).
//!
//! Split by concern as the SQLite store is: `messages`, `packages`, `deliveries`, `statuses`,
//! `numbering`, `registry`, `revocation`, `mail`, `audit`, `crosscheck`, and `group` (the
//! writer).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};

use super::{
    AttemptInfo, AuditQuery, AuditVerdict, ClaimedDelivery, DeliveryError, DeliveryFilter,
    DeliveryInfo, DeliveryState, Direction, InboxFilter, InboxItem, IngestOutcome, Lease,
    MessageInfo, NewIncoming, NewOutgoing, NewStatus, OutgoingFilter, OutgoingItem, Pending,
    ReceptionCounts, RequestFingerprint, StatusOutcome, StatusRecord, Store, Submitted, Turn,
};
use crate::audit::{AuditEntry, AuditRecord};
use crate::error::{Code, Error, Result};
use crate::store::shared::{
    check_blob, check_page, invalid, not_found, require, sha256_hex, with_channel,
};

mod audit;
mod crosscheck;
mod deliveries;
mod group;
mod mail;
mod messages;
mod metrics;
mod numbering;
mod packages;
mod registry;
mod revocation;
mod statuses;

pub use metrics::PgMetrics;

/// The embedded migrations of `migrations/postgres/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Packages of this many bytes or more are stored as chunks of this size.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// The channel `LISTEN`ed to by every replica's outbox: notified (in the committing
/// transaction, so only once it committed) whenever a delivery becomes due now.
pub(crate) const QUEUE_CHANNEL: &str = "lienthong_outbox";

/// How to open the store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections of this replica's pool (reads, the writer and the queue listener share
    /// it; the listener has its own connection).
    pub max_connections: u32,
    /// How long a request waits for a connection before `STORE_UNAVAILABLE`.
    pub acquire_timeout: Duration,
    /// `statement_timeout` of every connection: a statement stuck behind a lock or a dead
    /// server ends with `STORE_UNAVAILABLE` instead of holding a request for ever.
    pub statement_timeout: Duration,
    /// Where this replica keeps local copies of large packages it streams (never shared
    /// between replicas); `None`: a folder under the system's temporary directory.
    pub cache_dir: Option<PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            cache_dir: None,
        }
    }
}

/// The PostgreSQL store. Cheap to clone (the pool and the writer are shared).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    group: group::GroupWriter,
    cache: packages::Cache,
    metrics: Arc<PgMetrics>,
}

impl PgStore {
    /// Opens the database at `url` (`postgres://user@host:port/db`, several hosts allowed:
    /// `postgres://h1:5432,h2:5433/db?target_session_attrs=read-write` finds the primary after
    /// a failover) and applies pending migrations.
    pub async fn open(url: &str) -> Result<PgStore> {
        PgStore::open_with(url, &PgOptions::default()).await
    }

    /// [`open`](Self::open) with options.
    pub async fn open_with(url: &str, options: &PgOptions) -> Result<PgStore> {
        let shown = redact(url);
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| Error::store(Code::ValueInvalid, format!("store URL {shown}: {e}")))?
            .options([(
                "statement_timeout",
                format!("{}", options.statement_timeout.as_millis()),
            )]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| Error::store(Code::StoreUnavailable, format!("opening {shown}: {e}")))?;
        let metrics = Arc::new(PgMetrics::default());
        let store = PgStore {
            group: group::GroupWriter::start(pool.clone(), Arc::clone(&metrics)),
            cache: packages::Cache::new(options.cache_dir.clone())?,
            pool,
            metrics,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| {
            Error::store(
                Code::StoreUnavailable,
                format!("applying migrations/postgres: {e}"),
            )
        })?;
        // What migration 0004 cannot do in SQL: the registry's folded names.
        let filled = registry::fill_folded(self).await?;
        if filled > 0 {
            tracing::info!(filled, "agency registry: folded names filled for searching");
        }
        Ok(())
    }

    /// Takes back the leases of replicas that died (see `deliveries::take_back_leases`): the
    /// node calls this at start with a test that recognises its own earlier incarnations
    /// (`node::outbox::LeaseOwner::is_dead_here`), so a restarted replica resends what it was
    /// sending at once instead of after `retry.lease`. Returns how many were taken back.
    pub async fn take_back_leases(
        &self,
        is_dead: impl Fn(&str) -> bool,
        actor: &str,
        now: i64,
    ) -> Result<u64> {
        deliveries::take_back_leases(self, is_dead, actor, now).await
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the store's own modules and tests of this crate.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `write` in this replica's next group transaction (see `group.rs`). It must not
    /// commit; its `Err` rolls back its own changes only. Audit records it appends
    /// (`audit::append`) commit with it.
    async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::PgConnection) -> group::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        self.group.write(write).await
    }

    /// [`write`](Self::write) in two steps: queues `write` (this replica's writes run in the
    /// order they were queued) and returns what answers once its group committed.
    async fn write_queued<T, F>(
        &self,
        write: F,
    ) -> Result<impl std::future::Future<Output = Result<T>> + Send + 'static + use<T, F>>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::PgConnection) -> group::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        self.group.queue(write).await
    }
}

/// `url` without its password (`postgres://user:***@host/db`), for messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and row helpers shared by the submodules
// ---------------------------------------------------------------------------------------------

/// A database error as a store error: constraint violations are refused input
/// (`VALUE_INVALID`; the operations check the expected conflicts themselves and report them with
/// their own codes first), anything else — the server gone, a statement timeout, a failover —
/// is `STORE_UNAVAILABLE` (worth retrying).
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e
        && (d.is_unique_violation() || d.is_check_violation() || d.is_foreign_key_violation())
    {
        return Error::store(Code::ValueInvalid, format!("refused by the store: {d}"));
    }
    Error::store(Code::StoreUnavailable, format!("store: {e}"))
}

/// A column, with a decoding failure reported as a store problem (it means the schema and the
/// code disagree).
pub(crate) fn col<'r, T>(row: &'r PgRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name)
        .map_err(|e| Error::store(Code::StoreCorrupt, format!("column {name}: {e}")))
}

/// An integer column narrowed to `T` (`STORE_CORRUPT` if it does not fit).
pub(crate) fn col_int<T: TryFrom<i64>>(row: &PgRow, name: &str) -> Result<T> {
    let v: i64 = col(row, name)?;
    T::try_from(v).map_err(|_| {
        Error::store(
            Code::StoreCorrupt,
            format!("column {name}: {v} out of range"),
        )
    })
}

/// [`col_int`] for a nullable column.
pub(crate) fn col_opt_int<T: TryFrom<i64>>(row: &PgRow, name: &str) -> Result<Option<T>> {
    let v: Option<i64> = col(row, name)?;
    v.map(|v| {
        T::try_from(v).map_err(|_| {
            Error::store(
                Code::StoreCorrupt,
                format!("column {name}: {v} out of range"),
            )
        })
    })
    .transpose()
}

impl Store for PgStore {
    async fn last_number(&self, agency: &str, year: i32) -> Result<u32> {
        numbering::last_number(self, agency, year).await
    }

    async fn find_submission(
        &self,
        agency: &str,
        idempotency_key: &str,
        request: Option<&RequestFingerprint>,
    ) -> Result<Option<Submitted>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
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
        let started = std::time::Instant::now();
        let claimed = deliveries::claim_due(self, now, limit, lease_owner, lease_for_ms).await;
        self.metrics.claimed(started.elapsed(), &claimed);
        claimed
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
        self.write(move |_| Box::pin(async move { Ok(audit::append(entry, now)?.seq) }))
            .await
    }

    async fn list_inbox(&self, agency: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>> {
        messages::list_inbox(self, agency, filter).await
    }

    async fn inbox_item(&self, agency: &str, message_id: i64) -> Result<InboxItem> {
        messages::inbox_item(self, agency, message_id).await
    }

    async fn list_outgoing(
        &self,
        agency: &str,
        filter: &OutgoingFilter,
    ) -> Result<Vec<OutgoingItem>> {
        messages::list_outgoing(self, agency, filter).await
    }

    async fn outgoing_deliveries(
        &self,
        agency: &str,
        message_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<DeliveryInfo>>> {
        let all = deliveries::for_messages(self.pool(), message_ids).await?;
        Ok(super::shared::documents_of(agency, all))
    }

    async fn outgoing_item(&self, agency: &str, message_id: i64) -> Result<OutgoingItem> {
        messages::outgoing_item(self, agency, message_id).await
    }

    async fn package_bytes(&self, agency: &str, message_id: i64) -> Result<Vec<u8>> {
        messages::package_bytes(self, agency, message_id).await
    }

    async fn status_history(&self, agency: &str, message_id: i64) -> Result<Vec<StatusRecord>> {
        statuses::status_history(self, agency, message_id).await
    }

    async fn revocation_evidence(
        &self,
        message_id: i64,
    ) -> Result<Vec<crate::store::RevocationEvidence>> {
        revocation::list(self, message_id).await
    }

    async fn message(&self, id: i64) -> Result<MessageInfo> {
        messages::message(self, id).await
    }

    async fn message_bytes(&self, id: i64) -> Result<Vec<u8>> {
        packages::message_bytes(self, id).await
    }

    async fn message_file(&self, id: i64) -> Result<Option<crate::store::PackageFile>> {
        packages::message_file(self, id).await
    }

    async fn find_documents(
        &self,
        direction: Direction,
        sender: &str,
        document_id: &str,
    ) -> Result<Vec<MessageInfo>> {
        messages::find_documents(self, direction, sender, document_id).await
    }

    async fn delivery(&self, id: i64) -> Result<DeliveryInfo> {
        deliveries::delivery(self, id).await
    }

    async fn delivery_receipt(&self, id: i64) -> Result<Option<Vec<u8>>> {
        deliveries::delivery_receipt(self, id).await
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryInfo>> {
        deliveries::list_deliveries(self, filter).await
    }

    async fn count_deliveries(&self, filter: &DeliveryFilter, at_most: u32) -> Result<u64> {
        deliveries::count_deliveries(self, filter, at_most).await
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
        deliveries::attempts(self, delivery_id).await
    }

    async fn delivery_counts(&self) -> Result<BTreeMap<DeliveryState, u64>> {
        deliveries::delivery_counts(self).await
    }

    async fn oldest_pending_age(&self, now: i64) -> Result<Option<i64>> {
        deliveries::oldest_pending_age(self, now).await
    }

    async fn reception_counts(
        &self,
        agency: Option<&str>,
        late_before: i64,
    ) -> Result<ReceptionCounts> {
        messages::reception_counts(self, agency, late_before).await
    }

    async fn registry_list(&self) -> Result<Vec<super::RegistryEntry>> {
        registry::list(self).await
    }

    async fn registry_entry(&self, code: &str) -> Result<Option<super::RegistryEntry>> {
        registry::entry(self, code).await
    }

    async fn registry_search(&self, query: &str, limit: u32) -> Result<Vec<super::RegistryName>> {
        registry::search(self, query, limit).await
    }

    async fn registry_binding(&self, code: &str, sha256: &str) -> Result<super::RegistryBinding> {
        registry::binding(self, code, sha256).await
    }

    async fn registry_set(
        &self,
        entry: super::NewRegistryEntry,
        actor: &str,
        now: i64,
    ) -> Result<(super::RegistryEntry, bool)> {
        registry::set(self, entry, actor, now).await
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

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        audit::records(self, query).await
    }

    async fn audit_browse(&self, query: &super::AuditBrowse) -> Result<Vec<AuditRecord>> {
        audit::browse(self, query).await
    }

    async fn verify_audit(&self) -> Result<AuditVerdict> {
        audit::verify(self).await
    }

    async fn verify_store(&self) -> Result<super::StoreVerdict> {
        crosscheck::verify(self).await
    }

    fn watch_queue(&self, wake: Arc<tokio::sync::Notify>) -> Option<tokio::task::JoinHandle<()>> {
        Some(deliveries::spawn_queue_listener(self.pool.clone(), wake))
    }

    fn store_metrics(&self) -> String {
        self.metrics.render(&self.pool)
    }

    fn write_stalled(&self, longer_than: Duration) -> Option<Duration> {
        self.metrics.group_age().filter(|age| *age > longer_than)
    }
}
