//! The mails the node sends, as RFC 5322 bytes ready for the relay: a document or status
//! package for a mailbox ([`package_mail`]), a notification ([`notice_mail`]) and the automatic
//! reply to a mail that was not taken in ([`quarantine_reply`]).
//!
//! Pure: no I/O, no clock (the caller passes the date), no randomness — the same inputs give
//! the same `Message-ID`, so a delivery retried after a crash is recognisably the same mail.
//! Every header value comes from [`super::address`] (addresses checked, text cleaned) and every
//! file name from [`crate::edxml::file_name`]; the text a clerk or an official reads is
//! Vietnamese, and HTML bodies escape everything they show.

mod document;
mod notice;
mod reply;
mod text;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use time::OffsetDateTime;

use super::address::{Address, Mailbox, header_text};
use crate::config::NotifyEvent;
use crate::edxml::{Package, StatusCode};

/// The code of every [`ComposeError`].
pub const COMPOSE_INVALID: &str = "MAIL_COMPOSE_INVALID";

/// The longest subject written, in characters (what [`super::parse`] keeps of one, too).
pub const MAX_SUBJECT_CHARS: usize = 300;

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
pub fn message_id(
    delivery_id: i64,
    document_id: &str,
    recipient: &Address,
    domain: &str,
) -> String {
    let tag = tag16(&[
        b"delivery",
        delivery_id.to_string().as_bytes(),
        document_id.as_bytes(),
        recipient.key().as_bytes(),
    ]);
    format!("<lt.{delivery_id}.{tag}@{}>", domain.to_ascii_lowercase())
}

/// The DocumentId a package's mail is about — the one its `Message-ID` and
/// `X-Lienthong-Document-Id` are made from: a document's own (as sent, or derived when absent),
/// a status report's document's.
pub fn document_id_of(package: &Package) -> String {
    match package {
        Package::Document(d) => d.header.effective_document_id(),
        Package::Status(s) => s.response_for.effective_document_id(),
    }
}

/// Reads a `Message-ID` made by [`message_id`] with `domain` (angle brackets optional; the
/// domain compared without case): the delivery id and the tag. `None` for anything else.
pub fn parse_message_id(s: &str, domain: &str) -> Option<(i64, String)> {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(s);
    let (left, right) = s.rsplit_once('@')?;
    if !right.eq_ignore_ascii_case(domain) {
        return None;
    }
    let rest = left.strip_prefix("lt.")?;
    let (id, tag) = rest.split_once('.')?;
    // Digits only (no sign, no leading zero but for 0 itself): one spelling per delivery.
    let canonical = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    let id: i64 = id.parse().ok().filter(|_| canonical)?;
    let hex = tag.len() == 16 && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| (id, tag.to_owned()))
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
    let Some((id, tag)) = parse_message_id(s, domain) else {
        return false;
    };
    let expected = message_id(delivery_id, document_id, recipient, domain);
    let ok_tag = parse_message_id(&expected, domain).is_some_and(|(_, t)| {
        aws_lc_rs::constant_time::verify_slices_are_equal(t.as_bytes(), tag.as_bytes()).is_ok()
    });
    id == delivery_id && ok_tag
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
    match m.package {
        Package::Document(d) => document::document_mail(m, d),
        Package::Status(s) => document::status_mail(m, s),
    }
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
    notice::notice_mail(m)
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
    reply::quarantine_reply(m)
}

// ---------------------------------------------------------------------------------------------
// Shared by the three kinds of mail
// ---------------------------------------------------------------------------------------------

/// 16 hex digits of the SHA-256 of `parts`, each prefixed by its length (so no two lists of
/// parts hash alike by moving bytes from one part to the next).
fn tag16(parts: &[&[u8]]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    hex::encode(&ctx.finish().as_ref()[..8])
}

fn invalid(message: impl Into<String>) -> ComposeError {
    ComposeError {
        code: COMPOSE_INVALID,
        message: message.into(),
    }
}

