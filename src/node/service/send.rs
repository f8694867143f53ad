//! A clerk's dispatches: submit, revoke, update, replace — composed, numbered, signed with the
//! agency's own key and stored with their deliveries in one transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::*;
use crate::Error;
use crate::dsig;
use crate::edxml::{self, DocumentPackage, OrganId, Package};
use crate::error::{Code, FormatError};
use crate::node::compose::{self, File, SignerJson, Submission};
use crate::node::idempotency::KeyGuard;
use crate::node::validate::{self, Text};
use crate::node::{numbering, routing};
use crate::signer::Signer;
use crate::store::{
    NewDelivery, NewOutgoing, Numbering, RequestFingerprint, SignedPackage, Store, SubmitWarning,
    Submitted,
};

/// How many times a submission is numbered, signed and written when the store refuses its
/// number because the sequence moved meanwhile (`Node::numbered`). Two replicas numbering one
/// agency under load lose a try often (measured: with 5 tries, 7 and 37 of 3,000 bench
/// submissions still lost every one); each try waits a growing random moment first.
pub const RENUMBER_TRIES: u32 = 12;

/// The most bytes of files a document may have for a copy of it to be kept while it is written,
/// to renumber it if its number was taken meanwhile (`Node::numbered`): a 100 MB document must
/// not be held twice.
pub const RENUMBER_COPY_MAX: usize = 16 * 1024 * 1024;

/// What a clerk changes with [`Node::update`] (the JSON body of `POST
/// /api/v1/documents/{id}/update`, or its `metadata` part). Absent fields stay as sent; at
/// least one change besides the reason is required.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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

impl<S: Store> Node<S> {
    /// A clerk of `agency` (`actor` names the token) submits a dispatch: compose, sign with the
    /// agency's own key, store with one delivery per recipient — committed before this returns.
    /// A repeated `idempotency_key` with the same request (see
    /// [`idempotency::fingerprint`](crate::node::idempotency::fingerprint)) returns the first
    /// submission without doing anything; with another request it is `IDEMPOTENCY_KEY_REUSED`,
    /// decided before anything is numbered or signed.
    pub async fn submit(
        &self,
        agency: &OrganId,
        actor: &str,
        sub: &Submission,
        files: Vec<File>,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        let key = keyed(idempotency_key, "submit", &files, || {
            Ok(vec![("metadata", as_json(sub)?)])
        })?;
        let (_key, found) = self.hold_key(agency, &key).await?;
        if let Some(found) = found {
            // The same request: its warnings are the first answer's.
            let warnings =
                check_not_empty("files", sub.content.as_deref(), files.len()).unwrap_or_default();
            return Ok(Submitted { warnings, ..found });
        }
        let signer = self.signer(agency)?;
        validate::submission(sub, &files, &self.config)?;
        let warnings = check_not_empty("files", sub.content.as_deref(), files.len())?;
        let now = now_ms();
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let _in_hand = crate::node::memory::InHand::new(files.iter().map(|f| f.data.len()).sum());
        let doc = self.compose_unnumbered(agency, sub, files, vn)?;
        let submitted = self
            .number_sign_and_store(signer, actor, doc, typed(sub), key, now, None)
            .await?;
        Ok(Submitted {
            warnings,
            ..submitted
        })
    }

    /// Holds `key` while its request is under way (a repeat arriving meanwhile waits for it),
    /// and gives the answer of an earlier request with it: `Some` when it was this request,
    /// `IDEMPOTENCY_KEY_REUSED` when another (the store compares the fingerprints, and compares
    /// them again in the transaction that stores a new one).
    pub(super) async fn hold_key(
        &self,
        agency: &OrganId,
        key: &Option<(String, RequestFingerprint)>,
    ) -> Result<(Option<KeyGuard<'_>>, Option<Submitted>), Error> {
        let Some((key, request)) = key else {
            return Ok((None, None));
        };
        let guard = self.in_flight_keys.hold(agency.as_str(), key).await;
        let found = self
            .store
            .find_submission(agency.as_str(), key, Some(request))
            .await?;
        Ok((Some(guard), found))
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
        self.revoke_with_key(agency, actor, message_id, reason, None)
            .await
    }

