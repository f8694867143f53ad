//! What goes into the store and what comes out: plain data, the same for every backend.
//!
//! Conventions: ids are the store's `i64` row ids; times are Unix milliseconds (`i64`, UTC),
//! always passed in by the caller; agency codes are `OrganId` strings as they appear on the wire
//! (the store compares them exactly, it does not parse them).

use std::fmt;

use serde::Serialize;

use crate::error::{Code, Error, Result};

/// Whether the node sent a package or received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Received (from a peer, or from a local agency through the local route).
    In,
    /// Issued by an agency this node serves.
    Out,
}

impl Direction {
    /// The stored form: `in` / `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Result<Direction> {
        match s {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(corrupt("messages.direction", other)),
        }
    }
}

/// A document package or a status package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Document,
    Status,
}

impl Kind {
    /// The stored form: `document` / `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Document => "document",
            Kind::Status => "status",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Result<Kind> {
        match s {
            "document" => Ok(Kind::Document),
            "status" => Ok(Kind::Status),
            other => Err(corrupt("messages.kind", other)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// The exact signed bytes of a package and what verifying it established. Stored unchanged; the
/// store computes the SHA-256 itself (it is the deduplication key, so it is not taken on trust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPackage {
    pub bytes: Vec<u8>,
    /// Subject DN of the signing certificate.
    pub signer_subject: Option<String>,
    /// SHA-256 of the signing certificate's DER, lowercase hex.
    pub signer_fingerprint: Option<String>,
    /// The parsed header as JSON (what lists and the API show without re-parsing the bytes).
    pub header_json: String,
    /// The identity of the signed content (`crate::verify::VerifiedPackage::signed_identity_hex`,
    /// 64 hex digits) of a package this node verified; `None` for what it signed itself.
    /// A received document whose (sender, DocumentId, business type) is already stored is a
    /// repeat when this matches, whatever its bytes (`DUPLICATE_CONFLICT` otherwise).
    pub signed_content: Option<String>,
    /// `Some` for a received package whose XML signature was absent or a placeholder and that a
    /// channel peer's connection authenticated instead (`node::ingest`): it is not signed, and
    /// is never shown as signed. `None`: verified, or signed by this node.
    pub channel: Option<ChannelTrust>,
}

/// How a received package without a verifiable signature was authenticated: by the mutual-TLS
/// connection of a channel peer (`[[peer]] xml_signature = "channel"`). Stored in
/// `messages.channel` and `messages.channel_signature` (migration 0009).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelTrust {
    /// The configured name of the channel peer.
    pub channel: String,
    /// What its XML signature was: `absent` or `placeholder`.
    pub xml_signature: UnverifiedSignature,
}

/// The XML signature of a package a channel authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnverifiedSignature {
    /// No `Signature` element.
    Absent,
    /// A `Signature` with no certificate that parses (the SDKs' dummy values).
    Placeholder,
}

impl UnverifiedSignature {
    /// The stored form: `absent` / `placeholder`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnverifiedSignature::Absent => "absent",
            UnverifiedSignature::Placeholder => "placeholder",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Result<UnverifiedSignature> {
        match s {
            "absent" => Ok(UnverifiedSignature::Absent),
            "placeholder" => Ok(UnverifiedSignature::Placeholder),
            other => Err(corrupt("messages.channel_signature", other)),
        }
    }
}

/// The business identity of a document package (from its `MessageHeader` and `Bussiness`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMeta {
    /// `From/OrganId`.
    pub sender: String,
    /// The business `DocumentId` (`MessageHeader::effective_document_id`).
    pub document_id: String,
    /// `BussinessDocType`: 0 new, 1 revocation, 2 update, 3 replacement.
    pub business_type: u8,
    /// Số as written (`05`, `446`); normalised by the store for outgoing documents.
    pub code_number: String,
    /// Ký hiệu (`UBND-KGVX`).
    pub code_notation: String,
    /// The year the number belongs to (the promulgation date's year).
    pub code_year: i32,
    /// Trích yếu.
    pub subject: String,
}

/// One recipient of an outgoing package and the way out chosen for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The recipient's `OrganId`.
    pub recipient: String,
    /// The stored route (`node::routing::Route::as_stored`): `local`, `peer:<name>`, `mail:<address>` or `none`.
    pub route: String,
}

