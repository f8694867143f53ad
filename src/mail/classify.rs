//! What a mail is, and whether it may be answered.
//!
//! [`classify`] decides, from a mail already read within bounds, which of four things it is: a
//! signed package (to be verified and ingested exactly like one from a peer — nothing here is
//! trusted), a bounce naming one of our mails, a draft from an agency's registered mailbox, or
//! something to quarantine. [`auto_reply_to`] applies RFC 3834: no automatic answer to anything
//! automatic, so two systems can never start a reply loop. Pure: no I/O.

use std::collections::BTreeMap;

use super::address::Address;
use super::parse::{MailHeaders, ParsedMail};

/// What the classification needs to know of the node.
#[derive(Debug, Clone)]
pub struct Context {
    /// The address the node sends as and reads.
    pub our_address: Address,
    /// The domain of the node's `Message-ID`s.
    pub message_id_domain: String,
    /// Registered official mailboxes of local agencies: address → agency code.
    pub mailboxes: BTreeMap<Address, String>,
}

/// A file of a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftFile {
    /// Sanitised (`edxml::file_name`).
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What a mail is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// It carries one edXML package (exactly one `.edxml` attachment, or one XML attachment
    /// whose root element is `edXMLEnvelope`): verify and ingest it as from a peer.
    Package { bytes: Vec<u8>, name: String },
    /// A delivery-status notification naming a `Message-ID` of ours: the delivery failed.
    Bounce {
        delivery_id: i64,
        /// Without brackets.
        message_id: String,
        /// From the report's Status and Diagnostic-Code, e.g. `5.1.1 (550 5.1.1 … unknown user)`.
        reason: String,
    },
    /// From a local agency's registered mailbox with document files: a draft for its clerk.
    Draft {
        /// The agency code.
        agency: String,
        /// Prefilled from the subject (`Số 12/UBND-VP: V/v …`, `12/UBND-VP - …`).
        code_number: Option<String>,
        code_notation: Option<String>,
        /// Trích yếu: the rest of the subject.
        summary: String,
        /// The text body (at most 64 KiB).
        body: String,
        files: Vec<DraftFile>,
    },
    /// Not taken in.
    Quarantine {
        /// `MAIL_NOT_UNDERSTOOD`, `MAIL_SEVERAL_PACKAGES`, `MAIL_NO_FILES`, `MAIL_BOUNCE_UNKNOWN`,
        /// `MAIL_FROM_SELF`.
        code: &'static str,
        /// For operators.
        reason_en: String,
        /// For the automatic reply.
        reason_vi: String,
    },
}

/// What `mail` is, for the node described by `cx`.
pub fn classify(mail: &ParsedMail, cx: &Context) -> Class {
    let _ = (mail, cx);
    todo!()
}

/// Where an automatic reply to a mail with these headers may go (RFC 3834), or `None`: not to
/// auto-submitted mail (any `Auto-Submitted` but `no`), `Precedence: bulk/junk/list`, mailing
/// lists (`List-Id`, `List-*`), a missing or null `Return-Path`, mailer-daemon, postmaster or
/// no-reply-like senders, our own address, and bounces (`multipart/report`). The reply goes to
/// the `Return-Path` (the envelope sender), which must be a valid address.
pub fn auto_reply_to(headers: &MailHeaders, our_address: &Address) -> Option<Address> {
    let _ = (headers, our_address);
    todo!()
}
