//! What a mail is, and whether it may be answered.
//!
//! [`classify`] decides, from a mail already read within bounds, which of four things it is: a
//! signed package (to be verified and ingested exactly like one from a peer — nothing here is
//! trusted), a bounce naming one of our mails, a draft from an agency's registered mailbox, or
//! something to quarantine. [`auto_reply_to`] applies RFC 3834: no automatic answer to anything
//! automatic, so two systems can never start a reply loop. Pure: no I/O.

use std::collections::BTreeMap;

use super::address::{Address, header_text};
use super::compose::parse_message_id;
use super::parse::{MailAttachment, MailHeaders, ParsedMail};

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
    let h = &mail.headers;
    if let Some(dsn) = &mail.dsn {
        return bounce(mail, dsn, cx);
    }
    let from_us = h.from.as_ref().is_some_and(|f| *f == cx.our_address);
    let packages: Vec<&MailAttachment> =
        mail.attachments.iter().filter(|a| is_package(a)).collect();
    match packages.as_slice() {
        [one] => {
            return Class::Package {
                bytes: one.bytes.clone(),
                name: one.name.clone(),
            };
        }
        [_, _, ..] => {
            return quarantine(
                "MAIL_SEVERAL_PACKAGES",
                format!(
                    "{} edXML packages in one mail (one is taken per mail)",
                    packages.len()
                ),
                format!(
                    "thư kèm {} gói tin .edxml, trong khi mỗi thư chỉ được kèm một gói tin",
                    packages.len()
                ),
            );
        }
        [] => {}
    }
    if from_us {
        return quarantine(
            "MAIL_FROM_SELF",
            "a mail from the node's own address without a package (a loop or a forgery)".into(),
            "thư mang địa chỉ gửi của chính hệ thống nhưng không kèm gói tin".into(),
        );
    }
    if let Some(agency) = h.from.as_ref().and_then(|f| cx.mailboxes.get(f)) {
        let files: Vec<DraftFile> = mail
            .attachments
            .iter()
            .filter(|a| is_document_file(a))
            .map(|a| DraftFile {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                bytes: a.bytes.clone(),
            })
            .collect();
        if files.is_empty() {
            return quarantine(
                "MAIL_NO_FILES",
                format!(
                    "from the registered mailbox of {agency} but without a PDF, DOCX, DOC or ODT file"
                ),
                "thư gửi từ hộp thư công vụ đã đăng ký nhưng không kèm tệp văn bản (PDF, DOCX, DOC hoặc ODT)"
                    .into(),
            );
        }
        let fields = draft_fields(&h.subject);
        return Class::Draft {
            agency: agency.clone(),
            code_number: fields.number,
            code_notation: fields.notation,
            summary: fields.summary,
            body: mail.text.clone(),
            files,
        };
    }
    let (en, vi) = if mail.attachments.is_empty() {
        (
            "no attachment: neither an edXML package nor a draft from a registered mailbox",
            "thư không kèm gói tin văn bản điện tử (.edxml) và không được gửi từ hộp thư công vụ đã đăng ký",
        )
    } else {
        (
            "no edXML package among the attachments, and not from a registered mailbox",
            "các tệp đính kèm không có gói tin văn bản điện tử (.edxml) có chữ ký số, và thư              không được gửi từ hộp thư công vụ đã đăng ký",
        )
    };
    quarantine("MAIL_NOT_UNDERSTOOD", en.into(), vi.into())
}

fn quarantine(code: &'static str, reason_en: String, reason_vi: String) -> Class {
    Class::Quarantine {
        code,
        reason_en,
        reason_vi,
    }
}