/// A document an agency of this node sends: stored with one delivery per recipient and one audit
/// record, in one transaction ([`Store::submit_outgoing`](super::Store::submit_outgoing)).
#[derive(Debug, Clone)]
pub struct NewOutgoing {
    pub document: DocumentMeta,
    pub package: SignedPackage,
    pub deliveries: Vec<NewDelivery>,
    /// The clerk system's `Idempotency-Key`, unique per sending agency.
    pub idempotency_key: Option<String>,
    /// What the key is used for, stored with it: a later use of the key for another request is
    /// refused (`IDEMPOTENCY_KEY_REUSED`). `None`: not compared (as keys stored before
    /// migration 0011).
    pub request: Option<RequestFingerprint>,
    /// Who submitted it (`clerk:<agency>:<user>`), for the audit record.
    pub actor: String,
    /// Whether the số is the next of the agency's sequence or one the clerk gave.
    pub numbering: Numbering,
    /// The draft (of the sending agency) this document was approved from: the same transaction
    /// marks it `approved` with the new message's id (record `draft.approve`), or fails with
    /// `INVALID_TRANSITION` when it is no longer a draft, `NOT_FOUND` when the agency has no
    /// such draft — nothing written, no số taken.
    pub from_draft: Option<i64>,
}

/// How an outgoing document's số was chosen, which decides what its transaction does to the
/// agency's yearly sequence (`number_sequences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Numbering {
    /// Given by the clerk (or not numbered: revocations and updates carry the original's).
    /// A numeric số above the sequence moves the sequence up to it.
    #[default]
    Given,
    /// The next of the sequence: the transaction takes it only if the sequence stands exactly
    /// one below it (so no number is ever skipped), and fails with `STORE_UNAVAILABLE`
    /// (nothing written) if the sequence moved meanwhile.
    Next,
}

/// What [`Store::submit_outgoing`](super::Store::submit_outgoing) (or a repeat with the same
/// idempotency key) gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submitted {
    pub message_id: i64,
    /// The business `DocumentId` (what the clerk's software files the dispatch under).
    pub document_id: String,
    /// One per recipient, in the order submitted.
    pub deliveries: Vec<SubmittedDelivery>,
    /// `true` when the idempotency key had been used: nothing new was stored and this is the
    /// original submission.
    pub existing: bool,
    /// What the clerk should know about an accepted submission (`NO_FILE`); filled in by the
    /// node from the request, so a replay says the same as the first answer.
    pub warnings: Vec<SubmitWarning>,
}

/// Something a clerk should know about a submission that was accepted all the same: a code
/// for their software, an English message and the Vietnamese one they read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmitWarning {
    pub code: &'static str,
    pub message: String,
    pub message_vi: &'static str,
}

/// The fingerprint of a request made with an `Idempotency-Key` (`node::idempotency::fingerprint`
/// computes it): `parts` is canonical JSON — `operation`, the SHA-256 of each request field's
/// canonical value, and each file's name, content type and SHA-256, in order — and `sha256` is
/// the SHA-256 of `parts`. The parts are kept, not only the digest, so a refusal can name what
/// differs; they hold digests rather than the clerk's text, so the key table stays small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFingerprint {
    pub sha256: String,
    pub parts: String,
}

impl RequestFingerprint {
    /// `Ok` when `stored` (what the key was first used for) is this request, or unknown (a key
    /// stored before fingerprints were); otherwise `IDEMPOTENCY_KEY_REUSED`, naming the key,
    /// `original` (the first request's document) and the fields that differ.
    pub fn check_reuse(
        &self,
        key: &str,
        original: &str,
        stored: Option<&RequestFingerprint>,
    ) -> Result<()> {
        let Some(stored) = stored else {
            return Ok(());
        };
        if stored.sha256 == self.sha256 {
            return Ok(());
        }
        let differences = self.differences(stored);
        let what = if differences.is_empty() {
            "a different request".to_owned()
        } else {
            format!(
                "a different request (it differs in {})",
                differences.join(", ")
            )
        };
        Err(Error::store(
            Code::IdempotencyKeyReused,
            format!(
                "Idempotency-Key {key:?} was already used for {original}; this is {what}: \
                 nothing was stored; use a new key for a new document or request"
            ),
        ))
    }

