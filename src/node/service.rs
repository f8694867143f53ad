//! The node's operations, each one transaction in the store: a clerk's submission, a package
//! pushed by a peer (or delivered locally), a status a clerk reports. HTTP handlers and the
//! outbox worker call these and nothing below them.

use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

use super::compose::{self, File, SignerJson, Submission};
use super::ingest;
use super::keys::Keyring;
use super::receipt;
use super::routing;
use crate::Error;
use crate::config::{Config, PeerConfig};
use crate::dsig;
use crate::edxml::xml::Limits;
use crate::edxml::{self, DocumentPackage, OrganId, Package, StatusCode, StatusPackage};
use crate::error::{Code, FormatError};
use crate::pki::TrustStore;
use crate::signer::Signer;
use crate::store::{
    Direction, DocumentMeta, IngestOutcome, NewDelivery, NewIncoming, NewOutgoing, NewStatus,
    SignedPackage, StatusOutcome, Store, Submitted,
};

/// The refusal codes of [`Node::ingest`] that are an authenticity or integrity failure of the
/// document (Decree 30/2020 Art. 21), answered with a signed 02 by
/// [`Node::rejection_status`]: the signature is missing, misplaced, malformed or wrong, the
/// content changed after signing, or the certificate is not a valid signing certificate of the
/// sender under this node's trust anchors.
pub const REJECTION_CODES: [Code; 18] = [
    Code::SignatureMissing,
    Code::SignatureDuplicate,
    Code::SignatureMisplaced,
    Code::ReferenceInvalid,
    Code::TransformNotAllowed,
    Code::AlgorithmNotAllowed,
    Code::DigestMismatch,
    Code::SignatureInvalid,
    Code::KeyInfoNotAllowed,
    Code::CertMissing,
    Code::CertMalformed,
    Code::CertUntrusted,
    Code::CertExpired,
    Code::CertNotYetValid,
    Code::CertIsCa,
    Code::CertKeyUsage,
    Code::CertRevoked,
    Code::SenderNotAuthorised,
];

/// What the node needs to act: its configuration, store, keys and trust anchors.
pub struct Node<S: Store> {
    pub config: Arc<Config>,
    pub store: Arc<S>,
    pub keys: Keyring,
    pub trust: Arc<TrustStore>,
    /// The revocation checker (OCSP/CRL fetcher with its caches) for received packages.
    pub revocation: Arc<crate::revocation::Checker>,
    /// What the outbox counts, for `/metrics`.
    pub metrics: Arc<super::metrics::DeliveryMetrics>,
    /// Permits for CPU-heavy work (signing, verifying), one per core: see [`Node::cpu`].
    pub cpu_permits: Arc<tokio::sync::Semaphore>,
    /// This node's own TLS certificate (DER), when it has one: watched for expiry like the
    /// anchors and the agencies' signing certificates.
    pub tls_certificate: Option<Vec<u8>>,
    /// Rung after a commit that made a delivery due, so the outbox starts at once instead of at
    /// its next poll.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

impl<S: Store> Clone for Node<S> {
    fn clone(&self) -> Self {
        Node {
            config: self.config.clone(),
            store: self.store.clone(),
            keys: self.keys.clone(),
            trust: self.trust.clone(),
            revocation: self.revocation.clone(),
            metrics: self.metrics.clone(),
            outbox_wake: self.outbox_wake.clone(),
            tls_certificate: self.tls_certificate.clone(),
            cpu_permits: self.cpu_permits.clone(),
        }
    }
}

/// What a clerk changes with [`Node::update`] (the JSON body of `POST
/// /api/v1/documents/{id}/update`, or its `metadata` part). Absent fields stay as sent; at
/// least one change besides the reason is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// Why the document is updated (BussinessDocReason); required.
    #[serde(default)]
    pub reason: String,
    /// New trích yếu.
    pub subject: Option<String>,
    /// New content; `""` removes it.
    pub content: Option<String>,
    /// New due date (`yyyy/MM/dd` or `yyyy-MM-dd`); `""` removes it.
    pub due_date: Option<String>,
    /// New signer.
    pub signer: Option<SignerJson>,
    /// The complete new recipient list (`DocumentReceiver` 1, `ReceiverList`).
    pub recipients: Option<Vec<UpdateRecipient>>,
    /// Replacement files: when not empty, they replace all of the original's.
    #[serde(skip)]
    pub files: Vec<File>,
}

