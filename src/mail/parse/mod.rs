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
    let field_name =
        |n: &str| !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if message
        .parts
        .first()
        .is_none_or(|p| !p.headers.iter().any(|h| field_name(h.name())))
    {
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

/// The returned mail's ids, from its parsed headers (a nested message's offsets are not those
/// of its own bytes, so no raw reading here).
fn original(h: &mail_parser::Message<'_>, d: &mut Dsn) {
    if h.parts.is_empty() {
        return;
    }
    d.original_message_id = h.message_id().and_then(clean_id);
    d.original_delivery = h
        .header("X-Lienthong-Delivery")
        .and_then(|v| v.as_text())
        .map(|v| header_text(v, 40))
        .filter(|v| !v.is_empty());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn limits() -> MailLimits {
        MailLimits::default()
    }

    /// A Postfix 3.7 bounce (bounce(8), `multipart/report`) of the mail with `message_id`, with
    /// the returned mail as `text/rfc822-headers` (`headers_only`) or whole (`message/rfc822`).
    pub(crate) fn postfix_bounce(message_id: &str, action: &str, headers_only: bool) -> Vec<u8> {
        let returned = format!(
            "Return-Path: <lienthong@gialai.gov.vn>\n\
Received: from [127.0.0.1] by mail.test (Postfix) with ESMTPSA id 4F2C1A0\n\
\tfor <xa-iakha@gialai.gov.vn>; Mon,  7 Dec 2026 11:06:29 +0000 (UTC)\n\
From: =?utf-8?b?SOG7hyB0aOG7kW5n?= <lienthong@gialai.gov.vn>\n\
To: xa-iakha@gialai.gov.vn\n\
Subject: =?utf-8?b?W1bEg24gYuG6o24gxJFp4buHbiB04butXQ==?=\n\
Message-ID: {message_id}\n\
Auto-Submitted: auto-generated\n\
X-Lienthong-Delivery: 42\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n"
        );
        let (ct, part) = if headers_only {
            ("text/rfc822-headers", returned)
        } else {
            (
                "message/rfc822",
                format!("{returned}\nbody of the returned mail\n"),
            )
        };
        format!(
            "Return-Path: <>\n\
Delivered-To: lienthong@gialai.gov.vn\n\
Received: by mail.test (Postfix) id 5A1B2C3; Mon,  7 Dec 2026 11:06:30 +0000 (UTC)\n\
Date: Mon,  7 Dec 2026 11:06:30 +0000 (UTC)\n\
From: MAILER-DAEMON@mail.test (Mail Delivery System)\n\
Subject: Undelivered Mail Returned to Sender\n\
To: lienthong@gialai.gov.vn\n\
Auto-Submitted: auto-replied\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status;\n\
\tboundary=\"4F2C1A0.1733569590/mail.test\"\n\
Content-Transfer-Encoding: 8bit\n\
Message-Id: <20261207110630.5A1B2C3@mail.test>\n\
\n\
This is a MIME-encapsulated message.\n\
\n\
--4F2C1A0.1733569590/mail.test\n\
Content-Description: Notification\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
This is the mail system at host mail.test.\n\
\n\
I'm sorry to have to inform you that your message could not\n\
be delivered to one or more recipients. It's attached below.\n\
\n\
<xa-iakha@gialai.gov.vn>: host 127.0.0.1[127.0.0.1] said: 550 5.1.1\n\
\x20   <xa-iakha@gialai.gov.vn> User doesn't exist: xa-iakha@gialai.gov.vn (in reply\n\
\x20   to RCPT TO command)\n\
\n\
--4F2C1A0.1733569590/mail.test\n\
Content-Description: Delivery report\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mail.test\n\
X-Postfix-Queue-ID: 4F2C1A0\n\
X-Postfix-Sender: rfc822; lienthong@gialai.gov.vn\n\
Arrival-Date: Mon,  7 Dec 2026 11:06:29 +0000 (UTC)\n\
\n\
Final-Recipient: rfc822; xa-iakha@gialai.gov.vn\n\
Original-Recipient: rfc822;xa-iakha@gialai.gov.vn\n\
Action: {action}\n\
Status: 5.1.1\n\
Remote-MTA: dns; 127.0.0.1\n\
Diagnostic-Code: smtp; 550 5.1.1 <xa-iakha@gialai.gov.vn> User doesn't exist:\n\
\x20   xa-iakha@gialai.gov.vn\n\
\n\
--4F2C1A0.1733569590/mail.test\n\
Content-Description: Undelivered Message{}\n\
Content-Type: {ct}\n\
Content-Transfer-Encoding: 8bit\n\
\n\
{part}\n\
--4F2C1A0.1733569590/mail.test--\n",
            if headers_only { " Headers" } else { "" }
        )
        .replace('\n', "\r\n")
        .into_bytes()
    }

    /// A plain mail from `from` with `subject` and the given attachments (name, type, bytes).
    pub(crate) fn mail_with(
        extra_headers: &str,
        from: &str,
        subject: &str,
        files: &[(&str, &str, &[u8])],
    ) -> Vec<u8> {
        use base64::Engine as _;
        let mut m = format!(
            "Return-Path: <{from}>\r\n{extra_headers}From: {from}\r\nTo: lienthong@gialai.gov.vn\r\n\
Subject: {subject}\r\nMessage-ID: <m1@example.vn>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Kính gửi văn thư,\r\nxin gửi văn bản.\r\n"
        )
        .into_bytes();
        for (name, ct, bytes) in files {
            m.extend_from_slice(
                format!(
                    "--b1\r\nContent-Type: {ct}\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                )
                .as_bytes(),
            );
        }
        m.extend_from_slice(b"--b1--\r\n");
        m
    }

    #[test]
    fn headers_are_read_and_cleaned() {
        let raw = "Return-Path: <Ai.Do@Example.VN>\r\n\
Received: from x by y\r\n\
Return-Path: <forged@evil.vn>\r\n\
From: =?utf-8?q?V=C4=83n_th=C6=B0?= <VanThu@Example.VN>\r\n\
Reply-To: not an address, <reply@example.vn>\r\n\
Subject: =?utf-8?b?Q8O0bmcgdsSDbg==?= =?utf-8?q?_s=E1=BB=91_12?=\r\n\
\x20\u{202E}folded\r\n\
Message-ID: <abc@example.vn>\r\n\
In-Reply-To: <lt.42.0123456789abcdef@gialai.gov.vn>\r\n\
References: <r1@x> <r2@x>\r\n\
\x20<r3@x>\r\n\
Auto-Submitted: Auto-Replied; (vacation)\r\n\
Precedence: BULK\r\n\
List-Unsubscribe: <mailto:u@x>\r\n\
\r\n\
Xin chào\r\n";
        let m = parse(raw.as_bytes(), &limits()).unwrap();
        let h = &m.headers;
        assert_eq!(h.return_path.as_deref(), Some("Ai.Do@Example.VN"));
        assert_eq!(
            h.from.as_ref().map(Address::as_str),
            Some("VanThu@example.vn")
        );
        assert_eq!(h.from_name, "Văn thư");
        assert_eq!(
            h.reply_to.as_ref().map(Address::as_str),
            Some("reply@example.vn")
        );
        assert_eq!(h.subject, "Công văn số 12 folded");
        assert_eq!(h.message_id.as_deref(), Some("abc@example.vn"));
        assert_eq!(
            h.in_reply_to.as_deref(),
            Some("lt.42.0123456789abcdef@gialai.gov.vn")
        );
        assert_eq!(h.references, ["r1@x", "r2@x", "r3@x"]);
        assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(h.precedence.as_deref(), Some("bulk"));
        assert!(h.list_headers);
        assert_eq!(h.list_id, None);
        assert_eq!(h.content_type, "text/plain");
        assert_eq!(m.text, "Xin chào");
        assert_eq!(m.size, raw.len() as u64);
        assert!(m.dsn.is_none());
        // The null path of a bounce, and no Return-Path at all.
        let m = parse(b"Return-Path: <>\r\nFrom: a@b.vn\r\n\r\nx", &limits()).unwrap();
        assert_eq!(m.headers.return_path.as_deref(), Some(""));
        let m = parse(b"From: a@b.vn\r\n\r\nx", &limits()).unwrap();
        assert_eq!(m.headers.return_path, None);
    }

    #[test]
    fn subjects_and_ids_are_bounded() {
        let long = "Trích yếu ".repeat(100);
        let refs: String = (0..100).map(|i| format!(" <r{i}@x.vn>")).collect();
        let raw = format!(
            "From: a@b.vn\r\nSubject: {long}\r\nMessage-ID: <{}@x>\r\nReferences:{refs}\r\n\r\nx",
            "i".repeat(1000)
        );
        let m = parse(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(m.headers.subject.chars().count(), MAX_SUBJECT_CHARS);
        assert!(m.headers.message_id.as_ref().unwrap().chars().count() <= MAX_MESSAGE_ID_CHARS);
        assert_eq!(m.headers.references.len(), MAX_REFERENCES);
        assert_eq!(
            m.headers.references.last().map(String::as_str),
            Some("r99@x.vn")
        );
    }

    #[test]
    fn the_text_body_is_capped() {
        let body = "Nội dung dài. ".repeat(20_000);
        let raw = format!("From: a@b.vn\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");
        let m = parse(raw.as_bytes(), &limits()).unwrap();
        assert!(m.text.len() <= MAX_TEXT_BYTES, "{}", m.text.len());
        assert!(m.text.len() > MAX_TEXT_BYTES - 100);
        assert!(m.text.ends_with('…'));
    }

    #[test]
    fn attachments_are_named_safely() {
        let raw = mail_with(
            "",
            "a@b.vn",
            "x",
            &[
                ("../../etc/passwd", "text/plain", b"root:x"),
                ("báo cáo\u{202E}fdp.exe", "application/pdf", b"%PDF-1.4"),
                ("báo cáo\u{202E}fdp.exe", "application/pdf", b"%PDF-1.5"),
                ("CON.pdf", "application/pdf\r\nX: y", b"%PDF"),
            ],
        );
        let m = parse(&raw, &limits()).unwrap();
        let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["passwd", "báo cáofdp.exe", "báo cáofdp (2).exe", "_CON.pdf"]
        );
        assert_eq!(m.attachments[1].content_type, "application/pdf");
        assert_eq!(m.attachments[1].bytes, b"%PDF-1.4");
        assert_eq!(m.text, "Kính gửi văn thư,\nxin gửi văn bản.");
    }

    #[test]
    fn oversize_mail_is_refused_unread_but_answerable() {
        let mut raw = b"Return-Path: <a@b.vn>\r\nFrom: a@b.vn\r\nSubject: big\r\n\r\n".to_vec();
        raw.resize(1000, b'x');
        let small = MailLimits {
            max_bytes: 999,
            ..limits()
        };
        let e = parse(&raw, &small).unwrap_err();
        assert_eq!(e.code, "MAIL_TOO_LARGE");
        assert!(e.message.contains("1000 bytes"), "{}", e.message);
        assert!(
            e.message_vi().contains("vượt quá giới hạn 999 byte"),
            "{}",
            e.message_vi()
        );
        let h = e.headers.expect("headers of a large mail");
        assert_eq!(h.subject, "big");
        assert_eq!(h.return_path.as_deref(), Some("a@b.vn"));
        assert!(
            parse(
                &raw,
                &MailLimits {
                    max_bytes: 1000,
                    ..limits()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn hostile_structures_are_refused_with_their_code() {
        let mut many =
            b"From: a@b.vn\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
                .to_vec();
        for _ in 0..10_000 {
            many.extend_from_slice(b"--X\r\n\r\nx\r\n");
        }
        let e = parse(&many, &limits()).unwrap_err();
        assert_eq!(e.code, "MAIL_TOO_MANY_PARTS");
        assert_eq!(
            e.headers.as_ref().map(|h| h.subject.as_str()),
            Some("parts")
        );

        let mut deep = b"From: a@b.vn\r\n".to_vec();
        for i in 0..60 {
            deep.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n")
                    .as_bytes(),
            );
        }
        assert_eq!(parse(&deep, &limits()).unwrap_err().code, "MAIL_TOO_DEEP");

        let files: Vec<(String, Vec<u8>)> = (0..21)
            .map(|i| (format!("f{i}.pdf"), vec![b'%'; 10]))
            .collect();
        let files: Vec<(&str, &str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), "application/pdf", b.as_slice()))
            .collect();
        let e = parse(&mail_with("", "a@b.vn", "x", &files), &limits()).unwrap_err();
        assert_eq!(e.code, "MAIL_TOO_MANY_ATTACHMENTS");
        assert!(parse(&mail_with("", "a@b.vn", "x", &files[..20]), &limits()).is_ok());

        let mut long = b"From: a@b.vn\r\nSubject: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1 << 20));
        long.extend_from_slice(b"\r\n\r\nx");
        let e = parse(&long, &limits()).unwrap_err();
        assert_eq!(e.code, "MAIL_HEADER_TOO_LONG");
        assert!(e.headers.is_none());

        for junk in [&b""[..], b"\r\n\r\n", b"\x00\x01\x02 not a mail"] {
            assert_eq!(
                parse(junk, &limits()).unwrap_err().code,
                "MAIL_MALFORMED",
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_postfix_bounce_is_a_report() {
        for headers_only in [true, false] {
            let raw = postfix_bounce(
                "<lt.42.0123456789abcdef@gialai.gov.vn>",
                "failed",
                headers_only,
            );
            let m = parse(&raw, &limits()).unwrap();
            assert_eq!(m.headers.return_path.as_deref(), Some(""));
            assert_eq!(m.headers.content_type, "multipart/report");
            assert!(m.attachments.is_empty(), "{:?}", m.attachments);
            let d = m.dsn.expect("a DSN");
            assert_eq!(d.reporting_mta.as_deref(), Some("mail.test"));
            assert_eq!(
                d.original_message_id.as_deref(),
                Some("lt.42.0123456789abcdef@gialai.gov.vn")
            );
            assert_eq!(d.original_delivery.as_deref(), Some("42"));
            assert!(d.failed());
            assert_eq!(d.recipients[0].status, "5.1.1");
            assert!(m.text.contains("could not\nbe delivered"), "{}", m.text);
        }
        let raw = postfix_bounce("<x@y>", "delayed", true);
        assert!(!parse(&raw, &limits()).unwrap().dsn.unwrap().failed());
    }
}

#[cfg(test)]
mod mutations {
    use super::tests::{mail_with, postfix_bounce};
    use super::*;

    /// Mails damaged at random (a fixed seed, so every run sees the same ones): the parser
    /// never panics, and what it accepts is within the limits — counted again on the parser's
    /// own result, and the parser's count never exceeds the pre-scan's.
    #[test]
    fn damaged_mails_never_escape_the_bounds() {
        let limits = MailLimits {
            max_parts: 12,
            max_depth: 3,
            max_attachments: 4,
            ..MailLimits::default()
        };
        let seeds = [
            postfix_bounce("<lt.1.0123456789abcdef@x.vn>", "failed", false),
            postfix_bounce("<lt.1.0123456789abcdef@x.vn>", "failed", true),
            mail_with(
                "",
                "a@b.vn",
                "x",
                &[
                    ("a.pdf", "application/pdf", b"%PDF"),
                    ("b.edxml", "text/xml", b"<a/>"),
                ],
            ),
        ];
        let pieces: [&[u8]; 8] = [
            b"--",
            b"\r\n",
            b"\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=\"4F2C1A0.1733569590/mail.test\"\r\n",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"--b1\r\n",
            b"--4F2C1A0.1733569590/mail.test\r\n",
            b" ",
        ];
        let mut rng = fastrand::Rng::with_seed(16);
        let mut disagreements = 0;
        let mut accepted = 0;
        for round in 0..3000 {
            let mut m = seeds[round % seeds.len()].clone();
            for _ in 0..rng.usize(1..6) {
                let at = rng.usize(..=m.len());
                match rng.u8(..4) {
                    0 => m.truncate(at),
                    1 => {
                        let p = pieces[rng.usize(..pieces.len())];
                        m.splice(at..at, p.iter().copied());
                    }
                    2 if at < m.len() => m[at] = rng.u8(..),
                    _ => {
                        let end = (at + rng.usize(..40)).min(m.len());
                        m.drain(at..end);
                    }
                }
            }
            let Ok(p) = parse(&m, &limits) else { continue };
            accepted += 1;
            assert!(p.attachments.len() <= limits.max_attachments as usize);
            let msg = MessageParser::new().parse(&m).unwrap();
            let (parts, depth) = count(&msg, 0, limits.max_depth);
            let shape = scan::scan(&m, &limits).unwrap();
            assert!(parts <= limits.max_parts as usize && depth <= limits.max_depth as usize);
            if parts > shape.parts as usize || depth > shape.depth as usize {
                disagreements += 1;
            }
        }
        assert_eq!(
            disagreements, 0,
            "the parser counted more than the pre-scan"
        );
        eprintln!("{accepted} of 3000 damaged mails read");
        assert!(
            accepted > 1000,
            "too few damaged mails were read to mean anything"
        );
    }
}
