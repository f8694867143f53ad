//! The automatic reply to a mail that was not taken in (RFC 3834: `Auto-Submitted:
//! auto-replied`, threaded to the original, sent only where `classify::auto_reply_to` allows).
//! It says why and what to do, in Vietnamese, and never quotes the original's body.

use lettre::message::MultiPart;

use super::text::{Block, body_text, html, one_line, plain, vn_datetime};
use super::{
    ComposeError, Composed, Envelope, MAX_SUBJECT_CHARS, ReplyMail, alternative, boundary, builder,
    checked_domain, finish, tag16,
};
use crate::mail::address::{Mailbox, header_text};

/// The subject when the original had none worth repeating.
const FIXED_SUBJECT: &str = "Thư không được tiếp nhận vào hệ thống liên thông văn bản";

/// What to do, by the reason's code.
fn advice(code: &str) -> &'static str {
    match code {
        "MAIL_TOO_LARGE" => {
            "Vui lòng gửi lại thư có dung lượng nhỏ hơn (giảm dung lượng hoặc bớt tệp đính \
             kèm), hoặc gửi văn bản qua hệ thống quản lý văn bản điều hành."
        }
        "MAIL_TOO_DEEP" | "MAIL_TOO_MANY_PARTS" | "MAIL_HEADER_TOO_LONG" | "MAIL_MALFORMED" => {
            "Vui lòng soạn thư mới (không chuyển tiếp nhiều lần, không lồng nhiều thư vào nhau) \
             và đính kèm trực tiếp gói tin .edxml hoặc tệp văn bản."
        }
        "MAIL_TOO_MANY_ATTACHMENTS" => {
            "Vui lòng gửi ít tệp đính kèm hơn trong mỗi thư (mỗi văn bản một thư)."
        }
        "MAIL_SEVERAL_PACKAGES" => {
            "Mỗi thư chỉ được kèm một gói tin .edxml: vui lòng gửi mỗi văn bản trong một thư \
             riêng."
        }
        "MAIL_NO_FILES" => {
            "Vui lòng gửi lại thư kèm tệp văn bản (PDF, DOCX, DOC hoặc ODT) để văn thư lập dự \
             thảo văn bản đi."
        }
        c if c.starts_with("SIGNATURE_")
            || c.starts_with("CERT_")
            || c.starts_with("DIGEST_")
            || c == "REVOCATION_UNKNOWN"
            || c == "SENDER_NOT_AUTHORISED" =>
        {
            "Vui lòng kiểm tra chữ ký số của gói tin (chứng thư số còn hiệu lực, đúng cơ quan \
             ban hành, gói tin không bị sửa sau khi ký) rồi gửi lại gói tin .edxml do hệ thống \
             quản lý văn bản xuất ra."
        }
        _ => {
            "Để gửi văn bản điện tử, vui lòng đính kèm một gói tin .edxml có chữ ký số (xuất từ \
             hệ thống quản lý văn bản điều hành của cơ quan). Văn thư của cơ quan đã đăng ký \
             hộp thư công vụ với hệ thống có thể gửi từ hộp thư đã đăng ký đó, kèm tệp văn bản \
             PDF hoặc DOCX, để lập dự thảo văn bản đi."
        }
    }
}

/// `Re: <original, cleaned>` unless the original already starts so; the fixed subject when it
/// is empty.
fn reply_subject(original: &str) -> String {
    let original = header_text(original, MAX_SUBJECT_CHARS - 4);
    if original.is_empty() {
        return FIXED_SUBJECT.to_owned();
    }
    let lower = original.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("tl:") {
        original
    } else {
        header_text(&format!("Re: {original}"), MAX_SUBJECT_CHARS)
    }
}

/// A message id from the original as `<id>`, or `None` when it is not one line of printable
/// ASCII without brackets or spaces (nothing else is written into `In-Reply-To`).
fn bracketed(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !id.is_empty()
        && id.len() <= 250
        && id.contains('@')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b','));
    ok.then(|| format!("<{id}>"))
}

