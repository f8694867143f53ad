//! Reading a mail within hard bounds.
//!
//! A mailbox is open to the world, so a mail is hostile until shown otherwise. The bounds of
//! [`MailLimits`] hold *before* memory is spent on it: the size is checked first; then a cheap
//! scan of the header section (each field's length, the section's length) and of the MIME
//! structure (boundaries: depth and part count), which allocates O(depth) at most; only a mail
//! that passes is handed to `mail_parser`. What comes out ([`ParsedMail`]) is cleaned: header
//! text through [`header_text`](super::address::header_text), addresses checked, attachment
//! names through [`crate::edxml::file_name`], the text body capped.

mod dsn;
mod scan;

use mail_parser::{MessageParser, MimeHeaders as _, PartType};

use super::address::{Address, display_name, header_text, text_lines};
use crate::config::MailLimits;
use crate::edxml::file_name::SafeNames;

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
    /// The reason in Vietnamese (with the figures), for [`Refusal::message_vi`].
    vi: String,
}

impl Refusal {
    /// The reason in Vietnamese, for the automatic reply.
    pub fn message_vi(&self) -> String {
        format!("Hệ thống không đọc thư này vì {}.", self.vi)
    }

    fn new(
        code: &'static str,
        message: String,
        vi: String,
        headers: Option<MailHeaders>,
    ) -> Refusal {
        Refusal {
            code,
            message,
            headers: headers.map(Box::new),
            vi,
        }
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
    let size = raw.len() as u64;
    if size > limits.max_bytes {
        return Err(Refusal::new(
            "MAIL_TOO_LARGE",
            format!(
                "{size} bytes, more than the limit of {} bytes",
                limits.max_bytes
            ),
            format!(
                "thư có dung lượng {} byte, vượt quá giới hạn {} byte",
                size, limits.max_bytes
            ),
            top_headers(raw, limits),
        ));
    }
    let shape = scan::scan(raw, limits).map_err(|f| {
        let headers = if f.code == "MAIL_HEADER_TOO_LONG" {
            None
        } else {
            top_headers(raw, limits)
        };
        Refusal::new(f.code, f.message, f.vi, headers)
    })?;
    let malformed = |why: &str| {
        Refusal::new(
            "MAIL_MALFORMED",
            format!("not a mail: {why}"),
            "nội dung không phải là một thư điện tử hợp lệ".to_owned(),
            None,
        )
    };
    let message = MessageParser::new()
        .parse(raw)
        .ok_or_else(|| malformed("no header field"))?;
    if message.parts.is_empty() {
        return Err(malformed("no header field"));
    }
    let headers = headers_of(&message);
    // The parser's own count, against a disagreement with the scan on some malformed mail.
    let (parts, depth) = count(&message, 0, limits.max_depth);
    if parts > limits.max_parts as usize || depth > limits.max_depth as usize {
        let (code, vi) = if depth > limits.max_depth as usize {
            (
                "MAIL_TOO_DEEP",
                format!("thư lồng nhau quá {} cấp (MIME)", limits.max_depth),
            )
        } else {
            (
                "MAIL_TOO_MANY_PARTS",
                format!("thư có hơn {} phần (MIME)", limits.max_parts),
            )
        };
        return Err(Refusal::new(
            code,
            format!(
                "{parts} MIME parts {depth} deep as parsed (the pre-scan counted {} and {})",
                shape.parts, shape.depth
            ),
            vi,
            Some(headers),
        ));
    }
    let report = is_delivery_report(&message);
    let mut names = SafeNames::new();
    let mut attachments = Vec::new();
    for part in message.attachments() {
        if part.is_message() || (report && is_report_part(part)) {
            continue;
        }
        if attachments.len() >= limits.max_attachments as usize {
            return Err(Refusal::new(
                "MAIL_TOO_MANY_ATTACHMENTS",
                format!("more than {} attachments", limits.max_attachments),
                format!("thư có hơn {} tệp đính kèm", limits.max_attachments),
                Some(headers),
            ));
        }
        let name = names.name(part.attachment_name().unwrap_or(""));
        attachments.push(MailAttachment {
            content_type: part_type(part.content_type()),
            name,
            bytes: part.contents().to_vec(),
        });
    }
    let text = message
        .body_text(0)
        .map(|t| {
            // Cut before cleaning, so a huge body costs no more than the kept part.
            let mut end = t.len().min(MAX_TEXT_BYTES * 2);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            let mut s = text_lines(&t[..end], MAX_TEXT_BYTES);
            if s.len() > MAX_TEXT_BYTES {
                let mut cut = MAX_TEXT_BYTES - '…'.len_utf8();
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push('…');
            }
            s
        })
        .unwrap_or_default();
    let dsn = report.then(|| read_dsn(&message));
    Ok(ParsedMail {
        headers,
        text,
        attachments,
        dsn,
        size,
    })
}

/// The top-level headers when the header section is within bounds: what a refusal carries so
/// the caller can still decide whether to answer.
fn top_headers(raw: &[u8], limits: &MailLimits) -> Option<MailHeaders> {
    let (end, _) = scan::header_section(raw, 0, limits).ok()?;
    let m = MessageParser::new().parse_headers(&raw[..end])?;
    (!m.parts.is_empty()).then(|| headers_of(&m))
}

/// The first header field named `name` (case aside), raw (unfolding and decoding left to the
/// caller). The first, not the last: `Return-Path` is prepended by the server that delivered
/// the mail, and a copy further down is the sender's own.
fn raw_header<'a>(m: &'a mail_parser::Message<'_>, name: &str) -> Option<&'a str> {
    let h = m
        .parts
        .first()?
        .headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))?;
    let bytes = m
        .raw_message()
        .get(h.offset_start as usize..h.offset_end as usize)?;
    std::str::from_utf8(bytes).ok()
}