    /// [`revoke`](Self::revoke) with the clerk system's `Idempotency-Key`: the same revocation
    /// again gets the first answer (`existing`), the key used for another request is
    /// `IDEMPOTENCY_KEY_REUSED`.
    pub async fn revoke_with_key(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        reason: &str,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        let key = keyed(
            idempotency_key,
            &format!("revoke {message_id}"),
            &[],
            || Ok(vec![("reason", Value::String(reason.to_owned()))]),
        )?;
        let (_key, found) = self.hold_key(agency, &key).await?;
        if let Some(found) = found {
            return Ok(found);
        }
        if reason.trim().is_empty() {
            return Err(FormatError::missing("revoke.reason").into());
        }
        validate::text("revoke.reason", reason, Text::Body, None)?;
        let doc = self
            .original_document(agency, message_id, "revoked")
            .await?;
        let signer = self.signer(agency)?;
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let business =
            edxml::Business::revocation(doc.header.effective_document_id(), reason.trim());
        let revocation = DocumentPackage::follow_up(&doc, business, vn);
        self.sign_and_store(signer, actor, revocation, key, now_ms())
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
        self.update_with_key(agency, actor, message_id, req, None)
            .await
    }

    /// [`update`](Self::update) with the clerk system's `Idempotency-Key` (as
    /// [`revoke_with_key`](Self::revoke_with_key)).
    pub async fn update_with_key(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        req: UpdateRequest,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        let key = keyed(
            idempotency_key,
            &format!("update {message_id}"),
            &req.files,
            || Ok(vec![("update", as_json(&req)?)]),
        )?;
        let (_key, found) = self.hold_key(agency, &key).await?;
        if let Some(found) = found {
            return Ok(found);
        }
        let reason = req.reason.trim();
        if reason.is_empty() {
            return Err(FormatError::missing("update.reason").into());
        }
        check_update(&req, &self.config)?;
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
                d => Some(edxml::dates::parse_date(d).map(|(d, _)| d).map_err(|e| {
                    FormatError::invalid("update.due_date", e).said(
                        crate::error::Problem::Expected(edxml::dates::date_expected_vi().into()),
                    )
                })?),
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
            for f in &req.files {
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
        // The document as updated is a document: the same rule as a submission's.
        let path = if req.files.is_empty() && req.content.is_some() {
            "update.content"
        } else {
            "update.files"
        };
        let warnings = check_not_empty(path, header.content.as_deref(), attachments.len())?;
        let business = edxml::Business::update(doc.header.effective_document_id(), reason, info);
        let mut update = DocumentPackage::follow_up(&doc, business, vn);
        update.header = header;
        update.attachments = attachments;
        let submitted = self
            .sign_and_store(signer, actor, update, key, now_ms())
            .await?;
        Ok(Submitted {
            warnings,
            ..submitted
        })
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
        self.replace_with_key(agency, actor, message_id, sub, files, reason, None)
            .await
    }

    /// [`replace`](Self::replace) with the clerk system's `Idempotency-Key` (as
    /// [`submit`](Self::submit): decided before anything is numbered or signed).
    #[allow(clippy::too_many_arguments)]
    pub async fn replace_with_key(
        &self,
        agency: &OrganId,
        actor: &str,
        message_id: i64,
        sub: &Submission,
        files: Vec<File>,
        reason: &str,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        let key = keyed(
            idempotency_key,
            &format!("replace {message_id}"),
            &files,
            || {
                Ok(vec![
                    ("metadata", as_json(sub)?),
                    ("reason", Value::String(reason.to_owned())),
                ])
            },
        )?;
        let (_key, found) = self.hold_key(agency, &key).await?;
        if let Some(found) = found {
            let warnings =
                check_not_empty("files", sub.content.as_deref(), files.len()).unwrap_or_default();
            return Ok(Submitted { warnings, ..found });
        }
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(FormatError::missing("replace.reason").into());
        }
        validate::text("replace.reason", reason, Text::Body, None)?;
        validate::submission(sub, &files, &self.config)?;
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
        let warnings = check_not_empty("files", sub.content.as_deref(), files.len())?;
        let now = now_ms();
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let _in_hand = crate::node::memory::InHand::new(files.iter().map(|f| f.data.len()).sum());
        let mut doc = self.compose_unnumbered(agency, sub, files, vn)?;
        // Renumbered with the business block when the number is chosen.
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
        let submitted = self
            .number_sign_and_store(signer, actor, doc, typed(sub), key, now, None)
            .await?;
        Ok(Submitted {
            warnings,
            ..submitted
        })
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
            Package::Status(_) => Err(Error::store(
                Code::NotFound,
                "this message is a status, not a document",
            )),
        }
    }

    /// `sub` and `files` as a package from `agency`, every check of the submission done, with
    /// the number given or a provisional one: [`number_sign_and_store`](Self::number_sign_and_store)
    /// gives it its số (nothing is numbered before the whole submission is known to be valid).
    pub(super) fn compose_unnumbered(
        &self,
        agency: &OrganId,
        sub: &Submission,
        files: Vec<File>,
        vn: time::PrimitiveDateTime,
    ) -> Result<DocumentPackage, Error> {
        let a = self.agency(agency)?;
        let config = &self.config;
        let name_of = |c: &OrganId| config.agency(c).map(|a| a.organization.organ_name.clone());
        Ok(compose::compose(
            sub,
            &a.organization,
            sub.number.unwrap_or(1),
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
            let path = match r {
                UpdateRecipient::Code(_) => format!("update.recipients[{i}]"),
                UpdateRecipient::Detailed { .. } => format!("update.recipients[{i}].code"),
            };
            let id = validate::recipient_code(&path, code)?;
            validate::routes(&self.config, [(path, &id)])?;
            if let Some(n) = name {
                validate::text(
                    &format!("update.recipients[{i}].name"),
                    n,
                    Text::Line,
                    Some(crate::edxml::soft_limits::ORGAN_NAME),
                )?;
            }
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

    /// Signs `doc` with `signer` and stores it with one delivery per `To` recipient, routed now
    /// (a revocation or an update: the original's number).
    async fn sign_and_store(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        doc: DocumentPackage,
        key: Option<(String, RequestFingerprint)>,
        now: i64,
    ) -> Result<Submitted, Error> {
        let new = self.sign(signer, actor, doc, key, Numbering::Given).await?;
        let submitted = self.store.submit_outgoing(new, now).await?;
        self.outbox_wake.notify_one();
        Ok(submitted)
    }

    /// Gives `doc` its số — `typed` (the clerk's, with whether it was confirmed) or the next of
    /// the agency's sequence — then signs and stores it as [`sign_and_store`](Self::sign_and_store).
    ///
    /// The number is taken by the store transaction that stores the document, never before
    /// (`node::numbering`): a refusal or a crash anywhere before that commit leaves no gap and
    /// no number recorded apart from its document. The agency's book is locked only while the
    /// number is chosen; signing and writing the package run alongside other submissions, and
    /// the write waits for its turn (the write numbered before it queued) to be queued itself.
    ///
    /// Once started it runs to its end on a task of its own, even if the caller goes away (a
    /// clerk's client that disconnects drops the request's future): dropped between choosing a
    /// number and queuing its write, it would leave the book ahead of the store, and the
    /// agency's next submissions would fail until the book asked the store again.
    ///
    /// `from_draft`: the draft a clerk approved as this document; the same transaction marks it
    /// approved (or refuses, `INVALID_TRANSITION`, when it no longer is a draft: nothing is
    /// numbered then).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn number_sign_and_store(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        doc: DocumentPackage,
        typed: Option<(u32, bool)>,
        key: Option<(String, RequestFingerprint)>,
        now: i64,
        from_draft: Option<i64>,
    ) -> Result<Submitted, Error> {
        let node = self.clone();
        let actor = actor.to_owned();
        tokio::spawn(async move {
            node.numbered(signer, &actor, doc, typed, key, now, from_draft)
                .await
        })
        .await
        .map_err(|e| Error::internal("numbered submission", e.to_string()))?
    }

    /// The work of [`number_sign_and_store`](Self::number_sign_and_store), on its own task.
    ///
    /// Replicas sharing one database each hand out numbers from their own book, so two of them
    /// can choose the same next số; the store takes it for the first write and refuses the
    /// other ([`numbering::sequence_moved`]: nothing stored). That one is renumbered — the book
    /// forgot its next on the refusal and asks the store again — signed again and written
    /// again, up to [`RENUMBER_TRIES`] times, so the clerk sees success and the register stays
    /// without gaps or repeats. The same cures a submission of this node refused because one
    /// numbered before it stored nothing. A typed số is never renumbered; nor is a document
    /// with more than [`RENUMBER_COPY_MAX`] bytes of files, which would have to be held twice
    /// (the clerk is told `STORE_UNAVAILABLE` and submits again, as on one node).
    #[allow(clippy::too_many_arguments)]
    async fn numbered(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        doc: DocumentPackage,
        typed: Option<(u32, bool)>,
        key: Option<(String, RequestFingerprint)>,
        now: i64,
        from_draft: Option<i64>,
    ) -> Result<Submitted, Error> {
        let files: usize = doc.attachments.iter().map(|a| a.data.len()).sum();
        let mut spare = (typed.is_none() && files <= RENUMBER_COPY_MAX).then(|| doc.clone());
        let mut doc = doc;
        let mut tries = 1;
        loop {
            let out = self
                .numbered_once(
                    signer.clone(),
                    actor,
                    doc,
                    typed,
                    key.clone(),
                    now,
                    from_draft,
                )
                .await;
            match (out, spare.take()) {
                (Err(e), Some(copy)) if numbering::sequence_moved(&e) && tries < RENUMBER_TRIES => {
                    tracing::info!(
                        agency = %copy.header.from.organ_id,
                        tries,
                        "the số chosen was taken meanwhile (another replica, or a submission \
                         numbered before failed); renumbering"
                    );
                    // A moment of jitter lets the other replica's writes commit, so the store's
                    // sequence the book asks for next is the one to number after.
                    let jitter = fastrand::u64(0..=10 * u64::from(tries));
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                    tries += 1;
                    if tries < RENUMBER_TRIES {
                        spare = Some(copy.clone());
                    }
                    doc = copy;
                }
                (out, _) => return out,
            }
        }
    }

    /// One try of [`numbered`](Self::numbered): a number from the book, signed, written.
    #[allow(clippy::too_many_arguments)]
    async fn numbered_once(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        mut doc: DocumentPackage,
        typed: Option<(u32, bool)>,
        key: Option<(String, RequestFingerprint)>,
        now: i64,
        from_draft: Option<i64>,
    ) -> Result<Submitted, Error> {
        let agency = doc.header.from.organ_id.to_string();
        let year = doc.header.promulgation_info.date.year();
        let book = self.books.book(&agency, year);
        let (number, numbering, moves_book, turn) = {
            let mut open = book.lock().await;
            let next = open.next(self.store.last_number(&agency, year)).await?;
            let (number, numbering) = match typed {
                Some((n, confirmed)) => {
                    numbering::check_typed(n, next, confirmed)?;
                    (n, Numbering::Given)
                }
                None => (next, Numbering::Next),
            };
            // Whether this submission decides what the book hands out next (a typed number
            // below the sequence does not).
            (number, numbering, number >= next, open.take(number))
        };
        let (my_turn, done) = turn.split();
        compose::renumber(&mut doc, number);
        let queued = async {
            let mut new = self.sign(signer, actor, doc, key, numbering).await?;
            new.from_draft = from_draft;
            self.store.queue_outgoing(new, now, Box::pin(my_turn)).await
        }
        .await;
        // Queued, or given up: the next submission's write may be queued now.
        drop(done);
        let pending = match queued {
            Ok(p) => p,
            Err(e) => {
                if moves_book {
                    let mut open = book.lock().await;
                    match numbering {
                        // The next of the sequence: handed out again if no later one was.
                        Numbering::Next => open.give_back(number),
                        // A typed number above the sequence moved the book past it; the
                        // store's sequence did not move, so ask it again.
                        Numbering::Given => open.forget(),
                    }
                }
                return Err(e);
            }
        };
        let out = pending.await;
        if moves_book && !matches!(&out, Ok(s) if !s.existing) {
            // Its number was not taken: the store says again what comes next.
            book.lock().await.forget();
        }
        let submitted = out?;
        self.outbox_wake.notify_one();
        Ok(submitted)
    }

    /// `doc` signed with `signer`, as the store takes it.
    async fn sign(
        &self,
        signer: Arc<dyn Signer>,
        actor: &str,
        doc: DocumentPackage,
        key: Option<(String, RequestFingerprint)>,
        numbering: Numbering,
    ) -> Result<NewOutgoing, Error> {
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
                // What the receivers' parser refuses first (the same limit, `[limits]`).
                if bytes.len() > limits.max_package_bytes {
                    return Err(FormatError::new(
                        Code::PackageTooLarge,
                        "(package)",
                        format!(
                            "the signed package would be {} bytes, over the limit of {} that \
                             receivers accept",
                            bytes.len(),
                            limits.max_package_bytes
                        ),
                    )
                    .into());
                }
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
        Ok(NewOutgoing {
            document,
            package: SignedPackage {
                header_json,
                bytes,
                signer_subject: cert.as_ref().map(|c| c.subject.clone()),
                signer_fingerprint: cert.map(|c| c.sha256_fingerprint),
                signed_content: None,
                channel: None,
            },
            deliveries,
            idempotency_key: key.as_ref().map(|(k, _)| k.clone()),
            request: key.map(|(_, r)| r),
            actor: actor.to_owned(),
            numbering,
            from_draft: None,
        })
    }
}

/// Whether a new document (a submission, a replacement, a document as updated) carries
/// something to deliver: the signed document file is what receivers file and show (Decree
/// 30/2020/NĐ-CP, Art. 11 and Annex I: the electronic document is the signed file; edXML
/// `Content` is optional text). Neither a file nor non-blank content is `DOCUMENT_EMPTY`
/// (naming `path`); content alone is accepted with the warning `NO_FILE`.
pub(crate) fn check_not_empty(
    path: &str,
    content: Option<&str>,
    files: usize,
) -> Result<Vec<SubmitWarning>, Error> {
    if files > 0 {
        return Ok(Vec::new());
    }
    if content.is_some_and(|c| !c.trim().is_empty()) {
        return Ok(vec![SubmitWarning {
            code: "NO_FILE",
            message: "no file attached: the document is sent with its text content only, and \
                      receivers expect the signed document file (PDF)"
                .to_owned(),
            message_vi: "Văn bản được gửi không kèm tệp, chỉ có phần nội dung; cơ quan nhận \
                         thường cần tệp văn bản điện tử đã ký số (PDF) theo Nghị định \
                         30/2020/NĐ-CP.",
        }]);
    }
    Err(FormatError::new(
        Code::DocumentEmpty,
        path,
        "no file and no content: attach the signed document file (PDF) as a `file` part",
    )
    .into())
}

/// `v` (a parsed request) as JSON, for its fingerprint.
pub(super) fn as_json(v: &impl Serialize) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::internal("request as JSON", e.to_string()))
}

