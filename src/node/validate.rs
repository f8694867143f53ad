//! What a clerk's submission must satisfy before a number is chosen or anything is signed:
//! what the receivers will enforce (the same [`Limits`] the reader applies, the same soft
//! length limits the writer applies), agency codes of the canonical shape, a route to every
//! recipient, and text that can travel everywhere it will go.
//!
//! Text: every value that ends up in an XML element or attribute, in the DocumentId or in a
//! mail header (the mail bridge sends the subject and names as headers) refuses control
//! characters — a CR/LF in a subject is a header injection waiting for the bridge, a CR/LF or a
//! comma in a ký hiệu ends up inside the DocumentId, whose fields are comma-separated.
//! Free text that is a body, not a header (`content`, a reason), may hold line breaks and tabs.
//!
//! Every problem names the field as the clerk sent it (`metadata.recipients[0]`,
//! `metadata.files[2]`), with a stable code.

use crate::config::Config;
use crate::edxml::soft_limits as soft;
use crate::edxml::xml::Limits;
use crate::edxml::{OrganId, Priority, StatusCode, SteeringType};
use crate::edxml::{attachment, file_name};
use crate::error::{Code, Error, FormatError, Problem};
use crate::node::compose::{File, Recipient, Submission};
use crate::node::routing::{self, Route};

/// `DocumentType/Type` values (QCVN 102:2016): 1 văn bản hành chính, 2 văn bản quy phạm pháp
/// luật.
pub const DOCUMENT_TYPES: [i32; 2] = [1, 2];

/// How a text field may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// One line: no control character at all (it may reach a header, an attribute or an id).
    Line,
    /// A body text: line breaks and tabs allowed, other control characters not.
    Body,
}

/// `values` as a message lists them (`0, 1, 2`): one text for the English and the Vietnamese
/// message, so the two never name different values.
pub fn one_of<T: std::fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
    values
        .into_iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A refusal of `value` in `path` for not being one of `list` (as [`one_of`] writes it), the
/// same list in both languages; the HTTP API's list filters refuse with it too.
pub(crate) fn not_one_of(path: &str, value: impl std::fmt::Display, list: &str) -> FormatError {
    FormatError::invalid(path, format!("{value}: expected one of {list}")).said(Problem::Expected(
        format!("một trong các giá trị {list}").into(),
    ))
}

/// A status code a recipient's clerk may report ([`StatusCode::CLERK_REPORTS`]) from its wire
/// form `value` in the field `path`; a refusal lists the codes that are, the same list in both
/// languages.
pub fn clerk_status(path: &str, value: &str) -> Result<StatusCode, FormatError> {
    match StatusCode::parse(value.trim()) {
        Ok(c) if StatusCode::CLERK_REPORTS.contains(&c) => Ok(c),
        _ => {
            let list = StatusCode::list(&StatusCode::CLERK_REPORTS);
            Err(FormatError::new(
                Code::StatusCodeUnknown,
                path,
                format!("{value:?}: a recipient reports one of {list}"),
            )
            .said(Problem::Expected(
                format!("một trong các mã trạng thái {list}").into(),
            )))
        }
    }
}

fn refused(c: char, form: Text) -> bool {
    let control = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FFFE}' | '\u{FFFF}');
    match form {
        Text::Line => control,
        Text::Body => control && !matches!(c, '\n' | '\r' | '\t'),
    }
}

