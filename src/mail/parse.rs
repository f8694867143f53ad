//! Reading a mail within hard bounds.
//!
//! A mailbox is open to the world, so a mail is hostile until shown otherwise. The bounds of
//! [`MailLimits`] hold *before* memory is spent on it: the size is checked first; then a cheap
//! scan of the header section (each field's length, the section's length) and of the MIME
//! structure (boundaries: depth and part count), which allocates O(depth) at most; only a mail
//! that passes is handed to `mail_parser`. What comes out ([`ParsedMail`]) is cleaned: header
//! text through [`header_text`](super::address::header_text), addresses checked, attachment
//! names through [`crate::edxml::file_name`], the text body capped.

use super::address::Address;
use crate::config::MailLimits;

/// The longest subject kept, in characters.
pub const MAX_SUBJECT_CHARS: usize = 300;

/// The longest `Message-ID` (and each reference) kept, in characters.
pub const MAX_MESSAGE_ID_CHARS: usize = 300;

/// The text body kept, in bytes (cut at a character boundary).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// References kept from `References:` (the last ones: the nearest ancestors).
pub const MAX_REFERENCES: usize = 20;

/// Recipients kept from a delivery-status notification.
pub const MAX_DSN_RECIPIENTS: usize = 100;

/// Why a mail was not read. `code` is one of `MAIL_TOO_LARGE`, `MAIL_TOO_DEEP`,
/// `MAIL_TOO_MANY_PARTS`, `MAIL_TOO_MANY_ATTACHMENTS`, `MAIL_HEADER_TOO_LONG`, `MAIL_MALFORMED`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    /// What was wrong, in English, with the figure and the limit.
    pub message: String,
    /// The mail's headers, when its header section was within bounds and could be read: enough
    /// to decide whether (and whom) to answer ([`super::classify::auto_reply_to`]).
    pub headers: Option<Box<MailHeaders>>,
}

impl Refusal {
    /// The reason in Vietnamese, for the automatic reply.
    pub fn message_vi(&self) -> String {
        todo!()
    }
}

/// The header fields the bridge uses, decoded and cleaned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailHeaders {
    /// `Return-Path:` as the delivering server wrote it: `None` when absent, `Some("")` for the
    /// null path `<>` (a bounce), else the address as written (cleaned, maybe not valid).
    pub return_path: Option<String>,
    /// The first `From:` address that is a valid [`Address`].
    pub from: Option<Address>,
    /// `From:`'s display name (cleaned), empty when none.
    pub from_name: String,
    /// The first `Reply-To:` address that is valid.
    pub reply_to: Option<Address>,
    /// Decoded (RFC 2047), cleaned, at most [`MAX_SUBJECT_CHARS`] characters; empty when none.
    pub subject: String,
    /// Without angle brackets, cleaned, at most [`MAX_MESSAGE_ID_CHARS`].
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    /// At most [`MAX_REFERENCES`], without angle brackets.
    pub references: Vec<String>,
    /// `Auto-Submitted:` value in lowercase (`no`, `auto-generated`, `auto-replied`, …).
    pub auto_submitted: Option<String>,
    /// `Precedence:` in lowercase (`bulk`, `junk`, `list`, …).
    pub precedence: Option<String>,
    /// `List-Id:` (cleaned).
    pub list_id: Option<String>,
    /// Any `List-*` header (`List-Unsubscribe`, `List-Post`, …) present.
    pub list_headers: bool,
    /// The top-level `Content-Type` (type/subtype in lowercase, no parameters).
    pub content_type: String,
}

/// A mail, read within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    pub headers: MailHeaders,
    /// The first `text/plain` body (or the text of the first `text/html` one), at most
    /// [`MAX_TEXT_BYTES`].
    pub text: String,
    /// The attachments, in order (a DSN's own parts aside).
    pub attachments: Vec<MailAttachment>,
    /// For a `multipart/report; report-type=delivery-status`: the report.
    pub dsn: Option<Dsn>,
    /// The mail's size in bytes.
    pub size: u64,
}

/// A file attached to a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    /// Through [`crate::edxml::file_name::safe_file_name`] (unique within the mail); never empty.
    pub name: String,
    /// As labelled, type/subtype in lowercase, no parameters (`application/octet-stream` when
    /// none or unreadable).
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A delivery-status notification (RFC 3464).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `Reporting-MTA` (cleaned).
    pub reporting_mta: Option<String>,
    /// Per recipient, in order, at most [`MAX_DSN_RECIPIENTS`].
    pub recipients: Vec<DsnRecipient>,
    /// The returned mail's `Message-ID` (without brackets), from its `text/rfc822-headers` or
    /// `message/rfc822` part.
    pub original_message_id: Option<String>,
    /// The returned mail's `X-Lienthong-Delivery` header.
    pub original_delivery: Option<String>,
}

/// One recipient of a DSN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient`, the address part (`rfc822;` dropped), cleaned.
    pub final_recipient: String,
    /// `Action` in lowercase: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub action: String,
    /// `Status`, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code`, the text after the type (`smtp;`), cleaned, at most 500 characters.
    pub diagnostic: Option<String>,
}

impl Dsn {
    /// Whether the report says some recipient was not reached for good (`Action: failed`).
    pub fn failed(&self) -> bool {
        self.recipients.iter().any(|r| r.action == "failed")
    }
}

/// Reads `raw` within `limits` (see the module documentation for the order of the checks).
pub fn parse(raw: &[u8], limits: &MailLimits) -> Result<ParsedMail, Refusal> {
    let _ = (raw, limits);
    todo!()
}