/// The Message-ID domain checked as a host name (it is written into a header).
fn checked_domain(domain: &str) -> Result<String, ComposeError> {
    Address::parse(&format!("x@{domain}"))
        .map(|a| a.domain().to_owned())
        .map_err(|_| {
            invalid(format!(
                "the Message-ID domain {:?} is not a host name",
                header_text(domain, 80)
            ))
        })
}

/// Our mailbox as lettre's (the address was checked by [`Address::parse`], which is stricter
/// than lettre's own check, so this fails only if the two disagree).
fn lettre_mailbox(m: &Mailbox) -> Result<lettre::message::Mailbox, ComposeError> {
    let email = lettre::Address::new(m.address.local_part(), m.address.domain())
        .map_err(|e| invalid(format!("address {}: {e}", m.address)))?;
    let name = super::address::display_name(&m.name);
    Ok(lettre::message::Mailbox::new(
        (!name.is_empty()).then_some(name),
        email,
    ))
}

/// A header of our own: a fixed name and a value that [`HeaderValue::new`] encodes (RFC 2047
/// when it is not ASCII) and folds. Values are cleaned by [`header_text`] before they get here.
macro_rules! our_header {
    ($(#[$m:meta])* $name:ident, $wire:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        struct $name(String);

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($wire)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

our_header!(
    /// RFC 3834: `auto-generated` (documents, notices) or `auto-replied` (replies).
    AutoSubmitted,
    "Auto-Submitted"
);
our_header!(
    /// Microsoft's equivalent of `Auto-Submitted`, so Exchange and Outlook send no
    /// out-of-office answers to the node.
    AutoResponseSuppress,
    "X-Auto-Response-Suppress"
);
our_header!(
    /// The DocumentId the mail is about.
    DocumentIdHeader,
    "X-Lienthong-Document-Id"
);
our_header!(
    /// The outbox delivery that sent the mail.
    DeliveryHeader,
    "X-Lienthong-Delivery"
);
our_header!(
    /// The kind of mail (`document`, `status`, `notice`, `reply`), for filters.
    KindHeader,
    "X-Lienthong-Kind"
);

/// The headers every mail of the node carries, and the ones particular to it.
struct Envelope<'a> {
    from: &'a Mailbox,
    to: &'a [&'a Mailbox],
    subject: &'a str,
    message_id: &'a str,
    date: OffsetDateTime,
    auto_submitted: &'static str,
    kind: &'static str,
    document_id: Option<&'a str>,
    delivery_id: Option<i64>,
    in_reply_to: Option<&'a str>,
    references: Option<&'a str>,
}

/// The message builder with the headers of `e`.
fn builder(e: &Envelope<'_>) -> Result<lettre::message::MessageBuilder, ComposeError> {
    let mut b = lettre::Message::builder()
        .from(lettre_mailbox(e.from)?)
        .subject(e.subject.to_owned())
        .message_id(Some(e.message_id.to_owned()))
        .date(std::time::SystemTime::from(e.date))
        .header(AutoSubmitted(e.auto_submitted.to_owned()))
        .header(AutoResponseSuppress("All".to_owned()))
        .header(KindHeader(e.kind.to_owned()));
    if e.to.is_empty() {
        return Err(invalid("a mail without a recipient"));
    }
    for to in e.to {
        b = b.to(lettre_mailbox(to)?);
    }
    if let Some(id) = e.document_id {
        b = b.header(DocumentIdHeader(header_text(id, 300)));
    }
    if let Some(d) = e.delivery_id {
        b = b.header(DeliveryHeader(d.to_string()));
    }
    if let Some(r) = e.in_reply_to {
        b = b.in_reply_to(r.to_owned());
    }
    if let Some(r) = e.references {
        b = b.references(r.to_owned());
    }
    Ok(b)
}

/// A MIME boundary that depends only on the message (no randomness: the same inputs give the
/// same bytes) and cannot occur in what it separates: `=_` appears neither in base64 nor in
/// quoted-printable, and the 7-bit text parts are our own.
fn boundary(message_id: &str, n: u8) -> String {
    format!("=_lt{}{n}", tag16(&[b"boundary", message_id.as_bytes()]))
}

/// `alternative` of the plain and HTML bodies.
fn alternative(message_id: &str, plain: String, html: String) -> lettre::message::MultiPart {
    use lettre::message::{MultiPart, SinglePart};
    MultiPart::alternative()
        .boundary(boundary(message_id, 1))
        .singlepart(SinglePart::plain(plain))
        .singlepart(SinglePart::html(html))
}

/// An attachment in base64 (so its bytes come out exactly as they went in, whatever they
/// look like), named by `name` (already safe; lettre writes it as RFC 2231).
fn attachment(
    name: &str,
    content_type: &str,
    data: Vec<u8>,
) -> Result<lettre::message::SinglePart, ComposeError> {
    use lettre::message::header::{ContentTransferEncoding, ContentType};
    use lettre::message::{Attachment, Body};
    // The name also as `Content-Type: …; name=` (RFC 2047 words when not ASCII): what mail
    // clients that predate RFC 2231 read.
    let ct = ContentType::parse(&format!("{content_type}; name=\"{}\"", legacy_name(name)))
        .or_else(|_| ContentType::parse("application/octet-stream"))
        .map_err(|e| invalid(format!("content type: {e}")))?;
    let body = Body::new_with_encoding(data, ContentTransferEncoding::Base64)
        .map_err(|_| invalid(format!("attachment {name:?} cannot be encoded in base64")))?;
    Ok(Attachment::new(name.to_owned()).body(body, ct))
}

/// `name` for the `name=` parameter: as it is when it is printable ASCII without quotes or
/// backslashes, else RFC 2047 base64 words of at most 75 characters, split at character
/// boundaries and separated by a space.
fn legacy_name(name: &str) -> String {
    use base64::Engine as _;
    let plain = name
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if plain {
        return name.to_owned();
    }
    // "=?utf-8?b?" + "?=" is 12 characters; 60 base64 characters carry 45 bytes.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?utf-8?b?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The content type written for a file: its label when it is a plain `type/subtype` of token
/// characters, else the type its name suggests, else `application/octet-stream`.
fn safe_content_type(label: &str, name: &str) -> String {
    let label = label
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match label.split_once('/') {
        Some((t, st)) if token(t) && token(st) && t != "multipart" && t != "message" => label,
        _ => crate::edxml::attachment::type_of_name(name)
            .unwrap_or("application/octet-stream")
            .to_owned(),
    }
}

/// The mail's bytes.
fn finish(
    b: lettre::message::MessageBuilder,
    body: lettre::message::MultiPart,
    message_id: String,
    subject: String,
) -> Result<Composed, ComposeError> {
    let msg = b
        .multipart(body)
        .map_err(|e| invalid(format!("the message could not be built: {e}")))?;
    Ok(Composed {
        bytes: msg.formatted(),
        message_id,
        subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edxml::samples;
    use time::macros::datetime;

    pub(crate) fn node() -> Mailbox {
        Mailbox::new(
            "Hệ thống liên thông văn bản",
            Address::parse("lienthong@gialai.gov.vn").unwrap(),
        )
    }

    pub(crate) fn commune() -> Mailbox {
        Mailbox::new(
            "UBND xã Ia Kha",
            Address::parse("xa-iakha@gialai.gov.vn").unwrap(),
        )
    }

    #[test]
    fn smoke() {
        let pkg = Package::Document(samples::new_document());
        let c = package_mail(&PackageMail {
            from: &node(),
            to: &commune(),
            delivery_id: 42,
            message_id_domain: "gialai.gov.vn",
            package: &pkg,
            signed: b"<edXMLEnvelope/>",
            signer: Some("CN=Sở TT&TT Gia Lai"),
            date: datetime!(2024-03-15 09:30:00 +07:00),
        })
        .unwrap();
        println!("{}", String::from_utf8_lossy(&c.bytes));
    }
}
