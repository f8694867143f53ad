//! The rows a store feeds the cross-check, and each as the values of its entity's field list.
//!
//! Long text columns (subject, header, description) and BLOBs (package, receipt) are compared by
//! their SHA-256 ([`sha256_hex`]): what the audit records carry for them.

use super::fields::Value;
use crate::audit::hash::sha256_hex;

/// The fields of a `messages` row that audit records attest, in digest order.
pub const MESSAGE_FIELDS: [&str; 20] = [
    "direction",
    "kind",
    "sender",
    "document_id",
    "business_type",
    "status_code",
    "code",
    "year",
    "subject_sha256",
    "sha256",
    "size",
    "signer_subject",
    "signer_fingerprint",
    "header_sha256",
    "peer",
    "actor",
    "created_at",
    "receipt_sha256",
    "bytes_sha256",
    "inbox",
];
pub(crate) const M: usize = MESSAGE_FIELDS.len();
/// Index of the package bytes' hash in [`MESSAGE_FIELDS`] (its difference is `STORE_CORRUPT`).
pub(crate) const BYTES: usize = 18;

/// The fields of a `statuses` row.
pub const STATUS_FIELDS: [&str; 9] = [
    "document_sender",
    "document_id",
    "reporter",
    "code",
    "description_sha256",
    "reported_at",
    "recorded_at",
    "direction",
    "message_id",
];
pub(crate) const S: usize = STATUS_FIELDS.len();

/// The fields of a `deliveries` row.
pub const DELIVERY_FIELDS: [&str; 16] = [
    "message_id",
    "recipient",
    "route",
    "state",
    "attempts",
    "lease_owner",
    "lease_until",
    "current_attempt_id",
    "next_attempt_at",
    "last_error_code",
    "last_error_message",
    "delivered_at",
    "receipt_sha256",
    "retry_from",
    "created_at",
    "updated_at",
];
pub(crate) const D: usize = DELIVERY_FIELDS.len();

/// A `messages` row as stored, with its package bytes hashed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub direction: String,
    pub kind: String,
    pub sender: String,
    pub document_id: String,
    pub business_type: Option<i64>,
    pub status_code: Option<i64>,
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    pub code_year: Option<i64>,
    pub subject: Option<String>,
    /// The `sha256` column (lowercase hex).
    pub sha256: String,
    pub size: i64,
    pub signer_subject: Option<String>,
    pub signer_fingerprint: Option<String>,
    pub header_json: String,
    pub peer: Option<String>,
    pub actor: String,
    pub created_at: i64,
    /// SHA-256 of the `receipt` BLOB, if any.
    pub receipt_sha256: Option<String>,
    /// SHA-256 of the package bytes as the store holds them (BLOB or file), or why they cannot
    /// be read.
    pub bytes_sha256: Result<String, String>,
    /// The recipients of its `inbox` rows (a received document's local agencies; none for
    /// anything else), in any order; `recipient=<SHA-256>` for a row that keeps its own receipt.
    pub inbox: Vec<String>,
}

impl MessageRow {
    pub(crate) fn values(&self) -> [Value; M] {
        let code = match (&self.code_number, &self.code_notation) {
            (Some(n), Some(t)) => Value::Text(format!("{n}/{t}")),
            _ => Value::Null,
        };
        [
            Value::text(&self.direction),
            Value::text(&self.kind),
            Value::text(&self.sender),
            Value::text(&self.document_id),
            Value::opt_int(self.business_type),
            Value::opt_int(self.status_code),
            code,
            Value::opt_int(self.code_year),
            self.subject
                .as_deref()
                .map_or(Value::Null, |s| Value::Text(sha256_hex(s.as_bytes()))),
            Value::text(&self.sha256),
            Value::Int(self.size),
            Value::opt_text(self.signer_subject.as_deref()),
            Value::opt_text(self.signer_fingerprint.as_deref()),
            Value::Text(sha256_hex(self.header_json.as_bytes())),
            Value::opt_text(self.peer.as_deref()),
            Value::text(&self.actor),
            Value::Int(self.created_at),
            Value::opt_text(self.receipt_sha256.as_deref()),
            match &self.bytes_sha256 {
                Ok(h) => Value::text(h),
                Err(e) => Value::Text(format!("unreadable ({e})")),
            },
            inbox(self.inbox.iter().map(String::as_str)),
        ]
    }
}