/// A recipient of an update's new list: a bare code, or a code with a name to print and a
/// `ReceiverType` (1 by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UpdateRecipient {
    Code(String),
    Detailed {
        code: String,
        name: Option<String>,
        #[serde(default = "receiver_type_default")]
        receiver_type: i32,
    },
}

fn receiver_type_default() -> i32 {
    1
}

/// A package [`Node::ingest_check`] accepted, with its revocation evidence: what
/// [`Node::ingest_store`] stores.
pub struct CheckedPackage {
    accepted: ingest::Accepted,
    revocation: Vec<crate::store::RevocationEvidence>,
}

/// The result of a push: stored now or seen before, and the receipt to answer with.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub message_id: i64,
    pub duplicate: bool,
    /// The signed 01 for a document (the original one for a duplicate); `None` for a status.
    pub receipt: Option<Vec<u8>>,
}

/// A Vietnam-time timestamp (as packages carry them) in Unix milliseconds.
fn vietnam_ms(t: time::PrimitiveDateTime) -> i64 {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    (t.assume_offset(offset).unix_timestamp_nanos() / 1_000_000) as i64
}

/// Milliseconds since the Unix epoch, the store's clock.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// What the store keeps as a package's header: the model as JSON, files by size only.
fn package_json(pkg: &Package) -> String {
    serde_json::to_string(pkg).unwrap_or_else(|_| "{}".into())
}

fn signed(
    bytes: Vec<u8>,
    signer_subject: Option<String>,
    fingerprint: Option<String>,
    pkg: &Package,
) -> SignedPackage {
    SignedPackage {
        header_json: package_json(pkg),
        bytes,
        signer_subject,
        signer_fingerprint: fingerprint,
    }
}

fn meta(doc: &DocumentPackage) -> DocumentMeta {
    let h = &doc.header;
    DocumentMeta {
        sender: h.from.organ_id.to_string(),
        document_id: h.effective_document_id(),
        business_type: doc.business_type().number(),
        code_number: h.code.number.clone(),
        code_notation: h.code.notation.clone(),
        code_year: h.promulgation_info.date.year(),
        subject: h.subject.clone(),
    }
}

impl<S: Store> Node<S> {
    /// Loads keys and trust anchors for `config` over `store`.
    pub fn new(config: Config, store: S) -> Result<Node<S>, Error> {
        let mut trust = TrustStore::new();
        for path in &config.node.trust {
            trust.merge(TrustStore::from_path(path)?);
        }
        for path in &config.node.intermediates {
            let pem = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
            trust.add_intermediates_pem(&pem).map_err(|mut e| {
                e.subject = path.display().to_string();
                e
            })?;
        }
        let revocation = Arc::new(crate::revocation::Checker::from_config(&config.revocation)?);
        let tls_certificate = match &config.tls {
            Some(t) => crate::transport::tls::certs_from(&t.cert)?
                .into_iter()
                .next()
                .map(|c| c.to_vec()),
            None => None,
        };
        Ok(Node {
            revocation,
            tls_certificate,
            keys: Keyring::load(&config)?,
            config: Arc::new(config),
            store: Arc::new(store),
            trust: Arc::new(trust),
            metrics: Arc::default(),
            outbox_wake: Arc::default(),
            cpu_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        })
    }