/// `value` written as `form`, at most `max` characters (a soft limit of the format, counted
/// after trimming as the writer does).
pub fn text(path: &str, value: &str, form: Text, max: Option<usize>) -> Result<(), FormatError> {
    if let Some(c) = value.chars().find(|&c| refused(c, form)) {
        let (what, what_vi) = match c {
            '\r' | '\n' => ("a line break", "ký tự xuống dòng"),
            '\t' => ("a tab", "ký tự tab"),
            _ => ("a control character", "ký tự điều khiển"),
        };
        let hint = match form {
            Text::Line => {
                "trường này chỉ được viết trên một dòng; vui lòng xóa ký tự đó rồi gửi lại"
            }
            Text::Body => "vui lòng xóa ký tự đó rồi gửi lại",
        };
        return Err(FormatError::new(
            Code::CharacterNotAllowed,
            path,
            format!(
                "contains {what} (U+{:04X}); this field must be {}",
                u32::from(c),
                match form {
                    Text::Line => "one line of text",
                    Text::Body => "text without control characters other than line breaks and tabs",
                }
            ),
        )
        .said(Problem::Character(
            format!("{what_vi} (U+{:04X})", u32::from(c)).into(),
        ))
        .hint_vi(hint));
    }
    if let Some(max) = max
        && let Some(n) = soft::exceeds(value.trim(), max)
    {
        return Err(
            FormatError::invalid(path, format!("{n} characters, over the limit of {max}"))
                .said(Problem::TooLong { max }),
        );
    }
    Ok(())
}

fn optional(
    path: &str,
    value: Option<&str>,
    form: Text,
    max: Option<usize>,
) -> Result<(), FormatError> {
    value.map_or(Ok(()), |v| text(path, v, form, max))
}

/// A ký hiệu: one line, no comma (the DocumentId's separator), within the soft limit.
pub fn notation(path: &str, value: &str) -> Result<(), FormatError> {
    if value.trim().is_empty() {
        return Err(FormatError::missing(path));
    }
    text(path, value, Text::Line, Some(soft::CODE_NOTATION))?;
    if value.contains(',') {
        return Err(FormatError::new(
            Code::CharacterNotAllowed,
            path,
            "contains a comma, which separates the fields of the DocumentId",
        )
        .said(Problem::Character(
            "dấu phẩy (dấu phân tách các thành phần của mã định danh văn bản)".into(),
        )));
    }
    Ok(())
}

/// A recipient's agency code: the canonical shape `DDD.DD.DD.LNN` only (this node writes only
/// that shape, and a receiver's registry knows no other).
pub fn recipient_code(path: &str, code: &str) -> Result<OrganId, FormatError> {
    OrganId::parse_strict(code.trim()).map_err(|e| {
        FormatError::new(Code::OrganIdInvalid, path, e.problem).said(Problem::Expected(
            format!(
                "mã định danh cơ quan dạng DDD.DD.DD.LNN (ví dụ 000.00.00.H41), nhận được {:?}",
                code.trim()
            )
            .into(),
        ))
    })
}

/// Each code has a route: served here, or by a configured peer. `NO_ROUTE` names the first
/// that has none (as the clerk's field `paths[i]`), so it is refused now rather than
/// numbered, signed and queued to fail.
pub fn routes<'a>(
    config: &Config,
    codes: impl IntoIterator<Item = (String, &'a OrganId)>,
) -> Result<(), Error> {
    for (path, code) in codes {
        if routing::route(config, code) == Route::None {
            return Err(FormatError::new(
                Code::NoRoute,
                path,
                format!("{code}: neither this node nor any configured peer serves this agency"),
            )
            .said(Problem::Said(
                format!(
                    "không có đường gửi đến cơ quan {code} (mã này không thuộc hệ thống nào đã kết nối); vui lòng kiểm tra lại mã hoặc liên hệ quản trị viên"
                )
                .into(),
            ))
            .into());
        }
    }
    Ok(())
}

