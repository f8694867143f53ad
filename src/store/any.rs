//! One store type for the binary: SQLite or PostgreSQL, chosen by the store URL.
//!
//! The node is generic over `S: Store`; the binary runs it with [`AnyStore`], an enum whose
//! every method is one `match` — no boxing, no `dyn` (the trait returns `impl Future`, so it is
//! not object-safe) and one copy of the node's code for both backends.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::audit::{AuditEntry, AuditRecord};
use crate::error::{Code, Error, Result};

/// A store of either backend.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// `sqlite://…`: one node on one machine.
    Sqlite(SqliteStore),
    /// `postgres://…` (or `postgresql://…`): replicas sharing one database.
    Postgres(PgStore),
}

/// Which backend a store URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`, or `VALUE_INVALID` saying which schemes there are.
    pub fn of(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::store(
                Code::ValueInvalid,
                format!(
                    "store URL {}: the scheme must be sqlite:// or postgres://",
                    postgres::redact(url)
                ),
            ))
        }
    }
}

/// How to open a store of either backend: each backend reads its own part (the node's
/// `[node.postgres]` fills `postgres`; `sqlite` is for tools such as `audit verify`).
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub sqlite: SqliteOptions,
    pub postgres: PgOptions,
}

impl Backend {
    /// `url` as it may be shown in logs and messages: a PostgreSQL URL without its password
    /// (`postgres://user:***@host/db`); anything else as it is.
    pub fn shown(url: &str) -> String {
        postgres::redact(url)
    }

    /// The spelling of the backend in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl AnyStore {
    /// Opens the store `url` names with default options, applying pending migrations.
    pub async fn open(url: &str) -> Result<AnyStore> {
        AnyStore::open_with(url, &StoreOptions::default()).await
    }

    /// [`open`](Self::open) with each backend's options.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<AnyStore> {
        match Backend::of(url)? {
            Backend::Sqlite => Ok(AnyStore::Sqlite(
                SqliteStore::open_with(url, &options.sqlite).await?,
            )),
            Backend::Postgres => Ok(AnyStore::Postgres(
                PgStore::open_with(url, &options.postgres).await?,
            )),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            AnyStore::Sqlite(_) => Backend::Sqlite,
            AnyStore::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the backend's connections.
    pub async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => s.close().await,
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}

impl From<SqliteStore> for AnyStore {
    fn from(s: SqliteStore) -> AnyStore {
        AnyStore::Sqlite(s)
    }
}

impl From<PgStore> for AnyStore {
    fn from(s: PgStore) -> AnyStore {
        AnyStore::Postgres(s)
    }
}

/// `$call` on whichever store `$self` holds.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Sqlite($s) => $call,
            AnyStore::Postgres($s) => $call,
        }
    };
}

impl Store for AnyStore {
    async fn last_number(&self, agency: &str, year: i32) -> Result<u32> {
        each!(self, s => s.last_number(agency, year).await)
    }

    async fn find_submission(
        &self,
        agency: &str,
        idempotency_key: &str,
        request: Option<&RequestFingerprint>,
    ) -> Result<Option<Submitted>> {
        each!(self, s => s.find_submission(agency, idempotency_key, request).await)
    }

    async fn submit_outgoing(&self, new: NewOutgoing, now: i64) -> Result<Submitted> {
        each!(self, s => s.submit_outgoing(new, now).await)
    }

    async fn queue_outgoing(
        &self,
        new: NewOutgoing,
        now: i64,
        turn: Turn,
    ) -> Result<Pending<Submitted>> {
        each!(self, s => s.queue_outgoing(new, now, turn).await)
    }

    async fn ingest_incoming(&self, new: NewIncoming, now: i64) -> Result<IngestOutcome> {
        each!(self, s => s.ingest_incoming(new, now).await)
    }

    async fn record_status(&self, new: NewStatus, now: i64) -> Result<StatusOutcome> {
        each!(self, s => s.record_status(new, now).await)
    }

    async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_owner: &str,
        lease_for_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>> {
        each!(self, s => s.claim_due(now, limit, lease_owner, lease_for_ms).await)
    }

    async fn mark_delivered(&self, lease: Lease, receipt: Vec<u8>, now: i64) -> Result<()> {
        each!(self, s => s.mark_delivered(lease, receipt, now).await)
    }