    /// The fields in which `other` differs from this, as the caller names them
    /// (`operation`, `metadata.subject`, `reason`, `files` (their number), `files[0].name`,
    /// `files[0].content_type`, `files[0]` (its bytes)).
    fn differences(&self, other: &RequestFingerprint) -> Vec<String> {
        use serde_json::Value;
        let (Ok(a), Ok(b)) = (
            serde_json::from_str::<Value>(&self.parts),
            serde_json::from_str::<Value>(&other.parts),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if a["operation"] != b["operation"] {
            out.push("operation".to_owned());
        }
        let empty = serde_json::Map::new();
        let (ma, mb) = (
            a["fields"].as_object().unwrap_or(&empty),
            b["fields"].as_object().unwrap_or(&empty),
        );
        let mut fields: Vec<&String> = ma.keys().chain(mb.keys()).collect();
        fields.sort();
        fields.dedup();
        for f in fields {
            if ma.get(f) != mb.get(f) {
                out.push(f.clone());
            }
        }
        let none = Vec::new();
        let (fa, fb) = (
            a["files"].as_array().unwrap_or(&none),
            b["files"].as_array().unwrap_or(&none),
        );
        if fa.len() != fb.len() {
            out.push(format!(
                "files (their number: {} now, {} first)",
                fa.len(),
                fb.len()
            ));
        }
        for (i, (x, y)) in fa.iter().zip(fb).enumerate() {
            for (field, name) in [
                ("name", format!("files[{i}].name")),
                ("content_type", format!("files[{i}].content_type")),
                ("sha256", format!("files[{i}] (its bytes)")),
            ] {
                if x[field] != y[field] {
                    out.push(name);
                }
            }
        }
        out
    }
}

/// A delivery created by a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmittedDelivery {
    pub recipient: String,
    pub delivery_id: i64,
}

/// A document package received for agencies of this node.
#[derive(Debug, Clone)]
pub struct NewIncoming {
    pub document: DocumentMeta,
    pub package: SignedPackage,
    /// The agencies of this node it is addressed to (one inbox row each); at least one.
    pub local_recipients: Vec<String>,
    /// The peer it came from (`None` for the local route).
    pub peer: Option<String>,
    /// The signed receipts (status 01) to answer with: one per local recipient, signed by that
    /// agency, in the order of `local_recipients`. Stored with the inbox rows so a repeat gets
    /// exactly the same receipts back.
    pub receipts: Vec<Vec<u8>>,
    /// `peer:<name>` or `outbox:<worker>` for the local route.
    pub actor: String,
    /// The revocation status of each certificate of the signer's path and what decided it,
    /// stored in the same transaction (empty under the `off` policy).
    pub revocation: Vec<RevocationEvidence>,
    /// The SHA-256 (hex) of the bytes as verified, before what the signature does not cover was
    /// removed: what a row stored before migration 0008 (which kept those bytes, and has no
    /// signed identity) is compared with, so a peer's retry across the upgrade still gets its
    /// receipt. `None`: the same as the package's.
    pub received_sha256: Option<String>,
}

/// The revocation status of one certificate of a received package's path, with the OCSP
/// response or CRL that decided it (see `crate::pki::status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvidence {
    pub subject: String,
    pub serial: String,
    pub fingerprint: String,
    /// `require` or `prefer`.
    pub policy: String,
    /// `good`, `revoked` or `unknown`.
    pub status: String,
    /// `crl` or `ocsp`; `None` when nothing decided (unknown).
    pub kind: Option<String>,
    /// The URL or file it came from.
    pub source: Option<String>,
    /// The DER `OCSPResponse` or CRL exactly as received.
    pub der: Option<Vec<u8>>,
    pub this_update: Option<String>,
    pub next_update: Option<String>,
    pub produced_at: Option<String>,
    /// Why the status is unknown.
    pub note: Option<String>,
    /// An unknown status accepted under `prefer`.
    pub flagged: bool,
    /// When the check was made, ms since 1970.
    pub checked_at: i64,
}

/// The result of [`Store::ingest_incoming`](super::Store::ingest_incoming).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored now; answer with the receipts that were passed in.
    Inserted { message_id: i64 },
    /// The same (sender, DocumentId, business type) with the same signed content was stored
    /// before (bytes outside the signature may differ): nothing changed; answer with the
    /// original receipts.
    Duplicate {
        message_id: i64,
        receipts: Vec<Receipt>,
    },
}

/// The signed 01 one local recipient answered a received document with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The agency of this node that signed it.
    pub recipient: String,
    pub bytes: Vec<u8>,
}

