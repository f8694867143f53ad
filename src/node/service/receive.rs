//! What arrives: a package pushed by a peer (or delivered locally) — checked, stored with its
//! receipts (one per addressed agency of this node, each signed by that agency) in one
//! transaction — and the signed 02 that answers a refused document.

use time::OffsetDateTime;

use super::*;
use crate::Error;
use crate::config::PeerConfig;
use crate::edxml::{self, Package, StatusCode, StatusPackage};
use crate::error::Code;
use crate::node::ingest;
use crate::node::receipt;
use crate::store::{Direction, IngestOutcome, NewIncoming, NewStatus, Receipt, Store};

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

/// A package [`Node::ingest_check`] accepted, with its revocation evidence: what
/// [`Node::ingest_store`] stores.
pub struct CheckedPackage {
    accepted: ingest::Accepted,
    revocation: Vec<crate::store::RevocationEvidence>,
}

/// The result of a push: stored now or seen before, and the receipts to answer with.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub message_id: i64,
    pub duplicate: bool,
    /// For a document, the signed 01 of each addressed agency of this node, signed by that
    /// agency (the original ones for a duplicate), in `To` order; empty for a status.
    pub receipts: Vec<Receipt>,
}

impl Ingested {
    /// The receipt `recipient` signed, if it is one of them.
    pub fn receipt_of(&self, recipient: &str) -> Option<&Receipt> {
        self.receipts.iter().find(|r| r.recipient == recipient)
    }
}

