//! What the store keeps for the mail bridge: where each mailbox has been read to, what every
//! mail taken in became (the mail log, whose `quarantined` rows are the quarantine), drafts made
//! from agencies' mail, and when a sender was last answered automatically.
//!
//! The exactly-once rule of the inbound side rests on [`Store::take_mail`](super::Store::take_mail):
//! the mailbox's checkpoint (UIDVALIDITY, last UID) moves in the same transaction as everything
//! the mail produced (its log row, the receipts it is answered with, the draft, the bounce),
//! so after a crash a mail is either wholly taken in (and only moved to its folder again) or
//! not at all (and read again). A package the mail carried is stored before, by
//! `ingest_incoming`, whose deduplication makes a second reading of the same mail a repeat that
//! stores nothing.

use serde::Serialize;

use super::types::{NewStatus, Page};

/// Where a mailbox (`user@host/folder`) has been read to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MailCheckpoint {
    /// The folder's UIDVALIDITY when it was read: another value means the UIDs were reassigned
    /// and the folder is read again from the start (deduplication keeps that harmless).
    pub uidvalidity: u32,
    /// The highest UID taken in.
    pub last_uid: u32,
}

/// One mail taken in: what it was, and what it produced.
#[derive(Debug, Clone)]
pub struct TakenMail {
    /// The mailbox's key (`user@host/folder`).
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    /// The envelope sender (`Return-Path`), empty for `<>` (a bounce).
    pub return_path: String,
    /// `From:` as an address (never trusted for anything but replies and drafts).
    pub from: String,
    /// `Subject:` decoded, control characters removed, at most 300 characters.
    pub subject: String,
    /// `Message-ID:` without the angle brackets, if any (at most 300 characters).
    pub message_id: Option<String>,
    pub size: u64,
    pub effect: MailEffect,
    /// `mail:<mailbox>` for the audit record.
    pub actor: String,
}

/// What a mail produced.
#[derive(Debug, Clone)]
pub enum MailEffect {
    /// A document package, stored before by `ingest_incoming` (`message_id`; `duplicate` when
    /// it was a repeat). `receipts`: each local recipient's 01 to send back, recorded as an
    /// outgoing status (history row, status package, its delivery) exactly as
    /// [`Store::record_status`](super::Store::record_status) would — in this transaction —
    /// except that, being the automatic arrival receipt, it is checked as one (not as a
    /// clerk's report, which may never be 01) and leaves the inbox's current status as a
    /// peer's arrival does. A receipt of a recipient that has its 01 on the document already
    /// (the same document in another mail, or a follow-up package of it), or that the
    /// document's history otherwise excludes (the recipient has gone further), is skipped: the
    /// mail is taken in all the same and its `mail.take` record says why.
    Document {
        message_id: i64,
        duplicate: bool,
        receipts: Vec<NewStatus>,
    },
    /// A status package, recorded before by `record_status` (`None` when it was refused as a
    /// repeat or could not be tied to a message).
    Status { message_id: Option<i64> },
    /// A draft of a local agency, from its registered mailbox.
    Draft(NewDraft),
    /// A delivery-status notification (RFC 3464) naming one of our mails: the delivery moves
    /// `delivered → failed` (also from `sending`/`retrying`/`queued` — a copy the relay took
    /// before a retry —, whose lease or schedule it ends) with an attempt row `failed`, code
    /// `MAIL_BOUNCED` and `reason`; history keeps the earlier attempts. A delivery already
    /// `failed`, `rejected` or `cancelled` is left as it is (the log row says so: code
    /// `INVALID_TRANSITION`). A delivery that does not go by mail is refused
    /// (`INVALID_TRANSITION`, nothing written).
    Bounce { delivery_id: i64, reason: String },
    /// Not taken in: kept in the quarantine folder. `reply_to`: the address an automatic reply
    /// may go to (RFC 3834 already checked by the caller); the store decides whether the
    /// interval allows one ([`TakeOutcome::reply_allowed`]) and records it if so.
    Quarantined {
        /// A stable reason code (`MAIL_TOO_LARGE`, `MAIL_NOT_UNDERSTOOD`, `SIGNATURE_INVALID`, …).
        code: String,
        /// The reason in English, for operators.
        reason: String,
        reply_to: Option<String>,
    },
}

