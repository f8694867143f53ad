//! The one store interface: everything the node knows lives behind [`Store`].
//!
//! The node (and only the node) calls it; `http` and `cli` go through the node. Two rules every
//! implementation keeps, because the design's invariants rest on them:
//!
//! - **Each write is one transaction, committed before the method returns** — the change, its
//!   audit record ([`crate::audit`]) and everything that must not exist without it. So a caller
//!   that got `Ok` may acknowledge (invariant 1), and one that got `Err` knows nothing was written
//!   (invariant 5).
//! - **Time comes from the caller** (`now`, Unix milliseconds). The store never reads the clock,
//!   so tests are deterministic and one request has one time.
//!
//! Errors carry a [`Code`](crate::Code): `NOT_FOUND`, `DUPLICATE_CONFLICT`, `NUMBER_TAKEN`,
//! `INVALID_TRANSITION`, `STATUS_NOT_FROM_RECIPIENT`, `STATUS_TIME_INVALID`, `FOLLOW_UP_EXISTS`,
//! `VALUE_INVALID` (input the store refuses), `STORE_UNAVAILABLE` (I/O,
//! locks, corruption — worth retrying later), `AUDIT_BROKEN`.
//!
//! - **A package is stored whole before the commit that names it.** An implementation may keep
//!   large packages outside its database (the SQLite store keeps those of 1 MiB or more as files
//!   beside it, `sqlite/files.rs`); it writes and syncs them before the transaction that refers
//!   to them commits, so a committed row never lacks its bytes, and the node removes what no
//!   committed row names when it starts. Callers see the same bytes either way.
//!
//! [`SqliteStore`] is the implementation for one node; a PostgreSQL one (several replicas sharing
//! the work) implements the same trait. The trait is not object-safe (its methods return
//! `impl Future`); the node is generic over `S: Store`, or uses an enum of the backends.

use std::collections::BTreeMap;
use std::future::Future;

use crate::audit::{AuditBreak, AuditEntry, AuditRecord, ChainSummary};
use crate::error::Result;

mod any;
pub mod copy;
mod mail;
pub mod migrate;
pub mod postgres;
mod registry;
pub(crate) mod shared;
pub mod sqlite;
mod types;

pub use any::{AnyStore, Backend, StoreOptions};
pub use postgres::{PgOptions, PgStore};

pub use mail::*;
pub use registry::*;
pub use sqlite::{NodeLock, SqliteOptions, SqliteStore};
pub use types::*;

/// The result of verifying the audit chain: the summary, or where it breaks. The outer `Result`
/// of [`Store::verify_audit`] is for the store itself failing.
pub type AuditVerdict = std::result::Result<ChainSummary, AuditBreak>;

/// A write that is queued: resolves once its transaction committed (or failed).
pub type Pending<T> = std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>;

/// What a write waits for before it is queued (see [`Store::queue_outgoing`]).
pub type Turn = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The result of [`Store::verify_store`]: the chain's summary with every row cross-checked
/// against it (the report may list differences), or where the chain breaks (rows are then not
/// checked: records that are not the ones written cannot vouch for anything).
pub type StoreVerdict = std::result::Result<crate::audit::crosscheck::Report, AuditBreak>;