/// A set of inbox recipients as one value: sorted, comma-separated (empty for none).
pub(crate) fn inbox<'a>(recipients: impl Iterator<Item = &'a str>) -> Value {
    let mut all: Vec<&str> = recipients.collect();
    all.sort_unstable();
    Value::Text(all.join(","))
}

/// A `statuses` row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    pub id: i64,
    pub document_sender: String,
    pub document_id: String,
    pub reporter: String,
    pub code: i64,
    pub description: String,
    pub reported_at: i64,
    pub recorded_at: i64,
    pub direction: String,
    pub message_id: i64,
}

impl StatusRow {
    pub(crate) fn values(&self) -> [Value; S] {
        [
            Value::text(&self.document_sender),
            Value::text(&self.document_id),
            Value::text(&self.reporter),
            Value::Int(self.code),
            Value::Text(sha256_hex(self.description.as_bytes())),
            Value::Int(self.reported_at),
            Value::Int(self.recorded_at),
            Value::text(&self.direction),
            Value::Int(self.message_id),
        ]
    }
}

/// A `deliveries` row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub message_id: i64,
    pub recipient: String,
    pub route: String,
    pub state: String,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub current_attempt_id: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub delivered_at: Option<i64>,
    /// SHA-256 of the `receipt` BLOB, if any.
    pub receipt_sha256: Option<String>,
    pub retry_from: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl DeliveryRow {
    pub(crate) fn values(&self) -> [Value; D] {
        [
            Value::Int(self.message_id),
            Value::text(&self.recipient),
            Value::text(&self.route),
            Value::text(&self.state),
            Value::Int(self.attempts),
            Value::opt_text(self.lease_owner.as_deref()),
            Value::opt_int(self.lease_until),
            Value::opt_int(self.current_attempt_id),
            Value::opt_int(self.next_attempt_at),
            Value::opt_text(self.last_error_code.as_deref()),
            Value::opt_text(self.last_error_message.as_deref()),
            Value::opt_int(self.delivered_at),
            Value::opt_text(self.receipt_sha256.as_deref()),
            Value::opt_int(self.retry_from),
            Value::Int(self.created_at),
            Value::Int(self.updated_at),
        ]
    }
}

/// An `agency_registry` entry as stored, its rules as the JSON the audit records hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRow {
    pub code: String,
    pub name: String,
    /// The entry's rules, in order, serialised as in a `registry.set` record.
    pub rules: serde_json::Value,
    pub added_by: String,
    pub added_at: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

/// The fields of a registry entry.
pub const REGISTRY_FIELDS: [&str; 6] = [
    "name",
    "rules",
    "added_by",
    "added_at",
    "updated_by",
    "updated_at",
];
pub(crate) const R: usize = REGISTRY_FIELDS.len();

impl RegistryRow {
    pub(crate) fn values(&self) -> [Value; R] {
        [
            Value::text(&self.name),
            Value::Text(self.rules.to_string()),
            Value::text(&self.added_by),
            Value::Int(self.added_at),
            Value::text(&self.updated_by),
            Value::Int(self.updated_at),
        ]
    }
}

/// The fields of a `mail_log` row that a `mail.take` record attests.
pub const MAIL_FIELDS: [&str; 16] = [
    "mailbox",
    "uidvalidity",
    "uid",
    "return_path",
    "from",
    "subject_sha256",
    "message_id",
    "size",
    "outcome",
    "code",
    "reason",
    "message_ref",
    "draft_ref",
    "delivery_ref",
    "replied",
    "taken_at",
];
pub(crate) const L: usize = MAIL_FIELDS.len();

/// A `mail_log` row as stored (one mail taken in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub id: i64,
    pub mailbox: String,
    pub uidvalidity: i64,
    pub uid: i64,
    pub return_path: String,
    pub from: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub size: i64,
    pub outcome: String,
    pub code: Option<String>,
    pub reason: Option<String>,
    pub message_ref: Option<i64>,
    pub draft_ref: Option<i64>,
    pub delivery_ref: Option<i64>,
    pub replied: bool,
    pub taken_at: i64,
}

