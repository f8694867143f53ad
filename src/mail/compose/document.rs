//! The mail carrying a package: a document for a mail-only agency, or a status report.

use lettre::message::MultiPart;

use super::text::{Block, body_text, html, one_line, plain, vn_date};
use super::{
    ComposeError, Composed, Envelope, MAX_SUBJECT_CHARS, PackageMail, alternative, attachment,
    boundary, builder, checked_domain, finish, message_id, safe_content_type,
};
use crate::edxml::file_name::SafeNames;
use crate::edxml::{BusinessDocType, DocumentPackage, Priority, StatusPackage};
use crate::mail::address::header_text;

/// How the signature is checked, said in every package mail.
const HOW_TO_VERIFY: &str = "Tệp .edxml đính kèm là gói tin văn bản điện tử theo QCVN \
102:2016/BTTTT, có chữ ký số của cơ quan gửi; chỉ gói tin này có giá trị pháp lý, các tệp \
khác được trích ra từ gói tin để tiện xem. Để kiểm tra chữ ký số, mở gói tin bằng hệ thống \
quản lý văn bản điều hành có hỗ trợ edXML, hoặc dùng lệnh: lienthong verify TEN-TEP.edxml";

/// The note at the end of every mail the node sends by itself.
pub(super) const AUTOMATIC: &str = "Thư này được hệ thống liên thông văn bản điện tử gửi tự \
động. Vui lòng không trả lời thư này; thư trả lời không kèm gói tin .edxml có chữ ký số sẽ \
không được tiếp nhận.";

/// The subject's urgency prefix (độ khẩn), if any.
fn urgency_prefix(p: Priority) -> Option<&'static str> {
    match p {
        Priority::Normal => None,
        Priority::Urgent => Some("[KHẨN]"),
        Priority::VeryUrgent => Some("[THƯỢNG KHẨN]"),
        Priority::Flash | Priority::FlashScheduled => Some("[HỎA TỐC]"),
    }
}

/// The urgency in words, for the body.
fn urgency_words(p: Priority) -> &'static str {
    match p {
        Priority::Normal => "Thường",
        Priority::Urgent => "Khẩn",
        Priority::VeryUrgent => "Thượng khẩn",
        Priority::Flash => "Hỏa tốc",
        Priority::FlashScheduled => "Hỏa tốc hẹn giờ",
    }
}

/// What kind of dispatch, for the subject (none for a new document) and the body.
fn business_words(t: BusinessDocType) -> (Option<&'static str>, &'static str) {
    match t {
        BusinessDocType::New => (None, "Văn bản mới"),
        BusinessDocType::Revocation => (Some("[THU HỒI]"), "Thu hồi văn bản đã gửi"),
        BusinessDocType::Update => (Some("[CẬP NHẬT]"), "Cập nhật văn bản đã gửi"),
        BusinessDocType::Replacement => (Some("[THAY THẾ]"), "Thay thế văn bản đã gửi"),
    }
}

/// The subject of a document mail: `[urgency] [Văn bản điện tử] [business] số/ký hiệu —
/// trích yếu`, one line, at most [`MAX_SUBJECT_CHARS`].
pub(super) fn document_subject(d: &DocumentPackage) -> String {
    let h = &d.header;
    let mut s = String::new();
    if let Some(p) = urgency_prefix(
        h.other_info
            .as_ref()
            .map_or(Priority::Normal, |o| o.priority),
    ) {
        s.push_str(p);
        s.push(' ');
    }
    s.push_str("[Văn bản điện tử] ");
    if let Some(b) = business_words(d.business_type()).0 {
        s.push_str(b);
        s.push(' ');
    }
    s.push_str(&one_line(&h.code.full(), 80));
    let summary = one_line(&h.subject, MAX_SUBJECT_CHARS);
    if !summary.is_empty() {
        s.push_str(" — ");
        s.push_str(&summary);
    }
    header_text(&s, MAX_SUBJECT_CHARS)
}

/// The file name of the signed package: the DocumentId made ASCII and safe
/// (`000.00.05.H21_2024-03-15_123-STTTT-CDS.edxml`), so every mail client and file system
/// keeps it as it is.
pub(super) fn package_file_name(document_id: &str, prefix: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let mut stem = String::from(prefix);
    for c in document_id.nfd() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => stem.push(c),
            'đ' => stem.push('d'),
            'Đ' => stem.push('D'),
            ',' | '/' | ' ' => stem.push(if c == ',' { '_' } else { '-' }),
            c if unicode_normalization::char::is_combining_mark(c) => {}
            _ => stem.push('-'),
        }
        if stem.len() >= 150 {
            break;
        }
    }
    let stem = stem.trim_matches(['.', '-', '_']);
    let stem = if stem.is_empty() { "goi-tin" } else { stem };
    crate::edxml::file_name::safe_file_name(&format!("{stem}.edxml"))
}