/// The files: how many, how large each and all together (the reader's [`Limits`]), and their
/// names and types as text. `prefix` is the clerk's name for the list (`files`: the `file`
/// parts of the request, `files[0]` the first).
pub fn files(prefix: &str, files: &[File], limits: &Limits) -> Result<(), FormatError> {
    if files.len() > limits.max_attachments {
        return Err(FormatError::new(
            Code::AttachmentLimit,
            prefix,
            format!(
                "{} files, over the limit of {} that receivers accept",
                files.len(),
                limits.max_attachments
            ),
        )
        .said(Problem::TooMany {
            max: limits.max_attachments,
        }));
    }
    let mut total: u64 = 0;
    // Each name's key for a receiver's file system, and the file it was first seen on.
    let mut names = std::collections::HashMap::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        let size = u64::try_from(f.data.len()).unwrap_or(u64::MAX);
        if size > limits.max_attachment_bytes {
            return Err(too_large(&path, size, limits.max_attachment_bytes));
        }
        total = total.saturating_add(size);
        if f.name.trim().is_empty() {
            return Err(FormatError::invalid(&path, "a file needs a name").said(Problem::Said(
                "tệp đính kèm chưa có tên; vui lòng đặt tên tệp (kèm phần mở rộng, ví dụ .pdf) rồi gửi lại".into(),
            )));
        }
        text(
            &format!("{path}.name"),
            &f.name,
            Text::Line,
            Some(soft::DESCRIPTION),
        )?;
        if let Some(why) = file_name::unsafe_to_send(&f.name) {
            return Err(FormatError::new(
                Code::AttachmentNameUnsafe,
                format!("{path}.name"),
                format!("{:?} {why}", f.name),
            )
            .said(Problem::Said(
                format!(
                    "tên tệp {:?} không gửi được (có dấu gạch chéo, ký tự điều khiển hoặc ký tự ẩn, kết thúc bằng dấu chấm hoặc dấu cách, hoặc dài quá 255 byte); vui lòng đổi tên, ví dụ {:?}, rồi gửi lại",
                    f.name,
                    file_name::suggested_name(&f.name)
                )
                .into(),
            )));
        }
        // Receivers save a document's files into one folder, a `.zip` under this very name:
        // two names one file system takes for one would overwrite each other.
        if let Some(j) = names.insert(file_name::same_file_name(&f.name), i) {
            let all: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            return Err(FormatError::new(
                Code::AttachmentNameUnsafe,
                format!("{path}.name"),
                format!(
                    "{:?} is the same file name as {prefix}[{j}].name ({:?}) to a receiver's \
                     system (letter case and Unicode form aside): saved into one folder, one \
                     would overwrite the other; send it as {:?}",
                    f.name,
                    files[j].name,
                    file_name::suggested_unique_name(&all, i)
                ),
            )
            .said(Problem::Said(
                format!(
                    "tên tệp {:?} trùng với tên tệp {prefix}[{j}] ({:?}) khi lưu trên máy của nơi nhận (không phân biệt chữ hoa, chữ thường): tệp này sẽ ghi đè tệp kia; vui lòng đổi tên, ví dụ {:?}, rồi gửi lại",
                    f.name,
                    files[j].name,
                    file_name::suggested_unique_name(&all, i)
                )
                .into(),
            )));
        }
        // A `.zip` travels as it is and receivers keep it as a zip archive (they never unzip a
        // `.zip`): one whose bytes are not a zip would reach them as a broken archive.
        if attachment::travels_as_is(f.name.trim_start())
            && !f.data.starts_with(attachment::ZIP_MAGIC)
        {
            return Err(FormatError::new(
                Code::AttachmentInvalid,
                path.clone(),
                format!(
                    "{:?} is named .zip but its content is not a zip archive: give it the name of \
                     what it is",
                    f.name
                ),
            )
            .said(Problem::Said(
                format!(
                    "tệp {:?} có tên đuôi .zip nhưng nội dung không phải là tệp nén zip; vui lòng đặt tên đúng với loại tệp rồi gửi lại",
                    f.name
                )
                .into(),
            )));
        }
        text(
            &format!("{path}.content_type"),
            &f.content_type,
            Text::Line,
            None,
        )?;
    }
    if total > limits.max_total_attachment_bytes {
        return Err(too_large(prefix, total, limits.max_total_attachment_bytes));
    }
    Ok(())
}

/// `ATTACHMENT_TOO_LARGE` for `size` bytes over `max`.
pub fn too_large(path: &str, size: u64, max: u64) -> FormatError {
    FormatError::new(
        Code::AttachmentTooLarge,
        path,
        format!("{size} bytes, over the limit of {max} that receivers accept"),
    )
    .said(Problem::TooLarge { max })
}

