//! A clerk's decision on a draft the mail bridge made from an agency's mail (issue 16): approve
//! it — the node numbers, signs and sends it through the submission path of [`send`](super::send)
//! — or discard it with a reason.
//!
//! A mail never makes the node sign anything by itself: a draft is only material (the mail's
//! files, its subject's số/ký hiệu and trích yếu as defaults). The clerk gives what a submission
//! needs that a mail cannot (recipients, type, signer, dates, urgency, …) in a
//! [`DraftApproval`]; approval is one submission whose transaction also moves the draft to
//! `approved` ([`NewOutgoing::from_draft`](crate::store::NewOutgoing::from_draft)), so a draft
//! is approved exactly when its document is stored, and a draft no longer waiting (approved or
//! discarded meanwhile) is refused before or in that transaction with nothing numbered.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use super::send::{as_json, check_not_empty, keyed, typed};
use super::*;
use crate::edxml;
use crate::error::{FormatError, Problem};
use crate::node::compose::{File, Recipient, SignerJson, StaffJson, Submission};
use crate::node::validate::{self, Text};
use crate::store::{DraftItem, DraftState, Submitted};

/// The longest discard reason kept (characters): it is an audit record's text, not a document.
pub const DISCARD_REASON_MAX: usize = 2000;

/// Which số an approved draft is signed with: the draft's own by default, the next of the
/// agency's sequence on request, or one the clerk types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DraftNumber {
    /// `number` absent: the số the mail's subject gave (`Số 12/UBND-VP: …`), when the draft has
    /// one that is a whole number above 0; otherwise the next of the sequence.
    #[default]
    FromDraft,
    /// `"number": null`: the next of the agency's yearly sequence, whatever the draft says.
    Next,
    /// `"number": n`: this số (checked as a clerk's typed number is: `confirm_number` for one
    /// far above the sequence).
    Given(u32),
}

impl DraftNumber {
    fn is_from_draft(&self) -> bool {
        *self == DraftNumber::FromDraft
    }
}

/// Serialized as the request said it (absent, `null`, a number), so the request's
/// fingerprint tells the three apart.
impl Serialize for DraftNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DraftNumber::FromDraft | DraftNumber::Next => s.serialize_none(),
            DraftNumber::Given(n) => s.serialize_u32(*n),
        }
    }
}

/// `null` or a number; an absent field is [`DraftNumber::FromDraft`] (`#[serde(default)]`).
fn draft_number<'de, D: Deserializer<'de>>(d: D) -> Result<DraftNumber, D::Error> {
    Ok(match Option::<u32>::deserialize(d)? {
        None => DraftNumber::Next,
        Some(n) => DraftNumber::Given(n),
    })
}

fn one() -> i32 {
    1
}

/// What a clerk gives to approve a draft (the JSON body of `POST
/// /api/v1/drafts/{id}/approve`): the fields of a submission ([`Submission`], the same names and
/// rules), where `notation` and `subject` default to the draft's (from its mail's subject) and
/// `number` to the draft's số ([`DraftNumber`]). The files are the draft's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DraftApproval {
    /// Recipients: agency codes, or `{ "code": …, "name": … }`.
    pub recipients: Vec<Recipient>,
    #[serde(
        default,
        deserialize_with = "draft_number",
        skip_serializing_if = "DraftNumber::is_from_draft"
    )]
    pub number: DraftNumber,
    /// Confirms a số far above the sequence (as a submission's `confirm_number`).
    #[serde(default)]
    pub confirm_number: bool,
    /// Ký hiệu; the draft's when absent.
    pub notation: Option<String>,
    /// Trích yếu; the draft's when absent.
    pub subject: Option<String>,
    /// `DocumentType/Type`; 1 by default.
    #[serde(default = "one")]
    pub r#type: i32,
    pub type_detail: Option<i32>,
    /// "Công văn" by default.
    pub type_name: Option<String>,
    /// The document's text, if any (the mail's body is never used for it: it is shown to the
    /// clerk for reference only).
    pub content: Option<String>,
    #[serde(default)]
    pub signer: SignerJson,
    pub place: Option<String>,
    pub date: Option<String>,
    pub due_date: Option<String>,
    #[serde(default)]
    pub priority: u8,
    pub steering_type: Option<u8>,
    #[serde(default)]
    pub to_places: Vec<String>,
    pub staff: Option<StaffJson>,
    #[serde(default)]
    pub paper: bool,
}