/// The signer as the package names them: "KT. GIÁM ĐỐC, Phó Giám đốc Nguyễn Văn An".
fn signer_line(d: &DocumentPackage) -> String {
    let si = &d.header.signer_info;
    let role: Vec<&str> = [si.competence.as_str(), si.position.as_str()]
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut s = role.join(", ");
    if !si.full_name.trim().is_empty() {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(si.full_name.trim());
    }
    one_line(&s, 200)
}

/// The greeting: the agency's name, else its address.
pub(super) fn greeting(to: &crate::mail::address::Mailbox) -> String {
    let name = one_line(&to.name, 200);
    if name.is_empty() {
        format!("Kính gửi: {}", to.address)
    } else {
        format!("Kính gửi: {name}")
    }
}

pub(super) fn document_mail(
    m: &PackageMail<'_>,
    d: &DocumentPackage,
) -> Result<Composed, ComposeError> {
    let domain = checked_domain(m.message_id_domain)?;
    let h = &d.header;
    let document_id = h.effective_document_id();
    let mid = message_id(m.delivery_id, &document_id, &m.to.address, &domain);
    let subject = document_subject(d);
    let priority = h
        .other_info
        .as_ref()
        .map_or(Priority::Normal, |o| o.priority);
    let from_name = one_line(&h.from.organ_name, 200);

    let mut rows = vec![
        (
            "Cơ quan ban hành",
            one_line(&format!("{} ({})", h.from.organ_name, h.from.organ_id), 250),
        ),
        ("Số, ký hiệu", one_line(&h.code.full(), 80)),
        (
            "Ngày ban hành",
            match one_line(&h.promulgation_info.place, 100) {
                p if p.is_empty() => vn_date(h.promulgation_info.date),
                p => format!("{p}, ngày {}", vn_date(h.promulgation_info.date)),
            },
        ),
        ("Loại văn bản", one_line(&h.document_type.type_name, 100)),
        ("Trích yếu", one_line(&h.subject, 500)),
    ];
    let signer = signer_line(d);
    if !signer.is_empty() {
        rows.push(("Người ký", signer));
    }
    if let Some(s) = m.signer {
        rows.push(("Chữ ký số của", one_line(s, 300)));
    }
    rows.push(("Độ khẩn", urgency_words(priority).to_owned()));
    if let Some(due) = h.due_date {
        rows.push(("Hạn xử lý", vn_date(due)));
    }
    let (_, business) = business_words(d.business_type());
    let mut business = business.to_owned();
    if let Some(reason) = d.business.as_ref().and_then(|b| b.reason.as_deref()) {
        let reason = one_line(reason, 300);
        if !reason.is_empty() {
            business = format!("{business} (lý do: {reason})");
        }
    }
    rows.push(("Hình thức", business));
    rows.push(("Mã định danh (DocumentId)", one_line(&document_id, 300)));

    let package_name = package_file_name(&document_id, "");
    let mut names = SafeNames::new();
    let package_name = names.name(&package_name);
    let mut files = Vec::with_capacity(d.attachments.len());
    for a in &d.attachments {
        let name = names.name(&a.name);
        let ct = safe_content_type(&a.content_type, &name);
        files.push((name, ct, a));
    }
    let mut listed: Vec<String> = files
        .iter()
        .map(|(name, _, a)| format!("{name} ({})", size_words(a.data.len())))
        .collect();
    listed.push(format!(
        "{package_name} (gói tin có chữ ký số, {})",
        size_words(m.signed.len())
    ));

    let mut blocks = vec![
        Block::Para(greeting(m.to)),
        Block::Para(format!(
            "{from_name} gửi Quý cơ quan văn bản điện tử sau qua hệ thống liên thông văn bản:"
        )),
        Block::Rows(rows),
    ];
    if let Some(content) = h.content.as_deref() {
        let content = body_text(content, 4000);
        if !content.is_empty() {
            blocks.push(Block::Para(format!("Nội dung:\n{content}")));
        }
    }
    blocks.push(Block::Para("Tệp đính kèm:".to_owned()));
    blocks.push(Block::List(listed));
    blocks.push(Block::Para(HOW_TO_VERIFY.to_owned()));
    blocks.push(Block::Small(AUTOMATIC.to_owned()));

    let b = builder(&Envelope {
        from: m.from,
        to: &[m.to],
        subject: &subject,
        message_id: &mid,
        date: m.date,
        auto_submitted: "auto-generated",
        kind: "document",
        document_id: Some(&document_id),
        delivery_id: Some(m.delivery_id),
        in_reply_to: None,
        references: None,
    })?;
    let mut body = MultiPart::mixed()
        .boundary(boundary(&mid, 0))
        .multipart(alternative(&mid, plain(&blocks), html(&subject, &blocks)));
    for (name, ct, a) in files {
        body = body.singlepart(attachment(&name, &ct, a.data.clone())?);
    }
    body = body.singlepart(attachment(
        &package_name,
        "application/xml",
        m.signed.to_vec(),
    )?);
    finish(b, body, mid, subject)
}