    /// Runs CPU-heavy work (signing, verifying a package) on tokio's blocking pool, at most one
    /// job per core at a time: the async workers stay free to accept requests and answer health
    /// checks while a large package is signed, and a burst of submissions queues here instead of
    /// oversubscribing the cores.
    pub async fn cpu<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let _permit = self
            .cpu_permits
            .acquire()
            .await
            .map_err(|_| Error::store(Code::StoreUnavailable, "the node is shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Error::internal("signing or verification task", e.to_string()))
    }

    fn agency(&self, code: &OrganId) -> Result<&crate::config::AgencyConfig, Error> {
        self.config.agency(code).ok_or_else(|| {
            Error::store(
                Code::NotFound,
                format!("{code} is not an agency of this node"),
            )
        })
    }

    /// A clerk of `agency` (`actor` names the token) submits a dispatch: compose, sign with the
    /// agency's own key, store with one delivery per recipient — committed before this returns.
    /// A repeated `idempotency_key` returns the first submission without doing anything.
    pub async fn submit(
        &self,
        agency: &OrganId,
        actor: &str,
        sub: &Submission,
        files: Vec<File>,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        if let Some(key) = &idempotency_key
            && let Some(found) = self.store.find_submission(agency.as_str(), key).await?
        {
            return Ok(found);
        }
        let signer = self.signer(agency)?;
        let now = now_ms();
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let _in_hand = super::memory::InHand::new(files.iter().map(|f| f.data.len()).sum());
        let doc = self
            .compose_numbered(agency, actor, sub, files, vn, now)
            .await?;
        self.sign_and_store(signer, actor, doc, idempotency_key, now)
            .await
    }

    /// A clerk of `agency` revokes (thu hồi) a document it sent: a business-type-1 package with the
    /// same header and files and the reason, signed with the agency's key and delivered to the same
    /// recipients, who answer 15 (agree: their copy is cancelled, its history kept) or 16.
    pub async fn revoke(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        reason: &str,
    ) -> Result<Submitted, Error> {
        if reason.trim().is_empty() {
            return Err(FormatError::missing("revoke.reason").into());
        }
        let doc = self
            .original_document(agency, message_id, "revoked")
            .await?;
        let signer = self.signer(agency)?;
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let business =
            edxml::Business::revocation(doc.header.effective_document_id(), reason.trim());
        let revocation = DocumentPackage::follow_up(&doc, business, vn);
        self.sign_and_store(signer, actor, revocation, None, now_ms())
            .await
    }

    /// A clerk of `agency` updates (cập nhật) a document it sent: a business-type-2 package with
    /// the same DocumentId, the original's header and files with `req`'s changes applied, and a
    /// `BussinessDocumentInfo` saying what changed (`DocumentInfo` for header fields or files,
    /// `DocumentReceiver` + `ReceiverList` for a new recipient list). Signed with the agency's
    /// key and delivered to the new recipient list and to any recipient it drops (so that one
    /// learns it is no longer addressed); they answer 15 (agree) or 16 (refuse).
    ///
    /// The changes apply to the original document as first sent, not to an earlier update.
    pub async fn update(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        req: UpdateRequest,
    ) -> Result<Submitted, Error> {
        let reason = req.reason.trim();
        if reason.is_empty() {
            return Err(FormatError::missing("update.reason").into());
        }
        let doc = self
            .original_document(agency, message_id, "updated")
            .await?;
        let signer = self.signer(agency)?;
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let mut info = edxml::BusinessDocumentInfo::default();
        let mut header = doc.header.clone();
        if let Some(subject) = &req.subject {
            if subject.trim().is_empty() {
                return Err(FormatError::missing("update.subject").into());
            }
            header.subject = subject.trim().to_owned();
            info.document_info = true;
        }
        if let Some(content) = &req.content {
            header.content = Some(content.trim().to_owned()).filter(|c| !c.is_empty());
            info.document_info = true;
        }
        if let Some(due) = &req.due_date {
            header.due_date = match due.trim() {
                "" => None,
                d => Some(
                    edxml::dates::parse_date(d)
                        .map(|(d, _)| d)
                        .map_err(|e| FormatError::invalid("update.due_date", e))?,
                ),
            };
            info.document_info = true;
        }
        if let Some(s) = &req.signer {
            header.signer_info = edxml::SignerInfo {
                competence: s.competence.clone(),
                position: s.position.clone(),
                full_name: s.full_name.clone(),
            };
            info.document_info = true;
        }
        let mut attachments = doc.attachments.clone();
        if !req.files.is_empty() {
            attachments = Vec::new();
            for (i, f) in req.files.iter().enumerate() {
                if f.name.trim().is_empty() {
                    return Err(FormatError::invalid(
                        format!("update.files[{i}]"),
                        "a file needs a name",
                    )
                    .into());
                }
                attachments.push(edxml::Attachment::new(
                    f.name.clone(),
                    f.content_type.clone(),
                    f.name.clone(),
                    f.data.clone(),
                ));
            }
            info.document_info = true;
        }
        if let Some(list) = &req.recipients {
            let new_to = self.recipient_list(list, &doc.header.to)?;
            info.receivers = new_to
                .iter()
                .map(|(o, t)| edxml::Receiver {
                    organ_id: o.organ_id.clone(),
                    receiver_type: *t,
                })
                .collect();
            let mut to: Vec<edxml::Organization> = new_to.into_iter().map(|(o, _)| o).collect();
            // A recipient dropped from the list still gets the update, to learn it.
            for old in &doc.header.to {
                if !to.iter().any(|o| o.organ_id == old.organ_id) {
                    to.push(old.clone());
                }
            }
            header.to = to;
            info.document_receiver = true;
        }
        if !info.document_info && !info.document_receiver {
            return Err(FormatError::new(
                Code::ElementMissing,
                "update",
                "nothing to change: give subject, content, due_date, signer, recipients or files",
            )
            .into());
        }
        let business = edxml::Business::update(doc.header.effective_document_id(), reason, info);
        let mut update = DocumentPackage::follow_up(&doc, business, vn);
        update.header = header;
        update.attachments = attachments;
        self.sign_and_store(signer, actor, update, None, now_ms())
            .await
    }

    /// A clerk of `agency` replaces (thay thế) a document it sent with a new one: `sub` and
    /// `files` composed as by [`submit`](Self::submit) (a new number from the agency's sequence
    /// unless given), as business type 3 whose `ReplacementInfoList` names the replaced
    /// document's DocumentId and those of its recipients that the new one goes to; the header's
    /// `ResponseFor` refers to the replaced document. Delivered to the new document's
    /// recipients, who answer 15 or 16 on it.
    pub async fn replace(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        sub: &Submission,
        files: Vec<File>,
        reason: &str,
    ) -> Result<Submitted, Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(FormatError::missing("replace.reason").into());
        }
        let original = self
            .original_document(agency, message_id, "replaced")
            .await?;
        let signer = self.signer(agency)?;
        let recipients = sub.recipient_codes()?;
        let replaced_for: Vec<OrganId> = original
            .header
            .to
            .iter()
            .map(|o| o.organ_id.clone())
            .filter(|c| recipients.contains(c))
            .collect();
        if replaced_for.is_empty() {
            return Err(FormatError::invalid(
                "metadata.recipients",
                "the replacement reaches none of the replaced document's recipients",
            )
            .into());
        }
        let now = now_ms();
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let mut doc = self
            .compose_numbered(agency, actor, sub, files, vn, now)
            .await?;
        let own_id = doc.header.effective_document_id();
        let mut business = edxml::Business::replacement(
            own_id,
            reason,
            vec![edxml::ReplacementInfo {
                document_id: original.header.effective_document_id(),
                organ_ids: replaced_for,
            }],
        );
        if let Some(b) = &doc.business {
            business.paper = b.paper;
            business.staff_info = b.staff_info.clone();
        }
        doc.business = Some(business);
        doc.header
            .response_for
            .push(edxml::ResponseFor::for_document(&original));
        self.sign_and_store(signer, actor, doc, None, now).await
    }

    /// The signing key of `agency`.
    /// The agency's signer, refused once its certificate has expired: a package signed with an
    /// expired certificate would be refused by every recipient.
    fn signer(&self, agency: &OrganId) -> Result<Arc<dyn Signer>, Error> {
        let signer = self
            .keys
            .get(agency)
            .cloned()
            .ok_or_else(|| Error::key(agency.to_string(), "no signing key"))?;
        if let Some(not_after) = self.keys.expires_at(agency)
            && now_ms() / 1000 > not_after
        {
            return Err(Error::key(
                agency.to_string(),
                "the signing certificate has expired; renew it before sending",
            ));
        }
        Ok(signer)
    }

    /// The document `message_id` that `agency` sent, as a new document (business type 0) —
    /// the only kind that can be `what` (revoked, updated, replaced).
    async fn original_document(
        &self,
        agency: &OrganId,
        message_id: i64,
        what: &str,
    ) -> Result<DocumentPackage, Error> {
        let original = self
            .store
            .outgoing_item(agency.as_str(), message_id)
            .await?;
        if original.message.business_type != Some(0) {
            return Err(Error::store(
                Code::InvalidTransition,
                format!("only a new document can be {what}"),
            ));
        }
        let bytes = self.store.message_bytes(message_id).await?;
        match edxml::read(&bytes, &edxml::ReadOptions::default())? {
            Package::Document(d) => Ok(d),
            Package::Status(_) => Err(Error::store(Code::NotFound, "not a document")),
        }
    }

    /// `sub` and `files` as a package from `agency`, with the number given or the next of the
    /// agency's sequence (allocated only once the recipients are known to be valid).
    async fn compose_numbered(
        &self,
        agency: &OrganId,
        actor: &str,
        sub: &Submission,
        files: Vec<File>,
        vn: time::PrimitiveDateTime,
        now: i64,
    ) -> Result<DocumentPackage, Error> {
        let a = self.agency(agency)?;
        sub.recipient_codes()?;
        let number = match sub.number {
            Some(n) => n,
            None => {
                let year = sub.promulgation_date(vn)?.year();
                self.store
                    .next_number(agency.as_str(), year, actor, now)
                    .await?
            }
        };
        let config = &self.config;
        let name_of = |c: &OrganId| config.agency(c).map(|a| a.organization.organ_name.clone());
        Ok(compose::compose(
            sub,
            &a.organization,
            number,
            files,
            vn,
            &name_of,
        )?)
    }

    /// A new recipient list for an update: each code checked, once, with its name (given, the
    /// one in `known`, this node's agency's, or the code) and receiver type (1 by default).
    fn recipient_list(
        &self,
        list: &[UpdateRecipient],
        known: &[edxml::Organization],
    ) -> Result<Vec<(edxml::Organization, i32)>, Error> {
        if list.is_empty() {
            return Err(FormatError::missing("update.recipients").into());
        }
        let mut out: Vec<(edxml::Organization, i32)> = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let (code, name, receiver_type) = match r {
                UpdateRecipient::Code(c) => (c.as_str(), None, 1),
                UpdateRecipient::Detailed {
                    code,
                    name,
                    receiver_type,
                } => (code.as_str(), name.as_deref(), *receiver_type),
            };
            let id = OrganId::parse_lenient(code.trim()).map_err(|e| {
                FormatError::new(
                    Code::OrganIdInvalid,
                    format!("update.recipients[{i}].code"),
                    e.problem,
                )
            })?;
            if out.iter().any(|(o, _)| o.organ_id == id) {
                return Err(FormatError::invalid(
                    format!("update.recipients[{i}]"),
                    format!("{id} is listed twice"),
                )
                .into());
            }
            let name = name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .or_else(|| {
                    known
                        .iter()
                        .find(|o| o.organ_id == id)
                        .map(|o| o.organ_name.clone())
                })
                .or_else(|| {
                    self.config
                        .agency(&id)
                        .map(|a| a.organization.organ_name.clone())
                })
                .unwrap_or_else(|| id.to_string());
            let org = known
                .iter()
                .find(|o| o.organ_id == id)
                .cloned()
                .map(|mut o| {
                    o.organ_name.clone_from(&name);
                    o
                })
                .unwrap_or_else(|| edxml::Organization::new(id.clone(), name));
            out.push((org, receiver_type));
        }
        Ok(out)
    }

    /// Signs `doc` with `signer` and stores it with one delivery per `To` recipient, routed now.
    async fn sign_and_store(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        doc: DocumentPackage,
        idempotency_key: Option<String>,
        now: i64,
    ) -> Result<Submitted, Error> {
        let limits = self.config.limits.clone();
        let cert_der = signer.certificate().to_vec();
        let (pkg, bytes, header_json) = self
            .cpu(move || -> Result<_, Error> {
                let unsigned = edxml::write_document(&doc)?;
                let mut pkg = Package::Document(doc);
                let header_json = package_json(&pkg);
                // The files are in the package text now and nothing after this reads the
                // model's copies: drop them, so a large file is not held twice while the
                // package is signed and stored.
                if let Package::Document(d) = &mut pkg {
                    for a in &mut d.attachments {
                        a.data = Vec::new();
                    }
                }
                let bytes = dsig::sign_package_owned(unsigned, signer.as_ref(), &limits)?;
                Ok((pkg, bytes, header_json))
            })
            .await??;
        let Package::Document(doc) = &pkg else {
            return Err(Error::store(
                Code::ValueInvalid,
                "signed a status as a document",
            ));
        };
        let deliveries = doc
            .header
            .to
            .iter()
            .map(|t| NewDelivery {
                recipient: t.organ_id.to_string(),
                route: routing::route(&self.config, &t.organ_id).as_stored(),
            })
            .collect();
        let document = meta(doc);
        let cert = self.keys.describe(&cert_der);
        let new = NewOutgoing {
            document,
            package: SignedPackage {
                header_json,
                bytes,
                signer_subject: cert.as_ref().map(|c| c.subject.clone()),
                signer_fingerprint: cert.map(|c| c.sha256_fingerprint),
            },
            deliveries,
            idempotency_key,
            actor: actor.to_owned(),
        };
        let submitted = self.store.submit_outgoing(new, now).await?;
        self.outbox_wake.notify_one();
        Ok(submitted)
    }

    /// A package pushed by `peer` (`None`: delivered by this node to one of its own agencies).
    /// Verified, checked and its signer bound to its `From` code ([`super::registry`]) before
    /// anything is stored; stored with its receipt in one
    /// transaction; a repeat of the same document gets the original receipt again.
    pub async fn ingest(&self, bytes: &[u8], peer: Option<&PeerConfig>) -> Result<Ingested, Error> {
        let checked = self.ingest_check(bytes, peer).await?;
        self.ingest_store(checked, bytes.to_vec(), peer).await
    }

    /// [`ingest`](Self::ingest) of bytes the caller gives up: stored without a copy.
    pub async fn ingest_owned(
        &self,
        bytes: Vec<u8>,
        peer: Option<&PeerConfig>,
    ) -> Result<Ingested, Error> {
        let _in_hand = super::memory::InHand::new(bytes.len());
        let checked = self.ingest_check(&bytes, peer).await?;
        self.ingest_store(checked, bytes, peer).await
    }

    /// The checks of [`ingest`](Self::ingest), which store nothing: every refusal of a package
    /// comes from here. Split from [`ingest_store`](Self::ingest_store) so that a caller that
    /// owns the bytes (the peer endpoint) can keep them for a refusal's 02 and otherwise hand
    /// them to the store without a copy.
    pub async fn ingest_check(
        &self,
        bytes: &[u8],
        peer: Option<&PeerConfig>,
    ) -> Result<CheckedPackage, Error> {
        let accepted = ingest::check(
            bytes,
            &self.config,
            &self.trust,
            peer,
            std::time::SystemTime::now(),
        )?;
        // Sender binding against the agency registry: before anything is stored.
        super::registry::bind_sender(
            &self.config,
            &self.keys,
            &self.trust,
            self.store.as_ref(),
            &accepted.verified,
        )
        .await?;
        let v = &accepted.verified;
        // Revocation after the path and the signature: only certificates that chained to an
        // anchor make the node fetch anything. A refusal here stores nothing.
        let policy = self.config.revocation.policy_for(v.path.anchor_subject());
        let outcome = self
            .revocation
            .check(&v.path, policy, std::time::SystemTime::now())
            .await?;
        let revocation = crate::revocation::evidence_rows(&outcome, now_ms());
        Ok(CheckedPackage {
            accepted,
            revocation,
        })
    }

    /// Stores a package [`ingest_check`](Self::ingest_check) accepted: `bytes` are the ones it
    /// checked, given up here so the stored copy is that buffer itself.
    pub async fn ingest_store(
        &self,
        checked: CheckedPackage,
        mut bytes: Vec<u8>,
        peer: Option<&PeerConfig>,
    ) -> Result<Ingested, Error> {
        let CheckedPackage {
            mut accepted,
            revocation,
        } = checked;
        // What was verified, and so what is kept and forwarded, is the input less a BOM or
        // junk before `<?xml`.
        bytes.drain(..accepted.verified.verified_from.min(bytes.len()));
        let header_json = package_json(&accepted.verified.package);
        // The decoded files are in `bytes`; nothing below reads the model's copies.
        if let Package::Document(d) = &mut accepted.verified.package {
            for a in &mut d.attachments {
                a.data = Vec::new();
            }
        }
        let v = &accepted.verified;
        let now = now_ms();
        let actor = peer.map_or_else(|| "node".to_owned(), |p| format!("peer:{}", p.name));
        let peer_name = peer.map(|p| p.name.clone());
        let package = SignedPackage {
            header_json,
            bytes,
            signer_subject: Some(v.signer.subject.clone()),
            signer_fingerprint: Some(v.signer.sha256_fingerprint.clone()),
        };
        match &v.package {
            Package::Document(doc) => {
                let first = &accepted.local_recipients[0];
                let org = &self.agency(first)?.organization;
                let signer = self.signer(first)?;
                let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
                let status = StatusPackage::for_document(
                    doc,
                    org.clone(),
                    StatusCode::Arrived,
                    "Đã đến",
                    vn,
                );
                let receipt = self
                    .cpu(move || receipt::sign_status(&status, signer.as_ref()))
                    .await??;
                let new = NewIncoming {
                    document: meta(doc),
                    package,
                    local_recipients: accepted
                        .local_recipients
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    peer: peer_name,
                    receipt: receipt.clone(),
                    actor,
                    revocation,
                };
                Ok(match self.store.ingest_incoming(new, now).await? {
                    IngestOutcome::Inserted { message_id } => Ingested {
                        message_id,
                        duplicate: false,
                        receipt: Some(receipt),
                    },
                    IngestOutcome::Duplicate {
                        message_id,
                        receipt,
                    } => Ingested {
                        message_id,
                        duplicate: true,
                        receipt: Some(receipt),
                    },
                })
            }
            Package::Status(st) => {
                let new = NewStatus {
                    direction: Direction::In,
                    document_sender: st.response_for.organ_id.to_string(),
                    document_id: st.response_for.effective_document_id(),
                    reporter: st.from.organ_id.to_string(),
                    code: st.status_code.number(),
                    description: st.description.clone(),
                    reported_at: vietnam_ms(st.timestamp),
                    package,
                    deliveries: Vec::new(),
                    peer: peer_name,
                    actor,
                    revocation,
                };
                let out = self.store.record_status(new, now).await?;
                Ok(Ingested {
                    message_id: out.message_id,
                    duplicate: out.duplicate,
                    receipt: None,
                })
            }
        }
    }

    /// The signed status 02 to answer a peer with when [`ingest`](Self::ingest) refused its
    /// document for `err` (Decree 30/2020 Art. 21: a document that fails the authenticity or
    /// integrity check is sent back with status 02 and the reason). `None` when no 02 is due:
    ///
    /// - `err` is not one of [`REJECTION_CODES`] (the authenticity/integrity failures of the
    ///   signature, the certificate or the signer). Format errors, limits, duplicates and
    ///   `PEER_NOT_AUTHORISED` (a problem of the pushing node, not of the document) get the
    ///   error code only.
    /// - `NOT_ADDRESSED_HERE` (misaddressed) is not in the list on purpose: none of the `To`
    ///   recipients is an agency of this node, so there is no agency whose key could sign the
    ///   02, and invariant 4 forbids signing for anyone else. The error code is the answer.
    /// - the bytes cannot be read leniently as a document package, or the document is a
    ///   revocation or an update (business type 1 or 2: they carry the original's DocumentId,
    ///   and a 02 about them would read as a rejection of the original);
    /// - none of its `To` recipients is an agency of this node (no key to sign with);
    /// - `peer` (the node that pushed) does not serve the claimed sender: the 02 goes back to
    ///   the pusher, which must be the node of the document's sender.
    ///
    /// The content of the refused package is never trusted: it only addresses the 02
    /// (`ResponseFor`, and which of this node's agencies signs it — the first `To` recipient that
    /// is one). The description is ours, in Vietnamese, with the code. Nothing is stored
    /// (invariant 5): the 02 travels only in the refusal's body.
    pub fn rejection_status(
        &self,
        bytes: &[u8],
        peer: Option<&PeerConfig>,
        err: &Error,
    ) -> Option<Vec<u8>> {
        let code = err.code();
        if !REJECTION_CODES.contains(&code) {
            return None;
        }
        let opts = edxml::ReadOptions {
            limits: self.config.limits.clone(),
            strict: false,
        };
        let Ok(Package::Document(doc)) = edxml::read(bytes, &opts) else {
            return None;
        };
        if matches!(doc.business_type().number(), 1 | 2) {
            return None;
        }
        if let Some(p) = peer
            && !p.serves(&doc.header.from.organ_id)
        {
            return None;
        }
        let (agency, signer) = doc.header.to.iter().find_map(|t| {
            let a = self.config.agency(&t.organ_id)?;
            Some((a, self.signer(&t.organ_id).ok()?))
        })?;
        let description = format!(
            "Văn bản không bảo đảm tính xác thực, toàn vẹn ({}): {}",
            code.as_str(),
            code.message_vi()
        );
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        match receipt::signed_status(
            &doc,
            &agency.organization,
            StatusCode::Rejected,
            &description,
            vn,
            signer.as_ref(),
        ) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(code = %e.code(), error = %e, "cannot sign the 02 for a refused document");
                None
            }
        }
    }

    /// A clerk of `agency` reports `code` on a document in its inbox: a status package signed with
    /// the agency's key, stored in the history and queued for delivery to the original sender.
    pub async fn report_status(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        code: StatusCode,
        description: &str,
    ) -> Result<StatusOutcome, Error> {
        if !code.is_assigned()
            || code == StatusCode::Arrived
            || code == StatusCode::TakeBackRequested
        {
            return Err(FormatError::new(
                Code::StatusCodeUnknown,
                "status.code",
                format!("{code}: a recipient reports 02, 03, 04, 05, 06, 15 or 16"),
            )
            .into());
        }
        if matches!(code, StatusCode::Rejected | StatusCode::TakeBackRefused)
            && description.trim().is_empty()
        {
            return Err(FormatError::missing("status.description").into());
        }
        let item = self.store.inbox_item(agency.as_str(), message_id).await?;
        let take_back = matches!(
            code,
            StatusCode::TakeBackAgreed | StatusCode::TakeBackRefused
        );
        if take_back {
            // 15/16 answer a revocation, update or replacement request, nothing else.
            if !matches!(item.message.business_type, Some(1..=3)) {
                return Err(Error::store(
                    Code::InvalidTransition,
                    format!("status {code} answers a revocation, update or replacement request"),
                ));
            }
        } else {
            // The receipt (01) is implicit: a document nothing was reported on has arrived.
            let prev = item
                .current_status
                .and_then(StatusCode::from_number)
                .unwrap_or(StatusCode::Arrived);
            if !code.may_follow(prev) {
                return Err(Error::store(
                    Code::InvalidTransition,
                    format!("status {code} cannot follow {prev} on this document"),
                ));
            }
        }
        let bytes = self.store.message_bytes(message_id).await?;
        let doc = match edxml::read(
            &bytes,
            &edxml::ReadOptions {
                limits: Limits::default(),
                strict: false,
            },
        )? {
            Package::Document(d) => d,
            Package::Status(_) => return Err(Error::store(Code::NotFound, "not a document")),
        };
        let a = self.agency(agency)?;
        let signer = self.signer(agency)?;
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let now = now_ms();
        let status =
            StatusPackage::for_document(&doc, a.organization.clone(), code, description, vn);
        let (to_sign, by) = (status.clone(), signer.clone());
        let status_bytes = self
            .cpu(move || receipt::sign_status(&to_sign, by.as_ref()))
            .await??;
        let sender = doc.header.from.organ_id.clone();
        let route = routing::route(&self.config, &sender);
        let pkg = Package::Status(status);
        let cert = crate::pki::describe(signer.certificate()).ok();
        let new = NewStatus {
            direction: Direction::Out,
            document_sender: sender.to_string(),
            document_id: doc.header.effective_document_id(),
            reporter: agency.to_string(),
            code: code.number(),
            description: description.to_owned(),
            reported_at: vietnam_ms(vn),
            package: signed(
                status_bytes,
                cert.as_ref().map(|c| c.subject.clone()),
                cert.map(|c| c.sha256_fingerprint),
                &pkg,
            ),
            deliveries: vec![NewDelivery {
                recipient: sender.to_string(),
                route: route.as_stored(),
            }],
            peer: None,
            actor: actor.to_owned(),
            revocation: Vec::new(),
        };
        let recorded = self.store.record_status(new, now).await?;
        self.outbox_wake.notify_one();
        Ok(recorded)
    }
}