/// A processing status (01–16) on a document, as a status package received or issued.
#[derive(Debug, Clone)]
pub struct NewStatus {
    /// `In`: a status package received; `Out`: one an agency of this node issues (it is then
    /// delivered like a document, through `deliveries`).
    pub direction: Direction,
    /// `ResponseFor/OrganId`: who sent the document.
    pub document_sender: String,
    /// `ResponseFor/DocumentId`.
    pub document_id: String,
    /// `From/OrganId`: who reports the status.
    pub reporter: String,
    /// 1–16 (`StatusCode::number`).
    pub code: u8,
    pub description: String,
    /// The package's `Timestamp`, Unix milliseconds. Orders the history.
    pub reported_at: i64,
    pub package: SignedPackage,
    /// `Out` only: where the status package goes.
    pub deliveries: Vec<NewDelivery>,
    /// `In` only: the peer it came from.
    pub peer: Option<String>,
    pub actor: String,
    /// `In` only: the revocation status of the reporter's certificate path when it was
    /// received, as for a document ([`NewIncoming::revocation`]); empty for `Out`.
    pub revocation: Vec<RevocationEvidence>,
    /// `Out` only: the business type of the inbox item the status is reported on (0 the
    /// document, 1 its revocation, 2 its update, 3 a replacement): which package a 15/16
    /// answers, and refuses processing codes on a revocation. `None` for a received status.
    pub on_business_type: Option<u8>,
}

/// The result of [`Store::record_status`](super::Store::record_status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusOutcome {
    pub status_id: i64,
    /// The status package's message id.
    pub message_id: i64,
    /// `Out` only: the deliveries created for the status package.
    pub deliveries: Vec<SubmittedDelivery>,
    /// Outgoing deliveries to the reporter moved to `rejected` by a status 02.
    pub rejected_deliveries: Vec<i64>,
    /// `true` when the same status (document, reporter, code, timestamp) was recorded before:
    /// nothing changed.
    pub duplicate: bool,
}

/// Why an attempt failed, as the transport reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryError {
    /// A stable code (`PEER_UNREACHABLE`, `NO_ROUTE`, a [`Code`] spelling, an HTTP status …).
    pub code: String,
    pub message: String,
}

impl DeliveryError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            code: code.into(),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deliveries
// ---------------------------------------------------------------------------------------------

/// Where an outgoing delivery is. `queued → sending → delivered`; `sending → retrying → sending`;
/// `sending → failed` (an operator retries or cancels); `rejected` when the recipient answers 02;
/// `cancelled` by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Queued,
    Sending,
    Delivered,
    Retrying,
    Failed,
    Rejected,
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Delivered,
        DeliveryState::Retrying,
        DeliveryState::Failed,
        DeliveryState::Rejected,
        DeliveryState::Cancelled,
    ];

    /// The stored form (`queued`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Failed => "failed",
            DeliveryState::Rejected => "rejected",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Still owed an attempt (what "pending" means in metrics).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            DeliveryState::Queued | DeliveryState::Sending | DeliveryState::Retrying
        )
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right to report the outcome of one attempt: the delivery and the attempt the claim
/// started. An outcome for an attempt that is no longer the delivery's current one (its lease
/// expired and another worker claimed it) is refused with `INVALID_TRANSITION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub delivery_id: i64,
    pub attempt_id: i64,
}

/// A delivery claimed by [`Store::claim_due`](super::Store::claim_due): now `sending`, leased to
/// the claimer until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimedDelivery {
    pub lease: Lease,
    pub message_id: i64,
    pub kind: Kind,
    /// The package's sender (`From/OrganId`).
    pub sender: String,
    pub document_id: String,
    pub recipient: String,
    pub route: String,
    /// 1 for the first attempt (for backoff).
    pub attempt: u32,
    pub lease_until: i64,
    /// The package's size in bytes (what the delivery will hold in memory).
    pub size: u64,
    /// The store keeps the package as a file ([`Store::message_file`](super::Store::message_file)
    /// names it), not in the row: the push streams it instead of reading it whole.
    pub in_file: bool,
    /// The package itself when it is small ([`CLAIM_WITH_BYTES`] bytes at most, kept in its
    /// row): read with the claim, so its delivery needs no second read. `None`: read it with
    /// [`Store::message_bytes`](super::Store::message_bytes) (or stream its file).
    #[serde(skip)]
    pub package: Option<Vec<u8>>,
}

/// Packages up to this size come with their claim ([`ClaimedDelivery::package`]): a batch of
/// claims then holds at most this much per delivery, far below the outbox's byte budget.
pub const CLAIM_WITH_BYTES: u64 = 64 * 1024;