/// A token-like header value (`Auto-Submitted`, `Precedence`): the part before any `;` or
/// comment, one line, lowercase.
fn token(v: &str) -> String {
    let v = v.split([';', '(']).next().unwrap_or("");
    header_text(v, 100).to_ascii_lowercase()
}

/// A message id as kept: no angle brackets, one line, at most [`MAX_MESSAGE_ID_CHARS`].
fn clean_id(v: &str) -> Option<String> {
    let v = header_text(v, MAX_MESSAGE_ID_CHARS + 2);
    let v = v
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let v = header_text(v, MAX_MESSAGE_ID_CHARS);
    (!v.is_empty()).then_some(v)
}

/// The message ids of a header value (`<a@b> <c@d>`), in order.
fn ids(v: &str) -> Vec<String> {
    v.split(|c: char| c == '<' || c == '>' || c.is_whitespace() || c == ',')
        .filter(|s| s.contains('@'))
        .filter_map(clean_id)
        .collect()
}

fn headers_of(m: &mail_parser::Message<'_>) -> MailHeaders {
    let mut h = MailHeaders {
        return_path: raw_header(m, "Return-Path").map(|v| {
            let v = header_text(v, 400);
            let v = v.trim();
            let v = v
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix('>'))
                .unwrap_or(v);
            header_text(v, 300)
        }),
        subject: m
            .subject()
            .map(|s| header_text(s, MAX_SUBJECT_CHARS))
            .unwrap_or_default(),
        message_id: raw_header(m, "Message-ID").and_then(|v| ids(v).into_iter().next()),
        in_reply_to: raw_header(m, "In-Reply-To").and_then(|v| ids(v).into_iter().next()),
        auto_submitted: raw_header(m, "Auto-Submitted").map(token),
        precedence: raw_header(m, "Precedence").map(token),
        list_id: raw_header(m, "List-Id").map(|v| header_text(v, 300)),
        ..MailHeaders::default()
    };
    if let Some(refs) = raw_header(m, "References") {
        let mut all = ids(refs);
        if all.len() > MAX_REFERENCES {
            all.drain(..all.len() - MAX_REFERENCES);
        }
        h.references = all;
    }
    let from = m.from().and_then(|from| {
        from.iter().take(20).find_map(|a| {
            Some((
                a.name.as_deref(),
                Address::parse(a.address.as_deref()?).ok()?,
            ))
        })
    });
    if let Some((name, addr)) = from {
        h.from = Some(addr);
        h.from_name = display_name(name.unwrap_or(""));
    }
    h.reply_to = m.reply_to().and_then(|r| {
        r.iter()
            .take(20)
            .find_map(|a| Address::parse(a.address.as_deref()?).ok())
    });
    h.list_headers = m.parts.first().is_some_and(|p| {
        p.headers.iter().any(|x| {
            x.name()
                .get(..5)
                .is_some_and(|n| n.eq_ignore_ascii_case("list-"))
        })
    });
    h.content_type = m
        .content_type()
        .map(|ct| {
            format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            )
        })
        .map(|t| header_text(&t, 100))
        .unwrap_or_else(|| "text/plain".to_owned());
    h
}