/// What the node needs from its store. Every future is `Send`, so calls can run in
/// `tokio::spawn`ed tasks (clone an `Arc<S>` and owned arguments into the task).
pub trait Store: Send + Sync + 'static {
    // --- sending ----------------------------------------------------------------------------

    /// The last số `agency`'s sequence for `year` has given (0 before the first document of the
    /// year). A read: numbers are taken only by the transaction that stores their document
    /// ([`Numbering::Next`]), so a refused or crashed submission never leaves a gap.
    fn last_number(&self, agency: &str, year: i32) -> impl Future<Output = Result<u32>> + Send;

    /// The submission an earlier request with this idempotency key created, if any. Check this
    /// before composing and signing, so a retried POST does not allocate a number again. With
    /// `request`, a key first used for another request is `IDEMPOTENCY_KEY_REUSED`
    /// ([`RequestFingerprint::check_reuse`]); `submit_outgoing` checks the same in its
    /// transaction.
    fn find_submission(
        &self,
        agency: &str,
        idempotency_key: &str,
        request: Option<&RequestFingerprint>,
    ) -> impl Future<Output = Result<Option<Submitted>>> + Send;

    /// Stores an outgoing document, one `queued` delivery per recipient (due `now`), the
    /// idempotency key and one audit record (`document.submit`), in one transaction.
    ///
    /// A repeat of an idempotency key returns the original submission (`existing: true`) and
    /// stores nothing. `NUMBER_TAKEN` if the agency already issued this số/ký hiệu this year
    /// (new documents and replacements only). A numeric số above the agency's sequence moves the
    /// sequence up to it (so the sequence never offers a number a clerk already typed in); with
    /// [`Numbering::Next`] the số must be exactly the one after the sequence's last.
    /// `FOLLOW_UP_EXISTS` for a revocation or update the document's earlier packages exclude
    /// ([`crate::edxml::processing::check_follow_up`], checked in the same transaction: a second
    /// revocation, a second update, an update after a revocation).
    fn submit_outgoing(
        &self,
        new: NewOutgoing,
        now: i64,
    ) -> impl Future<Output = Result<Submitted>> + Send {
        async move {
            let now_is_the_turn: Turn = Box::pin(std::future::ready(()));
            self.queue_outgoing(new, now, now_is_the_turn).await?.await
        }
    }

    /// [`submit_outgoing`](Self::submit_outgoing) in two steps: checks `new`, puts a large
    /// package on disk, waits for `turn`, queues the transaction — then the returned future
    /// answers once it committed. Writes queued one after the other run in that order, so a
    /// caller that hands out numbers makes each submission's `turn` the queueing of the one
    /// numbered before it, and lets the next be signed and written while this one waits.
    fn queue_outgoing(
        &self,
        new: NewOutgoing,
        now: i64,
        turn: Turn,
    ) -> impl Future<Output = Result<Pending<Submitted>>> + Send;

    // --- receiving --------------------------------------------------------------------------

    /// Stores a received document with one inbox row per local recipient, each with that
    /// recipient's receipt, and one audit record (`document.receive`), in one transaction — or
    /// recognises a repeat: the same (sender, DocumentId, business type) with the same SHA-256
    /// is a [`IngestOutcome::Duplicate`] carrying the original receipts (nothing is written); with different bytes it is
    /// `DUPLICATE_CONFLICT`. Safe under concurrent identical ingests: exactly one is stored.
    fn ingest_incoming(
        &self,
        new: NewIncoming,
        now: i64,
    ) -> impl Future<Output = Result<IngestOutcome>> + Send;

    /// Records a processing status, received or issued, in one transaction: the status package,
    /// the history row, the recipient's inbox status (and `revoked` on 15), outgoing deliveries
    /// to the reporter moved to `rejected` on 02, the status package's own deliveries (`Out`),
    /// and one audit record (`status.record`).
    ///
    /// The document (`document_sender`, `document_id`) must be known to this node
    /// (`NOT_FOUND` otherwise). The same report again (document, reporter, code, timestamp) is a
    /// duplicate: nothing is written. Otherwise the status is checked, in the same transaction,
    /// against the document's history as this store holds it — the packages sent to the
    /// reporter, its earlier reports, the sender's 13s — by [`crate::edxml::processing`]:
    /// `STATUS_NOT_FROM_RECIPIENT`, `STATUS_TIME_INVALID` or `INVALID_TRANSITION`, nothing
    /// written. On 15 the reporter's copies are revoked only when it answers a revocation (or a
    /// bare 13).
    fn record_status(
        &self,
        new: NewStatus,
        now: i64,
    ) -> impl Future<Output = Result<StatusOutcome>> + Send;

    // --- the outbox -------------------------------------------------------------------------

    /// Claims up to `limit` deliveries that are due (`queued`/`retrying` with `next_attempt_at <=
    /// now`, or `sending` with an expired lease — the worker holding it crashed), oldest due
    /// first: each becomes `sending`, leased to `lease_owner` until `now + lease_for_ms`, with a
    /// new attempt row and an audit record (`delivery.claim`). Atomic: two workers never claim the
    /// same delivery while a lease is live.
    fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_owner: &str,
        lease_for_ms: i64,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>>> + Send;

    /// `sending → delivered`, keeping the receipt that proves it.
    fn mark_delivered(
        &self,
        lease: Lease,
        receipt: Vec<u8>,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// `sending → retrying`, due again at `next_attempt_at` (the node computes backoff and
    /// jitter).
    fn retry_later(
        &self,
        lease: Lease,
        error: DeliveryError,
        next_attempt_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// `sending → failed`: retrying will not help; an operator retries or cancels.
    fn mark_failed(
        &self,
        lease: Lease,
        error: DeliveryError,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    // --- operators --------------------------------------------------------------------------

    /// `→ rejected` (from any state but `cancelled`/`rejected`): the recipient refused the
    /// document. [`record_status`](Self::record_status) does this itself for a 02.
    fn reject_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// `queued | retrying | failed → cancelled` by an operator. A delivery being sent cannot be
    /// cancelled until its attempt ends.
    fn cancel_delivery(
        &self,
        delivery_id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// `failed | retrying → queued`, due `now`, by an operator.
    fn operator_retry(
        &self,
        delivery_id: i64,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Appends an audit record for an administrative action that changes nothing in the store
    /// (keys, certificates, agencies, peers, configuration). Returns its seq.
    fn record_admin_action(
        &self,
        entry: AuditEntry,
        now: i64,
    ) -> impl Future<Output = Result<i64>> + Send;

    // --- what a clerk sees (always scoped to the clerk's agency) ----------------------------

    /// The agency's received documents, newest first.
    fn list_inbox(
        &self,
        agency: &str,
        filter: &InboxFilter,
    ) -> impl Future<Output = Result<Vec<InboxItem>>> + Send;

    /// One received document of the agency (`NOT_FOUND` if it is not addressed to it).
    fn inbox_item(
        &self,
        agency: &str,
        message_id: i64,
    ) -> impl Future<Output = Result<InboxItem>> + Send;

    /// The agency's sent documents with their deliveries, newest first.
    fn list_outgoing(
        &self,
        agency: &str,
        filter: &OutgoingFilter,
    ) -> impl Future<Output = Result<Vec<OutgoingItem>>> + Send;

    /// The deliveries of the agency's sent documents `message_ids`, by document (an id that is
    /// not a document the agency sent has none).
    fn outgoing_deliveries(
        &self,
        agency: &str,
        message_ids: &[i64],
    ) -> impl Future<Output = Result<BTreeMap<i64, Vec<DeliveryInfo>>>> + Send;

    /// One sent document of the agency with its deliveries.
    fn outgoing_item(
        &self,
        agency: &str,
        message_id: i64,
    ) -> impl Future<Output = Result<OutgoingItem>> + Send;

    /// The exact signed bytes of a package the agency sent or received (`NOT_FOUND` otherwise).
    fn package_bytes(
        &self,
        agency: &str,
        message_id: i64,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// The processing history of a document the agency sent (every recipient's reports) or
    /// received (its own reports and the sender's), oldest first.
    fn status_history(
        &self,
        agency: &str,
        message_id: i64,
    ) -> impl Future<Output = Result<Vec<StatusRecord>>> + Send;

    // --- what the node and operators see ----------------------------------------------------

    fn message(&self, id: i64) -> impl Future<Output = Result<MessageInfo>> + Send;

    /// The revocation evidence stored with received message `message_id` (signer first; empty
    /// when none was kept). Callers check visibility first (e.g. [`Store::inbox_item`]).
    fn revocation_evidence(
        &self,
        message_id: i64,
    ) -> impl Future<Output = Result<Vec<RevocationEvidence>>> + Send;

    /// The exact signed bytes of message `id` (read from its file when the store keeps it as
    /// one; `STORE_CORRUPT` if the file no longer has the SHA-256 its row records).
    fn message_bytes(&self, id: i64) -> impl Future<Output = Result<Vec<u8>>> + Send;

    /// The file holding message `id`'s bytes, when the store keeps them as a file (large
    /// packages), with the SHA-256 they must have: a push can stream it instead of holding it
    /// in memory, and check it as it goes. `None`: use [`message_bytes`](Self::message_bytes).
    /// The file is never changed once its row committed.
    fn message_file(&self, id: i64) -> impl Future<Output = Result<Option<PackageFile>>> + Send {
        let _ = id;
        async { Ok(None) }
    }

    /// Documents with this sender and DocumentId in one direction (the original and its
    /// follow-ups), oldest first.
    fn find_documents(
        &self,
        direction: Direction,
        sender: &str,
        document_id: &str,
    ) -> impl Future<Output = Result<Vec<MessageInfo>>> + Send;

    fn delivery(&self, id: i64) -> impl Future<Output = Result<DeliveryInfo>> + Send;

    /// The receipt a delivered delivery kept (`None` before delivery).
    fn delivery_receipt(&self, id: i64) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Deliveries across agencies, newest first.
    fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> impl Future<Output = Result<Vec<DeliveryInfo>>> + Send;

    /// How many deliveries `filter` matches (its `page.before` applies, its `page.limit` does
    /// not), counted no further than `at_most`.
    fn count_deliveries(
        &self,
        filter: &DeliveryFilter,
        at_most: u32,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// A delivery's attempts, oldest first.
    fn attempts(&self, delivery_id: i64) -> impl Future<Output = Result<Vec<AttemptInfo>>> + Send;

    /// How many deliveries are in each state (every state present, zeros included).
    fn delivery_counts(&self) -> impl Future<Output = Result<BTreeMap<DeliveryState, u64>>> + Send;

    /// How long the oldest pending (`queued`/`sending`/`retrying`) delivery has existed, in ms.
    fn oldest_pending_age(&self, now: i64) -> impl Future<Output = Result<Option<i64>>> + Send;

    /// Tổng quan's Chờ tiếp nhận and Chậm tiếp nhận for `agency` (`None`: every agency whose
    /// documents this store holds): the received documents not yet received (tiếp nhận) by the
    /// agency, those of them received here before `late_before`, and the sent documents with a
    /// delivery delivered before `late_before` whose recipient has not taken it in (no 02–06).
    /// Index reads: the cost follows what waits, not the history.
    fn reception_counts(
        &self,
        agency: Option<&str>,
        late_before: i64,
    ) -> impl Future<Output = Result<ReceptionCounts>> + Send;

    // --- the agency registry (sender binding) ----------------------------------------------

    /// Every registry entry, by code.
    fn registry_list(&self) -> impl Future<Output = Result<Vec<RegistryEntry>>> + Send;

    /// The entry for `code`, if any.
    fn registry_entry(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<RegistryEntry>>> + Send;

    /// The entries whose code or name contains `query` — diacritics, case and runs of white
    /// space ignored ([`fold`], kept folded in the table) — at most `limit` (and at most
    /// [`MAX_REGISTRY_SEARCH`]): a code typed in full first, then codes and names beginning with
    /// `query`, then the rest, each by code. Empty for a query that folds to nothing.
    fn registry_search(
        &self,
        query: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RegistryName>>> + Send;

    /// The rules of `code` and the other codes naming the certificate `sha256`, in one read:
    /// what binding a received package's signer needs.
    fn registry_binding(
        &self,
        code: &str,
        sha256: &str,
    ) -> impl Future<Output = Result<RegistryBinding>> + Send;

    /// Adds or replaces (all rules of) one entry, with its audit record (`registry.set`).
    /// `VALUE_INVALID` for an entry [`NewRegistryEntry::normalised`] refuses. Returns the entry
    /// as stored and whether it is new.
    fn registry_set(
        &self,
        entry: NewRegistryEntry,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<(RegistryEntry, bool)>> + Send;

    /// Removes the entry for `code` with its audit record (`registry.remove`); `NOT_FOUND` if
    /// there is none.
    fn registry_remove(
        &self,
        code: &str,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Adds or replaces every entry of `entries` — and with `replace_all`, removes the entries it
    /// does not list — in one transaction, all or nothing, with one audit record per entry
    /// changed and one for the import (`registry.import`). A code listed twice is
    /// `VALUE_INVALID` naming both positions.
    fn registry_import(
        &self,
        entries: Vec<NewRegistryEntry>,
        replace_all: bool,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<ImportOutcome>> + Send;

    // --- the mail bridge -------------------------------------------------------------------

    /// `sending → delivered` for a mail channel delivery: the relay accepted the message.
    /// `reply` (the relay's answer, e.g. `250 2.0.0 Ok: queued as 4F1…`) is kept on the
    /// attempt; there is no receipt.
    fn mark_relayed(
        &self,
        lease: Lease,
        reply: String,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Where `mailbox` has been read to (`None` before its first mail).
    fn mail_checkpoint(
        &self,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<MailCheckpoint>>> + Send;

    /// Takes one mail in, in one transaction: the mailbox's checkpoint moves to
    /// (`uidvalidity`, `uid`), the mail log row, what the mail produced ([`MailEffect`]) and its
    /// audit records (`mail.take`; before it, a receipt's `status.record` and a bounce's
    /// `delivery.bounce`). `INVALID_TRANSITION` (nothing written) when the checkpoint is
    /// already at or past `uid` under the same UIDVALIDITY: the mail was taken in before.
    fn take_mail(
        &self,
        mail: TakenMail,
        reply_interval_ms: i64,
        now: i64,
    ) -> impl Future<Output = Result<TakeOutcome>> + Send;

    /// Mails taken in, newest first (the quarantine: `outcome = quarantined`).
    fn list_mail_log(
        &self,
        filter: &MailLogFilter,
    ) -> impl Future<Output = Result<Vec<MailLogItem>>> + Send;

    /// One mail log row.
    fn mail_log_item(&self, id: i64) -> impl Future<Output = Result<MailLogItem>> + Send;

    /// What became of a mail of `mailbox`: the log row of (`uidvalidity`, `uid`), or, with
    /// `message_id`, the newest row of the mailbox with that `Message-ID` — how a mail still in
    /// the folder after its UIDVALIDITY changed (new UIDs for old mails) is recognised as taken
    /// in, so a draft or a quarantine is not made twice.
    fn mail_taken(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
        message_id: Option<&str>,
    ) -> impl Future<Output = Result<Option<MailLogItem>>> + Send;

    /// Records a mail the node sent outside the outbox (notification, automatic reply) in the
    /// audit chain (`mail.send`). Returns the record's seq.
    fn record_mail_sent(
        &self,
        mail: SentMail,
        now: i64,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// The agency's drafts, newest first.
    fn list_drafts(
        &self,
        agency: &str,
        filter: &DraftFilter,
    ) -> impl Future<Output = Result<Vec<DraftItem>>> + Send;

    /// One draft of the agency (`NOT_FOUND` otherwise).
    fn draft(&self, agency: &str, id: i64) -> impl Future<Output = Result<DraftItem>> + Send;

    /// A draft's file with its bytes (`NOT_FOUND` for another agency's draft or no such file).
    fn draft_file(
        &self,
        agency: &str,
        id: i64,
        index: u32,
    ) -> impl Future<Output = Result<DraftFile>> + Send;

    /// `draft → discarded` by a clerk, with the reason and an audit record (`draft.discard`);
    /// `INVALID_TRANSITION` when it is no longer a draft. (Approval is
    /// [`NewOutgoing::from_draft`] in the submission's transaction.)
    fn discard_draft(
        &self,
        agency: &str,
        id: i64,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    // --- audit ------------------------------------------------------------------------------

    /// Audit records, oldest first (for export).
    fn audit_records(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditRecord>>> + Send;

    /// Audit records newest first, for browsing (the console's Nhật ký kiểm toán).
    fn audit_browse(
        &self,
        query: &AuditBrowse,
    ) -> impl Future<Output = Result<Vec<AuditRecord>>> + Send;

    /// Verifies the whole chain.
    fn verify_audit(&self) -> impl Future<Output = Result<AuditVerdict>> + Send;

    /// Verifies the whole chain and then that the store still holds what it records: every
    /// message (with its inbox rows), status, delivery, agency registry entry and mail bridge
    /// row (mail log, drafts and their files, checkpoints, reply limits) a record created is
    /// present, no row exists that no record created, each row's fields are what its records say, and every package's bytes (however
    /// it is kept) hash to the SHA-256 its record holds (`lienthong audit verify`). One
    /// consistent snapshot; reads and hashes every package, so it costs about a full read of
    /// the store.
    fn verify_store(&self) -> impl Future<Output = Result<StoreVerdict>> + Send;

    // --- operations -------------------------------------------------------------------------

    /// Wakes `wake` whenever a delivery is queued in this store by anyone — another replica
    /// sharing the database included — so an outbox need not wait for its next poll. `None`
    /// (the default): only this process queues, and it wakes its own outbox.
    fn watch_queue(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let _ = wake;
        None
    }

    /// Lines of Prometheus text the backend adds to `/metrics` (its pool, its claims); empty
    /// by default.
    fn store_metrics(&self) -> String {
        String::new()
    }

    /// How long a write has been waiting for its commit, when that is longer than
    /// `longer_than`: `/readyz` says not ready while it is. A commit that waits for ever is
    /// what a primary does when its synchronous standby is gone — nothing is acknowledged
    /// meanwhile, and the operator must know. `None` by default.
    fn write_stalled(&self, longer_than: std::time::Duration) -> Option<std::time::Duration> {
        let _ = longer_than;
        None
    }
}