/// The signer block.
pub fn signer(prefix: &str, s: &crate::node::compose::SignerJson) -> Result<(), FormatError> {
    // Competence has no length limit in the format (the writer writes it as is).
    text(
        &format!("{prefix}.competence"),
        &s.competence,
        Text::Line,
        None,
    )?;
    text(
        &format!("{prefix}.position"),
        &s.position,
        Text::Line,
        Some(soft::POSITION),
    )?;
    text(
        &format!("{prefix}.full_name"),
        &s.full_name,
        Text::Line,
        Some(soft::FULL_NAME),
    )
}

/// `OtherInfo/Priority` outside its code list, listing the list (`value` as the caller sent it:
/// `9`, or `the text "x"` when it was not a number at all).
pub fn priority_invalid(path: &str, value: impl std::fmt::Display) -> FormatError {
    not_one_of(
        path,
        value,
        &one_of(Priority::ALL.iter().map(|p| p.number())),
    )
    .hint_vi(
        "0 thường, 1 khẩn, 2 thượng khẩn, 3 hỏa tốc, 4 hỏa tốc hẹn giờ; vui lòng chọn lại cho đúng",
    )
}

/// `SteeringType` outside its code list, listing the list.
pub fn steering_invalid(path: &str, value: impl std::fmt::Display) -> FormatError {
    not_one_of(
        path,
        value,
        &one_of(SteeringType::ALL.iter().map(|p| p.number())),
    )
    .hint_vi("0 không phải văn bản chỉ đạo, 1 văn bản chỉ đạo, 2 báo cáo về văn bản chỉ đạo; vui lòng chọn lại cho đúng")
}

/// The số's accepted values, as both its value check and a refusal of its type say them.
const NUMBER_FORM: (&str, &str) = ("a whole number, 1 or more", "một số nguyên từ 1 trở lên");

/// A số of 0.
pub fn number_invalid(path: &str) -> FormatError {
    FormatError::invalid(path, format!("must be {}", NUMBER_FORM.0))
        .said(Problem::Expected(NUMBER_FORM.1.into()))
}

/// The document type outside its code list.
fn type_invalid(path: &str, value: impl std::fmt::Display) -> FormatError {
    not_one_of(path, value, &one_of(DOCUMENT_TYPES)).hint_vi(
        "1 là văn bản hành chính, 2 là văn bản quy phạm pháp luật; vui lòng chọn lại cho đúng",
    )
}

/// A value of a numeric field with its own accepted values that is not even a number of the
/// right kind (`"x"`, `-1`, `300` for a one-byte field): the refusal its value check gives,
/// naming the field's own range, not the bounds of the integer type it is read into.
/// `got` is the value as the caller sent it, in words; `None` for a field without its own range
/// (`field` is the last part of the path: `metadata.priority` → `priority`).
pub fn own_range_invalid(path: &str, got: &str) -> Option<FormatError> {
    let field = path.rsplit('.').next().unwrap_or(path);
    Some(match field {
        "priority" => priority_invalid(path, got),
        "steering_type" => steering_invalid(path, got),
        "type" => type_invalid(path, got),
        "number" => FormatError::invalid(path, format!("{got}: expected {}", NUMBER_FORM.0))
            .said(Problem::Expected(NUMBER_FORM.1.into())),
        _ => return None,
    })
}

