//! Compose: what a clerk submits (metadata + files) becomes an edXML document package.
//!
//! Pure: the number is allocated by the store and the time is passed in, so the same submission
//! always gives the same package. Every problem names the metadata field it is about
//! (`metadata.recipients[1].code: …`), because a clerk's document system has to show it.

use serde::{Deserialize, Serialize};
use time::{Date, PrimitiveDateTime};

use crate::edxml::{
    self, Attachment, DocumentCode, DocumentPackage, DocumentType, OrganId, Organization,
    OtherInfo, Priority, SignerInfo, StaffInfo, SteeringType,
};
use crate::error::FormatError;

/// The `metadata` part of `POST /api/v1/documents` (field names are the API's, in English).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Recipients: agency codes, or `{ "code": …, "name": … }`.
    pub recipients: Vec<Recipient>,
    /// Số. Absent: the node assigns the next number of the agency's yearly sequence.
    pub number: Option<u32>,
    /// Confirms a `number` more than [`UNCONFIRMED_SLACK`](crate::node::numbering::UNCONFIRMED_SLACK)
    /// above the sequence's next: without it such a number is refused (`NUMBER_UNCONFIRMED`),
    /// since a typo there would skip every number below it for the rest of the year.
    #[serde(default)]
    pub confirm_number: bool,
    /// Ký hiệu, e.g. `STTTT-CĐS`.
    pub notation: String,
    /// `DocumentType/Type`; 1 by default.
    #[serde(default = "one")]
    pub r#type: i32,
    pub type_detail: Option<i32>,
    /// "Công văn" by default.
    pub type_name: Option<String>,
    /// Trích yếu.
    pub subject: String,
    pub content: Option<String>,
    #[serde(default)]
    pub signer: SignerJson,
    /// Place of promulgation (Nơi ban hành, the province's name as a rule); empty when not
    /// given — the node does not guess it from the agency code.
    pub place: Option<String>,
    /// `yyyy/MM/dd` or `yyyy-MM-dd`; today (Vietnam time) by default.
    pub date: Option<String>,
    pub due_date: Option<String>,
    /// 0 thường … 4 hỏa tốc hẹn giờ.
    #[serde(default)]
    pub priority: u8,
    pub steering_type: Option<u8>,
    /// Free-text "Nơi nhận".
    #[serde(default)]
    pub to_places: Vec<String>,
    pub staff: Option<StaffJson>,
    /// A paper copy is also sent.
    #[serde(default)]
    pub paper: bool,
}

fn one() -> i32 {
    1
}

/// A recipient: a bare code or a code with the name to print.
///
/// Deserialized by hand, not as an untagged enum: serde's answer to anything else was "data did
/// not match any variant of untagged enum Recipient", where a clerk's system needs to hear which
/// of the two forms is expected, or which key of the object is missing or unknown.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)] // serialized (the request's fingerprint) as it was sent
pub enum Recipient {
    Code(String),
    Named { code: String, name: String },
}

/// What a recipient is in JSON, as the English message says it (the expected form of
/// `metadata.recipients[i]`).
pub const RECIPIENT_FORM: &str =
    "an agency code (\"000.00.00.H41\") or an object {\"code\": …, \"name\": …}";
