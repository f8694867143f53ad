//! The edXML package model (EDXML.md §2 and §3), as the reader produces it and the writer takes it.
//!
//! Names follow the edXML elements (in snake case), including the standard's own spelling where
//! the meaning would otherwise be lost. Values are trimmed text; optional elements that were
//! absent *or empty* are `None`, so what the writer omits reads back the same. Dates are
//! `time::Date`, timestamps `time::PrimitiveDateTime` in Vietnam local time; both serialise (for
//! the CLI's JSON) in edXML's own text form, `2019/02/27` and `2019/02/27 08:30:00`.
//!
//! Constructors ([`DocumentPackage::new`], [`StatusPackage::for_document`], …) fill in what a
//! clerk does not type: the DocumentId, the trace header, the business block.

use serde::Serialize;
use time::{Date, PrimitiveDateTime};

use super::dates::ser;
use super::document_id::{code_number, document_id_for_code, full_code};
use super::organ_id::OrganId;
use super::status::StatusCode;

/// A package as read: a document (with its attachments) or a status report.
// A document is bigger than a status report; packages are few and short-lived, and plain
// variants keep matching on them simple, so no boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Package {
    Document(DocumentPackage),
    Status(StatusPackage),
}

impl Package {
    /// What the reader noticed but accepted. Empty for a package this node wrote.
    pub fn warnings(&self) -> &[Warning] {
        match self {
            Package::Document(d) => &d.warnings,
            Package::Status(s) => &s.warnings,
        }
    }

    /// The sending (document) or reporting (status) organisation.
    pub fn from(&self) -> &Organization {
        match self {
            Package::Document(d) => &d.header.from,
            Package::Status(s) => &s.from,
        }
    }

    /// One line for logs and the CLI, e.g. `document 123/STTTT-CĐS (new) from 000.00.05.H21 to
    /// 2 recipients, 2 attachments` or `status 03 (accepted and registered) from 000.00.00.H41
    /// on 000.00.05.H21,2024/03/15,123/STTTT-CĐS`. Warnings are counted, not listed.
    pub fn summary(&self) -> String {
        let mut s = match self {
            Package::Document(d) => {
                let h = &d.header;
                let kind = match d.business_type() {
                    BusinessDocType::New => "new",
                    BusinessDocType::Revocation => "revocation",
                    BusinessDocType::Update => "update",
                    BusinessDocType::Replacement => "replacement",
                };
                format!(
                    "document {} ({kind}) from {} to {} recipient{}, {} attachment{}",
                    h.code.full(),
                    h.from.organ_id,
                    h.to.len(),
                    plural(h.to.len()),
                    d.attachments.len(),
                    plural(d.attachments.len()),
                )
            }
            Package::Status(st) => format!(
                "status {} ({}) from {} on {}",
                st.status_code,
                st.status_code.meaning(),
                st.from.organ_id,
                st.response_for.effective_document_id()
            ),
        };
        let w = self.warnings().len();
        if w > 0 {
            s.push_str(&format!("; {w} warning{}", plural(w)));
        }
        s
    }

    pub fn as_document(&self) -> Option<&DocumentPackage> {
        match self {
            Package::Document(d) => Some(d),
            Package::Status(_) => None,
        }
    }

    pub fn as_status(&self) -> Option<&StatusPackage> {
        match self {
            Package::Document(_) => None,
            Package::Status(s) => Some(s),
        }
    }
}

impl From<DocumentPackage> for Package {
    fn from(d: DocumentPackage) -> Self {
        Package::Document(d)
    }
}

impl From<StatusPackage> for Package {
    fn from(s: StatusPackage) -> Self {
        Package::Status(s)
    }
}

/// Something the reader accepted but that is not as the standard (or this node) would write it.
/// Being lenient never means being silent: every tolerance leaves one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    /// Element path below the root, as in errors.
    pub path: String,
    pub message: String,
}