impl<S: Store> Node<S> {
    /// A package pushed by `peer` (`None`: delivered by this node to one of its own agencies).
    /// Verified, checked and its signer bound to its `From` code ([`crate::node::registry`]) before
    /// anything is stored; stored with its receipts (one per addressed agency of this node,
    /// each signed by that agency) in one transaction; a repeat of the same document gets the
    /// original receipts again.
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
        let _in_hand = crate::node::memory::InHand::new(bytes.len());
        let checked = self.ingest_check(&bytes, peer).await?;
        self.ingest_store(checked, bytes, peer).await
    }

    /// A package a mail carried (the bridge's mailbox, `from` the mail's address, for the
    /// audit record's actor `mail:<from>`): ingested exactly as one from a peer — the same
    /// verification, revocation check, deduplication and receipts — except whom it may speak
    /// for: a mail is not a peer, so the sender is bound by the signature alone, never by the
    /// mail's `From` ([`ingest::Origin::Mail`]). The receipts are returned for the caller to
    /// send back (the mailbox reader records them as outgoing statuses with the mail).
    pub async fn ingest_mail(&self, bytes: Vec<u8>, from: &str) -> Result<Ingested, Error> {
        let _in_hand = crate::node::memory::InHand::new(bytes.len());
        let checked = self.ingest_check_from(&bytes, ingest::Origin::Mail).await?;
        self.ingest_store_as(checked, bytes, None, format!("mail:{from}"))
            .await
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
        let origin = match peer {
            Some(p) => ingest::Origin::Peer(p),
            None => ingest::Origin::Node,
        };
        self.ingest_check_from(bytes, origin).await
    }

    async fn ingest_check_from(
        &self,
        bytes: &[u8],
        origin: ingest::Origin<'_>,
    ) -> Result<CheckedPackage, Error> {
        let accepted = ingest::check_from(
            bytes,
            &self.config,
            &self.trust,
            origin,
            std::time::SystemTime::now(),
        )?;
        // A package a channel authenticated has no signer: no registry binding (the channel
        // peer's `serves`, checked above, is its binding) and no path to check for revocation.
        let Some(v) = accepted.verified() else {
            return Ok(CheckedPackage {
                accepted,
                revocation: Vec::new(),
            });
        };
        // Sender binding against the agency registry: before anything is stored.
        crate::node::registry::bind_sender(
            &self.config,
            &self.keys,
            &self.trust,
            self.store.as_ref(),
            v,
        )
        .await?;
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
        bytes: Vec<u8>,
        peer: Option<&PeerConfig>,
    ) -> Result<Ingested, Error> {
        let actor = peer.map_or_else(|| "node".to_owned(), |p| format!("peer:{}", p.name));
        self.ingest_store_as(checked, bytes, peer, actor).await
    }

    /// [`ingest_store`](Self::ingest_store) recorded as done by `actor`. Once the package is
    /// committed (not a repeat), the local agencies' notification addresses are told of it
    /// (`mail::notify`: best effort, on a task of its own, never delaying this answer).
    async fn ingest_store_as(
        &self,
        checked: CheckedPackage,
        bytes: Vec<u8>,
        peer: Option<&PeerConfig>,
        actor: String,
    ) -> Result<Ingested, Error> {
        let CheckedPackage {
            mut accepted,
            revocation,
        } = checked;
        // What is kept and forwarded is what was verified, less what the signature does not
        // cover (`dsig::archive`): no comments, no unsigned parts of the Signature; or, from a
        // channel, what was read ([`ingest::Accepted::stored`]).
        let header_json = package_json(accepted.package());
        let (package, received_sha256) = accepted.stored(bytes, header_json);
        // The decoded files are in `bytes`; nothing below reads the model's copies.
        if let Package::Document(d) = accepted.package_mut() {
            for a in &mut d.attachments {
                a.data = Vec::new();
            }
        }
        let now = now_ms();
        let peer_name = peer.map(|p| p.name.clone());
        // Delivered by this node's own outbox to one of its agencies.
        let local_route = peer.is_none() && actor == "node";
        match accepted.package() {
            Package::Document(doc) => {
                // Each addressed agency of this node acknowledges for itself (Decree 30/2020
                // Art. 21): its own 01, signed with its own key. One CPU job signs them all.
                let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
                let mut unsigned = Vec::with_capacity(accepted.local_recipients.len());
                for recipient in &accepted.local_recipients {
                    let org = &self.agency(recipient)?.organization;
                    let signer = self.signer(recipient)?;
                    let status = StatusPackage::for_document(
                        doc,
                        org.clone(),
                        StatusCode::Arrived,
                        "Đã đến",
                        vn,
                    );
                    unsigned.push((status, signer));
                }
                let signed: Vec<Vec<u8>> = self
                    .cpu(move || {
                        unsigned
                            .iter()
                            .map(|(status, signer)| receipt::sign_status(status, signer.as_ref()))
                            .collect::<Result<Vec<_>, Error>>()
                    })
                    .await??;
                let receipts: Vec<Receipt> = accepted
                    .local_recipients
                    .iter()
                    .zip(&signed)
                    .map(|(r, bytes)| Receipt {
                        recipient: r.to_string(),
                        bytes: bytes.clone(),
                    })
                    .collect();
                let new = NewIncoming {
                    document: meta(doc),
                    package,
                    local_recipients: accepted
                        .local_recipients
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    peer: peer_name,
                    receipts: signed,
                    actor,
                    revocation,
                    received_sha256,
                };
                Ok(match self.store.ingest_incoming(new, now).await? {
                    IngestOutcome::Inserted { message_id } => {
                        crate::mail::notify::arrival(
                            self,
                            message_id,
                            doc,
                            &accepted.local_recipients,
                        );
                        Ingested {
                            message_id,
                            duplicate: false,
                            receipts,
                        }
                    }
                    IngestOutcome::Duplicate {
                        message_id,
                        receipts,
                    } => Ingested {
                        message_id,
                        duplicate: true,
                        receipts,
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
                    on_business_type: None,
                };
                // Checked against the document's history in the store's transaction
                // (edxml::processing): a status the order refuses is a 4xx and stores nothing.
                let out = self.store.record_status(new, now).await?;
                // A status one of this node's agencies reported on another's document comes back
                // through the local route as the same report (`duplicate`): its delivery is
                // when the document's sender receives it, so it is notified then too.
                if !out.duplicate || local_route {
                    crate::mail::notify::status_received(self, out.message_id, st);
                }
                Ok(Ingested {
                    message_id: out.message_id,
                    duplicate: out.duplicate,
                    receipts: Vec::new(),
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
    /// The content of the refused package is never trusted: it only addresses the 02s
    /// (`ResponseFor`, and which of this node's agencies sign them — each `To` recipient that is
    /// one, each for itself, as each acknowledges for itself with its own 01). The description is
    /// ours, in Vietnamese, with the code. Nothing is stored (invariant 5): the 02s travel only in
    /// the refusal's body. Empty when no 02 is due.
    pub fn rejection_status(
        &self,
        bytes: &[u8],
        peer: Option<&PeerConfig>,
        err: &Error,
    ) -> Vec<Vec<u8>> {
        self.rejection_statuses(bytes, peer, err)
            .unwrap_or_default()
    }

    fn rejection_statuses(
        &self,
        bytes: &[u8],
        peer: Option<&PeerConfig>,
        err: &Error,
    ) -> Option<Vec<Vec<u8>>> {
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
        let description = format!(
            "Văn bản không bảo đảm tính xác thực, toàn vẹn ({}): {}",
            code.as_str(),
            code.message_vi()
        );
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let mut signed = Vec::new();
        let mut seen = Vec::new();
        for t in &doc.header.to {
            let Some(agency) = self.config.agency(&t.organ_id) else {
                continue;
            };
            if seen.contains(&&t.organ_id) {
                continue;
            }
            seen.push(&t.organ_id);
            let signer = match self.signer(&t.organ_id) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(agency = %t.organ_id, code = %e.code(), error = %e, "cannot sign the 02 for a refused document");
                    continue;
                }
            };
            match receipt::signed_status(
                &doc,
                &agency.organization,
                StatusCode::Rejected,
                &description,
                vn,
                signer.as_ref(),
            ) {
                Ok(b) => signed.push(b),
                Err(e) => {
                    tracing::warn!(agency = %t.organ_id, code = %e.code(), error = %e, "cannot sign the 02 for a refused document");
                }
            }
        }
        Some(signed)
    }
}

impl<S: Store> Node<S> {
    /// The receipts of a document taken in without a connection to answer on (a mail): each
    /// local recipient's signed 01 of `ingested`, as an outgoing status — recorded in the
    /// document's history like a clerk's report and delivered to the document's sender over
    /// `route` by the outbox, with its guarantees. `on_business_type` is the received
    /// package's business type; `actor` is recorded with each.
    pub fn receipts_as_statuses(
        &self,
        ingested: &Ingested,
        on_business_type: Option<u8>,
        route: &crate::node::routing::Route,
        actor: &str,
    ) -> Result<Vec<NewStatus>, Error> {
        let opts = edxml::ReadOptions {
            limits: crate::edxml::xml::Limits::default(),
            strict: false,
        };
        let mut out = Vec::with_capacity(ingested.receipts.len());
        for r in &ingested.receipts {
            let pkg = edxml::read(&r.bytes, &opts)?;
            let Package::Status(st) = &pkg else {
                return Err(Error::internal(
                    "receipt",
                    format!("the receipt of {} is not a status package", r.recipient),
                ));
            };
            let cert = OrganId::parse_lenient(&r.recipient)
                .ok()
                .and_then(|id| self.keys.get(&id).cloned())
                .and_then(|signer| crate::pki::describe(signer.certificate()).ok());
            let sender = st.response_for.organ_id.to_string();
            out.push(NewStatus {
                direction: Direction::Out,
                document_sender: sender.clone(),
                document_id: st.response_for.effective_document_id(),
                reporter: r.recipient.clone(),
                code: st.status_code.number(),
                description: st.description.clone(),
                reported_at: vietnam_ms(st.timestamp),
                package: signed(
                    r.bytes.clone(),
                    cert.as_ref().map(|c| c.subject.clone()),
                    cert.map(|c| c.sha256_fingerprint),
                    &pkg,
                ),
                deliveries: vec![crate::store::NewDelivery {
                    recipient: sender,
                    route: route.as_stored(),
                }],
                peer: None,
                actor: actor.to_owned(),
                revocation: Vec::new(),
                on_business_type,
            });
        }
        Ok(out)
    }
}