impl DraftApproval {
    /// The submission this approval makes of `draft`: the draft's số, ký hiệu and trích yếu
    /// where the clerk gave none. A draft without a ký hiệu (or a trích yếu) needs the clerk's.
    pub fn submission(&self, draft: &DraftItem) -> Result<Submission, FormatError> {
        let notation = match (&self.notation, &draft.code_notation) {
            (Some(n), _) => n.clone(),
            (None, Some(n)) if !n.trim().is_empty() => n.clone(),
            (None, _) => {
                return Err(FormatError::new(
                    Code::ElementMissing,
                    "notation",
                    "missing, and the draft has none (its mail's subject gave no ký hiệu): give it",
                )
                .said(Problem::Missing)
                .hint_vi(
                    "tiêu đề thư không ghi ký hiệu văn bản nên bản thảo chưa có; vui lòng nhập \
                     ký hiệu (ví dụ UBND-VP) rồi duyệt lại",
                ));
            }
        };
        let subject = match &self.subject {
            Some(s) => s.clone(),
            None if !draft.summary.trim().is_empty() => draft.summary.clone(),
            None => {
                return Err(FormatError::new(
                    Code::ElementMissing,
                    "subject",
                    "missing, and the draft has no trích yếu (its mail had no subject): give it",
                )
                .said(Problem::Missing)
                .hint_vi(
                    "thư không có tiêu đề nên bản thảo chưa có trích yếu; vui lòng nhập trích \
                     yếu rồi duyệt lại",
                ));
            }
        };
        let number = match self.number {
            DraftNumber::FromDraft => draft
                .code_number
                .as_deref()
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|n| *n > 0),
            DraftNumber::Next => None,
            DraftNumber::Given(n) => Some(n),
        };
        Ok(Submission {
            recipients: self.recipients.clone(),
            number,
            confirm_number: self.confirm_number,
            notation,
            r#type: self.r#type,
            type_detail: self.type_detail,
            type_name: self.type_name.clone(),
            subject,
            content: self.content.clone(),
            signer: self.signer.clone(),
            place: self.place.clone(),
            date: self.date.clone(),
            due_date: self.due_date.clone(),
            priority: self.priority,
            steering_type: self.steering_type,
            to_places: self.to_places.clone(),
            staff: self.staff.clone(),
            paper: self.paper,
        })
    }
}

/// An error of the submission path, with the fields named as the approval's body names them:
/// the submission's checks say `metadata.notation` (the `metadata` part of `POST
/// /api/v1/documents`), an approval's body has `notation` at its top.
fn unprefixed(e: Error) -> Error {
    match e {
        Error::Format(mut f) => {
            if let Some(rest) = f.path.strip_prefix("metadata.") {
                f.path = rest.to_owned();
            }
            f.problem = f.problem.replace("metadata.", "");
            Error::Format(f)
        }
        Error::Store { code, message } => Error::Store {
            code,
            message: message.replace("metadata.", ""),
        },
        other => other,
    }
}

impl<S: Store> Node<S> {
    /// A clerk of `agency` approves its draft `id` (`actor` names the token): the draft's files
    /// with `approval`'s metadata are numbered, signed with the agency's key and stored with one
    /// delivery per recipient, and the draft marked `approved` with the new document, in one
    /// transaction — committed before this returns.
    ///
    /// `idempotency_key` as for [`submit`](Self::submit): the same approval again gets the
    /// first answer (`existing`), the key used for another request is `IDEMPOTENCY_KEY_REUSED`;
    /// both decided before anything is numbered. Another agency's draft is `NOT_FOUND`; a draft
    /// no longer waiting (approved, discarded) is `INVALID_TRANSITION`, nothing numbered.
    pub async fn approve_draft(
        &self,
        agency: &OrganId,
        id: i64,
        approval: &DraftApproval,
        actor: &str,
        idempotency_key: Option<String>,
    ) -> Result<Submitted, Error> {
        let key = keyed(idempotency_key, &format!("approve {id}"), &[], || {
            Ok(vec![("approval", as_json(approval)?)])
        })?;
        let (_key, found) = self.hold_key(agency, &key).await?;
        let draft = self.store.draft(agency.as_str(), id).await?;
        if let Some(found) = found {
            // The same request: its warnings are the first answer's.
            let warnings = check_not_empty("files", approval.content.as_deref(), draft.files.len())
                .unwrap_or_default();
            return Ok(Submitted { warnings, ..found });
        }
        if draft.state != DraftState::Draft {
            return Err(Error::store(
                Code::InvalidTransition,
                format!(
                    "draft {id} is {}: only a draft still waiting for a clerk can be approved",
                    draft.state.as_str()
                ),
            ));
        }
        let signer = self.signer(agency)?;
        let sub = approval
            .submission(&draft)
            .map_err(|e| unprefixed(e.into()))?;
        let mut files = Vec::with_capacity(draft.files.len());
        // The names are as the store keeps them: made safe, and no two a receiver would save
        // as one (`take_mail` refuses a draft otherwise), so the clerk never meets a refusal
        // of a name they cannot change.
        for f in &draft.files {
            let file = self.store.draft_file(agency.as_str(), id, f.index).await?;
            files.push(File {
                name: file.name,
                content_type: file.content_type,
                data: file.bytes,
            });
        }
        validate::submission(&sub, &files, &self.config).map_err(unprefixed)?;
        let warnings = check_not_empty("files", sub.content.as_deref(), files.len())?;
        let now = now_ms();
        let vn = edxml::vietnam_time(OffsetDateTime::now_utc());
        let _in_hand = crate::node::memory::InHand::new(files.iter().map(|f| f.data.len()).sum());
        let doc = self
            .compose_unnumbered(agency, &sub, files, vn)
            .map_err(unprefixed)?;
        let submitted = self
            .number_sign_and_store(signer, actor, doc, typed(&sub), key, now, Some(id))
            .await
            .map_err(unprefixed)?;
        Ok(Submitted {
            warnings,
            ..submitted
        })
    }

