//! The mails the node sends, as RFC 5322 bytes ready for the relay: a document or status
//! package for a mailbox ([`package_mail`]), a notification ([`notice_mail`]) and the automatic
//! reply to a mail that was not taken in ([`quarantine_reply`]).
//!
//! Pure: no I/O, no clock (the caller passes the date), no randomness — the same inputs give
//! the same `Message-ID`, so a delivery retried after a crash is recognisably the same mail.
//! Every header value comes from [`super::address`] (addresses checked, text cleaned) and every
//! file name from [`crate::edxml::file_name`]; the text a clerk or an official reads is
//! Vietnamese, and HTML bodies escape everything they show.

use time::OffsetDateTime;

use super::address::{Address, Mailbox};
use crate::config::NotifyEvent;
use crate::edxml::{Package, StatusCode};

/// A composed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The whole message (headers and body), CRLF line ends, 7-bit clean.
    pub bytes: Vec<u8>,
    /// `Message-ID` with its angle brackets, e.g. `<lt.42.0f3a…@gialai.gov.vn>`.
    pub message_id: String,
    /// The subject as shown to the reader (before RFC 2047 encoding).
    pub subject: String,
}

/// Why a mail could not be composed (`MAIL_COMPOSE_INVALID`: an input that cannot be put in a
/// mail, e.g. a Message-ID domain that is not a host name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ComposeError {
    pub code: &'static str,
    pub message: String,
}

/// The `Message-ID` of delivery `delivery_id` of the document `document_id` to `recipient`:
/// `<lt.{delivery_id}.{tag}@{domain}>` where `tag` is 16 hex digits of the SHA-256 of the three
/// inputs. No randomness, so every retry of the delivery sends the same id (the receiver can
/// drop the duplicate), and a bounce that names it can be tied to its delivery; the tag keeps a
/// forged bounce from naming an arbitrary delivery by its number.
pub fn message_id(delivery_id: i64, document_id: &str, recipient: &Address, domain: &str) -> String {
    let _ = (delivery_id, document_id, recipient, domain);
    todo!()
}

/// Reads a `Message-ID` made by [`message_id`] with `domain` (angle brackets optional; the
/// domain compared without case): the delivery id and the tag. `None` for anything else.
pub fn parse_message_id(s: &str, domain: &str) -> Option<(i64, String)> {
    let _ = (s, domain);
    todo!()
}

/// Whether `s` is exactly the `Message-ID` of (`delivery_id`, `document_id`, `recipient`): what
/// a bounce must name before it may fail that delivery.
pub fn is_message_id_of(
    s: &str,
    delivery_id: i64,
    document_id: &str,
    recipient: &Address,
    domain: &str,
) -> bool {
    let _ = (s, delivery_id, document_id, recipient, domain);
    todo!()
}

/// A package for a mailbox: a document (with its files and the signed `.edxml`) or a status
/// report (with its `.edxml`).
#[derive(Debug, Clone, Copy)]
pub struct PackageMail<'a> {
    /// `From:` (the node's address and name).
    pub from: &'a Mailbox,
    /// `To:` (the mail-only agency's mailbox, with its name when known).
    pub to: &'a Mailbox,
    /// The outbox's delivery: the `Message-ID` and `X-Lienthong-Delivery`.
    pub delivery_id: i64,
    /// The domain of the `Message-ID`.
    pub message_id_domain: &'a str,
    /// The package as read from `signed` (its files decoded).
    pub package: &'a Package,
    /// The signed package, attached byte for byte.
    pub signed: &'a [u8],
    /// Who signed it digitally (the certificate's subject, as the caller describes it), shown
    /// in the body; `None` when not known.
    pub signer: Option<&'a str>,
    /// `Date:`.
    pub date: OffsetDateTime,
}

/// The mail carrying `m.package`. A document: subject `[Văn bản điện tử] <số/ký hiệu> —
/// <trích yếu>` (prefixed `[KHẨN]`, `[THƯỢNG KHẨN]` or `[HỎA TỐC]` by its priority), plain text
/// and HTML bodies, the files decoded and the signed package as `<name>.edxml`. A status: the
/// code's Vietnamese name in the subject and body, and the `.edxml`.
pub fn package_mail(m: &PackageMail<'_>) -> Result<Composed, ComposeError> {
    let _ = m;
    todo!()
}