/// Parts and depth as the parser built them (nested messages included), counted no deeper than
/// `max_depth + 1` levels.
fn count(m: &mail_parser::Message<'_>, level: usize, max_depth: u32) -> (usize, usize) {
    fn walk(
        m: &mail_parser::Message<'_>,
        id: usize,
        level: usize,
        cap: usize,
        seen: &mut usize,
    ) -> (usize, usize) {
        let Some(part) = m.parts.get(id) else {
            return (0, level);
        };
        if level > cap {
            return (0, level);
        }
        match &part.body {
            PartType::Multipart(children) => {
                let mut parts = 1;
                let mut depth = level + 1;
                for &c in children {
                    let c = c as usize;
                    if c == id || *seen > 100_000 {
                        continue;
                    }
                    *seen += 1;
                    let (p, d) = walk(m, c, level + 1, cap, seen);
                    parts += p;
                    depth = depth.max(d);
                }
                (parts, depth)
            }
            PartType::Message(nested) => {
                let (p, d) = walk(nested, 0, level + 1, cap, seen);
                (1 + p, d.max(level + 1))
            }
            _ => (1, level),
        }
    }
    let mut seen = 0;
    walk(m, 0, level, max_depth as usize + 1, &mut seen)
}

/// `multipart/report; report-type=delivery-status` (or RFC 6533's global form).
fn is_delivery_report(m: &mail_parser::Message<'_>) -> bool {
    m.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct.attribute("report-type").is_some_and(|t| {
                t.eq_ignore_ascii_case("delivery-status")
                    || t.eq_ignore_ascii_case("global-delivery-status")
            })
    })
}

/// The machine-readable parts of a report (not attachments of the bounce).
fn is_report_part(p: &mail_parser::MessagePart<'_>) -> bool {
    p.content_type().is_some_and(|ct| {
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match ct.ctype().to_ascii_lowercase().as_str() {
            "message" => matches!(
                sub.as_str(),
                "delivery-status"
                    | "global-delivery-status"
                    | "rfc822"
                    | "global"
                    | "global-headers"
            ),
            "text" => sub == "rfc822-headers",
            _ => false,
        }
    })
}

fn part_type(ct: Option<&mail_parser::ContentType<'_>>) -> String {
    let Some(ct) = ct else {
        return "application/octet-stream".to_owned();
    };
    let t = format!(
        "{}/{}",
        ct.ctype().to_ascii_lowercase(),
        ct.subtype().unwrap_or("").to_ascii_lowercase()
    );
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match t.split_once('/') {
        Some((a, b)) if token(a) && token(b) => t,
        _ => "application/octet-stream".to_owned(),
    }
}

/// The report of a `multipart/report`: the status part's fields, and the returned mail's
/// `Message-ID` and `X-Lienthong-Delivery` from its headers or the whole returned mail.
fn read_dsn(m: &mail_parser::Message<'_>) -> Dsn {
    let mut d = Dsn::default();
    for part in m.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ctype = ct.ctype().to_ascii_lowercase();
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status")
                if d.recipients.is_empty() =>
            {
                let bytes = part.contents();
                let bytes = &bytes[..bytes.len().min(1 << 20)];
                let (mta, recipients) = dsn::read_status(&String::from_utf8_lossy(bytes));
                d.reporting_mta = mta;
                d.recipients = recipients;
            }
            ("text", "rfc822-headers") | ("message", "global-headers")
                if d.original_message_id.is_none() =>
            {
                let bytes = part.contents();
                if let Some(h) =
                    MessageParser::new().parse_headers(&bytes[..bytes.len().min(1 << 20)])
                {
                    original(&h, &mut d);
                }
            }
            ("message", "rfc822" | "global") if d.original_message_id.is_none() => {
                if let PartType::Message(nested) = &part.body {
                    original(nested, &mut d);
                }
            }
            _ => {}
        }
    }
    d
}

fn original(h: &mail_parser::Message<'_>, d: &mut Dsn) {
    if h.parts.is_empty() {
        return;
    }
    d.original_message_id = raw_header(h, "Message-ID").and_then(|v| ids(v).into_iter().next());
    d.original_delivery = raw_header(h, "X-Lienthong-Delivery")
        .map(|v| header_text(v, 40))
        .filter(|v| !v.is_empty());
}