    async fn retry_later(
        &self,
        lease: Lease,
        error: DeliveryError,
        next_attempt_at: i64,
        now: i64,
    ) -> Result<()> {
        each!(self, s => s.retry_later(lease, error, next_attempt_at, now).await)
    }

    async fn mark_failed(&self, lease: Lease, error: DeliveryError, now: i64) -> Result<()> {
        each!(self, s => s.mark_failed(lease, error, now).await)
    }

    async fn reject_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        each!(self, s => s.reject_delivery(delivery_id, reason, actor, now).await)
    }

    async fn cancel_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        each!(self, s => s.cancel_delivery(delivery_id, reason, actor, now).await)
    }

    async fn operator_retry(&self, delivery_id: i64, actor: &str, now: i64) -> Result<()> {
        each!(self, s => s.operator_retry(delivery_id, actor, now).await)
    }

    async fn record_admin_action(&self, entry: AuditEntry, now: i64) -> Result<i64> {
        each!(self, s => s.record_admin_action(entry, now).await)
    }

    async fn list_inbox(&self, agency: &str, filter: &InboxFilter) -> Result<Vec<InboxItem>> {
        each!(self, s => s.list_inbox(agency, filter).await)
    }

    async fn inbox_item(&self, agency: &str, message_id: i64) -> Result<InboxItem> {
        each!(self, s => s.inbox_item(agency, message_id).await)
    }

    async fn list_outgoing(
        &self,
        agency: &str,
        filter: &OutgoingFilter,
    ) -> Result<Vec<OutgoingItem>> {
        each!(self, s => s.list_outgoing(agency, filter).await)
    }

    async fn outgoing_deliveries(
        &self,
        agency: &str,
        message_ids: &[i64],
    ) -> Result<BTreeMap<i64, Vec<DeliveryInfo>>> {
        each!(self, s => s.outgoing_deliveries(agency, message_ids).await)
    }

    async fn outgoing_item(&self, agency: &str, message_id: i64) -> Result<OutgoingItem> {
        each!(self, s => s.outgoing_item(agency, message_id).await)
    }

    async fn package_bytes(&self, agency: &str, message_id: i64) -> Result<Vec<u8>> {
        each!(self, s => s.package_bytes(agency, message_id).await)
    }

    async fn status_history(&self, agency: &str, message_id: i64) -> Result<Vec<StatusRecord>> {
        each!(self, s => s.status_history(agency, message_id).await)
    }

    async fn message(&self, id: i64) -> Result<MessageInfo> {
        each!(self, s => s.message(id).await)
    }

    async fn revocation_evidence(&self, message_id: i64) -> Result<Vec<RevocationEvidence>> {
        each!(self, s => s.revocation_evidence(message_id).await)
    }

    async fn message_bytes(&self, id: i64) -> Result<Vec<u8>> {
        each!(self, s => s.message_bytes(id).await)
    }

    async fn message_file(&self, id: i64) -> Result<Option<PackageFile>> {
        each!(self, s => s.message_file(id).await)
    }

    async fn find_documents(
        &self,
        direction: Direction,
        sender: &str,
        document_id: &str,
    ) -> Result<Vec<MessageInfo>> {
        each!(self, s => s.find_documents(direction, sender, document_id).await)
    }

    async fn delivery(&self, id: i64) -> Result<DeliveryInfo> {
        each!(self, s => s.delivery(id).await)
    }

    async fn delivery_receipt(&self, id: i64) -> Result<Option<Vec<u8>>> {
        each!(self, s => s.delivery_receipt(id).await)
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryInfo>> {
        each!(self, s => s.list_deliveries(filter).await)
    }

    async fn count_deliveries(&self, filter: &DeliveryFilter, at_most: u32) -> Result<u64> {
        each!(self, s => s.count_deliveries(filter, at_most).await)
    }

    async fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptInfo>> {
        each!(self, s => s.attempts(delivery_id).await)
    }

    async fn delivery_counts(&self) -> Result<BTreeMap<DeliveryState, u64>> {
        each!(self, s => s.delivery_counts().await)
    }

    async fn oldest_pending_age(&self, now: i64) -> Result<Option<i64>> {
        each!(self, s => s.oldest_pending_age(now).await)
    }

    async fn reception_counts(
        &self,
        agency: Option<&str>,
        late_before: i64,
    ) -> Result<ReceptionCounts> {
        each!(self, s => s.reception_counts(agency, late_before).await)
    }

    async fn registry_list(&self) -> Result<Vec<RegistryEntry>> {
        each!(self, s => s.registry_list().await)
    }

    async fn registry_entry(&self, code: &str) -> Result<Option<RegistryEntry>> {
        each!(self, s => s.registry_entry(code).await)
    }

    async fn registry_search(&self, query: &str, limit: u32) -> Result<Vec<RegistryName>> {
        each!(self, s => s.registry_search(query, limit).await)
    }

    async fn registry_binding(&self, code: &str, sha256: &str) -> Result<RegistryBinding> {
        each!(self, s => s.registry_binding(code, sha256).await)
    }

    async fn registry_set(
        &self,
        entry: NewRegistryEntry,
        actor: &str,
        now: i64,
    ) -> Result<(RegistryEntry, bool)> {
        each!(self, s => s.registry_set(entry, actor, now).await)
    }

    async fn registry_remove(&self, code: &str, actor: &str, now: i64) -> Result<()> {
        each!(self, s => s.registry_remove(code, actor, now).await)
    }

    async fn registry_import(
        &self,
        entries: Vec<NewRegistryEntry>,
        replace_all: bool,
        actor: &str,
        now: i64,
    ) -> Result<ImportOutcome> {
        each!(self, s => s.registry_import(entries, replace_all, actor, now).await)
    }

    async fn mark_relayed(&self, lease: Lease, reply: String, now: i64) -> Result<()> {
        each!(self, s => s.mark_relayed(lease, reply, now).await)
    }

    async fn mail_checkpoint(&self, mailbox: &str) -> Result<Option<MailCheckpoint>> {
        each!(self, s => s.mail_checkpoint(mailbox).await)
    }

    async fn take_mail(
        &self,
        mail: TakenMail,
        reply_interval_ms: i64,
        now: i64,
    ) -> Result<TakeOutcome> {
        each!(self, s => s.take_mail(mail, reply_interval_ms, now).await)
    }

    async fn list_mail_log(&self, filter: &MailLogFilter) -> Result<Vec<MailLogItem>> {
        each!(self, s => s.list_mail_log(filter).await)
    }

    async fn mail_log_item(&self, id: i64) -> Result<MailLogItem> {
        each!(self, s => s.mail_log_item(id).await)
    }

    async fn mail_taken(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        message_id: Option<&str>,
    ) -> Result<Option<MailLogItem>> {
        each!(self, s => s.mail_taken(mailbox, uidvalidity, uid, message_id).await)
    }

    async fn record_mail_sent(&self, mail: SentMail, now: i64) -> Result<i64> {
        each!(self, s => s.record_mail_sent(mail, now).await)
    }

    async fn list_drafts(&self, agency: &str, filter: &DraftFilter) -> Result<Vec<DraftItem>> {
        each!(self, s => s.list_drafts(agency, filter).await)
    }

    async fn draft(&self, agency: &str, id: i64) -> Result<DraftItem> {
        each!(self, s => s.draft(agency, id).await)
    }

    async fn draft_file(&self, agency: &str, id: i64, index: u32) -> Result<DraftFile> {
        each!(self, s => s.draft_file(agency, id, index).await)
    }

    async fn discard_draft(
        &self,
        agency: &str,
        id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<()> {
        each!(self, s => s.discard_draft(agency, id, reason, actor, now).await)
    }

    async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        each!(self, s => s.audit_records(query).await)
    }

    async fn audit_browse(&self, query: &AuditBrowse) -> Result<Vec<AuditRecord>> {
        each!(self, s => s.audit_browse(query).await)
    }

    async fn verify_audit(&self) -> Result<AuditVerdict> {
        each!(self, s => s.verify_audit().await)
    }

    async fn verify_store(&self) -> Result<StoreVerdict> {
        each!(self, s => s.verify_store().await)
    }

    fn watch_queue(&self, wake: Arc<tokio::sync::Notify>) -> Option<tokio::task::JoinHandle<()>> {
        each!(self, s => s.watch_queue(wake))
    }

    fn store_metrics(&self) -> String {
        each!(self, s => s.store_metrics())
    }

    fn write_stalled(&self, longer_than: std::time::Duration) -> Option<std::time::Duration> {
        each!(self, s => s.write_stalled(longer_than))
    }
}