/// A package the store keeps as a file ([`Store::message_file`](super::Store::message_file)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: std::path::PathBuf,
    /// The SHA-256 of the package (lowercase hex), as its row and audit record hold it: what
    /// the file must still hash to.
    pub sha256: String,
}

impl PackageFile {
    /// `STORE_CORRUPT` unless `actual` (what the file hashed to, lowercase hex) is the recorded
    /// SHA-256.
    pub fn check(&self, actual: &str) -> crate::Result<()> {
        if actual == self.sha256 {
            return Ok(());
        }
        Err(crate::Error::store(
            crate::Code::StoreCorrupt,
            format!(
                "package file {}: SHA-256 {actual}, but its row records {}: the file was \
                 changed or damaged on disk",
                self.path.display(),
                self.sha256
            ),
        ))
    }
}

/// An outgoing delivery as the API and operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryInfo {
    pub id: i64,
    pub message_id: i64,
    pub kind: Kind,
    pub sender: String,
    pub document_id: String,
    pub recipient: String,
    pub route: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<DeliveryError>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When an operator last retried it: the outbox gives up `give_up_after` from here.
    pub retry_from: Option<i64>,
    /// The latest processing status the recipient reported on the document, and when.
    pub latest_status: Option<u8>,
    pub latest_status_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; another attempt is scheduled.
    Retry,
    /// Failed for good; the delivery needs an operator.
    Failed,
    /// The worker's lease ran out before it reported (crash, hang); the delivery was claimed again.
    Expired,
    /// The delivery was rejected (status 02) while the attempt was in flight.
    Superseded,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Expired => "expired",
            AttemptOutcome::Superseded => "superseded",
        }
    }

    pub(crate) fn from_stored(s: &str) -> Result<AttemptOutcome> {
        Ok(match s {
            "delivered" => AttemptOutcome::Delivered,
            "retry" => AttemptOutcome::Retry,
            "failed" => AttemptOutcome::Failed,
            "expired" => AttemptOutcome::Expired,
            "superseded" => AttemptOutcome::Superseded,
            other => return Err(corrupt("attempts.outcome", other)),
        })
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptInfo {
    pub id: i64,
    pub delivery_id: i64,
    /// 1, 2, … per delivery.
    pub number: u32,
    pub route: String,
    pub lease_owner: String,
    pub started_at: i64,
    /// `None` while in flight.
    pub finished_at: Option<i64>,
    pub outcome: Option<AttemptOutcome>,
    pub error: Option<DeliveryError>,
    /// The relay's answer when a mail delivery's attempt was accepted
    /// ([`Store::mark_relayed`](super::Store::mark_relayed)): what `delivered` rests on for a
    /// mail, kept for an operator who must show the relay took it. `None` for every other
    /// attempt.
    pub reply: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/// A stored package without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageInfo {
    pub id: i64,
    pub direction: Direction,
    pub kind: Kind,
    /// `From/OrganId` (for a status: the reporter).
    pub sender: String,
    /// The business DocumentId (for a status: the document it is about).
    pub document_id: String,
    pub business_type: Option<u8>,
    pub status_code: Option<u8>,
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    pub code_year: Option<i32>,
    pub subject: Option<String>,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    pub size: u64,
    pub signer_subject: Option<String>,
    pub signer_fingerprint: Option<String>,
    /// Set when a channel, not a signature, authenticated it ([`SignedPackage::channel`]).
    pub channel: Option<ChannelTrust>,
    pub header_json: String,
    pub peer: Option<String>,
    pub actor: String,
    pub created_at: i64,
}

/// Newest-first keyset paging: `before` is the last id of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1–1000.
    pub limit: u32,
    pub before: Option<i64>,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: 50,
            before: None,
        }
    }
}

/// Filters for an agency's inbox. `since` is inclusive, `until` exclusive (arrival time).
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// Current status code; `Some(0)` for documents nothing has been reported on yet.
    pub status: Option<u8>,
    pub revoked: Option<bool>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub page: Page,
    /// Only what the agency has not received yet — Đã đến chờ tiếp nhận: not revoked, and no
    /// 02–06 reported by the agency (its latest processing code none or 01). The same rows
    /// [`ReceptionCounts::awaiting`] counts.
    pub awaiting: bool,
}