pub(super) fn quarantine_reply(m: &ReplyMail<'_>) -> Result<Composed, ComposeError> {
    let domain = checked_domain(m.message_id_domain)?;
    let original_id = m.original_message_id.and_then(bracketed);
    let tag = tag16(&[
        b"reply",
        original_id.as_deref().unwrap_or("").as_bytes(),
        m.original_subject.as_bytes(),
        m.to.key().as_bytes(),
        m.code.as_bytes(),
    ]);
    let mid = format!("<lt.r.{tag}@{domain}>");
    let subject = reply_subject(m.original_subject);
    let shown_subject = one_line(m.original_subject, 200);
    let from_name = one_line(&m.from.name, 200);
    let system = if from_name.is_empty() {
        "Hệ thống liên thông văn bản điện tử".to_owned()
    } else {
        from_name
    };
    let code = one_line(m.code, 60);
    let reason = body_text(m.reason_vi, 1000);
    let about = if shown_subject.is_empty() {
        "thư của Quý cơ quan, đơn vị (không có tiêu đề)".to_owned()
    } else {
        format!("thư của Quý cơ quan, đơn vị có tiêu đề \"{shown_subject}\"")
    };
    let blocks = vec![
        Block::Para(format!("Kính gửi: {}", m.to)),
        Block::Para(format!(
            "{system} đã nhận {about} nhưng không tiếp nhận được thư này vào hệ thống."
        )),
        Block::Rows(vec![
            (
                "Lý do",
                if reason.is_empty() {
                    "Thư không chứa văn bản điện tử mà hệ thống xử lý được.".to_owned()
                } else {
                    reason
                },
            ),
            ("Cách khắc phục", advice(m.code).to_owned()),
        ]),
        Block::Para(
            "Thư gốc đã được lưu lại để cán bộ quản trị kiểm tra; nội dung thư không được xử lý \
             tự động."
                .to_owned(),
        ),
        Block::Small(format!(
            "Đây là thư trả lời tự động lúc {}; vui lòng không trả lời thư này. Mã lý do (dành \
             cho cán bộ kỹ thuật): {code}.",
            vn_datetime(m.date)
        )),
    ];
    let mut references: Vec<String> = m
        .original_references
        .iter()
        .filter_map(|r| bracketed(r))
        .collect();
    if references.len() > 10 {
        references.drain(..references.len() - 10);
    }
    if let Some(id) = &original_id {
        references.push(id.clone());
    }
    let references = references.join(" ");
    let to = Mailbox {
        name: String::new(),
        address: m.to.clone(),
    };
    let b = builder(&Envelope {
        from: m.from,
        to: &[&to],
        subject: &subject,
        message_id: &mid,
        date: m.date,
        auto_submitted: "auto-replied",
        kind: "reply",
        document_id: None,
        delivery_id: None,
        in_reply_to: original_id.as_deref(),
        references: (!references.is_empty()).then_some(references.as_str()),
    })?;
    let body = MultiPart::mixed()
        .boundary(boundary(&mid, 0))
        .multipart(alternative(&mid, plain(&blocks), html(&subject, &blocks)));
    finish(b, body, mid, subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        assert_eq!(reply_subject("Công văn"), "Re: Công văn");
        assert_eq!(reply_subject("RE: Công văn"), "RE: Công văn");
        assert_eq!(reply_subject("  \r\n "), FIXED_SUBJECT);
        assert_eq!(
            reply_subject("a\r\nBcc: victim@example.com"),
            "Re: a Bcc: victim@example.com"
        );
    }

    #[test]
    fn ids_are_only_taken_when_plain() {
        assert_eq!(bracketed("<abc@x>").as_deref(), Some("<abc@x>"));
        assert_eq!(bracketed("abc@x").as_deref(), Some("<abc@x>"));
        assert_eq!(bracketed("abc x@y"), None);
        assert_eq!(bracketed("abc\r\n@y"), None);
        assert_eq!(bracketed("noat"), None);
    }
}