impl MailRow {
    pub(crate) fn values(&self) -> [Value; L] {
        [
            Value::text(&self.mailbox),
            Value::Int(self.uidvalidity),
            Value::Int(self.uid),
            Value::text(&self.return_path),
            Value::text(&self.from),
            Value::Text(sha256_hex(self.subject.as_bytes())),
            Value::opt_text(self.message_id.as_deref()),
            Value::Int(self.size),
            Value::text(&self.outcome),
            Value::opt_text(self.code.as_deref()),
            Value::opt_text(self.reason.as_deref()),
            Value::opt_int(self.message_ref),
            Value::opt_int(self.draft_ref),
            Value::opt_int(self.delivery_ref),
            Value::Int(i64::from(self.replied)),
            Value::Int(self.taken_at),
        ]
    }
}

/// The fields of a `drafts` row: created by a `mail.take` record, decided by a
/// `draft.approve` or `draft.discard` one.
pub const DRAFT_FIELDS: [&str; 12] = [
    "agency",
    "state",
    "code_number",
    "code_notation",
    "summary_sha256",
    "body_sha256",
    "created_at",
    "decided_at",
    "decided_by",
    "reason",
    "message_id",
    "mail_log_id",
];
pub(crate) const DR: usize = DRAFT_FIELDS.len();

/// A `drafts` row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRow {
    pub id: i64,
    pub agency: String,
    pub state: String,
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    pub summary: String,
    pub body: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub message_id: Option<i64>,
    pub mail_log_id: i64,
}

impl DraftRow {
    pub(crate) fn values(&self) -> [Value; DR] {
        [
            Value::text(&self.agency),
            Value::text(&self.state),
            Value::opt_text(self.code_number.as_deref()),
            Value::opt_text(self.code_notation.as_deref()),
            Value::Text(sha256_hex(self.summary.as_bytes())),
            Value::Text(sha256_hex(self.body.as_bytes())),
            Value::Int(self.created_at),
            Value::opt_int(self.decided_at),
            Value::opt_text(self.decided_by.as_deref()),
            Value::opt_text(self.reason.as_deref()),
            Value::opt_int(self.message_id),
            Value::Int(self.mail_log_id),
        ]
    }
}

/// The fields of a `draft_files` row, with its bytes hashed by the store.
pub const DRAFT_FILE_FIELDS: [&str; 5] = ["name", "content_type", "size", "sha256", "bytes_sha256"];
pub(crate) const F: usize = DRAFT_FILE_FIELDS.len();
/// Index of the file bytes' hash in [`DRAFT_FILE_FIELDS`] (its difference is `STORE_CORRUPT`).
pub(crate) const FILE_BYTES: usize = 4;

/// A `draft_files` row as stored, named `<draft>/<index>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftFileRow {
    pub draft_id: i64,
    pub index: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// The `sha256` column.
    pub sha256: String,
    /// SHA-256 of the `bytes` BLOB.
    pub bytes_sha256: String,
}

impl DraftFileRow {
    pub(crate) fn values(&self) -> [Value; F] {
        [
            Value::text(&self.name),
            Value::text(&self.content_type),
            Value::Int(self.size),
            Value::text(&self.sha256),
            Value::text(&self.bytes_sha256),
        ]
    }
}

/// The fields of a `mail_checkpoints` row: the last `mail.take` of its mailbox.
pub const CHECKPOINT_FIELDS: [&str; 3] = ["uidvalidity", "last_uid", "updated_at"];
pub(crate) const C: usize = CHECKPOINT_FIELDS.len();

/// A `mail_checkpoints` row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub mailbox: String,
    pub uidvalidity: i64,
    pub last_uid: i64,
    pub updated_at: i64,
}

impl CheckpointRow {
    pub(crate) fn values(&self) -> [Value; C] {
        [
            Value::Int(self.uidvalidity),
            Value::Int(self.last_uid),
            Value::Int(self.updated_at),
        ]
    }
}

/// The fields of a `mail_replies` row: the last `mail.take` that replied to the address.
pub const REPLY_FIELDS: [&str; 1] = ["last_reply_at"];
pub(crate) const Y: usize = REPLY_FIELDS.len();

/// A `mail_replies` row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRow {
    pub address: String,
    pub last_reply_at: i64,
}

impl ReplyRow {
    pub(crate) fn values(&self) -> [Value; Y] {
        [Value::Int(self.last_reply_at)]
    }
}