impl Warning {
    pub fn new(kind: WarningKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// An OrganId not of the shape `DDD.DD.DD.LNN`.
    NonStandardOrganId,
    /// A status code outside the nine assigned ones (07–12, 14).
    UnassignedStatusCode,
    /// A value longer than its soft length limit (EDXML.md §2).
    LengthExceeded,
    /// An attachment whose `ContentType` does not say how it was encoded (zipped but labelled
    /// with the original type, labelled zip but not zipped, …).
    AttachmentLabel,
    /// An element the reader does not know (or does not expect there); it was ignored.
    UnknownElement,
    /// An expected element was absent or unreadable and a default was used.
    ValueDefaulted,
    /// A value in a tolerated but non-canonical form (`2019-02-27` for `2019/02/27`, …).
    NonCanonicalValue,
    /// Parts of the package that do not fit together (e.g. `ReplacementInfoList` on a
    /// revocation); kept as read.
    Inconsistent,
    /// Children not in the standard's order (the kit's `OrganName` before
    /// `OrganizationInCharge`, `Bussiness` before `TraceHeader`, …); read by name.
    ElementOrder,
    /// edXML elements or attributes written with a namespace prefix (`edXML:From`,
    /// `edXML:version`); read by namespace and local name.
    NamespacePrefix,
    /// The edXML namespace declared again below the root (`xmlns:edXML` on `edXMLEnvelope`).
    NamespaceRedeclared,
    /// A name spelled otherwise than the standard (`Business`, `BusinessDocType` for its
    /// `Bussiness`, `BussinessDocType`); read as the standard's.
    VariantSpelling,
    /// Optional elements present but empty (`<DueDate/>`, an empty `ResponseFor`), read as
    /// absent; or a `SignerInfo` that names no signer.
    EmptyElement,
    /// A part placed where the standard does not put it (Bkav's `Status` directly under
    /// `edXMLHeader`, without `MessageHeader`); read as the standard's part.
    NonStandardLayout,
    /// The package signature outside the XML-DSig namespace (in the edXML namespace, as the
    /// SDK writes it, or in no namespace at all).
    SignatureNamespace,
    /// Stray bytes before `<?xml` (seen in stored copies); dropped.
    JunkBeforeDeclaration,
}

// ---------------------------------------------------------------------------------------------
// Document package
// ---------------------------------------------------------------------------------------------

/// A document package: the header, the trace list with its business block, and the files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentPackage {
    pub header: MessageHeader,
    /// `TraceHeaderList/TraceHeader`, in document order.
    pub trace_headers: Vec<TraceHeader>,
    /// `TraceHeaderList/Bussiness`: new document, revocation, update or replacement.
    pub business: Option<Business>,
    /// The files, in manifest order, decoded and unzipped.
    pub attachments: Vec<Attachment>,
    /// What the reader tolerated. Ignored by the writer.
    pub warnings: Vec<Warning>,
}

impl DocumentPackage {
    /// A new document from `from` to `to`, with number and notation `code`, promulgated on
    /// `date`, about `subject`, stamped at `timestamp` (Vietnam time, see
    /// [`vietnam_time`](super::dates::vietnam_time)).
    ///
    /// Filled in: the DocumentId of EDXML.md §4, `DocumentType` 1 "Công văn", one trace header
    /// (`from`, `timestamp`) and a business block of type 0 (new document). Everything else is
    /// empty; set the public fields (signer, place, type, attachments, …) before writing.
    pub fn new(
        from: Organization,
        to: Vec<Organization>,
        code: DocumentCode,
        date: Date,
        subject: impl Into<String>,
        timestamp: PrimitiveDateTime,
    ) -> DocumentPackage {
        let document_id = document_id_for_code(&from.organ_id, date, &code.full());
        let trace = TraceHeader {
            organ_id: Some(from.organ_id.clone()),
            timestamp,
        };
        DocumentPackage {
            header: MessageHeader {
                from,
                to,
                document_id: Some(document_id.clone()),
                code,
                promulgation_info: PromulgationInfo {
                    place: String::new(),
                    date,
                },
                document_type: DocumentType::cong_van(),
                subject: subject.into(),
                content: None,
                signer_info: SignerInfo::default(),
                due_date: None,
                to_places: Vec::new(),
                other_info: None,
                response_for: Vec::new(),
                steering_type: None,
            },
            trace_headers: vec![trace],
            business: Some(Business::new_document(document_id)),
            attachments: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A revocation, update or replacement of `original` (which this node sent): the same header
    /// and files, `business` in place of the original's, and one trace header (the sender,
    /// `timestamp`). Adjust the header or files afterwards for an update.
    pub fn follow_up(
        original: &DocumentPackage,
        business: Business,
        timestamp: PrimitiveDateTime,
    ) -> DocumentPackage {
        DocumentPackage {
            header: original.header.clone(),
            trace_headers: vec![TraceHeader {
                organ_id: Some(original.header.from.organ_id.clone()),
                timestamp,
            }],
            business: Some(business),
            attachments: original.attachments.clone(),
            warnings: Vec::new(),
        }
    }

    /// The business type; a package without a business block is a new document.
    pub fn business_type(&self) -> BusinessDocType {
        self.business
            .as_ref()
            .map_or(BusinessDocType::New, |b| b.doc_type)
    }
}

/// `edXMLHeader/MessageHeader` of a document package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageHeader {
    pub from: Organization,
    /// One per recipient; at least one.
    pub to: Vec<Organization>,
    /// The business id (EDXML.md §4). Any string on receive; see
    /// [`effective_document_id`](Self::effective_document_id).
    pub document_id: Option<String>,
    pub code: DocumentCode,
    pub promulgation_info: PromulgationInfo,
    pub document_type: DocumentType,
    /// Trích yếu (≤ 500).
    pub subject: String,
    pub content: Option<String>,
    pub signer_info: SignerInfo,
    #[serde(serialize_with = "ser::opt_date")]
    pub due_date: Option<Date>,
    /// Free-text "Nơi nhận" lines.
    pub to_places: Vec<String>,
    pub other_info: Option<OtherInfo>,
    /// The documents this one answers (or, for a follow-up, concerns).
    pub response_for: Vec<ResponseFor>,
    pub steering_type: Option<SteeringType>,
}

impl MessageHeader {
    /// `DocumentId` as sent, or — when a peer left it out — the one EDXML.md §4 derives from the
    /// sender, date and code, so deduplication always has a key.
    pub fn effective_document_id(&self) -> String {
        match &self.document_id {
            Some(id) => id.clone(),
            None => document_id_for_code(
                &self.from.organ_id,
                self.promulgation_info.date,
                &self.code.full(),
            ),
        }
    }
}

/// An organisation: sender, recipient or status reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub organ_id: OrganId,
    /// Cơ quan chủ quản.
    pub organization_in_charge: Option<String>,
    pub organ_name: String,
    pub organ_add: Option<String>,
    pub email: Option<String>,
    pub telephone: Option<String>,
    pub fax: Option<String>,
    pub website: Option<String>,
}