/// The document a notification is about, as the agency's notification addresses see it.
#[derive(Debug, Clone, Copy)]
pub struct NoticeDocument<'a> {
    /// "số/ký hiệu", e.g. `446/UBND-KGVX`.
    pub code: &'a str,
    /// Trích yếu.
    pub subject: &'a str,
    /// The other agency (sender of an arrival, recipient of a failed delivery, reporter of a
    /// status), by name or code.
    pub counterpart: &'a str,
}

/// What a notification says.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// A document arrived for the agency.
    Arrival { document: NoticeDocument<'a> },
    /// A delivery the agency sent failed; `reason` as the outbox recorded it.
    Failed {
        document: NoticeDocument<'a>,
        reason: &'a str,
    },
    /// A status arrived about a document the agency sent.
    Status {
        document: NoticeDocument<'a>,
        code: StatusCode,
        description: &'a str,
    },
    /// The agency's signing certificate expires soon.
    CertExpiry {
        /// The certificate, as `node::expiry` describes it (subject, serial).
        certificate: &'a str,
        not_after: OffsetDateTime,
    },
}

impl Notice<'_> {
    /// The configuration's event this notice belongs to.
    pub fn event(&self) -> NotifyEvent {
        match self {
            Notice::Arrival { .. } => NotifyEvent::Arrival,
            Notice::Failed { .. } => NotifyEvent::Failed,
            Notice::Status { .. } => NotifyEvent::Status,
            Notice::CertExpiry { .. } => NotifyEvent::CertExpiry,
        }
    }
}

/// A notification to an agency's notification addresses.
#[derive(Debug, Clone, Copy)]
pub struct NoticeMail<'a> {
    pub from: &'a Mailbox,
    /// At least one.
    pub to: &'a [Address],
    /// The agency told (its name, or code), for the greeting.
    pub agency: &'a str,
    pub notice: Notice<'a>,
    /// What makes this notice one event (e.g. `message:17`, `delivery:42`, `cert:<serial>`):
    /// the `Message-ID` is derived from it, so a notice sent again is the same mail.
    pub event_key: &'a str,
    /// `[mail] link_base`, and the path below it of what happened (e.g. `messages/17`); the
    /// link is left out when either is missing or the result is not an http(s) URL.
    pub link_base: Option<&'a str>,
    pub link_path: Option<&'a str>,
    pub message_id_domain: &'a str,
    pub date: OffsetDateTime,
}

/// A short Vietnamese notification mail (`Auto-Submitted: auto-generated`).
pub fn notice_mail(m: &NoticeMail<'_>) -> Result<Composed, ComposeError> {
    let _ = m;
    todo!()
}

/// The automatic reply to a mail that was quarantined.
#[derive(Debug, Clone, Copy)]
pub struct ReplyMail<'a> {
    pub from: &'a Mailbox,
    /// From [`super::classify::auto_reply_to`]: never an address that must not be answered.
    pub to: &'a Address,
    /// The original's subject (already cleaned by the parser; cleaned again here).
    pub original_subject: &'a str,
    /// The original's `Message-ID` (without brackets), for `In-Reply-To`/`References`.
    pub original_message_id: Option<&'a str>,
    /// The original's `References` (without brackets), kept in the reply's.
    pub original_references: &'a [String],
    /// The quarantine code (`MAIL_NOT_UNDERSTOOD`, `MAIL_TOO_LARGE`, …): chooses the advice.
    pub code: &'a str,
    /// Why, in Vietnamese (from the classification or the parser's refusal).
    pub reason_vi: &'a str,
    pub message_id_domain: &'a str,
    pub date: OffsetDateTime,
}

/// The Vietnamese reply saying why a mail was not taken in and what to do instead
/// (`Auto-Submitted: auto-replied`, RFC 3834). It never quotes the original's body.
pub fn quarantine_reply(m: &ReplyMail<'_>) -> Result<Composed, ComposeError> {
    let _ = m;
    todo!()
}