/// A report: a bounce of one of our mails when it says a recipient failed and names a
/// `Message-ID` of ours (in the returned headers, or — when the reporting server returned
/// none — in the report's own `In-Reply-To`/`References`).
fn bounce(mail: &ParsedMail, dsn: &super::parse::Dsn, cx: &Context) -> Class {
    let h = &mail.headers;
    let candidates = dsn
        .original_message_id
        .iter()
        .chain(h.in_reply_to.iter())
        .chain(h.references.iter().rev());
    let ours = candidates
        .filter_map(|id| parse_message_id(id, &cx.message_id_domain).map(|(d, _)| (d, id)))
        .next();
    let Some((delivery_id, message_id)) = ours else {
        return quarantine(
            "MAIL_BOUNCE_UNKNOWN",
            "a delivery report that names no mail of this node".into(),
            "báo cáo gửi thư không liên quan đến thư nào của hệ thống".into(),
        );
    };
    let failed: Vec<&super::parse::DsnRecipient> = dsn
        .recipients
        .iter()
        .filter(|r| r.action == "failed")
        .collect();
    if failed.is_empty() {
        return quarantine(
            "MAIL_DSN_NOT_FAILED",
            format!(
                "a delivery report on delivery {delivery_id} that reports no failure ({})",
                dsn.recipients
                    .iter()
                    .map(|r| r.action.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "báo cáo gửi thư không báo lỗi (thư có thể đang chờ gửi lại)".into(),
        );
    }
    let reason = failed
        .iter()
        .take(5)
        .map(|r| {
            let mut s = format!("{}: {}", r.final_recipient, r.status);
            if let Some(d) = &r.diagnostic {
                s.push_str(&format!(" ({d})"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ");
    Class::Bounce {
        delivery_id,
        message_id: message_id.clone(),
        reason: header_text(&reason, 1000),
    }
}

/// An edXML package: named `.edxml`, or an XML file (by type or name) whose root element is
/// `edXMLEnvelope`.
fn is_package(a: &MailAttachment) -> bool {
    let ext = crate::edxml::attachment::extension(&a.name);
    if ext.as_deref() == Some("edxml") {
        return true;
    }
    let xml = ext.as_deref() == Some("xml")
        || matches!(a.content_type.as_str(), "application/xml" | "text/xml")
        || a.content_type.ends_with("+xml");
    xml && root_is_envelope(&a.bytes)
}

/// Whether the document element is `edXMLEnvelope` (any prefix), looking at the first 64 KiB
/// only: a BOM, the declaration, comments, processing instructions and white space are
/// skipped; a DOCTYPE is not (the package reader refuses it anyway).
pub(crate) fn root_is_envelope(bytes: &[u8]) -> bool {
    let mut b = &bytes[..bytes.len().min(64 * 1024)];
    b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    loop {
        let start = b
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(b.len());
        b = &b[start..];
        if let Some(rest) = b.strip_prefix(b"<?") {
            let Some(end) = memchr::memmem::find(rest, b"?>") else {
                return false;
            };
            b = &rest[end + 2..];
        } else if let Some(rest) = b.strip_prefix(b"<!--") {
            let Some(end) = memchr::memmem::find(rest, b"-->") else {
                return false;
            };
            b = &rest[end + 3..];
        } else if let Some(rest) = b.strip_prefix(b"<") {
            let name_end = rest
                .iter()
                .position(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
                .unwrap_or(rest.len());
            let name = &rest[..name_end];
            let local = name.rsplit(|c| *c == b':').next().unwrap_or(name);
            return local == b"edXMLEnvelope";
        } else {
            return false;
        }
    }
}

/// A document a clerk can send: PDF, DOCX, DOC or ODT, by extension or by type.
fn is_document_file(a: &MailAttachment) -> bool {
    const TYPES: [&str; 4] = [
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.oasis.opendocument.text",
    ];
    let ext = crate::edxml::attachment::extension(&a.name);
    matches!(ext.as_deref(), Some("pdf" | "docx" | "doc" | "odt"))
        || (ext.is_none() && TYPES.contains(&a.content_type.as_str()))
}

/// What a draft's subject says.
#[derive(Debug, Default, PartialEq, Eq)]
struct DraftFields {
    number: Option<String>,
    notation: Option<String>,
    summary: String,
}

/// Reads `Số 12/UBND-VP: V/v …`, `12/UBND-VP - …`, `V/v …` (after any `Fwd:`/`Re:`/`TL:`/`Fw:`
/// prefixes): number and notation when the subject starts with them, the rest as trích yếu.
fn draft_fields(subject: &str) -> DraftFields {
    let mut s = subject.trim();
    // Compared on the subject's own bytes (lowercased prefix by prefix), so cutting the
    // prefix off never lands inside a character.
    const REPLY_PREFIXES: [&str; 7] = [
        "fwd:",
        "fw:",
        "re:",
        "tl:",
        "tr:",
        "chuyển tiếp:",
        "trả lời:",
    ];
    while let Some(p) = REPLY_PREFIXES.into_iter().find(|p| {
        s.get(..p.len())
            .is_some_and(|head| head.to_lowercase() == *p)
    }) {
        s = s[p.len()..].trim_start();
    }
    let whole = DraftFields {
        number: None,
        notation: None,
        summary: header_text(s, 500),
    };
    // `Số` (any case) and an optional `:` before the number.
    let mut rest = s;
    for p in ["Số", "số", "SỐ", "So", "so", "SO"] {
        if let Some(r) = rest.strip_prefix(p) {
            let r2 = r.trim_start().trim_start_matches(':').trim_start();
            if r2.starts_with(|c: char| c.is_ascii_digit()) {
                rest = r2;
            }
            break;
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 7 {
        return whole;
    }
    let number = &rest[..digits];
    let Some(after) = rest[digits..].trim_start().strip_prefix('/') else {
        return whole;
    };
    let after = after.trim_start();
    let notation_len = after
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '-' | '.' | '/' | '&' | '_')))
        .map_or(after.len(), |(i, _)| i);
    let notation = after[..notation_len].trim_end_matches(['.', '-', '/']);
    if notation.is_empty()
        || notation.chars().count() > 60
        || !notation.chars().any(char::is_alphabetic)
    {
        return whole;
    }
    let summary = after[notation.len()..]
        .trim_start()
        .trim_start_matches([':', '-', '–', '—', ',', ';'])
        .trim();
    DraftFields {
        number: Some(number.to_owned()),
        notation: Some(header_text(notation, 60)),
        summary: header_text(summary, 500),
    }
}

/// Where an automatic reply to a mail with these headers may go (RFC 3834), or `None`: not to
/// auto-submitted mail (any `Auto-Submitted` but `no`), `Precedence: bulk/junk/list`, mailing
/// lists (`List-Id`, `List-*`), a missing or null `Return-Path`, mailer-daemon, postmaster or
/// no-reply-like senders, our own address, and bounces (`multipart/report`). The reply goes to
/// the `Return-Path` (the envelope sender), which must be a valid address.
pub fn auto_reply_to(headers: &MailHeaders, our_address: &Address) -> Option<Address> {
    let h = headers;
    if h.auto_submitted.as_deref().is_some_and(|v| v != "no") {
        return None;
    }
    if h.precedence
        .as_deref()
        .is_some_and(|p| matches!(p, "bulk" | "junk" | "list"))
    {
        return None;
    }
    if h.list_id.is_some() || h.list_headers {
        return None;
    }
    if h.content_type == "multipart/report" {
        return None;
    }
    let to = Address::parse(h.return_path.as_deref()?).ok()?;
    if to == *our_address || h.from.as_ref().is_some_and(|f| f == our_address) {
        return None;
    }
    if is_automatic_mailbox(&to) || h.from.as_ref().is_some_and(is_automatic_mailbox) {
        return None;
    }
    Some(to)
}

/// Local parts that belong to software, not people (RFC 3834 §2 and common practice):
/// MAILER-DAEMON, postmaster, list owners (`owner-…`, `…-request`, `…-owner`), bounce
/// handlers, and the "no reply" family.
fn is_automatic_mailbox(a: &Address) -> bool {
    let local = a.local_part().to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or("");
    let squeezed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    matches!(
        local,
        "mailer-daemon" | "postmaster" | "listserv" | "majordomo" | "daemon" | "root"
    ) || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
        || local.starts_with("bounce")
        || squeezed.starts_with("noreply")
        || squeezed.starts_with("donotreply")
        || squeezed.starts_with("dontreply")
        || squeezed == "mailerdaemon"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailLimits;
    use crate::mail::compose::message_id;
    use crate::mail::parse::parse;
    use crate::mail::parse::tests::{mail_with, postfix_bounce};

    const ENVELOPE: &[u8] = b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n\
<edXML:edXMLEnvelope xmlns:edXML=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"/>";
    const PDF: &[u8] = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";

    fn addr(s: &str) -> Address {
        Address::parse(s).unwrap()
    }

    fn cx() -> Context {
        Context {
            our_address: addr("lienthong@gialai.gov.vn"),
            message_id_domain: "gialai.gov.vn".into(),
            mailboxes: BTreeMap::from([(
                addr("vanthu.stttt@gialai.gov.vn"),
                "000.00.05.H21".to_owned(),
            )]),
        }
    }

    fn class_of(raw: &[u8]) -> Class {
        classify(&parse(raw, &MailLimits::default()).unwrap(), &cx())
    }

    fn code(c: &Class) -> &'static str {
        match c {
            Class::Quarantine { code, .. } => code,
            Class::Package { .. } => "package",
            Class::Bounce { .. } => "bounce",
            Class::Draft { .. } => "draft",
        }
    }

    #[test]
    fn one_package_is_taken_whatever_its_label() {
        for (name, ct) in [
            ("cong-van.edxml", "application/octet-stream"),
            ("CONG-VAN.EDXML", "application/pdf"),
            ("goi-tin.xml", "application/octet-stream"),
            ("goi-tin", "application/xml"),
            ("goi-tin.bin", "text/xml"),
        ] {
            let c = class_of(&mail_with(
                "",
                "ai@example.vn",
                "Gửi văn bản",
                &[(name, ct, ENVELOPE), ("a.pdf", "application/pdf", PDF)],
            ));
            assert_eq!(
                c,
                Class::Package {
                    bytes: ENVELOPE.to_vec(),
                    name: name.to_owned()
                },
                "{name} {ct}"
            );
        }
        // An XML file that is not a package is not one.
        let other = b"<?xml version=\"1.0\"?><edXMLEnvelopeX/>";
        let c = class_of(&mail_with(
            "",
            "ai@example.vn",
            "x",
            &[("a.xml", "application/xml", other)],
        ));
        assert_eq!(code(&c), "MAIL_NOT_UNDERSTOOD");
        // Two packages: which one was meant? Neither.
        let c = class_of(&mail_with(
            "",
            "vanthu.stttt@gialai.gov.vn",
            "x",
            &[
                ("a.edxml", "application/xml", ENVELOPE),
                ("b.xml", "text/xml", ENVELOPE),
            ],
        ));
        assert_eq!(code(&c), "MAIL_SEVERAL_PACKAGES");
        // A package from anyone — even from the registered mailbox — is a package: its
        // signature decides, not the sender.
        let c = class_of(&mail_with(
            "",
            "VanThu.STTTT@GiaLai.gov.vn",
            "x",
            &[("a.edxml", "application/xml", ENVELOPE)],
        ));
        assert_eq!(code(&c), "package");
    }

    #[test]
    fn a_registered_mailbox_with_documents_makes_a_draft() {
        let c = class_of(&mail_with(
            "",
            "VanThu.STTTT@GiaLai.gov.vn",
            "Fwd: Số 12/STTTT-VP: V/v triển khai thư điện tử công vụ",
            &[
                ("Công văn 12.pdf", "application/pdf", PDF),
                ("du-thao.docx", "application/octet-stream", b"PK\x03\x04"),
                ("anh.jpg", "image/jpeg", b"\xFF\xD8"),
            ],
        ));
        let Class::Draft {
            agency,
            code_number,
            code_notation,
            summary,
            body,
            files,
        } = c
        else {
            panic!("{c:?}");
        };
        assert_eq!(agency, "000.00.05.H21");
        assert_eq!(code_number.as_deref(), Some("12"));
        assert_eq!(code_notation.as_deref(), Some("STTTT-VP"));
        assert_eq!(summary, "V/v triển khai thư điện tử công vụ");
        assert_eq!(body, "Kính gửi văn thư,\nxin gửi văn bản.");
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Công văn 12.pdf", "du-thao.docx"]);
        assert_eq!(files[0].bytes, PDF);
        // Without a document file: said so.
        let c = class_of(&mail_with(
            "",
            "vanthu.stttt@gialai.gov.vn",
            "x",
            &[("anh.jpg", "image/jpeg", b"\xFF")],
        ));
        assert_eq!(code(&c), "MAIL_NO_FILES");
        // The same files from an unregistered address are not a draft.
        let c = class_of(&mail_with(
            "",
            "vanthu.stttt@gialai.gov.vn.evil.vn",
            "x",
            &[("a.pdf", "application/pdf", PDF)],
        ));
        assert_eq!(code(&c), "MAIL_NOT_UNDERSTOOD");
        let c = class_of(&mail_with("", "ai@example.vn", "x", &[]));
        let Class::Quarantine { reason_vi, .. } = c else {
            panic!()
        };
        assert!(reason_vi.contains("không kèm gói tin"), "{reason_vi}");
    }

    #[test]
    fn our_own_address_without_a_package_is_a_loop() {
        let c = class_of(&mail_with(
            "",
            "lienthong@gialai.gov.vn",
            "Re: x",
            &[("a.pdf", "application/pdf", PDF)],
        ));
        assert_eq!(code(&c), "MAIL_FROM_SELF");
    }

    #[test]
    fn subjects_prefill_a_draft() {
        for (subject, number, notation, summary) in [
            (
                "Số 12/UBND-VP: V/v họp",
                Some("12"),
                Some("UBND-VP"),
                "V/v họp",
            ),
            (
                "số: 05/QĐ-UBND - Quyết định X",
                Some("05"),
                Some("QĐ-UBND"),
                "Quyết định X",
            ),
            (
                "12/UBND-VP - V/v họp",
                Some("12"),
                Some("UBND-VP"),
                "V/v họp",
            ),
            (
                "12/UBND-VP — V/v họp",
                Some("12"),
                Some("UBND-VP"),
                "V/v họp",
            ),
            (
                "RE: TL: 12 / STTTT-CĐS V/v họp",
                Some("12"),
                Some("STTTT-CĐS"),
                "V/v họp",
            ),
            (
                "Số 15/2024/QĐ-UBND: Ban hành quy chế",
                Some("15"),
                Some("2024/QĐ-UBND"),
                "Ban hành quy chế",
            ),
            ("V/v tổ chức hội nghị", None, None, "V/v tổ chức hội nghị"),
            ("Số liệu báo cáo 2024", None, None, "Số liệu báo cáo 2024"),
            ("2024/2025 kế hoạch", None, None, "2024/2025 kế hoạch"),
            ("12345678/X: quá dài", None, None, "12345678/X: quá dài"),
            ("", None, None, ""),
        ] {
            let f = draft_fields(subject);
            assert_eq!(
                (
                    f.number.as_deref(),
                    f.notation.as_deref(),
                    f.summary.as_str()
                ),
                (number, notation, summary),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn a_bounce_names_its_delivery() {
        let to = addr("xa-iakha@gialai.gov.vn");
        let id = message_id(42, "doc", &to, "gialai.gov.vn");
        for headers_only in [true, false] {
            let c = class_of(&postfix_bounce(&id, "failed", headers_only));
            let Class::Bounce {
                delivery_id,
                message_id,
                reason,
            } = c
            else {
                panic!("{c:?}")
            };
            assert_eq!(delivery_id, 42);
            assert_eq!(format!("<{message_id}>"), id);
            assert_eq!(
                reason,
                "xa-iakha@gialai.gov.vn: 5.1.1 (550 5.1.1 <xa-iakha@gialai.gov.vn> User doesn't exist: xa-iakha@gialai.gov.vn)"
            );
        }
        assert_eq!(
            code(&class_of(&postfix_bounce(&id, "delayed", true))),
            "MAIL_DSN_NOT_FAILED"
        );
        let foreign = message_id(42, "doc", &to, "other.vn");
        assert_eq!(
            code(&class_of(&postfix_bounce(&foreign, "failed", true))),
            "MAIL_BOUNCE_UNKNOWN"
        );
        assert_eq!(
            code(&class_of(&postfix_bounce("<x@y.vn>", "failed", false))),
            "MAIL_BOUNCE_UNKNOWN"
        );
    }

    #[test]
    fn envelope_roots_are_found_cheaply() {
        assert!(root_is_envelope(ENVELOPE));
        assert!(root_is_envelope(b"<edXMLEnvelope xmlns=\"x\">"));
        assert!(root_is_envelope(b"  <?pi x?><!----><e:edXMLEnvelope>"));
        for no in [
            &b""[..],
            b"<edXMLEnvelopeX/>",
            b"<!DOCTYPE x><edXMLEnvelope/>",
            b"<?xml version=\"1.0\"",
            b"<!-- never closed <edXMLEnvelope/>",
            b"text <edXMLEnvelope/>",
            b"<edXML><edXMLEnvelope/></edXML>",
        ] {
            assert!(!root_is_envelope(no), "{:?}", String::from_utf8_lossy(no));
        }
        let mut late = vec![b' '; 70 * 1024];
        late.extend_from_slice(b"<edXMLEnvelope/>");
        assert!(!root_is_envelope(&late));
    }

    fn headers(extra: &str, from: &str) -> MailHeaders {
        let raw = format!("Return-Path: <{from}>\r\nFrom: {from}\r\n{extra}Subject: x\r\n\r\nbody");
        parse(raw.as_bytes(), &MailLimits::default())
            .unwrap()
            .headers
    }

    #[test]
    fn only_people_are_answered() {
        let us = addr("lienthong@gialai.gov.vn");
        assert_eq!(
            auto_reply_to(&headers("", "Ai.Do@Example.vn"), &us),
            Some(addr("ai.do@example.vn"))
        );
        assert!(auto_reply_to(&headers("Auto-Submitted: no\r\n", "ai@x.vn"), &us).is_some());
        for (extra, from) in [
            ("Auto-Submitted: auto-replied\r\n", "ai@x.vn"),
            ("Auto-Submitted: auto-generated\r\n", "ai@x.vn"),
            (
                "Auto-Submitted: Auto-Notified; owner-email=\"x@y\"\r\n",
                "ai@x.vn",
            ),
            ("Precedence: bulk\r\n", "ai@x.vn"),
            ("Precedence: junk\r\n", "ai@x.vn"),
            ("Precedence: list\r\n", "ai@x.vn"),
            ("List-Id: <tin.x.vn>\r\n", "ai@x.vn"),
            ("List-Unsubscribe: <mailto:u@x.vn>\r\n", "ai@x.vn"),
            ("", "MAILER-DAEMON@x.vn"),
            ("", "postmaster@x.vn"),
            ("", "noreply@x.vn"),
            ("", "no-reply@x.vn"),
            ("", "no_reply+abc@x.vn"),
            ("", "do-not-reply@x.vn"),
            ("", "bounces+123@x.vn"),
            ("", "owner-list@x.vn"),
            ("", "list-request@x.vn"),
            ("", "LienThong@GiaLai.gov.vn"),
        ] {
            assert_eq!(
                auto_reply_to(&headers(extra, from), &us),
                None,
                "{extra:?} {from}"
            );
        }
        // No Return-Path, the null path, an invalid one.
        let no_path = parse(b"From: ai@x.vn\r\n\r\nx", &MailLimits::default())
            .unwrap()
            .headers;
        assert_eq!(auto_reply_to(&no_path, &us), None);
        let null = parse(
            b"Return-Path: <>\r\nFrom: ai@x.vn\r\n\r\nx",
            &MailLimits::default(),
        )
        .unwrap()
        .headers;
        assert_eq!(auto_reply_to(&null, &us), None);
        let bad = parse(
            b"Return-Path: <ai x@x.vn>\r\nFrom: ai@x.vn\r\n\r\nx",
            &MailLimits::default(),
        )
        .unwrap()
        .headers;
        assert_eq!(auto_reply_to(&bad, &us), None);
        // A person writing from a list-like From to a normal path: still automatic.
        let h = parse(
            b"Return-Path: <ai@x.vn>\r\nFrom: noreply@x.vn\r\n\r\nx",
            &MailLimits::default(),
        )
        .unwrap()
        .headers;
        assert_eq!(auto_reply_to(&h, &us), None);
        // Bounces.
        let id = message_id(1, "d", &us, "gialai.gov.vn");
        let b = parse(&postfix_bounce(&id, "failed", true), &MailLimits::default()).unwrap();
        assert_eq!(auto_reply_to(&b.headers, &us), None);
    }
}