impl Organization {
    /// An organisation with only its code and name.
    pub fn new(organ_id: OrganId, organ_name: impl Into<String>) -> Organization {
        Organization {
            organ_id,
            organization_in_charge: None,
            organ_name: organ_name.into(),
            organ_add: None,
            email: None,
            telephone: None,
            fax: None,
            website: None,
        }
    }
}

/// `Code`: số (number) and ký hiệu (notation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentCode {
    /// As written, e.g. `05`, `446` (text: peers send what they like).
    pub number: String,
    /// E.g. `QĐ-UBND`, `STTTT-CĐS`.
    pub notation: String,
}

impl DocumentCode {
    /// Number `n` (written with a leading zero below 10) and `notation`.
    pub fn new(n: u32, notation: impl Into<String>) -> DocumentCode {
        DocumentCode {
            number: code_number(n),
            notation: notation.into(),
        }
    }

    /// "số/ký hiệu" as one string, e.g. `446/UBND-KGVX`.
    pub fn full(&self) -> String {
        full_code(&self.number, &self.notation)
    }
}

/// `PromulgationInfo`: where and when the document was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromulgationInfo {
    /// E.g. "Gia Lai". May be empty.
    pub place: String,
    #[serde(serialize_with = "ser::date")]
    pub date: Date,
}

/// `DocumentType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentType {
    #[serde(rename = "type")]
    pub type_: i32,
    pub type_detail: Option<i32>,
    /// "Công văn", "Quyết định", …
    pub type_name: String,
}

impl DocumentType {
    /// Type 1, "Công văn" — the default for a dispatch.
    pub fn cong_van() -> DocumentType {
        DocumentType {
            type_: 1,
            type_detail: None,
            type_name: "Công văn".to_owned(),
        }
    }
}

/// `SignerInfo`: who signed, in what capacity. Fields may be empty (always written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignerInfo {
    /// Thẩm quyền ký, e.g. "KT. GIÁM ĐỐC", "TM. ỦY BAN NHÂN DÂN".
    pub competence: String,
    /// Chức vụ, e.g. "Phó Giám đốc" (≤ 100).
    pub position: String,
    /// ≤ 50.
    pub full_name: String,
}