/// Everything of a new document's (or a replacement's) submission that does not need the
/// store: recipients (strict codes, names, routes), every text field, the code lists, the files.
pub fn submission(sub: &Submission, files_in: &[File], config: &Config) -> Result<(), Error> {
    let m = |f: &str| format!("metadata.{f}");
    if sub.recipients.is_empty() {
        return Err(FormatError::missing("metadata.recipients").into());
    }
    let mut codes: Vec<(String, OrganId)> = Vec::with_capacity(sub.recipients.len());
    for (i, r) in sub.recipients.iter().enumerate() {
        let (path, code) = match r {
            Recipient::Code(c) => (format!("metadata.recipients[{i}]"), c),
            Recipient::Named { code, name } => {
                text(
                    &format!("metadata.recipients[{i}].name"),
                    name,
                    Text::Line,
                    Some(soft::ORGAN_NAME),
                )?;
                (format!("metadata.recipients[{i}].code"), code)
            }
        };
        let id = recipient_code(&path, code)?;
        if codes.iter().any(|(_, c)| *c == id) {
            return Err(FormatError::invalid(
                format!("metadata.recipients[{i}]"),
                format!("{id} is listed twice"),
            )
            .said(Problem::Said(
                format!("cơ quan {id} đã có trong danh sách nơi nhận; vui lòng bỏ bớt một lần")
                    .into(),
            ))
            .into());
        }
        codes.push((path, id));
    }
    notation(&m("notation"), &sub.notation)?;
    if sub.subject.trim().is_empty() {
        return Err(FormatError::missing("metadata.subject").into());
    }
    text(&m("subject"), &sub.subject, Text::Line, Some(soft::SUBJECT))?;
    optional(&m("content"), sub.content.as_deref(), Text::Body, None)?;
    optional(
        &m("type_name"),
        sub.type_name.as_deref(),
        Text::Line,
        Some(soft::TYPE_NAME),
    )?;
    optional(&m("place"), sub.place.as_deref(), Text::Line, None)?;
    signer(&m("signer"), &sub.signer)?;
    let mut places = 0;
    for (i, p) in sub.to_places.iter().enumerate() {
        text(&format!("metadata.to_places[{i}]"), p, Text::Line, None)?;
        places += p.trim().chars().count();
    }
    if places > soft::TO_PLACES {
        return Err(FormatError::invalid(
            m("to_places"),
            format!(
                "{places} characters together, over the limit of {}",
                soft::TO_PLACES
            ),
        )
        .said(Problem::TooLong {
            max: soft::TO_PLACES,
        })
        .into());
    }
    if let Some(s) = &sub.staff {
        for (name, v) in [
            ("department", &s.department),
            ("staff", &s.staff),
            ("email", &s.email),
            ("mobile", &s.mobile),
        ] {
            optional(
                &format!("metadata.staff.{name}"),
                v.as_deref(),
                Text::Line,
                None,
            )?;
        }
    }
    if !DOCUMENT_TYPES.contains(&sub.r#type) {
        return Err(type_invalid(&m("type"), sub.r#type).into());
    }
    if let Some(d) = sub.type_detail
        && d < 0
    {
        return Err(
            FormatError::invalid(m("type_detail"), format!("{d}: expected 0 or more"))
                .said(Problem::Expected("một số nguyên không âm".into()))
                .into(),
        );
    }
    if Priority::from_number(sub.priority).is_none() {
        return Err(priority_invalid(&m("priority"), sub.priority).into());
    }
    if let Some(s) = sub.steering_type
        && SteeringType::from_number(s).is_none()
    {
        return Err(steering_invalid(&m("steering_type"), s).into());
    }
    if sub.number == Some(0) {
        return Err(number_invalid(&m("number")).into());
    }
    files("files", files_in, &config.limits)?;
    routes(config, codes.iter().map(|(p, c)| (p.clone(), c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fields_refuse_every_control_character_body_fields_keep_line_breaks() {
        for bad in [
            "a\rb",
            "a\nb",
            "a\tb",
            "a\u{0}b",
            "a\u{1b}b",
            "a\u{85}b",
            "a\u{2028}b",
        ] {
            let e = text("metadata.subject", bad, Text::Line, None).unwrap_err();
            assert_eq!(e.code, Code::CharacterNotAllowed, "{bad:?}");
            assert_eq!(e.path, "metadata.subject");
        }
        assert!(text("metadata.content", "một\r\ndòng\tnữa", Text::Body, None).is_ok());
        assert!(text("metadata.content", "a\u{7}b", Text::Body, None).is_err());
        assert!(
            text(
                "metadata.subject",
                "V/v thử nghiệm — “trích yếu”",
                Text::Line,
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn a_notation_refuses_commas_and_line_breaks() {
        assert!(notation("n", "STTTT-CĐS").is_ok());
        assert!(notation("n", "15/2020/NĐ-CP").is_ok());
        assert_eq!(
            notation("n", "A,B").unwrap_err().code,
            Code::CharacterNotAllowed
        );
        assert_eq!(
            notation("n", "A\r\nB").unwrap_err().code,
            Code::CharacterNotAllowed
        );
        assert_eq!(notation("n", " ").unwrap_err().code, Code::ElementMissing);
        assert_eq!(
            notation("n", &"X".repeat(31)).unwrap_err().code,
            Code::ValueInvalid
        );
    }

    #[test]
    fn recipient_codes_are_strict() {
        for bad in ["H41", "000.00.00.h41", "000-00-00-H41", "000.00.00.H4\r1"] {
            let e = recipient_code("metadata.recipients[0]", bad).unwrap_err();
            assert_eq!(
                (e.code, e.path.as_str()),
                (Code::OrganIdInvalid, "metadata.recipients[0]")
            );
        }
        assert!(recipient_code("p", " 000.00.00.H41 ").is_ok());
    }

    #[test]
    fn files_are_held_to_the_readers_limits() {
        let limits = Limits {
            max_attachments: 2,
            max_attachment_bytes: 10,
            max_total_attachment_bytes: 15,
            ..Limits::default()
        };
        let f = |name: &str, n: usize| File {
            name: name.into(),
            content_type: "application/pdf".into(),
            data: vec![0; n],
        };
        assert!(files("metadata.files", &[f("a.pdf", 10)], &limits).is_ok());
        // A `.zip` travels as it is: one that is no zip archive would reach receivers broken.
        let e = files(
            "metadata.files",
            &[f("a.pdf", 1), f("hồ sơ.zip", 4)],
            &limits,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentInvalid, "metadata.files[1]")
        );
        let zip = File {
            data: b"PK\x03\x04rest".to_vec(),
            ..f("hồ sơ.zip", 0)
        };
        assert!(files("metadata.files", &[zip], &limits).is_ok());
        let e = files(
            "metadata.files",
            &[f("a", 1), f("b", 1), f("c", 1)],
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::AttachmentLimit);
        let e = files("metadata.files", &[f("a", 1), f("b", 11)], &limits).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentTooLarge, "metadata.files[1]")
        );
        let e = files("metadata.files", &[f("a", 8), f("b", 8)], &limits).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentTooLarge, "metadata.files")
        );
        let e = files("metadata.files", &[f("a\r\n.pdf", 1)], &limits).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::CharacterNotAllowed, "metadata.files[0].name")
        );
        // A name a receiver would take as a path is refused, naming the file as sent and
        // suggesting a safe name.
        let e = files(
            "files",
            &[f("a.pdf", 1), f("Công văn 12/UBND-VP.pdf", 1)],
            &limits,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentNameUnsafe, "files[1].name")
        );
        assert!(e.problem.contains("\"Công văn 12-UBND-VP.pdf\""), "{e}");
        // A trailing dot or space: `a.zip.` would be unzipped by a receiver, then saved as
        // `a.zip`.
        for bad in ["a.zip.", "a.zip "] {
            let e = files("files", &[f("a.pdf", 1), f(bad, 1)], &limits).unwrap_err();
            assert_eq!(
                (e.code, e.path.as_str()),
                (Code::AttachmentNameUnsafe, "files[1].name"),
                "{bad:?}"
            );
        }
        // Two names a receiver's file system takes for one, naming both files as sent.
        let e = files(
            "files",
            &[
                File {
                    data: b"PK\x03\x04".to_vec(),
                    ..f("a.zip", 0)
                },
                f("Hồ sơ.pdf", 1),
                f("A.ZIP", 1),
            ],
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentNameUnsafe, "files[2].name")
        );
        assert!(
            e.problem.contains("files[0].name (\"a.zip\")")
                && e.problem.contains("send it as \"A (2).ZIP\""),
            "{e}"
        );
        let nfd = "Ho\u{302}\u{300} so\u{31b}.PDF";
        let e = files("files", &[f("Hồ sơ.pdf", 1), f(nfd, 1)], &limits).unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::AttachmentNameUnsafe, "files[1].name")
        );
        let long = format!("{}.pdf", "ệ".repeat(90));
        assert_eq!(
            files("files", &[f(&long, 1)], &limits).unwrap_err().code,
            Code::AttachmentNameUnsafe
        );
    }
}