    /// A clerk of `agency` discards its draft `id` with `reason` (required, kept in the audit
    /// chain): nothing is numbered or signed. Returns the draft as it now is. Another agency's
    /// draft is `NOT_FOUND`; one no longer waiting is `INVALID_TRANSITION`.
    pub async fn discard_draft(
        &self,
        agency: &OrganId,
        id: i64,
        reason: &str,
        actor: &str,
    ) -> Result<DraftItem, Error> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(FormatError::missing("reason").into());
        }
        validate::text("reason", reason, Text::Body, Some(DISCARD_REASON_MAX))?;
        self.store
            .discard_draft(agency.as_str(), id, reason, actor, now_ms())
            .await?;
        self.store.draft(agency.as_str(), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(number: Option<&str>, notation: Option<&str>, summary: &str) -> DraftItem {
        DraftItem {
            id: 7,
            agency: "000.00.05.H21".into(),
            state: DraftState::Draft,
            from: "vanthu@stttt.gialai.gov.vn".into(),
            subject: "Số 12/STTTT-VP: V/v họp giao ban".into(),
            code_number: number.map(str::to_owned),
            code_notation: notation.map(str::to_owned),
            summary: summary.into(),
            body: String::new(),
            files: Vec::new(),
            created_at: 0,
            decided_at: None,
            decided_by: None,
            reason: None,
            message_id: None,
            mail_log_id: 1,
        }
    }

    fn approval(json: &str) -> DraftApproval {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_drafts_number_notation_and_summary_are_defaults_the_clerk_may_change() {
        let d = draft(Some("12"), Some("STTTT-VP"), "V/v họp giao ban");
        let s = approval(r#"{"recipients": ["000.00.00.H41"]}"#)
            .submission(&d)
            .unwrap();
        assert_eq!(
            (s.number, s.notation.as_str(), s.subject.as_str()),
            (Some(12), "STTTT-VP", "V/v họp giao ban")
        );
        let s = approval(
            r#"{"recipients": ["000.00.00.H41"], "number": null, "notation": "STTTT-CĐS",
                "subject": "V/v khác"}"#,
        )
        .submission(&d)
        .unwrap();
        assert_eq!(
            (s.number, s.notation.as_str(), s.subject.as_str()),
            (None, "STTTT-CĐS", "V/v khác")
        );
        let s = approval(r#"{"recipients": ["000.00.00.H41"], "number": 40}"#)
            .submission(&d)
            .unwrap();
        assert_eq!(s.number, Some(40));
        // A số that is not a whole number above 0 is no default: the sequence numbers it.
        for n in ["12a", "0", ""] {
            let s = approval(r#"{"recipients": ["000.00.00.H41"]}"#)
                .submission(&draft(Some(n), Some("X"), "y"))
                .unwrap();
            assert_eq!(s.number, None, "{n:?}");
        }
    }

    #[test]
    fn a_draft_without_notation_or_summary_needs_the_clerks() {
        let a = approval(r#"{"recipients": ["000.00.00.H41"]}"#);
        let e = a.submission(&draft(None, None, "V/v")).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ElementMissing, "notation")
        );
        assert!(e.message_vi().contains("ký hiệu"), "{}", e.message_vi());
        let e = a.submission(&draft(None, Some("X"), "  ")).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (Code::ElementMissing, "subject"));
    }

    #[test]
    fn absent_null_and_a_number_are_three_requests() {
        let fp = |json: &str| as_json(&approval(json)).unwrap();
        let absent = fp(r#"{"recipients": ["000.00.00.H41"]}"#);
        let null = fp(r#"{"recipients": ["000.00.00.H41"], "number": null}"#);
        let given = fp(r#"{"recipients": ["000.00.00.H41"], "number": 3}"#);
        assert!(absent.get("number").is_none(), "{absent}");
        assert_eq!(null["number"], serde_json::Value::Null);
        assert_eq!(given["number"], 3);
    }

    #[test]
    fn submission_errors_name_the_approvals_fields() {
        let e = unprefixed(FormatError::missing("metadata.recipients").into());
        let Error::Format(f) = &e else { panic!("{e}") };
        assert_eq!(f.path, "recipients");
        assert!(
            e.message_vi().contains("“recipients”"),
            "{}",
            e.message_vi()
        );
        let e = unprefixed(Error::store(
            Code::NumberUnconfirmed,
            "metadata.number: 500 is more than 100 above",
        ));
        assert_eq!(e.to_string(), "number: 500 is more than 100 above");
    }
}