/// How many documents wait for tiếp nhận (03), as Tổng quan counts them: for one agency, or
/// for every agency of the node. "Late" is relative to a cutoff the caller computes (the
/// read layer's working-day rule): arrived before it and still not received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceptionCounts {
    /// Received documents (inbox rows) the agency has not received yet ([`InboxFilter::awaiting`]).
    pub awaiting: u64,
    /// … of them, those that arrived before the cutoff.
    pub late_incoming: u64,
    /// Sent documents with a delivery delivered before the cutoff whose recipient has reported
    /// nothing past 01 — no 02–06 ([`OutgoingFilter::late_before`]).
    pub late_outgoing: u64,
}

/// A received document as one recipient agency sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxItem {
    pub inbox_id: i64,
    pub recipient: String,
    pub message: MessageInfo,
    pub received_at: i64,
    /// The latest status this agency reported on it (`None`: nothing yet).
    pub current_status: Option<u8>,
    pub current_status_at: Option<i64>,
    /// The sender revoked it and the agency agreed (15): kept, but no longer in force.
    pub revoked: bool,
}

/// Filters for an agency's sent documents (`since` inclusive, `until` exclusive).
#[derive(Debug, Clone, Default)]
pub struct OutgoingFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub page: Page,
    /// Only documents with a delivery delivered before this instant whose recipient has
    /// reported no 02–06 on the document: not received (tiếp nhận) in time.
    pub late_before: Option<i64>,
    /// Leave the deliveries out (`OutgoingItem::deliveries` empty). A list that filters on the
    /// documents' own fields reads the deliveries of the rows it keeps only
    /// ([`super::Store::outgoing_deliveries`]): a document sent to 100 agencies has 100.
    pub without_deliveries: bool,
    /// Only documents on which some recipient has reported this status code (ignored with
    /// `late_before`): a state filter's candidates narrowed in the store — Đã tiếp nhận needs a
    /// 03, Đã hoàn thành a 06 — before their deliveries are read.
    pub with_status: Option<u8>,
}

/// A sent document with its per-recipient deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingItem {
    pub message: MessageInfo,
    pub deliveries: Vec<DeliveryInfo>,
}

/// Filters for the operators' delivery list (`since`/`until` on creation time).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub page: Page,
    /// Any of these states (empty: any state) — the console's "pending" is three of them. With
    /// `state` too, both must hold.
    pub states: Vec<DeliveryState>,
    /// The route exactly as stored (`peer:<name>`, `local`, `mail:<address>` …).
    pub route: Option<String>,
    /// The last error's code (`PEER_UNREACHABLE`, …).
    pub error_code: Option<String>,
}

impl DeliveryFilter {
    /// The states `state` and `states` together allow: `None` for any state, else each state
    /// once (empty when the two exclude each other: nothing matches).
    pub fn wanted_states(&self) -> Option<Vec<DeliveryState>> {
        let mut list = match (self.state, self.states.is_empty()) {
            (None, true) => return None,
            (Some(s), true) => vec![s],
            (None, false) => self.states.clone(),
            (Some(s), false) => self.states.iter().copied().filter(|x| *x == s).collect(),
        };
        list.sort();
        list.dedup();
        Some(list)
    }
}

/// Audit records newest first, for browsing: keyset on `before_seq` (the last seq of the
/// previous page), by time (`since` inclusive, `until` exclusive, on `at`), by actor (a prefix:
/// `console:` finds every console user) and by action (exact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBrowse {
    pub before_seq: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub actor_prefix: Option<String>,
    pub action: Option<String>,
    /// 1–10 000.
    pub limit: u32,
}

impl Default for AuditBrowse {
    fn default() -> Self {
        AuditBrowse {
            before_seq: None,
            since: None,
            until: None,
            actor_prefix: None,
            action: None,
            limit: 50,
        }
    }
}

/// One entry of a document's processing history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRecord {
    pub id: i64,
    pub document_sender: String,
    pub document_id: String,
    pub reporter: String,
    pub code: u8,
    pub description: String,
    pub reported_at: i64,
    pub recorded_at: i64,
    pub direction: Direction,
    /// The status package.
    pub message_id: i64,
}

/// Audit records by time (`since` inclusive, `until` exclusive, on `at`) and by position, oldest
/// first. Page with `after_seq` = the last seq of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after_seq: Option<i64>,
    /// 1–10 000.
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery {
            since: None,
            until: None,
            after_seq: None,
            limit: 1000,
        }
    }
}

pub(crate) fn corrupt(what: &str, value: &str) -> Error {
    Error::store(
        Code::StoreUnavailable,
        format!("{what}: unexpected stored value {value:?}"),
    )
}