impl MailEffect {
    /// The spelling in the mail log's `outcome` column and the API.
    pub fn outcome(&self) -> &'static str {
        match self {
            MailEffect::Document { .. } => "document",
            MailEffect::Status { .. } => "status",
            MailEffect::Draft(_) => "draft",
            MailEffect::Bounce { .. } => "bounce",
            MailEffect::Quarantined { .. } => "quarantined",
        }
    }
}

/// What [`Store::take_mail`](super::Store::take_mail) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakeOutcome {
    /// The mail log row.
    pub log_id: i64,
    /// Quarantined with a `reply_to` and no reply to that address within the interval: the
    /// caller sends one (and the store has recorded it as sent).
    pub reply_allowed: bool,
    pub draft_id: Option<i64>,
    /// The receipts' deliveries created.
    pub deliveries: Vec<i64>,
}

/// A draft made from an agency's mail: nothing is numbered or signed until a clerk approves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDraft {
    /// The local agency whose registered mailbox sent it.
    pub agency: String,
    /// Prefilled from the subject when it carries them (`Số 12/UBND-VP: V/v …`).
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    /// Trích yếu: the rest of the subject.
    pub summary: String,
    /// The mail's text body (at most 64 KiB), for the clerk's reference.
    pub body: String,
    pub files: Vec<DraftFile>,
}

/// A file of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftFile {
    /// Sanitised (`edxml::file_name`).
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Where a draft is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftState {
    /// Waiting for a clerk.
    Draft,
    /// A clerk approved it: it was numbered, signed and sent as `message_id`.
    Approved,
    /// A clerk discarded it.
    Discarded,
}

impl DraftState {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftState::Draft => "draft",
            DraftState::Approved => "approved",
            DraftState::Discarded => "discarded",
        }
    }
}

/// A draft as a clerk sees it (files without their bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DraftItem {
    pub id: i64,
    pub agency: String,
    pub state: DraftState,
    pub from: String,
    pub subject: String,
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    pub summary: String,
    pub body: String,
    pub files: Vec<DraftFileInfo>,
    pub created_at: i64,
    /// When it was approved or discarded, by whom, and why (discarded).
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    /// The document it became.
    pub message_id: Option<i64>,
    /// The mail log row it came from.
    pub mail_log_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DraftFileInfo {
    pub index: u32,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default)]
pub struct DraftFilter {
    pub state: Option<DraftState>,
    pub page: Page,
}

/// One mail taken in, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailLogItem {
    pub id: i64,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub return_path: String,
    pub from: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub size: u64,
    /// `document`, `status`, `draft`, `bounce`, `quarantined`.
    pub outcome: String,
    /// Quarantined: the reason's code and text; bounce: `MAIL_BOUNCED` and the reason, or
    /// `INVALID_TRANSITION` and why the delivery was left as it was (already final).
    pub code: Option<String>,
    pub reason: Option<String>,
    /// The message, draft or delivery it produced.
    pub message_ref: Option<i64>,
    pub draft_ref: Option<i64>,
    pub delivery_ref: Option<i64>,
    /// Whether an automatic reply went to the sender.
    pub replied: bool,
    pub taken_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct MailLogFilter {
    pub outcome: Option<String>,
    pub page: Page,
}

/// A mail the node sent outside the outbox (a notification, an automatic reply), for the audit
/// chain: every mail sent is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// `notify.arrival`, `notify.failed`, `notify.status`, `notify.cert_expiry`, `reply.quarantine`.
    pub kind: String,
    pub to: Vec<String>,
    pub message_id: String,
    /// The relay's reply, or why it was not sent.
    pub outcome: String,
    pub sent: bool,
}