/// [`RECIPIENT_FORM`] in Vietnamese.
pub const RECIPIENT_FORM_VI: &str = "một mã định danh cơ quan (ví dụ \"000.00.00.H41\") hoặc một đối tượng {\"code\": …, \"name\": …}";

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Recipient;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(RECIPIENT_FORM)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Recipient, E> {
                Ok(Recipient::Code(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Recipient, A::Error> {
                let (mut code, mut name): (Option<String>, Option<String>) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "code" => &mut code,
                        "name" => &mut name,
                        _ => return Err(de::Error::unknown_field(&key, &["code", "name"])),
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(Recipient::Named {
                    code: code.ok_or_else(|| de::Error::missing_field("code"))?,
                    name: name.ok_or_else(|| de::Error::missing_field("name"))?,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignerJson {
    #[serde(default)]
    pub competence: String,
    #[serde(default)]
    pub position: String,
    #[serde(default)]
    pub full_name: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaffJson {
    pub department: Option<String>,
    pub staff: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

/// A file part of the submission.
#[derive(Debug, Clone)]
pub struct File {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

fn field(name: &str, problem: impl Into<String>) -> FormatError {
    FormatError::invalid(format!("metadata.{name}"), problem)
}

impl Submission {
    /// The recipients as codes, checked (the canonical shape only), in order, without
    /// duplicates. A problem names the field as sent: `metadata.recipients[0]` for a bare code,
    /// `metadata.recipients[0].code` for one with a name.
    pub fn recipient_codes(&self) -> Result<Vec<OrganId>, FormatError> {
        if self.recipients.is_empty() {
            return Err(FormatError::missing("metadata.recipients"));
        }
        let mut out: Vec<OrganId> = Vec::new();
        for (i, r) in self.recipients.iter().enumerate() {
            let (path, code) = match r {
                Recipient::Code(c) => (format!("metadata.recipients[{i}]"), c),
                Recipient::Named { code, .. } => (format!("metadata.recipients[{i}].code"), code),
            };
            let id = crate::node::validate::recipient_code(&path, code)?;
            if out.contains(&id) {
                return Err(
                    field(&format!("recipients[{i}]"), format!("{id} is listed twice"))
                        .said(crate::error::Problem::Said(
                        format!(
                            "cơ quan {id} đã có trong danh sách nơi nhận; vui lòng bỏ bớt một lần"
                        )
                        .into(),
                    )),
                );
            }
            out.push(id);
        }
        Ok(out)
    }

    /// The promulgation date: given, or today in Vietnam.
    pub fn promulgation_date(&self, now: PrimitiveDateTime) -> Result<Date, FormatError> {
        match &self.date {
            Some(d) => parse_date("date", d),
            None => Ok(now.date()),
        }
    }
}

fn parse_date(name: &str, s: &str) -> Result<Date, FormatError> {
    edxml::dates::parse_date(s).map(|(d, _)| d).map_err(|e| {
        field(name, e).said(crate::error::Problem::Expected(
            edxml::dates::date_expected_vi().into(),
        ))
    })
}

/// Gives `doc` the số `number`: its `Code/CodeNumber` and its DocumentId (the header's, and the
/// business block's when that names the document itself — a new document or a replacement).
pub fn renumber(doc: &mut DocumentPackage, number: u32) {
    let old = doc.header.effective_document_id();
    doc.header.code.number = edxml::document_id::code_number(number);
    let new = edxml::document_id::document_id_for_code(
        &doc.header.from.organ_id,
        doc.header.promulgation_info.date,
        &doc.header.code.full(),
    );
    doc.header.document_id = Some(new.clone());
    if let Some(b) = doc.business.as_mut()
        && b.document_id.as_deref() == Some(old.as_str())
    {
        b.document_id = Some(new);
    }
}

/// Builds the package `from` sends. `number` is the số (given by the clerk or allocated);
/// `name_of` supplies names for recipients given as bare codes; `now` is Vietnam time.
pub fn compose(
    sub: &Submission,
    from: &Organization,
    number: u32,
    files: Vec<File>,
    now: PrimitiveDateTime,
    name_of: &dyn Fn(&OrganId) -> Option<String>,
) -> Result<DocumentPackage, FormatError> {
    let codes = sub.recipient_codes()?;
    let to = codes
        .iter()
        .zip(&sub.recipients)
        .map(|(code, r)| {
            let name = match r {
                Recipient::Named { name, .. } if !name.trim().is_empty() => name.trim().to_owned(),
                _ => name_of(code).unwrap_or_else(|| code.to_string()),
            };
            Organization::new(code.clone(), name)
        })
        .collect();
    if sub.notation.trim().is_empty() {
        return Err(FormatError::missing("metadata.notation"));
    }
    if sub.subject.trim().is_empty() {
        return Err(FormatError::missing("metadata.subject"));
    }
    if number == 0 {
        return Err(crate::node::validate::number_invalid("metadata.number"));
    }
    let date = sub.promulgation_date(now)?;
    let mut doc = DocumentPackage::new(
        from.clone(),
        to,
        DocumentCode::new(number, sub.notation.trim()),
        date,
        sub.subject.trim(),
        now,
    );
    let h = &mut doc.header;
    h.promulgation_info.place = sub.place.clone().unwrap_or_default();
    h.document_type = DocumentType {
        type_: sub.r#type,
        type_detail: sub.type_detail,
        type_name: sub
            .type_name
            .clone()
            .unwrap_or_else(|| DocumentType::cong_van().type_name),
    };
    h.content = sub.content.clone().filter(|c| !c.trim().is_empty());
    h.signer_info = SignerInfo {
        competence: sub.signer.competence.clone(),
        position: sub.signer.position.clone(),
        full_name: sub.signer.full_name.clone(),
    };
    h.due_date = sub
        .due_date
        .as_deref()
        .map(|d| parse_date("due_date", d))
        .transpose()?;
    let priority = Priority::from_number(sub.priority).ok_or_else(|| {
        crate::node::validate::priority_invalid("metadata.priority", sub.priority)
    })?;
    h.other_info = Some(OtherInfo {
        priority,
        ..OtherInfo::default()
    });
    h.steering_type = sub
        .steering_type
        .map(|s| {
            SteeringType::from_number(s)
                .ok_or_else(|| crate::node::validate::steering_invalid("metadata.steering_type", s))
        })
        .transpose()?;
    h.to_places = sub.to_places.clone();
    if let Some(b) = doc.business.as_mut() {
        b.paper = sub.paper;
        b.staff_info = sub.staff.as_ref().map(|s| StaffInfo {
            department: s.department.clone(),
            staff: s.staff.clone(),
            email: s.email.clone(),
            mobile: s.mobile.clone(),
        });
    }
    for (i, f) in files.into_iter().enumerate() {
        if f.name.trim().is_empty() {
            return Err(
                FormatError::invalid(format!("files[{i}]"), "a file needs a name").said(
                    crate::error::Problem::Said(
                        "tệp đính kèm chưa có tên; vui lòng đặt tên tệp rồi gửi lại".into(),
                    ),
                ),
            );
        }
        doc.attachments.push(Attachment::new(
            f.name.clone(),
            f.content_type,
            f.name,
            f.data,
        ));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use time::macros::datetime;

    fn from() -> Organization {
        Organization::new(
            OrganId::parse_strict("000.00.05.H21").unwrap(),
            "Sở Thông tin và Truyền thông tỉnh Gia Lai",
        )
    }

    fn submission(json: &str) -> Submission {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_submission_becomes_a_package_that_writes() {
        let s = submission(
            r#"{"recipients": ["000.00.00.H41", {"code": "000.00.04.H21", "name": "Sở Nội vụ tỉnh Gia Lai"}],
                "notation": "STTTT-CĐS", "subject": "V/v thử nghiệm", "priority": 1, "date": "2026-11-25",
                "signer": {"full_name": "Nguyễn Văn Ánh", "competence": "KT. GIÁM ĐỐC"}}"#,
        );
        let names = |c: &OrganId| {
            (c.as_str() == "000.00.00.H41").then(|| "Ủy ban nhân dân tỉnh Nghệ An".to_owned())
        };
        let files = vec![File {
            name: "cv.pdf".into(),
            content_type: "application/pdf".into(),
            data: b"%PDF".to_vec(),
        }];
        let doc = compose(
            &s,
            &from(),
            7,
            files,
            datetime!(2026-11-26 00:30:00),
            &names,
        )
        .unwrap();
        let h = &doc.header;
        assert_eq!(h.to[0].organ_name, "Ủy ban nhân dân tỉnh Nghệ An");
        assert_eq!(h.to[1].organ_name, "Sở Nội vụ tỉnh Gia Lai");
        assert_eq!(h.code.full(), "07/STTTT-CĐS");
        assert_eq!(
            h.document_id.as_deref(),
            Some("000.00.05.H21,2026/11/25,07/STTTT-CĐS")
        );
        assert_eq!(doc.attachments.len(), 1);
        edxml::write_document(&doc).unwrap();
    }

    #[test]
    fn problems_name_the_field() {
        let s = submission(
            r#"{"recipients": ["000.00.00.H41", "000.00.00.H41"], "notation": "X", "subject": "y"}"#,
        );
        let e = compose(
            &s,
            &from(),
            1,
            vec![],
            datetime!(2026-11-26 00:30:00),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(e.path, "metadata.recipients[1]");
        let s = submission(r#"{"recipients": [], "notation": "X", "subject": "y"}"#);
        let e = compose(
            &s,
            &from(),
            1,
            vec![],
            datetime!(2026-11-26 00:30:00),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.path.as_str()),
            (Code::ElementMissing, "metadata.recipients")
        );
        let s = submission(
            r#"{"recipients": ["000.00.00.H41"], "notation": "X", "subject": "y", "priority": 9}"#,
        );
        let e = compose(
            &s,
            &from(),
            1,
            vec![],
            datetime!(2026-11-26 00:30:00),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(e.path, "metadata.priority");
        assert!(
            serde_json::from_str::<Submission>(
                r#"{"recipients": [], "notation": "X", "subject": "y", "colour": 1}"#
            )
            .is_err()
        );
    }
}