/// `key` with the fingerprint of the request it names
/// ([`fingerprint`](crate::node::idempotency::fingerprint)); `fields` is only computed when there
/// is a key.
pub(super) fn keyed(
    key: Option<String>,
    operation: &str,
    files: &[File],
    fields: impl FnOnce() -> Result<Vec<(&'static str, Value)>, Error>,
) -> Result<Option<(String, RequestFingerprint)>, Error> {
    let Some(key) = key else {
        return Ok(None);
    };
    let request = crate::node::idempotency::fingerprint(operation, &fields()?, files);
    Ok(Some((key, request)))
}

/// The clerk's typed số, with whether a far one was confirmed.
pub(super) fn typed(sub: &Submission) -> Option<(u32, bool)> {
    sub.number.map(|n| (n, sub.confirm_number))
}

/// What of an update can be checked without the original: every text field and the files.
/// (Recipients are checked as their list is built.)
fn check_update(req: &UpdateRequest, config: &crate::config::Config) -> Result<(), Error> {
    use crate::edxml::soft_limits as soft;
    validate::text("update.reason", &req.reason, Text::Body, None)?;
    if let Some(s) = &req.subject {
        validate::text("update.subject", s, Text::Line, Some(soft::SUBJECT))?;
    }
    if let Some(c) = &req.content {
        validate::text("update.content", c, Text::Body, None)?;
    }
    if let Some(s) = &req.signer {
        validate::signer("update.signer", s)?;
    }
    validate::files("update.files", &req.files, &config.limits)?;
    Ok(())
}