pub(super) fn status_mail(
    m: &PackageMail<'_>,
    s: &StatusPackage,
) -> Result<Composed, ComposeError> {
    let domain = checked_domain(m.message_id_domain)?;
    let document_id = s.response_for.effective_document_id();
    let mid = message_id(m.delivery_id, &document_id, &m.to.address, &domain);
    let code = s.status_code;
    let reporter = one_line(&s.from.organ_name, 200);
    let doc_code = one_line(&s.response_for.code, 80);
    let subject = header_text(
        &format!(
            "[Trạng thái văn bản] {} {} — {doc_code} — {reporter}",
            code.as_wire(),
            code.meaning_vi()
        ),
        MAX_SUBJECT_CHARS,
    );

    let mut rows = vec![
        (
            "Cơ quan báo trạng thái",
            one_line(&format!("{} ({})", s.from.organ_name, s.from.organ_id), 250),
        ),
        (
            "Trạng thái",
            format!("{} — {}", code.as_wire(), code.meaning_vi()),
        ),
    ];
    let description = one_line(&s.description, 500);
    if !description.is_empty() {
        rows.push(("Nội dung, lý do", description));
    }
    rows.push((
        "Thời điểm",
        format!(
            "{:02}:{:02} ngày {}",
            s.timestamp.hour(),
            s.timestamp.minute(),
            vn_date(s.timestamp.date())
        ),
    ));
    rows.push(("Văn bản", doc_code));
    rows.push((
        "Ngày ban hành văn bản",
        vn_date(s.response_for.promulgation_date),
    ));
    rows.push((
        "Cơ quan ban hành văn bản",
        one_line(s.response_for.organ_id.as_str(), 80),
    ));
    rows.push(("Mã định danh (DocumentId)", one_line(&document_id, 300)));
    if let Some(staff) = s.staff_info.as_ref().and_then(|st| st.staff.as_deref()) {
        let staff = one_line(staff, 100);
        if !staff.is_empty() {
            rows.push(("Cán bộ xử lý", staff));
        }
    }
    if let Some(sig) = m.signer {
        rows.push(("Chữ ký số của", one_line(sig, 300)));
    }
    let package_name = package_file_name(&document_id, &format!("trang-thai-{}_", code.as_wire()));
    let blocks = vec![
        Block::Para(greeting(m.to)),
        Block::Para(format!(
            "{reporter} thông báo trạng thái xử lý văn bản qua hệ thống liên thông văn bản:"
        )),
        Block::Rows(rows),
        Block::Para("Tệp đính kèm:".to_owned()),
        Block::List(vec![format!(
            "{package_name} (gói tin trạng thái có chữ ký số, {})",
            size_words(m.signed.len())
        )]),
        Block::Para(HOW_TO_VERIFY.to_owned()),
        Block::Small(AUTOMATIC.to_owned()),
    ];
    let b = builder(&Envelope {
        from: m.from,
        to: &[m.to],
        subject: &subject,
        message_id: &mid,
        date: m.date,
        auto_submitted: "auto-generated",
        kind: "status",
        document_id: Some(&document_id),
        delivery_id: Some(m.delivery_id),
        in_reply_to: None,
        references: None,
    })?;
    let body = MultiPart::mixed()
        .boundary(boundary(&mid, 0))
        .multipart(alternative(&mid, plain(&blocks), html(&subject, &blocks)))
        .singlepart(attachment(
            &package_name,
            "application/xml",
            m.signed.to_vec(),
        )?);
    finish(b, body, mid, subject)
}

/// A size as a clerk reads it: `12 KB`, `1,5 MB` (Vietnamese decimal comma).
fn size_words(n: usize) -> String {
    const KB: usize = 1024;
    const MB: usize = 1024 * 1024;
    if n < KB {
        format!("{n} byte")
    } else if n < MB {
        format!("{} KB", n.div_ceil(KB))
    } else {
        let tenths = (n * 10).div_ceil(MB);
        format!("{},{} MB", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_ascii_and_safe() {
        assert_eq!(
            package_file_name("000.00.05.H21,2024/03/15,123/STTTT-CĐS", ""),
            "000.00.05.H21_2024-03-15_123-STTTT-CDS.edxml"
        );
        assert_eq!(
            package_file_name("../../etc/passwd\r\n", ""),
            "etc-passwd.edxml"
        );
        assert_eq!(package_file_name("", ""), "goi-tin.edxml");
        assert_eq!(
            package_file_name("Quyết định đúng", "trang-thai-03_"),
            "trang-thai-03_Quyet-dinh-dung.edxml"
        );
        assert!(package_file_name(&"x".repeat(1000), "").len() < 200);
    }

    #[test]
    fn sizes() {
        assert_eq!(size_words(10), "10 byte");
        assert_eq!(size_words(1500), "2 KB");
        assert_eq!(size_words(1024 * 1024 * 3 / 2), "1,5 MB");
    }
}