/// `OtherInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtherInfo {
    pub priority: Priority,
    /// Phạm vi ban hành.
    pub sphere_of_promulgation: Option<String>,
    /// Ký hiệu người đánh máy.
    pub typer_notation: Option<String>,
    /// Số bản phát hành.
    pub promulgation_amount: Option<u32>,
    /// Số trang.
    pub page_amount: Option<u32>,
    pub direction: Option<bool>,
    /// `Appendixes/Appendix`.
    pub appendixes: Vec<String>,
}

/// `ResponseFor`: a document referred to, by its sender, code, date and id. Used by documents
/// (the ones answered) and by status packages (the one reported on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseFor {
    /// The original sender.
    pub organ_id: OrganId,
    /// "số/ký hiệu" as one string.
    pub code: String,
    #[serde(serialize_with = "ser::date")]
    pub promulgation_date: Date,
    pub document_id: Option<String>,
}

impl ResponseFor {
    /// The reference to `doc`.
    pub fn for_document(doc: &DocumentPackage) -> ResponseFor {
        let h = &doc.header;
        ResponseFor {
            organ_id: h.from.organ_id.clone(),
            code: h.code.full(),
            promulgation_date: h.promulgation_info.date,
            document_id: Some(h.effective_document_id()),
        }
    }

    /// `DocumentId` as sent, or the one derived from the other fields (EDXML.md §4).
    pub fn effective_document_id(&self) -> String {
        match &self.document_id {
            Some(id) => id.clone(),
            None => document_id_for_code(&self.organ_id, self.promulgation_date, &self.code),
        }
    }
}

/// `TraceHeaderList/TraceHeader`: one hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceHeader {
    /// `None` when absent or the literal `null` (entries added by hubs).
    pub organ_id: Option<OrganId>,
    /// Vietnam local time.
    #[serde(serialize_with = "ser::timestamp")]
    pub timestamp: PrimitiveDateTime,
}

/// `TraceHeaderList/Bussiness` (sic): what kind of dispatch this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Business {
    /// The document concerned: the package's own for a new document or a replacement (the
    /// replaced ones are in `replacements`), the original for a revocation or update.
    pub document_id: Option<String>,
    pub doc_type: BusinessDocType,
    /// `BussinessDocReason`.
    pub reason: Option<String>,
    /// A paper copy is also sent.
    pub paper: bool,
    pub staff_info: Option<StaffInfo>,
    /// Type 2 (update) only.
    pub document_info: Option<BusinessDocumentInfo>,
    /// Type 3 (replacement) only: `ReplacementInfoList/ReplacementInfo`.
    pub replacements: Vec<ReplacementInfo>,
}

impl Business {
    fn plain(doc_type: BusinessDocType, document_id: String, reason: Option<String>) -> Business {
        Business {
            document_id: Some(document_id),
            doc_type,
            reason,
            paper: false,
            staff_info: None,
            document_info: None,
            replacements: Vec::new(),
        }
    }

    /// Type 0, a new document.
    pub fn new_document(document_id: impl Into<String>) -> Business {
        Business::plain(BusinessDocType::New, document_id.into(), None)
    }

    /// Type 1, revocation of the document `document_id`.
    pub fn revocation(document_id: impl Into<String>, reason: impl Into<String>) -> Business {
        Business::plain(
            BusinessDocType::Revocation,
            document_id.into(),
            Some(reason.into()),
        )
    }

    /// Type 2, update of `document_id`: what changed is in `info`.
    pub fn update(
        document_id: impl Into<String>,
        reason: impl Into<String>,
        info: BusinessDocumentInfo,
    ) -> Business {
        Business {
            document_info: Some(info),
            ..Business::plain(
                BusinessDocType::Update,
                document_id.into(),
                Some(reason.into()),
            )
        }
    }

    /// Type 3: this document (`document_id`) replaces the documents listed in `replacements`,
    /// each at the agencies named there.
    pub fn replacement(
        document_id: impl Into<String>,
        reason: impl Into<String>,
        replacements: Vec<ReplacementInfo>,
    ) -> Business {
        Business {
            replacements,
            ..Business::plain(
                BusinessDocType::Replacement,
                document_id.into(),
                Some(reason.into()),
            )
        }
    }
}

/// `BussinessDocumentInfo` of an update: which parts changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BusinessDocumentInfo {
    /// The document's metadata/content changed (`DocumentInfo` 1).
    pub document_info: bool,
    /// The recipients changed (`DocumentReceiver` 1); the new list is `receivers`.
    pub document_receiver: bool,
    /// `ReceiverList/Receiver`.
    pub receivers: Vec<Receiver>,
}

