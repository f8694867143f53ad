//! The audit chain: an append-only, hash-chained record of every state change and every
//! administrative action (DESIGN.md, invariant 6).
//!
//! Pure: this module defines the record, the hash rule ([`hash`]), verification ([`verify`]), the
//! cross-check of the store's rows against a verified chain ([`crosscheck`]) and the export
//! formats ([`export`]); it does no I/O. The store appends records in the same
//! transaction as the change they describe and reads them back for `lienthong audit verify` and
//! `lienthong audit export`.
//!
//! Each record carries the SHA-256 of its predecessor (`prev_hash`; 32 zero bytes for the first
//! record), and its own `hash` covers every field including `prev_hash`. Editing a record breaks
//! its own hash; re-hashing an edited record breaks its successor's `prev_hash`; deleting one
//! leaves a gap in `seq` and a successor pointing at a hash that is gone; inserting one leaves two
//! records claiming the same predecessor. [`verify::verify_chain`] reports the first such break
//! and which of these it looks like.
//!
//! What a chain without a key cannot do: someone who can write the database *and* re-computes
//! every hash from the altered record to the end (or appends well-formed records at the end)
//! produces a chain that verifies. Catching that needs the head hash kept somewhere the attacker
//! cannot write (a periodic anchor: printed, mailed, published); `audit verify` prints the head
//! for exactly that purpose.

pub mod crosscheck;
pub mod export;
pub mod hash;
pub mod verify;

use serde::{Deserialize, Serialize};

pub use hash::{GENESIS, record_hash};
pub use verify::{AuditBreak, BreakKind, ChainSummary, ChainVerifier, verify_chain};

/// What a caller asks to have recorded. The store adds `seq`, `at` and the hashes.
///
/// Conventions (free text, but keep them stable — auditors filter on them):
/// - `actor`: `clerk:<agency code>:<user>`, `admin:<user>`, `peer:<peer name>`,
///   `outbox:<worker id>`, `system`.
/// - `action`: `<entity>.<verb>`, e.g. `document.submit`, `delivery.cancel`, `admin.key.rotate`.
/// - `entity_kind` / `entity_id`: what the action is about (`message` / `42`).
/// - `detail`: a JSON object as text; hashed exactly as stored, never re-serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
    pub detail: String,
}

impl AuditEntry {
    /// An entry whose detail is the JSON serialisation of `detail`.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        entity_kind: impl Into<String>,
        entity_id: impl ToString,
        detail: &serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            actor: actor.into(),
            action: action.into(),
            entity_kind: entity_kind.into(),
            entity_id: entity_id.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// One record of the chain, exactly as stored.
///
/// The serde form (used by `audit export --format jsonl`) writes the hashes as lowercase hex, so
/// an export can be read back and verified with [`verify::ChainVerifier`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// When, in Unix milliseconds (UTC).
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub entity_kind: String,
    pub entity_id: String,
    /// JSON text, exactly as hashed.
    pub detail: String,
    /// The `hash` of record `seq - 1`; [`GENESIS`] for record 1.
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    /// [`record_hash`] of this record.
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// The record that follows `head` (or starts the chain when `head` is [`ChainHead::GENESIS`]).
    pub fn next(head: ChainHead, at: i64, entry: AuditEntry) -> AuditRecord {
        let seq = head.seq + 1;
        let hash = record_hash(
            &head.hash,
            seq,
            at,
            &entry.actor,
            &entry.action,
            &entry.entity_kind,
            &entry.entity_id,
            &entry.detail,
        );
        AuditRecord {
            seq,
            at,
            actor: entry.actor,
            action: entry.action,
            entity_kind: entry.entity_kind,
            entity_id: entry.entity_id,
            detail: entry.detail,
            prev_hash: head.hash,
            hash,
        }
    }

    /// The hash this record's fields give (what `hash` should be).
    pub fn computed_hash(&self) -> [u8; 32] {
        self.hash_at(self.seq)
    }

    /// The hash these fields would give at another `seq` (used to recognise a renumbered record).
    pub(crate) fn hash_at(&self, seq: i64) -> [u8; 32] {
        record_hash(
            &self.prev_hash,
            seq,
            self.at,
            &self.actor,
            &self.action,
            &self.entity_kind,
            &self.entity_id,
            &self.detail,
        )
    }

    /// This record as the head of the chain.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

/// The last record of a chain: its `seq` and `hash` (what the next record links to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    /// Before the first record: seq 0, hash [`GENESIS`].
    pub const GENESIS: ChainHead = ChainHead {
        seq: 0,
        hash: GENESIS,
    };
}

/// Hashes as lowercase hex in serde forms.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::hash::parse_hex32(&s).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}
