//! Notifications: short Vietnamese mails telling an agency's notification addresses what
//! happened, with a link to it when the node knows where its console is.

use lettre::message::MultiPart;

use super::document::AUTOMATIC;
use super::text::{Block, body_text, html, link, one_line, plain, vn_datetime};
use super::{
    ComposeError, Composed, Envelope, MAX_SUBJECT_CHARS, Notice, NoticeDocument, NoticeMail,
    alternative, boundary, builder, checked_domain, finish, invalid, tag16,
};
use crate::mail::address::{Mailbox, header_text};

/// The `Message-ID` of a notice: one per (event, event key, recipients), so the same event told
/// again is the same mail.
fn notice_message_id(m: &NoticeMail<'_>, domain: &str) -> String {
    let mut to: Vec<String> = m.to.iter().map(|a| a.key()).collect();
    to.sort();
    let to = to.join(",");
    let tag = tag16(&[
        b"notice",
        m.notice.event().as_str().as_bytes(),
        m.event_key.as_bytes(),
        to.as_bytes(),
    ]);
    format!("<lt.n.{tag}@{domain}>")
}

fn document_rows(
    d: &NoticeDocument<'_>,
    counterpart_label: &'static str,
) -> Vec<(&'static str, String)> {
    vec![
        ("Số, ký hiệu", one_line(d.code, 80)),
        ("Trích yếu", one_line(d.subject, 500)),
        (counterpart_label, one_line(d.counterpart, 250)),
    ]
}

/// `số/ký hiệu — trích yếu` for a subject.
fn doc_words(d: &NoticeDocument<'_>) -> String {
    let code = one_line(d.code, 80);
    let subject = one_line(d.subject, 200);
    if subject.is_empty() {
        code
    } else {
        format!("{code} — {subject}")
    }
}

pub(super) fn notice_mail(m: &NoticeMail<'_>) -> Result<Composed, ComposeError> {
    let domain = checked_domain(m.message_id_domain)?;
    if m.to.is_empty() {
        return Err(invalid("a notification without a recipient"));
    }
    let mid = notice_message_id(m, &domain);
    let agency = one_line(m.agency, 200);
    let (subject, lead, rows) = match &m.notice {
        Notice::Arrival { document } => (
            format!("[Thông báo] Văn bản đến: {}", doc_words(document)),
            format!("{agency} vừa nhận được văn bản điện tử sau:"),
            document_rows(document, "Cơ quan gửi"),
        ),
        Notice::Failed { document, reason } => {
            let mut rows = document_rows(document, "Cơ quan nhận");
            rows.push(("Lý do", one_line(reason, 500)));
            (
                format!(
                    "[Thông báo] Gửi văn bản không thành công: {}",
                    doc_words(document)
                ),
                format!(
                    "Văn bản sau của {agency} chưa gửi được đến nơi nhận; văn thư cần kiểm tra \
                     và gửi lại (hoặc liên hệ cán bộ quản trị hệ thống):"
                ),
                rows,
            )
        }
        Notice::Status {
            document,
            code,
            description,
        } => {
            let mut rows = document_rows(document, "Cơ quan báo trạng thái");
            rows.push((
                "Trạng thái",
                format!("{} — {}", code.as_wire(), code.meaning_vi()),
            ));
            let description = one_line(description, 500);
            if !description.is_empty() {
                rows.push(("Nội dung, lý do", description));
            }
            (
                format!(
                    "[Thông báo] Trạng thái {} ({}): {}",
                    code.as_wire(),
                    code.meaning_vi(),
                    doc_words(document)
                ),
                format!("Có trạng thái xử lý mới của văn bản do {agency} gửi:"),
                rows,
            )
        }
        Notice::CertExpiry {
            certificate,
            not_after,
        } => {
            let days = (*not_after - m.date).whole_days();
            let when = if days < 0 {
                "đã hết hạn".to_owned()
            } else {
                format!("còn {days} ngày")
            };
            (
                format!(
                    "[Thông báo] Chứng thư số ký văn bản của {agency} sắp hết hạn ({})",
                    super::text::vn_date(
                        not_after
                            .to_offset(crate::edxml::dates::VIETNAM_OFFSET)
                            .date()
                    )
                ),
                format!(
                    "Chứng thư số mà hệ thống dùng để ký văn bản của {agency} sắp hết hạn. Sau \
                     thời điểm này, văn bản gửi đi sẽ không được ký và không gửi được; đề nghị \
                     liên hệ tổ chức cung cấp dịch vụ chứng thực chữ ký số để gia hạn, rồi báo \
                     cán bộ quản trị hệ thống cài đặt chứng thư mới."
                ),
                vec![
                    ("Chứng thư số", one_line(certificate, 300)),
                    ("Hết hạn lúc", vn_datetime(*not_after)),
                    ("Thời gian còn lại", when),
                ],
            )
        }
    };
    let subject = header_text(&subject, MAX_SUBJECT_CHARS);
    let mut blocks = vec![
        Block::Para(format!("Kính gửi: {agency}")),
        Block::Para(body_text(&lead, 2000)),
        Block::Rows(rows),
    ];
    if let Some(url) = link(m.link_base, m.link_path) {
        blocks.push(Block::Link {
            text: "Xem chi tiết".to_owned(),
            url,
        });
    }
    blocks.push(Block::Small(format!(
        "Thông báo lúc {}. {AUTOMATIC}",
        vn_datetime(m.date)
    )));
    let to: Vec<Mailbox> =
        m.to.iter()
            .map(|a| Mailbox {
                name: String::new(),
                address: a.clone(),
            })
            .collect();
    let to: Vec<&Mailbox> = to.iter().collect();
    let b = builder(&Envelope {
        from: m.from,
        to: &to,
        subject: &subject,
        message_id: &mid,
        date: m.date,
        auto_submitted: "auto-generated",
        kind: "notice",
        document_id: None,
        delivery_id: None,
        in_reply_to: None,
        references: None,
    })?;
    let body = MultiPart::mixed()
        .boundary(boundary(&mid, 0))
        .multipart(alternative(&mid, plain(&blocks), html(&subject, &blocks)));
    finish(b, body, mid, subject)
}