/// `ReceiverList/Receiver`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receiver {
    pub organ_id: OrganId,
    pub receiver_type: i32,
}

/// `ReplacementInfoList/ReplacementInfo`: a document replaced, and at which agencies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplacementInfo {
    pub document_id: String,
    /// `OrganIdList/OrganId`, at least one.
    pub organ_ids: Vec<OrganId>,
}

/// `StaffInfo`: the clerk handling the dispatch or status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaffInfo {
    pub department: Option<String>,
    pub staff: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

/// One file of the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    /// `cid:<uuid>`; joins the manifest `Reference` and the `Attachment`.
    pub content_id: String,
    /// `AttachmentName`, the file name.
    pub name: String,
    pub description: String,
    /// The original MIME type (the manifest's), not `application/zip`.
    pub content_type: String,
    /// The file itself, decoded and unzipped. Serialised as its length only.
    #[serde(rename = "size", serialize_with = "ser_len")]
    pub data: Vec<u8>,
}

impl Attachment {
    /// A file with a fresh `cid:<uuid>` content id.
    pub fn new(
        name: impl Into<String>,
        content_type: impl Into<String>,
        description: impl Into<String>,
        data: Vec<u8>,
    ) -> Attachment {
        Attachment {
            content_id: format!("cid:{}", uuid::Uuid::new_v4()),
            name: name.into(),
            description: description.into(),
            content_type: content_type.into(),
            data,
        }
    }
}

fn ser_len<S: serde::Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(data.len() as u64)
}

// ---------------------------------------------------------------------------------------------
// Status package
// ---------------------------------------------------------------------------------------------

/// A status package (EDXML.md §3): `from` reports `status_code` on the document `response_for`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusPackage {
    /// The party reporting the status.
    pub from: Organization,
    /// The document concerned.
    pub response_for: ResponseFor,
    pub staff_info: Option<StaffInfo>,
    pub status_code: StatusCode,
    /// The reason (required in practice for 02 and 16). May be empty.
    pub description: String,
    #[serde(serialize_with = "ser::timestamp")]
    pub timestamp: PrimitiveDateTime,
    /// `TraceHeaderList/TraceHeader`, if hubs added any. This node writes none.
    pub trace_headers: Vec<TraceHeader>,
    /// What the reader tolerated. Ignored by the writer.
    pub warnings: Vec<Warning>,
}

impl StatusPackage {
    /// `from` reports `code` (with `description`) on `doc`, at `timestamp` (Vietnam time).
    pub fn for_document(
        doc: &DocumentPackage,
        from: Organization,
        code: StatusCode,
        description: impl Into<String>,
        timestamp: PrimitiveDateTime,
    ) -> StatusPackage {
        StatusPackage {
            from,
            response_for: ResponseFor::for_document(doc),
            staff_info: None,
            status_code: code,
            description: description.into(),
            timestamp,
            trace_headers: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Code lists
// ---------------------------------------------------------------------------------------------

/// Declares a small code list stored as an integer on the wire (and in JSON).
macro_rules! code_list {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// All values in numeric order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The wire value.
            pub fn number(self) -> u8 {
                match self { $($name::$v => $n),+ }
            }

            /// From the wire value; `None` outside the list.
            pub fn from_number(n: u8) -> Option<$name> {
                match n { $($n => Some($name::$v),)+ _ => None }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.number())
            }
        }
    };
}

code_list! {
    /// `OtherInfo/Priority` (độ khẩn).
    #[derive(Default)]
    Priority {
        /// 0 thường.
        #[default]
        Normal = 0,
        /// 1 khẩn.
        Urgent = 1,
        /// 2 thượng khẩn.
        VeryUrgent = 2,
        /// 3 hỏa tốc.
        Flash = 3,
        /// 4 hỏa tốc hẹn giờ.
        FlashScheduled = 4,
    }
}

code_list! {
    /// `SteeringType`.
    SteeringType {
        /// 0, not a steering document.
        NotSteering = 0,
        /// 1, a steering document (văn bản chỉ đạo).
        Steering = 1,
        /// 2, a report on a steering document.
        ReportOnSteering = 2,
    }
}

code_list! {
    /// `BussinessDocType`.
    BusinessDocType {
        /// 0, a new document.
        New = 0,
        /// 1, revocation (thu hồi).
        Revocation = 1,
        /// 2, update (cập nhật).
        Update = 2,
        /// 3, replacement (thay thế).
        Replacement = 3,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
