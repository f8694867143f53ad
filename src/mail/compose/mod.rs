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
    use crate::config::MailLimits;
    use crate::edxml::{Priority, samples};
    use crate::mail::parse::{ParsedMail, parse};
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

    const DATE: OffsetDateTime = datetime!(2024-03-15 09:30:00 +07:00);

    fn document_mail_of(pkg: &Package, to: &Mailbox) -> Composed {
        package_mail(&PackageMail {
            from: &node(),
            to,
            delivery_id: 42,
            message_id_domain: "gialai.gov.vn",
            package: pkg,
            signed:
                b"<?xml version=\"1.0\"?>\n<edXMLEnvelope>\r\n  s\xC3\xA1ch\n</edXMLEnvelope>\n",
            signer: Some("CN=Sở Thông tin và Truyền thông tỉnh Gia Lai"),
            date: DATE,
        })
        .unwrap()
    }

    fn read(c: &Composed) -> ParsedMail {
        parse(&c.bytes, &MailLimits::default()).unwrap()
    }

    /// Every line ends in CRLF, is at most 998 bytes and 7-bit: the mail travels through any
    /// relay unchanged.
    fn assert_wire_clean(bytes: &[u8]) {
        assert!(bytes.is_ascii(), "8-bit bytes in the mail");
        for line in bytes.split(|&b| b == b'\n') {
            assert!(line.len() <= 999, "a line of {} bytes", line.len());
            assert!(
                !line[..line.len().saturating_sub(1)].contains(&b'\r'),
                "a bare CR"
            );
        }
        assert!(
            !bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "a bare LF"
        );
    }

    /// The header section of `bytes` (before the first empty line), unfolded.
    fn header_lines(bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut out: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.push_str(line);
                }
            } else {
                out.push(line.to_owned());
            }
        }
        out
    }

    #[test]
    fn message_ids_are_stable_and_checked() {
        let to = commune().address;
        let id = message_id(
            42,
            "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
            &to,
            "GiaLai.gov.vn",
        );
        assert_eq!(
            id,
            message_id(
                42,
                "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
                &to,
                "gialai.gov.vn"
            )
        );
        assert!(
            id.starts_with("<lt.42.") && id.ends_with("@gialai.gov.vn>"),
            "{id}"
        );
        let (d, tag) = parse_message_id(&id, "gialai.gov.vn").unwrap();
        assert_eq!((d, tag.len()), (42, 16));
        assert_eq!(
            parse_message_id(id.trim_matches(['<', '>']), "GIALAI.GOV.VN").map(|x| x.0),
            Some(42)
        );
        assert!(is_message_id_of(
            &id,
            42,
            "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
            &to,
            "gialai.gov.vn"
        ));
        // Another delivery, document or recipient is another id; a forged tag is refused.
        let other = Address::parse("xa-iapuch@gialai.gov.vn").unwrap();
        assert_ne!(
            id,
            message_id(
                43,
                "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
                &to,
                "gialai.gov.vn"
            )
        );
        assert_ne!(
            id,
            message_id(
                42,
                "000.00.05.H21,2024/03/15,124/STTTT-CĐS",
                &to,
                "gialai.gov.vn"
            )
        );
        assert_ne!(
            id,
            message_id(
                42,
                "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
                &other,
                "gialai.gov.vn"
            )
        );
        assert!(!is_message_id_of(&id, 42, "x", &to, "gialai.gov.vn"));
        assert!(!is_message_id_of(
            &id,
            42,
            "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
            &other,
            "gialai.gov.vn"
        ));
        let forged = format!("<lt.42.{}@gialai.gov.vn>", "0".repeat(16));
        assert!(parse_message_id(&forged, "gialai.gov.vn").is_some());
        assert!(!is_message_id_of(
            &forged,
            42,
            "000.00.05.H21,2024/03/15,123/STTTT-CĐS",
            &to,
            "gialai.gov.vn"
        ));
        for bad in [
            "<lt.42.0123456789abcdef@other.vn>",
            "<lt.-1.0123456789abcdef@gialai.gov.vn>",
            "<lt.042.0123456789abcdef@gialai.gov.vn>",
            "<lt.+4.0123456789abcdef@gialai.gov.vn>",
            "<lt.4.0123456789ABCDEF@gialai.gov.vn>",
            "<lt.4.0123456789abcde@gialai.gov.vn>",
            "<lt.4.0123456789abcdef0@gialai.gov.vn>",
            "<lt.99999999999999999999.0123456789abcdef@gialai.gov.vn>",
            "<lt.n.0123456789abcdef@gialai.gov.vn>",
            "<xx.4.0123456789abcdef@gialai.gov.vn>",
            "",
        ] {
            assert_eq!(parse_message_id(bad, "gialai.gov.vn"), None, "{bad}");
        }
    }

    #[test]
    fn a_document_mail_reads_back_as_it_was_written() {
        let doc = samples::new_document();
        let pkg = Package::Document(doc.clone());
        let c = document_mail_of(&pkg, &commune());
        assert_wire_clean(&c.bytes);
        assert_eq!(
            c.subject,
            "[KHẨN] [Văn bản điện tử] 123/STTTT-CĐS — V/v phối hợp kết nối, liên thông văn bản \
             điện tử giữa hai tỉnh"
        );
        let m = read(&c);
        assert_eq!(m.headers.subject, c.subject);
        assert_eq!(
            m.headers.message_id.as_deref(),
            Some(c.message_id.trim_matches(['<', '>']))
        );
        assert_eq!(m.headers.auto_submitted.as_deref(), Some("auto-generated"));
        assert_eq!(m.headers.from.as_ref(), Some(&node().address));
        assert_eq!(m.headers.from_name, "Hệ thống liên thông văn bản");
        // The files, then the package, byte for byte and under their names.
        let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "123-STTTT-CĐS.signed.pdf",
                "Phụ lục I.pdf",
                "000.00.05.H21_2024-03-15_123-STTTT-CDS.edxml"
            ]
        );
        assert_eq!(m.attachments[0].bytes, doc.attachments[0].data);
        assert_eq!(m.attachments[1].bytes, doc.attachments[1].data);
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert_eq!(m.attachments[2].content_type, "application/xml");
        assert_eq!(
            m.attachments[2].bytes,
            b"<?xml version=\"1.0\"?>\n<edXMLEnvelope>\r\n  s\xC3\xA1ch\n</edXMLEnvelope>\n"
        );
        // The plain text says what a clerk needs.
        for needle in [
            "Kính gửi: UBND xã Ia Kha",
            "Sở Thông tin và Truyền thông tỉnh Gia Lai (000.00.05.H21)",
            "123/STTTT-CĐS",
            "Gia Lai, ngày 15/03/2024",
            "KT. GIÁM ĐỐC, Phó Giám đốc Nguyễn Văn An",
            "CN=Sở Thông tin và Truyền thông tỉnh Gia Lai",
            "Độ khẩn:",
            "Khẩn",
            "Hạn xử lý:",
            "29/03/2024",
            "lienthong verify",
        ] {
            assert!(
                m.text.contains(needle),
                "{needle:?} missing from\n{}",
                m.text
            );
        }
        // Our headers, as a receiver's parser reads them.
        let raw = mail_parser::MessageParser::new().parse(&c.bytes).unwrap();
        let header = |n: &str| {
            raw.header_as(n, mail_parser::HeaderForm::Text)
                .first()
                .and_then(|v| v.as_text().map(str::to_owned))
        };
        assert_eq!(
            header("X-Lienthong-Document-Id").as_deref(),
            Some(samples::new_document_id().as_str())
        );
        assert_eq!(header("X-Lienthong-Delivery").as_deref(), Some("42"));
        assert_eq!(header("Auto-Submitted").as_deref(), Some("auto-generated"));
        assert!(raw.date().is_some());
        let html = raw.body_html(0).unwrap();
        assert!(
            html.contains("<td style=\"padding: 2px 0\">123/STTTT-CĐS</td>"),
            "{html}"
        );
    }

    #[test]
    fn the_same_delivery_is_the_same_mail() {
        let pkg = Package::Document(samples::new_document());
        let a = document_mail_of(&pkg, &commune());
        let b = document_mail_of(&pkg, &commune());
        assert_eq!(a, b);
        let other = Mailbox::new("", Address::parse("xa-iapuch@gialai.gov.vn").unwrap());
        assert_ne!(a.message_id, document_mail_of(&pkg, &other).message_id);
    }

    #[test]
    fn urgency_and_kind_lead_the_subject() {
        let mut doc = samples::new_document();
        for (p, prefix) in [
            (Priority::Normal, "[Văn bản điện tử] 123"),
            (Priority::Urgent, "[KHẨN] [Văn bản điện tử] 123"),
            (Priority::VeryUrgent, "[THƯỢNG KHẨN] [Văn bản điện tử] 123"),
            (Priority::Flash, "[HỎA TỐC] [Văn bản điện tử] 123"),
            (Priority::FlashScheduled, "[HỎA TỐC] [Văn bản điện tử] 123"),
        ] {
            doc.header.other_info.as_mut().unwrap().priority = p;
            let c = document_mail_of(&Package::Document(doc.clone()), &commune());
            assert!(c.subject.starts_with(prefix), "{p:?}: {}", c.subject);
            assert_eq!(read(&c).headers.subject, c.subject);
        }
        doc.header.other_info = None;
        let c = document_mail_of(&Package::Document(doc), &commune());
        assert!(
            c.subject
                .starts_with("[Văn bản điện tử] 123/STTTT-CĐS — V/v"),
            "{}",
            c.subject
        );
        let c = document_mail_of(&Package::Document(samples::revocation()), &commune());
        assert!(
            c.subject
                .contains("[Văn bản điện tử] [THU HỒI] 123/STTTT-CĐS"),
            "{}",
            c.subject
        );
        assert!(read(&c).text.contains("Thu hồi văn bản đã gửi"));
    }

    #[test]
    fn what_a_package_says_cannot_reach_a_header_or_the_html() {
        let mut doc = samples::new_document();
        doc.header.subject =
            "V/v <script>alert(1)</script>\r\nBcc: victim@evil.vn\r\n\r\nbody".into();
        doc.header.code.notation = "UBND\r\nX-Injected: 1".into();
        doc.attachments[0].name = "a\r\nContent-Type: text/html\r\n\r\n<b>.pdf".into();
        doc.attachments[1].name = "../../etc/cron.d/x\u{202E}fdp.exe".into();
        doc.attachments[1].content_type = "text/html\r\nX-Evil: 1".into();
        let to = Mailbox::new(
            "Xã\r\nBcc: victim@evil.vn",
            Address::parse("xa-iakha@gialai.gov.vn").unwrap(),
        );
        let c = document_mail_of(&Package::Document(doc.clone()), &to);
        assert_wire_clean(&c.bytes);
        for line in header_lines(&c.bytes) {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            assert!(
                !["bcc", "x-injected", "x-evil"].contains(&name.as_str()),
                "injected header {line:?}"
            );
        }
        let text = String::from_utf8_lossy(&c.bytes);
        assert!(!text.contains("\r\nX-Evil"), "injected part header");
        assert!(!text.contains("\r\nContent-Type: text/html\r\n\r\n<b>"));
        let m = read(&c);
        assert_eq!(
            m.headers.subject,
            "[KHẨN] [Văn bản điện tử] 123/UBND X-Injected: 1 — V/v <script>alert(1)</script> \
             Bcc: victim@evil.vn body"
        );
        assert_eq!(m.attachments.len(), 3);
        // The last path component, as every name is read: `text/html` ends a path.
        assert_eq!(m.attachments[0].name, "html_b_.pdf");
        assert_eq!(m.attachments[1].name, "xfdp.exe");
        assert_eq!(m.attachments[1].content_type, "application/octet-stream");
        assert_eq!(m.attachments[0].bytes, doc.attachments[0].data);
        let raw = mail_parser::MessageParser::new().parse(&c.bytes).unwrap();
        let html = raw.body_html(0).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(
            m.headers.from.as_ref().map(Address::as_str),
            Some("lienthong@gialai.gov.vn")
        );
    }

    #[test]
    fn a_status_mail_names_the_status() {
        let st = samples::status(crate::edxml::StatusCode::Registered);
        let c = package_mail(&PackageMail {
            from: &node(),
            to: &commune(),
            delivery_id: 7,
            message_id_domain: "gialai.gov.vn",
            package: &Package::Status(st.clone()),
            signed: b"<edXMLEnvelope/>",
            signer: None,
            date: DATE,
        })
        .unwrap();
        assert_wire_clean(&c.bytes);
        assert!(
            c.subject
                .starts_with("[Trạng thái văn bản] 03 Đã tiếp nhận, vào sổ — 123/STTTT-CĐS — "),
            "{}",
            c.subject
        );
        let m = read(&c);
        assert_eq!(m.headers.subject, c.subject);
        assert_eq!(m.attachments.len(), 1);
        assert!(
            m.attachments[0].name.starts_with("trang-thai-03_"),
            "{}",
            m.attachments[0].name
        );
        assert!(m.attachments[0].name.ends_with(".edxml"));
        assert_eq!(m.attachments[0].bytes, b"<edXMLEnvelope/>");
        assert!(m.text.contains("03 — Đã tiếp nhận, vào sổ"), "{}", m.text);
        assert!(is_message_id_of(
            &c.message_id,
            7,
            &st.response_for.effective_document_id(),
            &commune().address,
            "gialai.gov.vn"
        ));
        assert_eq!(
            document_id_of(&Package::Status(st.clone())),
            st.response_for.effective_document_id()
        );
    }

    #[test]
    fn a_bad_message_id_domain_is_refused() {
        let pkg = Package::Document(samples::new_document());
        let e = package_mail(&PackageMail {
            from: &node(),
            to: &commune(),
            delivery_id: 1,
            message_id_domain: "gialai.gov.vn>\r\nBcc: x@y",
            package: &pkg,
            signed: b"",
            signer: None,
            date: DATE,
        })
        .unwrap_err();
        assert_eq!(e.code, COMPOSE_INVALID);
    }

    fn notice(n: Notice<'_>, link_base: Option<&str>, link_path: Option<&str>) -> Composed {
        let to = [
            Address::parse("vanthu@gialai.gov.vn").unwrap(),
            Address::parse("lanhdao@gialai.gov.vn").unwrap(),
        ];
        notice_mail(&NoticeMail {
            from: &node(),
            to: &to,
            agency: "Sở Thông tin và Truyền thông",
            notice: n,
            event_key: "message:17",
            link_base,
            link_path,
            message_id_domain: "gialai.gov.vn",
            date: DATE,
        })
        .unwrap()
    }

    const DOC: NoticeDocument<'static> = NoticeDocument {
        code: "446/UBND-KGVX",
        subject: "V/v sử dụng hệ thống thư điện tử công vụ",
        counterpart: "Ủy ban nhân dân tỉnh Gia Lai",
    };

    #[test]
    fn notices_say_what_happened_in_vietnamese() {
        let cases = [
            (
                Notice::Arrival { document: DOC },
                "[Thông báo] Văn bản đến: 446/UBND-KGVX — V/v sử dụng hệ thống thư điện tử công vụ",
                "Cơ quan gửi",
            ),
            (
                Notice::Failed {
                    document: DOC,
                    reason: "550 5.1.1 mailbox unavailable",
                },
                "[Thông báo] Gửi văn bản không thành công: 446/UBND-KGVX — V/v",
                "550 5.1.1 mailbox unavailable",
            ),
            (
                Notice::Status {
                    document: DOC,
                    code: crate::edxml::StatusCode::Finished,
                    description: "",
                },
                "[Thông báo] Trạng thái 06 (Đã xử lý xong): 446/UBND-KGVX",
                "06 — Đã xử lý xong",
            ),
            (
                Notice::CertExpiry {
                    certificate: "CN=Sở TT&TT Gia Lai, serial 0A1B",
                    not_after: datetime!(2024-04-14 16:59:59 UTC),
                },
                "[Thông báo] Chứng thư số ký văn bản của Sở Thông tin và Truyền thông sắp hết hạn (14/04/2024)",
                "còn 30 ngày",
            ),
        ];
        for (n, subject, body) in cases {
            let event = n.event();
            let c = notice(
                n,
                Some("https://vanban.gialai.gov.vn/"),
                Some("/messages/17"),
            );
            assert_wire_clean(&c.bytes);
            assert!(c.subject.starts_with(subject), "{event:?}: {}", c.subject);
            let m = read(&c);
            assert_eq!(m.headers.subject, c.subject);
            assert!(m.text.contains(body), "{event:?}: {}", m.text);
            assert!(
                m.text
                    .contains("Xem chi tiết: https://vanban.gialai.gov.vn/messages/17"),
                "{}",
                m.text
            );
            assert_eq!(m.headers.auto_submitted.as_deref(), Some("auto-generated"));
            assert!(c.message_id.starts_with("<lt.n."));
            assert!(parse_message_id(&c.message_id, "gialai.gov.vn").is_none());
            let raw = mail_parser::MessageParser::new().parse(&c.bytes).unwrap();
            assert_eq!(raw.to().map(|t| t.iter().count()), Some(2));
        }
    }

    #[test]
    fn notice_links_are_plain_urls_or_nothing() {
        let n = || Notice::Arrival { document: DOC };
        for (base, path) in [
            (None, Some("messages/17")),
            (Some("https://x.vn"), None),
            (Some("javascript:alert(1)//"), Some("x")),
            (Some("https://x.vn"), Some("m/1\" onmouseover=\"x")),
            (Some("https://x.vn"), Some("m/1 <b>")),
        ] {
            let c = notice(n(), base, path);
            assert!(!read(&c).text.contains("Xem chi tiết"), "{base:?} {path:?}");
        }
        // One event is one mail, whatever the order of the addresses; another event another.
        let reversed = [
            Address::parse("LanhDao@gialai.gov.vn").unwrap(),
            Address::parse("vanthu@gialai.gov.vn").unwrap(),
        ];
        let again = |key: &str| {
            notice_mail(&NoticeMail {
                from: &node(),
                to: &reversed,
                agency: "Sở Thông tin và Truyền thông",
                notice: n(),
                event_key: key,
                link_base: None,
                link_path: None,
                message_id_domain: "gialai.gov.vn",
                date: DATE,
            })
            .unwrap()
            .message_id
        };
        assert_eq!(notice(n(), None, None).message_id, again("message:17"));
        assert_ne!(notice(n(), None, None).message_id, again("message:18"));
    }

    #[test]
    fn the_quarantine_reply_is_threaded_and_automatic() {
        let to = Address::parse("ai.do@example.vn").unwrap();
        let refs = vec!["a@x.vn".to_owned(), "b@x.vn\r\nBcc: y@z".to_owned()];
        let c = quarantine_reply(&ReplyMail {
            from: &node(),
            to: &to,
            original_subject: "Gửi công văn\r\nBcc: victim@x.vn",
            original_message_id: Some("orig-1@example.vn"),
            original_references: &refs,
            code: "MAIL_NOT_UNDERSTOOD",
            reason_vi: "các tệp đính kèm không có gói tin văn bản điện tử (.edxml)",
            message_id_domain: "gialai.gov.vn",
            date: DATE,
        })
        .unwrap();
        assert_wire_clean(&c.bytes);
        assert_eq!(c.subject, "Re: Gửi công văn Bcc: victim@x.vn");
        let lines = header_lines(&c.bytes);
        assert!(
            lines.contains(&"Auto-Submitted: auto-replied".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"In-Reply-To: <orig-1@example.vn>".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"References: <a@x.vn> <orig-1@example.vn>".to_owned()),
            "{lines:?}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc"))
        );
        let m = read(&c);
        assert_eq!(m.headers.in_reply_to.as_deref(), Some("orig-1@example.vn"));
        assert_eq!(m.headers.auto_submitted.as_deref(), Some("auto-replied"));
        for needle in [
            "Kính gửi: ai.do@example.vn",
            "không tiếp nhận được thư này",
            "gói tin .edxml có chữ ký số",
            "hộp thư công vụ",
            "MAIL_NOT_UNDERSTOOD",
        ] {
            assert!(
                m.text.contains(needle),
                "{needle:?} missing from\n{}",
                m.text
            );
        }
        // Without a subject or an id: the fixed subject, no threading headers.
        let c = quarantine_reply(&ReplyMail {
            from: &node(),
            to: &to,
            original_subject: "",
            original_message_id: Some("not an id"),
            original_references: &[],
            code: "MAIL_TOO_LARGE",
            reason_vi: "thư quá lớn",
            message_id_domain: "gialai.gov.vn",
            date: DATE,
        })
        .unwrap();
        assert_eq!(
            c.subject,
            "Thư không được tiếp nhận vào hệ thống liên thông văn bản"
        );
        let lines = header_lines(&c.bytes);
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("In-Reply-To") || l.starts_with("References"))
        );
        assert!(read(&c).text.contains("dung lượng nhỏ hơn"));
    }
}
