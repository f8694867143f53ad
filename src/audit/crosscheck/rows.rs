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
